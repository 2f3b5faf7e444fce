//! Checks the SysTick -> instruction conversion under QEMU mps2-an386 with
//! `-icount shift=0`: times loops with a known instruction count and prints
//! measured vs. expected. Exits 0 if every measurement is within one tick.
//!
//!     cargo run --release --target thumbv7em-none-eabihf -p runnel-fw-cortex-m --example systick_calibrate
#![no_std]
#![no_main]

use defmt_semihosting as _;
use runnel_fw_common::InstrCounter;
use runnel_fw_cortex_m::{exit, SysTickCounter, QEMU_MPS2_INSTR_PER_TICK};

/// n iterations of (subs, bne) = 2n instructions, plus the call overhead.
#[inline(never)]
fn spin(n: u32) {
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) n => _,
            options(nomem, nostack)
        );
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().unwrap();
    let mut c = SysTickCounter::start(cp.SYST);
    let mut ok = true;
    // overhead of two back-to-back reads
    let a = c.now();
    let b = c.now();
    defmt::info!("empty interval: {=u64} instructions", b - a);
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
        // allow one tick of quantisation plus call/read overhead
        if err.unsigned_abs() > 2 * QEMU_MPS2_INSTR_PER_TICK as u64 + 64 {
            ok = false;
        }
    }
    exit(if ok { 0 } else { 1 })
}
