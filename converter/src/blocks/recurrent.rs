//! Config keys of `lstm` blocks: `kind, num_layers, hidden, norm, residual, proj_size`; of `gru`
//! blocks the same without `proj_size`.

use std::collections::BTreeSet;

use runnel::blocks::recurrent::{SITE_C, SITE_H, SITE_IN};
use runnel::blocks::Site;
use runnel::schema::{IntPart, NormKind, TensorName};
use runnel::{Cell, RecurrentSpec};
use serde_json::{Map, Value};

use super::pair;
use crate::config::{boolean, check_keys, err, positive};
use crate::integer::{no_rule, requant_words, IntCx};
use crate::Error;

pub(crate) fn parse(
    cell: Cell,
    m: &Map<String, Value>,
    path: &str,
    width: usize,
    norm_kind: NormKind,
) -> Result<RecurrentSpec, Error> {
    let keys: &[&str] = match cell {
        Cell::Lstm => &[
            "kind",
            "num_layers",
            "hidden",
            "norm",
            "residual",
            "proj_size",
        ],
        Cell::Gru => &["kind", "num_layers", "hidden", "norm", "residual"],
    };
    check_keys(m, path, keys)?;
    let num_layers = positive(m, "num_layers", path, Some(1))?;
    let hidden = positive(m, "hidden", path, Some(width))?;
    let norm = boolean(m, "norm", path, true)?;
    let residual = boolean(m, "residual", path, true)?;
    let proj_size = positive(m, "proj_size", path, Some(0))?;
    if num_layers == 0 {
        return Err(err(format!("`{path}.num_layers` must be at least 1")));
    }
    if hidden == 0 {
        return Err(err(format!("`{path}.hidden` must be at least 1")));
    }
    if proj_size >= hidden && proj_size > 0 {
        return Err(err(format!(
            "`{path}.proj_size` = {proj_size} must be below `hidden` = {hidden} (as in nn.LSTM)"
        )));
    }
    let out = if proj_size > 0 { proj_size } else { hidden };
    if residual && out != width {
        let key = if proj_size > 0 { "proj_size" } else { "hidden" };
        return Err(err(format!(
            "`{path}.{key}` = {out} differs from the block's input width {width}, which a residual block needs (set \"residual\": false or {key} = {width})"
        )));
    }
    Ok(RecurrentSpec {
        cell,
        num_layers,
        in_width: width,
        hidden,
        proj_size,
        norm,
        residual,
        norm_kind,
        bias: true,
        norm_bias: true,
    })
}

/// `nn.LSTM(bias=False)` / `nn.GRU(bias=False)`: `bias_ih_lK` and `bias_hh_lK` absent together,
/// in every layer alike; `nn.LayerNorm(bias=False)`: `norm.bias` absent.
pub(crate) fn detect(
    r: &mut RecurrentSpec,
    index: usize,
    names: &BTreeSet<String>,
) -> Result<(), Error> {
    let cell = r.cell.name();
    let p = |k: usize, w: &str| format!("blocks.{index}.{cell}.bias_{w}_l{k}");
    let first = pair(names, &p(0, "ih"), &p(0, "hh"))?;
    for k in 1..r.num_layers {
        if pair(names, &p(k, "ih"), &p(k, "hh"))? != first {
            let (missing, present) = if first { (k, 0) } else { (0, k) };
            return Err(Error::new(format!(
                "missing tensor `{}`: `{}` is present, and every layer of a block has biases or none does",
                p(missing, "ih"),
                p(present, "ih")
            )));
        }
    }
    r.bias = first;
    r.norm_bias = !(r.norm && r.norm_kind == NormKind::Layer)
        || names.contains(&format!("blocks.{index}.norm.bias"));
    Ok(())
}

pub(crate) fn bias_free(r: &RecurrentSpec, index: usize) -> Vec<String> {
    let mut v = Vec::new();
    if !r.norm_bias {
        v.push(format!("blocks.{index}.norm"));
    }
    if !r.bias {
        v.push(format!("blocks.{index}.{}", r.cell.name()));
    }
    v
}

/// The integer-mode parameters of a recurrent block (the runtime's `RecurrentSpec::step_int`):
/// layer 0's input on the grid of site `in`; gate pre-activations in Q3.12; `c` int16 on the
/// grid of site `cK`; `h` int8 on 1/127 (or, with `proj_size`, on the grid of site `hK`).
pub(crate) fn int_values(
    r: &RecurrentSpec,
    index: usize,
    name: &TensorName,
    part: IntPart,
    cx: &IntCx<'_>,
) -> Result<Vec<i32>, Error> {
    let cal = cx.cal;
    let site = |name, layer| Site {
        block: Some(index),
        name,
        layer,
    };
    let rec = r.out_width();
    // the grid of layer k's h
    let s_h = |k: usize| {
        if r.proj_size > 0 {
            cal.s8(site(SITE_H, Some(k)))
        } else {
            1.0 / 127.0
        }
    };
    let s_in0 = cal.s8(site(SITE_IN, None));
    let k = name.layer.unwrap_or(0);
    let cell = r.cell.name();
    let q12 = |_| 4096.0;
    match (name.param, part) {
        ("weight", IntPart::Norm) => cx.norm(&format!("blocks.{index}.norm"), r.in_width, s_in0),
        ("input", IntPart::Requant) => requant_words([cal.sx() / s_in0], name),
        ("weight_ih_l", IntPart::Rq | IntPart::Bias) => {
            let (cols, s_in) = if k == 0 {
                (r.in_width, s_in0)
            } else {
                (rec, s_h(k - 1))
            };
            match part {
                IntPart::Rq => cx.mat_rq(name, cols, s_in, q12),
                _ => cx.mat_bias(
                    name,
                    cols,
                    &format!("blocks.{index}.{cell}.bias_ih_l{k}"),
                    s_in,
                ),
            }
        }
        ("weight_hh_l", IntPart::Rq) => cx.mat_rq(name, rec, s_h(k), q12),
        ("weight_hh_l", IntPart::Bias) => cx.mat_bias(
            name,
            rec,
            &format!("blocks.{index}.{cell}.bias_hh_l{k}"),
            s_h(k),
        ),
        ("cell_l", IntPart::Requant) => {
            let s_c = cal.max(site(SITE_C, Some(k))) / 32767.0;
            // i·g (Q0.30) → c; c → Q3.12; o·tanh(c) (Q0.30) → int8 on 1/127
            let q30 = f64::powi(2.0, -30);
            requant_words([q30 / s_c, s_c * 4096.0, q30 * 127.0], name)
        }
        ("weight_hr_l", IntPart::Rq) => cx.mat_rq(name, r.hidden, 1.0 / 127.0, |_| 1.0 / s_h(k)),
        ("weight_hr_l", IntPart::Bias) => Ok(vec![0; r.proj_size]),
        ("output", IntPart::Requant) => {
            let top = s_h(r.num_layers.saturating_sub(1));
            requant_words([top / cal.sx()], name)
        }
        _ => Err(no_rule(name, part)),
    }
}
