//! A parsed, validated, zero-copy view of a `.rnl` blob. Config (the header and block table),
//! weights (slices borrowed from the blob) and state (the caller's arena, see
//! [`crate::Session`]) are separate.

use bytemuck::Pod;
use half::f16;

use crate::error::Error;
use crate::format::{
    crc32, BlockEntry, DType, Header, TensorEntry, BLOB_ALIGN, BLOCK_ATTENTION, BLOCK_FLAG_NORM,
    BLOCK_FLAG_RESIDUAL, BLOCK_GRU, BLOCK_LSTM, DATA_ALIGN, FLAG_FINAL_NORM, INPUT_FRAMES,
    INPUT_TOKENS, MAGIC, VERSION,
};
use crate::kernels::{Activation, Mat, MatData};
use crate::layout::Layout;
use crate::limits::{MAX_BLOCKS, MAX_DIM, MAX_RNN_LAYERS};

/// What a model consumes at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InputKind {
    /// Token ids in `0..vocab`.
    Tokens {
        /// Vocabulary size.
        vocab: usize,
    },
    /// Frames of `dim` f32 features.
    Frames {
        /// Features per frame.
        dim: usize,
    },
}

/// Recurrent cell type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Cell {
    /// `nn.LSTM` (gates i, f, g, o).
    Lstm,
    /// `nn.GRU` (gates r, z, n).
    Gru,
}

impl Cell {
    /// Gate rows per hidden unit: 4 for LSTM, 3 for GRU.
    pub const fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// A description of one block, for tools and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlockInfo {
    /// An LSTM or GRU block.
    Recurrent {
        /// Cell type.
        cell: Cell,
        /// Stacked layers.
        num_layers: usize,
        /// Input width.
        in_width: usize,
        /// Hidden (= output) width.
        hidden: usize,
        /// Pre-norm.
        norm: bool,
        /// Residual connection.
        residual: bool,
    },
    /// A causal sliding-window attention block.
    Attention {
        /// Width (input = output).
        width: usize,
        /// Heads.
        heads: usize,
        /// Cached steps, this one included.
        window: usize,
        /// FFN width (0: no FFN).
        ffn_dim: usize,
        /// FFN activation.
        activation: Activation,
    },
}

/// LayerNorm parameters: `w: [W]`, `b: [W]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Norm<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
}

/// One stacked recurrent layer (G = 4 for LSTM, 3 for GRU).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RnnLayer<'a> {
    pub w_ih: Mat<'a>,   // [G*H, in]
    pub w_hh: Mat<'a>,   // [G*H, H]
    pub b_ih: &'a [f32], // [G*H]
    pub b_hh: &'a [f32], // [G*H]
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RnnBlock<'a> {
    pub cell: Cell,
    pub norm: Option<Norm<'a>>, // [in_width]
    pub residual: bool,
    pub in_width: usize,
    pub hidden: usize,
    pub num_layers: usize, // layers follow in the tensor table; read with `Model::rnn_layer`
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Ffn<'a> {
    pub norm2: Norm<'a>, // [W]
    pub w1: Mat<'a>,     // [F, W]
    pub b1: &'a [f32],   // [F]
    pub w2: Mat<'a>,     // [W, F]
    pub b2: &'a [f32],   // [W]
    pub act: Activation,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AttnBlock<'a> {
    pub norm1: Norm<'a>,     // [W]
    pub in_proj: Mat<'a>,    // [3W, W]
    pub in_bias: &'a [f32],  // [3W]
    pub out_proj: Mat<'a>,   // [W, W]
    pub out_bias: &'a [f32], // [W]
    pub ffn: Option<Ffn<'a>>,
    pub width: usize,
    pub heads: usize,
    pub window: usize,
}

// No heap to box the larger variant into; a few dozen bytes per block is the price.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Block<'a> {
    Rnn(RnnBlock<'a>),
    Attn(AttnBlock<'a>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    Tokens { embed: Mat<'a> },           // [vocab, d_model]
    Frames { w: Mat<'a>, b: &'a [f32] }, // [d_model, dim], [d_model]
}

