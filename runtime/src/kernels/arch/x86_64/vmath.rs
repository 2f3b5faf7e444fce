//! `expf` and `tanhf` for eight lanes at a time (AVX2), bit-identical to `libm`'s scalar
//! functions, which are runnel's definition of these functions on every target.
//!
//! Both are transcriptions of libm 0.2's FreeBSD-derived code (`expf.rs`, `tanhf.rs`,
//! `expm1f.rs`): the same f32 operations in the same order, with every branch computed for every
//! lane and the lane's own branch selected by a mask. IEEE arithmetic is the same in a vector lane
//! as in a scalar register (x86_64 computes scalar f32 with SSE too, round-to-nearest, no
//! flush-to-zero), so each lane gets libm's bits. Lanes outside the transcribed domain (NaN,
//! `|x|` large enough for overflow/underflow handling) make the whole group of eight fall back to
//! the scalar libm call. The tests compare against libm on millions of inputs, and an ignored
//! test on all 2^32.

#![allow(clippy::excessive_precision)] // libm's constants are copied verbatim

use core::arch::x86_64::*;

// The constants are libm's bits (their decimal forms above are libm's own literals).
const _: () = assert!(1.4426950216e+00_f32.to_bits() == 0x3fb8_aa3b);
const _: () = assert!(6.9314575195e-01_f32.to_bits() == 0x3f31_7200);
const _: () = assert!(6.9313812256e-01_f32.to_bits() == 0x3f31_7180);
const _: () = assert!(9.0580006145e-06_f32.to_bits() == 0x3717_f7d1);
const _: () = assert!(1.4286067653e-06_f32.to_bits() == 0x35bf_be8e);

/// Eight `f32::to_bits` as i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn bits(x: __m256) -> __m256i {
    _mm256_castps_si256(x)
}

/// `f32::from_bits(((0x7f + k) << 23) as u32)` per lane: 2^k for `-126 ≤ k ≤ 127`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pow2(k: __m256i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        k,
        _mm256_set1_epi32(0x7f),
    )))
}

/// Lanes of `a > b` as signed i32 (all bit patterns compared here are non-negative).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn gt(a: __m256i, b: i32) -> __m256 {
    _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(b)))
}

/// Lanes of `k == n`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn eq(k: __m256i, n: i32) -> __m256 {
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(n)))
}

/// `if m { a } else { b }` per lane.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sel(m: __m256, a: __m256, b: __m256) -> __m256 {
    _mm256_blendv_ps(b, a, m)
}

/// `if m { a } else { b }` per i32 lane.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn seli(m: __m256, a: __m256i, b: __m256i) -> __m256i {
    _mm256_castps_si256(_mm256_blendv_ps(
        _mm256_castsi256_ps(b),
        _mm256_castsi256_ps(a),
        m,
    ))
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

