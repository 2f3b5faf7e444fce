//! The `runnel.config` JSON of the model contract (`runnel-model/1`), parsed strictly: unknown
//! keys, unknown kinds and inconsistent shapes are errors that name the offending key. The
//! top-level keys are here; each block kind's keys are in `converter/src/blocks/`. The result is
//! the runtime's own schema types ([`runnel::BlockSpec`], [`runnel::InputKind`]).
//!
//! The JSON itself is read strictly too: a key repeated in any object is an error naming its
//! path (plain `serde_json` would keep the last value), and a value that is not valid JSON is
//! reported with the path of the key it belongs to.

use std::cell::RefCell;
use std::fmt;

use std::collections::BTreeSet;

use runnel::schema::{InputCode, ModelDims, NormKind};
use runnel::{BlockSpec, InputKind};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
    /// The module of every norm (`norm_kind`).
    pub norm_kind: NormKind,
    /// The model has `input.bias` (frames input; detected from the tensor names).
    pub input_bias: bool,
    /// The model has `head.bias` (detected).
    pub head_bias: bool,
    /// The final LayerNorm has `norm_f.bias` (detected).
    pub norm_f_bias: bool,
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

/// A number stored as an f32, or `default` when absent: finite, non-negative and within f32's
/// range once rounded to the nearest f32 (a value beyond ±3.4028235e38 is an error). A positive
/// value below f32's smallest subnormal (~1.4e-45) rounds to 0, which is accepted: the key's
/// value is what the runtime computes with, and 0 is a valid value for it.
pub(crate) fn non_negative_f32(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    default: f32,
) -> Result<f32, Error> {
    let p = key_path(path, key);
    let Some(v) = m.get(key) else {
        return Ok(default);
    };
    let e = v
        .as_f64()
        .ok_or_else(|| err(format!("`{p}` must be a number, got {v}")))?;
    if !(e.is_finite() && e >= 0.0) {
        return Err(err(format!(
            "`{p}` must be finite and non-negative, got {v}"
        )));
    }
    let f = e as f32;
    if !f.is_finite() {
        return Err(err(format!(
            "`{p}` = {e:e} does not fit an f32 (largest {:e})",
            f32::MAX
        )));
    }
    Ok(f)
}

/// Why the strict JSON reader failed, recorded by the innermost value that failed (outer levels
/// see it set and leave it).
enum JsonFailure {
    /// The value at this path is not valid JSON.
    At(String),
    /// This key path appears twice in its object.
    Duplicate(String),
}

/// A JSON value at `path`, read into a [`Value`] while refusing duplicate keys at every level.
struct Strict<'a> {
    path: String,
    failure: &'a RefCell<Option<JsonFailure>>,
}

impl Strict<'_> {
    fn child(&self, path: String) -> Self {
        Strict {
            path,
            failure: self.failure,
        }
    }

    /// Records that the value at `path` failed, unless a value inside it already did.
    fn fail_at(&self, path: &str) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(JsonFailure::At(path.to_string()));
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        // serde_json never yields a non-finite number.
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, items.len());
            match seq.next_element_seed(self.child(path.clone())) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.fail_at(&path);
                    return Err(e);
                }
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = key_path(&self.path, &k);
            if m.contains_key(&k) {
                *self.failure.borrow_mut() = Some(JsonFailure::Duplicate(path));
                return Err(de::Error::custom("duplicate key"));
            }
            match map.next_value_seed(self.child(path.clone())) {
                Ok(v) => m.insert(k, v),
                Err(e) => {
                    self.fail_at(&path);
                    return Err(e);
                }
            };
        }
        Ok(Value::Object(m))
    }
}

/// Parses JSON text, refusing a key repeated in any object; errors name the key's path.
pub(crate) fn parse_json(text: &str) -> Result<Value, Error> {
    let failure = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = Strict {
        path: String::new(),
        failure: &failure,
    };
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match failure.into_inner() {
        Some(JsonFailure::Duplicate(p)) => err(format!(
            "duplicate key `{p}` (at line {}, column {}); a key may appear once per object",
            e.line(),
            e.column()
        )),
        Some(JsonFailure::At(p)) => err(format!("`{p}` is not valid JSON: {e}")),
        None => err(format!("not valid JSON: {e}")),
    })
}

impl Config {
    /// Parses and validates the JSON text of `runnel.config`.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let v = parse_json(text)?;
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
                "norm_kind",
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
        let norm_eps = non_negative_f32(m, "norm_eps", "", 1e-5)?;
        let final_norm = boolean(m, "final_norm", "", true)?;
        let norm_name = string(m, "norm_kind", "")?.unwrap_or(NormKind::Layer.name());
        let norm_kind = NormKind::from_name(norm_name).ok_or_else(|| {
            err(format!(
                "unknown `norm_kind` \"{norm_name}\" (expected {})",
                NormKind::names()
            ))
        })?;
        let out_v = m
            .get("output")
            .ok_or_else(|| err("missing key `output`".into()))?;
        let om = object(out_v, "output")?;
        check_keys(om, "output", &["dim"])?;
        let output_dim = positive(om, "dim", "output", None)?;

