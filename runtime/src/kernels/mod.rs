//! Compute kernels. [`mod@reference`] holds the plain versions; [`arch`] the optimised ones; the
//! functions at this level dispatch between them and are what the model calls.

pub(crate) mod accel;
pub mod arch;
mod int_tables;
pub mod integer;
pub mod reference;

use half::f16;

use crate::slices::{copy, head, head_mut, range, split, split_mut};

pub use crate::schema::Activation;

/// Weight-matrix storage, borrowed from the blob. Shapes are in [`Mat`].
#[derive(Debug, Clone, Copy)]
pub enum MatData<'a> {
    /// `[rows * cols]` row-major f32.
    F32(&'a [f32]),
    /// `[rows * cols]` row-major f16.
    F16(&'a [f16]),
    /// `q: [rows * cols]` row-major int8; `scales: [rows]`; `w[r][c] = q[r*cols+c] * scales[r]`.
    I8 {
        /// Quantized values.
        q: &'a [i8],
        /// One scale per row.
        scales: &'a [f32],
    },
}

/// A `[rows, cols]` weight matrix. Parsing guarantees the data lengths match the shape.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// Output size.
    pub rows: usize,
    /// Input size.
    pub cols: usize,
    /// The stored values.
    pub data: MatData<'a>,
}

// The instruction-set module this build uses, chosen once at compile time (on x86_64 with the
// `std` feature, `arch::x86_64` then detects AVX2 once per process). Each exports `VARIANT`,
// `variant()`, `dot_i8` and `rows_i8`, with exactly the results of `reference`.
#[cfg(runnel_arm_dsp)]
use arch::arm as isa;
#[cfg(not(any(runnel_arm_dsp, target_arch = "riscv32", target_arch = "x86_64")))]
use arch::portable as isa;
#[cfg(target_arch = "riscv32")]
use arch::riscv32 as isa;
#[cfg(target_arch = "x86_64")]
use arch::x86_64 as isa;

/// The int8 kernel variant this build selected, for benches and logs (`arm-dsp`,
/// `riscv32-unrolled`, `x86_64-avx2`, `portable`, or on x86_64 with `std` a run-time choice that
/// [`variant`] resolves).
pub const VARIANT: &str = isa::VARIANT;

/// The int8 kernel variant this process runs: [`VARIANT`], with a run-time CPU detection resolved.
pub fn variant() -> &'static str {
    isa::variant()
}

/// `Σ a[i]·b[i]` over int8, exact in i32, with the variant this build selected.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    isa::dot_i8(a, b)
}

/// The rows of an int8 matrix-vector product, generic over the dot product: `out[r] =
/// dot(row r, xq) · (scales[r] · sx) + bias[r]` for `q: [rows * cols]`, `xq: [cols]`, with
/// exactly the row count and edge cases of [`reference::rows_i8`] (which rows it writes, `cols ==
/// 0`, a short `xq`). The instruction-set modules without a matrix-level kernel instantiate it
/// with their dot product.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn rows_i8_with(
    dot: impl Fn(&[i8], &[i8]) -> i32,
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    if cols == 0 {
        for ((o, &s), &b) in out.iter_mut().zip(scales).zip(bias) {
            *o = 0.0 * (s * sx) + b;
        }
        return;
    }
    for (((o, row), &s), &b) in out
        .iter_mut()
        .zip(q.chunks_exact(cols.max(1)))
        .zip(scales)
        .zip(bias)
    {
        *o = dot(row, x) as f32 * (s * sx) + b;
    }
}

/// [`rows_i8_with`] for the instruction sets with a matrix-level kernel: `dot_rows` writes the
/// exact sums of the rows as i32 into `out` itself (same size and alignment), then one pass
/// rescales them in place: `sum as f32 · (scales[r] · sx) + bias[r]`. The same rows, edge cases
/// and bits as [`reference::rows_i8`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn rows_i8_via_sums(
    dot_rows: impl Fn(&[i8], usize, &[i8], &mut [i32]),
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    if xq.len() < cols {
        return;
    }
    let n = out.len().min(scales.len()).min(bias.len());
    let n = match q.len().checked_div(cols) {
        Some(qr) => n.min(qr),
        None => n,
    };
    let Some(out) = out.get_mut(..n) else {
        return;
    };
    {
        // SAFETY: f32 and i32 have the same size and alignment and every bit pattern is a
        // valid i32; `out` is not used while this view lives.
        let sums: &mut [i32] =
            unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<i32>(), out.len()) };
        dot_rows(q, cols, xq, sums);
    }
    for ((o, &s), &b) in out.iter_mut().zip(scales).zip(bias) {
        // SAFETY: `o` is a valid, aligned, initialised 4-byte location holding an i32 sum.
        let sum = unsafe { (o as *mut f32).cast::<i32>().read() };
        *o = sum as f32 * (s * sx) + b;
    }
}

