//! The shared kernel harness: every optimised variant against [`super::reference`] on fixed seeds
//! and random inputs, and every kernel against an f64 computation with its error bound written
//! down.

extern crate std;
use std::vec::Vec;

use super::*;

/// xorshift64*: a tiny deterministic generator so the harness needs no dependency.
pub(crate) struct Rng(u64);
impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn i8(&mut self) -> i8 {
        (self.next_u64() >> 56) as u8 as i8
    }
    /// Uniform in [-1, 1).
    pub(crate) fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `n` seeds, or 2 under Miri (which interprets every instruction; the 32-bit and UB checks
/// need the code paths, not the repetitions).
fn seeds(n: u64) -> u64 {
    if cfg!(miri) {
        2
    } else {
        n
    }
}

/// Lengths that hit every SIMD tail.
const LENGTHS: &[usize] = &[
    0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 127, 255, 1000,
];

/// Every int8 dot variant this machine can run: (name, function).
type DotI8 = fn(&[i8], &[i8]) -> i32;

fn i8_variants() -> Vec<(&'static str, DotI8)> {
    let mut v: Vec<(&'static str, DotI8)> = std::vec![
        ("dispatch", dot_i8 as DotI8),
        ("reference", reference::dot_i8)
    ];
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        fn avx2(a: &[i8], b: &[i8]) -> i32 {
            // SAFETY: only registered after the CPU reported AVX2.
            unsafe { arch::x86_64::dot_i8_avx2(a, b) }
        }
        v.push(("avx2", avx2));
    }
    #[cfg(runnel_arm_dsp)]
    v.push(("arm-dsp", arch::arm::dot_i8_dsp));
    v.push(("riscv32-unrolled", arch::riscv32::dot_i8_unrolled));
    v
}

#[test]
fn every_i8_dot_variant_equals_reference() {
    for (name, f) in i8_variants() {
        for seed in 0..seeds(20) {
            let mut rng = Rng::new(seed);
            for &n in LENGTHS {
                let a: Vec<i8> = (0..n).map(|_| rng.i8()).collect();
                let b: Vec<i8> = (0..n).map(|_| rng.i8()).collect();
                assert_eq!(
                    f(&a, &b),
                    reference::dot_i8(&a, &b),
                    "{name} n={n} seed={seed}"
                );
            }
        }
        // Extremes: the largest magnitude sums.
        let a = std::vec![-128i8; 4099];
        assert_eq!(f(&a, &a), 128 * 128 * 4099, "{name} extremes");
        let b = std::vec![127i8; 4099];
        assert_eq!(f(&a, &b), -128 * 127 * 4099, "{name} mixed extremes");
    }
}

/// Every int8 row kernel this machine can run: (name, function). The Arm DSP kernel is inline
/// assembly and cannot run on the host: the firmware bench checks it against
/// [`reference::rows_i8`] on the Cortex-M4 (exit status 1 on a mismatch).
type RowsI8 = fn(&[i8], &[f32], usize, &[i8], f32, &[f32], &mut [f32]);

fn generic_rows_with_reference_dot(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    rows_i8_with(reference::dot_i8, q, scales, cols, xq, sx, bias, out)
}

