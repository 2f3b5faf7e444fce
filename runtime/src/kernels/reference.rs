//! Plain, obviously correct kernels. Every optimised variant in [`super::arch`] must return
//! exactly what these return (the integer kernels) — the shared harness in
//! `kernels::tests` checks it on fixed seeds and random inputs.
//!
//! The float kernels here are also the only float kernels: they sum strictly left to right, and
//! that fixed order is what makes every target produce the same bits.

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

/// `Σ a[i]·b[i]` in f32, left to right.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (&x, &y) in a.iter().zip(b) {
        acc += x * y;
    }
    acc
}

/// `Σ f32(a[i])·b[i]` in f32, left to right.
#[inline]
pub fn dot_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (&x, &y) in a.iter().zip(b) {
        acc += x.to_f32() * y;
    }
    acc
}

/// `Σ f32(a[i])·b[i]` in f32, left to right (int8 KV rows against a query).
#[inline]
pub fn dot_i8_f32(a: &[i8], b: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (&x, &y) in a.iter().zip(b) {
        acc += x as f32 * y;
    }
    acc
}
