//! Targets without a specialised kernel (e.g. Cortex-M0+/M3, AArch64): the reference kernels.

/// This module's variant name.
pub const VARIANT: &str = "portable";

/// [`VARIANT`].
pub fn variant() -> &'static str {
    VARIANT
}

pub use crate::kernels::reference::dot_i8;

/// [`crate::kernels::rows_i8_with`] over [`dot_i8`].
#[inline(always)]
pub fn rows_i8(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    crate::kernels::rows_i8_with(dot_i8, q, scales, cols, xq, sx, bias, out)
}
