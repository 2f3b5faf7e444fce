//! RISC-V support for the runnel demo firmware: counters, stack region,
//! exit, panic and exception handling. The defmt transport is chosen by each
//! binary (`defmt-semihosting` under QEMU, `defmt-rtt` on real boards).
#![no_std]

use core::sync::atomic::{compiler_fence, Ordering};

pub use riscv;
pub use riscv_rt;
use runnel_fw_common::stack::StackRegion;
use runnel_fw_common::InstrCounter;

/// The stack as laid out by riscv-rt: the `.stack` section, from `__estack`
/// (end of .bss/.uninit/.heap) up to `_stack_start` (initial sp).
pub fn stack_region() -> StackRegion {
    extern "C" {
        static __estack: u32;
        static _stack_start: u32;
    }
    StackRegion {
        bottom: core::ptr::addr_of!(__estack) as usize,
        top: core::ptr::addr_of!(_stack_start) as usize,
    }
}

/// Retired-instruction counter (`minstret`/`minstreth`, machine mode).
///
/// Exact under QEMU with `-icount` (QEMU then derives minstret from the
/// instruction count) and on RP2350's Hazard3 cores.
pub struct MinstretCounter(());

impl MinstretCounter {
    /// Make sure `minstret` counts: clear its bit in `mcountinhibit`
    /// (Hazard3 resets with the counters inhibited; harmless on QEMU).
    pub fn start() -> Self {
        // SAFETY: clearing the IR inhibit bit only enables counting.
        unsafe { core::arch::asm!("csrci 0x320, 0x4") }; // mcountinhibit.IR = 0
        MinstretCounter(())
    }
}

impl InstrCounter for MinstretCounter {
    const UNIT: &'static str = "instructions";
    const RESOLUTION: u32 = 1;

    #[inline(always)]
    fn now(&mut self) -> u64 {
        compiler_fence(Ordering::SeqCst);
        let v = riscv::register::minstret::read64();
        compiler_fence(Ordering::SeqCst);
        v
    }
}

/// Terminate: semihosting `SYS_EXIT_EXTENDED` with `code` (QEMU exits with
/// that status; probe-rs ends `probe-rs run`). Without a debugger attached the
/// semihosting `ebreak` traps into [`ExceptionHandler`], which parks the core.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Exit status used after a panic.
pub const EXIT_PANIC: i32 = 101;
/// Exit status used after an unexpected exception.
pub const EXIT_EXCEPTION: i32 = 102;

static IN_EXCEPTION: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    riscv::interrupt::disable();
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    exit(EXIT_PANIC)
}

/// Unexpected exception: log it and exit. A second exception while handling
/// one (e.g. the semihosting `ebreak` with no debugger) parks the core.
#[export_name = "ExceptionHandler"]
fn exception_handler(_tf: &riscv_rt::TrapFrame) -> ! {
    if IN_EXCEPTION.swap(true, Ordering::Relaxed) {
        loop {
            riscv::asm::wfi();
        }
    }
    let mcause = riscv::register::mcause::read().bits();
    let mepc = riscv::register::mepc::read();
    let mtval = riscv::register::mtval::read();
    defmt::error!(
        "exception mcause={=u32:#x} mepc={=u32:#010x} mtval={=u32:#010x}",
        mcause as u32,
        mepc as u32,
        mtval as u32
    );
    exit(EXIT_EXCEPTION)
}
