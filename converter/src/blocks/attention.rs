//! Config keys of `attention` blocks: `kind, heads, kv_heads, window, ffn_dim, activation, pos,
//! rope_theta`; and what the tensor names say: the packed (`in_proj_weight`) or split
//! (`q_proj`/`k_proj`/`v_proj`) naming, and the modules without bias.

use std::collections::BTreeSet;

use runnel::blocks::attention::{alibi_slope, RQ_HEADS, RQ_SCORE, SITES};
use runnel::blocks::attention::{
    NO_BIAS_FFN0, NO_BIAS_FFN2, NO_BIAS_K, NO_BIAS_NORM1, NO_BIAS_NORM2, NO_BIAS_OUT, NO_BIAS_Q,
    NO_BIAS_V,
};
use runnel::blocks::Site;
use runnel::schema::{IntPart, NormKind, PosKind, TensorName};
use runnel::{Activation, AttentionSpec};
use serde_json::{Map, Value};

use super::pair;
use crate::config::{check_keys, err, non_negative_f32, positive, string};
use crate::integer::{lut_words, no_rule, requant_words, IntCx};
use crate::Error;

pub(crate) fn parse(
    m: &Map<String, Value>,
    path: &str,
    width: usize,
    norm_kind: NormKind,
) -> Result<AttentionSpec, Error> {
    check_keys(
        m,
        path,
        &[
            "kind",
            "heads",
            "kv_heads",
            "window",
            "ffn_dim",
            "activation",
            "pos",
            "rope_theta",
        ],
    )?;
    let heads = positive(m, "heads", path, None)?;
    let window = match m.get("window") {
        Some(v) if v.as_u64().is_some() => {
            let w = v.as_u64().unwrap_or(0);
            if w < 1 {
                return Err(err(format!("`{path}.window` must be at least 1, got {w}")));
            }
            usize::try_from(w).map_err(|_| err(format!("`{path}.window` is too large")))?
        }
        Some(v) => {
            return Err(err(format!(
                "`{path}.window` must be an integer ≥ 1, got {v}"
            )))
        }
        None => return Err(err(format!("missing key `{path}.window`"))),
    };
    if window > u32::MAX as usize {
        return Err(err(format!("`{path}.window` is too large")));
    }
    let ffn_dim = positive(m, "ffn_dim", path, Some(0))?;
    let name = string(m, "activation", path)?.unwrap_or(Activation::Gelu.name());
    let activation = Activation::from_name(name).ok_or_else(|| {
        err(format!(
            "unknown `{path}.activation` \"{name}\" (expected {})",
            Activation::names()
        ))
    })?;
    if heads == 0 || width % heads != 0 {
        return Err(err(format!(
            "`{path}.heads` = {heads} does not divide the block's width {width}"
        )));
    }
    let kv_heads = positive(m, "kv_heads", path, Some(heads))?;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(err(format!(
            "`{path}.kv_heads` = {kv_heads} does not divide `heads` = {heads}"
        )));
    }
    let pos_name = string(m, "pos", path)?.unwrap_or(PosKind::None.name());
    let pos = PosKind::from_name(pos_name).ok_or_else(|| {
        err(format!(
            "unknown `{path}.pos` \"{pos_name}\" (expected {})",
            PosKind::names()
        ))
    })?;
    let rope_theta = match pos {
        PosKind::Rope => {
            let t = non_negative_f32(m, "rope_theta", path, 10000.0)?;
            if t <= 0.0 {
                return Err(err(format!("`{path}.rope_theta` must be positive")));
            }
            let d = width / heads;
            if d % 2 != 0 {
                return Err(err(format!(
                    "`{path}.pos` \"rope\" needs an even head width, but {width} / `heads` {heads} = {d}"
                )));
            }
            t
        }
        PosKind::None | PosKind::Alibi => {
            if m.contains_key("rope_theta") {
                return Err(err(format!(
                    "`{path}.rope_theta` applies only with \"pos\": \"rope\""
                )));
            }
            0.0
        }
    };
    Ok(AttentionSpec {
        width,
        heads,
        kv_heads,
        window,
        ffn_dim,
        activation,
        pos,
        rope_theta,
        split: false,
        norm_kind,
        no_bias: 0,
    })
}

