//! Plain, obviously correct kernels. Every optimised variant in [`super::arch`] must return
//! exactly what these return (the integer kernels) — the shared harness in
//! `kernels::tests` checks it on fixed seeds and random inputs.
//!
//! The float dot products define runnel's one summation order, [`LANES`]-way interleaved: every
//! target — and every optimised variant — must add in exactly this order, and that is what makes
//! every target produce the same bits. (Eight independent partial sums also let a compiler keep
//! them in vector registers without reassociating anything.)

use crate::kernels::integer::sat_i16;

use half::f16;

/// `Σ a[i]·b[i]` in i32. Exact for `len ≤ 2^17` (each product is at most 2^14 in magnitude), which parsing guarantees.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = 0i32;
    for (&x, &y) in a.iter().zip(b) {
        acc += x as i32 * y as i32;
    }
    acc
}

/// Partial sums of the float dot products.
pub const LANES: usize = 8;

/// Sums `term(i)` for `i in 0..n` in runnel's fixed order: partial sum `j` adds the terms
/// `i ≡ j (mod 8)` below `n − n % 8` in increasing `i`; the eight partial sums are combined as
/// `((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7))`; the last `n % 8` terms are then added left to right.
#[inline]
pub fn ordered_sum(n: usize, term: impl Fn(usize) -> f32) -> f32 {
    let body = n - n % LANES;
    let mut lane = [0.0f32; LANES];
    for i in 0..body {
        lane[i % LANES] += term(i);
    }
    let mut acc = combine(&lane);
    for i in body..n {
        acc += term(i);
    }
    acc
}

/// `((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7))`.
#[inline]
pub fn combine(s: &[f32; LANES]) -> f32 {
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// `Σ a[i]·b[i]` in f32, in the [`ordered_sum`] order.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    ordered_sum(a.len().min(b.len()), |i| a[i] * b[i])
}

/// `Σ f32(a[i])·b[i]` in f32, in the [`ordered_sum`] order.
#[inline]
pub fn dot_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    ordered_sum(a.len().min(b.len()), |i| a[i].to_f32() * b[i])
}

/// `Σ f32(a[i])·b[i]` in f32, in the [`ordered_sum`] order (int8 KV rows against a query).
#[inline]
pub fn dot_i8_f32(a: &[i8], b: &[f32]) -> f32 {
    ordered_sum(a.len().min(b.len()), |i| a[i] as f32 * b[i])
}

/// The rows of an int8 matrix-vector product, `q: [rows * cols]` row-major, the dot product over
/// `xq[..cols]`: `out[r] = dot(q row r, xq) as f32 · (scales[r] · sx) + bias[r]`.
///
/// It writes the first `n = min(out.len(), scales.len(), bias.len(), q.len() / cols)` rows (with
/// `cols == 0`: the first `min(out.len(), scales.len(), bias.len())`, each dot product 0) and
/// leaves the rest of `out` alone; with `xq.len() < cols` it writes nothing. Every optimised row
/// kernel (`kernels::arch::*::rows_i8`) returns exactly this, bit for bit.
pub fn rows_i8(
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
    let n = out.len().min(scales.len()).min(bias.len());
    let n = match q.len().checked_div(cols) {
        Some(qr) => n.min(qr),
        None => n,
    };
    for (r, ((o, &s), &b)) in out.iter_mut().zip(scales).zip(bias).take(n).enumerate() {
        let row = q.get(r * cols..(r + 1) * cols).unwrap_or(&[]);
        *o = dot_i8(row, x) as f32 * (s * sx) + b;
    }
}

/// The exact dot products of the rows of an int8 matrix with one int8 vector: `sums[r] =
/// dot(q row r, xq[..cols])` for the first `n = min(sums.len(), q.len() / cols)` rows (with
/// `cols == 0`: every element of `sums`, 0); the rest of `sums` is left alone, and with
/// `xq.len() < cols` nothing is written. Every optimised variant (`kernels::arch::*::dot_rows_i8`)
/// returns exactly this.
pub fn dot_rows_i8(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let n = matrix_rows(q.len(), cols, sums.len());
    for (r, a) in sums.iter_mut().take(n).enumerate() {
        *a = dot_i8(q.get(r * cols..(r + 1) * cols).unwrap_or(&[]), x);
    }
}

