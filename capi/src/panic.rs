//! Panics at the C boundary: [`guard`] around every entry point (hosted targets catch the unwind)
//! and, on bare metal, the panic handler (see the crate docs).

use crate::status::runnel_status::{self, *};

/// Runs an entry point's body; with std, a panic becomes `RUNNEL_ERR_INTERNAL` instead of
/// unwinding into C.
#[cfg(not(target_os = "none"))]
pub(crate) fn guard(body: impl FnOnce() -> Result<(), runnel_status>) -> runnel_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => RUNNEL_OK,
        Ok(Err(status)) => status,
        Err(_) => RUNNEL_ERR_INTERNAL,
    }
}

/// Runs an entry point's body (bare metal: panics abort, see the crate docs).
#[cfg(target_os = "none")]
#[inline(always)]
pub(crate) fn guard(body: impl FnOnce() -> Result<(), runnel_status>) -> runnel_status {
    match body() {
        Ok(()) => RUNNEL_OK,
        Err(status) => status,
    }
}

// ------------------------------------------------------------------------------------------------
// Bare metal
// ------------------------------------------------------------------------------------------------

/// Unreachable by construction (see the crate docs). Should it ever run, it stops the core with a
/// permanently undefined instruction — a HardFault on Cortex-M that the firmware's handler
/// reports — rather than returning into C.
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(any(target_arch = "arm", target_arch = "riscv32"))]
    // SAFETY: `udf` / `unimp` only raises an exception; it touches no memory and does not
    // return (`noreturn`).
    unsafe {
        #[cfg(target_arch = "arm")]
        core::arch::asm!("udf #0xfe", options(noreturn, nomem, nostack));
        #[cfg(target_arch = "riscv32")]
        core::arch::asm!("unimp", options(noreturn, nomem, nostack));
    }
    #[cfg(not(any(target_arch = "arm", target_arch = "riscv32")))]
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status() {
        assert_eq!(guard(|| panic!("boom")), RUNNEL_ERR_INTERNAL);
        assert_eq!(guard(|| Err(RUNNEL_ERR_NULL)), RUNNEL_ERR_NULL);
        assert_eq!(guard(|| Ok(())), RUNNEL_OK);
    }
}