/// The naming (§6.1: either `in_proj_weight`/`in_proj_bias` or `q_proj`, `k_proj`, `v_proj`,
/// never both) and the modules without bias (§6.5).
pub(crate) fn detect(
    a: &mut AttentionSpec,
    index: usize,
    names: &BTreeSet<String>,
) -> Result<(), Error> {
    let t = |s: &str| format!("blocks.{index}.{s}");
    let has = |s: &str| names.contains(&t(s));
    let packed = ["attn.in_proj_weight", "attn.in_proj_bias"]
        .into_iter()
        .find(|s| has(s));
    let split = ["q", "k", "v"]
        .iter()
        .flat_map(|p| ["weight", "bias"].map(|w| format!("attn.{p}_proj.{w}")))
        .find(|s| has(s));
    match (packed, &split) {
        (Some(p), Some(s)) => {
            return Err(Error::new(format!(
                "block {index} mixes the two attention namings: `{}` and `{}` (use in_proj_weight/in_proj_bias or q_proj/k_proj/v_proj)",
                t(p),
                t(s)
            )))
        }
        (_, Some(_)) => a.split = true,
        _ => a.split = false,
    }
    if !a.split && a.kv_heads != a.heads {
        return Err(Error::new(format!(
            "blocks[{index}].kv_heads = {} needs separate `{}`, `{}` and `{}` tensors (grouped-query attention cannot be stored as in_proj_weight)",
            a.kv_heads,
            t("attn.q_proj.weight"),
            t("attn.k_proj.weight"),
            t("attn.v_proj.weight")
        )));
    }
    let mut no_bias = 0;
    if a.split {
        for (bit, p) in [
            (NO_BIAS_Q, "q"),
            (NO_BIAS_K, "k"),
            (NO_BIAS_V, "v"),
            (NO_BIAS_OUT, "out"),
        ] {
            if !has(&format!("attn.{p}_proj.bias")) {
                no_bias |= bit;
            }
        }
    } else if !pair(names, &t("attn.in_proj_bias"), &t("attn.out_proj.bias"))? {
        no_bias |= NO_BIAS_Q | NO_BIAS_K | NO_BIAS_V | NO_BIAS_OUT;
    }
    let layer = a.norm_kind == NormKind::Layer;
    if layer && !has("norm1.bias") {
        no_bias |= NO_BIAS_NORM1;
    }
    if a.ffn_dim > 0 {
        if !has("ffn.0.bias") {
            no_bias |= NO_BIAS_FFN0;
        }
        if !has("ffn.2.bias") {
            no_bias |= NO_BIAS_FFN2;
        }
        if layer && !has("norm2.bias") {
            no_bias |= NO_BIAS_NORM2;
        }
    }
    a.no_bias = no_bias;
    Ok(())
}

pub(crate) fn bias_free(a: &AttentionSpec, index: usize) -> Vec<String> {
    let mut v = Vec::new();
    let mut push = |bit: u32, m: &str| {
        if a.no_bias & bit != 0 {
            v.push(format!("blocks.{index}.{m}"));
        }
    };
    push(NO_BIAS_NORM1, "norm1");
    if a.split {
        push(NO_BIAS_Q, "attn.q_proj");
        push(NO_BIAS_K, "attn.k_proj");
        push(NO_BIAS_V, "attn.v_proj");
        push(NO_BIAS_OUT, "attn.out_proj");
    } else {
        push(NO_BIAS_Q, "attn");
    }
    push(NO_BIAS_NORM2, "norm2");
    push(NO_BIAS_FFN0, "ffn.0");
    push(NO_BIAS_FFN2, "ffn.2");
    v
}

/// The activation as a float64 function (for the integer mode's tables).
fn activation_f64(a: Activation) -> impl Fn(f64) -> f64 {
    move |x: f64| match a {
        Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::Relu => x.max(0.0),
        Activation::Silu => x / (1.0 + (-x).exp()),
    }
}

