//! x86_64 kernels of the integer-only mode (docs/INTEGER.md), each exactly equal to its plain
//! form (the requantizations' `*_ref` beside them; the norm, the LSTM cell and the softmax
//! `kernels::integer::*_plain`, which the step runs elsewhere), checked bit for bit by the
//! shared harness (`kernels::tests`):
//!
//! - [`dot_rows_bias_i8_vnni`]: the matrix products' row sums plus bias, eight rows per pass
//!   with the bias added in the vector (AVX-512 VNNI on 256-bit vectors);
//! - [`rescale_rows_avx2`], [`rescale_rows_i8_avx2`], [`rescale_rows_add_x_avx2`]: the rows'
//!   requantization `rq_r(v) = round(v · m_r / 2^shift)` (`kernels::integer::rescale_i32`), eight rows at a time,
//!   and the epilogues that follow it (saturation to int8, the saturated residual add).

use core::arch::x86_64::*;

use crate::kernels::integer::{exp_neg_q15, rescale, sat_i32, sat_i8, sat_x, Requant, X_MAX};
use crate::kernels::reference;

/// `Σ x` over eight lanes of i32 (exact, wrapping).
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn sum8(
    a: __m256i,
    b: __m256i,
    c: __m256i,
    d: __m256i,
    e: __m256i,
    f: __m256i,
    g: __m256i,
    h: __m256i,
) -> __m256i {
    // [A_lo, B_lo, C_lo, D_lo | A_hi, B_hi, C_hi, D_hi], the same for E..H
    let abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    let efgh = _mm256_hadd_epi32(_mm256_hadd_epi32(e, f), _mm256_hadd_epi32(g, h));
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(abcd, efgh),
        _mm256_permute2x128_si256::<0x31>(abcd, efgh),
    )
}

/// [`reference::dot_rows_bias_i8`] with AVX-512 VNNI (`vpdpbusd` on 256-bit vectors, as
/// `int8::dot_rows_i8_vnni`: the weights made unsigned by flipping their sign bit, `128 · Σ x`
/// subtracted), eight rows per pass, the bias added to the eight sums in one vector. The rows
/// that do not fill a block of eight take one AVX2 dot product each. Wrapping i32 throughout, so
/// exactly the reference's sums.
///
/// # Safety
/// The CPU must support AVX2, AVX-512 VNNI and AVX-512 VL.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_rows_bias_i8_vnni(
    q: &[i8],
    cols: usize,
    xq: &[i8],
    bias: &[i32],
    sums: &mut [i32],
) {
    let Some(x) = xq.get(..cols) else {
        return;
    };
    let n = match q.len().checked_div(cols) {
        Some(qr) => sums.len().min(qr),
        None => sums.len(),
    };
    let n = n.min(bias.len());
    if cols == 0 {
        sums[..n].copy_from_slice(&bias[..n]);
        return;
    }
    let body = cols - cols % 32;
    let xp = x.as_ptr();
    let flip = _mm256_set1_epi8(-128);
    // 128 · Σ x over the body: what the flipped weights add to every row's sum (Σ x by
    // `vpdpbusd` with unsigned ones, four bytes per lane)
    let mut xs = _mm256_setzero_si256();
    let mut i = 0;
    while i < body {
        // SAFETY: i + 32 <= body <= x.len(); unaligned load.
        let xv = unsafe { _mm256_loadu_si256(xp.add(i).cast()) };
        // SAFETY: AVX-512 VNNI and VL (this function's contract).
        xs = unsafe { super::int8::dpbusd(xs, _mm256_set1_epi8(1), xv) };
        i += 32;
    }
    // SAFETY: AVX2 (this function's contract).
    let xs = unsafe { lanes_u64(xs) } as u32 as i32; // the wrapping i32 sum of the lanes
    let bias128 = _mm256_set1_epi32(128i32.wrapping_mul(xs));
    let mut r = 0;
    while r + 8 <= n {
        let p = q[r * cols..(r + 8) * cols].as_ptr();
        let mut acc = [_mm256_setzero_si256(); 8];
        let mut i = 0;
        while i < body {
            // SAFETY: i + 32 <= body <= cols = x.len(); rows r..r+8 lie in `q` (sliced above).
            unsafe {
                let xv = _mm256_loadu_si256(xp.add(i).cast());
                for (j, a) in acc.iter_mut().enumerate() {
                    let w = _mm256_loadu_si256(p.add(j * cols + i).cast());
                    *a = super::int8::dpbusd(*a, _mm256_xor_si256(w, flip), xv);
                }
            }
            i += 32;
        }
        let [a, b, c, d, e, f, g, h] = acc;
        // SAFETY: AVX2 (this function's contract); r + 8 <= n <= bias.len(), sums.len().
        unsafe {
            let s = sum8(a, b, c, d, e, f, g, h);
            let bv = _mm256_loadu_si256(bias.as_ptr().add(r).cast());
            let s = _mm256_add_epi32(_mm256_sub_epi32(s, bias128), bv);
            _mm256_storeu_si256(sums.as_mut_ptr().add(r).cast(), s);
        }
        r += 8;
    }
    if body < cols {
        // the columns past the last full block of 32, for the rows done in blocks
        for j in 0..r {
            let t = reference::dot_i8(&q[j * cols + body..(j + 1) * cols], &x[body..]);
            sums[j] = sums[j].wrapping_add(t);
        }
    }
    for j in r..n {
        // SAFETY: AVX2 (this function's contract).
        let d = unsafe { super::dot_i8_avx2(&q[j * cols..(j + 1) * cols], x) };
        sums[j] = bias[j].wrapping_add(d);
    }
}

