//! Integer kernels of the integer-only mode (docs/INTEGER.md): fixed-point requantization, the
//! int8 matrix product with its epilogue, integer LayerNorm / RMSNorm, sigmoid and tanh from
//! Q3.12 to Q0.15, `e^(−x)` for the softmax, an exact integer square root. Only integer
//! operations, so every target computes the same values; each function's exact definition is in
//! its documentation, and the tests check it against float64 mathematics with the error bound
//! written down.

use super::int_tables::{EXP_NEG_Q15, SIGMOID_Q15, TANH_Q15};
use super::{accel, dot_rows_bias_i8, Mat, MatData};
use crate::slices::{head, split};

/// Bound of the residual stream between blocks (i32 on a calibrated grid that puts the largest
/// calibration value at `2^19`): values are saturated to `±X_MAX`, which keeps every norm's
/// sums inside i64 (`n · (2·X_MAX)² < 2^63` for `n ≤ 2^16`).
pub const X_MAX: i32 = 1 << 22;

/// `v` saturated to `±X_MAX`.
#[inline(always)]
pub fn sat_x(v: i32) -> i32 {
    v.clamp(-X_MAX, X_MAX)
}

/// `round(acc · m / 2^shift)`, halves up, for `shift ≤ 62` (branch-free: the rounding constant
/// is `2^shift / 2`, 0 for `shift = 0`).
#[inline(always)]
pub fn rescale(acc: i64, m: i32, shift: u32) -> i64 {
    let s = shift & 63;
    acc.wrapping_mul(m as i64).wrapping_add((1i64 << s) >> 1) >> s
}

/// [`rescale`] of an i32 `acc`, saturated to i32. With `shift ≥ 32` (the usual case) it is a
/// 32 × 32 → 64-bit multiply-accumulate of the rounding constant and an arithmetic shift of
/// the high word (`SMLAL` + `ASR` on a Cortex-M): the same value, without a 64-bit shift.
#[inline(always)]
pub fn rescale_i32(acc: i32, m: i32, shift: u32) -> i32 {
    if WIDE {
        sat_i32(rescale(acc as i64, m, shift))
    } else if shift >= 32 {
        rescale_hi(acc, m, shift)
    } else if shift >= 1 {
        rescale_short(acc, m, shift)
    } else {
        sat_i32(rescale(acc as i64, m, shift))
    }
}

/// 64-bit targets: [`rescale`] in i64 is fastest there; 32-bit targets (every MCU) use
/// [`rescale_hi`] / [`rescale_lo`], which compute the same values in 32-bit pieces.
const WIDE: bool = cfg!(target_pointer_width = "64");

/// [`rescale`] for `1 ≤ shift ≤ 31`, saturated to i32, in 32-bit pieces: the result's word is
/// `lo >> shift | hi << (32 − shift)`, and it fits i32 exactly when the bits above it
/// (`hi >> shift`) are its sign.
#[inline(always)]
fn rescale_lo(acc: i32, m: i32, shift: u32) -> i32 {
    let s = shift.clamp(1, 31);
    let p = (acc as i64 * m as i64).wrapping_add(1i64 << (s - 1));
    let (lo, hi) = (p as u32, (p >> 32) as i32);
    let r = ((lo >> s) | ((hi as u32) << (32 - s))) as i32;
    if hi >> s == r >> 31 {
        r
    } else if hi < 0 {
        i32::MIN
    } else {
        i32::MAX
    }
}

/// [`rescale`] for `32 ≤ shift ≤ 62`: `((acc · m + 2^(shift−1)) >> 32) >> (shift − 32)`, which
/// floors the same quotient (`|acc · m| < 2^62`, so the high word fits i32).
#[inline(always)]
fn rescale_hi(acc: i32, m: i32, shift: u32) -> i32 {
    let round = 1i64 << ((shift.clamp(32, 62)) - 1);
    let hi = ((acc as i64 * m as i64).wrapping_add(round) >> 32) as i32;
    hi >> ((shift - 32) & 31)
}

