//! `runnel eval`: one model, every storage mode, on the user's own data — what each mode costs
//! (flash, RAM, time per step) and what it changes (error and top-1 agreement against the f32
//! mode, bits per token for token inputs), so that a user can pick a mode.

use std::time::Instant;

use runnel::{DType, Model};

use crate::stream::{check_inputs, run_session_with, with_session, Inputs};
use crate::text::{argmax_of, surprisal_bits};
use crate::{convert, AlignedBytes, ConvertOptions, Error};

/// The weights × KV-cache modes `eval` compares, f32/f32 (the reference) first.
pub const MODES: [(DType, DType); 9] = {
    use DType::*;
    [
        (F32, F32),
        (F32, F16),
        (F32, I8),
        (F16, F32),
        (F16, F16),
        (F16, I8),
        (I8, F32),
        (I8, F16),
        (I8, I8),
    ]
};

/// What one mode measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeReport {
    /// Weight storage.
    pub weights: DType,
    /// KV-cache storage.
    pub kv: DType,
    /// The integer-only mode (int8 weights and KV, calibrated activations).
    pub integer: bool,
    /// Blob bytes (flash).
    pub flash_bytes: usize,
    /// State arena bytes (RAM).
    pub state_bytes: usize,
    /// Median wall time of one step, µs (this machine, one thread).
    pub us_per_step: f64,
    /// Largest `|out − out_f32|` over every step and output.
    pub max_abs_err: f64,
    /// Share of steps whose arg-max output equals the f32 mode's.
    pub top1_agreement: f64,
    /// Mean −log2 softmax probability of the next token (token inputs with ≥ 2 steps).
    pub bits_per_token: Option<f64>,
}

/// Converts `model` in every mode of [`MODES`] — and, given `calibrate` (calibration inputs),
/// in the integer-only mode calibrated on them — streams `inputs` through each from a fresh
/// session, and measures it. Inputs that do not fit the model are refused before any run.
/// `progress(done, total)` is called after each step, `total` being the steps of all modes
/// together.
pub fn eval(
    model: &[u8],
    inputs: &Inputs,
    calibrate: Option<&Inputs>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<ModeReport>, Error> {
    let steps = inputs.len();
    if steps == 0 {
        return Err(Error::new("inputs: no steps"));
    }
    let modes: Vec<Option<(DType, DType)>> = MODES
        .into_iter()
        .map(Some)
        .chain(calibrate.map(|_| None))
        .collect();
    let total = steps * modes.len();
    let mut reference: Option<Vec<f32>> = None;
    let mut reports = Vec::with_capacity(modes.len());
    for (i, mode) in modes.into_iter().enumerate() {
        let (c, (weights, kv)) = match (mode, calibrate) {
            (Some((weights, kv)), _) => (
                convert(model, &ConvertOptions { weights, kv })?,
                (weights, kv),
            ),
            (None, Some(cal)) => {
                let cal = crate::integer::Calibration::run(model, cal)?;
                (crate::convert_integer(model, &cal)?, (DType::I8, DType::I8))
            }
            (None, None) => continue,
        };
        let blob = AlignedBytes::new(&c.blob);
        let m = Model::from_bytes(blob.as_bytes())?;
        if i == 0 {
            // before any long run: the first (f32) blob tells whether the inputs fit
            check_inputs(inputs, m.input_kind())?;
        }
        let (outputs, us) = stream(&m, inputs, |s| progress(i * steps + s, total))?;
        let dim = m.output_dim();
        let reference = reference.get_or_insert_with(|| outputs.clone());
        let max_abs_err = outputs
            .iter()
            .zip(reference.iter())
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max);
        let agree = outputs
            .chunks_exact(dim)
            .zip(reference.chunks_exact(dim))
            .filter(|(a, b)| argmax_of(a) == argmax_of(b))
            .count();
        reports.push(ModeReport {
            weights,
            kv,
            integer: mode.is_none(),
            flash_bytes: m.blob_bytes(),
            state_bytes: m.state_bytes(),
            us_per_step: us,
            max_abs_err,
            top1_agreement: agree as f64 / steps as f64,
            bits_per_token: bits_per_token(&outputs, dim, inputs),
        });
    }
    Ok(reports)
}

