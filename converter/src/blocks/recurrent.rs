//! Config keys of `lstm` and `gru` blocks: `kind, num_layers, hidden, norm, residual`.

use runnel::{Cell, RecurrentSpec};
use serde_json::{Map, Value};

use crate::config::{boolean, check_keys, err, positive};
use crate::Error;

pub(crate) fn parse(
    cell: Cell,
    m: &Map<String, Value>,
    path: &str,
    width: usize,
) -> Result<RecurrentSpec, Error> {
    check_keys(
        m,
        path,
        &["kind", "num_layers", "hidden", "norm", "residual"],
    )?;
    let num_layers = positive(m, "num_layers", path, Some(1))?;
    let hidden = positive(m, "hidden", path, Some(width))?;
    let norm = boolean(m, "norm", path, true)?;
    let residual = boolean(m, "residual", path, true)?;
    if num_layers == 0 {
        return Err(err(format!("`{path}.num_layers` must be at least 1")));
    }
    if hidden == 0 {
        return Err(err(format!("`{path}.hidden` must be at least 1")));
    }
    if residual && hidden != width {
        return Err(err(format!(
            "`{path}.hidden` = {hidden} differs from the block's input width {width}, which a residual block needs (set \"residual\": false or hidden = {width})"
        )));
    }
    Ok(RecurrentSpec {
        cell,
        num_layers,
        in_width: width,
        hidden,
        norm,
        residual,
    })
}
