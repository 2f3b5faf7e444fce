//! f32 and f16 matrix × vector with AVX (and F16C for f16), four rows per pass.
//!
//! Bit-identical to the portable kernels: an `__m256` accumulator holds exactly runnel's eight
//! partial sums (lane `j` adds the products `i ≡ j (mod 8)` in increasing `i`, multiply then add,
//! no FMA), two `vhaddps` rounds combine them as `((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7))` — for
//! four rows at once — and the last `cols % 8` products are added in order, then the bias.
//! See [`crate::kernels::reference::ordered_sum`].

use core::arch::x86_64::*;

use super::{cpu, has};

/// `out[r] = W[r]·x + bias[r]` for f32 `d: [rows * cols]`. Returns `false` (nothing written)
/// when the CPU lacks AVX; the caller then runs the portable kernel.
#[inline]
pub fn matvec_f32(d: &[f32], cols: usize, x: &[f32], bias: &[f32], out: &mut [f32]) -> bool {
    if cpu() & has::AVX == 0 {
        return false;
    }
    // SAFETY: the CPU has AVX (checked above).
    unsafe { matvec_f32_avx(d, cols, x, bias, out) };
    true
}

/// As [`matvec_f32`] for f16 weights; needs AVX and F16C.
#[inline]
pub fn matvec_f16(d: &[half::f16], cols: usize, x: &[f32], bias: &[f32], out: &mut [f32]) -> bool {
    if cpu() & has::F16C == 0 {
        return false;
    }
    // SAFETY: the CPU has AVX and F16C (checked above).
    unsafe { matvec_f16_f16c(d, cols, x, bias, out) };
    true
}

/// Eight f32 weights from `p`.
///
/// # Safety
/// AVX; `p` points to 8 readable f32.
#[inline]
#[target_feature(enable = "avx")]
unsafe fn load_f32(p: *const f32) -> __m256 {
    // SAFETY: the caller's contract.
    unsafe { _mm256_loadu_ps(p) }
}

/// Eight f16 weights from `p`, converted exactly to f32.
///
/// # Safety
/// AVX and F16C; `p` points to 8 readable f16.
#[inline]
#[target_feature(enable = "avx,f16c")]
unsafe fn load_f16(p: *const half::f16) -> __m256 {
    // SAFETY: the caller's contract.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast::<__m128i>())) }
}

