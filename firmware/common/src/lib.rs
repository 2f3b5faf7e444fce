//! Board-independent parts of the runnel demo firmware.
//!
//! * [`checksum`]: the FNV-1a checksum of an `f32` row (the one definition
//!   used by every board and by host-side tools).
//! * [`stack`]: stack painting and high-water-mark measurement.
//! * [`InstrCounter`]: the instruction / cycle counter each board provides.
//! * [`demo`]: the step loop that runs a [`demo::Workload`] and reports per
//!   step over `defmt`.
//! * [`placeholder`]: an int8 workload used until the runtime is wired in.
#![no_std]

pub mod calibrate;
pub mod checksum;
pub mod demo;
pub mod placeholder;
pub mod stack;

pub use checksum::{fnv1a_f32, fnv1a_i32, Fnv1a};

/// A monotonically increasing counter that measures how much work the CPU did.
///
/// Boards implement it with whatever is exact on that board:
///
/// | board            | source                       | unit                 | resolution |
/// |------------------|------------------------------|----------------------|------------|
/// | QEMU virt rv32   | `minstret` (+ `-icount`)     | instructions         | 1          |
/// | QEMU mps2-an386  | SysTick on the CPU clock     | instructions (≈)     | 40         |
/// | RP2350 Hazard3   | `minstret`                   | instructions         | 1          |
/// | nRF52840         | DWT `CYCCNT`                 | cycles               | 1          |
pub trait InstrCounter {
    /// Current counter value, converted to [`Self::UNIT`].
    fn now(&mut self) -> u64;
    /// What one count means, e.g. `"instructions"` or `"cycles"`.
    const UNIT: &'static str;
    /// Granularity of [`Self::now`] in [`Self::UNIT`] (1 = exact).
    const RESOLUTION: u32;
}
