//! A parsed, validated, zero-copy view of a `.rnl` blob. Config (the header and block table,
//! borrowed from the blob), weights (slices borrowed from the blob, read by the tensor plan) and
//! state (the caller's arena, see [`crate::Session`]) are separate.

use bytemuck::Pod;
use half::f16;

use crate::blocks::BlockSpec;
use crate::error::Error;
use crate::format::{
    crc32, BlockEntry, Header, TensorEntry, BLOB_ALIGN, DATA_ALIGN, FLAG_FINAL_NORM, FLAG_INTEGER,
    FLAG_NO_HEAD_BIAS, FLAG_NO_INPUT_BIAS, FLAG_NO_NORM_F_BIAS, FLAG_RMS_NORM, HEADER_FLAGS,
    INT_CODE, MAGIC, VERSION,
};
use crate::kernels::{Mat, MatData};
use crate::layout::Layout;
use crate::limits::{MAX_BLOCKS, MAX_RNN_LAYERS};
use crate::schema::{
    self, dim, empty_mat, DType, InputCode, InputKind, IntPart, ModelDims, NormKind, TensorName,
    TensorSource,
};

/// A validated model borrowing everything from its blob. Build it with [`Model::from_bytes`].
///
/// It holds the blob's header, block table and tensor table by reference (validated once) and
/// the arena layout; a step walks the tensor plan and reads each weight view from the tables
/// without re-checking it.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    header: &'a Header,
    blocks: &'a [BlockEntry],   // [n_blocks], validated
    tensors: &'a [TensorEntry], // [n_tensors], validated against the plan
    body: &'a [u8],             // the blob without its CRC
    pub(crate) layout: Layout,
    params: u32,
    crc: u32, // the blob's CRC-32: its fingerprint
    pub(crate) weights: DType,
    pub(crate) kv: DType,
    input: InputCode,
    pub(crate) integer: bool, // FLAG_INTEGER: the integer plan and step
}

const fn malformed(what: &'static str) -> Error {
    Error::Malformed { what }
}

/// A `[n]` table of `T` at `off` in `body`, or `Malformed { what }`.
fn table<'a, T: Pod>(
    body: &'a [u8],
    off: u32,
    n: u32,
    what: &'static str,
) -> Result<&'a [T], Error> {
    let off = off as usize;
    let len = (n as usize)
        .checked_mul(core::mem::size_of::<T>())
        .ok_or(malformed(what))?;
    let end = off.checked_add(len).ok_or(malformed(what))?;
    let bytes = body.get(off..end).ok_or(malformed(what))?;
    bytemuck::try_cast_slice(bytes).map_err(|_| malformed(what))
}

/// Checks each tensor entry against the plan as [`schema::walk`] hands it out: type, shape,
/// length, alignment and bounds. Records the first failure and returns empty views after it.
struct Validator<'a> {
    tensors: &'a [TensorEntry],
    body: &'a [u8],
    data_off: usize,
    weights: DType,
    integer: bool,
    cursor: usize,
    params: usize,
    err: Option<Error>,
}

impl<'a> Validator<'a> {
    fn bad(name: TensorName) -> Error {
        Error::BadTensor { name }
    }

    fn entry(&mut self, name: TensorName, rows: usize, cols: usize) -> Result<TensorEntry, Error> {
        let e = *self
            .tensors
            .get(self.cursor)
            .ok_or(malformed("tensor count"))?;
        self.cursor += 1;
        if e.reserved != [0; 3] || e.reserved1 != [0; 2] {
            return Err(malformed("tensor reserved bytes"));
        }
        if e.rows as usize != rows || e.cols as usize != cols {
            return Err(Self::bad(name));
        }
        Ok(e)
    }

