//! The `runnel.config` JSON of the model contract (`runnel-model/1`), parsed strictly: unknown
//! keys, unknown kinds and inconsistent shapes are errors that name the offending key.

use serde_json::{Map, Value};

use crate::Error;

/// The contract's `format` value.
pub const FORMAT: &str = "runnel-model/1";

/// What the model consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputConfig {
    /// `{"kind": "tokens", "vocab": N}`.
    Tokens {
        /// Vocabulary size.
        vocab: usize,
    },
    /// `{"kind": "frames", "dim": N}`.
    Frames {
        /// Features per frame.
        dim: usize,
    },
}

/// Recurrent cell type of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// `lstm`.
    Lstm,
    /// `gru`.
    Gru,
}

impl CellKind {
    /// Name in tensor names and the config.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
    /// Gate rows per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// One block, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockConfig {
    /// `lstm` or `gru`.
    Recurrent {
        /// Cell type.
        cell: CellKind,
        /// Stacked layers.
        num_layers: usize,
        /// Hidden size.
        hidden: usize,
        /// Pre-norm.
        norm: bool,
        /// Residual connection.
        residual: bool,
    },
    /// `attention`.
    Attention {
        /// Heads.
        heads: usize,
        /// Window (steps cached, this one included).
        window: usize,
        /// FFN width, 0 for none.
        ffn_dim: usize,
        /// FFN activation.
        activation: runnel::Activation,
    },
}

/// A model configuration, defaults applied and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Input layer.
    pub input: InputConfig,
    /// Width after the input layer.
    pub d_model: usize,
    /// Blocks in order.
    pub blocks: Vec<BlockConfig>,
    /// LayerNorm epsilon.
    pub norm_eps: f32,
    /// Final LayerNorm before the head.
    pub final_norm: bool,
    /// Logits per step.
    pub output_dim: usize,
}

fn err(msg: String) -> Error {
    Error::new(format!("runnel.config: {msg}"))
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| err(format!("`{path}` must be a JSON object")))
}

