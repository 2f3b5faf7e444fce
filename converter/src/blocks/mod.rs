//! The converter's side of each block kind: its `runnel.config` keys, parsed into the runtime's
//! spec type. Tensor names and shapes are not here: they come from the runtime's tensor plan
//! ([`runnel::schema`], `runtime/src/blocks/`).

mod attention;
mod recurrent;

use runnel::{BlockKind, BlockSpec, Cell};
use serde_json::Value;

use crate::config::{err, object, string};
use crate::Error;

/// Parses block `path` (`blocks[i]`) whose input width is `width`.
pub(crate) fn parse(v: &Value, path: &str, width: usize) -> Result<BlockSpec, Error> {
    let m = object(v, path)?;
    let kind = string(m, "kind", path)?.ok_or_else(|| err(format!("missing key `{path}.kind`")))?;
    let kind = BlockKind::from_name(kind).ok_or_else(|| {
        err(format!(
            "unknown `{path}.kind` \"{kind}\" (expected {})",
            BlockKind::names()
        ))
    })?;
    Ok(match kind {
        BlockKind::Lstm => BlockSpec::Recurrent(recurrent::parse(Cell::Lstm, m, path, width)?),
        BlockKind::Gru => BlockSpec::Recurrent(recurrent::parse(Cell::Gru, m, path, width)?),
        BlockKind::Attention => BlockSpec::Attention(attention::parse(m, path, width)?),
    })
}
