//! Checks that `minstret` counts exactly under QEMU virt with `-icount
//! shift=0`: times loops with a known instruction count.
//!
//!     cargo run --release --target riscv32imac-unknown-none-elf -p runnel-fw-riscv --example minstret_calibrate
#![no_std]
#![no_main]

use defmt_semihosting as _;
use runnel_fw_common::calibrate::calibrate;
use runnel_fw_riscv::{exit, MinstretCounter};

/// n iterations of (addi, bnez) = 2n instructions.
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            n = inout(reg) n => _,
            options(nomem, nostack)
        );
    }
}

#[riscv_rt::entry]
fn main() -> ! {
    let mut c = MinstretCounter::start();
    // only the call/ret and counter-read overhead may differ
    let ok = calibrate(&mut c, spin, 32);
    exit(if ok { 0 } else { 1 })
}
