//! safetensors → `.rnl`: contract checks, quantization and the blob writer.

use std::collections::BTreeMap;

use half::f16;
use runnel::format::{
    align_up, crc32, BlockEntry, DType, Header, TensorEntry, BLOCK_ATTENTION, BLOCK_FLAG_NORM,
    BLOCK_FLAG_RESIDUAL, BLOCK_GRU, BLOCK_LSTM, DATA_ALIGN, FLAG_FINAL_NORM, INPUT_FRAMES,
    INPUT_TOKENS, MAGIC, VERSION,
};
use safetensors::{Dtype as StDtype, SafeTensors};

use crate::config::{BlockConfig, CellKind, Config, InputConfig};
use crate::{AlignedBytes, Error};

/// Storage choices for `runnel convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertOptions {
    /// Weight matrices (embedding included): f32, f16 or int8 (per-row scales).
    pub weights: DType,
    /// Attention KV cache: f32, f16 or int8 (per-row, per-head scales).
    pub kv: DType,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            weights: DType::I8,
            kv: DType::I8,
        }
    }
}

/// What quantization did to one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorReport {
    /// Contract name, e.g. `blocks.0.lstm.weight_ih_l0`.
    pub name: String,
    /// `[rows, cols]` (`[1, n]` for vectors).
    pub shape: [usize; 2],
    /// Stored type.
    pub dtype: DType,
    /// Bytes stored (data and scales).
    pub bytes: usize,
    /// Signal-to-noise ratio of the stored weights in dB (`inf` when exact).
    pub snr_db: f64,
    /// Largest absolute error of a stored weight.
    pub max_abs_err: f32,
}

/// A converted model.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The `.rnl` blob.
    pub blob: Vec<u8>,
    /// The validated configuration.
    pub config: Config,
    /// Per-tensor report, in blob order.
    pub tensors: Vec<TensorReport>,
    /// Parameters.
    pub params: usize,
    /// State arena bytes the runtime needs.
    pub state_bytes: usize,
}

enum Kind {
    Matrix,
    Vector,
}

struct Expected {
    name: String,
    rows: usize,
    cols: usize,
    kind: Kind,
}

fn mat(name: String, rows: usize, cols: usize) -> Expected {
    Expected {
        name,
        rows,
        cols,
        kind: Kind::Matrix,
    }
}

fn vector(name: String, n: usize) -> Expected {
    Expected {
        name,
        rows: 1,
        cols: n,
        kind: Kind::Vector,
    }
}

/// The contract's tensors for `cfg`, in the blob's canonical order (see `docs/FORMAT.md`).
fn expected_tensors(cfg: &Config) -> (Vec<Expected>, Vec<u32>) {
    let mut t = Vec::new();
    let mut firsts = Vec::new();
    match cfg.input {
        InputConfig::Tokens { vocab } => t.push(mat("embed.weight".into(), vocab, cfg.d_model)),
        InputConfig::Frames { dim } => {
            t.push(mat("input.weight".into(), cfg.d_model, dim));
            t.push(vector("input.bias".into(), cfg.d_model));
        }
    }
    let mut w = cfg.d_model;
    for (i, b) in cfg.blocks.iter().enumerate() {
        firsts.push(t.len() as u32);
        match b {
            BlockConfig::Recurrent {
                cell,
                num_layers,
                hidden,
                norm,
                ..
            } => {
                let p = format!("blocks.{i}");
                if *norm {
                    t.push(vector(format!("{p}.norm.weight"), w));
                    t.push(vector(format!("{p}.norm.bias"), w));
                }
                let c = cell.name();
                let g = cell.gates() * hidden;
                for k in 0..*num_layers {
                    let in_k = if k == 0 { w } else { *hidden };
                    t.push(mat(format!("{p}.{c}.weight_ih_l{k}"), g, in_k));
                    t.push(mat(format!("{p}.{c}.weight_hh_l{k}"), g, *hidden));
                    t.push(vector(format!("{p}.{c}.bias_ih_l{k}"), g));
                    t.push(vector(format!("{p}.{c}.bias_hh_l{k}"), g));
                }
                w = *hidden;
            }
            BlockConfig::Attention { ffn_dim, .. } => {
                let p = format!("blocks.{i}");
                t.push(vector(format!("{p}.norm1.weight"), w));
                t.push(vector(format!("{p}.norm1.bias"), w));
                t.push(mat(format!("{p}.attn.in_proj_weight"), 3 * w, w));
                t.push(vector(format!("{p}.attn.in_proj_bias"), 3 * w));
                t.push(mat(format!("{p}.attn.out_proj.weight"), w, w));
                t.push(vector(format!("{p}.attn.out_proj.bias"), w));
                if *ffn_dim > 0 {
                    t.push(vector(format!("{p}.norm2.weight"), w));
                    t.push(vector(format!("{p}.norm2.bias"), w));
                    t.push(mat(format!("{p}.ffn.0.weight"), *ffn_dim, w));
                    t.push(vector(format!("{p}.ffn.0.bias"), *ffn_dim));
                    t.push(mat(format!("{p}.ffn.2.weight"), w, *ffn_dim));
                    t.push(vector(format!("{p}.ffn.2.bias"), w));
                }
            }
        }
    }
    if cfg.final_norm {
        t.push(vector("norm_f.weight".into(), w));
        t.push(vector("norm_f.bias".into(), w));
    }
    t.push(mat("head.weight".into(), cfg.output_dim, w));
    t.push(vector("head.bias".into(), cfg.output_dim));
    (t, firsts)
}