fn rows_variants() -> [(&'static str, RowsI8); 4] {
    [
        ("selected", isa::rows_i8),
        ("dispatch", rows_i8),
        ("riscv32-blocked", arch::riscv32::rows_i8),
        ("generic", generic_rows_with_reference_dot),
    ]
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs every row kernel on one case and compares the whole `out` (rows it must not write
/// included) with the reference.
#[allow(clippy::too_many_arguments)]
fn check_rows(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out_len: usize,
    what: &str,
) {
    const UNTOUCHED: f32 = 12345.5;
    let mut want = std::vec![UNTOUCHED; out_len];
    reference::rows_i8(q, scales, cols, xq, sx, bias, &mut want);
    for (name, f) in rows_variants() {
        let mut got = std::vec![UNTOUCHED; out_len];
        f(q, scales, cols, xq, sx, bias, &mut got);
        assert_eq!(bits(&got), bits(&want), "{name} {what}");
    }
}

/// Every exact row-sum kernel this machine can run (the Arm one only on the target: the
/// firmware bench checks it).
type DotRowsI8 = fn(&[i8], usize, &[i8], &mut [i32]);

fn dot_rows_variants() -> Vec<(&'static str, DotRowsI8)> {
    fn generic(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
        dot_rows_i8_with(reference::dot_i8, q, cols, xq, sums)
    }
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, DotRowsI8)> = std::vec![
        ("dispatch", dot_rows_i8),
        ("riscv32-blocked", arch::riscv32::dot_rows_i8_blocked),
        ("generic", generic),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend(arch::x86_64::dot_rows_variants());
    v
}

#[test]
fn every_i8_row_sum_kernel_equals_reference() {
    for seed in 0..seeds(8) {
        let mut rng = Rng::new(seed);
        for _ in 0..if cfg!(miri) { 6 } else { 40 } {
            let rows = (rng.next_u64() % 23) as usize;
            let cols = match rng.next_u64() % 4 {
                0 => (rng.next_u64() % 4) as usize,
                1 => 96,
                _ => (rng.next_u64() % 70) as usize,
            };
            let q: Vec<i8> = (0..rows * cols + (rng.next_u64() % 3) as usize)
                .map(|_| rng.i8())
                .collect();
            let xq: Vec<i8> = (0..cols + (rng.next_u64() % 2) as usize)
                .map(|_| rng.i8())
                .collect();
            for out_len in [rows, rows + 3, rows.saturating_sub(2)] {
                let mut want = std::vec![-7i32; out_len];
                reference::dot_rows_i8(&q, cols, &xq, &mut want);
                for (name, f) in dot_rows_variants() {
                    let mut got = std::vec![-7i32; out_len];
                    f(&q, cols, &xq, &mut got);
                    assert_eq!(got, want, "{name} rows={rows} cols={cols} seed={seed}");
                    if cols > 0 {
                        let mut got = std::vec![-7i32; out_len];
                        f(&q, cols, &xq[..cols - 1], &mut got);
                        assert!(got.iter().all(|&v| v == -7), "{name}: short xq");
                    }
                }
            }
        }
    }
    // Extreme bytes (−128 weights, where a sign trick would overflow) over every SIMD width.
    for (rows, cols) in [(5usize, 96usize), (8, 100), (4, 33), (9, 192)] {
        for seed in 0..4u64 {
            let mut rng = Rng::new(seed);
            let mut byte = || [-128i8, 127][(rng.next_u64() & 1) as usize];
            let q: Vec<i8> = (0..rows * cols).map(|_| byte()).collect();
            let xq: Vec<i8> = (0..cols).map(|_| byte()).collect();
            let mut want = std::vec![0i32; rows];
            reference::dot_rows_i8(&q, cols, &xq, &mut want);
            for (name, f) in dot_rows_variants() {
                let mut got = std::vec![0i32; rows];
                f(&q, cols, &xq, &mut got);
                assert_eq!(got, want, "{name} extremes rows={rows} cols={cols}");
            }
        }
    }
}

/// The row sums plus a bias (the integer step's products): this build's kernel and the generic
/// form over every row-sum kernel, against the reference, including short biases and outputs.
#[test]
fn every_i8_row_sum_with_bias_equals_reference() {
    for seed in 0..seeds(8) {
        let mut rng = Rng::new(100 + seed);
        for _ in 0..if cfg!(miri) { 6 } else { 40 } {
            let rows = (rng.next_u64() % 23) as usize;
            let cols = match rng.next_u64() % 4 {
                0 => (rng.next_u64() % 4) as usize,
                1 => 96,
                2 => 260,
                _ => (rng.next_u64() % 70) as usize,
            };
            let q: Vec<i8> = (0..rows * cols).map(|_| rng.i8()).collect();
            let xq: Vec<i8> = (0..cols).map(|_| rng.i8()).collect();
            let bias: Vec<i32> = (0..rows + 2)
                .map(|_| rng.next_u64() as i32 >> (rng.next_u64() % 32))
                .collect();
            for (out_len, nb) in [
                (rows, rows),
                (rows + 3, rows + 2),
                (rows + 1, rows.saturating_sub(2)),
            ] {
                let bias = &bias[..nb];
                let mut want = std::vec![-7i32; out_len];
                reference::dot_rows_bias_i8(&q, cols, &xq, bias, &mut want);
                let mut got = std::vec![-7i32; out_len];
                dot_rows_bias_i8(&q, cols, &xq, bias, &mut got);
                assert_eq!(got, want, "dispatch rows={rows} cols={cols} bias={nb}");
                for (name, f) in dot_rows_variants() {
                    let mut got = std::vec![-7i32; out_len];
                    dot_rows_bias_i8_via(f, &q, cols, &xq, bias, &mut got);
                    assert_eq!(got, want, "{name} rows={rows} cols={cols} bias={nb}");
                }
                if cols > 0 {
                    let mut got = std::vec![-7i32; out_len];
                    dot_rows_bias_i8(&q, cols, &xq[..cols - 1], bias, &mut got);
                    assert!(got.iter().all(|&v| v == -7), "short xq");
                }
            }
        }
    }
}

/// The strided row sums (attention scores over cached keys, the weighted sum over transposed
/// values) against the reference: strides below, at and above the columns, i16 values past the
/// i16 range (saturated), short matrices.
#[test]
fn strided_row_sums_equal_reference() {
    for seed in 0..seeds(8) {
        let mut rng = Rng::new(200 + seed);
        for _ in 0..if cfg!(miri) { 6 } else { 60 } {
            let rows = (rng.next_u64() % 13) as usize;
            let cols = [0usize, 1, 3, 4, 8, 24, 48, 52][(rng.next_u64() % 8) as usize];
            let stride = match rng.next_u64() % 4 {
                0 => cols,
                1 => cols + 4 * (rng.next_u64() % 30) as usize,
                2 => cols + (rng.next_u64() % 7) as usize,
                _ => (rng.next_u64() % (cols as u64 + 1)) as usize,
            };
            let len = rows * stride.max(cols) + (rng.next_u64() % 5) as usize;
            let q: Vec<i8> = (0..len).map(|_| rng.i8()).collect();
            let x8: Vec<i8> = (0..cols).map(|_| rng.i8()).collect();
            let x16: Vec<i32> = (0..cols)
                .map(|_| rng.next_u64() as i32 >> (rng.next_u64() % 32))
                .collect();
            let out_len = rows + (rng.next_u64() % 3) as usize;
            let mut want = std::vec![-7i32; out_len];
            reference::dot_rows_strided(&q, stride, &x8, &[], &mut want);
            let mut got = std::vec![-7i32; out_len];
            dot_rows_strided_i8(&q, stride, &x8, &mut got);
            assert_eq!(got, want, "i8 rows={rows} cols={cols} stride={stride}");
            let mut want = std::vec![-7i32; out_len];
            reference::dot_rows_strided(&q, stride, &[], &x16, &mut want);
            let mut got = std::vec![-7i32; out_len];
            dot_rows_strided_q15(&q, stride, &x16, &mut got);
            assert_eq!(got, want, "q15 rows={rows} cols={cols} stride={stride}");
            // the definition: row r from r · stride, i16 values saturated
            for (r, &v) in want.iter().enumerate().take(rows.min(out_len)) {
                if cols > 0 && r * stride + cols <= q.len() {
                    let row = &q[r * stride..r * stride + cols];
                    let d: i64 = row
                        .iter()
                        .zip(&x16)
                        .map(|(&a, &b)| a as i64 * b.clamp(-32768, 32767) as i64)
                        .sum();
                    assert_eq!(v, d as i32, "definition row {r}");
                }
            }
        }
    }
}

#[test]
fn every_i8_row_kernel_is_bit_identical_to_reference() {
    // Row counts around the blocks (4 rows), columns around every unroll (4, 8, 16) and the
    // demo model's 96 and 192, plus random shapes.
    let fixed_cols: &[usize] = &[
        0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 31, 33, 96, 192,
    ];
    for seed in 0..seeds(8) {
        let mut rng = Rng::new(seed);
        let mut shapes: Vec<(usize, usize)> = Vec::new();
        for &cols in fixed_cols {
            shapes.push(((rng.next_u64() % 14) as usize, cols));
        }
        for _ in 0..8 {
            shapes.push((
                (rng.next_u64() % 23) as usize,
                (rng.next_u64() % 70) as usize,
            ));
        }
        if cfg!(miri) {
            shapes.truncate(12);
        }
        for (rows, cols) in shapes {
            let q: Vec<i8> = (0..rows * cols).map(|_| rng.i8()).collect();
            let scales: Vec<f32> = (0..rows).map(|_| rng.f32().abs() * 0.01).collect();
            let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
            let xq: Vec<i8> = (0..cols).map(|_| rng.i8()).collect();
            let sx = rng.f32().abs() * 0.1;
            let what = std::format!("rows={rows} cols={cols} seed={seed}");
            check_rows(&q, &scales, cols, &xq, sx, &bias, rows, &what);
            // Lengths that do not match: a longer `out`, short scales / bias, a partial last row
            // of `q`, a longer `xq`, a shorter `xq` (nothing written).
            check_rows(&q, &scales, cols, &xq, sx, &bias, rows + 5, &what);
            let short = rows.saturating_sub(1);
            check_rows(&q, &scales[..short], cols, &xq, sx, &bias, rows, &what);
            check_rows(&q, &scales, cols, &xq, sx, &bias[..short], rows, &what);
            let cut = q.len().saturating_sub(1);
            check_rows(&q[..cut], &scales, cols, &xq, sx, &bias, rows, &what);
            let mut longer = xq.clone();
            longer.push(5);
            check_rows(&q, &scales, cols, &longer, sx, &bias, rows, &what);
            if cols > 0 {
                check_rows(&q, &scales, cols, &xq[..cols - 1], sx, &bias, rows, &what);
            }
        }
    }
    // Extremes: the largest magnitude sums, in every row position of a block.
    for &(rows, cols) in &[(5usize, 1001usize), (8, 4099)] {
        if cfg!(miri) && cols > 1001 {
            continue;
        }
        let q = std::vec![-128i8; rows * cols];
        let xq = std::vec![-128i8; cols];
        let ones = std::vec![1.0f32; rows];
        let zeros = std::vec![0.0f32; rows];
        let mut out = std::vec![0f32; rows];
        for (name, f) in rows_variants() {
            f(&q, &ones, cols, &xq, 1.0, &zeros, &mut out);
            let want = (128 * 128 * cols as i32) as f32;
            assert!(out.iter().all(|&v| v == want), "{name} extremes {cols}");
        }
        check_rows(&q, &ones, cols, &xq, 1.0, &zeros, rows, "extremes");
    }
    assert!(!VARIANT.is_empty() && !variant().is_empty());
}

/// f32 values that exercise every branch of the rounding: halves, values just around them,
/// zeros, subnormals, NaN, infinities, the largest finite values.
fn awkward_f32(rng: &mut Rng) -> f32 {
    match rng.next_u64() % 12 {
        0 => (rng.next_u64() % 300) as f32 * 0.5 - 75.0,
        1 => f32::from_bits(((rng.next_u64() % 300) as f32 * 0.5).to_bits() + 1),
        2 => f32::from_bits(((1 + rng.next_u64() % 300) as f32 * 0.5).to_bits() - 1),
        3 => -0.0,
        4 => 0.0,
        5 => f32::from_bits((rng.next_u64() % 0x80_0000) as u32), // subnormal
        6 => f32::NAN,
        7 => f32::from_bits(0xffc0_0001),
        8 => f32::MAX * if rng.next_u64() % 2 == 0 { 1.0 } else { -1.0 },
        _ => rng.f32() * 8.0,
    }
}

#[test]
fn quantize_i8_is_bit_identical_to_reference() {
    for seed in 0..seeds(200) {
        let mut rng = Rng::new(seed);
        let n = (rng.next_u64() % 100) as usize;
        let mut x: Vec<f32> = (0..n).map(|_| rng.f32() * 10.0).collect();
        // Sometimes awkward values among ordinary ones; sometimes an infinity.
        for v in x.iter_mut() {
            if rng.next_u64() % 4 == 0 {
                *v = awkward_f32(&mut rng);
            }
        }
        if seed % 17 == 3 && n > 0 {
            x[0] = f32::NEG_INFINITY;
        }
        let mut q = std::vec![7i8; n];
        let mut want = std::vec![7i8; n];
        let s = quantize_i8(&x, &mut q);
        let ws = reference::quantize_i8(&x, &mut want);
        assert_eq!(s.to_bits(), ws.to_bits(), "scale seed={seed}");
        assert_eq!(q, want, "seed={seed}");
    }
    // Inputs whose products land exactly on halves: amax 127 gives inv = 1.
    let x: Vec<f32> = (-300..=300).map(|i| i as f32 * 0.5).collect();
    let mut x = x;
    x.push(127.0);
    let mut q = std::vec![0i8; x.len()];
    let mut want = std::vec![0i8; x.len()];
    assert_eq!(
        quantize_i8(&x, &mut q).to_bits(),
        reference::quantize_i8(&x, &mut want).to_bits()
    );
    assert_eq!(q, want);
}

#[test]
fn round_to_i8_equals_roundf_on_sampled_bit_patterns() {
    // Every 4099th bit pattern (every 2^20-th under Miri), plus every pattern whose magnitude is
    // within a few ulps of a half or an integer below 256.
    let step: usize = if cfg!(miri) { 1 << 20 } else { 4099 };
    for b in (0..=u32::MAX).step_by(step) {
        let y = f32::from_bits(b);
        assert_eq!(round_to_i8(y), libm::roundf(y) as i8, "{b:#x}");
        assert_eq!(round_to_i8_int(y), libm::roundf(y) as i8, "{b:#x}");
        assert_eq!(round_to_i8_fpu(y), libm::roundf(y) as i8, "{b:#x}");
    }
    let top = if cfg!(miri) { 4 } else { 512 };
    for k in 0..top {
        let h = k as f32 * 0.5;
        for d in -3i32..=3 {
            for sign in [0u32, 0x8000_0000] {
                let b = (h.to_bits() as i32).wrapping_add(d) as u32 | sign;
                let y = f32::from_bits(b);
                assert_eq!(round_to_i8(y), libm::roundf(y) as i8, "{b:#x}");
                assert_eq!(round_to_i8_int(y), libm::roundf(y) as i8, "{b:#x}");
                assert_eq!(round_to_i8_fpu(y), libm::roundf(y) as i8, "{b:#x}");
            }
        }
    }
}

/// All 2^32 bit patterns (about 40 s in release): `cargo test --release -p runnel
/// round_to_i8_exhaustive -- --ignored`.
#[test]
#[ignore]
fn round_to_i8_exhaustive() {
    for b in 0..=u32::MAX {
        let y = f32::from_bits(b);
        let want = libm::roundf(y) as i8;
        assert_eq!(round_to_i8_int(y), want, "{b:#x}");
        assert_eq!(round_to_i8_fpu(y), want, "{b:#x}");
    }
}

#[test]
fn vectorised_f32_dot_is_bit_identical_to_reference() {
    for seed in 0..seeds(20) {
        let mut rng = Rng::new(seed);
        for &n in LENGTHS {
            let a: Vec<f32> = (0..n).map(|_| rng.f32() * 4.0).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            assert_eq!(
                dot_f32(&a, &b).to_bits(),
                reference::dot_f32(&a, &b).to_bits(),
                "n={n}"
            );
        }
    }
}

#[test]
fn ordered_sum_is_the_documented_order() {
    // 19 terms: lanes over the first 16, combined pairwise, then the last 3 left to right.
    let t: Vec<f32> = (0..19).map(|i| 1.0 + i as f32 * 1e-3).collect();
    let mut lane = [0.0f32; 8];
    for i in 0..16 {
        lane[i % 8] += t[i];
    }
    let want = ((((lane[0] + lane[1]) + (lane[2] + lane[3]))
        + ((lane[4] + lane[5]) + (lane[6] + lane[7])))
        + t[16]
        + t[17])
        + t[18];
    assert_eq!(
        reference::ordered_sum(19, |i| t[i]).to_bits(),
        want.to_bits()
    );
}

#[test]
fn chunked_f16_dot_is_bit_identical_to_reference() {
    for seed in 0..seeds(20) {
        let mut rng = Rng::new(seed);
        for &n in LENGTHS {
            let a: Vec<f16> = (0..n).map(|_| f16::from_f32(rng.f32() * 4.0)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            assert_eq!(
                dot_f16_f32(&a, &b).to_bits(),
                reference::dot_f16_f32(&a, &b).to_bits(),
                "n={n}"
            );
        }
    }
}

#[test]
fn reference_dots_match_f64() {
    let mut rng = Rng::new(7);
    for &n in LENGTHS {
        let a: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let mag: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f64 * y as f64).abs())
            .sum();
        // Sequential f32 summation: |error| ≤ n · 2⁻²⁴ · Σ|aᵢbᵢ| (+ rounding of each product).
        let bound = (n as f64 + 1.0) * f32::EPSILON as f64 * 0.5 * mag + 1e-30;
        assert!(
            (reference::dot_f32(&a, &b) as f64 - exact).abs() <= bound,
            "f32 n={n}"
        );
        let h: Vec<f16> = a.iter().map(|&x| f16::from_f32(x)).collect();
        let exact16: f64 = h.iter().zip(&b).map(|(x, &y)| x.to_f64() * y as f64).sum();
        assert!(
            (reference::dot_f16_f32(&h, &b) as f64 - exact16).abs() <= bound,
            "f16 n={n}"
        );
    }
}

#[test]
fn int8_matvec_within_quantization_bound() {
    // With per-row weight scale sw and per-vector input scale sx, each rounding error is at most
    // half a step, so |y - ŷ| ≤ Σⱼ (|wⱼ|·sx/2 + |xⱼ|·sw/2 + sw·sx/4) (+ f32 rounding).
    let mut rng = Rng::new(11);
    for &(rows, cols) in &[(1usize, 1usize), (7, 13), (32, 64), (5, 300)] {
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.f32()).collect();
        let x: Vec<f32> = (0..cols).map(|_| rng.f32() * 3.0).collect();
        let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
        let mut q = std::vec![0i8; rows * cols];
        let mut scales = std::vec![0f32; rows];
        for r in 0..rows {
            scales[r] = quantize_i8(
                &w[r * cols..(r + 1) * cols],
                &mut q[r * cols..(r + 1) * cols],
            );
        }
        let m = Mat {
            rows,
            cols,
            data: MatData::I8 {
                q: &q,
                scales: &scales,
            },
        };
        let mut out = std::vec![0f32; rows];
        let mut q8 = std::vec![0i8; cols];
        matvec(&m, &x, &bias, &mut out, &mut q8);
        let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let sx = amax as f64 / 127.0;
        for r in 0..rows {
            let wr = &w[r * cols..(r + 1) * cols];
            let exact: f64 = wr
                .iter()
                .zip(&x)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
                + bias[r] as f64;
            let sw = scales[r] as f64;
            let bound: f64 = wr
                .iter()
                .zip(&x)
                .map(|(&a, &b)| {
                    (a as f64).abs() * sx / 2.0 + (b as f64).abs() * sw / 2.0 + sw * sx / 4.0
                })
                .sum::<f64>()
                + 1e-5 * (1.0 + exact.abs());
            assert!(
                (out[r] as f64 - exact).abs() <= bound,
                "rows={rows} cols={cols} r={r}"
            );
        }
    }
}

#[test]
fn float_matvecs_match_f64() {
    let mut rng = Rng::new(3);
    let (rows, cols) = (9, 37);
    let w: Vec<f32> = (0..rows * cols).map(|_| rng.f32()).collect();
    let x: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
    let bias: Vec<f32> = (0..rows).map(|_| rng.f32()).collect();
    let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
    let mut q8 = std::vec![0i8; cols];
    for (m, wf) in [
        (
            Mat {
                rows,
                cols,
                data: MatData::F32(&w),
            },
            w.clone(),
        ),
        (
            Mat {
                rows,
                cols,
                data: MatData::F16(&wh),
            },
            wh.iter().map(|v| v.to_f32()).collect(),
        ),
    ] {
        let mut out = std::vec![0f32; rows];
        matvec(&m, &x, &bias, &mut out, &mut q8);
        for r in 0..rows {
            let exact: f64 = wf[r * cols..(r + 1) * cols]
                .iter()
                .zip(&x)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
                + bias[r] as f64;
            assert!((out[r] as f64 - exact).abs() < 1e-5, "r={r}");
        }
    }
}

#[test]
fn quantize_round_trips_within_half_step() {
    let mut rng = Rng::new(5);
    let x: Vec<f32> = (0..100).map(|_| rng.f32() * 10.0).collect();
    let mut q = std::vec![0i8; 100];
    let s = quantize_i8(&x, &mut q);
    for (&v, &qi) in x.iter().zip(&q) {
        assert!((qi as f32 * s - v).abs() <= s * 0.5 + 1e-6);
        assert!(qi != -128);
    }
    assert_eq!(quantize_i8(&[0.0; 4], &mut q[..4]), 0.0);
}

#[test]
fn layer_norm_softmax_activations_match_f64() {
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..24).map(|_| rng.f32() * 4.0).collect();
    let w: Vec<f32> = (0..24).map(|_| 1.0 + rng.f32() * 0.1).collect();
    let b: Vec<f32> = (0..24).map(|_| rng.f32() * 0.1).collect();
    let mut out = std::vec![0f32; 24];
    layer_norm(&x, &w, &b, 1e-5, &mut out);
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / 24.0;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 24.0;
    for i in 0..24 {
        let e = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64;
        assert!((out[i] as f64 - e).abs() < 1e-5);
    }
    let mut s = x.clone();
    softmax(&mut s);
    let m = x.iter().fold(f64::MIN, |a, &v| a.max(v as f64));
    let z: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
    for i in 0..24 {
        assert!((s[i] as f64 - (x[i] as f64 - m).exp() / z).abs() < 1e-6);
    }
    for &v in &[-3.0f32, -0.5, 0.0, 0.7, 2.5] {
        let v64 = v as f64;
        let cdf = 0.5 * (1.0 + libm::erf(v64 / std::f64::consts::SQRT_2));
        let cases = [
            (Activation::Gelu, v64 * cdf),
            (
                Activation::GeluTanh,
                0.5 * v64
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (v64 + 0.044715 * v64.powi(3)))
                            .tanh()),
            ),
            (Activation::Relu, v64.max(0.0)),
            (Activation::Silu, v64 / (1.0 + (-v64).exp())),
        ];
        for (act, e) in cases {
            let mut y = [v];
            act.apply(&mut y);
            assert!((y[0] as f64 - e).abs() < 1e-6, "{act:?}({v})");
        }
    }
}

