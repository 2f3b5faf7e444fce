//! The exact row sums of an int8 matrix with one int8 vector (`sums[r] = dot(q row r, xq)`),
//! four rows per pass: the input is loaded (and with AVX2 sign-extended) once per block of
//! columns for all four rows, and the four i32 sums are reduced together. Integer sums are exact,
//! so both kernels return exactly [`reference::dot_rows_i8`], edge cases included; the rescale to
//! f32 is the shared one ([`crate::kernels::rows_i8_via_sums`]).

use core::arch::x86_64::*;

use crate::kernels::reference;

/// The reference's edge cases: with `xq` shorter than `cols` nothing is written, with `cols == 0`
/// every sum is 0 (both give `None`); otherwise the rows to compute.
#[inline(always)]
fn rows(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) -> Option<usize> {
    if xq.len() < cols {
        return None;
    }
    if cols == 0 {
        sums.fill(0);
        return None;
    }
    Some(sums.len().min(q.len() / cols))
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

/// The sums of the rows `r..n` that do not fill a block of four, one AVX2 dot product each.
///
/// # Safety
/// AVX2; `n ≤ q.len() / cols`, `cols ≤ xq.len()`, `n ≤ sums.len()`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn last_rows(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32], r: usize, n: usize) {
    for r in r..n {
        // SAFETY: AVX2 (this function's contract).
        sums[r] = unsafe { super::dot_i8_avx2(&q[r * cols..(r + 1) * cols], &xq[..cols]) };
    }
}

/// AVX2: 16 columns per iteration, `vpmovsxbw` + `vpmaddwd`, four rows per pass.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_rows_i8_avx2(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let Some(n) = rows(q, cols, xq, sums) else {
        return;
    };
    let body = cols - cols % 16;
    let xp = xq.as_ptr();
    let tail = |r: usize| reference::dot_i8(&q[r * cols + body..(r + 1) * cols], &xq[body..cols]);
    let mut r = 0;
    while r + 4 <= n {
        let p = q[r * cols..].as_ptr();
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < body {
            // SAFETY: i + 16 <= body <= cols <= xq.len(); rows r..r+4 lie in `q`.
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
        let block = unsafe { sum4(acc[0], acc[1], acc[2], acc[3]) };
        for (j, &s) in block.iter().enumerate() {
            sums[r + j] = s.wrapping_add(tail(r + j));
        }
        r += 4;
    }
    // SAFETY: AVX2; `n` from `rows`.
    unsafe { last_rows(q, cols, xq, sums, r, n) };
}

/// `acc + Σ` over each group of four bytes of `u8(u)·i8(x)` (`vpdpbusd`, AVX-512 VNNI + VL),
/// written as assembly so the crate's minimum Rust version need not know AVX-512.
///
/// # Safety
/// The CPU must support AVX-512 VNNI and AVX-512 VL.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dpbusd(acc: __m256i, u: __m256i, x: __m256i) -> __m256i {
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
pub(crate) unsafe fn dot_rows_i8_vnni(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let Some(n) = rows(q, cols, xq, sums) else {
        return;
    };
    let body = cols - cols % 32;
    let xp = xq.as_ptr();
    let flip = _mm256_set1_epi8(-128);
    // 128 · Σ x over the body: what the flipped weights add to every row's sum.
    let bias128 = 128 * xq[..body].iter().map(|&v| v as i32).sum::<i32>();
    let tail = |r: usize| reference::dot_i8(&q[r * cols + body..(r + 1) * cols], &xq[body..cols]);
    let mut r = 0;
    while r + 4 <= n {
        let p = q[r * cols..].as_ptr();
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut i = 0;
        while i < body {
            // SAFETY: i + 32 <= body <= cols <= xq.len(); rows r..r+4 lie in `q`.
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
        let block = unsafe { sum4(acc[0], acc[1], acc[2], acc[3]) };
        for (j, &s) in block.iter().enumerate() {
            sums[r + j] = s.wrapping_sub(bias128).wrapping_add(tail(r + j));
        }
        r += 4;
    }
    // SAFETY: AVX2; `n` from `rows`.
    unsafe { last_rows(q, cols, xq, sums, r, n) };
}