    fn region<T: Pod>(&self, off: u32, n: usize, name: TensorName) -> Result<&'a [T], Error> {
        let off = off as usize;
        if off % DATA_ALIGN != 0 || off < self.data_off {
            return Err(Self::bad(name));
        }
        let len = n
            .checked_mul(core::mem::size_of::<T>())
            .ok_or(Self::bad(name))?;
        let end = off.checked_add(len).ok_or(Self::bad(name))?;
        let bytes = self.body.get(off..end).ok_or(Self::bad(name))?;
        bytemuck::try_cast_slice(bytes).map_err(|_| Self::bad(name))
    }

    fn check_mat(&mut self, name: TensorName, rows: usize, cols: usize) -> Result<Mat<'a>, Error> {
        let e = self.entry(name, rows, cols)?;
        let dt = DType::from_u8(e.dtype).ok_or(Self::bad(name))?;
        // Both dimensions are at most MAX_DIM, but their product need not fit a 32-bit usize.
        let n = rows.checked_mul(cols).ok_or(Self::bad(name))?;
        let len = n.checked_mul(dt.size()).ok_or(Self::bad(name))?;
        if dt != self.weights || e.len as usize != len {
            return Err(Self::bad(name));
        }
        if dt != DType::I8 && e.scale_offset != 0 {
            return Err(Self::bad(name));
        }
        self.params += n;
        let data = match dt {
            DType::F32 => MatData::F32(self.region::<f32>(e.offset, n, name)?),
            DType::F16 => MatData::F16(self.region::<f16>(e.offset, n, name)?),
            // The integer mode stores no f32 row scales (its requantizations replace them).
            DType::I8 if self.integer => {
                if e.scale_offset != 0 {
                    return Err(Self::bad(name));
                }
                MatData::I8 {
                    q: self.region::<i8>(e.offset, n, name)?,
                    scales: &[],
                }
            }
            DType::I8 => MatData::I8 {
                q: self.region::<i8>(e.offset, n, name)?,
                scales: self.region::<f32>(e.scale_offset, rows, name)?,
            },
        };
        Ok(Mat { rows, cols, data })
    }

    fn check_vector(&mut self, name: TensorName, len: usize) -> Result<&'a [f32], Error> {
        let e = self.entry(name, 1, len)?;
        if e.dtype != DType::F32.code() || e.scale_offset != 0 || e.len as usize != len * 4 {
            return Err(Self::bad(name));
        }
        self.params += len;
        self.region::<f32>(e.offset, len, name)
    }

    /// An integer-mode parameter: [`INT_CODE`] words, and the values every step relies on —
    /// shifts in `0..=62`, Q14 cosines and sines within ±2^14.
    fn check_ints(
        &mut self,
        name: TensorName,
        part: IntPart,
        len: usize,
    ) -> Result<&'a [i32], Error> {
        let e = self.entry(name, 1, len)?;
        if !self.integer
            || e.dtype != INT_CODE
            || e.scale_offset != 0
            || Some(e.len as usize) != len.checked_mul(4)
        {
            return Err(Self::bad(name));
        }
        let v = self.region::<i32>(e.offset, len, name)?;
        let shifts_ok = |v: &[i32]| v.chunks_exact(2).all(|p| matches!(p, [_, 0..=62]));
        let ok = match part {
            IntPart::Requant => shifts_ok(v),
            IntPart::Rq => v.last().is_some_and(|s| (0..=62).contains(s)),
            IntPart::Norm => v
                .len()
                .checked_sub(3)
                .and_then(|i| v.get(i))
                .is_some_and(|s| (0..=30).contains(s)),
            IntPart::Rope => v.iter().all(|x| (-(1 << 14)..=1 << 14).contains(x)),
            IntPart::Scale => v.iter().all(|&b| {
                let f = f32::from_bits(b as u32);
                f.is_finite() && f > 0.0
            }),
            IntPart::Bias | IntPart::Alibi | IntPart::Lut => true,
        };
        if !ok {
            return Err(Self::bad(name));
        }
        Ok(v)
    }

    fn record<T>(&mut self, r: Result<T, Error>, empty: T) -> T {
        match r {
            Ok(v) if self.err.is_none() => v,
            Ok(_) => empty,
            Err(e) => {
                self.err.get_or_insert(e);
                empty
            }
        }
    }
}