/// A validated model borrowing its weights from a blob. Build it with [`Model::from_bytes`].
///
/// It keeps the validated header, block table and state layout (under 1 KB on 32-bit targets)
/// and rebuilds the weight views (slices into the blob) from the tensor table as a step walks
/// the blocks — a few dozen table reads per step, instead of holding several KB of views.
#[derive(Debug)]
pub struct Model<'a> {
    pub(crate) header: Header,
    body: &'a [u8], // the blob without its CRC
    pub(crate) entries: heapless::Vec<BlockEntry, MAX_BLOCKS>, // [n_blocks], validated
    pub(crate) layout: Layout,
    pub(crate) kv: DType,
    weights: DType,
    params: usize,
}

const fn malformed(what: &'static str) -> Error {
    Error::Malformed { what }
}

fn read_pod<T: Pod>(bytes: &[u8], off: usize) -> Result<T, Error> {
    let end = off
        .checked_add(core::mem::size_of::<T>())
        .ok_or(malformed("table offset"))?;
    let b = bytes.get(off..end).ok_or(malformed("table offset"))?;
    Ok(bytemuck::pod_read_unaligned(b))
}

/// Reads tensors in the canonical order, checking each against the shape the config implies.
pub(crate) struct Tensors<'a> {
    body: &'a [u8], // the blob without its CRC
    table: usize,
    count: usize,
    data_off: usize,
    pub(crate) cursor: usize,
    weights: DType,
    params: usize,
}

impl<'a> Tensors<'a> {
    fn next_entry(&mut self) -> Result<TensorEntry, Error> {
        if self.cursor >= self.count {
            return Err(malformed("tensor count"));
        }
        let e: TensorEntry = read_pod(self.body, self.table + self.cursor * 32)?;
        self.cursor += 1;
        if e.reserved != [0; 3] || e.reserved1 != [0; 2] {
            return Err(malformed("tensor reserved bytes"));
        }
        Ok(e)
    }

    fn region<T: Pod>(&self, off: u32, n: usize, what: &'static str) -> Result<&'a [T], Error> {
        let off = off as usize;
        let len = n
            .checked_mul(core::mem::size_of::<T>())
            .ok_or(malformed(what))?;
        if off % DATA_ALIGN != 0 || off < self.data_off {
            return Err(malformed(what));
        }
        let end = off.checked_add(len).ok_or(malformed(what))?;
        let bytes = self.body.get(off..end).ok_or(malformed(what))?;
        bytemuck::try_cast_slice(bytes).map_err(|_| malformed(what))
    }

    fn check_shape(
        e: &TensorEntry,
        rows: usize,
        cols: usize,
        what: &'static str,
    ) -> Result<(), Error> {
        if e.rows as usize != rows || e.cols as usize != cols {
            return Err(malformed(what));
        }
        Ok(())
    }

    fn mat(&mut self, rows: usize, cols: usize, what: &'static str) -> Result<Mat<'a>, Error> {
        let e = self.next_entry()?;
        Self::check_shape(&e, rows, cols, what)?;
        let dt = DType::from_u8(e.dtype).ok_or(malformed(what))?;
        if dt != self.weights {
            return Err(malformed(what));
        }
        let n = rows * cols; // both ≤ MAX_DIM, so this fits
        if e.len as usize != n * dt.size() {
            return Err(malformed(what));
        }
        self.params += n;
        let data = match dt {
            DType::F32 => {
                if e.scale_offset != 0 {
                    return Err(malformed(what));
                }
                MatData::F32(self.region::<f32>(e.offset, n, what)?)
            }
            DType::F16 => {
                if e.scale_offset != 0 {
                    return Err(malformed(what));
                }
                MatData::F16(self.region::<f16>(e.offset, n, what)?)
            }
            DType::I8 => MatData::I8 {
                q: self.region::<i8>(e.offset, n, what)?,
                scales: self.region::<f32>(e.scale_offset, rows, what)?,
            },
        };
        Ok(Mat { rows, cols, data })
    }

    fn vector(&mut self, len: usize, what: &'static str) -> Result<&'a [f32], Error> {
        let e = self.next_entry()?;
        Self::check_shape(&e, 1, len, what)?;
        if e.dtype != DType::F32 as u8 || e.scale_offset != 0 || e.len as usize != len * 4 {
            return Err(malformed(what));
        }
        self.params += len;
        self.region::<f32>(e.offset, len, what)
    }

    fn norm(&mut self, len: usize) -> Result<Norm<'a>, Error> {
        Ok(Norm {
            w: self.vector(len, "norm weight")?,
            b: self.vector(len, "norm bias")?,
        })
    }
}

fn check_dim(v: u32, what: &'static str) -> Result<usize, Error> {
    if v == 0 || v as usize > MAX_DIM {
        return Err(malformed(what));
    }
    Ok(v as usize)
}

impl<'a> Model<'a> {
    /// Validates a blob once — magic, version, checksum, every offset, length, alignment and shape
    /// — and returns a view that borrows the weights from it. The blob must start on a 4-byte
    /// boundary (use [`crate::include_blob!`] or [`crate::AlignedBlob`]). Trailing bytes after the
    /// blob's declared length (e.g. flash padding) are ignored.
    pub fn from_bytes(blob: &'a [u8]) -> Result<Model<'a>, Error> {
        const HLEN: usize = core::mem::size_of::<Header>();
        if blob.len() < HLEN {
            return Err(Error::Truncated {
                needed: HLEN as u32,
                given: blob.len() as u32,
            });
        }
        if blob.as_ptr() as usize % BLOB_ALIGN != 0 {
            return Err(Error::Misaligned {
                required: BLOB_ALIGN as u32,
            });
        }
        let h: Header = read_pod(blob, 0)?;
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
                given: blob.len().min(u32::MAX as usize) as u32,
            });
        }
        if total < HLEN + 4 {
            return Err(malformed("total_len"));
        }
        let body = &blob[..total - 4];
        let stored = u32::from_le_bytes([
            blob[total - 4],
            blob[total - 3],
            blob[total - 2],
            blob[total - 1],
        ]);
        let computed = crc32(body);
        if stored != computed {
            return Err(Error::BadChecksum { stored, computed });
        }
        Self::parse(h, body)
    }

