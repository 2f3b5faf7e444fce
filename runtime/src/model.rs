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
    pub first_layer: usize, // index into Model::rnn_layers
    pub num_layers: usize,
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
#[derive(Debug)]
pub struct Model<'a> {
    pub(crate) header: Header,
    pub(crate) input: Input<'a>,
    pub(crate) blocks: heapless::Vec<Block<'a>, MAX_BLOCKS>,
    pub(crate) rnn_layers: heapless::Vec<RnnLayer<'a>, MAX_RNN_LAYERS>,
    pub(crate) final_norm: Option<Norm<'a>>, // [W]
    pub(crate) head: Mat<'a>,                // [output_dim, W]
    pub(crate) head_bias: &'a [f32],         // [output_dim]
    pub(crate) layout: Layout,
    pub(crate) kv: DType,
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
struct Tensors<'a> {
    body: &'a [u8], // the blob without its CRC
    table: usize,
    count: usize,
    data_off: usize,
    cursor: usize,
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
        let input_dim = check_dim(h.input_dim, "input_dim")?;
        let d_model = check_dim(h.d_model, "d_model")?;
        let output_dim = check_dim(h.output_dim, "output_dim")?;
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

        // The tensors, in canonical order.
        let mut t = Tensors {
            body,
            table: tensors_off,
            count: n_tensors,
            data_off,
            cursor: 0,
            weights,
            params: 0,
        };
        let input = match h.input_kind {
            INPUT_TOKENS => Input::Tokens {
                embed: t.mat(input_dim, d_model, "embed.weight")?,
            },
            INPUT_FRAMES => Input::Frames {
                w: t.mat(d_model, input_dim, "input.weight")?,
                b: t.vector(d_model, "input.bias")?,
            },
            _ => return Err(malformed("input_kind")),
        };
        let mut blocks = heapless::Vec::new();
        let mut rnn_layers: heapless::Vec<RnnLayer<'a>, MAX_RNN_LAYERS> = heapless::Vec::new();
        for b in &entries {
            if b.first_tensor as usize != t.cursor {
                return Err(malformed("block first_tensor"));
            }
            let w = b.in_width as usize;
            let hid = b.hidden as usize;
            let block = match b.kind {
                BLOCK_LSTM | BLOCK_GRU => {
                    let cell = if b.kind == BLOCK_LSTM {
                        Cell::Lstm
                    } else {
                        Cell::Gru
                    };
                    let g = cell.gates() * hid;
                    let norm = if b.flags & BLOCK_FLAG_NORM != 0 {
                        Some(t.norm(w)?)
                    } else {
                        None
                    };
                    let first_layer = rnn_layers.len();
                    for k in 0..b.num_layers as usize {
                        let in_k = if k == 0 { w } else { hid };
                        let layer = RnnLayer {
                            w_ih: t.mat(g, in_k, "weight_ih")?,
                            w_hh: t.mat(g, hid, "weight_hh")?,
                            b_ih: t.vector(g, "bias_ih")?,
                            b_hh: t.vector(g, "bias_hh")?,
                        };
                        rnn_layers
                            .push(layer)
                            .map_err(|_| Error::CapacityExceeded {
                                what: "recurrent layers",
                                count: (first_layer + k + 1) as u32,
                                capacity: MAX_RNN_LAYERS as u32,
                            })?;
                    }
                    Block::Rnn(RnnBlock {
                        cell,
                        norm,
                        residual: b.flags & BLOCK_FLAG_RESIDUAL != 0,
                        in_width: w,
                        hidden: hid,
                        first_layer,
                        num_layers: b.num_layers as usize,
                    })
                }
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
                            act: Activation::from_u8(b.activation)
                                .ok_or(malformed("activation"))?,
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
            };
            // Cannot fail: entries has the same capacity.
            let _ = blocks.push(block);
        }
        let final_norm = if h.flags & FLAG_FINAL_NORM != 0 {
            Some(t.norm(width)?)
        } else {
            None
        };
        let head = t.mat(output_dim, width, "head.weight")?;
        let head_bias = t.vector(output_dim, "head.bias")?;
        if t.cursor != n_tensors {
            return Err(malformed("tensor count"));
        }
        let params = t.params;
        Ok(Model {
            header: h,
            input,
            blocks,
            rnn_layers,
            final_norm,
            head,
            head_bias,
            layout,
            kv,
            params,
        })
    }

    /// Bytes of state arena a [`crate::Session`] needs (from a 4-byte aligned address; an
    /// unaligned arena needs up to 3 more). This is the figure `runnel convert` reports.
    pub fn state_bytes(&self) -> usize {
        self.layout.bytes()
    }

    /// What the model consumes at each step.
    pub fn input_kind(&self) -> InputKind {
        match self.input {
            Input::Tokens { .. } => InputKind::Tokens {
                vocab: self.header.input_dim as usize,
            },
            Input::Frames { .. } => InputKind::Frames {
                dim: self.header.input_dim as usize,
            },
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
        self.final_norm.is_some()
    }

    /// The blocks, in order.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        self.blocks.iter().map(|b| match b {
            Block::Rnn(r) => BlockInfo::Recurrent {
                cell: r.cell,
                num_layers: r.num_layers,
                in_width: r.in_width,
                hidden: r.hidden,
                norm: r.norm.is_some(),
                residual: r.residual,
            },
            Block::Attn(a) => BlockInfo::Attention {
                width: a.width,
                heads: a.heads,
                window: a.window,
                ffn_dim: a.ffn.map_or(0, |f| f.w1.rows),
                activation: a.ffn.map_or(Activation::Gelu, |f| f.act),
            },
        })
    }
}