/// `libm::expf` on eight lanes, or `None` if a lane needs libm's special-case handling
/// (`|x| ≥ 87.33655` or NaN).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn expf8(x: __m256) -> Option<__m256> {
    // libm's constants, copied verbatim (the literals name exactly libm's bits)
    const LN2_HI: f32 = 6.9314575195e-01; // 0x3f317200
    const LN2_LO: f32 = 1.4286067653e-06; // 0x35bfbe8e
    const INV_LN2: f32 = 1.4426950216e+00; // 0x3fb8aa3b
    const P1: f32 = 1.6666625440e-1;
    const P2: f32 = -2.7667332906e-3;
    let hx = _mm256_and_si256(bits(x), _mm256_set1_epi32(0x7fff_ffff));
    if _mm256_movemask_ps(gt(hx, 0x42ae_ac4f)) != 0 {
        return None; // |x| >= 87.33655 or NaN: overflow, underflow, NaN paths
    }
    let neg = _mm256_castsi256_ps(_mm256_srai_epi32::<31>(bits(x))); // sign lanes
                                                                     // k: trunc(INV_LN2·x ± 0.5) beyond 1.5 ln2, ±1 beyond 0.5 ln2, else 0
    let half = sel(neg, splat(-0.5), splat(0.5));
    let k_far = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(splat(INV_LN2), x), half));
    let one = seli(neg, _mm256_set1_epi32(-1), _mm256_set1_epi32(1));
    let k = seli(
        gt(hx, 0x3f85_1592),
        k_far,
        seli(gt(hx, 0x3eb1_7218), one, _mm256_setzero_si256()),
    );
    // with k = 0 these are hi = x, lo = 0, x unchanged: libm's middle case exactly
    let kf = _mm256_cvtepi32_ps(k);
    let hi = _mm256_sub_ps(x, _mm256_mul_ps(kf, splat(LN2_HI)));
    let lo = _mm256_mul_ps(kf, splat(LN2_LO));
    let r = _mm256_sub_ps(hi, lo);
    let xx = _mm256_mul_ps(r, r);
    let c = _mm256_sub_ps(
        r,
        _mm256_mul_ps(xx, _mm256_add_ps(splat(P1), _mm256_mul_ps(xx, splat(P2)))),
    );
    let q = _mm256_div_ps(_mm256_mul_ps(r, c), _mm256_sub_ps(splat(2.0), c));
    let y = _mm256_add_ps(splat(1.0), _mm256_add_ps(_mm256_sub_ps(q, lo), hi));
    // scalbnf(y, k) for -126 <= k <= 126 is one exact power-of-two multiply (k = 0: y itself)
    let y = _mm256_mul_ps(y, pow2(k));
    // |x| <= 2^-14: 1 + x
    let tiny = _mm256_add_ps(splat(1.0), x);
    Some(sel(gt(hx, 0x3900_0000), y, tiny))
}

/// `libm::expm1f` on eight lanes of `v` with `-0.55 < v ≤ 20` (what [`tanhf8`] passes).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn expm1f8(v: __m256) -> __m256 {
    const LN2_HI: f32 = 6.9313812256e-01; // 0x3f317180
    const LN2_LO: f32 = 9.0580006145e-06; // 0x3717f7d1
    const INV_LN2: f32 = 1.4426950216e+00; // 0x3fb8aa3b
    const Q1: f32 = -3.3333212137e-2;
    const Q2: f32 = 1.5807170421e-3;
    let hx = _mm256_and_si256(bits(v), _mm256_set1_epi32(0x7fff_ffff));
    let neg = _mm256_castsi256_ps(_mm256_srai_epi32::<31>(bits(v)));
    let half = sel(neg, splat(-0.5), splat(0.5));
    let k_far = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(splat(INV_LN2), v), half));
    let one = seli(neg, _mm256_set1_epi32(-1), _mm256_set1_epi32(1));
    // |v| > 0.5 ln2: ±1 below 1.5 ln2, else the rounded quotient; |v| ≤ 0.5 ln2: 0
    let k = seli(
        gt(hx, 0x3eb1_7218),
        seli(gt(hx, 0x3F85_1591), k_far, one),
        _mm256_setzero_si256(),
    );
    // k = ±1 gives libm's `v ∓ LN2_HI`, `±LN2_LO` (the same bits); k = 0 gives c = 0, x = v
    let t = _mm256_cvtepi32_ps(k);
    let hi = _mm256_sub_ps(v, _mm256_mul_ps(t, splat(LN2_HI)));
    let lo = _mm256_mul_ps(t, splat(LN2_LO));
    let x = _mm256_sub_ps(hi, lo);
    let c = _mm256_sub_ps(_mm256_sub_ps(hi, x), lo);
    let hfx = _mm256_mul_ps(splat(0.5), x);
    let hxs = _mm256_mul_ps(x, hfx);
    let r1 = _mm256_add_ps(
        splat(1.0),
        _mm256_mul_ps(hxs, _mm256_add_ps(splat(Q1), _mm256_mul_ps(hxs, splat(Q2)))),
    );
    let tt = _mm256_sub_ps(splat(3.0), _mm256_mul_ps(r1, hfx));
    let e = _mm256_mul_ps(
        hxs,
        _mm256_div_ps(
            _mm256_sub_ps(r1, tt),
            _mm256_sub_ps(splat(6.0), _mm256_mul_ps(x, tt)),
        ),
    );
    // k == 0
    let r_k0 = _mm256_sub_ps(x, _mm256_sub_ps(_mm256_mul_ps(x, e), hxs));
    let e = _mm256_sub_ps(_mm256_sub_ps(_mm256_mul_ps(x, _mm256_sub_ps(e, c)), c), hxs);
    // k == -1
    let r_km1 = _mm256_sub_ps(_mm256_mul_ps(splat(0.5), _mm256_sub_ps(x, e)), splat(0.5));
    // k == 1
    let r_k1 = sel(
        _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(-0.25)),
        _mm256_mul_ps(splat(-2.0), _mm256_sub_ps(e, _mm256_add_ps(x, splat(0.5)))),
        _mm256_add_ps(splat(1.0), _mm256_mul_ps(splat(2.0), _mm256_sub_ps(x, e))),
    );
    // 2 ≤ k ≤ 56 (here k ≤ 29)
    let twopk = pow2(k);
    let uf = pow2(_mm256_sub_epi32(_mm256_setzero_si256(), k)); // 2^-k
    let r_lt23 = _mm256_mul_ps(
        _mm256_add_ps(_mm256_sub_ps(x, e), _mm256_sub_ps(splat(1.0), uf)),
        twopk,
    );
    let r_ge23 = _mm256_mul_ps(
        _mm256_add_ps(_mm256_sub_ps(x, _mm256_add_ps(e, uf)), splat(1.0)),
        twopk,
    );
    let r_big = sel(
        _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(23), k)),
        r_lt23,
        r_ge23,
    );
    let r = sel(
        eq(k, 0),
        r_k0,
        sel(eq(k, -1), r_km1, sel(eq(k, 1), r_k1, r_big)),
    );
    // |v| < 2^-25: v itself
    sel(gt(hx, 0x32ff_ffff), r, v)
}