/// `f(o, rq(a))` for the rows `(o, a)` of a matrix whose multipliers are `ms` and whose shift
/// is `shift`: the rescaled sum saturated to i32 ([`rescale_i32`]), with the shift's case
/// chosen once for all the rows. On 32-bit cores a shift of 1–31 takes [`rescale_short`].
#[inline(always)]
fn each_row<'o, T: 'o>(
    rows: impl Iterator<Item = (&'o mut T, i32)>,
    ms: &[i32],
    shift: u32,
    f: impl Fn(&mut T, i32),
) {
    let rows = rows.zip(ms);
    if WIDE || shift == 0 {
        for ((o, a), &m) in rows {
            f(o, sat_i32(rescale(a as i64, m, shift)));
        }
    } else if shift >= 32 {
        for ((o, a), &m) in rows {
            f(o, rescale_hi(a, m, shift));
        }
    } else {
        for ((o, a), &m) in rows {
            f(o, rescale_short(a, m, shift));
        }
    }
}

/// [`rescale_lo`] (`1 ≤ shift ≤ 31`), usually by one rounding high-word multiply: when `acc ·
/// 2^(32 − shift)` fits i32 (every sum of a matrix row short of `2^(shift − 1)` in size),
/// `(acc · m + 2^(shift − 1)) >> shift = (acc · 2^(32 − shift) · m + 2^31) >> 32`, which is
/// [`mul_hi_round`] (`SMMULR` on a Cortex-M4) and always fits i32 (`|acc · 2^k · m| < 2^62`);
/// otherwise the two-word [`rescale_lo`]. The same value either way.
#[inline(always)]
fn rescale_short(acc: i32, m: i32, shift: u32) -> i32 {
    let k = 32 - shift.clamp(1, 31);
    let a = acc << k;
    if a >> k == acc {
        crate::kernels::mul_hi_round(a, m)
    } else {
        rescale_lo(acc, m, shift)
    }
}

/// `v` saturated to the i32 range.
#[inline(always)]
pub fn sat_i32(v: i64) -> i32 {
    v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Requantization `i` of a `[2·n]` list of `(m, shift)` words ([`crate::schema::IntPart`]);
/// the identity-free zero factor if `i` is out of range (never, on a validated model).
#[inline(always)]
pub fn rq_at(p: &[i32], i: usize) -> Requant {
    match (p.get(2 * i), p.get(2 * i + 1)) {
        (Some(&m), Some(&s)) => Requant {
            m,
            shift: (s as u32).min(62) as u8,
        },
        _ => Requant { m: 0, shift: 0 },
    }
}

/// Row `r`'s requantization in a `[rows + 1]` list of multipliers and one shift
/// ([`crate::schema::IntPart::Rq`]); the zero factor if `r` is out of range (never, on a
/// validated model).
#[inline(always)]
pub fn rq_row(rq: &[i32], r: usize) -> Requant {
    Requant {
        m: rq.get(r).copied().unwrap_or(0),
        shift: rq_shift(rq) as u8,
    }
}

/// The shift of a `[rows + 1]` requantization list (its last word), at most 62.
#[inline(always)]
fn rq_shift(rq: &[i32]) -> u32 {
    rq.last().map_or(0, |&s| (s as u32).min(62))
}

/// An int8 matrix of the integer step: `w` (int8 rows), the requantization of each row's sum
/// (`rq`: the rows' multipliers and one shift) and the bias on the accumulator grid (`bias`,
/// `[rows]`).
#[derive(Debug, Clone, Copy)]
pub struct IntMat<'a> {
    /// `[rows, cols]` int8.
    pub w: Mat<'a>,
    /// `[rows + 1]`: `m` per row, then the shift ([`crate::schema::IntPart::Rq`]).
    pub rq: &'a [i32],
    /// `[rows]`.
    pub bias: &'a [i32],
}

impl IntMat<'_> {
    /// `sums[r] = Σ_c w[r][c] · x[c] + bias[r]` (exact, wrapping i32; `x: [cols]`,
    /// `sums: [rows]`). Out of line: one copy of the row kernel for every integer product.
    #[inline(never)]
    pub fn sums(&self, x: &[i8], sums: &mut [i32]) {
        if let MatData::I8 { q, .. } = self.w.data {
            dot_rows_bias_i8(q, self.w.cols, x, self.bias, sums);
        }
    }

    /// The shift shared by the rows.
    #[inline(always)]
    pub fn shift(&self) -> u32 {
        rq_shift(self.rq)
    }

    /// `f(&mut out[r], rq_r(sums[r]))` for the rows from `at` on.
    #[inline(always)]
    fn map<T>(&self, at: usize, sums: &[i32], out: &mut [T], f: impl Fn(&mut T, i32)) {
        let rows = out.iter_mut().zip(sums.iter().copied());
        each_row(rows, crate::slices::tail(self.rq, at), self.shift(), f);
    }

    /// `out[i] = sat_i8(rq_{at+i}(sums[i]))`: rows `at..` of the product requantized onto an
    /// int8 grid.
    #[inline(never)]
    pub fn rows_to_i8(&self, at: usize, sums: &[i32], out: &mut [i8]) {
        if accel::rescale_rows_i8(sums, crate::slices::tail(self.rq, at), self.shift(), out) {
            return;
        }
        self.map(at, sums, out, |o, v| *o = sat_i8(v));
    }

    /// `out[first + i · stride] = sat_i8(rq_{at+i}(sums[i]))`: rows `at..` of the product
    /// requantized onto an int8 grid into one column of a transposed cache (`out`: `[n, stride]`).
    #[inline(never)]
    pub fn rows_to_column(
        &self,
        at: usize,
        sums: &[i32],
        out: &mut [i8],
        first: usize,
        stride: usize,
    ) {
        let column = crate::slices::tail_mut(out, first)
            .iter_mut()
            .step_by(stride.max(1));
        let rows = column.zip(sums.iter().copied());
        each_row(
            rows,
            crate::slices::tail(self.rq, at),
            self.shift(),
            |o, v| *o = sat_i8(v),
        );
    }

    /// `acc[r] = f(acc[r], rq_r(sums[r]))` for the rows' sums `sums` (`[rows]`): a second
    /// product's requantized rows folded into the first's.
    #[inline(always)]
    pub fn requant_into(&self, sums: &[i32], acc: &mut [i32], f: impl Fn(i32, i32) -> i32) {
        if accel::rescale_rows_into(sums, self.rq, self.shift(), acc, &f) {
            return;
        }
        let rows = acc.iter_mut().zip(sums.iter().copied());
        each_row(rows, self.rq, self.shift(), |a, r| *a = f(*a, r));
    }

    /// `v[r] = f(rq_r(v[r]))` for the rows' sums `v` (`[rows]`), in place.
    #[inline(always)]
    pub fn requant(&self, v: &mut [i32], f: impl Fn(i32) -> i32) {
        if accel::rescale_rows(v, self.rq, self.shift(), &f) {
            return;
        }
        let rows = v.iter_mut().map(|a| {
            let sum = *a;
            (a, sum)
        });
        each_row(rows, self.rq, self.shift(), |a, r| *a = f(r));
    }

    /// `out[r] = sat_i8(rq_r(sums[r]))`: the product requantized onto an int8 grid
    /// (`sums: [rows]` scratch).
    pub fn to_i8(&self, x: &[i8], sums: &mut [i32], out: &mut [i8]) {
        self.sums(x, sums);
        self.rows_to_i8(0, sums, out);
    }

    /// `x[r] = sat_x(x[r] + rq_r(sums[r]))` (`add`) or `x[r] = sat_x(rq_r(sums[r]))`: the
    /// product requantized onto the residual grid.
    #[inline(never)]
    pub fn to_x(&self, input: &[i8], sums: &mut [i32], x: &mut [i32], add: bool) {
        self.sums(input, sums);
        if accel::rescale_rows_add_x(sums, self.rq, self.shift(), x, add) {
            return;
        }
        self.map(0, sums, x, |o, v| {
            let base = if add { *o } else { 0 };
            *o = sat_x(base.saturating_add(v));
        });
    }
}