/// Streams `inputs` through `m` from a fresh session: the outputs (`[T × output_dim]`) and the
/// median µs per step.
fn stream(
    m: &Model<'_>,
    inputs: &Inputs,
    mut progress: impl FnMut(usize),
) -> Result<(Vec<f32>, f64), Error> {
    let mut out = Vec::with_capacity(inputs.len() * m.output_dim());
    let mut times = Vec::with_capacity(inputs.len());
    with_session(m, |s| {
        let mut t0 = Instant::now();
        run_session_with(s, inputs, |row| {
            times.push(t0.elapsed().as_secs_f64() * 1e6);
            out.extend_from_slice(row);
            progress(times.len());
            t0 = Instant::now();
            Ok(())
        })
    })?;
    times.sort_by(f64::total_cmp);
    Ok((out, times.get(times.len() / 2).copied().unwrap_or(0.0)))
}

/// Mean −log2 p(next token) over steps `0..T−1`, the outputs read as logits.
fn bits_per_token(out: &[f32], dim: usize, inputs: &Inputs) -> Option<f64> {
    let Inputs::Tokens(toks) = inputs else {
        return None;
    };
    if toks.len() < 2 {
        return None;
    }
    let mut sum = 0.0f64;
    for (row, &next) in out.chunks_exact(dim).zip(&toks[1..]) {
        let next = usize::try_from(next).ok().filter(|&n| n < dim)?;
        sum += surprisal_bits(row, next);
    }
    Some(sum / (toks.len() - 1) as f64)
}

/// The reports as a table (one line per mode).
pub fn table(reports: &[ModeReport]) -> String {
    let mut s = format!(
        "{:<8} {:<6} {:>12} {:>11} {:>9} {:>12} {:>8} {:>10}\n",
        "weights",
        "kv",
        "flash bytes",
        "state bytes",
        "µs/step",
        "max |err|",
        "top-1",
        "bits/token"
    );
    for r in reports {
        s += &format!(
            "{:<8} {:<6} {:>12} {:>11} {:>9.1} {:>12.3e} {:>7.2}% {:>10}\n",
            if r.integer {
                "integer"
            } else {
                r.weights.name()
            },
            r.kv.name(),
            r.flash_bytes,
            r.state_bytes,
            r.us_per_step,
            r.max_abs_err,
            100.0 * r.top1_agreement,
            r.bits_per_token
                .map_or_else(|| "-".to_string(), |b| format!("{b:.4}"))
        );
    }
    s
}

/// The reports as a JSON array (`--json`).
pub fn json(reports: &[ModeReport]) -> serde_json::Value {
    serde_json::Value::Array(
        reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "weights": r.weights.name(),
                    "kv": r.kv.name(),
                    "integer": r.integer,
                    "flash_bytes": r.flash_bytes,
                    "state_bytes": r.state_bytes,
                    "us_per_step": r.us_per_step,
                    "max_abs_err": r.max_abs_err,
                    "top1_agreement": r.top1_agreement,
                    "bits_per_token": r.bits_per_token,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_per_token_of_uniform_logits_is_log2_of_the_vocabulary() {
        let out = vec![0.0f32; 3 * 8];
        let b = bits_per_token(&out, 8, &Inputs::Tokens(vec![1, 2, 3])).unwrap();
        assert!((b - 3.0).abs() < 1e-12);
        assert_eq!(bits_per_token(&out, 8, &Inputs::Tokens(vec![1])), None);
        assert_eq!(bits_per_token(&out, 8, &Inputs::Tokens(vec![1, 9])), None);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax_of(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax_of(&[]), 0);
    }
}