/// `libm::tanhf` on eight lanes, or `None` if a lane is NaN.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tanhf8(x: __m256) -> Option<__m256> {
    let sign = _mm256_and_si256(bits(x), _mm256_set1_epi32(i32::MIN));
    let w = _mm256_and_si256(bits(x), _mm256_set1_epi32(0x7fff_ffff));
    if _mm256_movemask_ps(gt(w, 0x7f80_0000)) != 0 {
        return None;
    }
    let ax = _mm256_castsi256_ps(w);
    let two = _mm256_mul_ps(splat(2.0), ax);
    // one expm1f per lane: of 2|x| above log(5/3)/2, of -2|x| below
    let upper = gt(w, 0x3e82_c578);
    let t = expm1f8(sel(upper, two, _mm256_mul_ps(splat(-2.0), ax)));
    let t2 = _mm256_add_ps(t, splat(2.0));
    let far = _mm256_sub_ps(splat(1.0), _mm256_div_ps(splat(2.0), t2)); // |x| > 0.5493
    let mid = _mm256_div_ps(t, t2); // |x| > 0.2554
    let near = _mm256_div_ps(_mm256_xor_ps(t, splat(-0.0)), t2); // -t / (t + 2)
    let tt = sel(
        gt(w, 0x3f0c_9f54),
        // |x| > 10: 1 + 0/|x| = 1
        sel(gt(w, 0x4120_0000), splat(1.0), far),
        sel(upper, mid, sel(gt(w, 0x007f_ffff), near, ax)),
    );
    Some(_mm256_xor_ps(tt, _mm256_castsi256_ps(sign)))
}

/// `1 / (1 + expf(-x))` on eight lanes (`None` as [`expf8`]).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sigmoid8(x: __m256) -> Option<__m256> {
    let e = expf8(_mm256_xor_ps(x, splat(-0.0)))?;
    Some(_mm256_div_ps(splat(1.0), _mm256_add_ps(splat(1.0), e)))
}

