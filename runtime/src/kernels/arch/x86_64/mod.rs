//! x86_64 kernels (AVX2). With AVX2 enabled for the whole build they are called directly; with
//! the `std` feature the CPU is asked once per process (cached); otherwise the reference kernels
//! run.

use core::arch::x86_64::*;

use crate::kernels::reference;

mod float;
mod int8;
pub(crate) mod integer;
pub(crate) mod vmath;
pub use float::{matvec_f16, matvec_f32};

/// This module's variant name (a run-time choice when the build has `std` but not AVX2).
#[cfg(target_feature = "avx2")]
pub const VARIANT: &str = "x86_64-avx2";
/// This module's variant name (a run-time choice when the build has `std` but not AVX2).
#[cfg(all(not(target_feature = "avx2"), feature = "std"))]
pub const VARIANT: &str = "x86_64-avx2-if-detected";
/// This module's variant name (a run-time choice when the build has `std` but not AVX2).
#[cfg(all(not(target_feature = "avx2"), not(feature = "std")))]
pub const VARIANT: &str = "portable";

/// CPU features the kernels use, as bits of [`cpu`].
pub(crate) mod has {
    /// AVX2 (int8 kernels).
    pub const AVX2: u8 = 1;
    /// AVX (8-lane f32 kernels).
    pub const AVX: u8 = 2;
    /// AVX and F16C (f16 → f32 conversion, 8 at a time).
    pub const F16C: u8 = 4;
    /// AVX2, AVX-512 VNNI and AVX-512 VL (`vpdpbusd` on 256-bit vectors).
    pub const VNNI: u8 = 8;
}

/// The features of [`has`] this process may use: those the build enables, plus with the `std`
/// feature those the CPU reports (asked once per process, then cached).
#[inline]
pub(crate) fn cpu() -> u8 {
    let built = (if cfg!(target_feature = "avx2") {
        has::AVX2
    } else {
        0
    }) | (if cfg!(target_feature = "avx") {
        has::AVX
    } else {
        0
    }) | (if cfg!(all(target_feature = "avx", target_feature = "f16c")) {
        has::F16C
    } else {
        0
    });
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        // bit 7: asked already
        static DETECTED: AtomicU8 = AtomicU8::new(0);
        let mut d = DETECTED.load(Ordering::Relaxed);
        if d == 0 {
            d =
                0x80 | (if std::is_x86_feature_detected!("avx2") {
                    has::AVX2
                } else {
                    0
                }) | (if std::is_x86_feature_detected!("avx") {
                    has::AVX
                } else {
                    0
                }) | (if std::is_x86_feature_detected!("avx")
                    && std::is_x86_feature_detected!("f16c")
                {
                    has::F16C
                } else {
                    0
                }) | (if std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("avx512vnni")
                    && std::is_x86_feature_detected!("avx512vl")
                {
                    has::VNNI
                } else {
                    0
                });
            DETECTED.store(d, Ordering::Relaxed);
        }
        built | (d & 0x7f)
    }
    #[cfg(not(feature = "std"))]
    {
        built
    }
}

/// Whether the AVX2 kernels run: fixed at build time, or detected once per process.
#[inline]
fn avx2() -> bool {
    cpu() & has::AVX2 != 0
}

/// The int8 variant this process runs: `x86_64-avx512vnni`, `x86_64-avx2` or `portable`.
pub fn variant() -> &'static str {
    let f = cpu();
    if f & has::VNNI != 0 {
        "x86_64-avx512vnni"
    } else if f & has::AVX2 != 0 {
        "x86_64-avx2"
    } else {
        "portable"
    }
}

/// Runs one of [`vmath`]'s eight-lane kernels over `x` when the CPU has AVX2; `false` (nothing
/// done) without it.
#[inline]
fn with_avx2(x: &mut [f32], kernel: unsafe fn(&mut [f32])) -> bool {
    if cpu() & has::AVX2 == 0 {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above), all these kernels need.
    unsafe { kernel(x) };
    true
}

/// `x[i] = libm::expf(x[i])` eight at a time (AVX2); `false` (nothing done) without AVX2.
#[inline]
pub fn exp_in_place(x: &mut [f32]) -> bool {
    with_avx2(x, vmath::exp_avx2)
}

