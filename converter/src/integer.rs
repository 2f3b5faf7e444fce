//! The integer-only mode (`runnel convert --integer --calibrate DATA`, docs/INTEGER.md): the
//! calibration, which streams the float model over the user's data and records the largest
//! `|value|` at every site, and the integer parameters computed from it and the weights. The
//! runtime's integer plan (`runtime/src/blocks/*.rs`, `schema::input_int` / `tail_int`) says which
//! parameter tensors a model has; `int_values` computes each one, here for the model-level
//! tensors and in each block kind's file (`blocks/`) for its own.

use std::collections::BTreeMap;

use runnel::blocks::{Site, SITE_FRAME, SITE_HEAD_IN, SITE_LOGITS, SITE_X};
use runnel::kernels::integer::Requant;
use runnel::schema::{IntPart, TensorName};

use crate::config::Config;
use crate::stream::{self, Inputs};
use crate::{AlignedBytes, ConvertOptions, Error};
use runnel::DType;

/// The residual stream's grid puts the largest calibration value at `2^X_BITS` (and saturates
/// at 8× that, `runnel::kernels::integer::X_MAX`).
const X_BITS: i32 = 19;
/// The logit grid puts the largest calibration logit at `2^LOGIT_BITS`.
const LOGIT_BITS: i32 = 20;

/// What the calibration saw at one site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteStats {
    /// Largest `|value|`.
    pub max_abs: f32,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Values seen.
    pub count: u64,
}

/// The calibration of a model: per site, the largest `|value|` of the float model over the data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Steps streamed.
    pub steps: usize,
    /// Every site, in order.
    pub sites: BTreeMap<Site, SiteStats>,
}

impl runnel::blocks::Probe for Calibration {
    fn see(&mut self, site: Site, values: &[f32]) {
        let e = self.sites.entry(site).or_insert(SiteStats {
            max_abs: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
        });
        for &v in values {
            e.max_abs = e.max_abs.max(v.abs());
            e.min = e.min.min(v);
            e.max = e.max.max(v);
        }
        e.count += values.len() as u64;
    }
}

/// One row of the calibration table `convert --integer` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteReport {
    /// The site (`blocks.1.q`, `x`, …).
    pub site: String,
    /// Largest `|value|` seen.
    pub max_abs: f32,
    /// The grid's step (the value of one integer unit).
    pub scale: f64,
    /// The grid's format (`int8`, `int16`, `i32`).
    pub format: &'static str,
    /// Share of the calibration values beyond the grid (saturated): 0, since each grid holds
    /// the largest value seen; values beyond it on other data saturate.
    pub clipped: f64,
}

impl Calibration {
    /// Streams `inputs` through the float (f32) conversion of the model `st_bytes`, recording
    /// every site. Refuses empty inputs.
    pub fn run(st_bytes: &[u8], inputs: &Inputs) -> Result<Calibration, Error> {
        if inputs.is_empty() {
            return Err(Error::new("calibration: the inputs have no steps"));
        }
        let f32 = crate::convert(
            st_bytes,
            &ConvertOptions {
                weights: DType::F32,
                kv: DType::F32,
            },
        )?;
        let blob = AlignedBytes::new(&f32.blob);
        let model = runnel::Model::from_bytes(blob.as_bytes())?;
        stream::check_inputs(inputs, model.input_kind())?;
        let mut cal = Calibration {
            steps: inputs.len(),
            ..Default::default()
        };
        stream::with_session(&model, |s| {
            stream::run_session_probed(s, inputs, &mut cal, |_| Ok(()))
        })
        .map_err(|e| Error::new(format!("calibration: {e}")))?;
        Ok(cal)
    }

    /// The largest `|value|` at `site` (a tiny positive number if it was never nonzero, so that
    /// every grid has a positive step).
    pub fn max(&self, site: Site) -> f64 {
        let m = self.sites.get(&site).map_or(0.0, |s| s.max_abs as f64);
        m.max(1e-20)
    }