/// The matrix-level kernel for one weight type: `$load` reads 8 weights as f32, `$scalar`
/// converts one (for the tail).
macro_rules! matvec_avx {
    ($(#[$doc:meta])* $name:ident, $t:ty, $features:literal, $load:ident, $scalar:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must have the features named in `target_feature`.
        #[target_feature(enable = $features)]
        unsafe fn $name(d: &[$t], cols: usize, x: &[f32], bias: &[f32], out: &mut [f32]) {
            let k = cols.min(x.len()); // the dot length, as the portable `dot` takes it
            let body = k - k % 8;
            let rows = out.len().min(bias.len()).min(d.len().checked_div(cols).unwrap_or(0));
            let (x, xt) = x[..k].split_at(body);
            let xp = x.as_ptr();
            // The tail of row `r`, added in order after the combined lanes.
            let tail = |r: usize, mut s: f32| {
                for (t, &xv) in xt.iter().enumerate() {
                    s += $scalar(d[r * cols + body + t]) * xv;
                }
                s
            };
            let mut r = 0;
            while r + 4 <= rows {
                // SAFETY: rows r..r+4 lie inside `d` (`rows * cols <= d.len()`).
                let p = unsafe { d.as_ptr().add(r * cols) };
                let mut a0 = _mm256_setzero_ps();
                let mut a1 = _mm256_setzero_ps();
                let mut a2 = _mm256_setzero_ps();
                let mut a3 = _mm256_setzero_ps();
                let mut i = 0;
                while i < body {
                    // SAFETY: i + 8 <= body <= cols for every row, and <= x.len().
                    unsafe {
                        let xv = _mm256_loadu_ps(xp.add(i));
                        a0 = _mm256_add_ps(a0, _mm256_mul_ps($load(p.add(i)), xv));
                        a1 = _mm256_add_ps(a1, _mm256_mul_ps($load(p.add(cols + i)), xv));
                        a2 = _mm256_add_ps(a2, _mm256_mul_ps($load(p.add(2 * cols + i)), xv));
                        a3 = _mm256_add_ps(a3, _mm256_mul_ps($load(p.add(3 * cols + i)), xv));
                    }
                    i += 8;
                }
                // [a0+a1, a2+a3 (row 0), same for row 1 | a4+a5, a6+a7 (row 0), row 1]
                let h01 = _mm256_hadd_ps(a0, a1);
                let h23 = _mm256_hadd_ps(a2, a3);
                // [(s0+s1)+(s2+s3) of rows 0..4 | (s4+s5)+(s6+s7) of rows 0..4]
                let h = _mm256_hadd_ps(h01, h23);
                let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
                let mut sums = [0f32; 4];
                // SAFETY: `sums` holds 4 f32; unaligned store.
                unsafe { _mm_storeu_ps(sums.as_mut_ptr(), s) };
                for (j, &s) in sums.iter().enumerate() {
                    out[r + j] = tail(r + j, s) + bias[r + j];
                }
                r += 4;
            }
            while r < rows {
                // SAFETY: row r lies inside `d`.
                let p = unsafe { d.as_ptr().add(r * cols) };
                let mut a = _mm256_setzero_ps();
                let mut i = 0;
                while i < body {
                    // SAFETY: as above.
                    unsafe { a = _mm256_add_ps(a, _mm256_mul_ps($load(p.add(i)), _mm256_loadu_ps(xp.add(i)))) };
                    i += 8;
                }
                let h = _mm256_hadd_ps(a, a);
                let h = _mm256_hadd_ps(h, h);
                let s = _mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
                out[r] = tail(r, _mm_cvtss_f32(s)) + bias[r];
                r += 1;
            }
        }
    };
}

matvec_avx!(
    /// f32 weights, AVX.
    matvec_f32_avx, f32, "avx", load_f32, |v: f32| v
);
matvec_avx!(
    /// f16 weights, AVX + F16C.
    matvec_f16_f16c, half::f16, "avx,f16c", load_f16, |v: half::f16| v.to_f32()
);

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use crate::kernels::reference;
    use crate::kernels::tests::Rng;

    /// Every shape class: rows below, at and past a block of 4; columns with and without a tail.
    #[test]
    fn avx_matvecs_are_bit_identical_to_the_reference_rows() {
        if !std::is_x86_feature_detected!("avx") || !std::is_x86_feature_detected!("f16c") {
            return; // nothing to check on this CPU (the portable kernel runs)
        }
        for seed in 0..if cfg!(miri) { 1 } else { 20 } {
            let mut rng = Rng::new(seed);
            for rows in [1usize, 3, 4, 5, 8, 13] {
                for cols in [1usize, 7, 8, 9, 24, 96, 100] {
                    let w: Vec<f32> = (0..rows * cols).map(|_| rng.f32() * 3.0).collect();
                    let h: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
                    let x: Vec<f32> = (0..cols).map(|_| rng.f32() * 5.0).collect();
                    let b: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
                    let mut o32 = std::vec![0f32; rows];
                    let mut o16 = std::vec![0f32; rows];
                    // SAFETY: AVX and F16C detected above.
                    unsafe {
                        super::matvec_f32_avx(&w, cols, &x, &b, &mut o32);
                        super::matvec_f16_f16c(&h, cols, &x, &b, &mut o16);
                    }
                    for r in 0..rows {
                        let row = r * cols..(r + 1) * cols;
                        let e32 = reference::dot_f32(&w[row.clone()], &x) + b[r];
                        let e16 = reference::dot_f16_f32(&h[row], &x) + b[r];
                        assert_eq!(o32[r].to_bits(), e32.to_bits(), "f32 {rows}x{cols} row {r}");
                        assert_eq!(o16[r].to_bits(), e16.to_bits(), "f16 {rows}x{cols} row {r}");
                    }
                }
            }
        }
    }
}