/// Integer LayerNorm (or, with `rms`, RMSNorm) of the residual stream `x` (`[W]`, values within
/// `±X_MAX`) onto an int8 grid, with the parameters `p` (`[2·W + 3]`, [`crate::schema::IntPart::Norm`]):
/// multipliers `g`, offsets `b`, the shift `e` (`0..=30`), and ε (two words). Exactly:
///
/// ```text
/// μ = round(Σx / W) (0 for RMSNorm), d_i = x_i − μ, v = ⌊Σd² / W⌋ + ε,
/// σ = max(1, ⌊√v⌋), r = ⌊2^40 / σ⌋, n_i = (d_i · r + 2^23) >> 24          (Q16)
/// t_i = (n_i · g_i) >> 32,  out_i = sat_i8((t_i + b_i + 2^e / 2) >> e)
/// ```
///
/// On a 32-bit core `n_i · g_i >> 32` is the high word of one `SMULL`, and the rest is 32-bit.
pub fn norm_i8(x: &[i32], p: &[i32], rms: bool, out: &mut [i8]) {
    if !accel::norm_i8(x, p, rms, out) {
        norm_i8_plain(x, p, rms, out);
    }
}

/// [`norm_i8`] without the instruction set's fast path: the definition every fast path equals
/// (`kernels/tests.rs`).
pub fn norm_i8_plain(x: &[i32], p: &[i32], rms: bool, out: &mut [i8]) {
    let w = x.len();
    let n = w.max(1) as i64;
    let mean = if rms {
        0
    } else {
        let s: i64 = x.iter().map(|&v| v as i64).sum();
        // round half up: ⌊(s + n/2) / n⌋ (within the i32 range of the values)
        (s + n / 2).div_euclid(n) as i32
    };
    // `d = x − μ` in i32: exact for values within ±X_MAX (as the step keeps them)
    let ss: u64 = x
        .iter()
        .map(|&v| {
            let d = v.wrapping_sub(mean) as i64;
            (d * d) as u64
        })
        .fold(0u64, |a, b| a.wrapping_add(b));
    let (g, rest) = split(p, w);
    let (b, tail) = split(rest, w);
    let word = |i: usize| tail.get(i).copied().unwrap_or(0);
    let e = (word(0) as u32).min(30);
    let eps = word(1) as u32 as u64 | (word(2) as u32 as u64) << 32;
    let sigma = isqrt((ss / n as u64).saturating_add(eps)).max(1) as u64;
    let r = (1u64 << 40) / sigma;
    let half = (1i32 << e) >> 1;
    let elems = out.iter_mut().zip(x).zip(g).zip(b);
    let last = |o: &mut i8, ni: i32, g: i32, b: i32| {
        let t = ((ni as i64 * g as i64) >> 32) as i32;
        *o = sat_i8(t.saturating_add(b).saturating_add(half) >> e);
    };
    // |n_i| < 2^26 (|d_i| ≤ √W · σ), so it fits i32 either way
    if r < 1 << 31 {
        // σ > 2^9 (the usual case): d · r is a 32 × 32 → 64-bit product too; on the
        // Cortex-M4/M7, when `d · 2^8` fits i32 (|d| < 2^23: always, as |x|, |μ| ≤ 2^22 and
        // not both at the edge) the rounded shift by 24 is one rounding high-word multiply
        // (`SMMULR`; elsewhere it does not pay)
        let r = r as i32;
        for (((o, &v), &g), &b) in elems {
            let d = v.wrapping_sub(mean);
            let ni = if cfg!(runnel_arm_dsp) && (d << 8) >> 8 == d {
                crate::kernels::mul_hi_round(d << 8, r)
            } else {
                ((d as i64 * r as i64 + (1 << 23)) >> 24) as i32
            };
            last(o, ni, g, b);
        }
    } else {
        for (((o, &v), &g), &b) in elems {
            let ni = ((v.wrapping_sub(mean) as i64 * r as i64 + (1 << 23)) >> 24) as i32;
            last(o, ni, g, b);
        }
    }
}