    fn parse(h: Header, body: &'a [u8]) -> Result<Model<'a>, Error> {
        if h.flags & !FLAG_FINAL_NORM != 0 || h.reserved0 != 0 || h.reserved1 != 0 {
            return Err(malformed("header flags"));
        }
        let weights = DType::from_u8(h.weight_type).ok_or(malformed("weight_type"))?;
        let kv = DType::from_u8(h.kv_type).ok_or(malformed("kv_type"))?;
        check_dim(h.input_dim, "input_dim")?;
        let d_model = check_dim(h.d_model, "d_model")?;
        check_dim(h.output_dim, "output_dim")?;
        if !(h.norm_eps.is_finite() && h.norm_eps >= 0.0) {
            return Err(malformed("norm_eps"));
        }
        let n_blocks = h.n_blocks as usize;
        if n_blocks > MAX_BLOCKS {
            return Err(Error::CapacityExceeded {
                what: "blocks",
                count: h.n_blocks,
                capacity: MAX_BLOCKS as u32,
            });
        }
        let n_tensors = h.n_tensors as usize;
        let table_end = |off: u32, n: usize| (off as usize).checked_add(n * 32);
        let blocks_off = h.blocks_off as usize;
        let tensors_off = h.tensors_off as usize;
        let data_off = h.data_off as usize;
        let ok_table = |off: usize, n: usize| {
            off >= core::mem::size_of::<Header>()
                && off % 4 == 0
                && table_end(off as u32, n).is_some_and(|e| e <= data_off)
        };
        if n_tensors > body.len() / 32
            || !ok_table(blocks_off, n_blocks)
            || !ok_table(tensors_off, n_tensors)
        {
            return Err(malformed("table offsets"));
        }
        if data_off % DATA_ALIGN != 0 || data_off > body.len() {
            return Err(malformed("data_off"));
        }

        // The block table, with shapes checked against the running width.
        let mut entries: heapless::Vec<BlockEntry, MAX_BLOCKS> = heapless::Vec::new();
        let mut width = d_model;
        for i in 0..n_blocks {
            let b: BlockEntry = read_pod(body, blocks_off + i * 32)?;
            if b.reserved != 0 || b.in_width as usize != width {
                return Err(malformed("block in_width"));
            }
            let hidden = check_dim(b.hidden, "block hidden")?;
            match b.kind {
                BLOCK_LSTM | BLOCK_GRU => {
                    if b.num_layers == 0
                        || b.heads != 0
                        || b.window != 0
                        || b.ffn_dim != 0
                        || b.activation != 0
                    {
                        return Err(malformed("recurrent block fields"));
                    }
                    if b.flags & !(BLOCK_FLAG_NORM | BLOCK_FLAG_RESIDUAL) != 0 {
                        return Err(malformed("block flags"));
                    }
                    if b.flags & BLOCK_FLAG_RESIDUAL != 0 && hidden != width {
                        return Err(malformed("residual block hidden"));
                    }
                    width = hidden;
                }
                BLOCK_ATTENTION => {
                    if b.num_layers != 1 || b.flags != 0 || hidden != width {
                        return Err(malformed("attention block fields"));
                    }
                    if b.heads == 0 || width % b.heads as usize != 0 {
                        return Err(malformed("attention heads"));
                    }
                    if b.window == 0 {
                        return Err(malformed("attention window"));
                    }
                    if b.ffn_dim as usize > MAX_DIM {
                        return Err(malformed("ffn_dim"));
                    }
                    Activation::from_u8(b.activation).ok_or(malformed("activation"))?;
                }
                _ => return Err(malformed("block kind")),
            }
            // Cannot fail: n_blocks ≤ MAX_BLOCKS was checked.
            let _ = entries.push(b);
        }
        let layout = Layout::compute(&h, &entries)?;
        if layout.bytes() != h.state_bytes as usize {
            return Err(malformed("state_bytes"));
        }

        let mut model = Model {
            header: h,
            body,
            entries,
            layout,
            kv,
            weights,
            params: 0,
        };
        // Every tensor, in canonical order, through the same functions a step uses.
        let mut t = model.tensors();
        model.input(&mut t)?;
        let mut layers = 0usize;
        for b in &model.entries {
            if b.first_tensor as usize != t.cursor {
                return Err(malformed("block first_tensor"));
            }
            if let Block::Rnn(r) = model.block(b, &mut t)? {
                for k in 0..r.num_layers {
                    layers += 1;
                    if layers > MAX_RNN_LAYERS {
                        return Err(Error::CapacityExceeded {
                            what: "recurrent layers",
                            count: layers as u32,
                            capacity: MAX_RNN_LAYERS as u32,
                        });
                    }
                    Model::rnn_layer(&r, k, &mut t)?;
                }
            }
        }
        model.tail(&mut t)?;
        if t.cursor != n_tensors {
            return Err(malformed("tensor count"));
        }
        model.params = t.params;
        Ok(model)
    }

    /// A reader at the first tensor.
    pub(crate) fn tensors(&self) -> Tensors<'a> {
        Tensors {
            body: self.body,
            table: self.header.tensors_off as usize,
            count: self.header.n_tensors as usize,
            data_off: self.header.data_off as usize,
            cursor: 0,
            weights: self.weights,
            params: 0,
        }
    }