/// The constants of [`rescale8`] for one shift (`0 ≤ shift ≤ 62`).
#[derive(Clone, Copy)]
struct Rq8 {
    /// `2^shift / 2` in each 64-bit lane.
    round: __m256i,
    /// `shift ≥ 32`: the high-word form.
    hi: bool,
    /// `shift − 32` (high-word form), else `shift`.
    sh: __m128i,
    /// `64 − shift` (the sign bits' position in the general form).
    sign: __m128i,
}

/// [`Rq8`] for `shift ≤ 62`.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rq8(shift: u32) -> Rq8 {
    let shift = shift.min(62);
    let hi = shift >= 32;
    Rq8 {
        round: _mm256_set1_epi64x((1i64 << shift) >> 1),
        hi,
        sh: _mm_cvtsi32_si128(if hi { shift - 32 } else { shift } as i32),
        sign: _mm_cvtsi32_si128(64 - shift as i32),
    }
}

/// `rq(v) = sat_i32(round(v · m / 2^shift))` of eight lanes (`kernels::integer::rescale` in
/// i64, saturated): the 64-bit products of the even and the odd lanes plus the rounding
/// constant, then for `shift ≥ 32` the high word of each shifted by `shift − 32` (the value
/// fits i32: `|v · m| < 2^62`), else the 64-bit arithmetic shift (a logical shift and the sign
/// bits) saturated to i32.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rescale8(v: __m256i, m: __m256i, k: Rq8) -> __m256i {
    let even = _mm256_add_epi64(_mm256_mul_epi32(v, m), k.round);
    let odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64::<32>(v), _mm256_srli_epi64::<32>(m)),
        k.round,
    );
    if k.hi {
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        return _mm256_sra_epi32(hi, k.sh);
    }
    let sra = |p: __m256i| {
        // the sign of each 64-bit lane in both its words, shifted into the vacated bits
        let s = _mm256_shuffle_epi32::<0b1111_0101>(_mm256_srai_epi32::<31>(p));
        _mm256_or_si256(_mm256_srl_epi64(p, k.sh), _mm256_sll_epi64(s, k.sign))
    };
    let (max, min) = (
        _mm256_set1_epi64x(i32::MAX as i64),
        _mm256_set1_epi64x(i32::MIN as i64),
    );
    let sat = |r: __m256i| {
        let r = _mm256_blendv_epi8(r, max, _mm256_cmpgt_epi64(r, max));
        _mm256_blendv_epi8(r, min, _mm256_cmpgt_epi64(min, r))
    };
    let e = sat(sra(even));
    let o = sat(sra(odd));
    _mm256_blend_epi32::<0b1010_1010>(e, _mm256_slli_epi64::<32>(o))
}

/// The plain requantization of one row, as `kernels::integer` computes it on 64-bit targets.
#[inline(always)]
fn rq(v: i32, m: i32, shift: u32) -> i32 {
    sat_i32(rescale(v as i64, m, shift))
}

/// Reference: `v[r] = rq_r(v[r])` for the rows of `v` that have a multiplier.
pub(crate) fn rescale_rows_ref(v: &mut [i32], ms: &[i32], shift: u32) {
    for (a, &m) in v.iter_mut().zip(ms) {
        *a = rq(*a, m, shift);
    }
}

/// Reference: `out[r] = sat_i8(rq_r(sums[r]))`.
pub(crate) fn rescale_rows_i8_ref(sums: &[i32], ms: &[i32], shift: u32, out: &mut [i8]) {
    for ((o, &a), &m) in out.iter_mut().zip(sums).zip(ms) {
        *o = sat_i8(rq(a, m, shift));
    }
}

/// Reference: `x[r] = sat_x(x[r] + rq_r(sums[r]))` (saturating add) with `add`, else
/// `x[r] = sat_x(rq_r(sums[r]))`.
pub(crate) fn rescale_rows_add_x_ref(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    x: &mut [i32],
    add: bool,
) {
    for ((o, &a), &m) in x.iter_mut().zip(sums).zip(ms) {
        let base = if add { *o } else { 0 };
        *o = sat_x(base.saturating_add(rq(a, m, shift)));
    }
}

/// [`rescale_rows_ref`] for `shift ≤ 62`, eight rows at a time, then `v[r] = f(v[r])` for
/// the same rows.
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn rescale_rows_avx2(
    v: &mut [i32],
    ms: &[i32],
    shift: u32,
    f: impl Fn(i32) -> i32,
) {
    let n = v.len().min(ms.len());
    // SAFETY: AVX2 (this function's contract).
    let k = unsafe { rq8(shift) };
    let mut r = 0;
    while r + 8 <= n {
        // SAFETY: r + 8 <= n <= v.len(), ms.len(); unaligned loads and stores.
        unsafe {
            let a = _mm256_loadu_si256(v.as_ptr().add(r).cast());
            let m = _mm256_loadu_si256(ms.as_ptr().add(r).cast());
            _mm256_storeu_si256(v.as_mut_ptr().add(r).cast(), rescale8(a, m, k));
        }
        r += 8;
    }
    rescale_rows_ref(&mut v[r..n], &ms[r..n], shift);
    // `f` inlined here is compiled with AVX2 (a clamp: `vpminsd` / `vpmaxsd`)
    for a in &mut v[..n] {
        *a = f(*a);
    }
}