/// The exact dot products of the rows of an int8 matrix with one int8 vector (`sums[r] =
/// dot(q row r, xq[..cols])`), with the matrix-level kernel this build selected: on the
/// Cortex-M4/M7 two rows × eight columns per step over the once sign-extended input in one
/// assembly loop (DSP extension), on RV32 four rows × eight columns per iteration, on x86_64
/// four rows per pass with AVX2 or AVX-512 VNNI (chosen per process). Bit for bit
/// [`reference::dot_rows_i8`].
#[inline]
pub fn dot_rows_i8(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    isa::dot_rows_i8(q, cols, xq, sums)
}

/// The row sums plus a bias, `sums[r] = bias[r] + dot(q row r, xq[..cols])` (wrapping i32;
/// the integer step's matrix products), with this build's kernel: on the Cortex-M4/M7 the bias
/// is the accumulators' start, elsewhere [`dot_rows_i8`] then one pass adding it. Bit for bit
/// [`reference::dot_rows_bias_i8`].
#[inline]
pub fn dot_rows_bias_i8(q: &[i8], cols: usize, xq: &[i8], bias: &[i32], sums: &mut [i32]) {
    isa::dot_rows_bias_i8(q, cols, xq, bias, sums)
}

/// [`reference::dot_rows_bias_i8`] over a row-sum kernel: the sums of the rows that have a
/// bias, then the bias added (the instruction sets whose kernel cannot start from it).
#[inline(always)]
pub fn dot_rows_bias_i8_via(
    dot_rows: impl Fn(&[i8], usize, &[i8], &mut [i32]),
    q: &[i8],
    cols: usize,
    xq: &[i8],
    bias: &[i32],
    sums: &mut [i32],
) {
    if xq.len() < cols {
        return;
    }
    let n = reference::matrix_rows(q.len(), cols, sums.len().min(bias.len()));
    let sums = crate::slices::head_mut(sums, n);
    dot_rows(q, cols, xq, sums);
    for (s, &b) in sums.iter_mut().zip(bias) {
        *s = s.wrapping_add(b);
    }
}

/// The row sums of a strided int8 matrix with an int8 vector, `sums[r] = Σ_c q[r · stride + c]
/// · x[c]` (the attention scores over a head's cached keys): on the Cortex-M4/M7 the row-pair
/// assembly loop of [`dot_rows_i8`], elsewhere one dot product per row. Bit for bit
/// [`reference::dot_rows_strided`] with `x16` empty.
#[inline]
pub fn dot_rows_strided_i8(q: &[i8], stride: usize, x: &[i8], sums: &mut [i32]) {
    #[cfg(runnel_arm_dsp)]
    {
        arch::arm::dot_rows_strided_dsp(q, stride, arch::arm::Input::I8(x), sums)
    }
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::dot_rows_strided_i8(q, stride, x, sums) {
        return;
    }
    #[cfg(not(runnel_arm_dsp))]
    {
        let n = reference::strided_rows(q.len(), stride, x.len(), sums.len());
        for (r, a) in sums.iter_mut().take(n).enumerate() {
            let row = q.get(r * stride..).and_then(|t| t.get(..x.len()));
            *a = dot_i8(row.unwrap_or(&[]), x);
        }
    }
}

/// The row sums of a strided int8 matrix with a vector of i32 values taken as i16 (saturated),
/// `sums[r] = Σ_c q[r · stride + c] · sat16(x[c])` (the attention output over a head's cached
/// values, transposed, with the probabilities in Q0.15): on the Cortex-M4/M7 the row-pair
/// assembly loop of [`dot_rows_i8`], elsewhere the reference. Bit for bit
/// [`reference::dot_rows_strided`] with `x8` empty.
#[inline]
pub fn dot_rows_strided_q15(q: &[i8], stride: usize, x: &[i32], sums: &mut [i32]) {
    #[cfg(runnel_arm_dsp)]
    {
        arch::arm::dot_rows_strided_dsp(q, stride, arch::arm::Input::Q15(x), sums)
    }
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::dot_rows_strided_q15(q, stride, x, sums) {
        return;
    }
    #[cfg(not(runnel_arm_dsp))]
    {
        reference::dot_rows_strided(q, stride, &[], x, sums)
    }
}

