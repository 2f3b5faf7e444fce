//! The `runnel.config` JSON of the model contract (`runnel-model/1`), parsed strictly: unknown
//! keys, unknown kinds and inconsistent shapes are errors that name the offending key. The
//! top-level keys are here; each block kind's keys are in [`crate::blocks`]. The result is the
//! runtime's own schema types ([`runnel::BlockSpec`], [`runnel::InputKind`]).

use runnel::schema::{InputCode, ModelDims};
use runnel::{BlockSpec, InputKind};
use serde_json::{Map, Value};

use crate::Error;

/// The contract's `format` value.
pub const FORMAT: &str = "runnel-model/1";

/// A model configuration, defaults applied and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Input layer.
    pub input: InputKind,
    /// Width after the input layer.
    pub d_model: usize,
    /// Blocks in order; each one's `in_width` is the previous one's output width.
    pub blocks: Vec<BlockSpec>,
    /// LayerNorm epsilon.
    pub norm_eps: f32,
    /// Final LayerNorm before the head.
    pub final_norm: bool,
    /// Logits per step.
    pub output_dim: usize,
}

/// A config error naming the key: `runnel.config: {msg}`.
pub(crate) fn err(msg: String) -> Error {
    Error::new(format!("runnel.config: {msg}"))
}

/// The dotted path of `key` inside the object at `path`.
pub(crate) fn key_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `v` as an object, or an error naming `path`.
pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| err(format!("`{path}` must be a JSON object")))
}

/// Refuses any key of `m` outside `allowed`.
pub(crate) fn check_keys(
    m: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), Error> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(format!(
                "unknown key `{}` (allowed here: {})",
                key_path(path, k),
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// A dimension `0..=MAX_DIM` (callers check ≥ 1 where needed), or `default` when absent.
pub(crate) fn positive(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    default: Option<usize>,
) -> Result<usize, Error> {
    let p = key_path(path, key);
    match m.get(key) {
        None => default.ok_or_else(|| err(format!("missing key `{p}`"))),
        Some(v) => {
            let n = v
                .as_u64()
                .ok_or_else(|| err(format!("`{p}` must be a non-negative integer, got {v}")))?;
            let n = usize::try_from(n).map_err(|_| err(format!("`{p}` is too large")))?;
            if n > runnel::limits::MAX_DIM {
                return Err(err(format!(
                    "`{p}` = {n} exceeds the runtime's limit {}",
                    runnel::limits::MAX_DIM
                )));
            }
            Ok(n)
        }
    }
}

/// A boolean, or `default` when absent.
pub(crate) fn boolean(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    default: bool,
) -> Result<bool, Error> {
    match m.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(err(format!(
            "`{}` must be true or false, got {v}",
            key_path(path, key)
        ))),
    }
}

/// A string, or `None` when absent.
pub(crate) fn string<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Error> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(err(format!(
            "`{}` must be a string, got {v}",
            key_path(path, key)
        ))),
    }
}