fn check_keys(m: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), Error> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            return Err(err(format!(
                "unknown key `{p}` (allowed here: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn positive(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    default: Option<usize>,
) -> Result<usize, Error> {
    let p = if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    };
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

fn boolean(m: &Map<String, Value>, key: &str, path: &str, default: bool) -> Result<bool, Error> {
    match m.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(err(format!(
            "`{path}.{key}` must be true or false, got {v}"
        ))),
    }
}

fn string<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>, Error> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(err(format!(
            "`{}{key}` must be a string, got {v}",
            if path.is_empty() {
                String::new()
            } else {
                format!("{path}.")
            }
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
        let input = match string(im, "kind", "input")? {
            Some("tokens") => {
                check_keys(im, "input", &["kind", "vocab"])?;
                InputConfig::Tokens {
                    vocab: positive(im, "vocab", "input", None)?,
                }
            }
            Some("frames") => {
                check_keys(im, "input", &["kind", "dim"])?;
                InputConfig::Frames {
                    dim: positive(im, "dim", "input", None)?,
                }
            }
            Some(k) => {
                return Err(err(format!(
                    "unknown `input.kind` \"{k}\" (expected \"tokens\" or \"frames\")"
                )))
            }
            None => return Err(err("missing key `input.kind`".into())),
        };
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
            let path = format!("blocks[{i}]");
            let bm = object(b, &path)?;
            let kind = string(bm, "kind", &path)?
                .ok_or_else(|| err(format!("missing key `{path}.kind`")))?;
            let block = match kind {
                "lstm" | "gru" => {
                    check_keys(
                        bm,
                        &path,
                        &["kind", "num_layers", "hidden", "norm", "residual"],
                    )?;
                    let cell = if kind == "lstm" {
                        CellKind::Lstm
                    } else {
                        CellKind::Gru
                    };
                    let num_layers = positive(bm, "num_layers", &path, Some(1))?;
                    let hidden = positive(bm, "hidden", &path, Some(width))?;
                    let norm = boolean(bm, "norm", &path, true)?;
                    let residual = boolean(bm, "residual", &path, true)?;
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
                    width = hidden;
                    BlockConfig::Recurrent {
                        cell,
                        num_layers,
                        hidden,
                        norm,
                        residual,
                    }
                }
                "attention" => {
                    check_keys(
                        bm,
                        &path,
                        &["kind", "heads", "window", "ffn_dim", "activation"],
                    )?;
                    let heads = positive(bm, "heads", &path, None)?;
                    let window = match bm.get("window") {
                        Some(v) if v.as_u64().is_some() => {
                            let w = v.as_u64().unwrap_or(0);
                            if w < 1 {
                                return Err(err(format!(
                                    "`{path}.window` must be at least 1, got {w}"
                                )));
                            }
                            usize::try_from(w)
                                .map_err(|_| err(format!("`{path}.window` is too large")))?
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
                    let ffn_dim = positive(bm, "ffn_dim", &path, Some(0))?;
                    let activation = match string(bm, "activation", &path)?.unwrap_or("gelu") {
                        "gelu" => runnel::Activation::Gelu,
                        "gelu_tanh" => runnel::Activation::GeluTanh,
                        "relu" => runnel::Activation::Relu,
                        "silu" => runnel::Activation::Silu,
                        other => {
                            return Err(err(format!(
                                "unknown `{path}.activation` \"{other}\" (expected gelu, gelu_tanh, relu or silu)"
                            )))
                        }
                    };
                    if heads == 0 || width % heads != 0 {
                        return Err(err(format!(
                            "`{path}.heads` = {heads} does not divide the block's width {width}"
                        )));
                    }
                    BlockConfig::Attention {
                        heads,
                        window,
                        ffn_dim,
                        activation,
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown `{path}.kind` \"{other}\" (expected lstm, gru or attention)"
                    )))
                }
            };
            blocks.push(block);
        }
        if blocks.len() > runnel::limits::MAX_BLOCKS {
            return Err(err(format!(
                "{} blocks exceed the runtime's limit of {}",
                blocks.len(),
                runnel::limits::MAX_BLOCKS
            )));
        }
        let layers: usize = blocks
            .iter()
            .map(|b| match b {
                BlockConfig::Recurrent { num_layers, .. } => *num_layers,
                _ => 0,
            })
            .sum();
        if layers > runnel::limits::MAX_RNN_LAYERS {
            return Err(err(format!(
                "{layers} recurrent layers in total exceed the runtime's limit of {}",
                runnel::limits::MAX_RNN_LAYERS
            )));
        }
        if d_model == 0 || output_dim == 0 {
            return Err(err("`d_model` and `output.dim` must be at least 1".into()));
        }
        match input {
            InputConfig::Tokens { vocab: 0 } => {
                return Err(err("`input.vocab` must be at least 1".into()))
            }
            InputConfig::Frames { dim: 0 } => {
                return Err(err("`input.dim` must be at least 1".into()))
            }
            _ => {}
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

    /// The width after each block, starting with `d_model` before the first.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.d_model];
        for b in &self.blocks {
            let last = *w.last().unwrap_or(&self.d_model);
            w.push(match b {
                BlockConfig::Recurrent { hidden, .. } => *hidden,
                BlockConfig::Attention { .. } => last,
            });
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            BlockConfig::Recurrent {
                cell: CellKind::Lstm,
                num_layers: 1,
                hidden: 8,
                norm: true,
                residual: true
            }
        );
        assert_eq!(
            c.blocks[1],
            BlockConfig::Attention {
                heads: 2,
                window: 4,
                ffn_dim: 0,
                activation: runnel::Activation::Gelu
            }
        );
        assert_eq!(c.widths(), vec![8, 8, 8]);
    }

    #[test]
    fn hidden_defaults_to_the_running_width() {
        let c = parse(r#"[{"kind":"gru","hidden":5,"residual":false},{"kind":"lstm"}]"#).unwrap();
        assert_eq!(c.widths(), vec![8, 5, 5]);
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