/// [`rescale_rows_i8_ref`] for `shift ≤ 62`, eight rows at a time.
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn rescale_rows_i8_avx2(sums: &[i32], ms: &[i32], shift: u32, out: &mut [i8]) {
    let n = sums.len().min(ms.len()).min(out.len());
    // SAFETY: AVX2 (this function's contract).
    let k = unsafe { rq8(shift) };
    let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    let mut r = 0;
    while r + 8 <= n {
        // SAFETY: r + 8 <= n <= sums.len(), ms.len(), out.len(); unaligned loads and stores.
        unsafe {
            let a = _mm256_loadu_si256(sums.as_ptr().add(r).cast());
            let m = _mm256_loadu_si256(ms.as_ptr().add(r).cast());
            let v = _mm256_min_epi32(_mm256_max_epi32(rescale8(a, m, k), lo), hi);
            let w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            _mm_storel_epi64(out.as_mut_ptr().add(r).cast(), _mm_packs_epi16(w, w));
        }
        r += 8;
    }
    rescale_rows_i8_ref(&sums[r..n], &ms[r..n], shift, &mut out[r..n]);
}

/// `sat_x(a +sat v)` of eight lanes: the wrapping sum, and where it overflowed i32 (the
/// saturating sum is then ±2^31) the bound on `a`'s side.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn add_sat_x8(a: __m256i, v: __m256i) -> __m256i {
    let (lo, hi) = (_mm256_set1_epi32(-X_MAX), _mm256_set1_epi32(X_MAX));
    let s = _mm256_add_epi32(a, v);
    // overflow: a and v share a sign that s does not have
    let ovf = _mm256_and_si256(_mm256_xor_si256(a, s), _mm256_xor_si256(v, s));
    let clamped = _mm256_min_epi32(_mm256_max_epi32(s, lo), hi);
    let bound = _mm256_blendv_epi8(hi, lo, _mm256_srai_epi32::<31>(a)); // blendv selects bytewise
    _mm256_blendv_epi8(clamped, bound, _mm256_srai_epi32::<31>(ovf))
}

/// [`rescale_rows_add_x_ref`] for `shift ≤ 62`, eight rows at a time.
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn rescale_rows_add_x_avx2(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    x: &mut [i32],
    add: bool,
) {
    let n = sums.len().min(ms.len()).min(x.len());
    // SAFETY: AVX2 (this function's contract).
    let k = unsafe { rq8(shift) };
    let mut r = 0;
    while r + 8 <= n {
        // SAFETY: r + 8 <= n <= sums.len(), ms.len(), x.len(); unaligned loads and stores.
        unsafe {
            let a = _mm256_loadu_si256(sums.as_ptr().add(r).cast());
            let m = _mm256_loadu_si256(ms.as_ptr().add(r).cast());
            let v = rescale8(a, m, k);
            let base = if add {
                _mm256_loadu_si256(x.as_ptr().add(r).cast())
            } else {
                _mm256_setzero_si256()
            };
            _mm256_storeu_si256(x.as_mut_ptr().add(r).cast(), add_sat_x8(base, v));
        }
        r += 8;
    }
    rescale_rows_add_x_ref(&sums[r..n], &ms[r..n], shift, &mut x[r..n], add);
}

/// `Σ q[i] · k[i]` as the lanes of one vector (their sum is the dot product): 16 columns per
/// `vpmaddwd`, then 8, then the last few in lane 0.
///
/// # Safety
/// AVX2; `k.len() ≥ q.len()`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_lanes(q: &[i8], k: &[i8]) -> __m256i {
    let n = q.len();
    let (qp, kp) = (q.as_ptr(), k.as_ptr());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: AVX2; i + 16 <= n <= q.len(), k.len(); unaligned loads.
        unsafe {
            let a = _mm256_cvtepi8_epi16(_mm_loadu_si128(qp.add(i).cast()));
            let b = _mm256_cvtepi8_epi16(_mm_loadu_si128(kp.add(i).cast()));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
        }
        i += 16;
    }
    if i + 8 <= n {
        // SAFETY: AVX2; i + 8 <= n <= q.len(), k.len(); unaligned loads.
        unsafe {
            let a = _mm_cvtepi8_epi16(_mm_loadl_epi64(qp.add(i).cast()));
            let b = _mm_cvtepi8_epi16(_mm_loadl_epi64(kp.add(i).cast()));
            let p = _mm256_inserti128_si256::<0>(_mm256_setzero_si256(), _mm_madd_epi16(a, b));
            acc = _mm256_add_epi32(acc, p);
        }
        i += 8;
    }
    if i < n {
        let r = reference::dot_i8(&q[i..], &k[i..n]);
        acc = _mm256_add_epi32(acc, _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, r));
    }
    acc
}

/// The table pairs `t[i], t[i+1]` of eight lanes' indices `i` (16-bit entries) as one 32-bit
/// word each (`t[i]` in the low half): eight scalar loads, which on CPUs with the
/// gather-data-sampling mitigation are several times faster than one `vpgatherdd`.
///
/// # Safety
/// AVX2; `table` holds `i + 2` entries for every lane's `i` (an unsigned 32-bit index).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pairs8(table: *const u16, i: __m256i) -> __m256i {
    let mut idx = [0u32; 8];
    // SAFETY: `idx` holds 32 bytes; unaligned store.
    unsafe { _mm256_storeu_si256(idx.as_mut_ptr().cast(), i) };
    // SAFETY: entries i and i + 1 lie in the table (this function's contract); unaligned.
    let at = |l: usize| unsafe { table.add(idx[l] as usize).cast::<i32>().read_unaligned() };
    // assembled in registers (eight scalar stores then one vector load would stall the
    // store forwarding)
    let lo = _mm_insert_epi32::<3>(
        _mm_insert_epi32::<2>(
            _mm_insert_epi32::<1>(_mm_cvtsi32_si128(at(0)), at(1)),
            at(2),
        ),
        at(3),
    );
    let hi = _mm_insert_epi32::<3>(
        _mm_insert_epi32::<2>(
            _mm_insert_epi32::<1>(_mm_cvtsi32_si128(at(4)), at(5)),
            at(6),
        ),
        at(7),
    );
    _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi)
}

