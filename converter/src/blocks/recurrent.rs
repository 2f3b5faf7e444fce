//! Config keys of `lstm` blocks: `kind, num_layers, hidden, norm, residual, proj_size`; of `gru`
//! blocks the same without `proj_size`.

use std::collections::BTreeSet;

use runnel::schema::NormKind;
use runnel::{Cell, RecurrentSpec};
use serde_json::{Map, Value};

use super::pair;
use crate::config::{boolean, check_keys, err, positive};
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
