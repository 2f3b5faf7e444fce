//! Plain, obviously correct kernels. Every optimised variant in [`super::arch`] must return
//! exactly what these return (the integer kernels) — the shared harness in
//! `kernels::tests` checks it on fixed seeds and random inputs.
//!
//! The float dot products define runnel's one summation order, [`LANES`]-way interleaved: every
//! target — and every optimised variant — must add in exactly this order, and that is what makes
//! every target produce the same bits. (Eight independent partial sums also let a compiler keep
//! them in vector registers without reassociating anything.)

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