/// The sum of eight u32 lanes, in u64.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn lanes_u64(v: __m256i) -> u64 {
    let mut l = [0u32; 8];
    // SAFETY: `l` holds 32 bytes; unaligned store.
    unsafe { _mm256_storeu_si256(l.as_mut_ptr().cast(), v) };
    l.iter().map(|&x| x as u64).sum()
}

/// A Q3.12 → Q0.15 table of 513 i16 entries (`kernels::integer::sigmoid_q15` / `tanh_q15`)
/// for eight lanes of `x` in the i16 range: `u = x + 32768`, the pair `t[u >> 7]`,
/// `t[(u >> 7) + 1]` as one 32-bit word ([`pairs8`]), `t0 + ((t1 − t0)·(u & 127) + 64) >> 7`.
///
/// # Safety
/// AVX2; `table` points to 513 i16.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn table_q15(table: *const i16, x: __m256i) -> __m256i {
    let u = _mm256_add_epi32(x, _mm256_set1_epi32(32768));
    // 0..=511 for x in the i16 range
    let i = _mm256_srli_epi32::<7>(u);
    // SAFETY: AVX2; every index is at most 511, inside the 513 entries (the contract).
    let pair = unsafe { pairs8(table.cast(), i) };
    let t0 = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(pair));
    let t1 = _mm256_srai_epi32::<16>(pair);
    let f = _mm256_and_si256(u, _mm256_set1_epi32(127));
    let step = _mm256_mullo_epi32(_mm256_sub_epi32(t1, t0), f);
    _mm256_add_epi32(
        t0,
        _mm256_srai_epi32::<7>(_mm256_add_epi32(step, _mm256_set1_epi32(64))),
    )
}

/// `v` saturated to the i16 range (`sat_i16`), eight lanes.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sat16(v: __m256i) -> __m256i {
    _mm256_min_epi32(
        _mm256_max_epi32(v, _mm256_set1_epi32(i16::MIN as i32)),
        _mm256_set1_epi32(i16::MAX as i32),
    )
}

/// `a[..8] as i16` (the low half of each word, sign-extended), eight lanes.
///
/// # Safety
/// AVX2; eight i32 readable at `a`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_i16_of_i32(a: *const i32) -> __m256i {
    // SAFETY: eight i32 at `a` (this function's contract); unaligned load.
    let v = unsafe { _mm256_loadu_si256(a.cast()) };
    _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(v))
}

/// Whether [`lstm_cell_avx2`] computes exactly [`crate::kernels::integer::lstm_cell_plain`]: the three requantizations
/// with shifts at most 62 and all four gates' rows present.
pub(crate) fn lstm_cell_fits(g: &[i32], hid: usize, rq: [Requant; 3]) -> bool {
    rq.iter().all(|r| r.shift <= 62) && hid.checked_mul(4).is_some_and(|n| n <= g.len())
}

