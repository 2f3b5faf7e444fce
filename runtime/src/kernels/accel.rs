//! Optional fast paths of the integer step for instruction sets that have them (today x86_64
//! with AVX2 / AVX-512 VNNI, `arch::x86_64::integer`): each function does its work and returns
//! `true`, or does nothing and returns `false`, and then the caller runs its own plain loop.
//! Every fast path computes exactly the caller's values (checked bit for bit against a plain
//! reference in the shared harness); on the other targets every function returns `false` and
//! compiles to nothing.

#[cfg(target_arch = "x86_64")]
use super::arch::x86_64 as isa;
use super::integer::Requant;

/// `v[r] = f(rq_r(v[r]))` for the rows `r < min(v.len(), ms.len())`: multiplier `ms[r]`,
/// `shift` shared (`kernels::integer::rescale_i32`).
#[inline(always)]
pub fn rescale_rows(v: &mut [i32], ms: &[i32], shift: u32, f: impl Fn(i32) -> i32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::rescale_rows(v, ms, shift, f)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (v, ms, shift, f);
        false
    }
}

/// `out[r] = sat_i8(rq_r(sums[r]))` for the rows `r < min(sums, ms, out lengths)`.
#[inline(always)]
pub fn rescale_rows_i8(sums: &[i32], ms: &[i32], shift: u32, out: &mut [i8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::rescale_rows_i8(sums, ms, shift, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (sums, ms, shift, out);
        false
    }
}

/// `x[r] = sat_x(x[r].saturating_add(rq_r(sums[r])))` with `add`, else `sat_x(rq_r(sums[r]))`,
/// for the rows `r < min(sums, ms, x lengths)`.
#[inline(always)]
pub fn rescale_rows_add_x(sums: &[i32], ms: &[i32], shift: u32, x: &mut [i32], add: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::rescale_rows_add_x(sums, ms, shift, x, add)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (sums, ms, shift, x, add);
        false
    }
}

/// The LSTM cell of the integer step (`blocks::recurrent`'s `step_int`) over
/// `min(hid, c.len(), m.len())` units: the gates' Q3.12 pre-activations (rows i, f, g, o of `g`
/// at `0, hid, 2·hid, 3·hid`, taken as i16), the cell requantizations `rq` (`i·g` → c,
/// c → Q3.12, `o·tanh(c)` → int8), the cell state `c` updated in place and `o ∘ tanh(c')`
/// written to `m`.
#[inline(always)]
pub fn lstm_cell(g: &[i32], hid: usize, rq: [Requant; 3], c: &mut [i16], m: &mut [i8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::lstm_cell(g, hid, rq, c, m)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, hid, rq, c, m);
        false
    }
}

/// `acc[r] = f(acc[r], rq_r(sums[r]))` for the rows `r < min(sums, ms, acc lengths)`.
#[inline(always)]
pub fn rescale_rows_into(
    sums: &[i32],
    ms: &[i32],
    shift: u32,
    acc: &mut [i32],
    f: impl Fn(i32, i32) -> i32,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::rescale_rows_into(sums, ms, shift, acc, f)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (sums, ms, shift, acc, f);
        false
    }
}

/// Integer LayerNorm / RMSNorm (`kernels::integer::norm_i8`, whose documentation has the exact
/// definition) of `x` onto `out`.
#[inline(always)]
pub fn norm_i8(x: &[i32], p: &[i32], rms: bool, out: &mut [i8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::norm_i8(x, p, rms, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, p, rms, out);
        false
    }
}

/// The integer softmax of one attention head (`blocks::attention`'s `step_int`) on its scores
/// (Q5.10), in place: the probabilities in Q0.15, at most 32767.
#[inline(always)]
pub fn softmax_q15(scores: &mut [i32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa::softmax_q15(scores)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = scores;
        false
    }
}
