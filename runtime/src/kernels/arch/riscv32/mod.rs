//! RV32 kernels. RV32IMAC has no packed-SIMD instructions, so the gain here is only in the loop:
//! four products per iteration instead of one.

fixed_isa!("riscv32-unrolled", dot_i8_unrolled);

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
