//! Checks the SysTick -> instruction conversion under QEMU mps2-an386 with
//! `-icount shift=0`: times loops with a known instruction count and prints
//! measured vs. expected. Exits 0 if every measurement is within one tick.
//!
//!     cargo run --release --target thumbv7em-none-eabihf -p runnel-fw-cortex-m --example systick_calibrate
#![no_std]
#![no_main]

use defmt_semihosting as _;
use runnel_fw_common::calibrate::calibrate;
use runnel_fw_cortex_m::{exit, SysTickCounter, QEMU_MPS2_INSTR_PER_TICK};

/// n iterations of (subs, bne) = 2n instructions, plus the call overhead.
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
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
    // allow one tick of quantisation plus call/read overhead
    let ok = calibrate(&mut c, spin, 2 * QEMU_MPS2_INSTR_PER_TICK as u64 + 64);
    exit(if ok { 0 } else { 1 })
}
