//! Compute kernels. [`mod@reference`] holds the plain versions; [`arch`] the optimised ones; the
//! functions at this level dispatch between them and are what the model calls.

pub mod arch;
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
/// dot(row r, xq) · (scales[r] · sx) + bias[r]` for `q: [rows * cols]`, `xq: [cols]`. Each
/// instruction-set module instantiates it with its own dot product.
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
    for (((o, row), &s), &b) in out
        .iter_mut()
        .zip(q.chunks_exact(cols.max(1)))
        .zip(scales)
        .zip(bias)
    {
        *o = dot(row, xq) as f32 * (s * sx) + b;
    }
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
/// `x[i] ≈ q[i] * scale`, `|q[i]| ≤ 127`. An all-zero `x` gives scale 0.
pub fn quantize_i8(x: &[f32], q: &mut [i8]) -> f32 {
    let mut amax = 0.0f32;
    for &v in x {
        let a = libm::fabsf(v);
        if a > amax {
            amax = a;
        }
    }
    if amax == 0.0 || !amax.is_finite() {
        q.iter_mut().for_each(|v| *v = 0);
        return 0.0;
    }
    let inv = 127.0 / amax;
    for (d, &v) in q.iter_mut().zip(x) {
        // `as` saturates (and maps NaN to 0), so this cannot overflow.
        *d = libm::roundf(v * inv) as i8;
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
    let xq = head_mut(q8, cols);
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