/// The row sums plus a bias: `sums[r] = bias[r] + dot(q row r, xq[..cols])` (wrapping i32) for
/// the first `min(n, bias.len())` rows, `n` as in [`dot_rows_i8`]; the rest of `sums` is left
/// alone, and with `xq.len() < cols` nothing is written. Every optimised variant
/// (`kernels::arch::*::dot_rows_bias_i8`) returns exactly this.
pub fn dot_rows_bias_i8(q: &[i8], cols: usize, xq: &[i8], bias: &[i32], sums: &mut [i32]) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let n = matrix_rows(q.len(), cols, sums.len());
    for (r, (a, &b)) in sums.iter_mut().zip(bias).take(n).enumerate() {
        *a = b.wrapping_add(dot_i8(q.get(r * cols..(r + 1) * cols).unwrap_or(&[]), x));
    }
}

/// `Σ a[i]·sat_i16(b[i])` of int8 values and i32 values taken as i16, saturated (wrapping i32),
/// over the shorter length.
pub fn dot_i8_q15(a: &[i8], b: &[i32]) -> i32 {
    a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
        s.wrapping_add(x as i32 * sat_i16(y) as i32)
    })
}

/// The rows a row-sum writes into `len` sums from a `[rows, cols]` matrix of `q_len` elements:
/// `min(len, q_len / cols)` (`len` for `cols == 0`), [`strided_rows`] with the stride `cols`.
#[inline]
pub fn matrix_rows(q_len: usize, cols: usize, len: usize) -> usize {
    strided_rows(q_len, cols, cols, len)
}

/// The rows a strided row-sum writes: those `r < len` whose `cols` values from `r · stride`
/// lie in a matrix of `q_len` elements (`len` of them for `cols == 0`).
pub fn strided_rows(q_len: usize, stride: usize, cols: usize, len: usize) -> usize {
    if cols == 0 {
        len
    } else if q_len < cols {
        0
    } else {
        ((q_len - cols) / stride.max(1) + 1).min(len)
    }
}

/// The row sums of a strided int8 matrix: `sums[r] = Σ_c q[r · stride + c] · x[c]` (wrapping)
/// for the first [`strided_rows`] rows, with an int8 vector (`x8`) or one of i32 values taken as
/// i16, saturated (`x16`; [`dot_i8_q15`]), of `cols` values (one of them non-empty, or both
/// empty); the rest of `sums` is left alone. Every optimised variant
/// (`kernels::dot_rows_strided_i8` / `_q15`) returns exactly this.
pub fn dot_rows_strided(q: &[i8], stride: usize, x8: &[i8], x16: &[i32], sums: &mut [i32]) {
    let cols = x8.len().max(x16.len());
    let n = strided_rows(q.len(), stride, cols, sums.len());
    for (r, a) in sums.iter_mut().take(n).enumerate() {
        let row = q
            .get(r * stride..)
            .and_then(|t| t.get(..cols))
            .unwrap_or(&[]);
        *a = if x16.is_empty() {
            dot_i8(row, x8)
        } else {
            dot_i8_q15(row, x16)
        };
    }
}

/// `(a · b + 2^31) >> 32` in i64 (always within i32: `|a · b| ≤ 2^62`).
#[inline(always)]
pub fn mul_hi_round(a: i32, b: i32) -> i32 {
    ((a as i64 * b as i64 + (1 << 31)) >> 32) as i32
}

/// Symmetric int8 quantization, the definition: `amax = max |x[i]|` over the non-NaN elements;
/// if `amax` is 0 or infinite, `q` is all zeros and the scale 0; otherwise
/// `q[i] = roundf(x[i] · (127 / amax))` (half away from zero; NaN → 0) and the scale `amax / 127`.
/// Writes `min(x.len(), q.len())` elements (all of `q` in the zero case).
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