#[test]
fn rms_norm_matches_f64() {
    let mut rng = Rng::new(11);
    let x: Vec<f32> = (0..24).map(|_| rng.f32() * 4.0).collect();
    let w: Vec<f32> = (0..24).map(|_| 1.0 + rng.f32() * 0.1).collect();
    let mut out = std::vec![0f32; 24];
    crate::kernels::rms_norm(&x, &w, 1e-5, &mut out);
    let ms = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 24.0;
    for i in 0..24 {
        let e = x[i] as f64 / (ms + 1e-5).sqrt() * w[i] as f64;
        assert!((out[i] as f64 - e).abs() < 1e-5, "{i}");
    }
}

#[test]
fn rope_rotate_matches_f64() {
    let mut rng = Rng::new(12);
    let x: Vec<f32> = (0..8).map(|_| rng.f32() * 2.0).collect();
    let angles = [0.3f64, -1.2, 2.5, 0.0];
    let mut cs = std::vec![0f32; 8];
    for d in 0..4 {
        cs[d] = angles[d].cos() as f32;
        cs[4 + d] = angles[d].sin() as f32;
    }
    let mut out = std::vec![0f32; 8];
    crate::kernels::rope_rotate(&x, &cs, &mut out);
    for d in 0..4 {
        let (c, s) = (angles[d].cos(), angles[d].sin());
        let (a, b) = (x[d] as f64, x[d + 4] as f64);
        assert!((out[d] as f64 - (a * c - b * s)).abs() < 1e-6);
        assert!((out[d + 4] as f64 - (b * c + a * s)).abs() < 1e-6);
    }
}