/// The integer softmax of one attention head's logits (Q5.10, within `±2^30`), in place:
/// `e_j = e^(−(max − s_j))` from the Q0.15 table ([`exp_neg_q15`], 0 beyond 16), `inv =
/// ⌊2^46 / max(1, Σe)⌋` (one division), `p_j = min(2^15 − 1, (e_j · inv + 2^30) >> 31)` in Q0.15.
/// With the instruction set's fast path where there is one (x86_64).
#[inline]
pub fn softmax_q15(scores: &mut [i32]) {
    if !accel::softmax_q15(scores) {
        softmax_q15_plain(scores);
    }
}

/// [`softmax_q15`] without the fast path: the definition. (`max − s_j` saturates: it is
/// 2^31 at most, for logits at both ends of their range, whose weight is then 0.)
#[inline]
pub fn softmax_q15_plain(scores: &mut [i32]) {
    let max = scores.iter().copied().max().unwrap_or(0);
    let mut sum = 0u64;
    for sc in scores.iter_mut() {
        *sc = exp_neg_q15(max.saturating_sub(*sc)) as i32;
        sum += *sc as u64;
    }
    let inv = (1u64 << 46) / sum.max(1);
    for sc in scores.iter_mut() {
        *sc = (((*sc as u64 * inv + (1 << 30)) >> 31) as i32).min(i16::MAX as i32);
    }
}

/// The LSTM cell of the integer step over `n = min(hid, c.len(), m.len())` units: the gates'
/// Q3.12 pre-activations in `g` (rows i, f, g, o at `0, hid, 2·hid, 3·hid`, within the i16
/// range), the cell requantizations `rq` (`i·g` → the cell grid, the cell → Q3.12, `o·tanh(c')`
/// → int8): `c' = sat_i16((f·c + 2^14) >> 15 + rq[0](i·g))`, `m = sat_i8(rq[2](o ·
/// tanh(sat_i16(rq[1](c')))))`, `c` updated in place. With the instruction set's fast path
/// where there is one (x86_64).
#[inline]
pub fn lstm_cell(g: &[i32], hid: usize, rq: [Requant; 3], c: &mut [i16], m: &mut [i8]) {
    if !accel::lstm_cell(g, hid, rq, c, m) {
        lstm_cell_plain(g, hid, rq, c, m);
    }
}

/// [`lstm_cell`] without the fast path: the definition.
#[inline(always)]
pub fn lstm_cell_plain(g: &[i32], hid: usize, rq: [Requant; 3], c: &mut [i16], m: &mut [i8]) {
    let [rq_ig, rq_c, rq_h] = rq;
    // Q0.15 × Q0.15 products fit i32 (|σ|, |tanh| ≤ 2^15)
    let (g0, g1) = split(g, 2 * hid);
    let (ia, fa) = split(g0, hid);
    let (ga, oa) = split(g1, hid);
    let units = ia.iter().zip(fa).zip(ga.iter().zip(oa));
    for ((cj, mj), ((&i, &f), (&g, &o))) in c.iter_mut().zip(m.iter_mut()).zip(units) {
        let i = sigmoid_q15(i as i16) as i32;
        let f = sigmoid_q15(f as i16) as i32;
        let g = tanh_q15(g as i16) as i32;
        let o = sigmoid_q15(o as i16) as i32;
        let fc = (f * *cj as i32 + (1 << 14)) >> 15;
        *cj = sat_i16(fc.saturating_add(rq_ig.apply_i32(i * g)));
        let tc = tanh_q15(sat_i16(rq_c.apply_i32(*cj as i32))) as i32;
        *mj = sat_i8(rq_h.apply_i32(o * tc));
    }
}