/// `(a · b + 2^31) >> 32`: the high word of the product, rounded (halves up); always fits i32.
/// One `SMMULR` on the Cortex-M4/M7, [`reference::mul_hi_round`] elsewhere.
#[inline(always)]
pub fn mul_hi_round(a: i32, b: i32) -> i32 {
    #[cfg(runnel_arm_dsp)]
    {
        arch::arm::mul_hi_round(a, b)
    }
    #[cfg(not(runnel_arm_dsp))]
    {
        reference::mul_hi_round(a, b)
    }
}

/// [`reference::dot_rows_i8`] over a given dot product (the instruction sets without a
/// matrix-level kernel).
#[inline(always)]
pub fn dot_rows_i8_with(
    dot: impl Fn(&[i8], &[i8]) -> i32,
    q: &[i8],
    cols: usize,
    xq: &[i8],
    sums: &mut [i32],
) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    if cols == 0 {
        sums.fill(0);
        return;
    }
    for (a, row) in sums.iter_mut().zip(q.chunks_exact(cols)) {
        *a = dot(row, x);
    }
}

/// `roundf(y) as i8` (round half away from zero, saturating, NaN → 0) with the instructions
/// that are cheap on this target: [`round_to_i8_fpu`] where floats are hardware (the
/// Cortex-M4F's FPU, x86, AArch64), [`round_to_i8_int`] where every float operation is a
/// soft-float call (RV32IMAC, Cortex-M0/M3). Both equal `libm::roundf(y) as i8` for every `f32`
/// (all 2^32 bit patterns, `round_to_i8_exhaustive` in the harness).
#[inline(always)]
pub fn round_to_i8(y: f32) -> i8 {
    #[cfg(any(
        runnel_arm_fp16,
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64"
    ))]
    return round_to_i8_fpu(y);
    #[cfg(not(any(
        runnel_arm_fp16,
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64"
    )))]
    return round_to_i8_int(y);
}

/// `roundf(y) as i8` on the bit pattern, integer instructions only (no libm call, no
/// soft-float).
#[inline(always)]
pub fn round_to_i8_int(y: f32) -> i8 {
    let bits = y.to_bits();
    let a = bits & 0x7fff_ffff;
    let e = a >> 23;
    let mag = if e < 150 {
        // |y| = m · 2^(e − 150) with the implicit bit (a subnormal shifts to 0 either way):
        // add half of the last kept bit, shift. Below 0.5 (e ≤ 125) the sum stays below
        // 2^sh, so it gives 0.
        let sh = (150 - e).min(31);
        (((a & 0x007f_ffff) | 0x0080_0000) + (1 << (sh - 1))) >> sh
    } else if a > 0x7f80_0000 {
        0 // NaN
    } else {
        128 // ≥ 2^23 or infinite: saturates
    };
    if (bits as i32) < 0 {
        (mag.min(128) as i32).wrapping_neg() as i8
    } else {
        mag.min(127) as i8
    }
}

/// `roundf(y) as i8` with two float operations: `libm::roundf` is `truncf(y + copysign(0.5 −
/// 2⁻²⁵, y))`, and `as i8` truncates toward zero itself (saturating, NaN → 0), so the `truncf`
/// is the conversion's. Converted to i32 first (`VCVT.S32.F32` on the Cortex-M4F, which
/// saturates and maps NaN to 0 exactly as `as i32` does), then clamped (`SSAT`): the same as
/// `as i8`, without the three float compares LLVM emits for a direct `as i8`.
#[inline(always)]
pub fn round_to_i8_fpu(y: f32) -> i8 {
    const HALF_BELOW: f32 = 0.5 - 0.25 * f32::EPSILON;
    ((y + HALF_BELOW.copysign(y)) as i32).clamp(-128, 127) as i8
}

