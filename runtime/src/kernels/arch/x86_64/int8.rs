//! int8 rows (`out[r] = dot(q[r], xq) · (scales[r] · sx) + bias[r]`) four rows per pass: the
//! quantized input is loaded (and with AVX2 sign-extended) once per block of columns for all four
//! rows, and the four i32 sums are reduced together. The sums are exact integers, so the result is
//! bit-identical to [`crate::kernels::rows_i8_with`] over the reference dot product (same float
//! rescale expression per row).

use core::arch::x86_64::*;

use crate::kernels::reference;

/// The rescale every int8 row loop ends with (kept in one place so every variant rounds alike).
#[inline(always)]
fn finish(dot: i32, scale: f32, sx: f32, bias: f32) -> f32 {
    dot as f32 * (scale * sx) + bias
}

/// The reference's edge cases ([`reference::rows_i8`]): with `xq` shorter than `cols` nothing is
/// written, with `cols == 0` every row is its bias (an empty dot product); both return `None`.
/// Otherwise the number of rows to compute (limited by every slice).
#[inline(always)]
fn edge_cases(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) -> Option<usize> {
    if xq.len() < cols {
        return None;
    }
    if cols == 0 {
        for ((o, &s), &b) in out.iter_mut().zip(scales).zip(bias) {
            *o = finish(0, s, sx, b);
        }
        return None;
    }
    Some(
        out.len()
            .min(scales.len())
            .min(bias.len())
            .min(q.len() / cols),
    )
}

/// Four i32 vectors reduced to their four lane sums `[Σa, Σb, Σc, Σd]` (exact).
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sum4(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> [i32; 4] {
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    let mut v = [0i32; 4];
    // SAFETY: `v` holds 16 bytes; unaligned store.
    unsafe { _mm_storeu_si128(v.as_mut_ptr().cast::<__m128i>(), s) };
    v
}

/// AVX2: 16 columns per iteration, `vpmovsxbw` + `vpmaddwd`, four rows per pass.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn rows_i8_avx2(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    let Some(n) = edge_cases(q, scales, cols, xq, sx, bias, out) else {
        return;
    };
    let k = cols;
    let body = k - k % 16;
    let xp = xq.as_ptr();
    let tail = |r: usize| reference::dot_i8(&q[r * cols + body..r * cols + k], &xq[body..k]);
    let mut r = 0;
    while r + 4 <= n {
        let p = q[r * cols..].as_ptr();
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < body {
            // SAFETY: i + 16 <= body <= k <= cols, xq.len(); rows r..r+4 lie in `q`.
            unsafe {
                let x = _mm256_cvtepi8_epi16(_mm_loadu_si128(xp.add(i).cast()));
                for (j, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(j * cols + i).cast()));
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(w, x));
                }
            }
            i += 16;
        }
        // SAFETY: AVX2 (this function's contract).
        let sums = unsafe { sum4(acc[0], acc[1], acc[2], acc[3]) };
        for (j, &s) in sums.iter().enumerate() {
            out[r + j] = finish(s.wrapping_add(tail(r + j)), scales[r + j], sx, bias[r + j]);
        }
        r += 4;
    }
    for r in r..n {
        // SAFETY: AVX2 (this function's contract).
        let d = unsafe { super::dot_i8_avx2(&q[r * cols..r * cols + k], &xq[..k]) };
        out[r] = finish(d, scales[r], sx, bias[r]);
    }
}

