//! safetensors → `.rnl`: contract checks, quantization and the blob writer.

use std::collections::BTreeMap;

use half::f16;
use runnel::format::{
    align_up, crc32, BlockEntry, DType, Header, TensorEntry, DATA_ALIGN, FLAG_FINAL_NORM,
    FLAG_INTEGER, FLAG_NO_HEAD_BIAS, FLAG_NO_INPUT_BIAS, FLAG_NO_NORM_F_BIAS, FLAG_RMS_NORM,
    INT_CODE, MAGIC, VERSION,
};
use runnel::layout::Layout;
use runnel::schema::{self, IntPart, TensorName, TensorRole, TensorSource, TensorSpec};
use runnel::BlockSpec;
use safetensors::{Dtype as StDtype, SafeTensors};

use crate::config::{self, Config};
use crate::integer::{int_values, Calibration, IntCx};
use crate::{AlignedBytes, Error};

/// The largest state arena, in bytes, that [`convert`] accepts: 256 MiB.
///
/// The arena is what a caller must allocate before the first step (on a microcontroller, static
/// RAM; in `runnel run`, one heap allocation), and it is sized almost entirely by the attention
/// KV caches, `window × width` per block. A mistyped `window` (say 100000000) would otherwise
/// yield a blob that asks for gigabytes and that no device can run. 256 MiB is hundreds of
/// times the RAM of the largest microcontrollers, yet above any small model a host would
/// reasonably stream: a window of 8192 steps at width 1024 with an f32 cache is 64 MiB per
/// attention block. It also keeps the figure well inside the blob's 32-bit byte count.
pub const MAX_STATE_BYTES: usize = 256 << 20;

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

/// What quantization did to one tensor. Every weight is finite ([`convert`] refuses a NaN or an
/// infinity, and a value an f16 cannot hold), so `snr_db` and `max_abs_err` are never NaN.
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

/// The tensor plan for `cfg` (the integer mode's if `integer`), in blob order, with each block's
/// first tensor index: the runtime's own plan ([`runnel::schema::walk`]), collected.
fn expected_tensors(cfg: &Config, integer: bool) -> (Vec<TensorSpec>, Vec<u32>) {
    struct Collect(Vec<TensorSpec>, bool);
    impl<'a> TensorSource<'a> for Collect {
        fn integer(&self) -> bool {
            self.1
        }
        fn ints(&mut self, name: TensorName, part: IntPart, len: usize) -> &'a [i32] {
            self.0.push(TensorSpec {
                name,
                role: TensorRole::Int(part),
                rows: 1,
                cols: len,
            });
            &[]
        }
        fn mat(&mut self, name: TensorName, rows: usize, cols: usize) -> runnel::kernels::Mat<'a> {
            self.0.push(TensorSpec {
                name,
                role: TensorRole::Matrix,
                rows,
                cols,
            });
            schema::empty_mat(rows, cols)
        }
        fn vector(&mut self, name: TensorName, len: usize) -> &'a [f32] {
            self.0.push(TensorSpec {
                name,
                role: TensorRole::Vector,
                rows: 1,
                cols: len,
            });
            &[]
        }
        fn bias(&mut self, name: TensorName, len: usize, present: bool) -> &'a [f32] {
            self.vector(name, len);
            if !present {
                if let Some(t) = self.0.last_mut() {
                    t.role = TensorRole::AbsentBias;
                }
            }
            &[]
        }
        fn table(&mut self, name: TensorName, len: usize) -> &'a [f32] {
            self.vector(name, len);
            if let Some(t) = self.0.last_mut() {
                t.role = TensorRole::Table;
            }
            &[]
        }
    }
    let mut c = Collect(Vec::new(), integer);
    schema::walk(&cfg.dims(), cfg.blocks.iter().copied(), &mut c);
    let firsts = (0..cfg.blocks.len())
        .map(|i| {
            c.0.iter()
                .position(|t| t.name.block == Some(i))
                .unwrap_or(c.0.len()) as u32
        })
        .collect();
    (c.0, firsts)
}

