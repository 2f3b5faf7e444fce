//! x86_64 kernels (AVX2). With AVX2 enabled for the whole build they are called directly; with
//! the `std` feature the CPU is asked once per process (cached); otherwise the reference kernels
//! run.

use core::arch::x86_64::*;

use crate::kernels::reference;

/// This module's variant name (a run-time choice when the build has `std` but not AVX2).
#[cfg(target_feature = "avx2")]
pub const VARIANT: &str = "x86_64-avx2";
/// This module's variant name (a run-time choice when the build has `std` but not AVX2).
#[cfg(all(not(target_feature = "avx2"), feature = "std"))]
pub const VARIANT: &str = "x86_64-avx2-if-detected";
/// This module's variant name (a run-time choice when the build has `std` but not AVX2).
#[cfg(all(not(target_feature = "avx2"), not(feature = "std")))]
pub const VARIANT: &str = "portable";

/// Whether the AVX2 kernels run: fixed at build time, or detected once per process.
#[inline]
fn avx2() -> bool {
    #[cfg(target_feature = "avx2")]
    {
        true
    }
    #[cfg(all(not(target_feature = "avx2"), feature = "std"))]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        // 0: not asked yet, 1: no, 2: yes.
        static DETECTED: AtomicU8 = AtomicU8::new(0);
        match DETECTED.load(Ordering::Relaxed) {
            0 => {
                let yes = std::is_x86_feature_detected!("avx2");
                DETECTED.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
            v => v == 2,
        }
    }
    #[cfg(all(not(target_feature = "avx2"), not(feature = "std")))]
    {
        false
    }
}

/// The variant this process runs: `x86_64-avx2` or `portable`.
pub fn variant() -> &'static str {
    if avx2() {
        "x86_64-avx2"
    } else {
        "portable"
    }
}

/// `Σ a[i]·b[i]` over int8 with the variant this process runs.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    if avx2() {
        // SAFETY: `avx2()` says the CPU has AVX2.
        unsafe { dot_i8_avx2(a, b) }
    } else {
        reference::dot_i8(a, b)
    }
}

/// [`crate::kernels::rows_i8_with`], the CPU asked once per call rather than once per row.
pub fn rows_i8(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    if avx2() {
        // SAFETY: `avx2()` says the CPU has AVX2.
        unsafe { rows_i8_avx2(q, scales, cols, xq, sx, bias, out) }
    } else {
        crate::kernels::rows_i8_with(reference::dot_i8, q, scales, cols, xq, sx, bias, out)
    }
}

/// The row loop compiled for AVX2, so the dot product inlines into it.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn rows_i8_avx2(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    crate::kernels::rows_i8_with(
        // SAFETY: this function only runs on a CPU with AVX2 (its own contract).
        |a, b| unsafe { dot_i8_avx2(a, b) },
        q,
        scales,
        cols,
        xq,
        sx,
        bias,
        out,
    )
}

/// `Σ a[i]·b[i]` with AVX2: sign-extend 16 bytes to i16 lanes, `vpmaddwd` into i32 lanes.
/// Exact, hence equal to [`crate::kernels::reference::dot_i8`].
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let chunks = n / 16;
    let mut acc = _mm256_setzero_si256();
    for i in 0..chunks {
        // SAFETY: i * 16 + 16 <= n <= a.len(), b.len(); unaligned loads are allowed.
        let (va, vb) = unsafe {
            (
                _mm_loadu_si128(a.as_ptr().add(i * 16) as *const __m128i),
                _mm_loadu_si128(b.as_ptr().add(i * 16) as *const __m128i),
            )
        };
        let wa = _mm256_cvtepi8_epi16(va);
        let wb = _mm256_cvtepi8_epi16(vb);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(wa, wb));
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 bytes; unaligned store is allowed.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc) };
    let mut sum = lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v));
    let tail = chunks * 16;
    sum = sum.wrapping_add(reference::dot_i8(&a[tail..n], &b[tail..n]));
    sum
}