/// The rows of an int8 matrix-vector product with the matrix-level kernel this build selected
/// (`out[r] = dot(q row r, xq) · (scales[r] · sx) + bias[r]`): on the Cortex-M4/M7 four rows per
/// pass with the DSP extension, on RV32 four rows × eight columns per iteration. Bit for bit
/// [`reference::rows_i8`], including which rows it writes and the edge cases.
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
    isa::rows_i8(q, scales, cols, xq, sx, bias, out)
}

/// Converts f16 to f32 (exact): the FPU's VCVTB on hard-float ARMv7E-M, `half`'s slice conversion
/// elsewhere (F16C on x86_64 when the `std` feature detects it, software otherwise).
#[inline]
pub fn f16_to_f32_slice(src: &[f16], dst: &mut [f32]) {
    #[cfg(runnel_arm_fp16)]
    arch::arm::f16_to_f32_slice(src, dst);
    #[cfg(not(runnel_arm_fp16))]
    {
        use half::slice::HalfFloatSliceExt;
        let n = src.len().min(dst.len());
        head(src, n).convert_to_f32_slice(head_mut(dst, n));
    }
}

/// Adds `Σ x[i]·y[i]` over whole groups of [`reference::LANES`] into the partial sums, lane
/// `j` taking the elements `i ≡ j (mod 8)`: the body of [`reference::ordered_sum`], written so the
/// compiler keeps the eight independent sums in vector registers (no reassociation needed).
#[inline(always)]
fn lanes_f32(x: &[f32], y: &[f32], lane: &mut [f32; reference::LANES]) {
    for (cx, cy) in x
        .chunks_exact(reference::LANES)
        .zip(y.chunks_exact(reference::LANES))
    {
        for j in 0..reference::LANES {
            lane[j] += cx[j] * cy[j];
        }
    }
}

/// `Σ a[i]·b[i]`, bit-identical to [`reference::dot_f32`] (same order, vectorisable).
#[inline(never)]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let ((a, ta), (b, tb)) = body_and_tail(a, b);
    let mut lane = [0.0f32; reference::LANES];
    lanes_f32(a, b, &mut lane);
    let mut acc = reference::combine(&lane);
    for (&x, &y) in ta.iter().zip(tb) {
        acc += x * y;
    }
    acc
}

/// A slice split in two.
type Halves<'x, T> = (&'x [T], &'x [T]);

/// Splits the common length of `a` and `b` into the whole groups of [`reference::LANES`] and the
/// rest: `((a_body, a_tail), (b_body, b_tail))`, the bodies of equal length.
#[inline(always)]
fn body_and_tail<'x, 'y, A, B>(a: &'x [A], b: &'y [B]) -> (Halves<'x, A>, Halves<'y, B>) {
    let n = a.len().min(b.len());
    let body = n - n % reference::LANES;
    let (a, b) = (head(a, n), head(b, n));
    (split(a, body), split(b, body))
}

/// `Σ f32(a[i])·b[i]` over int8 `a` (KV cache rows), bit-identical to
/// [`reference::dot_i8_f32`] (same order, vectorisable).
#[inline(never)]
pub fn dot_i8_f32(a: &[i8], b: &[f32]) -> f32 {
    let ((a, ta), (b, tb)) = body_and_tail(a, b);
    let mut lane = [0.0f32; reference::LANES];
    for (ca, cb) in a
        .chunks_exact(reference::LANES)
        .zip(b.chunks_exact(reference::LANES))
    {
        for j in 0..reference::LANES {
            lane[j] += ca[j] as f32 * cb[j];
        }
    }
    let mut acc = reference::combine(&lane);
    for (&x, &y) in ta.iter().zip(tb) {
        acc += x as f32 * y;
    }
    acc
}

/// `Σ f32(a[i])·b[i]`, bit-identical to [`reference::dot_f16_f32`]: it converts 32 weights at a
/// time with [`f16_to_f32_slice`] and sums them as [`dot_f32`] does.
#[inline(never)]
pub fn dot_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    let ((a, ta), (b, tb)) = body_and_tail(a, b);
    let mut lane = [0.0f32; reference::LANES];
    let mut buf = [0f32; 32]; // a multiple of LANES, so lanes stay aligned to global indices
    for (ca, cb) in a.chunks(32).zip(b.chunks(32)) {
        let w = head_mut(&mut buf, ca.len());
        f16_to_f32_slice(ca, w);
        lanes_f32(w, cb, &mut lane);
    }
    let mut acc = reference::combine(&lane);
    for (x, &y) in ta.iter().zip(tb) {
        acc += x.to_f32() * y;
    }
    acc
}