/// [`crate::kernels::integer::lstm_cell_plain`] eight units at a time (AVX2): the products, sums and saturations in i32
/// lanes, the table pairs by [`pairs8`], the requantizations as [`rescale8`].
///
/// # Safety
/// AVX2; [`lstm_cell_fits`].
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn lstm_cell_avx2(
    g: &[i32],
    hid: usize,
    rq: [Requant; 3],
    c: &mut [i16],
    m: &mut [i8],
) {
    use crate::kernels::int_tables::{SIGMOID_Q15, TANH_Q15};
    let n = hid.min(c.len()).min(m.len());
    let (sig, tanh) = (SIGMOID_Q15.as_ptr(), TANH_Q15.as_ptr());
    let (lo8, hi8) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    // SAFETY: AVX2 (this function's contract).
    let (k0, k1, k2) = unsafe {
        (
            rq8(rq[0].shift as u32),
            rq8(rq[1].shift as u32),
            rq8(rq[2].shift as u32),
        )
    };
    let (m0, m1, m2) = (
        _mm256_set1_epi32(rq[0].m),
        _mm256_set1_epi32(rq[1].m),
        _mm256_set1_epi32(rq[2].m),
    );
    let lim = _mm256_set1_epi32(1 << 20);
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: AVX2; j + 8 <= n ≤ hid, so rows j + q·hid .. + 8 (q < 4) lie in `g`
        // (`lstm_cell_fits`), and j + 8 ≤ c.len(), m.len(); the tables have 513 entries.
        unsafe {
            let gp = g.as_ptr().add(j);
            let i = table_q15(sig, load_i16_of_i32(gp));
            let f = table_q15(sig, load_i16_of_i32(gp.add(hid)));
            let gg = table_q15(tanh, load_i16_of_i32(gp.add(2 * hid)));
            let o = table_q15(sig, load_i16_of_i32(gp.add(3 * hid)));
            let cp = c.as_mut_ptr().add(j);
            let cv = _mm256_cvtepi16_epi32(_mm_loadu_si128(cp.cast()));
            let fc = _mm256_srai_epi32::<15>(_mm256_add_epi32(
                _mm256_mullo_epi32(f, cv),
                _mm256_set1_epi32(1 << 14),
            ));
            let ig = rescale8(_mm256_mullo_epi32(i, gg), m0, k0);
            // |fc| ≤ 2^15: with ig clamped to ±2^20 the sum neither wraps nor changes its
            // saturation to the i16 range
            let neg = _mm256_sub_epi32(_mm256_setzero_si256(), lim);
            let ig = _mm256_min_epi32(_mm256_max_epi32(ig, neg), lim);
            let cn = sat16(_mm256_add_epi32(fc, ig));
            let packed = _mm_packs_epi32(
                _mm256_castsi256_si128(cn),
                _mm256_extracti128_si256::<1>(cn),
            );
            _mm_storeu_si128(cp.cast(), packed);
            let tc = table_q15(tanh, sat16(rescale8(cn, m1, k1)));
            let v = rescale8(_mm256_mullo_epi32(o, tc), m2, k2);
            let v = _mm256_min_epi32(_mm256_max_epi32(v, lo8), hi8);
            let w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            _mm_storel_epi64(m.as_mut_ptr().add(j).cast(), _mm_packs_epi16(w, w));
        }
        j += 8;
    }
    // the last units, one at a time
    let (rest_g, rest_c, rest_m) = (g, &mut c[j..n], &mut m[j..n]);
    for (t, (cj, mj)) in rest_c.iter_mut().zip(rest_m.iter_mut()).enumerate() {
        let u = j + t;
        let one = [
            rest_g[u],
            rest_g[hid + u],
            rest_g[2 * hid + u],
            rest_g[3 * hid + u],
        ];
        crate::kernels::integer::lstm_cell_plain(
            &one,
            1,
            rq,
            core::slice::from_mut(cj),
            core::slice::from_mut(mj),
        );
    }
}

/// Reference: `acc[r] = f(acc[r], rq_r(sums[r]))` for the rows `r < min(sums, ms, acc
/// lengths)` (`kernels::integer::IntMat::requant_into`).
#[cfg(test)]
pub(crate) fn rescale_rows_into_ref(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    acc: &mut [i32],
    f: impl Fn(i32, i32) -> i32,
) {
    for ((a, &v), &m) in acc.iter_mut().zip(sums).zip(ms) {
        *a = f(*a, rq(v, m, shift));
    }
}

/// [`rescale_rows_into_ref`] for `shift ≤ 62`: the requantized rows eight at a time into
/// `sums`' place in a scratch of 64 rows, then `f` (inlined here, so compiled with AVX2).
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn rescale_rows_into_avx2(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    acc: &mut [i32],
    f: impl Fn(i32, i32) -> i32,
) {
    let n = sums.len().min(ms.len()).min(acc.len());
    // SAFETY: AVX2 (this function's contract).
    let k = unsafe { rq8(shift) };
    let mut buf = [0i32; 64];
    let mut r = 0;
    while r < n {
        let len = (n - r).min(64);
        let mut t = 0;
        while t + 8 <= len {
            // SAFETY: r + t + 8 <= n <= sums.len(), ms.len(); t + 8 <= 64; unaligned.
            unsafe {
                let a = _mm256_loadu_si256(sums.as_ptr().add(r + t).cast());
                let m = _mm256_loadu_si256(ms.as_ptr().add(r + t).cast());
                _mm256_storeu_si256(buf.as_mut_ptr().add(t).cast(), rescale8(a, m, k));
            }
            t += 8;
        }
        for t in t..len {
            buf[t] = rq(sums[r + t], ms[r + t], shift);
        }
        for (a, &v) in acc[r..r + len].iter_mut().zip(&buf[..len]) {
            *a = f(*a, v);
        }
        r += len;
    }
}

/// `x` (i32 lanes, 16 of them from `p`) saturated to i16 and packed in order.
///
/// # Safety
/// AVX2; 16 i32 readable at `p`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn sat16_pack16(p: *const i32) -> __m256i {
    // SAFETY: 16 i32 at `p` (this function's contract); unaligned loads.
    let (a, b) = unsafe {
        (
            _mm256_loadu_si256(p.cast()),
            _mm256_loadu_si256(p.add(8).cast()),
        )
    };
    // packs works within 128-bit halves: [a0..3 b0..3 | a4..7 b4..7] → reorder the quadwords
    _mm256_permute4x64_epi64::<0b1101_1000>(_mm256_packs_epi32(a, b))
}

