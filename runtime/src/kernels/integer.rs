//! Integer kernels for the integer-only mode (docs/INTEGER.md; the mode itself is not wired into
//! the step yet): fixed-point requantization, sigmoid and tanh from Q3.12 to Q0.15, `e^(−x)` for
//! the softmax, an exact integer square root. Only integer operations, so every target computes
//! the same values; each function's exact definition is in its documentation, and the tests
//! check it against float64 mathematics with the error bound written down.

use super::int_tables::{EXP_NEG_Q15, SIGMOID_Q15, TANH_Q15};

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
        let p = acc.wrapping_mul(self.m as i64);
        match self.shift {
            0 => p,
            s => (p.wrapping_add(1i64 << (s - 1))) >> s,
        }
    }
}

/// `x` saturated to `[−127, 127]` (the symmetric int8 range).
#[inline]
pub fn sat_i8(x: i64) -> i8 {
    x.clamp(-127, 127) as i8
}

/// `x` saturated to `[−32767, 32767]`.
#[inline]
pub fn sat_i16(x: i64) -> i16 {
    x.clamp(-32767, 32767) as i16
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
            (127, -127, -32767)
        );
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