/// Quantizes `x` into `q` (same length) symmetrically and returns the scale:
/// `x[i] ≈ q[i] * scale`, `|q[i]| ≤ 127`. An all-zero `x` gives scale 0. Bit for bit
/// [`reference::quantize_i8`] (NaN elements are skipped by the maximum and give 0; an infinite
/// element gives all zeros), computed with integer instructions except the one division and the
/// products `x[i] · (127 / amax)`.
pub fn quantize_i8(x: &[f32], q: &mut [i8]) -> f32 {
    // For non-negative floats other than NaN, the bit patterns order like the values. The fast
    // pass takes the maximum over every element; only if that is a NaN pattern (above
    // infinity) does a second pass skip the NaNs, as the definition does.
    let mut amax_bits = 0u32;
    for &v in x {
        amax_bits = amax_bits.max(v.to_bits() & 0x7fff_ffff);
    }
    if amax_bits > 0x7f80_0000 {
        amax_bits = 0;
        for &v in x {
            let b = v.to_bits() & 0x7fff_ffff;
            if b <= 0x7f80_0000 {
                amax_bits = amax_bits.max(b);
            }
        }
    }
    if amax_bits == 0 || amax_bits == 0x7f80_0000 {
        q.iter_mut().for_each(|v| *v = 0);
        return 0.0;
    }
    let amax = f32::from_bits(amax_bits);
    let inv = 127.0 / amax;
    for (d, &v) in q.iter_mut().zip(x) {
        *d = round_to_i8(v * inv);
    }
    amax / 127.0
}

/// `out = W·x + bias`. Lengths: `x: [cols]`, `bias: [rows]`, `out: [rows]`,
/// `q8: [≥ cols]` scratch for int8 weights.
pub fn matvec(w: &Mat<'_>, x: &[f32], bias: &[f32], out: &mut [f32], q8: &mut [i8]) {
    // One function per storage type, each optimised on its own (merged into one body, the float
    // loops once pushed the int8 kernel out of line on the Cortex-M4: +20% instructions per MAC).
    match w.data {
        MatData::F32(d) => matvec_f32(d, w.cols, x, bias, out),
        MatData::F16(d) => matvec_f16(d, w.cols, x, bias, out),
        MatData::I8 { q, scales } => matvec_i8(q, scales, w.cols, x, bias, out, q8),
    }
}

#[inline(never)]
fn matvec_f32(d: &[f32], cols: usize, x: &[f32], bias: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::matvec_f32(d, cols, x, bias, out) {
        return;
    }
    // `max(1)`: every matrix has cols ≥ 1 (validated); it keeps `chunks_exact` total.
    for ((o, row), &b) in out.iter_mut().zip(d.chunks_exact(cols.max(1))).zip(bias) {
        *o = dot_f32(row, x) + b;
    }
}

#[inline(never)]
fn matvec_f16(d: &[f16], cols: usize, x: &[f32], bias: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::matvec_f16(d, cols, x, bias, out) {
        return;
    }
    for ((o, row), &b) in out.iter_mut().zip(d.chunks_exact(cols.max(1))).zip(bias) {
        *o = dot_f16_f32(row, x) + b;
    }
}

/// The int8 matrix-vector product: quantize `x` into `q8[..cols]`, then the instruction set's
/// row kernel. With `q8` shorter than `cols` it does nothing.
#[inline(never)]
fn matvec_i8(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    x: &[f32],
    bias: &[f32],
    out: &mut [f32],
    q8: &mut [i8],
) {
    let Some(xq) = q8.get_mut(..cols) else {
        return;
    };
    let sx = quantize_i8(x, xq);
    isa::rows_i8(q, scales, cols, xq, sx, bias, out);
}

/// Copies row `r` of `w` into `out` as f32 (embedding lookup). `out: [cols]`. A row beyond the
/// matrix leaves `out` unchanged.
pub fn row_to_f32(w: &Mat<'_>, r: usize, out: &mut [f32]) {
    let (at, cols) = (r.saturating_mul(w.cols), w.cols);
    match w.data {
        MatData::F32(d) => copy(out, range(d, at, cols)),
        MatData::F16(d) => {
            for (o, v) in out.iter_mut().zip(range(d, at, cols)) {
                *o = v.to_f32();
            }
        }
        MatData::I8 { q, scales } => {
            let s = scales.get(r).copied().unwrap_or(0.0);
            for (o, &v) in out.iter_mut().zip(range(q, at, cols)) {
                *o = v as f32 * s;
            }
        }
    }
}