impl<'a> TensorSource<'a> for Validator<'a> {
    fn mat(&mut self, name: TensorName, rows: usize, cols: usize) -> Mat<'a> {
        let r = self.check_mat(name, rows, cols);
        self.record(r, empty_mat(rows, cols))
    }

    fn vector(&mut self, name: TensorName, len: usize) -> &'a [f32] {
        let r = self.check_vector(name, len);
        self.record(r, &[])
    }

    fn bias(&mut self, name: TensorName, len: usize, present: bool) -> &'a [f32] {
        let v = self.vector(name, len);
        if !present {
            self.params -= v.len(); // stored zeros, not a parameter of the model
        }
        v
    }

    fn table(&mut self, name: TensorName, len: usize) -> &'a [f32] {
        let v = self.vector(name, len);
        self.params -= v.len(); // computed, not a parameter of the model
                                // The RoPE table holds cosines and sines.
        if !v.iter().all(|x| (-1.0..=1.0).contains(x)) {
            self.err.get_or_insert(Self::bad(name));
        }
        v
    }

    fn integer(&self) -> bool {
        self.integer
    }

    fn ints(&mut self, name: TensorName, part: IntPart, len: usize) -> &'a [i32] {
        let r = self.check_ints(name, part, len);
        self.record(r, &[])
    }
}

/// Reads weight views in plan order from a validated model's tensor table, without checks:
/// [`Model::from_bytes`] walked the same plan with [`Validator`], so every entry has the shape,
/// type, length, alignment and bounds asked for, and the fallbacks below are never taken.
pub(crate) struct Reader<'a> {
    tensors: &'a [TensorEntry],
    body: &'a [u8],
    weights: DType,
    integer: bool,
    cursor: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> TensorEntry {
        let e = self.tensors.get(self.cursor).copied().unwrap_or_else(|| {
            // Unreachable: validation matched the plan's tensor count.
            bytemuck::Zeroable::zeroed()
        });
        self.cursor += 1;
        e
    }

    fn slice<T: Pod>(&self, off: u32, n: usize) -> &'a [T] {
        // In bounds and aligned: validated (see the type's comment).
        let start = off as usize;
        let end = start + n * core::mem::size_of::<T>();
        self.body
            .get(start..end)
            .and_then(|b| bytemuck::try_cast_slice(b).ok())
            .unwrap_or(&[])
    }
}

// Out of line: the plan reads a few dozen tensors per step, and inlining each read into the
// blocks' steps costs kilobytes of flash for no measurable speed.
impl<'a> TensorSource<'a> for Reader<'a> {
    #[inline(never)]
    fn mat(&mut self, _: TensorName, rows: usize, cols: usize) -> Mat<'a> {
        let e = self.next();
        let n = rows * cols;
        let data = match self.weights {
            DType::F32 => MatData::F32(self.slice(e.offset, n)),
            DType::F16 => MatData::F16(self.slice(e.offset, n)),
            DType::I8 => MatData::I8 {
                q: self.slice(e.offset, n),
                scales: if self.integer {
                    &[]
                } else {
                    self.slice(e.scale_offset, rows)
                },
            },
        };
        Mat { rows, cols, data }
    }

    #[inline(never)]
    fn vector(&mut self, _: TensorName, len: usize) -> &'a [f32] {
        let e = self.next();
        self.slice(e.offset, len)
    }

    fn integer(&self) -> bool {
        self.integer
    }

    #[inline(never)]
    fn ints(&mut self, _: TensorName, _: IntPart, len: usize) -> &'a [i32] {
        let e = self.next();
        self.slice(e.offset, len)
    }
}

