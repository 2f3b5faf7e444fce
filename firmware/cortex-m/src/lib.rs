//! Cortex-M support for the runnel demo firmware: counters, stack region,
//! exit, panic and HardFault handling. The defmt transport is chosen by each
//! binary (`defmt-semihosting` under QEMU, `defmt-rtt` on real boards).
#![no_std]

use core::sync::atomic::{compiler_fence, Ordering};

pub use cortex_m;
pub use cortex_m_rt;
use runnel_fw_common::stack::StackRegion;
use runnel_fw_common::InstrCounter;

/// The stack as laid out by cortex-m-rt: from `_stack_end` (end of
/// .bss/.uninit) up to `_stack_start` (initial MSP).
pub fn stack_region() -> StackRegion {
    extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    // SAFETY: linker-provided symbols; only their addresses are used.
    {
        StackRegion {
            bottom: core::ptr::addr_of!(_stack_end) as usize,
            top: core::ptr::addr_of!(_stack_start) as usize,
        }
    }
}

/// Instruction counter for QEMU's mps2-an386, from SysTick.
///
/// The DWT cycle counter reads 0 under QEMU, but SysTick is emulated on the
/// board's 25 MHz CPU clock (`CLKSOURCE` = processor clock) in *virtual*
/// time. With `-icount shift=0` every guest instruction advances virtual time
/// by exactly 1 ns, so one tick is 40 ns = 40 instructions: counts are
/// deterministic and exact to within one tick (resolution 40 instructions).
///
/// The 24-bit down-counter is extended in software, so `now()` must be called
/// at least once every 2^24 ticks (≈ 671 M instructions).
pub struct SysTickCounter {
    last: u32,
    ticks: u64,
}

/// Instructions per SysTick tick under `qemu -machine mps2-an386 -icount shift=0`.
pub const QEMU_MPS2_INSTR_PER_TICK: u32 = 40;

impl SysTickCounter {
    /// Take SysTick and start it free-running (no interrupt).
    pub fn start(mut syst: cortex_m::peripheral::SYST) -> Self {
        use cortex_m::peripheral::syst::SystClkSource;
        syst.disable_counter();
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        // `syst` is consumed: SysTick keeps running and `now()` reads it through
        // the static register block.
        SysTickCounter {
            last: cortex_m::peripheral::SYST::get_current(),
            ticks: 0,
        }
    }
}

impl InstrCounter for SysTickCounter {
    const UNIT: &'static str = "instructions";
    const RESOLUTION: u32 = QEMU_MPS2_INSTR_PER_TICK;

    #[inline(always)]
    fn now(&mut self) -> u64 {
        compiler_fence(Ordering::SeqCst);
        let v = cortex_m::peripheral::SYST::get_current();
        compiler_fence(Ordering::SeqCst);
        // down-counter: elapsed = last - v (mod 2^24)
        self.ticks += (self.last.wrapping_sub(v) & 0x00FF_FFFF) as u64;
        self.last = v;
        self.ticks * QEMU_MPS2_INSTR_PER_TICK as u64
    }
}

/// CPU cycle counter for real Cortex-M3/M4/M7 silicon (DWT `CYCCNT`), extended
/// to 64 bits in software: call `now()` at least once every 2^32 cycles.
pub struct DwtCycleCounter {
    last: u32,
    cycles: u64,
}

impl DwtCycleCounter {
    pub fn start(dcb: &mut cortex_m::peripheral::DCB, dwt: &mut cortex_m::peripheral::DWT) -> Self {
        dcb.enable_trace();
        dwt.enable_cycle_counter();
        DwtCycleCounter {
            last: cortex_m::peripheral::DWT::cycle_count(),
            cycles: 0,
        }
    }
}

impl InstrCounter for DwtCycleCounter {
    const UNIT: &'static str = "cycles";
    const RESOLUTION: u32 = 1;

    #[inline(always)]
    fn now(&mut self) -> u64 {
        compiler_fence(Ordering::SeqCst);
        let v = cortex_m::peripheral::DWT::cycle_count();
        compiler_fence(Ordering::SeqCst);
        self.cycles += v.wrapping_sub(self.last) as u64;
        self.last = v;
        self.cycles
    }
}

/// Terminate: semihosting `SYS_EXIT_EXTENDED` with `code` (QEMU exits with
/// that status; probe-rs ends `probe-rs run`). Without a debugger attached the
/// semihosting breakpoint faults, and the core ends up in [`HardFault`].
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Exit status used after a panic.
pub const EXIT_PANIC: i32 = 101;
/// Exit status used after a HardFault.
pub const EXIT_HARDFAULT: i32 = 102;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    exit(EXIT_PANIC)
}

#[cortex_m_rt::exception]
unsafe fn HardFault(ef: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault pc={=u32:#010x} lr={=u32:#010x}",
        ef.pc(),
        ef.lr()
    );
    exit(EXIT_HARDFAULT)
}