    /// The grid of an int8 site: `max / 127`.
    pub fn s8(&self, site: Site) -> f64 {
        self.max(site) / 127.0
    }

    /// An int8 grid with an offset for a one-sided site (an activation's output, mostly above
    /// some small negative value): `(scale, zero)` with `v ≈ (q − zero) · scale`, the range
    /// `[min, max]` seen onto `[−127, 127]` — twice the resolution of [`Self::s8`] for a
    /// ReLU / GELU / SiLU output.
    pub fn s8_offset(&self, site: Site) -> (f64, i32) {
        let (lo, hi) = self.sites.get(&site).map_or((0.0, 0.0), |s| {
            (s.min.min(0.0) as f64, s.max.max(0.0) as f64)
        });
        let scale = ((hi - lo) / 254.0).max(1e-20);
        let zero = (-127.0 - lo / scale).round().clamp(-127.0, 127.0) as i32;
        (scale, zero)
    }

    /// The grid of the residual stream.
    pub fn sx(&self) -> f64 {
        self.max(SITE_X) / f64::powi(2.0, X_BITS)
    }

    /// The logit grid.
    pub fn s_logit(&self) -> f64 {
        self.max(SITE_LOGITS) / f64::powi(2.0, LOGIT_BITS)
    }

    /// The per-site table (site order), with each grid as the integer step uses it.
    pub fn report(&self) -> Vec<SiteReport> {
        self.sites
            .iter()
            .map(|(&site, st)| {
                let (scale, format) = if site == SITE_X {
                    (self.sx(), "i32")
                } else if site == SITE_LOGITS {
                    (self.s_logit(), "i32")
                } else if site.name == runnel::blocks::recurrent::SITE_C {
                    (self.max(site) / 32767.0, "int16")
                } else if site.name == runnel::blocks::attention::SITE_OFFSET {
                    (self.s8_offset(site).0, "int8+z")
                } else {
                    (self.s8(site), "int8")
                };
                SiteReport {
                    site: site.to_string(),
                    max_abs: st.max_abs,
                    scale,
                    format,
                    clipped: 0.0,
                }
            })
            .collect()
    }
}

/// What the integer parameters are computed from: the calibration, the config, and the model
/// file's f32 tensors by contract name.
pub(crate) struct IntCx<'a> {
    pub cal: &'a Calibration,
    pub cfg: &'a Config,
    pub file: &'a dyn Fn(&str) -> Option<Vec<f32>>,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::new(format!("integer mode: {what}"))
}

/// A parameter the integer plan asks for that no rule computes (a bug, not a user error).
pub(crate) fn no_rule(name: &TensorName, part: IntPart) -> Error {
    bad(format!(
        "internal error: no rule for `{name}:{}`",
        part.suffix()
    ))
}