/// The x86_64 kernels of the integer mode (`arch::x86_64::integer`) against their plain
/// references, bit for bit, on fixed seeds and random inputs (every shift of the
/// requantization, saturating edges, every SIMD tail).
#[cfg(target_arch = "x86_64")]
mod x86_integer {
    extern crate std;

    use super::{seeds, Rng};
    use crate::kernels::arch::x86_64::integer as k;
    use crate::kernels::integer::{isqrt, Requant, X_MAX};
    use crate::kernels::reference;
    use std::vec::Vec;

    fn avx2() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// A random i32 from a random number of bits (small and full-range values alike).
    fn int(rng: &mut Rng) -> i32 {
        (rng.next_u64() as i32) >> (rng.next_u64() % 32)
    }

    fn requant(rng: &mut Rng) -> Requant {
        Requant {
            m: (rng.next_u64() % (1 << 31)) as i32,
            shift: (rng.next_u64() % 63) as u8,
        }
    }

    #[test]
    fn row_sums_with_bias_vnni_equal_reference() {
        if !(avx2()
            && std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl"))
        {
            return;
        }
        for seed in 0..seeds(8) {
            let mut rng = Rng::new(300 + seed);
            for case in 0..60 {
                let rows = (rng.next_u64() % 40) as usize;
                let cols = [0, 1, 31, 32, 33, 64, 96, 100, 192, 260][case % 10];
                let extreme = case % 7 == 0;
                let byte = |rng: &mut Rng| {
                    if extreme {
                        [-128i8, 127][(rng.next_u64() & 1) as usize]
                    } else {
                        rng.i8()
                    }
                };
                let q: Vec<i8> = (0..rows * cols).map(|_| byte(&mut rng)).collect();
                let xq: Vec<i8> = (0..cols).map(|_| byte(&mut rng)).collect();
                let bias: Vec<i32> = (0..rows + 2).map(|_| int(&mut rng)).collect();
                for (out_len, nb) in [(rows, rows), (rows + 3, rows + 2), (rows + 1, rows / 2)] {
                    let mut want = std::vec![-7i32; out_len];
                    reference::dot_rows_bias_i8(&q, cols, &xq, &bias[..nb], &mut want);
                    let mut got = std::vec![-7i32; out_len];
                    // SAFETY: the CPU reported AVX2, AVX-512 VNNI and VL (checked above).
                    unsafe { k::dot_rows_bias_i8_vnni(&q, cols, &xq, &bias[..nb], &mut got) };
                    assert_eq!(got, want, "rows {rows} cols {cols} bias {nb} seed {seed}");
                }
            }
        }
    }

    #[test]
    fn row_requantization_equals_reference_for_every_shift() {
        if !avx2() {
            return;
        }
        for seed in 0..seeds(4) {
            let mut rng = Rng::new(400 + seed);
            for shift in 0..=62u32 {
                let n = (rng.next_u64() % 150) as usize;
                let sums: Vec<i32> = (0..n).map(|_| int(&mut rng)).collect();
                let ms: Vec<i32> = (0..n + (rng.next_u64() % 2) as usize)
                    .map(|_| (rng.next_u64() % (1 << 31)) as i32)
                    .collect();
                let mut want = sums.clone();
                k::rescale_rows_ref(&mut want, &ms, shift);
                let mut got = sums.clone();
                // SAFETY: the CPU reported AVX2 (checked above).
                unsafe { k::rescale_rows_avx2(&mut got, &ms, shift, |v| v) };
                assert_eq!(got, want, "rescale shift {shift} n {n}");
                let q12 = |v: i32| v.clamp(-(1 << 29), 1 << 29);
                let mut got = sums.clone();
                // SAFETY: as above.
                unsafe { k::rescale_rows_avx2(&mut got, &ms, shift, q12) };
                let clamped: Vec<i32> = want.iter().map(|&v| q12(v)).collect();
                assert_eq!(got, clamped, "rescale and clamp shift {shift} n {n}");
                let (mut want, mut got) = (std::vec![5i8; n], std::vec![5i8; n]);
                k::rescale_rows_i8_ref(&sums, &ms, shift, &mut want);
                // SAFETY: as above.
                unsafe { k::rescale_rows_i8_avx2(&sums, &ms, shift, &mut got) };
                assert_eq!(got, want, "to int8 shift {shift} n {n}");
                let base: Vec<i32> = (0..n)
                    .map(|i| match i % 4 {
                        0 => int(&mut rng),
                        1 => i32::MAX - (rng.next_u64() % 1000) as i32,
                        2 => i32::MIN + (rng.next_u64() % 1000) as i32,
                        _ => (rng.next_u64() % (2 * X_MAX as u64)) as i32 - X_MAX,
                    })
                    .collect();
                let acc0: Vec<i32> = (0..n).map(|_| int(&mut rng) >> 2).collect();
                let into =
                    |a: i32, b: i32| (a + b.clamp(-(1 << 29), (1 << 29) - 1)).clamp(-32768, 32767);
                let (mut want, mut got) = (acc0.clone(), acc0.clone());
                k::rescale_rows_into_ref(&sums, &ms, shift, &mut want, into);
                // SAFETY: as above.
                unsafe { k::rescale_rows_into_avx2(&sums, &ms, shift, &mut got, into) };
                assert_eq!(got, want, "into shift {shift} n {n}");
                for add in [false, true] {
                    let (mut want, mut got) = (base.clone(), base.clone());
                    k::rescale_rows_add_x_ref(&sums, &ms, shift, &mut want, add);
                    // SAFETY: as above.
                    unsafe { k::rescale_rows_add_x_avx2(&sums, &ms, shift, &mut got, add) };
                    assert_eq!(got, want, "to x shift {shift} n {n} add {add}");
                }
            }
        }
    }

    #[test]
    fn strided_row_sums_equal_reference() {
        if !avx2() {
            return;
        }
        let vnni_ok = std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl");
        for seed in 0..seeds(8) {
            let mut rng = Rng::new(500 + seed);
            for case in 0..80 {
                let rows = (rng.next_u64() % 70) as usize;
                let cols = [0usize, 1, 7, 8, 15, 16, 24, 31, 32, 33, 48, 52, 100][case % 13];
                let stride = match rng.next_u64() % 4 {
                    0 => cols,
                    1 => cols + 4 * (rng.next_u64() % 30) as usize,
                    2 => cols + (rng.next_u64() % 7) as usize,
                    _ => (rng.next_u64() % (cols as u64 + 1)) as usize,
                };
                let len = rows * stride.max(cols) + (rng.next_u64() % 40) as usize;
                let q: Vec<i8> = (0..len).map(|_| rng.i8()).collect();
                let x8: Vec<i8> = (0..cols).map(|_| rng.i8()).collect();
                let x16: Vec<i32> = (0..cols)
                    .map(|i| match i % 3 {
                        0 => int(&mut rng),
                        _ => (rng.next_u64() % 32769) as i32,
                    })
                    .collect();
                let out_len = rows + (rng.next_u64() % 3) as usize;
                let mut want = std::vec![-7i32; out_len];
                reference::dot_rows_strided(&q, stride, &x8, &[], &mut want);
                for vnni in [false, vnni_ok] {
                    let mut got = std::vec![-7i32; out_len];
                    // SAFETY: the CPU reported AVX2 (and VNNI, VL where used).
                    unsafe { k::dot_rows_strided_i8_avx2(&q, stride, &x8, &mut got, vnni) };
                    assert_eq!(
                        got, want,
                        "i8 rows {rows} cols {cols} stride {stride} vnni {vnni}"
                    );
                }
                let mut want = std::vec![-7i32; out_len];
                reference::dot_rows_strided(&q, stride, &[], &x16, &mut want);
                let mut got = std::vec![-7i32; out_len];
                // SAFETY: the CPU reported AVX2.
                unsafe { k::dot_rows_strided_q15_avx2(&q, stride, &x16, &mut got) };
                assert_eq!(got, want, "q15 rows {rows} cols {cols} stride {stride}");
            }
        }
    }

    #[test]
    fn softmax_equals_reference() {
        if !avx2() {
            return;
        }
        for seed in 0..seeds(8) {
            let mut rng = Rng::new(550 + seed);
            for case in 0..80 {
                let n = (rng.next_u64() % 100) as usize;
                // Q5.10 scores within ±2^30: spread over the table, or anywhere
                let scores: Vec<i32> = (0..n)
                    .map(|_| match case % 3 {
                        0 => (rng.next_u64() % (1 << 31)) as i32 - (1 << 30),
                        1 => (rng.next_u64() % 40000) as i32 - 20000,
                        _ => (rng.next_u64() % 300) as i32,
                    })
                    .collect();
                let (mut want, mut got) = (scores.clone(), scores.clone());
                crate::kernels::integer::softmax_q15_plain(&mut want);
                // SAFETY: the CPU reported AVX2.
                unsafe { k::softmax_q15_avx2(&mut got) };
                assert_eq!(got, want, "n {n} case {case} seed {seed}");
            }
        }
    }

    #[test]
    fn lstm_cell_equals_reference() {
        if !avx2() {
            return;
        }
        for seed in 0..seeds(8) {
            let mut rng = Rng::new(600 + seed);
            for case in 0..60 {
                let hid = (rng.next_u64() % 40) as usize;
                // Q3.12 pre-activations in the i16 range, and sometimes beyond (taken as i16)
                let g: Vec<i32> = (0..4 * hid)
                    .map(|_| {
                        if case % 5 == 0 {
                            int(&mut rng)
                        } else {
                            (rng.next_u64() % 65536) as i32 - 32768
                        }
                    })
                    .collect();
                let c0: Vec<i16> = (0..hid + 1).map(|_| rng.next_u64() as i16).collect();
                let mut rq = [requant(&mut rng), requant(&mut rng), requant(&mut rng)];
                if case % 2 == 0 {
                    rq[0].shift = 40 + (rng.next_u64() % 20) as u8;
                    rq[1].shift = 20 + (rng.next_u64() % 20) as u8;
                    rq[2].shift = 45 + (rng.next_u64() % 15) as u8;
                }
                assert!(k::lstm_cell_fits(&g, hid, rq));
                let mlen = hid.saturating_sub(case % 2);
                let (mut cw, mut cg) = (c0.clone(), c0.clone());
                let (mut mw, mut mg) = (std::vec![3i8; mlen], std::vec![3i8; mlen]);
                crate::kernels::integer::lstm_cell_plain(&g, hid, rq, &mut cw, &mut mw);
                // SAFETY: the CPU reported AVX2; the operands fit (asserted above).
                unsafe { k::lstm_cell_avx2(&g, hid, rq, &mut cg, &mut mg) };
                assert_eq!((cg, mg), (cw, mw), "hid {hid} rq {rq:?} seed {seed}");
            }
        }
    }

    #[test]
    fn norms_equal_reference() {
        if !avx2() {
            return;
        }
        for seed in 0..seeds(8) {
            let mut rng = Rng::new(700 + seed);
            for case in 0..60 {
                let w = 1 + (rng.next_u64() % 200) as usize;
                let spread = [X_MAX, 1 << 12, 300, 3][case % 4]; // σ from large to tiny
                let centre = (rng.next_u64() % (X_MAX as u64)) as i32 - X_MAX / 2;
                let x: Vec<i32> = (0..w)
                    .map(|_| {
                        let v = centre as i64 + (rng.next_u64() % (2 * spread as u64)) as i64
                            - spread as i64;
                        v.clamp(-(X_MAX as i64), X_MAX as i64) as i32
                    })
                    .collect();
                let mut p: Vec<i32> = (0..2 * w)
                    .map(|i| match (i + case) % 5 {
                        0 => i32::MAX - (rng.next_u64() % (1 << 26)) as i32,
                        1 => i32::MIN + (rng.next_u64() % (1 << 26)) as i32,
                        _ => int(&mut rng),
                    })
                    .collect();
                let eps = rng.next_u64() >> (rng.next_u64() % 64);
                p.extend([
                    (rng.next_u64() % 34) as i32,
                    eps as u32 as i32,
                    (eps >> 32) as i32,
                ]);
                assert!(k::norm_i8_fits(&x, &p));
                for rms in [false, true] {
                    let n = w - (case % 3).min(w - 1);
                    let (mut want, mut got) = (std::vec![9i8; n], std::vec![9i8; n]);
                    crate::kernels::integer::norm_i8_plain(&x, &p, rms, &mut want);
                    // SAFETY: the CPU reported AVX2; the operands fit (asserted above).
                    unsafe { k::norm_i8_avx2(&x, &p, rms, &mut got) };
                    assert_eq!(got, want, "w {w} rms {rms} spread {spread} seed {seed}");
                }
            }
        }
    }

    #[test]
    fn fast_isqrt_is_the_exact_floor() {
        let mut rng = Rng::new(800);
        let check = |v: u64| assert_eq!(k::isqrt_fast(v), isqrt(v), "{v}");
        for v in 0..10_000 {
            check(v);
        }
        for s in [1u64 << 16, 1 << 26, (1 << 32) - 1, 3037000499] {
            for v in [s * s - 1, s * s, s * s + 1] {
                check(v);
            }
        }
        check(u64::MAX);
        for _ in 0..if cfg!(miri) { 100 } else { 200_000 } {
            check(rng.next_u64() >> (rng.next_u64() % 64));
        }
    }
}