impl<'a> Model<'a> {
    /// Validates a blob once — magic, version, checksum, every offset, length, alignment and shape
    /// — and returns a view that borrows the weights from it. The blob must start on a 4-byte
    /// boundary (use [`crate::include_blob!`] or [`crate::AlignedBlob`]). Trailing bytes after the
    /// blob's declared length (e.g. flash padding) are ignored.
    pub fn from_bytes(blob: &'a [u8]) -> Result<Model<'a>, Error> {
        const HLEN: usize = core::mem::size_of::<Header>();
        let given = blob.len().min(u32::MAX as usize) as u32;
        if blob.len() < HLEN {
            return Err(Error::Truncated {
                needed: HLEN as u32,
                given,
            });
        }
        if blob.as_ptr() as usize % BLOB_ALIGN != 0 {
            return Err(Error::Misaligned {
                required: BLOB_ALIGN as u32,
            });
        }
        let h: &'a Header =
            bytemuck::try_from_bytes(&blob[..HLEN]).map_err(|_| malformed("header"))?;
        if h.magic != MAGIC {
            return Err(Error::BadMagic);
        }
        if h.version != VERSION {
            return Err(Error::UnsupportedVersion {
                found: h.version,
                supported: VERSION,
            });
        }
        if h.header_len as usize != HLEN {
            return Err(malformed("header_len"));
        }
        let total = h.total_len as usize;
        if total > blob.len() {
            return Err(Error::Truncated {
                needed: h.total_len,
                given,
            });
        }
        if total < HLEN + 4 {
            return Err(malformed("total_len"));
        }
        let (body, crc) = blob[..total].split_at(total - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32(body);
        if stored != computed {
            return Err(Error::BadChecksum { stored, computed });
        }
        Self::parse(h, body, stored)
    }

    fn parse(h: &'a Header, body: &'a [u8], crc: u32) -> Result<Model<'a>, Error> {
        if h.flags & !HEADER_FLAGS != 0 || h.reserved0 != 0 || h.reserved1 != 0 {
            return Err(malformed("header flags"));
        }
        // A bias flag only for a tensor the model has: `input.bias` (frames), `norm_f.bias`
        // (a final LayerNorm).
        let rms = h.flags & FLAG_RMS_NORM != 0;
        let final_norm = h.flags & FLAG_FINAL_NORM != 0;
        if (h.flags & FLAG_NO_INPUT_BIAS != 0 && h.input_kind != InputCode::Frames.code())
            || (h.flags & FLAG_NO_NORM_F_BIAS != 0 && (rms || !final_norm))
        {
            return Err(malformed("header flags"));
        }
        let weights = DType::from_u8(h.weight_type).ok_or(malformed("weight_type"))?;
        let kv = DType::from_u8(h.kv_type).ok_or(malformed("kv_type"))?;
        let input = InputCode::from_u8(h.input_kind).ok_or(malformed("input_kind"))?;
        // The integer mode stores int8 weights and an int8 KV cache.
        let integer = h.flags & FLAG_INTEGER != 0;
        if integer && (weights != DType::I8 || kv != DType::I8) {
            return Err(malformed("header flags"));
        }
        dim(h.input_dim, "input_dim")?;
        dim(h.d_model, "d_model")?;
        dim(h.output_dim, "output_dim")?;
        if !(h.norm_eps.is_finite() && h.norm_eps >= 0.0) {
            return Err(malformed("norm_eps"));
        }
        if h.n_blocks as usize > MAX_BLOCKS {
            return Err(Error::CapacityExceeded {
                what: "blocks",
                count: h.n_blocks,
                capacity: MAX_BLOCKS as u32,
            });
        }
        let data_off = h.data_off as usize;
        if data_off % DATA_ALIGN != 0 || data_off > body.len() {
            return Err(malformed("data_off"));
        }
        // Both tables lie between the header and the data.
        let tables = body.get(..data_off).ok_or(malformed("data_off"))?;
        for off in [h.blocks_off, h.tensors_off] {
            if (off as usize) < core::mem::size_of::<Header>() {
                return Err(malformed("table offsets"));
            }
        }
        let blocks: &'a [BlockEntry] = table(tables, h.blocks_off, h.n_blocks, "table offsets")?;
        let tensors: &'a [TensorEntry] =
            table(tables, h.tensors_off, h.n_tensors, "table offsets")?;

        let mut model = Model {
            header: h,
            blocks,
            tensors,
            body,
            layout: Layout {
                state_words: 0,
                scratch: Default::default(),
                total_words: 0,
            },
            params: 0,
            crc,
            weights,
            kv,
            input,
            integer,
        };
        let dims = model.dims();

        // Every block against the running width, then every tensor against the plan, through
        // the same plan functions a step reads by.
        let mut v = Validator {
            tensors,
            body,
            data_off,
            weights,
            integer,
            cursor: 0,
            params: 0,
            err: None,
        };
        if integer {
            schema::input_int(&dims, &mut v);
        } else {
            schema::input(&dims, &mut v);
        }
        let mut width = dims.d_model;
        let mut layers = 0usize;
        for (i, e) in blocks.iter().enumerate() {
            let spec = BlockSpec::decode(e, width, dims.norm_kind)?;
            layers += spec.rnn_layers();
            if layers > MAX_RNN_LAYERS {
                return Err(Error::CapacityExceeded {
                    what: "recurrent layers",
                    count: layers as u32,
                    capacity: MAX_RNN_LAYERS as u32,
                });
            }
            if e.first_tensor as usize != v.cursor {
                return Err(malformed("block first_tensor"));
            }
            spec.plan(i, &mut v);
            if let Some(err) = v.err {
                return Err(err);
            }
            width = spec.out_width();
        }
        if integer {
            schema::tail_int(&dims, width, &mut v);
        } else {
            schema::tail(&dims, width, &mut v);
        }
        if let Some(err) = v.err {
            return Err(err);
        }
        if v.cursor != tensors.len() {
            return Err(malformed("tensor count"));
        }

        model.layout = Layout::compute(&dims, model.blocks(), weights, kv, integer)?;
        if model.layout.bytes() != h.state_bytes as usize {
            return Err(malformed("state_bytes"));
        }
        model.params = u32::try_from(v.params).map_err(|_| malformed("tensor count"))?;
        Ok(model)
    }

    /// The model-level dimensions the tensor plan depends on.
    pub fn dims(&self) -> ModelDims {
        ModelDims {
            input: self.input_kind(),
            d_model: self.d_model(),
            output_dim: self.output_dim(),
            final_norm: self.has_final_norm(),
            norm_kind: self.norm_kind(),
            input_bias: self.header.flags & FLAG_NO_INPUT_BIAS == 0,
            head_bias: self.header.flags & FLAG_NO_HEAD_BIAS == 0,
            norm_f_bias: self.header.flags & FLAG_NO_NORM_F_BIAS == 0,
        }
    }

    /// The module of every norm (`norm_kind`).
    pub fn norm_kind(&self) -> NormKind {
        if self.header.flags & FLAG_RMS_NORM != 0 {
            NormKind::Rms
        } else {
            NormKind::Layer
        }
    }

    /// A reader at the first tensor (for the step).
    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader {
            tensors: self.tensors,
            body: self.body,
            weights: self.weights,
            integer: self.integer,
            cursor: 0,
        }
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> impl Iterator<Item = BlockSpec> + Clone + 'a {
        let blocks = self.blocks;
        let mut width = self.d_model();
        let norm = self.norm_kind();
        blocks.iter().filter_map(move |e| {
            // Validated in `parse`, so every entry decodes.
            let spec = BlockSpec::decode(e, width, norm).ok()?;
            width = spec.out_width();
            Some(spec)
        })
    }