/// Applies the eight-lane expression `$f8` (an `Option<__m256>` of `v`) to each group of eight of
/// `$x`, and the scalar `$f` where it declines and on the tail. A macro, so that everything
/// inlines into the caller's `target_feature` context.
macro_rules! map8 {
    ($x:expr, |$v:ident| $f8:expr, $f:expr) => {{
        let mut chunks = $x.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: `c` holds 8 f32; unaligned load.
            let $v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
            match $f8 {
                // SAFETY: as above, store.
                Some(r) => unsafe { _mm256_storeu_ps(c.as_mut_ptr(), r) },
                None => c.iter_mut().for_each(|v| *v = $f(*v)),
            }
        }
        for v in chunks.into_remainder() {
            *v = $f(*v);
        }
    }};
}

/// `x[i] = libm::expf(x[i])`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn exp_avx2(x: &mut [f32]) {
    map8!(x, |v| expf8(v), libm::expf);
}

/// `x[i] = libm::tanhf(x[i])`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn tanh_avx2(x: &mut [f32]) {
    map8!(x, |v| tanhf8(v), libm::tanhf);
}

/// `x[i] = 1 / (1 + libm::expf(-x[i]))`, [`crate::kernels::sigmoid`] exactly.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn sigmoid_avx2(x: &mut [f32]) {
    map8!(x, |v| sigmoid8(v), crate::kernels::sigmoid);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    /// Checks the three vector functions against libm on the bit patterns `start, start + step,
    /// …` (every class of input: zeros, subnormals, each branch boundary, overflow, inf, NaN).
    type Vector = unsafe fn(&mut [f32]);
    type Scalar = fn(f32) -> f32;

    fn sweep(step: u64) {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let fns: [(&str, Vector, Scalar); 3] = [
            ("expf", super::exp_avx2, libm::expf),
            ("tanhf", super::tanh_avx2, libm::tanhf),
            ("sigmoid", super::sigmoid_avx2, crate::kernels::sigmoid),
        ];
        const BLOCK: u64 = 1 << 22; // bit patterns per block
        for block in 0..(1u64 << 32) / BLOCK {
            let xs: Vec<f32> = (block * BLOCK..(block + 1) * BLOCK)
                .step_by(step as usize)
                .map(|b| f32::from_bits(b as u32))
                .collect();
            for (name, vector, scalar) in fns {
                let mut got = xs.clone();
                // SAFETY: AVX2 detected above.
                unsafe { vector(&mut got) };
                for (x, g) in xs.iter().zip(&got) {
                    let want = scalar(*x);
                    assert!(
                        g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                        "{name}({x:e} = {:#010x}) = {g:e}, libm {want:e}",
                        x.to_bits()
                    );
                }
            }
        }
    }

    /// About 34 million inputs per function (every 127th bit pattern: an odd stride, so every
    /// exponent and many mantissas), plus the boundaries of every branch.
    #[test]
    fn vector_exp_tanh_sigmoid_equal_libm() {
        sweep(127);
        let edges: [u32; 12] = [
            0x3900_0000,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x3f0c_9f54,
            0x3e82_c578,
            0x4120_0000,
            0x0080_0000,
            0x3300_0000,
            0x3F85_1591,
            0x4195_b844,
            0x41a0_0000,
        ];
        let mut xs: Vec<f32> = Vec::new();
        for e in edges {
            for d in 0..64u32 {
                for b in [e.wrapping_add(d), e.wrapping_sub(d)] {
                    xs.push(f32::from_bits(b));
                    xs.push(-f32::from_bits(b));
                }
            }
        }
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let (mut e, mut t, mut s) = (xs.clone(), xs.clone(), xs.clone());
        // SAFETY: AVX2 detected above.
        unsafe {
            super::exp_avx2(&mut e);
            super::tanh_avx2(&mut t);
            super::sigmoid_avx2(&mut s);
        }
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(e[i].to_bits(), libm::expf(x).to_bits(), "expf({x:e})");
            assert_eq!(t[i].to_bits(), libm::tanhf(x).to_bits(), "tanhf({x:e})");
            assert_eq!(
                s[i].to_bits(),
                crate::kernels::sigmoid(x).to_bits(),
                "sigmoid({x:e})"
            );
        }
    }

    /// All 2^32 inputs (minutes in a release build):
    /// `cargo test --release -p runnel vector_math_exhaustive -- --ignored`.
    #[test]
    #[ignore]
    fn vector_math_exhaustive() {
        sweep(1);
    }
}