/// The values of a computed table (the RoPE cosines and sines of an attention block).
fn table_values(cfg: &Config, e: &TensorSpec) -> Vec<f32> {
    match e.name.block.and_then(|b| cfg.blocks.get(b)) {
        Some(BlockSpec::Attention(a)) => (0..e.cols).map(|i| a.rope_value(i)).collect(),
        _ => vec![0.0; e.cols],
    }
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

/// Where flat index `i` of tensor `e` is: `[row, col]` for a matrix, `[i]` for a vector.
fn position(e: &TensorSpec, i: usize) -> String {
    match e.role {
        TensorRole::Matrix => format!("[{}, {}]", i / e.cols, i % e.cols),
        TensorRole::Vector | TensorRole::AbsentBias | TensorRole::Table | TensorRole::Int(_) => {
            format!("[{i}]")
        }
    }
}

/// Refuses a NaN or an infinity in `vals` (tensor `name`, spec `e`), naming the first one's
/// position. Quantizing one would zero its int8 row, and copying it would poison every step.
fn check_finite(name: &str, e: &TensorSpec, vals: &[f32]) -> Result<(), Error> {
    match vals.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::new(format!(
            "tensor `{name}` has a non-finite value ({}) at {}",
            vals[i],
            position(e, i)
        ))),
    }
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

/// Signal-to-noise ratio (dB) and largest absolute error of `back` against `orig`. Both must be
/// finite (the callers guarantee it); the sums are then finite in f64, so the ratio is a number,
/// or +inf when exact, never NaN.
fn stats(orig: &[f32], back: impl Iterator<Item = f32>) -> (f64, f32) {
    let mut sig = 0f64;
    let mut noise = 0f64;
    let mut max = 0f64;
    for (&a, b) in orig.iter().zip(back) {
        debug_assert!(
            a.is_finite() && b.is_finite(),
            "stats of a non-finite value"
        );
        sig += a as f64 * a as f64;
        let e = a as f64 - b as f64;
        noise += e * e;
        max = max.max(e.abs());
    }
    let max = max as f32;
    let snr = if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / noise).log10()
    };
    (snr, max)
}

/// The config key to blame for block `b` (`blocks[i]`) making the state arena too large: the
/// window of an attention block (its KV cache), the width of a recurrent one.
fn state_key(b: &BlockSpec, path: &str) -> String {
    match b {
        BlockSpec::Attention(a) => format!("`{path}.window` = {}", a.window),
        BlockSpec::Recurrent(r) => format!(
            "`{path}.hidden` = {} (with `num_layers` = {})",
            r.hidden, r.num_layers
        ),
    }
}

/// The state arena layout of `cfg` stored as `opts` says, refused (naming the key of the first
/// block at which it overflows or passes [`MAX_STATE_BYTES`]) when too large.
fn state_layout(cfg: &Config, opts: &ConvertOptions, integer: bool) -> Result<Layout, Error> {
    // The layout of the first `n` blocks; `None` when its size overflows.
    let layout = |n: usize| {
        let blocks = cfg.blocks[..n].iter().copied();
        Layout::compute(&cfg.dims(), blocks, opts.weights, opts.kv, integer).ok()
    };
    let fits = |l: &Layout| l.bytes() <= MAX_STATE_BYTES;
    let all = layout(cfg.blocks.len());
    if let Some(l) = all.filter(fits) {
        return Ok(l);
    }
    // Too large: grow the model a block at a time to find the one that makes it so.
    let culprit = (0..cfg.blocks.len())
        .find(|&i| !layout(i + 1).is_some_and(|l| fits(&l)))
        .map_or_else(
            || "`d_model`".to_string(),
            |i| state_key(&cfg.blocks[i], &format!("blocks[{i}]")),
        );
    let size = all.map_or("over 4 GiB".to_string(), |l| {
        format!("{} bytes ({} MiB)", l.bytes(), l.bytes().div_ceil(1 << 20))
    });
    Err(config::err(format!(
        "{culprit} makes the state arena {size} with {} weights and a {} KV cache, over this converter's limit of {MAX_STATE_BYTES} bytes (256 MiB)",
        opts.weights.name(),
        opts.kv.name()
    )))
}

