//! x86_64 kernels (AVX2).

use core::arch::x86_64::*;

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
    sum = sum.wrapping_add(crate::kernels::reference::dot_i8(&a[tail..n], &b[tail..n]));
    sum
}