    /// Bytes of state arena a [`crate::Session`] needs (from a 4-byte aligned address; an
    /// unaligned arena needs up to 3 more). This is the figure `runnel convert` reports.
    pub fn state_bytes(&self) -> usize {
        self.layout.bytes()
    }

    /// What the model consumes at each step.
    pub fn input_kind(&self) -> InputKind {
        InputKind::new(self.input, self.header.input_dim as usize)
    }

    /// Logits per step.
    pub fn output_dim(&self) -> usize {
        self.header.output_dim as usize
    }

    /// Width after the input layer.
    pub fn d_model(&self) -> usize {
        self.header.d_model as usize
    }

    /// Bytes of the blob (what goes into flash).
    pub fn blob_bytes(&self) -> usize {
        self.header.total_len as usize
    }

    /// Number of weights (matrix elements, biases and norm parameters).
    pub fn param_count(&self) -> usize {
        self.params as usize
    }

    /// The blob's CRC-32, which identifies the model (and its conversion options); state
    /// snapshots carry it so that they are restored only into sessions of the same model.
    pub fn fingerprint(&self) -> u32 {
        self.crc
    }

    /// Storage type of the weight matrices.
    pub fn weight_type(&self) -> DType {
        self.weights
    }

    /// Storage type of the attention KV cache.
    pub fn kv_type(&self) -> DType {
        self.kv
    }

    /// LayerNorm epsilon.
    pub fn norm_eps(&self) -> f32 {
        self.header.norm_eps
    }

    /// Whether the model runs in the integer-only mode (`runnel convert --integer`): int8
    /// activations on calibrated grids, no floating point in the step (docs/INTEGER.md).
    pub fn is_integer(&self) -> bool {
        self.integer
    }