/// Reads a tensor's values as f32 (F32, F16 and BF16 are accepted).
fn read_f32(name: &str, view: &safetensors::tensor::TensorView<'_>) -> Result<Vec<f32>, Error> {
    let d = view.data();
    let v: Vec<f32> = match view.dtype() {
        StDtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        StDtype::F16 => d
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        StDtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::new(format!(
                "tensor `{name}` has dtype {other:?}; the contract allows F32, F16 or BF16"
            )))
        }
    };
    Ok(v)
}

/// Reads the `runnel.config` metadata of a safetensors file.
pub fn read_config(st_bytes: &[u8]) -> Result<Config, Error> {
    let (_, meta) = SafeTensors::read_metadata(st_bytes)
        .map_err(|e| Error::new(format!("not a valid safetensors file: {e}")))?;
    let text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("runnel.config"))
        .ok_or_else(|| {
            Error::new(
                "the safetensors metadata has no `runnel.config` key (see the model contract §1)",
            )
        })?;
    Config::from_json(text)
}

fn stats(orig: &[f32], back: impl Iterator<Item = f32>) -> (f64, f32) {
    let mut sig = 0f64;
    let mut noise = 0f64;
    let mut max = 0f32;
    for (&a, b) in orig.iter().zip(back) {
        sig += a as f64 * a as f64;
        let e = a - b;
        noise += e as f64 * e as f64;
        max = max.max(e.abs());
    }
    let snr = if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / noise).log10()
    };
    (snr, max)
}