    /// The input layer's views (reads 1 or 2 tensors).
    pub(crate) fn input(&self, t: &mut Tensors<'a>) -> Result<Input<'a>, Error> {
        let (dim, d) = (self.header.input_dim as usize, self.header.d_model as usize);
        match self.header.input_kind {
            INPUT_TOKENS => Ok(Input::Tokens {
                embed: t.mat(dim, d, "embed.weight")?,
            }),
            INPUT_FRAMES => Ok(Input::Frames {
                w: t.mat(d, dim, "input.weight")?,
                b: t.vector(d, "input.bias")?,
            }),
            _ => Err(malformed("input_kind")),
        }
    }

    /// A block's views. For a recurrent block this reads only its norm: the layers follow, one
    /// [`Model::rnn_layer`] each.
    pub(crate) fn block(&self, b: &BlockEntry, t: &mut Tensors<'a>) -> Result<Block<'a>, Error> {
        let w = b.in_width as usize;
        let hid = b.hidden as usize;
        Ok(match b.kind {
            BLOCK_LSTM | BLOCK_GRU => Block::Rnn(RnnBlock {
                cell: if b.kind == BLOCK_LSTM {
                    Cell::Lstm
                } else {
                    Cell::Gru
                },
                norm: if b.flags & BLOCK_FLAG_NORM != 0 {
                    Some(t.norm(w)?)
                } else {
                    None
                },
                residual: b.flags & BLOCK_FLAG_RESIDUAL != 0,
                in_width: w,
                hidden: hid,
                num_layers: b.num_layers as usize,
            }),
            _ => {
                let norm1 = t.norm(w)?;
                let in_proj = t.mat(3 * w, w, "in_proj_weight")?;
                let in_bias = t.vector(3 * w, "in_proj_bias")?;
                let out_proj = t.mat(w, w, "out_proj.weight")?;
                let out_bias = t.vector(w, "out_proj.bias")?;
                let f = b.ffn_dim as usize;
                let ffn = if f > 0 {
                    Some(Ffn {
                        norm2: t.norm(w)?,
                        w1: t.mat(f, w, "ffn.0.weight")?,
                        b1: t.vector(f, "ffn.0.bias")?,
                        w2: t.mat(w, f, "ffn.2.weight")?,
                        b2: t.vector(w, "ffn.2.bias")?,
                        act: Activation::from_u8(b.activation).ok_or(malformed("activation"))?,
                    })
                } else {
                    None
                };
                Block::Attn(AttnBlock {
                    norm1,
                    in_proj,
                    in_bias,
                    out_proj,
                    out_bias,
                    ffn,
                    width: w,
                    heads: b.heads as usize,
                    window: b.window as usize,
                })
            }
        })
    }

    /// Layer `k` of a recurrent block (reads 4 tensors).
    pub(crate) fn rnn_layer(
        r: &RnnBlock<'_>,
        k: usize,
        t: &mut Tensors<'a>,
    ) -> Result<RnnLayer<'a>, Error> {
        let g = r.cell.gates() * r.hidden;
        let in_k = if k == 0 { r.in_width } else { r.hidden };
        Ok(RnnLayer {
            w_ih: t.mat(g, in_k, "weight_ih")?,
            w_hh: t.mat(g, r.hidden, "weight_hh")?,
            b_ih: t.vector(g, "bias_ih")?,
            b_hh: t.vector(g, "bias_hh")?,
        })
    }

    /// Width after the last block.
    pub(crate) fn final_width(&self) -> usize {
        self.entries
            .last()
            .map_or(self.header.d_model, |b| b.hidden) as usize
    }

    /// Final norm (`[W]`, if any), head (`[output_dim, W]`) and head bias (`[output_dim]`).
    pub(crate) fn tail(
        &self,
        t: &mut Tensors<'a>,
    ) -> Result<(Option<Norm<'a>>, Mat<'a>, &'a [f32]), Error> {
        let width = self.final_width();
        let out = self.header.output_dim as usize;
        let norm = if self.header.flags & FLAG_FINAL_NORM != 0 {
            Some(t.norm(width)?)
        } else {
            None
        };
        Ok((
            norm,
            t.mat(out, width, "head.weight")?,
            t.vector(out, "head.bias")?,
        ))
    }

    /// Bytes of state arena a [`crate::Session`] needs (from a 4-byte aligned address; an
    /// unaligned arena needs up to 3 more). This is the figure `runnel convert` reports.
    pub fn state_bytes(&self) -> usize {
        self.layout.bytes()
    }

    /// What the model consumes at each step.
    pub fn input_kind(&self) -> InputKind {
        let n = self.header.input_dim as usize;
        if self.header.input_kind == INPUT_TOKENS {
            InputKind::Tokens { vocab: n }
        } else {
            InputKind::Frames { dim: n }
        }
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
        self.params
    }

    /// Storage type of the weight matrices.
    pub fn weight_type(&self) -> DType {
        // Validated in `parse`.
        DType::from_u8(self.header.weight_type).unwrap_or(DType::F32)
    }

    /// Storage type of the attention KV cache.
    pub fn kv_type(&self) -> DType {
        self.kv
    }

    /// LayerNorm epsilon.
    pub fn norm_eps(&self) -> f32 {
        self.header.norm_eps
    }

    /// Whether a final LayerNorm precedes the head.
    pub fn has_final_norm(&self) -> bool {
        self.header.flags & FLAG_FINAL_NORM != 0
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        self.entries.iter().map(|b| match b.kind {
            BLOCK_LSTM | BLOCK_GRU => BlockInfo::Recurrent {
                cell: if b.kind == BLOCK_LSTM {
                    Cell::Lstm
                } else {
                    Cell::Gru
                },
                num_layers: b.num_layers as usize,
                in_width: b.in_width as usize,
                hidden: b.hidden as usize,
                norm: b.flags & BLOCK_FLAG_NORM != 0,
                residual: b.flags & BLOCK_FLAG_RESIDUAL != 0,
            },
            _ => BlockInfo::Attention {
                width: b.in_width as usize,
                heads: b.heads as usize,
                window: b.window as usize,
                ffn_dim: b.ffn_dim as usize,
                activation: Activation::from_u8(b.activation).unwrap_or(Activation::Gelu),
            },
        })
    }
}