    /// The integer mode's grids at the API boundary, `(frame, logit)`: a feature value is
    /// `frame · q` for an int8 frame `q`, a logit `logit · l` for an integer logit `l` (see
    /// [`crate::Session::step_token_int`]). `(1.0, 1.0)` for other models; the frame grid is 1.0
    /// for token models.
    pub fn integer_scales(&self) -> (f32, f32) {
        if !self.integer {
            return (1.0, 1.0);
        }
        let bits = |v: &[i32]| v.first().map_or(1.0, |&b| f32::from_bits(b as u32));
        let mut t = self.reader();
        let frame = match schema::input_int(&self.dims(), &mut t) {
            schema::IntInput::Frames { scale, .. } => bits(scale),
            schema::IntInput::Tokens { .. } => 1.0,
        };
        // The logit grid is the plan's last tensor (`head.weight:scale`).
        t.cursor = self.tensors.len().saturating_sub(1);
        let logit = bits(t.ints(TensorName::top("head", "weight"), IntPart::Scale, 1));
        (frame, logit)
    }

    /// Whether a final LayerNorm precedes the head.
    pub fn has_final_norm(&self) -> bool {
        self.header.flags & FLAG_FINAL_NORM != 0
    }
}

// The goal for a model's footprint on the 32-bit MCUs (it holds only references and the layout).
#[cfg(target_pointer_width = "32")]
const _: () = assert!(core::mem::size_of::<Model<'static>>() <= 68);

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::format::TensorEntry;

    /// A blob with a valid CRC: header, the given tensor entries (no blocks, no final norm), and
    /// `data` bytes of zeros after the tables.
    fn blob(input_dim: u32, d_model: u32, tensors: &[TensorEntry], data: usize) -> Vec<u32> {
        let hlen = core::mem::size_of::<Header>();
        let data_off = crate::format::align_up(hlen + 32 * tensors.len(), DATA_ALIGN);
        let total = data_off + data + 4;
        let h = Header {
            magic: MAGIC,
            version: VERSION,
            header_len: hlen as u16,
            total_len: total as u32,
            flags: 0,
            input_kind: InputCode::Tokens.code(),
            weight_type: DType::F16.code(),
            kv_type: DType::F16.code(),
            reserved0: 0,
            input_dim,
            d_model,
            output_dim: 1,
            norm_eps: 1e-5,
            n_blocks: 0,
            n_tensors: tensors.len() as u32,
            blocks_off: hlen as u32,
            tensors_off: hlen as u32,
            data_off: data_off as u32,
            state_bytes: 0,
            reserved1: 0,
        };
        let mut b = Vec::new();
        b.extend_from_slice(bytemuck::bytes_of(&h));
        for t in tensors {
            b.extend_from_slice(bytemuck::bytes_of(t));
        }
        b.resize(total - 4, 0);
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        // As words, so the bytes are 4-byte aligned.
        b.chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn entry(dtype: DType, rows: u32, cols: u32, offset: u32, len: u32) -> TensorEntry {
        TensorEntry {
            dtype: dtype.code(),
            reserved: [0; 3],
            rows,
            cols,
            offset,
            len,
            scale_offset: 0,
            reserved1: [0; 2],
        }
    }

    /// The attack of the reliability issue: `embed.weight` declared [65536, 65536] f16 with no
    /// data. `rows * cols` is 2^32, which overflows a 32-bit `usize`; it must be refused on every
    /// target (run under Miri with `--target i686-unknown-linux-gnu` for the 32-bit path).
    #[test]
    fn a_tensor_larger_than_the_address_space_is_refused() {
        let n = 1u32 << 16;
        let t = [
            entry(DType::F16, n, n, 0x80, 0), // 2^33 bytes, the length wraps to 0
            entry(DType::F16, 1, n, 0x80, 2 * n),
            entry(DType::F32, 1, 1, 0x80, 4),
        ];
        for len in [0u32, u32::MAX] {
            let mut t = t;
            t[0].len = len;
            let words = blob(n, n, &t, 2 * n as usize);
            let bytes: &[u8] = bytemuck::cast_slice(&words);
            let err = Model::from_bytes(bytes).unwrap_err();
            assert_eq!(
                err,
                Error::BadTensor {
                    name: TensorName::top("embed", "weight")
                },
                "len {len}"
            );
        }
    }

    #[test]
    fn tables_beyond_the_blob_are_refused_without_overflow() {
        let mut words = blob(4, 4, &[], 16);
        // n_tensors = u32::MAX: `n * 32` overflows 32 bits.
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        let len = bytes.len();
        let crc = crc32(&bytes[..len - 4]);
        bytes[len - 4..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Model::from_bytes(bytes),
            Err(Error::Malformed { .. })
        ));
    }
}