impl IntCx<'_> {
    fn tensor(&self, name: &str) -> Result<Vec<f32>, Error> {
        (self.file)(name).ok_or_else(|| bad(format!("missing tensor `{name}`")))
    }

    /// Each row of matrix `mat` quantized as the blob stores it: its scale and the sum of its
    /// int8 values.
    fn quantized_rows(&self, mat: &TensorName, cols: usize) -> Result<Vec<(f64, i64)>, Error> {
        let v = self.tensor(&mat.to_string())?;
        let mut q = vec![0i8; cols];
        Ok(v.chunks_exact(cols.max(1))
            .map(|row| {
                let s = runnel::kernels::quantize_i8(row, &mut q) as f64;
                (s, q.iter().map(|&x| x as i64).sum())
            })
            .collect())
    }

    /// `bias` (`[rows]`), zeros if the model has none.
    pub fn bias(&self, name: &str, rows: usize) -> Vec<f64> {
        match (self.file)(name) {
            Some(v) => v.iter().map(|&b| b as f64).collect(),
            None => vec![0.0; rows],
        }
    }

    /// [`IntPart::Rq`] of `mat` (`[rows, cols]`) whose input grid is `s_in`: row `r`'s factor
    /// is `s_w[r] · s_in · k(r)` (`k(r)` the inverse of the row's output grid), as multipliers
    /// with one shift for the matrix (the largest that keeps every multiplier below 2^31, so
    /// the largest factor has 31 significant bits).
    pub fn mat_rq(
        &self,
        mat: &TensorName,
        cols: usize,
        s_in: f64,
        k: impl Fn(usize) -> f64,
    ) -> Result<Vec<i32>, Error> {
        let rows = self.quantized_rows(mat, cols)?;
        let f: Vec<f64> = rows
            .iter()
            .enumerate()
            .map(|(r, &(s, _))| s * s_in * k(r))
            .collect();
        let max = f.iter().fold(0f64, |m, &v| m.max(v));
        let shift = match Requant::from_factor(max) {
            Some(r) if f.iter().all(|v| v.is_finite() && *v >= 0.0) => r.shift as i32,
            _ => {
                return Err(bad(format!(
                    "`{mat}`: a rescaling factor ({max:e}) is out of range; the calibration data may not suit the model"
                )))
            }
        };
        let p = f64::powi(2.0, shift);
        let mut words: Vec<i32> = f
            .iter()
            .map(|v| (v * p).round().min(2147483647.0) as i32)
            .collect();
        words.push(shift);
        Ok(words)
    }

    /// [`IntPart::Bias`] of `mat` with bias tensor `bias` (zeros if absent) on the
    /// accumulator grid `s_w[r] · s_in`, saturated to ±2^30.
    pub fn mat_bias(
        &self,
        mat: &TensorName,
        cols: usize,
        bias: &str,
        s_in: f64,
    ) -> Result<Vec<i32>, Error> {
        self.mat_bias_offset(mat, cols, bias, s_in, 0)
    }

    /// [`Self::mat_bias`] for an input on an offset grid (`x = (q − zero) · s_in`): the bias
    /// also takes `−zero · Σ_c w_q[r][c]`, so the product of the stored `q` is exact.
    pub fn mat_bias_offset(
        &self,
        mat: &TensorName,
        cols: usize,
        bias: &str,
        s_in: f64,
        zero: i32,
    ) -> Result<Vec<i32>, Error> {
        let rows = self.quantized_rows(mat, cols)?;
        let b = self.bias(bias, rows.len());
        Ok(rows
            .iter()
            .zip(&b)
            .map(|(&(s, sum), &b)| {
                let acc = s * s_in;
                let bq = if acc > 0.0 {
                    (b / acc).round().clamp(-(1 << 30) as f64, (1 << 30) as f64) as i64
                } else {
                    0
                };
                (bq - zero as i64 * sum).clamp(i32::MIN as i64, i32::MAX as i64) as i32
            })
            .collect())
    }

    /// [`IntPart::Norm`] of norm module `module` (`[w]`; `weight`, and `bias` for a LayerNorm
    /// that has one) onto the int8 grid `s_out`.
    pub fn norm(&self, module: &str, w: usize, s_out: f64) -> Result<Vec<i32>, Error> {
        let g = self.tensor(&format!("{module}.weight"))?;
        let b = self.bias(&format!("{module}.bias"), w);
        // out = γ·n/s_out + β/s_out with n = N / 2^16: g = γ/s_out/2^16 · 2^(32+e), b = β/s_out · 2^e
        // for the largest e ≤ 30 that keeps both in i32 (g saturates for a degenerate grid)
        let gm: Vec<f64> = g
            .iter()
            .map(|&g| g as f64 / s_out / 65536.0 * f64::powi(2.0, 32))
            .collect();
        let bq: Vec<f64> = b.iter().map(|&b| b / s_out).collect();
        let fits = |e: i32| {
            let p = f64::powi(2.0, e);
            gm.iter().chain(&bq).all(|v| (v * p).abs() < 2147483647.0)
        };
        let sh = (0..=30).rev().find(|&e| fits(e)).unwrap_or(0);
        let p = f64::powi(2.0, sh);
        let q = |v: &f64| (v * p).round().clamp(-2147483647.0, 2147483647.0) as i32;
        let mut words: Vec<i32> = gm.iter().map(q).collect();
        words.extend(bq.iter().map(q));
        let sx = self.cal.sx();
        let eps = (self.cfg.norm_eps as f64 / (sx * sx))
            .round()
            .clamp(1.0, u64::MAX as f64) as u64;
        words.extend([sh, eps as u32 as i32, (eps >> 32) as u32 as i32]);
        Ok(words)
    }
}

