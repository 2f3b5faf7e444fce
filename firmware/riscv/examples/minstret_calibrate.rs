//! Checks that `minstret` counts exactly under QEMU virt with `-icount
//! shift=0`: times loops with a known instruction count.
//!
//!     cargo run --release --target riscv32imac-unknown-none-elf -p runnel-fw-riscv --example minstret_calibrate
#![no_std]
#![no_main]

use defmt_semihosting as _;
use runnel_fw_common::InstrCounter;
use runnel_fw_riscv::{exit, MinstretCounter};

/// n iterations of (addi, bnez) = 2n instructions.
#[inline(never)]
fn spin(n: u32) {
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
    let a = c.now();
    let b = c.now();
    let overhead = b - a;
    defmt::info!("empty interval: {=u64} instructions", overhead);
    let mut ok = true;
    for &n in &[1_000u32, 10_000, 100_000, 1_000_000, 10_000_000] {
        let t0 = c.now();
        spin(n);
        let t1 = c.now();
        let measured = t1 - t0;
        let expected = 2 * n as u64;
        let err = measured as i64 - expected as i64;
        defmt::info!(
            "loop n={=u32}: measured={=u64} expected~{=u64} diff={=i64}",
            n,
            measured,
            expected,
            err
        );
        // only the call/ret and counter-read overhead may differ
        if err.unsigned_abs() > 32 {
            ok = false;
        }
    }
    exit(if ok { 0 } else { 1 })
}