        if d_model == 0 {
            return Err(err("`d_model` must be at least 1".into()));
        }
        if output_dim == 0 {
            return Err(err("`output.dim` must be at least 1".into()));
        }

        let blocks_v = m
            .get("blocks")
            .ok_or_else(|| err("missing key `blocks`".into()))?;
        let arr = blocks_v
            .as_array()
            .ok_or_else(|| err("`blocks` must be a JSON array".into()))?;
        if arr.len() > runnel::limits::MAX_BLOCKS {
            return Err(err(format!(
                "`blocks` has {} blocks, over the runtime's limit of {}",
                arr.len(),
                runnel::limits::MAX_BLOCKS
            )));
        }
        let mut blocks = Vec::new();
        let mut width = d_model;
        let mut layers = 0;
        for (i, b) in arr.iter().enumerate() {
            let path = format!("blocks[{i}]");
            let block = crate::blocks::parse(b, &path, width, norm_kind)?;
            layers += block.rnn_layers();
            if layers > runnel::limits::MAX_RNN_LAYERS {
                return Err(err(format!(
                    "`{path}.num_layers` brings the recurrent layers to {layers} in total, over the runtime's limit of {}",
                    runnel::limits::MAX_RNN_LAYERS
                )));
            }
            width = block.out_width();
            blocks.push(block);
        }
        Ok(Config {
            input,
            d_model,
            blocks,
            norm_eps,
            final_norm,
            output_dim,
            norm_kind,
            input_bias: true,
            head_bias: true,
            norm_f_bias: true,
        })
    }

    /// Applies what the tensor names of the model file say (§6.1 and §6.5 of the contract):
    /// which modules have no bias, and which attention blocks use `q_proj`/`k_proj`/`v_proj`.
    /// A bias whose partner is present, or a block mixing the two attention namings, is an
    /// error naming the tensor.
    pub fn detect(&mut self, names: &BTreeSet<String>) -> Result<(), Error> {
        let has = |n: &str| names.contains(n);
        self.input_bias = !matches!(self.input, InputKind::Frames { .. }) || has("input.bias");
        self.head_bias = has("head.bias");
        self.norm_f_bias =
            !(self.final_norm && self.norm_kind == NormKind::Layer) || has("norm_f.bias");
        for (i, b) in self.blocks.iter_mut().enumerate() {
            crate::blocks::detect(b, i, names)?;
        }
        Ok(())
    }

    /// The modules without bias, by contract name (`head`, `blocks.1.attn.out_proj`, …), for
    /// `runnel convert`'s report.
    pub fn bias_free_modules(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.input_bias {
            v.push("input".to_string());
        }
        for (i, b) in self.blocks.iter().enumerate() {
            v.extend(crate::blocks::bias_free(b, i));
        }
        if !self.norm_f_bias {
            v.push("norm_f".to_string());
        }
        if !self.head_bias {
            v.push("head".to_string());
        }
        v
    }

    /// The model-level dimensions the tensor plan depends on.
    pub fn dims(&self) -> ModelDims {
        ModelDims {
            input: self.input,
            d_model: self.d_model,
            output_dim: self.output_dim,
            final_norm: self.final_norm,
            norm_kind: self.norm_kind,
            input_bias: self.input_bias,
            head_bias: self.head_bias,
            norm_f_bias: self.norm_f_bias,
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
                proj_size: 0,
                norm: true,
                residual: true,
                norm_kind: NormKind::Layer,
                bias: true,
                norm_bias: true,
            })
        );
        assert_eq!(
            c.blocks[1],
            BlockSpec::Attention(AttentionSpec {
                width: 8,
                heads: 2,
                kv_heads: 2,
                window: 4,
                ffn_dim: 0,
                activation: Activation::Gelu,
                pos: runnel::PosKind::None,
                rope_theta: 0.0,
                split: false,
                norm_kind: NormKind::Layer,
                no_bias: 0,
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

    fn top(extra: &str) -> Result<Config, Error> {
        Config::from_json(&format!(
            r#"{{"format":"runnel-model/1","input":{{"kind":"tokens","vocab":10}},"d_model":8,"blocks":[{{"kind":"lstm"}}],"output":{{"dim":3}}{extra}}}"#
        ))
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_level() {
        let e = |r: Result<Config, Error>| r.unwrap_err().to_string();
        let msg = e(top(r#","d_model":16"#));
        assert!(
            msg.starts_with("runnel.config: duplicate key `d_model`"),
            "{msg}"
        );
        assert!(e(parse(r#"[{"kind":"lstm","hidden":8,"hidden":8}]"#))
            .contains("duplicate key `blocks[0].hidden`"));
        assert!(e(parse(
            r#"[{"kind":"lstm"},{"kind":"attention","heads":2,"window":2,"window":4}]"#
        ))
        .contains("duplicate key `blocks[1].window`"));
        assert!(e(Config::from_json(
            r#"{"format":"runnel-model/1","input":{"kind":"tokens","kind":"frames","vocab":10}}"#
        ))
        .contains("duplicate key `input.kind`"));
        // The same key in different objects is fine.
        assert!(parse(r#"[{"kind":"lstm"},{"kind":"gru"}]"#).is_ok());
    }

    #[test]
    fn json_errors_name_the_key_they_are_in() {
        let msg = top(r#","norm_eps":1e400"#).unwrap_err().to_string();
        assert!(msg.contains("`norm_eps` is not valid JSON"), "{msg}");
        let msg = parse(r#"[{"kind":"lstm","hidden":}]"#)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`blocks[0].hidden`"), "{msg}");
        let msg = Config::from_json("{} x").unwrap_err().to_string();
        assert!(msg.contains("not valid JSON"), "{msg}");
    }

    #[test]
    fn norm_eps_must_fit_an_f32() {
        let msg = top(r#","norm_eps":1e39"#).unwrap_err().to_string();
        assert_eq!(
            msg,
            "runnel.config: `norm_eps` = 1e39 does not fit an f32 (largest 3.4028235e38)"
        );
        assert!(top(r#","norm_eps":-1e-5"#)
            .unwrap_err()
            .to_string()
            .contains("`norm_eps`"));
        assert!(top(r#","norm_eps":"small""#)
            .unwrap_err()
            .to_string()
            .contains("`norm_eps`"));
        // Rounds to f32::MAX, so it fits; below the smallest subnormal rounds to 0, accepted.
        assert_eq!(
            top(r#","norm_eps":3.4028235e38"#).unwrap().norm_eps,
            f32::MAX
        );
        assert_eq!(top(r#","norm_eps":1e-50"#).unwrap().norm_eps, 0.0);
    }

    #[test]
    fn capacity_errors_name_the_key() {
        let lstm = r#"{"kind":"lstm","num_layers":40}"#;
        let msg = parse(&format!("[{lstm},{lstm}]")).unwrap_err().to_string();
        assert!(msg.contains("`blocks[1].num_layers`"), "{msg}");
        let many = vec![r#"{"kind":"gru"}"#; 17].join(",");
        let msg = parse(&format!("[{many}]")).unwrap_err().to_string();
        assert!(msg.contains("`blocks`"), "{msg}");
        let dims = |d: usize, o: usize| {
            Config::from_json(&format!(
                r#"{{"format":"runnel-model/1","input":{{"kind":"tokens","vocab":10}},"d_model":{d},"blocks":[],"output":{{"dim":{o}}}}}"#
            ))
            .unwrap_err()
            .to_string()
        };
        assert!(dims(0, 3).contains("`d_model` must be"));
        assert!(dims(8, 0).contains("`output.dim` must be"));
    }

    #[test]
    fn contract_6_keys() {
        let att = |extra: &str| {
            parse(&format!(
                r#"[{{"kind":"attention","heads":4,"window":4{extra}}}]"#
            ))
        };
        let a = match att(r#","kv_heads":2,"pos":"rope","rope_theta":500"#)
            .unwrap()
            .blocks[0]
        {
            BlockSpec::Attention(a) => a,
            _ => unreachable!(),
        };
        assert_eq!(
            (a.kv_heads, a.pos, a.rope_theta),
            (2, runnel::PosKind::Rope, 500.0)
        );
        let a = match att("").unwrap().blocks[0] {
            BlockSpec::Attention(a) => a,
            _ => unreachable!(),
        };
        assert_eq!(
            (a.kv_heads, a.pos, a.rope_theta),
            (4, runnel::PosKind::None, 0.0)
        );
        let e = |r: Result<Config, Error>| r.unwrap_err().to_string();
        assert!(e(att(r#","kv_heads":3"#)).contains("`blocks[0].kv_heads`"));
        assert!(e(att(r#","pos":"learned""#)).contains("`blocks[0].pos`"));
        assert!(e(att(r#","rope_theta":100"#)).contains("`blocks[0].rope_theta`"));
        assert!(e(att(r#","pos":"rope","rope_theta":0"#)).contains("rope_theta"));
        // head width 8 / 4 heads = 2 is even; width 8 / 8 heads = 1 is not
        assert!(e(parse(
            r#"[{"kind":"attention","heads":8,"window":4,"pos":"rope"}]"#
        ))
        .contains("even head width"));
        assert!(e(parse(r#"[{"kind":"gru","proj_size":4}]"#)).contains("`blocks[0].proj_size`"));
        assert!(e(parse(r#"[{"kind":"lstm","hidden":8,"proj_size":8}]"#)).contains("proj_size"));
        // residual: the output width is proj_size
        assert!(e(parse(r#"[{"kind":"lstm","hidden":12,"proj_size":4}]"#)).contains("proj_size"));
        let c = parse(r#"[{"kind":"lstm","hidden":12,"proj_size":8}]"#).unwrap();
        assert_eq!(c.final_width(), 8);
        assert_eq!(
            top(r#","norm_kind":"rms""#).unwrap().norm_kind,
            NormKind::Rms
        );
        assert!(top(r#","norm_kind":"batch""#)
            .unwrap_err()
            .to_string()
            .contains("norm_kind"));
        assert_eq!(top(r#","norm_eps":1"#).unwrap().norm_eps, 1.0);
    }
}