/// Converts a contract-conforming safetensors model into a `.rnl` blob.
pub fn convert(st_bytes: &[u8], opts: &ConvertOptions) -> Result<Converted, Error> {
    convert_with(st_bytes, opts, None)
}

/// Converts a contract-conforming safetensors model into an integer-only `.rnl` blob
/// (docs/INTEGER.md) with the grids of `cal` ([`Calibration::run`] on the same model): int8
/// weights and KV cache, and the integer parameters.
pub fn convert_integer(st_bytes: &[u8], cal: &Calibration) -> Result<Converted, Error> {
    let opts = ConvertOptions {
        weights: DType::I8,
        kv: DType::I8,
    };
    convert_with(st_bytes, &opts, Some(cal))
}

fn convert_with(
    st_bytes: &[u8],
    opts: &ConvertOptions,
    cal: Option<&Calibration>,
) -> Result<Converted, Error> {
    let integer = cal.is_some();
    let mut cfg = read_config(st_bytes)?;
    let layout = state_layout(&cfg, opts, integer)?;
    let st = SafeTensors::deserialize(st_bytes)
        .map_err(|e| Error::new(format!("not a valid safetensors file: {e}")))?;
    let file_names: std::collections::BTreeSet<String> =
        st.names().into_iter().map(str::to_string).collect();
    cfg.detect(&file_names)?;
    // The file is checked against the float plan (every tensor of the model); the integer plan
    // stores the matrices and the integer parameters computed from the rest.
    let (expected, firsts) = expected_tensors(&cfg, false);
    // Tensors the blob stores but the model file does not have: absent biases (zeros) and
    // computed tables.
    let from_file = |e: &TensorSpec| matches!(e.role, TensorRole::Matrix | TensorRole::Vector);

    // Names: every expected tensor present with its shape, nothing else.
    let mut present: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for name in st.names() {
        let v = st
            .tensor(name)
            .map_err(|e| Error::new(format!("tensor `{name}`: {e}")))?;
        present.insert(name.to_string(), v.shape().to_vec());
    }
    let names: Vec<String> = expected.iter().map(|e| e.name.to_string()).collect();
    for (e, name) in expected.iter().zip(&names) {
        let want: Vec<usize> = match e.role {
            TensorRole::Matrix => vec![e.rows, e.cols],
            TensorRole::Vector => vec![e.cols],
            TensorRole::AbsentBias | TensorRole::Table | TensorRole::Int(_) => continue,
        };
        match present.get(name) {
            None => {
                return Err(Error::new(format!(
                    "missing tensor `{name}` (shape {want:?}) required by the config"
                )))
            }
            Some(s) if *s != want => {
                return Err(Error::new(format!(
                    "tensor `{name}` has shape {s:?}, but the config implies {want:?}"
                )))
            }
            Some(_) => {}
        }
    }
    let file_tensor = |k: &String| {
        expected
            .iter()
            .zip(&names)
            .any(|(e, n)| n == k && from_file(e))
    };
    if let Some(extra) = present.keys().find(|k| !file_tensor(k)) {
        return Err(Error::new(format!(
            "unexpected tensor `{extra}`: the config does not use it"
        )));
    }

    let (expected, firsts) = if integer {
        expected_tensors(&cfg, true)
    } else {
        (expected, firsts)
    };
    let names: Vec<String> = expected.iter().map(|e| e.name.to_string()).collect();
    let file = |name: &str| -> Option<Vec<f32>> {
        let view = st.tensor(name).ok()?;
        read_f32(name, &view).ok()
    };
    let cx = cal.map(|cal| IntCx {
        cal,
        cfg: &cfg,
        file: &file,
    });

    // Lay out the blob.
    let n_blocks = cfg.blocks.len();
    let n_tensors = expected.len();
    let blocks_off = std::mem::size_of::<Header>();
    let tensors_off = blocks_off + std::mem::size_of::<BlockEntry>() * n_blocks;
    let data_off = align_up(
        tensors_off + std::mem::size_of::<TensorEntry>() * n_tensors,
        DATA_ALIGN,
    );
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
    for (e, name) in expected.iter().zip(&names) {
        if let (TensorRole::Int(part), Some(cx)) = (e.role, &cx) {
            let words = int_values(cx, &e.name, part, e.cols)?;
            entries.push(TensorEntry {
                dtype: INT_CODE,
                reserved: [0; 3],
                rows: 1,
                cols: e.cols as u32,
                offset: place(&mut data, bytemuck::cast_slice(&words))?,
                len: (words.len() * 4) as u32,
                scale_offset: 0,
                reserved1: [0; 2],
            });
            continue;
        }
        let vals = match e.role {
            TensorRole::Matrix | TensorRole::Vector => {
                let view = st
                    .tensor(name)
                    .map_err(|err| Error::new(format!("tensor `{name}`: {err}")))?;
                let vals = read_f32(name, &view)?;
                check_finite(name, e, &vals)?;
                params += vals.len();
                vals
            }
            TensorRole::AbsentBias | TensorRole::Int(_) => vec![0.0; e.cols],
            TensorRole::Table => table_values(&cfg, e),
        };
        let dtype = match e.role {
            TensorRole::Matrix => opts.weights,
            TensorRole::Vector
            | TensorRole::AbsentBias
            | TensorRole::Table
            | TensorRole::Int(_) => DType::F32,
        };
        let mut entry = TensorEntry {
            dtype: dtype.code(),
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
                if let Some(i) = h.iter().position(|v| v.is_infinite()) {
                    return Err(Error::new(format!(
                        "tensor `{name}` has the value {} at {}, beyond the f16 range (±{}); store the weights as f32 or int8",
                        vals[i],
                        position(e, i),
                        f16::MAX
                    )));
                }
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
                // The integer mode keeps no f32 row scales: its requantizations replace them.
                if !integer {
                    entry.scale_offset = place(&mut data, bytemuck::cast_slice(&scales))?;
                }
                let back = q
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v as f32 * scales[i / e.cols]);
                let (s, m) = stats(&vals, back);
                (s, m, q.len() + if integer { 0 } else { scales.len() * 4 })
            }
        };
        entries.push(entry);
        reports.push(TensorReport {
            name: name.clone(),
            shape: [e.rows, e.cols],
            dtype,
            bytes,
            snr_db: snr,
            max_abs_err: max_err,
        });
    }
    data.resize(align_up(data.len(), 4), 0);

    let block_entries: Vec<BlockEntry> = cfg
        .blocks
        .iter()
        .zip(&firsts)
        .map(|(b, &first)| b.encode(first))
        .collect();

    let total = data_off + data.len() + 4;
    let total_u32 = u32::try_from(total)
        .map_err(|_| Error::new("model too large for a .rnl blob (over 4 GiB)"))?;
    let mut header = Header {
        magic: MAGIC,
        version: VERSION,
        header_len: std::mem::size_of::<Header>() as u16,
        total_len: total_u32,
        flags: (if cfg.final_norm { FLAG_FINAL_NORM } else { 0 })
            | (if cfg.norm_kind == runnel::NormKind::Rms {
                FLAG_RMS_NORM
            } else {
                0
            })
            | (if cfg.input_bias {
                0
            } else {
                FLAG_NO_INPUT_BIAS
            })
            | (if cfg.head_bias { 0 } else { FLAG_NO_HEAD_BIAS })
            | (if cfg.norm_f_bias {
                0
            } else {
                FLAG_NO_NORM_F_BIAS
            })
            | (if integer { FLAG_INTEGER } else { 0 }),
        input_kind: cfg.input.code().code(),
        weight_type: opts.weights.code(),
        kv_type: opts.kv.code(),
        reserved0: 0,
        input_dim: cfg.input.dim() as u32,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: TensorRole, rows: usize, cols: usize) -> TensorSpec {
        TensorSpec {
            name: TensorName::top("head", "weight"),
            role,
            rows,
            cols,
        }
    }

    #[test]
    fn non_finite_values_are_named_with_their_position() {
        let check = |role, rows, cols, vals: &[f32]| {
            check_finite("t", &spec(role, rows, cols), vals).map_err(|e| e.to_string())
        };
        let mut m = vec![0.5f32; 4 * 5];
        assert_eq!(check(TensorRole::Matrix, 4, 5, &m), Ok(()));
        m[2 * 5 + 3] = f32::NAN;
        m[19] = f32::INFINITY;
        let want = "tensor `t` has a non-finite value (NaN) at [2, 3]";
        assert_eq!(check(TensorRole::Matrix, 4, 5, &m), Err(want.into()));
        let mut v = vec![1.0f32; 6];
        v[4] = f32::NEG_INFINITY;
        let want = "tensor `t` has a non-finite value (-inf) at [4]";
        assert_eq!(check(TensorRole::Vector, 1, 6, &v), Err(want.into()));
    }

    #[test]
    fn quantization_stats_are_never_nan() {
        let zeros = [0.0f32; 4];
        assert_eq!(stats(&zeros, zeros.iter().copied()), (f64::INFINITY, 0.0));
        let big = [f32::MAX, -f32::MAX, 1.0, 0.0];
        let (snr, max) = stats(&big, [f32::MAX, -f32::MAX, 0.0, 0.0].into_iter());
        assert!(snr.is_finite() && max == 1.0, "{snr} {max}");
        // A difference that overflows f32 (MAX - (-MAX)) is still finite in f64.
        let (snr, max) = stats(&big[..1], [-f32::MAX].into_iter());
        assert!(!snr.is_nan() && max == f32::INFINITY, "{snr} {max}");
    }

    fn attention(windows: &[usize]) -> Config {
        let blocks: Vec<String> = windows
            .iter()
            .map(|w| format!(r#",{{"kind":"attention","heads":2,"window":{w}}}"#))
            .collect();
        Config::from_json(&format!(
            r#"{{"format":"runnel-model/1","input":{{"kind":"tokens","vocab":10}},"d_model":8,"blocks":[{{"kind":"lstm"}}{}],"output":{{"dim":3}}}}"#,
            blocks.concat()
        ))
        .unwrap()
    }

    fn opts(weights: DType, kv: DType) -> ConvertOptions {
        ConvertOptions { weights, kv }
    }

    #[test]
    fn the_state_limit_names_the_window_for_every_kv_type() {
        for kv in [DType::F32, DType::F16, DType::I8] {
            for w in [DType::F32, DType::I8] {
                // 100M steps: 3.6 GB with int8, overflowing the blob's u32 with f32.
                let msg = state_layout(&attention(&[100_000_000]), &opts(w, kv), false)
                    .unwrap_err()
                    .to_string();
                assert!(
                    msg.starts_with(
                        "runnel.config: `blocks[1].window` = 100000000 makes the state arena"
                    ),
                    "{msg}"
                );
                assert!(msg.contains(&format!("{} KV cache", kv.name())), "{msg}");
                assert!(msg.contains(&MAX_STATE_BYTES.to_string()), "{msg}");
                assert!(state_layout(&attention(&[1000]), &opts(w, kv), false).is_ok());
            }
        }
    }

    #[test]
    fn the_state_limit_depends_on_the_kv_type_and_sums_the_blocks() {
        // Width 8: 64 bytes a step with an f32 cache, 32 with f16, 32 with int8 (16 of scales).
        let six_million = attention(&[6_000_000]);
        let msg = state_layout(&six_million, &opts(DType::I8, DType::F32), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`blocks[1].window` = 6000000"), "{msg}");
        assert!(msg.contains("MiB"), "{msg}");
        for kv in [DType::F16, DType::I8] {
            let l = state_layout(&six_million, &opts(DType::I8, kv), false).unwrap();
            assert!(l.bytes() <= MAX_STATE_BYTES);
        }
        // Each block alone fits; the second brings the total over.
        let two = attention(&[3_000_000, 3_000_000]);
        let msg = state_layout(&two, &opts(DType::F32, DType::F32), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`blocks[2].window` = 3000000"), "{msg}");
    }
}
