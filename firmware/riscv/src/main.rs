//! runnel demo firmware for QEMU `-machine virt -bios none` (riscv32).
//! Logs with defmt over semihosting; exits QEMU with the run's status.
#![no_std]
#![no_main]

use defmt_semihosting as _; // global logger
use runnel_fw_common::stack;
use runnel_fw_riscv::{exit, stack_region, MinstretCounter};

#[riscv_rt::entry]
fn main() -> ! {
    let region = stack_region();
    // SAFETY: `region` is this core's only stack.
    unsafe { stack::paint(region) };
    let mut counter = MinstretCounter::start();
    defmt::info!("runnel-fw board=qemu-virt cpu=rv32imac");

    exit(runnel_fw_app::run(&mut counter, region))
}
