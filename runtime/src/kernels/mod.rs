//! Compute kernels. [`mod@reference`] holds the plain versions; [`arch`] the optimised ones; the
//! functions at this level dispatch between them and are what the model calls.

pub mod arch;
pub mod reference;

use half::f16;

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

/// `Σ a[i]·b[i]` over int8, exact in i32; the fastest variant this build and CPU allow.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        // SAFETY: compiled only when AVX2 is enabled for the whole build.
        unsafe { arch::x86_64::dot_i8_avx2(a, b) }
    }
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2"), feature = "std"))]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU reports AVX2.
            unsafe { arch::x86_64::dot_i8_avx2(a, b) }
        } else {
            reference::dot_i8(a, b)
        }
    }
    #[cfg(runnel_arm_dsp)]
    {
        arch::arm::dot_i8_dsp(a, b)
    }
    #[cfg(target_arch = "riscv32")]
    {
        arch::riscv32::dot_i8_unrolled(a, b)
    }
    #[cfg(not(any(
        all(target_arch = "x86_64", target_feature = "avx2"),
        all(target_arch = "x86_64", feature = "std"),
        runnel_arm_dsp,
        target_arch = "riscv32"
    )))]
    {
        reference::dot_i8(a, b)
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
        src[..n].convert_to_f32_slice(&mut dst[..n]);
    }
}

/// `Σ f32(a[i])·b[i]`, left to right — the same order, hence the same bits, as
/// [`reference::dot_f16_f32`]. It converts 32 weights at a time with [`f16_to_f32_slice`]
/// instead of one call per element.
#[inline]
pub fn dot_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    let mut buf = [0f32; 32];
    let mut acc = 0.0f32;
    for (ca, cb) in a.chunks(32).zip(b.chunks(32)) {
        let n = ca.len().min(cb.len());
        let w = &mut buf[..n];
        f16_to_f32_slice(&ca[..n], w);
        for (&x, &y) in w.iter().zip(cb) {
            acc += x * y;
        }
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
    let cols = w.cols;
    match w.data {
        MatData::F32(d) => {
            for ((o, row), &b) in out.iter_mut().zip(d.chunks_exact(cols)).zip(bias) {
                *o = reference::dot_f32(row, x) + b;
            }
        }
        MatData::F16(d) => {
            for ((o, row), &b) in out.iter_mut().zip(d.chunks_exact(cols)).zip(bias) {
                *o = dot_f16_f32(row, x) + b;
            }
        }
        MatData::I8 { q, scales } => {
            let xq = &mut q8[..cols];
            let sx = quantize_i8(x, xq);
            for (((o, row), &s), &b) in out
                .iter_mut()
                .zip(q.chunks_exact(cols))
                .zip(scales)
                .zip(bias)
            {
                *o = dot_i8(row, xq) as f32 * (s * sx) + b;
            }
        }
    }
}

/// Copies row `r` of `w` into `out` as f32 (embedding lookup). `out: [cols]`.
pub fn row_to_f32(w: &Mat<'_>, r: usize, out: &mut [f32]) {
    let cols = w.cols;
    let range = r * cols..(r + 1) * cols;
    match w.data {
        MatData::F32(d) => out.copy_from_slice(&d[range]),
        MatData::F16(d) => {
            for (o, v) in out.iter_mut().zip(&d[range]) {
                *o = v.to_f32();
            }
        }
        MatData::I8 { q, scales } => {
            let s = scales[r];
            for (o, &v) in out.iter_mut().zip(&q[range]) {
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

/// Logistic sigmoid.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// Feed-forward activation of an attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// Exact erf GELU (`nn.GELU()`).
    Gelu,
    /// `nn.GELU(approximate="tanh")`.
    GeluTanh,
    /// `nn.ReLU()`.
    Relu,
    /// `nn.SiLU()`.
    Silu,
}

impl Activation {
    /// Decodes the on-disk code.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Activation::Gelu),
            1 => Some(Activation::GeluTanh),
            2 => Some(Activation::Relu),
            3 => Some(Activation::Silu),
            _ => None,
        }
    }
    /// Name as in the model contract.
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Relu => "relu",
            Activation::Silu => "silu",
        }
    }
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
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests;