/// [`crate::kernels::reference::dot_rows_strided`] with `x16` (the probabilities, saturated
/// to i16 once, 16 at a time by `vpackssdw`), `vpmaddwd` over 16 columns per step (then 8,
/// then the last few), one row per pass. The sums wrap as the reference's.
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_rows_strided_q15_avx2(
    q: &[i8],
    stride: usize,
    x: &[i32],
    sums: &mut [i32],
) {
    let cols = x.len();
    let n = reference::strided_rows(q.len(), stride, cols, sums.len());
    if cols == 0 || cols > 1024 {
        reference::dot_rows_strided(q, stride, &[], x, &mut sums[..n]);
        return;
    }
    let body = cols - cols % 16;
    let mut x16 = [0i16; 1024];
    let mut c = 0;
    while c < body {
        // SAFETY: c + 16 <= body <= x.len(); x16 holds c + 16 ≤ 1024; unaligned store.
        unsafe {
            let v = sat16_pack16(x.as_ptr().add(c));
            _mm256_storeu_si256(x16.as_mut_ptr().add(c).cast(), v);
        }
        c += 16;
    }
    for c in body..cols {
        x16[c] = x[c].clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    }
    for (r, s) in sums.iter_mut().take(n).enumerate() {
        let row = &q[r * stride..r * stride + cols];
        let mut acc = _mm256_setzero_si256();
        let mut c = 0;
        while c < body {
            // SAFETY: c + 16 <= body <= cols = row.len() ≤ x16's filled part; unaligned.
            unsafe {
                let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.as_ptr().add(c).cast()));
                let p = _mm256_loadu_si256(x16.as_ptr().add(c).cast());
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w, p));
            }
            c += 16;
        }
        // SAFETY: AVX2 (this function's contract).
        let mut t = unsafe { lanes_u64(acc) } as u32 as i32;
        for c in body..cols {
            t = t.wrapping_add(row[c] as i32 * x16[c] as i32);
        }
        *s = t;
    }
}

/// [`crate::kernels::reference::dot_rows_strided`] with `x8` (the attention scores of a head
/// over its cached keys): eight rows per pass, with AVX-512 VNNI (`vnni`) for rows up to 32
/// columns one `vpdpbusd` per row (the keys made unsigned, `x` zero-padded to 32 bytes so the
/// bytes read past a row count nothing, `128 · Σx` subtracted) where the 32 bytes lie inside
/// `q`, else `vpmaddwd` per 16 columns ([`dot_lanes`]); the last rows one at a time.
///
/// # Safety
/// AVX2; AVX-512 VNNI and VL if `vnni`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_rows_strided_i8_avx2(
    q: &[i8],
    stride: usize,
    x: &[i8],
    sums: &mut [i32],
    vnni: bool,
) {
    let cols = x.len();
    let n = reference::strided_rows(q.len(), stride, cols, sums.len());
    // (rows of no columns may start past `q`: empty, as in the reference)
    let row = |r: usize| q.get(r * stride..r * stride + cols).unwrap_or(&[]);
    let mut r = 0;
    if vnni && cols <= 32 && cols > 0 && q.len() >= 32 {
        let mut xpad = [0i8; 32];
        xpad[..cols].copy_from_slice(x);
        // SAFETY: `xpad` holds 32 bytes; unaligned load.
        let xv = unsafe { _mm256_loadu_si256(xpad.as_ptr().cast()) };
        let sx = _mm256_set1_epi32(128 * x.iter().map(|&v| v as i32).sum::<i32>());
        let flip = _mm256_set1_epi8(-128);
        // the rows whose 32 bytes from their start lie inside `q`
        let full = ((q.len() - 32) / stride.max(1) + 1).min(n);
        let one = |r: usize| {
            // SAFETY: AVX-512 VNNI and VL (`vnni`); r < full, so r·stride + 32 ≤ q.len().
            unsafe {
                let k = _mm256_loadu_si256(q.as_ptr().add(r * stride).cast());
                super::int8::dpbusd(_mm256_setzero_si256(), _mm256_xor_si256(k, flip), xv)
            }
        };
        while r + 8 <= full {
            // SAFETY: AVX2; r + 8 <= full <= n <= sums.len(); unaligned store.
            unsafe {
                let d = sum8(
                    one(r),
                    one(r + 1),
                    one(r + 2),
                    one(r + 3),
                    one(r + 4),
                    one(r + 5),
                    one(r + 6),
                    one(r + 7),
                );
                let d = _mm256_sub_epi32(d, sx);
                _mm256_storeu_si256(sums.as_mut_ptr().add(r).cast(), d);
            }
            r += 8;
        }
    }
    while r + 8 <= n {
        // SAFETY: AVX2; each row is `cols` long, as `x`; r + 8 <= n <= sums.len().
        unsafe {
            let d = sum8(
                dot_lanes(x, row(r)),
                dot_lanes(x, row(r + 1)),
                dot_lanes(x, row(r + 2)),
                dot_lanes(x, row(r + 3)),
                dot_lanes(x, row(r + 4)),
                dot_lanes(x, row(r + 5)),
                dot_lanes(x, row(r + 6)),
                dot_lanes(x, row(r + 7)),
            );
            _mm256_storeu_si256(sums.as_mut_ptr().add(r).cast(), d);
        }
        r += 8;
    }
    for (r, s) in sums.iter_mut().enumerate().take(n).skip(r) {
        *s = reference::dot_i8(row(r), x);
    }
}

/// `⌊√v⌋`, exactly (`kernels::integer::isqrt`): the f64 square root corrected by whole steps
/// until `s² ≤ v < (s + 1)²` (integer comparisons decide, so the result is the same integer).
#[inline]
pub(crate) fn isqrt_fast(v: u64) -> u32 {
    let mut s = (libm::sqrt(v as f64) as u64).min(u32::MAX as u64);
    while s * s > v {
        s -= 1;
    }
    while s < u32::MAX as u64 && (s + 1) * (s + 1) <= v {
        s += 1;
    }
    s as u32
}