/// `(m, shift)` words for each factor ([`Requant::from_factor`]), naming `what` on failure.
pub(crate) fn requant_words(
    factors: impl IntoIterator<Item = f64>,
    what: &dyn std::fmt::Display,
) -> Result<Vec<i32>, Error> {
    let mut w = Vec::new();
    for f in factors {
        let r = Requant::from_factor(f).ok_or_else(|| {
            bad(format!(
                "`{what}`: the rescaling factor {f:e} is out of range; the calibration data may not suit the model"
            ))
        })?;
        w.extend([r.m, r.shift as i32]);
    }
    Ok(w)
}

/// A 256-entry int8 table of `f` from the grid `s_in` to the offset grid `(s_out, zero)`
/// (`v = (q − zero) · s_out`), as 64 words.
pub(crate) fn lut_words(f: impl Fn(f64) -> f64, s_in: f64, s_out: f64, zero: i32) -> Vec<i32> {
    let bytes: Vec<u8> = (0..256u32)
        .map(|b| {
            let q = b as u8 as i8 as f64;
            ((f(q * s_in) / s_out).round() + zero as f64).clamp(-127.0, 127.0) as i8 as u8
        })
        .collect();
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The values of the integer-mode parameter `part` of module `name` (`[len]`).
pub(crate) fn int_values(
    cx: &IntCx<'_>,
    name: &TensorName,
    part: IntPart,
    len: usize,
) -> Result<Vec<i32>, Error> {
    let v = match name.block {
        Some(b) => {
            let spec = cx
                .cfg
                .blocks
                .get(b)
                .ok_or_else(|| bad(format!("no block {b}")))?;
            crate::blocks::int_values(spec, b, name, part, cx)?
        }
        None => top_values(cx, name, part)?,
    };
    if v.len() != len {
        return Err(bad(format!(
            "internal error: `{name}:{}` has {} words, the plan says {len}",
            part.suffix(),
            v.len()
        )));
    }
    Ok(v)
}

/// The model-level parameters: the input layer, the final norm and the head.
fn top_values(cx: &IntCx<'_>, name: &TensorName, part: IntPart) -> Result<Vec<i32>, Error> {
    let cal = cx.cal;
    let cfg = cx.cfg;
    let sx = cal.sx();
    let width = cfg.blocks.last().map_or(cfg.d_model, |b| b.out_width());
    let s_hin = cal.s8(SITE_HEAD_IN);
    let f32_bits = |v: f64| vec![(v as f32).to_bits() as i32];
    match (name.module, part) {
        ("embed", IntPart::Rq) => cx.mat_rq(name, cfg.d_model, 1.0, |_| 1.0 / sx),
        ("input", IntPart::Rq) => {
            cx.mat_rq(name, cfg.input.dim(), cal.s8(SITE_FRAME), |_| 1.0 / sx)
        }
        ("input", IntPart::Bias) => {
            cx.mat_bias(name, cfg.input.dim(), "input.bias", cal.s8(SITE_FRAME))
        }
        ("input", IntPart::Scale) => Ok(f32_bits(cal.s8(SITE_FRAME))),
        ("norm_f", IntPart::Norm) => cx.norm("norm_f", width, s_hin),
        ("head", IntPart::Requant) => requant_words([sx / s_hin], name),
        ("head", IntPart::Rq) => cx.mat_rq(name, width, s_hin, |_| 1.0 / cal.s_logit()),
        ("head", IntPart::Bias) => cx.mat_bias(name, width, "head.bias", s_hin),
        ("head", IntPart::Scale) => Ok(f32_bits(cal.s_logit())),
        _ => Err(no_rule(name, part)),
    }
}