impl Config {
    /// Parses and validates the JSON text of `runnel.config`.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let m = object(&v, "runnel.config")?;
        check_keys(
            m,
            "",
            &[
                "format",
                "input",
                "d_model",
                "blocks",
                "norm_eps",
                "final_norm",
                "output",
            ],
        )?;
        match string(m, "format", "")? {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(err(format!(
                    "`format` is \"{other}\", expected \"{FORMAT}\""
                )))
            }
            None => return Err(err("missing key `format`".into())),
        }
        let input_v = m
            .get("input")
            .ok_or_else(|| err("missing key `input`".into()))?;
        let im = object(input_v, "input")?;
        let kind =
            string(im, "kind", "input")?.ok_or_else(|| err("missing key `input.kind`".into()))?;
        let code = InputCode::from_name(kind).ok_or_else(|| {
            err(format!(
                "unknown `input.kind` \"{kind}\" (expected {})",
                InputCode::names()
            ))
        })?;
        // The width key is named after the kind: `vocab` for tokens, `dim` for frames.
        let width_key = match code {
            InputCode::Tokens => "vocab",
            InputCode::Frames => "dim",
        };
        check_keys(im, "input", &["kind", width_key])?;
        let input_dim = positive(im, width_key, "input", None)?;
        if input_dim == 0 {
            return Err(err(format!("`input.{width_key}` must be at least 1")));
        }
        let input = InputKind::new(code, input_dim);
        let d_model = positive(m, "d_model", "", None)?;
        let norm_eps = match m.get("norm_eps") {
            None => 1e-5,
            Some(v) => {
                let e = v
                    .as_f64()
                    .ok_or_else(|| err(format!("`norm_eps` must be a number, got {v}")))?;
                if !(e.is_finite() && e >= 0.0) {
                    return Err(err(format!(
                        "`norm_eps` must be finite and non-negative, got {e}"
                    )));
                }
                e as f32
            }
        };
        let final_norm = boolean(m, "final_norm", "", true)?;
        let out_v = m
            .get("output")
            .ok_or_else(|| err("missing key `output`".into()))?;
        let om = object(out_v, "output")?;
        check_keys(om, "output", &["dim"])?;
        let output_dim = positive(om, "dim", "output", None)?;

        let blocks_v = m
            .get("blocks")
            .ok_or_else(|| err("missing key `blocks`".into()))?;
        let arr = blocks_v
            .as_array()
            .ok_or_else(|| err("`blocks` must be a JSON array".into()))?;
        let mut blocks = Vec::new();
        let mut width = d_model;
        for (i, b) in arr.iter().enumerate() {
            let block = crate::blocks::parse(b, &format!("blocks[{i}]"), width)?;
            width = block.out_width();
            blocks.push(block);
        }
        if blocks.len() > runnel::limits::MAX_BLOCKS {
            return Err(err(format!(
                "{} blocks exceed the runtime's limit of {}",
                blocks.len(),
                runnel::limits::MAX_BLOCKS
            )));
        }
        let layers: usize = blocks.iter().map(BlockSpec::rnn_layers).sum();
        if layers > runnel::limits::MAX_RNN_LAYERS {
            return Err(err(format!(
                "{layers} recurrent layers in total exceed the runtime's limit of {}",
                runnel::limits::MAX_RNN_LAYERS
            )));
        }
        if d_model == 0 || output_dim == 0 {
            return Err(err("`d_model` and `output.dim` must be at least 1".into()));
        }
        Ok(Config {
            input,
            d_model,
            blocks,
            norm_eps,
            final_norm,
            output_dim,
        })
    }

    /// The model-level dimensions the tensor plan depends on.
    pub fn dims(&self) -> ModelDims {
        ModelDims {
            input: self.input,
            d_model: self.d_model,
            output_dim: self.output_dim,
            final_norm: self.final_norm,
        }
    }

    /// The width after the last block (the head's input).
    pub fn final_width(&self) -> usize {
        self.blocks
            .last()
            .map_or(self.d_model, BlockSpec::out_width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel::{Activation, AttentionSpec, Cell, RecurrentSpec};

    fn parse(blocks: &str) -> Result<Config, Error> {
        Config::from_json(&format!(
            r#"{{"format":"runnel-model/1","input":{{"kind":"tokens","vocab":10}},"d_model":8,"blocks":{blocks},"output":{{"dim":3}}}}"#
        ))
    }

    #[test]
    fn defaults_are_applied() {
        let c = parse(r#"[{"kind":"lstm"},{"kind":"attention","heads":2,"window":4}]"#).unwrap();
        assert_eq!(c.norm_eps, 1e-5);
        assert!(c.final_norm);
        assert_eq!(
            c.blocks[0],
            BlockSpec::Recurrent(RecurrentSpec {
                cell: Cell::Lstm,
                num_layers: 1,
                in_width: 8,
                hidden: 8,
                norm: true,
                residual: true
            })
        );
        assert_eq!(
            c.blocks[1],
            BlockSpec::Attention(AttentionSpec {
                width: 8,
                heads: 2,
                window: 4,
                ffn_dim: 0,
                activation: Activation::Gelu
            })
        );
        assert_eq!(c.final_width(), 8);
    }

    #[test]
    fn hidden_defaults_to_the_running_width() {
        let c = parse(r#"[{"kind":"gru","hidden":5,"residual":false},{"kind":"lstm"}]"#).unwrap();
        let widths: Vec<_> = c
            .blocks
            .iter()
            .map(|b| (b.in_width(), b.out_width()))
            .collect();
        assert_eq!(widths, vec![(8, 5), (5, 5)]);
    }

    #[test]
    fn errors_name_the_key() {
        let e = |b: &str| parse(b).unwrap_err().to_string();
        assert!(e(r#"[{"kind":"lstm","foo":1}]"#).contains("blocks[0].foo"));
        assert!(e(r#"[{"kind":"conv"}]"#).contains("\"conv\""));
        assert!(e(r#"[{"kind":"attention","heads":3,"window":4}]"#).contains("blocks[0].heads"));
        assert!(e(r#"[{"kind":"attention","heads":2,"window":0}]"#).contains("blocks[0].window"));
        assert!(e(r#"[{"kind":"attention","heads":2}]"#).contains("blocks[0].window"));
        assert!(e(r#"[{"kind":"lstm","hidden":4}]"#).contains("blocks[0].hidden"));
        assert!(e(r#"[{"kind":"lstm","num_layers":0}]"#).contains("num_layers"));
        assert!(
            e(r#"[{"kind":"attention","heads":2,"window":4,"activation":"tanh"}]"#)
                .contains("activation")
        );
        assert!(Config::from_json("{}")
            .unwrap_err()
            .to_string()
            .contains("format"));
        assert!(Config::from_json("[1]")
            .unwrap_err()
            .to_string()
            .contains("runnel.config"));
    }
}