/// `out[i] = lut[x[i] as u8]` for a 256-entry int8 table stored as 64 little-endian words
/// ([`crate::schema::IntPart::Lut`]).
pub fn lut_i8(lut: &[i32], x: &mut [i8]) {
    let bytes: &[u8] = bytemuck::cast_slice(head(lut, 64));
    for v in x {
        *v = bytes.get(*v as u8 as usize).copied().unwrap_or(0) as i8;
    }
}

/// A fixed-point factor `m / 2^shift` (`m ≥ 0`; built by [`Requant::from_factor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// Multiplier, in `[2^30, 2^31)` unless the factor is tiny.
    pub m: i32,
    /// Right shift, `0..=62`.
    pub shift: u8,
}

impl Requant {
    /// The nearest `m / 2^shift` to `factor` with `m < 2^31` and the largest `shift ≤ 62`
    /// (so 31 significant bits), or `None` for a factor that is not finite, negative, or
    /// `≥ 2^31`. Runs on the host (the converter); the step only calls [`Requant::apply`].
    pub fn from_factor(factor: f64) -> Option<Requant> {
        if !(0.0..2147483648.0).contains(&factor) {
            return None; // also NaN and ±∞
        }
        let mut shift = 62u8;
        // the largest shift whose multiplier still fits below 2^31
        while shift > 0 && libm::round(factor * (1u64 << shift) as f64) >= 2147483648.0 {
            shift -= 1;
        }
        let m = libm::round(factor * (1u64 << shift) as f64);
        if m >= 2147483648.0 {
            return None;
        }
        Some(Requant { m: m as i32, shift })
    }

    /// `round(acc · m / 2^shift)`, halves rounded up (toward +∞), in i64. Exact for
    /// `|acc| < 2^32`.
    #[inline]
    pub fn apply(self, acc: i64) -> i64 {
        rescale(acc, self.m, self.shift as u32)
    }

    /// [`Requant::apply`] of an i32, saturated to i32 ([`rescale_i32`]).
    #[inline]
    pub fn apply_i32(self, acc: i32) -> i32 {
        rescale_i32(acc, self.m, self.shift as u32)
    }

    /// `out[i] = sat_i8(apply_i32(x[i]))`: a vector requantized onto an int8 grid.
    #[inline]
    pub fn to_i8(self, x: &[i32], out: &mut [i8]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = sat_i8(self.apply_i32(v));
        }
    }
}

/// `x` saturated to `[−127, 127]` (the symmetric int8 range). Written as the i8 range, then
/// −128 raised, which a Cortex-M does in one `SSAT` and a conditional move.
#[inline(always)]
pub fn sat_i8(x: i32) -> i8 {
    x.clamp(i8::MIN as i32, i8::MAX as i32).max(-127) as i8
}