/// Converts a contract-conforming safetensors model into a `.rnl` blob.
pub fn convert(st_bytes: &[u8], opts: &ConvertOptions) -> Result<Converted, Error> {
    let cfg = read_config(st_bytes)?;
    let st = SafeTensors::deserialize(st_bytes)
        .map_err(|e| Error::new(format!("not a valid safetensors file: {e}")))?;
    let (expected, firsts) = expected_tensors(&cfg);

    // Names: every expected tensor present with its shape, nothing else.
    let mut present: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for name in st.names() {
        let v = st
            .tensor(name)
            .map_err(|e| Error::new(format!("tensor `{name}`: {e}")))?;
        present.insert(name.to_string(), v.shape().to_vec());
    }
    for e in &expected {
        let want: Vec<usize> = match e.kind {
            Kind::Matrix => vec![e.rows, e.cols],
            Kind::Vector => vec![e.cols],
        };
        match present.get(&e.name) {
            None => {
                return Err(Error::new(format!(
                    "missing tensor `{}` (shape {want:?}) required by the config",
                    e.name
                )))
            }
            Some(s) if *s != want => {
                return Err(Error::new(format!(
                    "tensor `{}` has shape {s:?}, but the config implies {want:?}",
                    e.name
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = present
        .keys()
        .find(|k| !expected.iter().any(|e| &e.name == *k))
    {
        return Err(Error::new(format!(
            "unexpected tensor `{extra}`: the config does not use it"
        )));
    }

    // Lay out the blob.
    let n_blocks = cfg.blocks.len();
    let n_tensors = expected.len();
    let blocks_off = std::mem::size_of::<Header>();
    let tensors_off = blocks_off + 32 * n_blocks;
    let data_off = align_up(tensors_off + 32 * n_tensors, DATA_ALIGN);
    let mut data: Vec<u8> = Vec::new();
    let mut entries = Vec::with_capacity(n_tensors);
    let mut reports = Vec::with_capacity(n_tensors);
    let mut params = 0usize;
    let place = |data: &mut Vec<u8>, bytes: &[u8]| -> Result<u32, Error> {
        data.resize(align_up(data.len(), DATA_ALIGN), 0);
        let off = data_off + data.len();
        data.extend_from_slice(bytes);
        u32::try_from(off).map_err(|_| Error::new("model too large for a .rnl blob (over 4 GiB)"))
    };
    for e in &expected {
        let view = st
            .tensor(&e.name)
            .map_err(|err| Error::new(format!("tensor `{}`: {err}", e.name)))?;
        let vals = read_f32(&e.name, &view)?;
        params += vals.len();
        let dtype = match e.kind {
            Kind::Matrix => opts.weights,
            Kind::Vector => DType::F32,
        };
        let mut entry = TensorEntry {
            dtype: dtype as u8,
            reserved: [0; 3],
            rows: e.rows as u32,
            cols: e.cols as u32,
            offset: 0,
            len: (vals.len() * dtype.size()) as u32,
            scale_offset: 0,
            reserved1: [0; 2],
        };
        let (snr, max_err, bytes) = match dtype {
            DType::F32 => {
                entry.offset = place(&mut data, bytemuck::cast_slice(&vals))?;
                (f64::INFINITY, 0.0, vals.len() * 4)
            }
            DType::F16 => {
                let h: Vec<f16> = vals.iter().map(|&v| f16::from_f32(v)).collect();
                entry.offset = place(&mut data, bytemuck::cast_slice(&h))?;
                let (s, m) = stats(&vals, h.iter().map(|v| v.to_f32()));
                (s, m, h.len() * 2)
            }
            DType::I8 => {
                let mut q = vec![0i8; vals.len()];
                let mut scales = vec![0f32; e.rows];
                for ((row, qrow), s) in vals
                    .chunks_exact(e.cols)
                    .zip(q.chunks_exact_mut(e.cols))
                    .zip(&mut scales)
                {
                    *s = runnel::kernels::quantize_i8(row, qrow);
                }
                entry.offset = place(&mut data, bytemuck::cast_slice(&q))?;
                entry.scale_offset = place(&mut data, bytemuck::cast_slice(&scales))?;
                let back = q
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v as f32 * scales[i / e.cols]);
                let (s, m) = stats(&vals, back);
                (s, m, q.len() + scales.len() * 4)
            }
        };
        entries.push(entry);
        reports.push(TensorReport {
            name: e.name.clone(),
            shape: [e.rows, e.cols],
            dtype,
            bytes,
            snr_db: snr,
            max_abs_err: max_err,
        });
    }
    data.resize(align_up(data.len(), 4), 0);

    let widths = cfg.widths();
    let block_entries: Vec<BlockEntry> = cfg
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let w = widths[i] as u32;
            match b {
                BlockConfig::Recurrent {
                    cell,
                    num_layers,
                    hidden,
                    norm,
                    residual,
                } => BlockEntry {
                    kind: if *cell == CellKind::Lstm {
                        BLOCK_LSTM
                    } else {
                        BLOCK_GRU
                    },
                    flags: (if *norm { BLOCK_FLAG_NORM } else { 0 })
                        | (if *residual { BLOCK_FLAG_RESIDUAL } else { 0 }),
                    activation: 0,
                    reserved: 0,
                    num_layers: *num_layers as u32,
                    in_width: w,
                    hidden: *hidden as u32,
                    heads: 0,
                    window: 0,
                    ffn_dim: 0,
                    first_tensor: firsts[i],
                },
                BlockConfig::Attention {
                    heads,
                    window,
                    ffn_dim,
                    activation,
                } => BlockEntry {
                    kind: BLOCK_ATTENTION,
                    flags: 0,
                    activation: *activation as u8,
                    reserved: 0,
                    num_layers: 1,
                    in_width: w,
                    hidden: w,
                    heads: *heads as u32,
                    window: *window as u32,
                    ffn_dim: *ffn_dim as u32,
                    first_tensor: firsts[i],
                },
            }
        })
        .collect();

    let total = data_off + data.len() + 4;
    let total_u32 = u32::try_from(total)
        .map_err(|_| Error::new("model too large for a .rnl blob (over 4 GiB)"))?;
    let (input_kind, input_dim) = match cfg.input {
        InputConfig::Tokens { vocab } => (INPUT_TOKENS, vocab),
        InputConfig::Frames { dim } => (INPUT_FRAMES, dim),
    };
    let mut header = Header {
        magic: MAGIC,
        version: VERSION,
        header_len: std::mem::size_of::<Header>() as u16,
        total_len: total_u32,
        flags: if cfg.final_norm { FLAG_FINAL_NORM } else { 0 },
        input_kind,
        weight_type: opts.weights as u8,
        kv_type: opts.kv as u8,
        reserved0: 0,
        input_dim: input_dim as u32,
        d_model: cfg.d_model as u32,
        output_dim: cfg.output_dim as u32,
        norm_eps: cfg.norm_eps,
        n_blocks: n_blocks as u32,
        n_tensors: n_tensors as u32,
        blocks_off: blocks_off as u32,
        tensors_off: tensors_off as u32,
        data_off: data_off as u32,
        state_bytes: 0,
        reserved1: 0,
    };
    let layout = runnel::layout::Layout::compute(&header, &block_entries)?;
    header.state_bytes =
        u32::try_from(layout.bytes()).map_err(|_| Error::new("state too large"))?;

    let mut blob = Vec::with_capacity(total);
    blob.extend_from_slice(bytemuck::bytes_of(&header));
    for b in &block_entries {
        blob.extend_from_slice(bytemuck::bytes_of(b));
    }
    for t in &entries {
        blob.extend_from_slice(bytemuck::bytes_of(t));
    }
    blob.resize(data_off, 0);
    blob.extend_from_slice(&data);
    let crc = crc32(&blob);
    blob.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(blob.len(), total);

    // The runtime must accept what we wrote; this also cross-checks the state figure.
    let aligned = AlignedBytes::new(&blob);
    let model = runnel::Model::from_bytes(aligned.as_bytes()).map_err(|e| {
        Error::new(format!(
            "internal error: the runtime rejects the written blob: {e}"
        ))
    })?;
    let state_bytes = model.state_bytes();
    Ok(Converted {
        blob,
        config: cfg,
        tensors: reports,
        params,
        state_bytes,
    })
}
