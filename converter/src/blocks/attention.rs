//! Config keys of `attention` blocks: `kind, heads, window, ffn_dim, activation`.

use runnel::{Activation, AttentionSpec};
use serde_json::{Map, Value};

use crate::config::{check_keys, err, positive, string};
use crate::Error;

pub(crate) fn parse(
    m: &Map<String, Value>,
    path: &str,
    width: usize,
) -> Result<AttentionSpec, Error> {
    check_keys(
        m,
        path,
        &["kind", "heads", "window", "ffn_dim", "activation"],
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
    Ok(AttentionSpec {
        width,
        heads,
        window,
        ffn_dim,
        activation,
    })
}
