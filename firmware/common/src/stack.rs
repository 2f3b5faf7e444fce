//! Stack painting and high-water-mark measurement.
//!
//! Call [`paint`] once, early in `main`, with the board's stack region: it
//! fills every word between the bottom of the stack and (just below) the
//! current stack pointer with [`PAINT`]. Later, [`high_water`] scans upward
//! from the bottom for the first word that is no longer [`PAINT`]; everything
//! above it has been used at some point, so `top - that_address` is the peak
//! stack depth in bytes (including what startup code and `main`'s own frame
//! used before painting).
//!
//! Single-core, no interrupts using a separate stack: fine for all boards here
//! (Cortex-M exceptions run on the same MSP and are counted too).

/// Fill pattern. Chosen to be an unlikely value for pointers and small ints.
pub const PAINT: u32 = 0xC5AC_CE55;

/// Bytes left unpainted directly below the stack pointer at painting time.
const GUARD: usize = 64;

/// A full-descending stack occupying `[bottom, top)`.
#[derive(Clone, Copy, Debug)]
pub struct StackRegion {
    /// Lowest address the stack may grow down to (inclusive).
    pub bottom: usize,
    /// Initial stack pointer (exclusive upper end).
    pub top: usize,
}

impl StackRegion {
    pub const fn size(&self) -> usize {
        self.top - self.bottom
    }
}

/// Current stack pointer.
#[inline(always)]
pub fn current_sp() -> usize {
    let sp: usize;
    #[cfg(any(target_arch = "arm", target_arch = "riscv32", target_arch = "riscv64"))]
    // SAFETY: reads the stack pointer register into a local; touches no memory.
    unsafe {
        #[cfg(target_arch = "arm")]
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
        #[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
        core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "arm", target_arch = "riscv32", target_arch = "riscv64")))]
    {
        // Host builds (unit tests): approximate with a local's address.
        let x = 0u8;
        sp = core::hint::black_box(&x) as *const u8 as usize;
    }
    sp
}

/// Paint `[region.bottom, sp - GUARD)` with [`PAINT`]. Returns the number of
/// bytes painted.
///
/// # Safety
/// `region` must describe this core's current stack, and no live data may be
/// stored below the stack pointer (true on Arm/RISC-V bare metal: there is no
/// red zone).
#[inline(never)]
pub unsafe fn paint(region: StackRegion) -> usize {
    let sp = current_sp();
    let end = (sp.saturating_sub(GUARD)) & !3;
    let start = (region.bottom + 3) & !3;
    let mut p = start;
    while p < end {
        core::ptr::write_volatile(p as *mut u32, PAINT);
        p += 4;
    }
    end.saturating_sub(start)
}

/// Peak stack usage in bytes since [`paint`] was called.
///
/// If the whole painted area was overwritten the result equals the region
/// size (the stack may have overflowed).
#[inline(never)]
pub fn high_water(region: StackRegion) -> usize {
    let mut p = (region.bottom + 3) & !3;
    while p < region.top {
        // SAFETY: reads inside the stack region, word aligned.
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT {
            break;
        }
        p += 4;
    }
    region.top - p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_and_measure_on_a_buffer() {
        // Simulate a stack in a buffer: paint all of it, then "use" 40 bytes.
        let mut buf = [0u32; 64];
        let bottom = buf.as_mut_ptr() as usize;
        let top = bottom + 64 * 4;
        let region = StackRegion { bottom, top };
        for w in buf.iter_mut() {
            *w = PAINT;
        }
        assert_eq!(high_water(region), 0);
        for w in buf[54..].iter_mut() {
            *w = 0;
        }
        assert_eq!(high_water(region), 40);
    }
}
