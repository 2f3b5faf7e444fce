//! runnel demo firmware for the nRF52840-DK (Cortex-M4F @ 64 MHz).
//!
//! Flash and run from this directory with `cargo run --release` (probe-rs).
//! Counts are CPU cycles from the DWT cycle counter.
#![no_std]
#![no_main]

#[cfg(all(feature = "rtt", feature = "semihosting"))]
compile_error!("enable exactly one of the features `rtt` and `semihosting`");
#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "semihosting")]
use defmt_semihosting as _;

use runnel_fw_common::stack;
use runnel_fw_cortex_m::{exit, stack_region, DwtCycleCounter};

#[cortex_m_rt::entry]
fn main() -> ! {
    let region = stack_region();
    // SAFETY: `region` is this core's only stack.
    unsafe { stack::paint(region) };
    // `take` succeeds on its first call
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        exit(runnel_fw_app::EXIT_ERROR)
    };
    let mut counter = DwtCycleCounter::start(&mut cp.DCB, &mut cp.DWT);
    defmt::info!("runnel-fw board=nrf52840 cpu=cortex-m4f");

    exit(runnel_fw_app::run(&mut counter, region))
}