/// The integer-mode parameters of an attention block (the runtime's `AttentionSpec::step_int`):
/// every matrix input and output on the int8 grid of its site (`runnel::blocks::attention::SITES`),
/// the logits of the softmax in Q5.10, its probabilities in Q0.15.
pub(crate) fn int_values(
    a: &AttentionSpec,
    index: usize,
    name: &TensorName,
    part: IntPart,
    cx: &IntCx<'_>,
) -> Result<Vec<i32>, Error> {
    let cal = cx.cal;
    let s = |i: usize| {
        cal.s8(Site {
            block: Some(index),
            name: SITES[i],
            layer: None,
        })
    };
    let [norm1, q, k, v, att, norm2, pre] = [0, 1, 2, 3, 4, 5, 6].map(s);
    // the activation's output: an offset grid (runnel::blocks::attention::SITE_OFFSET)
    let (post, zero) = cal.s8_offset(Site {
        block: Some(index),
        name: SITES[7],
        layer: None,
    });
    let (w, kw, f) = (a.width, a.kv_width(), a.ffn_dim);
    let p = |m: &str| format!("blocks.{index}.{m}");
    let rows_q = |r: usize| {
        1.0 / if r < w {
            q
        } else if r < w + kw {
            k
        } else {
            v
        }
    };
    match (name.module, name.param, part) {
        ("norm1", _, IntPart::Norm) => cx.norm(&p("norm1"), w, norm1),
        ("norm2", _, IntPart::Norm) => cx.norm(&p("norm2"), w, norm2),
        ("attn", "in_proj_weight", IntPart::Rq) => cx.mat_rq(name, w, norm1, rows_q),
        ("attn", "in_proj_weight", IntPart::Bias) => {
            cx.mat_bias(name, w, &p("attn.in_proj_bias"), norm1)
        }
        ("attn.q_proj" | "attn.k_proj" | "attn.v_proj", _, IntPart::Rq) => {
            let out = match name.module {
                "attn.q_proj" => q,
                "attn.k_proj" => k,
                _ => v,
            };
            cx.mat_rq(name, w, norm1, |_| 1.0 / out)
        }
        ("attn.q_proj" | "attn.k_proj" | "attn.v_proj", _, IntPart::Bias) => {
            cx.mat_bias(name, w, &p(&format!("{}.bias", name.module)), norm1)
        }
        ("attn.out_proj", _, IntPart::Rq) => cx.mat_rq(name, w, att, |_| 1.0 / cal.sx()),
        ("attn.out_proj", _, IntPart::Bias) => cx.mat_bias(name, w, &p("attn.out_proj.bias"), att),
        ("attn", "softmax", IntPart::Requant) => {
            let rope = if a.pos == PosKind::Rope {
                1.0 / 16384.0
            } else {
                1.0
            };
            let score = q * k / (a.head_dim() as f64).sqrt() * 1024.0 * rope;
            let mut words = vec![0; 4];
            let rq = requant_words([score, v / (32768.0 * att)], name)?;
            words[2 * RQ_SCORE..2 * RQ_SCORE + 2].copy_from_slice(&rq[..2]);
            words[2 * RQ_HEADS..2 * RQ_HEADS + 2].copy_from_slice(&rq[2..]);
            Ok(words)
        }
        ("attn", "rope_cos_sin", IntPart::Rope) => Ok((0..a.window * a.head_dim())
            .map(|i| (a.rope_value(i) as f64 * 16384.0).round() as i32)
            .collect()),
        ("attn", "alibi", IntPart::Alibi) => Ok((0..a.heads)
            .map(|h| (alibi_slope(h, a.heads) as f64 * 65536.0).round() as i32)
            .collect()),
        ("ffn.0", _, IntPart::Rq) => cx.mat_rq(name, w, norm2, |_| 1.0 / pre),
        ("ffn.0", _, IntPart::Bias) => cx.mat_bias(name, w, &p("ffn.0.bias"), norm2),
        ("ffn", "activation", IntPart::Lut) => {
            Ok(lut_words(activation_f64(a.activation), pre, post, zero))
        }
        ("ffn.2", _, IntPart::Rq) => cx.mat_rq(name, f, post, |_| 1.0 / cal.sx()),
        ("ffn.2", _, IntPart::Bias) => cx.mat_bias_offset(name, f, &p("ffn.2.bias"), post, zero),
        _ => Err(no_rule(name, part)),
    }
}