/// `x` saturated to the i16 range `[−32768, 32767]` (Q3.12 table inputs, the LSTM cell state;
/// one `SSAT` on a Cortex-M).
#[inline(always)]
pub fn sat_i16(x: i32) -> i16 {
    x.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// Table lookup with linear interpolation: `t[i] + round((t[i+1] − t[i]) · f / 2^bits)` (halves
/// up), for `i = u >> bits` (masked to the 512 segments) and `f` the low `bits` bits of `u`.
#[inline(always)]
fn interpolate(t: &[i32; 2], u: u32, bits: u32) -> i32 {
    let f = (u & ((1 << bits) - 1)) as i32;
    t[0] + (((t[1] - t[0]) * f + (1 << (bits - 1))) >> bits)
}

/// The pair of entries `t[i], t[i+1]` for `i < 512`.
#[inline(always)]
fn pair<T: Copy + Into<i32>>(t: &[T; 513], i: usize) -> [i32; 2] {
    let i = i & 511; // i + 1 <= 512: in bounds by construction
    match (t.get(i), t.get(i + 1)) {
        (Some(&a), Some(&b)) => [a.into(), b.into()],
        _ => [0, 0], // unreachable: 513 entries
    }
}

/// `σ(x)` for `x` in Q3.12 (`x / 4096` ∈ [−8, 8)), in Q0.15: a 513-entry table interpolated over
/// segments of 1/32. Within 1 LSB of `round(σ(x) · 32768)` (checked on all inputs).
#[inline]
pub fn sigmoid_q15(x: i16) -> i16 {
    let u = (x as i32 + 32768) as u32; // 0..=65535
    interpolate(&pair(&SIGMOID_Q15, (u >> 7) as usize), u, 7) as i16
}

/// `tanh(x)` for `x` in Q3.12, in Q0.15: a 513-entry table interpolated over segments of 1/32.
/// Within 4 LSB of `round(tanh(x) · 32768)` (checked on all inputs).
#[inline]
pub fn tanh_q15(x: i16) -> i16 {
    let u = (x as i32 + 32768) as u32;
    interpolate(&pair(&TANH_Q15, (u >> 7) as usize), u, 7) as i16
}

/// `e^(−x)` for `x ≥ 0` in Q5.10 (`x / 1024`), in Q0.15 (`e^0` = 32768): a 513-entry table
/// interpolated over segments of 1/32; 0 from `x = 16` on, 32768 for `x ≤ 0`. Within 5 LSB of
/// `round(e^(−x) · 32768)` (checked on all inputs below 16).
#[inline]
pub fn exp_neg_q15(x: i32) -> u16 {
    if x >= 16 << 10 {
        return 0;
    }
    let u = x.max(0) as u32; // 0..16384
    interpolate(&pair(&EXP_NEG_Q15, (u >> 5) as usize), u, 5) as u16
}

/// `⌊√v⌋`, exactly (bit by bit, no float).
pub fn isqrt(v: u64) -> u32 {
    let mut rem = v;
    let mut root = 0u64;
    let mut bit = 1u64 << 62;
    while bit > v {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root as u32
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kernels::tests::Rng;

    fn q15(v: f64) -> i64 {
        (v * 32768.0).round() as i64
    }

    #[test]
    fn tables_hold_the_rounded_function_values() {
        for i in 0..513 {
            let x = -8.0 + i as f64 / 32.0;
            assert_eq!(
                SIGMOID_Q15[i] as i64,
                q15(1.0 / (1.0 + (-x).exp())).min(32767),
                "σ {i}"
            );
            assert_eq!(
                TANH_Q15[i] as i64,
                q15(x.tanh()).clamp(-32767, 32767),
                "tanh {i}"
            );
            assert_eq!(
                EXP_NEG_Q15[i] as i64,
                q15((-(i as f64) / 32.0).exp()),
                "exp {i}"
            );
        }
    }

    #[test]
    fn sigmoid_tanh_exp_are_within_their_bounds_on_every_input() {
        // every input natively; a sample under Miri (which interprets each instruction)
        let stride = if cfg!(miri) { 97 } else { 1 };
        let (mut es, mut et) = (0i64, 0i64);
        for x in (i16::MIN..=i16::MAX).step_by(stride) {
            let r = x as f64 / 4096.0;
            es = es.max((sigmoid_q15(x) as i64 - q15(1.0 / (1.0 + (-r).exp())).min(32767)).abs());
            et = et.max((tanh_q15(x) as i64 - q15(r.tanh()).clamp(-32767, 32767)).abs());
        }
        assert!(es <= 1, "sigmoid off by {es} LSB");
        assert!(et <= 4, "tanh off by {et} LSB");
        let mut ee = 0i64;
        for x in (0..16 << 10).step_by(stride) {
            ee = ee.max((exp_neg_q15(x) as i64 - q15((-(x as f64) / 1024.0).exp())).abs());
        }
        assert!(ee <= 5, "exp off by {ee} LSB");
        assert_eq!(
            (exp_neg_q15(-5), exp_neg_q15(0), exp_neg_q15(16 << 10)),
            (32768, 32768, 0)
        );
        // monotone, as the softmax and the gates rely on
        for x in (i16::MIN..i16::MAX).step_by(stride) {
            assert!(sigmoid_q15(x) <= sigmoid_q15(x + 1) && tanh_q15(x) <= tanh_q15(x + 1));
        }
    }

    #[test]
    fn requant_rounds_the_exact_product() {
        let mut rng = Rng::new(7);
        for _ in 0..if cfg!(miri) { 100 } else { 100_000 } {
            let f = (rng.f32().abs() as f64 + 1e-9)
                * [1e-6, 1e-3, 0.5, 3.0, 1e4][(rng.next_u64() % 5) as usize];
            let r = Requant::from_factor(f).unwrap();
            assert!(((r.m as f64) / (1u64 << r.shift) as f64 - f).abs() <= f * 1e-9 + 1e-18);
            let acc = (rng.next_u64() as i64) >> 33; // |acc| < 2^31
            let exact = acc as i128 * r.m as i128;
            let want = if r.shift == 0 {
                exact
            } else {
                (exact + (1i128 << (r.shift - 1))).div_euclid(1i128 << r.shift)
            };
            assert_eq!(r.apply(acc) as i128, want, "acc {acc} factor {f}");
        }
        assert_eq!(Requant::from_factor(-1.0), None);
        assert_eq!(Requant::from_factor(f64::NAN), None);
        assert_eq!(Requant::from_factor(3e9), None);
        assert_eq!(Requant::from_factor(0.0).map(|r| r.m), Some(0));
        let half = Requant::from_factor(0.5).unwrap();
        assert_eq!((half.apply(3), half.apply(-3), half.apply(1)), (2, -1, 1)); // halves up
        assert_eq!(
            (sat_i8(300), sat_i8(-300), sat_i16(-40000)),
            (127, -127, -32768)
        );
    }

    /// `norm_i8` against float64 LayerNorm / RMSNorm on the same grids: within 1 LSB of the
    /// rounded exact value (the fixed-point parameters are rounded, so not bit-exact).
    #[test]
    fn integer_norms_match_float64() {
        let mut rng = Rng::new(11);
        for case in 0..if cfg!(miri) { 4 } else { 300 } {
            let w = 1 + (rng.next_u64() % 200) as usize;
            let rms = case % 2 == 1;
            let sx = 1e-5 * (1.0 + (rng.next_u64() % 100) as f64);
            let x: std::vec::Vec<i32> = (0..w)
                .map(|_| ((rng.f32() as f64 * 3.0 + 0.5) / sx * 1e-1) as i32)
                .map(sat_x)
                .collect();
            let g: std::vec::Vec<f64> = (0..w).map(|_| rng.f32() as f64 * 2.0).collect();
            let b: std::vec::Vec<f64> = (0..w)
                .map(|_| if rms { 0.0 } else { rng.f32() as f64 })
                .collect();
            let eps = 1e-5;
            // float64 reference
            let xf: std::vec::Vec<f64> = x.iter().map(|&v| v as f64 * sx).collect();
            let mean = if rms {
                0.0
            } else {
                xf.iter().sum::<f64>() / w as f64
            };
            let var = xf.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / w as f64;
            let y: std::vec::Vec<f64> = (0..w)
                .map(|i| (xf[i] - mean) / (var + eps).sqrt() * g[i] + b[i])
                .collect();
            let s_out = y.iter().fold(1e-9f64, |m, v| m.max(v.abs())) / 127.0;
            // the converter's parameters (converter/src/integer.rs `IntCx::norm`)
            let gm: std::vec::Vec<f64> = g
                .iter()
                .map(|g| g / s_out / 65536.0 * 2f64.powi(32))
                .collect();
            let bm: std::vec::Vec<f64> = b.iter().map(|b| b / s_out).collect();
            let fits = |e: i32| {
                gm.iter()
                    .chain(&bm)
                    .all(|v| (v * 2f64.powi(e)).abs() < 2147483647.0)
            };
            let e = (0..=30).rev().find(|&e| fits(e)).unwrap();
            let mut p: std::vec::Vec<i32> = gm
                .iter()
                .map(|v| (v * 2f64.powi(e)).round() as i32)
                .collect();
            p.extend(bm.iter().map(|v| (v * 2f64.powi(e)).round() as i32));
            let ep = (eps / (sx * sx)).round().max(1.0) as u64;
            p.extend([e, ep as u32 as i32, (ep >> 32) as i32]);
            let mut out = std::vec![0i8; w];
            norm_i8(&x, &p, rms, &mut out);
            for i in 0..w {
                let want = (y[i] / s_out).round().clamp(-127.0, 127.0);
                let d = (out[i] as f64 - want).abs();
                assert!(
                    d <= 1.0,
                    "case {case} w {w} rms {rms} i {i}: {} vs {want}",
                    out[i]
                );
            }
        }
    }

    /// The matrix epilogue (`IntMat::to_i8`, `to_x`) with the build's row kernel against plain
    /// exact arithmetic: `reference::dot_i8` sums, the bias, and the rounding of
    /// `(sum · m) / 2^shift` in i128.
    #[test]
    fn matrix_epilogue_matches_plain_exact_arithmetic() {
        use crate::kernels::reference;
        let mut rng = Rng::new(5);
        for case in 0..if cfg!(miri) { 3 } else { 200 } {
            let rows = 1 + (rng.next_u64() % 40) as usize;
            let cols = 1 + (rng.next_u64() % 130) as usize;
            let mut int8 = || ((rng.next_u64() % 255) as i32 - 127) as i8;
            let q: std::vec::Vec<i8> = (0..rows * cols).map(|_| int8()).collect();
            let x: std::vec::Vec<i8> = (0..cols).map(|_| int8()).collect();
            let shift = 20 + (rng.next_u64() % 20) as i32;
            let mut rq: std::vec::Vec<i32> = (0..rows)
                .map(|_| (rng.next_u64() % (1 << 31)) as i32)
                .collect();
            rq.push(shift);
            let bias: std::vec::Vec<i32> = (0..rows)
                .map(|_| (rng.next_u64() % (1 << 20)) as i32 - (1 << 19))
                .collect();
            let scales = std::vec![1.0f32; rows];
            let m = IntMat {
                w: Mat {
                    rows,
                    cols,
                    data: MatData::I8 {
                        q: &q,
                        scales: &scales,
                    },
                },
                rq: &rq,
                bias: &bias,
            };
            let want = |r: usize| {
                let acc =
                    reference::dot_i8(&q[r * cols..(r + 1) * cols], &x) as i128 + bias[r] as i128;
                let p = acc * rq[r] as i128;
                (p + (1i128 << (shift - 1))).div_euclid(1i128 << shift)
            };
            let mut sums = std::vec![0i32; rows];
            let mut out = std::vec![0i8; rows];
            m.to_i8(&x, &mut sums, &mut out);
            let base: std::vec::Vec<i32> = (0..rows).map(|r| r as i32 * 1000 - 7).collect();
            let mut xs = base.clone();
            m.to_x(&x, &mut sums, &mut xs, true);
            for r in 0..rows {
                let w = want(r);
                assert_eq!(out[r] as i128, w.clamp(-127, 127), "case {case} row {r}");
                let wx = (base[r] as i128 + w).clamp(-(X_MAX as i128), X_MAX as i128);
                assert_eq!(xs[r] as i128, wx, "case {case} row {r} (x)");
            }
        }
    }

    /// The 32-bit requantization (its high-word path for shifts ≥ 32, saturation below) against
    /// the exact rounded quotient in i128, for every shift.
    #[test]
    fn rescale_i32_is_the_saturated_exact_rounding() {
        let mut rng = Rng::new(9);
        for _ in 0..if cfg!(miri) { 500 } else { 200_000 } {
            let acc = (rng.next_u64() as i64 >> (32 + rng.next_u64() % 32)) as i32;
            let m = (rng.next_u64() % (1 << 31)) as i32;
            let shift = (rng.next_u64() % 63) as u32;
            let p = acc as i128 * m as i128;
            let want = if shift == 0 {
                p
            } else {
                (p + (1i128 << (shift - 1))).div_euclid(1i128 << shift)
            };
            let want = want.clamp(i32::MIN as i128, i32::MAX as i128);
            assert_eq!(
                rescale_i32(acc, m, shift) as i128,
                want,
                "{acc} {m} {shift}"
            );
            // the 32-bit pieces themselves (a 64-bit host's `rescale_i32` does not take them)
            let pieces = match shift {
                0 => want as i32,
                1..=31 => {
                    assert_eq!(
                        rescale_lo(acc, m, shift),
                        want as i32,
                        "lo {acc} {m} {shift}"
                    );
                    rescale_short(acc, m, shift)
                }
                _ => rescale_hi(acc, m, shift),
            };
            assert_eq!(pieces as i128, want, "32-bit {acc} {m} {shift}");
            let hi = (acc as i128 * m as i128 + (1 << 31)) >> 32;
            assert_eq!(
                crate::kernels::mul_hi_round(acc, m) as i128,
                hi,
                "smmulr {acc} {m}"
            );
        }
    }

    #[test]
    fn lut_indexes_by_the_input_byte() {
        let table: std::vec::Vec<u8> = (0..=255u8)
            .map(|b| (b as i8).wrapping_neg() as u8)
            .collect();
        let words: std::vec::Vec<i32> = table
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut x: std::vec::Vec<i8> = (-128..=127).collect();
        lut_i8(&words, &mut x);
        for (v, want) in x.iter().zip(-128i32..=127) {
            assert_eq!(*v as i32, (want as i8).wrapping_neg() as i32);
        }
    }

    /// Logits at both ends of their range (`max − s = 2^31`) give the lower ones no weight, on the
    /// fast path (eight lanes, then the tail) as in the plain form.
    #[test]
    fn softmax_gives_no_weight_to_a_logit_2_to_31_below_the_maximum() {
        let mut fast: std::vec::Vec<i32> = (0..19)
            .map(|i| if i % 2 == 0 { 1 << 30 } else { -(1 << 30) })
            .collect();
        let mut plain = fast.clone();
        softmax_q15(&mut fast);
        softmax_q15_plain(&mut plain);
        assert_eq!(fast, plain);
        // ten at the maximum share the weight: (32768 · ⌊2^46 / (10 · 2^15)⌋ + 2^30) >> 31
        let each = ((32768u64 * ((1u64 << 46) / (10 * 32768)) + (1 << 30)) >> 31) as i32;
        for (i, &p) in plain.iter().enumerate() {
            assert_eq!(p, if i % 2 == 0 { each } else { 0 }, "slot {i}");
        }
    }

    #[test]
    fn isqrt_is_the_exact_floor() {
        let check = |v: u64| {
            let r = isqrt(v) as u128;
            assert!(
                r * r <= v as u128 && (r + 1) * (r + 1) > v as u128,
                "isqrt({v}) = {r}"
            );
        };
        for v in 0..if cfg!(miri) { 300 } else { 10_000 } {
            check(v);
        }
        let mut rng = Rng::new(3);
        for _ in 0..if cfg!(miri) { 100 } else { 100_000 } {
            check(rng.next_u64() >> (rng.next_u64() % 64));
        }
        check(u64::MAX);
    }
}