/// `x[i] = libm::tanhf(x[i])` eight at a time (AVX2); `false` (nothing done) without AVX2.
#[inline]
pub fn tanh_in_place(x: &mut [f32]) -> bool {
    with_avx2(x, vmath::tanh_avx2)
}

/// `x[i] = sigmoid(x[i])` eight at a time (AVX2); `false` (nothing done) without AVX2.
#[inline]
pub fn sigmoid_in_place(x: &mut [f32]) -> bool {
    with_avx2(x, vmath::sigmoid_avx2)
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

/// The exact int8 row sums (see [`reference::dot_rows_i8`]) with the best kernel this process
/// may run: AVX-512 VNNI, else AVX2, four rows per pass; else one reference dot product per row.
/// The CPU is asked once per call, not once per row.
pub fn dot_rows_i8(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let f = cpu();
    if f & has::VNNI != 0 {
        // SAFETY: `cpu()` says the CPU has AVX2, AVX-512 VNNI and VL.
        unsafe { int8::dot_rows_i8_vnni(q, cols, xq, sums) }
    } else if f & has::AVX2 != 0 {
        // SAFETY: `cpu()` says the CPU has AVX2.
        unsafe { int8::dot_rows_i8_avx2(q, cols, xq, sums) }
    } else {
        crate::kernels::dot_rows_i8_with(reference::dot_i8, q, cols, xq, sums)
    }
}

/// The row sums plus a bias ([`reference::dot_rows_bias_i8`]): with AVX-512 VNNI eight rows
/// per pass with the bias added in the vector (`integer::dot_rows_bias_i8_vnni`), else
/// [`crate::kernels::dot_rows_bias_i8_via`] over [`dot_rows_i8`].
#[inline]
pub fn dot_rows_bias_i8(q: &[i8], cols: usize, xq: &[i8], bias: &[i32], sums: &mut [i32]) {
    if cpu() & has::VNNI != 0 {
        // SAFETY: `cpu()` says the CPU has AVX2, AVX-512 VNNI and VL.
        unsafe { integer::dot_rows_bias_i8_vnni(q, cols, xq, bias, sums) }
    } else {
        crate::kernels::dot_rows_bias_i8_via(dot_rows_i8, q, cols, xq, bias, sums)
    }
}

/// `v[r] = f(rq_r(v[r]))` (the integer mode's row requantization, `kernels::integer::rescale_i32`
/// of each row's multiplier in `ms` and the shared `shift`, then `f`) eight rows at a time with
/// AVX2 for `shift ≤ 62`; `false` (nothing done) otherwise.
#[inline]
pub(crate) fn rescale_rows(v: &mut [i32], ms: &[i32], shift: u32, f: impl Fn(i32) -> i32) -> bool {
    if !(avx2() && shift <= 62) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and the shift is in the kernel's range (both checked above).
    unsafe { integer::rescale_rows_avx2(v, ms, shift, f) };
    true
}

/// `out[r] = sat_i8(rq_r(sums[r]))` as [`rescale_rows`]; `false` (nothing done) where that
/// declines.
#[inline]
pub(crate) fn rescale_rows_i8(sums: &[i32], ms: &[i32], shift: u32, out: &mut [i8]) -> bool {
    if !(avx2() && shift <= 62) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and the shift is in the kernel's range (both checked above).
    unsafe { integer::rescale_rows_i8_avx2(sums, ms, shift, out) };
    true
}

/// `x[r] = sat_x(x[r] +sat rq_r(sums[r]))` (with `add`; else `sat_x(rq_r(sums[r]))`) as
/// [`rescale_rows`]; `false` (nothing done) where that declines.
#[inline]
pub(crate) fn rescale_rows_add_x(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    x: &mut [i32],
    add: bool,
) -> bool {
    if !(avx2() && shift <= 62) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and the shift is in the kernel's range (both checked above).
    unsafe { integer::rescale_rows_add_x_avx2(sums, ms, shift, x, add) };
    true
}

/// [`crate::kernels::rows_i8_via_sums`] over [`dot_rows_i8`], as on the other instruction sets.
#[inline]
pub fn rows_i8(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    crate::kernels::rows_i8_via_sums(dot_rows_i8, q, scales, cols, xq, sx, bias, out)
}

/// The integer step's LSTM cell ([`crate::kernels::accel::lstm_cell`]) with AVX2, where
/// [`integer::lstm_cell_fits`]; `false` (nothing done) otherwise.
#[inline]
pub(crate) fn lstm_cell(
    g: &[i32],
    hid: usize,
    rq: [crate::kernels::integer::Requant; 3],
    c: &mut [i16],
    m: &mut [i8],
) -> bool {
    if !(avx2() && integer::lstm_cell_fits(g, hid, rq)) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and the operands fit the kernel (both checked above).
    unsafe { integer::lstm_cell_avx2(g, hid, rq, c, m) };
    true
}

/// `acc[r] = f(acc[r], rq_r(sums[r]))` as [`rescale_rows`]; `false` (nothing done) where that
/// declines.
#[inline]
pub(crate) fn rescale_rows_into(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    acc: &mut [i32],
    f: impl Fn(i32, i32) -> i32,
) -> bool {
    if !(avx2() && shift <= 62) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and the shift is in the kernel's range (both checked above).
    unsafe { integer::rescale_rows_into_avx2(sums, ms, shift, acc, f) };
    true
}

/// [`crate::kernels::dot_rows_strided_i8`] with AVX2 (and AVX-512 VNNI where the CPU has it);
/// `false` (nothing done) without AVX2.
#[inline]
pub(crate) fn dot_rows_strided_i8(q: &[i8], stride: usize, x: &[i8], sums: &mut [i32]) -> bool {
    let f = cpu();
    if f & has::AVX2 == 0 {
        return false;
    }
    // SAFETY: the CPU has AVX2, and AVX-512 VNNI and VL where `vnni` is set.
    unsafe { integer::dot_rows_strided_i8_avx2(q, stride, x, sums, f & has::VNNI != 0) };
    true
}

/// [`crate::kernels::dot_rows_strided_q15`] with AVX2; `false` (nothing done) without it.
#[inline]
pub(crate) fn dot_rows_strided_q15(q: &[i8], stride: usize, x: &[i32], sums: &mut [i32]) -> bool {
    if !avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { integer::dot_rows_strided_q15_avx2(q, stride, x, sums) };
    true
}

/// The integer step's LayerNorm / RMSNorm ([`crate::kernels::accel::norm_i8`]) with AVX2,
/// where [`integer::norm_i8_fits`]; `false` (nothing done) otherwise.
#[inline]
pub(crate) fn norm_i8(x: &[i32], p: &[i32], rms: bool, out: &mut [i8]) -> bool {
    if !(avx2() && integer::norm_i8_fits(x, p)) {
        return false;
    }
    // SAFETY: the CPU has AVX2 and the operands fit the kernel (both checked above).
    unsafe { integer::norm_i8_avx2(x, p, rms, out) };
    true
}

/// The integer softmax of one attention head ([`crate::kernels::accel::softmax_q15`]) with
/// AVX2; `false` (nothing done) without it.
#[inline]
pub(crate) fn softmax_q15(scores: &mut [i32]) -> bool {
    if !avx2() {
        return false;
    }
    // SAFETY: the CPU has AVX2 (checked above).
    unsafe { integer::softmax_q15_avx2(scores) };
    true
}

/// A row-sum kernel (`q, cols, xq, sums`), as the kernel harness lists them.
#[cfg(test)]
pub(crate) type DotRows = fn(&[i8], usize, &[i8], &mut [i32]);

/// The AVX2 and AVX-512 VNNI row-sum kernels this CPU can run, for the kernel harness.
#[cfg(test)]
pub(crate) fn dot_rows_variants() -> impl Iterator<Item = (&'static str, DotRows)> {
    extern crate std;
    fn avx2(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
        // SAFETY: only listed after the CPU reported AVX2.
        unsafe { int8::dot_rows_i8_avx2(q, cols, xq, sums) }
    }
    fn vnni(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
        // SAFETY: only listed after the CPU reported AVX2, AVX-512 VNNI and VL.
        unsafe { int8::dot_rows_i8_vnni(q, cols, xq, sums) }
    }
    let avx2_ok = std::is_x86_feature_detected!("avx2");
    let vnni_ok = avx2_ok
        && std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("avx512vl");
    let list: [(&'static str, DotRows, bool); 2] = [
        ("x86_64-avx2", avx2, avx2_ok),
        ("x86_64-avx512vnni", vnni, vnni_ok),
    ];
    list.into_iter().filter(|v| v.2).map(|(n, f, _)| (n, f))
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
