//! RV32 kernels. RV32IMAC has no packed-SIMD instructions, so the gain here is only in the loop:
//! four products per iteration instead of one.

/// This module's variant name.
pub const VARIANT: &str = "riscv32-unrolled";

/// [`VARIANT`].
pub fn variant() -> &'static str {
    VARIANT
}

/// The int8 dot product of this instruction set.
pub use dot_i8_unrolled as dot_i8;

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

/// `Σ a[i]·b[i]`, four products per iteration. Exact, hence equal to
/// [`crate::kernels::reference::dot_i8`].
pub fn dot_i8_unrolled(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a4, at) = a[..n].split_at(n & !3);
    let (b4, bt) = b[..n].split_at(n & !3);
    let mut acc = 0i32;
    for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        acc += x[0] as i32 * y[0] as i32
            + x[1] as i32 * y[1] as i32
            + x[2] as i32 * y[2] as i32
            + x[3] as i32 * y[3] as i32;
    }
    acc + crate::kernels::reference::dot_i8(at, bt)
}
