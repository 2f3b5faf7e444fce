//! The converter's side of each block kind: its `runnel.config` keys, parsed into the runtime's
//! spec type, and what the model file's tensor names say about it (the attention naming and the
//! modules without bias). Tensor names and shapes are not here: they come from the runtime's
//! tensor plan ([`runnel::schema`], `runtime/src/blocks/`).

mod attention;
mod recurrent;

use std::collections::BTreeSet;

use runnel::schema::{IntPart, NormKind, TensorName};
use runnel::{BlockKind, BlockSpec, Cell};
use serde_json::Value;

use crate::config::{err, object, string};
use crate::integer::IntCx;
use crate::Error;

/// Parses block `path` (`blocks[i]`) whose input width is `width`; `norm_kind` is the model's.
pub(crate) fn parse(
    v: &Value,
    path: &str,
    width: usize,
    norm_kind: NormKind,
) -> Result<BlockSpec, Error> {
    let m = object(v, path)?;
    let kind = string(m, "kind", path)?.ok_or_else(|| err(format!("missing key `{path}.kind`")))?;
    let kind = BlockKind::from_name(kind).ok_or_else(|| {
        err(format!(
            "unknown `{path}.kind` \"{kind}\" (expected {})",
            BlockKind::names()
        ))
    })?;
    Ok(match kind {
        BlockKind::Lstm => {
            BlockSpec::Recurrent(recurrent::parse(Cell::Lstm, m, path, width, norm_kind)?)
        }
        BlockKind::Gru => {
            BlockSpec::Recurrent(recurrent::parse(Cell::Gru, m, path, width, norm_kind)?)
        }
        BlockKind::Attention => BlockSpec::Attention(attention::parse(m, path, width, norm_kind)?),
    })
}

/// Sets what block `index`'s tensor names say (see [`crate::config::Config::detect`]).
pub(crate) fn detect(
    b: &mut BlockSpec,
    index: usize,
    names: &BTreeSet<String>,
) -> Result<(), Error> {
    match b {
        BlockSpec::Recurrent(r) => recurrent::detect(r, index, names),
        BlockSpec::Attention(a) => attention::detect(a, index, names),
    }
}

/// The modules of block `index` without bias, by contract name.
pub(crate) fn bias_free(b: &BlockSpec, index: usize) -> Vec<String> {
    match b {
        BlockSpec::Recurrent(r) => recurrent::bias_free(r, index),
        BlockSpec::Attention(a) => attention::bias_free(a, index),
    }
}

/// The values of block `index`'s integer-mode parameter `part` of module `name`
/// (see [`crate::integer::int_values`]).
pub(crate) fn int_values(
    b: &BlockSpec,
    index: usize,
    name: &TensorName,
    part: IntPart,
    cx: &IntCx<'_>,
) -> Result<Vec<i32>, Error> {
    match b {
        BlockSpec::Recurrent(r) => recurrent::int_values(r, index, name, part, cx),
        BlockSpec::Attention(a) => attention::int_values(a, index, name, part, cx),
    }
}

/// Whether the optional tensor `name` is present; with `partner` (the other half of a pair of
/// §6.5 of the contract), an error naming the missing one if exactly one of them is.
pub(crate) fn pair(names: &BTreeSet<String>, a: &str, b: &str) -> Result<bool, Error> {
    match (names.contains(a), names.contains(b)) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (true, false) => Err(Error::new(format!(
            "missing tensor `{b}`: `{a}` is present, and the two are present or absent together"
        ))),
        (false, true) => Err(Error::new(format!(
            "missing tensor `{a}`: `{b}` is present, and the two are present or absent together"
        ))),
    }
}
