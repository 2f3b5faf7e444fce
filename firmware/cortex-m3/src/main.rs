//! runnel demo firmware for QEMU `-machine mps2-an385 -cpu cortex-m3`: the ARMv7-M core without
//! an FPU or the DSP extension, where every float operation is a soft-float call and the int8
//! kernels are the portable ones. Logs with defmt over semihosting; exits QEMU with the run's
//! status.
#![no_std]
#![no_main]

use defmt_semihosting as _; // global logger
use runnel_fw_common::stack;
use runnel_fw_cortex_m::{exit, stack_region, SysTickCounter};

#[cortex_m_rt::entry]
fn main() -> ! {
    let region = stack_region();
    // SAFETY: `region` is this core's only stack.
    unsafe { stack::paint(region) };
    // `take` succeeds on its first call
    let Some(cp) = cortex_m::Peripherals::take() else {
        exit(runnel_fw_app::EXIT_ERROR)
    };
    let mut counter = SysTickCounter::start(cp.SYST);
    defmt::info!("runnel-fw board=qemu-mps2-an385 cpu=cortex-m3");

    exit(runnel_fw_app::run(&mut counter, region))
}