/// PyTorch's LayerNorm: biased variance, `eps` inside the square root. `x, w, b, out: [n]`.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mut sum = 0.0f32;
    for &v in x {
        sum += v;
    }
    let mean = sum / n;
    let mut var = 0.0f32;
    for &v in x {
        let d = v - mean;
        var += d * d;
    }
    let rstd = 1.0 / libm::sqrtf(var / n + eps);
    for (((o, &v), &wi), &bi) in out.iter_mut().zip(x).zip(w).zip(b) {
        *o = (v - mean) * rstd * wi + bi;
    }
}

/// Whether every value is finite (no NaN, no ±inf).
#[inline]
pub fn all_finite(x: &[f32]) -> bool {
    x.iter().all(|v| v.is_finite())
}

/// Logistic sigmoid.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// `x[i] = sigmoid(x[i])`: the same bits as [`sigmoid`], eight lanes at a time where the
/// instruction set allows (x86_64 AVX2).
pub fn sigmoid_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::sigmoid_in_place(x) {
        return;
    }
    for v in x {
        *v = sigmoid(*v);
    }
}

/// `x[i] = libm::tanhf(x[i])`, eight lanes at a time where the instruction set allows.
pub fn tanh_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::tanh_in_place(x) {
        return;
    }
    for v in x {
        *v = libm::tanhf(*v);
    }
}

/// `x[i] = libm::expf(x[i])`, eight lanes at a time where the instruction set allows.
pub fn exp_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if arch::x86_64::exp_in_place(x) {
        return;
    }
    for v in x {
        *v = libm::expf(*v);
    }
}

impl Activation {
    /// Applies the activation in place.
    pub fn apply(self, x: &mut [f32]) {
        match self {
            Activation::Gelu => {
                for v in x {
                    *v = 0.5 * *v * (1.0 + libm::erff(*v * core::f32::consts::FRAC_1_SQRT_2));
                }
            }
            Activation::GeluTanh => {
                const K: f32 = 0.797_884_6; // sqrt(2/pi)
                for v in x {
                    let u = *v;
                    *v = 0.5 * u * (1.0 + libm::tanhf(K * (u + 0.044_715 * u * u * u)));
                }
            }
            Activation::Relu => {
                for v in x {
                    if *v < 0.0 {
                        *v = 0.0;
                    }
                }
            }
            Activation::Silu => {
                for v in x {
                    *v *= sigmoid(*v);
                }
            }
        }
    }
}

/// Softmax in place over `x` (non-empty), max-subtracted.
pub fn softmax(x: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for &v in x.iter() {
        if v > max {
            max = v;
        }
    }
    for v in x.iter_mut() {
        *v -= max;
    }
    exp_in_place(x);
    let mut sum = 0.0f32;
    for &v in x.iter() {
        sum += v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests;

/// PyTorch's `nn.RMSNorm`: `x / sqrt(mean(x²) + eps) · w`. `x, w, out: [n]`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mut ss = 0.0f32;
    for &v in x {
        ss += v * v;
    }
    let r = 1.0 / libm::sqrtf(ss / n + eps);
    for ((o, &v), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = v * r * wi;
    }
}

/// Rotates `x` (one head, `[D]`, D even) by the RoPE angles whose cosines and sines are `cs`
/// (`[D]`: `cos a_d` for `d < D/2`, then `sin a_d`), "rotate half" convention, into `out`:
/// `out[d] = x[d]·cos − x[d + D/2]·sin`, `out[d + D/2] = x[d + D/2]·cos + x[d]·sin`.
pub fn rope_rotate(x: &[f32], cs: &[f32], out: &mut [f32]) {
    let half = x.len() / 2;
    let (x1, x2) = split(x, half);
    let (c, s) = split(cs, half);
    let (o1, o2) = split_mut(out, half);
    for (((((o1, o2), &a), &b), &c), &s) in o1
        .iter_mut()
        .zip(o2.iter_mut())
        .zip(x1)
        .zip(x2)
        .zip(c)
        .zip(s)
    {
        *o1 = a * c - b * s;
        *o2 = b * c + a * s;
    }
}