/// `acc + Σ` over each group of four bytes of `u8(u)·i8(x)` (`vpdpbusd`, AVX-512 VNNI + VL),
/// written as assembly so the crate's minimum Rust version need not know AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 VNNI and AVX-512 VL.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dpbusd(acc: __m256i, u: __m256i, x: __m256i) -> __m256i {
    let mut acc = acc;
    // SAFETY: register-only instruction the caller's CPU has (its contract); no memory, no flags.
    unsafe {
        core::arch::asm!(
            "vpdpbusd {a}, {u}, {x}",
            a = inout(ymm_reg) acc,
            u = in(ymm_reg) u,
            x = in(ymm_reg) x,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// AVX-512 VNNI on 256-bit vectors: `vpdpbusd` multiplies unsigned by signed bytes, 32 columns
/// per instruction. The weights are made unsigned by flipping their sign bit (`w + 128`), so each
/// sum is `Σ w·x + 128·Σ x`; `Σ x` is computed once per call and subtracted. Exact: no lane can
/// overflow (`|Σ| ≤ 255·128·cols/8` per lane, far below 2^31 for any `cols ≤ 2^16`).
///
/// # Safety
/// The CPU must support AVX2, AVX-512 VNNI and AVX-512 VL.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn rows_i8_vnni(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    let Some(n) = edge_cases(q, scales, cols, xq, sx, bias, out) else {
        return;
    };
    let k = cols;
    let body = k - k % 32;
    let xp = xq.as_ptr();
    let flip = _mm256_set1_epi8(-128);
    // 128 · Σ x over the body: what the flipped weights add to every row's sum.
    let bias128 = 128 * xq[..body].iter().map(|&v| v as i32).sum::<i32>();
    let tail = |r: usize| reference::dot_i8(&q[r * cols + body..r * cols + k], &xq[body..k]);
    let mut r = 0;
    while r + 4 <= n {
        let p = q[r * cols..].as_ptr();
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < body {
            // SAFETY: i + 32 <= body <= k <= cols, xq.len(); rows r..r+4 lie in `q`.
            unsafe {
                let x = _mm256_loadu_si256(xp.add(i).cast());
                for (j, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_loadu_si256(p.add(j * cols + i).cast());
                    *a = dpbusd(*a, _mm256_xor_si256(w, flip), x);
                }
            }
            i += 32;
        }
        // SAFETY: AVX2 (this function's contract).
        let sums = unsafe { sum4(acc[0], acc[1], acc[2], acc[3]) };
        for (j, &s) in sums.iter().enumerate() {
            let d = s.wrapping_sub(bias128).wrapping_add(tail(r + j));
            out[r + j] = finish(d, scales[r + j], sx, bias[r + j]);
        }
        r += 4;
    }
    for r in r..n {
        // SAFETY: AVX2 (this function's contract).
        let d = unsafe { super::dot_i8_avx2(&q[r * cols..r * cols + k], &xq[..k]) };
        out[r] = finish(d, scales[r], sx, bias[r]);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use crate::kernels::reference;
    use crate::kernels::tests::Rng;

    type Rows = unsafe fn(&[i8], &[f32], usize, &[i8], f32, &[f32], &mut [f32]);

    /// Every variant this CPU can run against the reference row loop, bit for bit, including
    /// the extreme bytes (−128 weights, where a sign trick would overflow) and every tail.
    #[test]
    fn x86_row_kernels_are_bit_identical_to_the_reference() {
        let mut variants: Vec<(&str, Rows)> = Vec::new();
        if std::is_x86_feature_detected!("avx2") {
            variants.push(("avx2x4", super::rows_i8_avx2));
        }
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl")
        {
            variants.push(("vnni", super::rows_i8_vnni));
        }
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            for rows in [1usize, 3, 4, 5, 8, 11] {
                for cols in [1usize, 15, 16, 31, 32, 33, 64, 96, 100, 192] {
                    let extreme = seed % 4 == 0;
                    let byte = |rng: &mut Rng| {
                        if extreme {
                            [-128i8, 127][(rng.next_u64() & 1) as usize]
                        } else {
                            rng.i8()
                        }
                    };
                    let q: Vec<i8> = (0..rows * cols).map(|_| byte(&mut rng)).collect();
                    let xq: Vec<i8> = (0..cols).map(|_| byte(&mut rng)).collect();
                    let scales: Vec<f32> = (0..rows).map(|_| rng.f32().abs() * 0.01).collect();
                    let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
                    let sx = rng.f32().abs() * 0.1;
                    let mut want = std::vec![0f32; rows];
                    reference::rows_i8(&q, &scales, cols, &xq, sx, &bias, &mut want);
                    for &(name, f) in &variants {
                        let mut got = std::vec![0f32; rows];
                        // SAFETY: registered only after the CPU reported its features.
                        unsafe { f(&q, &scales, cols, &xq, sx, &bias, &mut got) };
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{name} {rows}x{cols} seed={seed}");
                    }
                }
            }
        }
    }

    /// The reference's edge cases: `cols == 0`, `xq` shorter than `cols`, `out` longer or shorter
    /// than the rows, short `scales`/`bias`; rows not written must keep their value.
    #[test]
    fn x86_row_kernels_keep_the_reference_edge_cases() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut variants: Vec<(&str, Rows)> = std::vec![("avx2x4", super::rows_i8_avx2)];
        if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512vl")
        {
            variants.push(("vnni", super::rows_i8_vnni));
        }
        let mut rng = Rng::new(11);
        let q: Vec<i8> = (0..40 * 9).map(|_| rng.i8()).collect();
        let xq: Vec<i8> = (0..40).map(|_| rng.i8()).collect();
        let scales: Vec<f32> = (0..12).map(|_| rng.f32().abs() * 0.01).collect();
        let bias: Vec<f32> = (0..12).map(|_| rng.f32()).collect();
        // (cols, xq len, scales len, bias len, out len)
        for (cols, xl, sl, bl, ol) in [
            (0, 0, 12, 12, 12),
            (40, 39, 12, 12, 9),
            (40, 40, 12, 12, 12),
            (40, 40, 5, 12, 9),
            (40, 40, 12, 3, 9),
            (36, 40, 12, 12, 2),
        ] {
            let mut want = std::vec![12345.5f32; ol];
            reference::rows_i8(
                &q,
                &scales[..sl],
                cols,
                &xq[..xl],
                0.3,
                &bias[..bl],
                &mut want,
            );
            for &(name, f) in &variants {
                let mut got = std::vec![12345.5f32; ol];
                // SAFETY: registered only after the CPU reported its features.
                unsafe {
                    f(
                        &q,
                        &scales[..sl],
                        cols,
                        &xq[..xl],
                        0.3,
                        &bias[..bl],
                        &mut got,
                    )
                };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{name} cols={cols} xq={xl} out={ol}"
                );
            }
        }
    }
}