/// `a +sat b` (i32 saturating) of eight lanes: the wrapping sum, and where it overflowed (`a`
/// and `b` share a sign the sum does not have) the bound on `a`'s side.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn adds_epi32(a: __m256i, b: __m256i) -> __m256i {
    let s = _mm256_add_epi32(a, b);
    let ovf = _mm256_srai_epi32::<31>(_mm256_and_si256(
        _mm256_xor_si256(a, s),
        _mm256_xor_si256(b, s),
    ));
    let bound = _mm256_blendv_epi8(
        _mm256_set1_epi32(i32::MAX),
        _mm256_set1_epi32(i32::MIN),
        _mm256_srai_epi32::<31>(a),
    );
    _mm256_blendv_epi8(s, bound, ovf)
}

/// Whether [`norm_i8_avx2`] computes exactly `kernels::integer::norm_i8` for these operands:
/// at least one value, all within `±X_MAX` (the step's bound, under which the plain form's
/// i32 and i64 arithmetic is exact), a full parameter list (`[2·W + 3]`).
pub(crate) fn norm_i8_fits(x: &[i32], p: &[i32]) -> bool {
    !x.is_empty() && x.len() <= 1 << 16 && p.len() >= 2 * x.len() + 3 && {
        // branch-free (vectorised) bounds of the values
        let (lo, hi) = x
            .iter()
            .fold((i32::MAX, i32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        lo >= -X_MAX && hi <= X_MAX
    }
}

/// `kernels::integer::norm_i8` (its documentation has the exact definition) with AVX2: the
/// sums in vector lanes (`Σd²` in 64-bit lanes), [`isqrt_fast`], then eight elements at a
/// time — `n = (d · r + 2^23) >> 24` and `t = (n · g) >> 32` from 64-bit products of the even
/// and odd lanes, the saturating adds and the shift in 32-bit lanes. For `r ≥ 2^31` (`σ ≤ 2^9`,
/// a nearly constant input) the elements take the plain form.
///
/// # Safety
/// AVX2; [`norm_i8_fits`].
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn norm_i8_avx2(x: &[i32], p: &[i32], rms: bool, out: &mut [i8]) {
    let w = x.len();
    let n = w as i64;
    let mean = if rms {
        0
    } else {
        // |Σx| ≤ 2^16 · 2^22: i64 exactly
        let s: i64 = x.iter().map(|&v| v as i64).sum();
        (s + n / 2).div_euclid(n) as i32
    };
    let mv = _mm256_set1_epi32(mean);
    let mut ssv = _mm256_setzero_si256();
    let mut i = 0;
    while i + 8 <= w {
        // SAFETY: i + 8 <= w = x.len(); unaligned load. |d| ≤ 2^23: d² fits 64-bit lanes.
        unsafe {
            let d = _mm256_sub_epi32(_mm256_loadu_si256(x.as_ptr().add(i).cast()), mv);
            let od = _mm256_srli_epi64::<32>(d);
            ssv = _mm256_add_epi64(ssv, _mm256_mul_epi32(d, d));
            ssv = _mm256_add_epi64(ssv, _mm256_mul_epi32(od, od));
        }
        i += 8;
    }
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` holds 32 bytes; unaligned store.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), ssv) };
    let mut ss = lanes.iter().fold(0u64, |a, &b| a.wrapping_add(b));
    for &v in &x[i..] {
        let d = v.wrapping_sub(mean) as i64;
        ss = ss.wrapping_add((d * d) as u64);
    }
    let (g, rest) = p.split_at(w);
    let (b, tail) = rest.split_at(w);
    let e = (tail[0] as u32).min(30);
    let eps = tail[1] as u32 as u64 | (tail[2] as u32 as u64) << 32;
    let sigma = isqrt_fast((ss / n as u64).saturating_add(eps)).max(1) as u64;
    let r = (1u64 << 40) / sigma;
    let half = (1i32 << e) >> 1;
    let m = w.min(out.len());
    let last = |ni: i32, g: i32, b: i32| {
        let t = ((ni as i64 * g as i64) >> 32) as i32;
        sat_i8(t.saturating_add(b).saturating_add(half) >> e)
    };
    if r >= 1 << 31 {
        for j in 0..m {
            let ni = ((x[j].wrapping_sub(mean) as i64 * r as i64 + (1 << 23)) >> 24) as i32;
            out[j] = last(ni, g[j], b[j]);
        }
        return;
    }
    let rv = _mm256_set1_epi32(r as i32);
    let round = _mm256_set1_epi64x(1 << 23);
    let (hv, ev) = (_mm256_set1_epi32(half), _mm_cvtsi32_si128(e as i32));
    let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
    let mut j = 0;
    while j + 8 <= m {
        // SAFETY: AVX2; j + 8 <= m ≤ x, g, b, out lengths; unaligned loads and stores.
        unsafe {
            let d = _mm256_sub_epi32(_mm256_loadu_si256(x.as_ptr().add(j).cast()), mv);
            // n = (d · r + 2^23) >> 24: |d · r| < 2^54, the low word of the logical shift
            let ne = _mm256_srli_epi64::<24>(_mm256_add_epi64(_mm256_mul_epi32(d, rv), round));
            let no = _mm256_srli_epi64::<24>(_mm256_add_epi64(
                _mm256_mul_epi32(_mm256_srli_epi64::<32>(d), rv),
                round,
            ));
            let ni = _mm256_blend_epi32::<0b1010_1010>(ne, _mm256_slli_epi64::<32>(no));
            // t = (n · g) >> 32: the high word of each product
            let gv = _mm256_loadu_si256(g.as_ptr().add(j).cast());
            let te = _mm256_srli_epi64::<32>(_mm256_mul_epi32(ni, gv));
            let to = _mm256_mul_epi32(_mm256_srli_epi64::<32>(ni), _mm256_srli_epi64::<32>(gv));
            let t = _mm256_blend_epi32::<0b1010_1010>(te, to);
            let bv = _mm256_loadu_si256(b.as_ptr().add(j).cast());
            let v = _mm256_sra_epi32(adds_epi32(adds_epi32(t, bv), hv), ev);
            let v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
            let w8 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            _mm_storel_epi64(out.as_mut_ptr().add(j).cast(), _mm_packs_epi16(w8, w8));
        }
        j += 8;
    }
    for j in j..m {
        let ni = ((x[j].wrapping_sub(mean) as i64 * r as i64 + (1 << 23)) >> 24) as i32;
        out[j] = last(ni, g[j], b[j]);
    }
}

/// [`exp_neg_q15`] of eight lanes: the table pair `t[i], t[i+1]` as one 32-bit word
/// ([`pairs8`]) at `i`, the interpolation, 0 from 16384 on.
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn exp_neg8(x: __m256i) -> __m256i {
    let u = _mm256_max_epi32(x, _mm256_setzero_si256());
    // i ≤ 511 keeps the lookup inside the 513 entries (lanes from 16384 on are zeroed below)
    let i = _mm256_min_epi32(_mm256_srli_epi32::<5>(u), _mm256_set1_epi32(511));
    let table = crate::kernels::int_tables::EXP_NEG_Q15.as_ptr();
    // SAFETY: AVX2; every index is at most 511, inside the 513 entries.
    let pair = unsafe { pairs8(table, i) };
    let t0 = _mm256_and_si256(pair, _mm256_set1_epi32(0xffff));
    let t1 = _mm256_srli_epi32::<16>(pair);
    let f = _mm256_and_si256(u, _mm256_set1_epi32(31));
    let step = _mm256_mullo_epi32(_mm256_sub_epi32(t1, t0), f);
    let e = _mm256_add_epi32(
        t0,
        _mm256_srai_epi32::<5>(_mm256_add_epi32(step, _mm256_set1_epi32(16))),
    );
    _mm256_andnot_si256(_mm256_cmpgt_epi32(x, _mm256_set1_epi32((16 << 10) - 1)), e)
}

/// `(e · inv + 2^30) >> 31` of eight lanes (`0 ≤ e ≤ 2^16`, `inv < 2^32`: the product fits 64
/// bits and the result 32).
///
/// # Safety
/// AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn scale_p8(e: __m256i, inv: __m256i) -> __m256i {
    let half = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_srli_epi64::<31>(_mm256_add_epi64(_mm256_mul_epu32(e, inv), half));
    let odd = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64::<32>(e), inv), half);
    let odd = _mm256_slli_epi64::<1>(odd); // (odd >> 31) << 32, its low bits dropped by the blend
    _mm256_blend_epi32::<0b1010_1010>(even, odd)
}

/// [`crate::kernels::integer::softmax_q15_plain`] eight scores at a time: the maximum, [`exp_neg8`] and the sum in
/// vector lanes (u32, flushed to u64 before they could wrap), one division, then
/// [`scale_p8`] (for `inv < 2^32`, always: the maximum's `e` is 32768) and the clamp.
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn softmax_q15_avx2(scores: &mut [i32]) {
    let n = scores.len();
    let max = scores.iter().copied().max().unwrap_or(0);
    let maxv = _mm256_set1_epi32(max);
    let mut sum = 0u64;
    let mut sumv = _mm256_setzero_si256();
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: AVX2; j + 8 <= n = scores.len(); unaligned load and store.
        unsafe {
            let s = _mm256_loadu_si256(scores.as_ptr().add(j).cast());
            // max − s as u32 is exact (max ≥ s); from 16384 on e is 0, as for the plain
            // form's saturating difference
            let d = _mm256_min_epu32(_mm256_sub_epi32(maxv, s), _mm256_set1_epi32(16 << 10));
            let e = exp_neg8(d);
            _mm256_storeu_si256(scores.as_mut_ptr().add(j).cast(), e);
            sumv = _mm256_add_epi32(sumv, e);
        }
        j += 8;
        if j % (1 << 16) == 0 {
            // at most 2^15 per lane per pass: flushed before a u32 lane could wrap
            // SAFETY: AVX2.
            sum += unsafe { lanes_u64(sumv) };
            sumv = _mm256_setzero_si256();
        }
    }
    // SAFETY: AVX2.
    sum += unsafe { lanes_u64(sumv) };
    for sc in &mut scores[j..] {
        *sc = exp_neg_q15(max.saturating_sub(*sc)) as i32;
        sum += *sc as u64;
    }
    let inv = (1u64 << 46) / sum.max(1);
    let mut j = 0;
    if inv < 1 << 32 {
        let iv = _mm256_set1_epi64x(inv as i64);
        let cap = _mm256_set1_epi32(i16::MAX as i32);
        while j + 8 <= n {
            // SAFETY: AVX2; j + 8 <= n = scores.len(); unaligned load and store.
            unsafe {
                let e = _mm256_loadu_si256(scores.as_ptr().add(j).cast());
                let p = _mm256_min_epi32(scale_p8(e, iv), cap);
                _mm256_storeu_si256(scores.as_mut_ptr().add(j).cast(), p);
            }
            j += 8;
        }
    }
    for sc in &mut scores[j..] {
        *sc = (((*sc as u64 * inv + (1 << 30)) >> 31) as i32).min(i16::MAX as i32);
    }
}
