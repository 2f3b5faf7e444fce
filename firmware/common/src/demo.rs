//! The demo step loop shared by every board.
//!
//! For each step it runs one [`Workload::step`], measures it with the board's
//! [`InstrCounter`], and logs over `defmt`:
//!
//! ```text
//! step=<i> argmax=<i> value=<f32> checksum=<0x........> <unit>=<n>
//! ```
//!
//! and at the end
//!
//! ```text
//! summary steps=<n> total_<unit>=<n> peak_stack_bytes=<n> caller_stack_bytes=<n> run_checksum=<0x........>
//! ```
//!
//! `checksum` is [`crate::fnv1a_f32`] of the step's output row (for an `i32`
//! row, the integer mode's logits: [`crate::fnv1a_i32`], and `value` is the
//! integer); `run_checksum` is FNV-1a over the little-endian bytes of all step
//! checksums in order.
//! Only `Workload::step` is inside the measured interval (not logging).

use crate::checksum::{fnv1a_f32, fnv1a_i32, Fnv1a};
use crate::stack::{self, StackRegion};
use crate::InstrCounter;

/// An element of an output row: `f32` (logits of the float API) or `i32`
/// (the integer mode's logits on the model's logit grid).
pub trait OutValue: Copy {
    /// Index of the largest element of `row` (first one on ties).
    fn argmax(row: &[Self]) -> usize;
    /// The row's checksum ([`fnv1a_f32`] / [`fnv1a_i32`]).
    fn checksum(row: &[Self]) -> u32;
    /// Logs one step: `step=<i> argmax=<i> value=<v> checksum=<c> <unit>=<n>`.
    fn log_step(step: u32, argmax: u32, value: Option<Self>, checksum: u32, unit: &str, n: u64);
}

impl OutValue for f32 {
    fn argmax(row: &[f32]) -> usize {
        argmax(row)
    }
    fn checksum(row: &[f32]) -> u32 {
        fnv1a_f32(row)
    }
    #[inline(always)]
    fn log_step(step: u32, argmax: u32, value: Option<f32>, checksum: u32, unit: &str, n: u64) {
        defmt::info!(
            "step={=u32} argmax={=u32} value={=f32} checksum={=u32:#010x} {=str}={=u64}",
            step,
            argmax,
            value.unwrap_or(f32::NAN),
            checksum,
            unit,
            n
        );
    }
}

impl OutValue for i32 {
    fn argmax(row: &[i32]) -> usize {
        argmax_i32(row)
    }
    fn checksum(row: &[i32]) -> u32 {
        fnv1a_i32(row)
    }
    #[inline(always)]
    fn log_step(step: u32, argmax: u32, value: Option<i32>, checksum: u32, unit: &str, n: u64) {
        defmt::info!(
            "step={=u32} argmax={=u32} value={=i32} checksum={=u32:#010x} {=str}={=u64}",
            step,
            argmax,
            value.unwrap_or(0),
            checksum,
            unit,
            n
        );
    }
}

/// Something that produces one output row per step.
pub trait Workload {
    type Error: defmt::Format;
    /// Element of the output row.
    type Out: OutValue;
    /// Length of the output row.
    fn output_dim(&self) -> usize;
    /// Number of steps in the demo.
    fn steps(&self) -> usize;
    /// Run step `step`, writing `out[..output_dim()]`.
    fn step(&mut self, step: usize, out: &mut [Self::Out]) -> Result<(), Self::Error>;
}

/// Result of a demo run.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Summary {
    pub steps: u32,
    pub total: u64,
    /// Peak stack depth (bytes from the top of the stack) since the last paint.
    pub peak_stack_bytes: u32,
    /// Stack depth when `run` was entered (callers' frames, e.g. a `Model`
    /// held by the caller); `peak - caller` is what the steps themselves used.
    pub caller_stack_bytes: u32,
    pub run_checksum: u32,
}

/// Index of the largest element (first one on ties; NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    let mut top = f32::NAN; // row[best] (NaN for an empty row)
    for (i, &x) in row.iter().enumerate() {
        if i == 0 || x > top || top.is_nan() && !x.is_nan() {
            best = i;
            top = x;
        }
    }
    best
}

/// Index of the largest element of an `i32` row (first one on ties; 0 for an
/// empty row).
pub fn argmax_i32(row: &[i32]) -> usize {
    let mut best = 0;
    let mut top = i32::MIN;
    for (i, &x) in row.iter().enumerate() {
        if x > top {
            best = i;
            top = x;
        }
    }
    best
}

/// Run `w` for `w.steps()` steps, logging each one.
///
/// `out` must hold at least `w.output_dim()` values. Returns the summary, or
/// the first workload error (already logged).
pub fn run<W: Workload, C: InstrCounter>(
    w: &mut W,
    counter: &mut C,
    stack_region: StackRegion,
    out: &mut [W::Out],
) -> Result<Summary, W::Error> {
    let caller_stack = stack_region.top.saturating_sub(stack::current_sp());
    let dim = w.output_dim();
    let out = &mut out[..dim];
    let steps = w.steps();
    defmt::info!(
        "demo start steps={=u32} output_dim={=u32} counter={=str} resolution={=u32} stack_size={=u32}",
        steps as u32,
        dim as u32,
        C::UNIT,
        C::RESOLUTION,
        stack_region.size() as u32
    );
    let mut total: u64 = 0;
    let mut run_hash = Fnv1a::new();
    for i in 0..steps {
        let t0 = counter.now();
        let r = w.step(i, out);
        let t1 = counter.now();
        if let Err(e) = r {
            defmt::error!("step={=u32} failed: {}", i as u32, e);
            return Err(e);
        }
        let n = t1.wrapping_sub(t0);
        total += n;
        let am = W::Out::argmax(out);
        let sum = W::Out::checksum(out);
        run_hash.write_u32(sum);
        W::Out::log_step(i as u32, am as u32, out.get(am).copied(), sum, C::UNIT, n);
    }
    let s = Summary {
        steps: steps as u32,
        total,
        peak_stack_bytes: stack::high_water(stack_region) as u32,
        caller_stack_bytes: caller_stack as u32,
        run_checksum: run_hash.finish(),
    };
    defmt::info!(
        "summary steps={=u32} total_{=str}={=u64} peak_stack_bytes={=u32} caller_stack_bytes={=u32} run_checksum={=u32:#010x}",
        s.steps,
        C::UNIT,
        s.total,
        s.peak_stack_bytes,
        s.caller_stack_bytes,
        s.run_checksum
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::{argmax, argmax_i32};

    #[test]
    fn argmax_i32_takes_the_first_maximum() {
        assert_eq!(argmax_i32(&[1, 3, 3, 2]), 1);
        assert_eq!(argmax_i32(&[-5, -4]), 1);
        assert_eq!(argmax_i32(&[i32::MIN, i32::MIN]), 0);
        assert_eq!(argmax_i32(&[]), 0);
    }

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, f32::NAN, 2.0]), 3);
        assert_eq!(argmax(&[-1.0, f32::NAN]), 0);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[-5.0, -4.0]), 1);
    }
}
