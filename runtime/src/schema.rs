//! The model schema, written once: every code the blob stores and every name the contract and
//! the command line use, and the tensor plan — which tensors a model has, in which order, with
//! which shapes and names. The runtime validates and reads a blob by this plan, and the converter
//! writes the blob from it; nothing about the schema is spelled out a second time.
//!
//! A block kind's own part of the plan lives with the kind, in [`crate::blocks`].

use core::fmt;

use crate::blocks::BlockSpec;
use crate::error::Error;
use crate::kernels::{Mat, MatData};
use crate::limits::MAX_DIM;

/// A stored dimension: `1..=MAX_DIM`, else `Malformed { what }`.
pub(crate) fn dim(v: u32, what: &'static str) -> Result<usize, Error> {
    if v == 0 || v as usize > MAX_DIM {
        return Err(Error::Malformed { what });
    }
    Ok(v as usize)
}

/// Declares a field enum stored as a `u8` code and named in the contract, with its code and name
/// tables in one place.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal, $str:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum $name { $( $(#[$vmeta])* $variant = $code, )* }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Decodes the on-disk code.
            pub const fn from_u8(v: u8) -> Option<Self> {
                match v {
                    $( $code => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The on-disk code.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The name in the model contract and on the command line.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $str, )*
                }
            }

            /// Parses [`Self::name`].
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $( $str => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The names, comma-separated, for messages (`"a, b or c"`).
            pub fn names() -> Names {
                Names(&[$($str),*])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// A list of names that prints as `a, b or c`.
#[derive(Debug, Clone, Copy)]
pub struct Names(&'static [&'static str]);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == n { " or " } else { ", " })?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

coded_enum! {
    /// Element type of a stored tensor or of the KV cache.
    pub enum DType {
        /// IEEE f32.
        F32 = 0, "f32";
        /// IEEE binary16.
        F16 = 1, "f16";
        /// Symmetric int8 with one f32 scale per row: `w[r][c] = q[r][c] * scale[r]`.
        I8 = 2, "int8";
    }
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
            DType::I8 => 1,
        }
    }
}

coded_enum! {
    /// What a model consumes at each step (`input.kind`).
    pub enum InputCode {
        /// Token ids (`"tokens"`).
        Tokens = 0, "tokens";
        /// f32 frames (`"frames"`).
        Frames = 1, "frames";
    }
}

coded_enum! {
    /// The kind of a block (`blocks[i].kind`).
    pub enum BlockKind {
        /// `nn.LSTM` layers.
        Lstm = 1, "lstm";
        /// `nn.GRU` layers.
        Gru = 2, "gru";
        /// Causal multi-head attention over a window, with an optional FFN.
        Attention = 3, "attention";
    }
}

coded_enum! {
    /// Feed-forward activation of an attention block (`blocks[i].activation`).
    pub enum Activation {
        /// Exact erf GELU (`nn.GELU()`).
        Gelu = 0, "gelu";
        /// `nn.GELU(approximate="tanh")`.
        GeluTanh = 1, "gelu_tanh";
        /// `nn.ReLU()`.
        Relu = 2, "relu";
        /// `nn.SiLU()`.
        Silu = 3, "silu";
    }
}

coded_enum! {
    /// The module of every norm in a model (top-level `norm_kind`).
    pub enum NormKind {
        /// `nn.LayerNorm` (weight and bias).
        Layer = 0, "layer";
        /// `nn.RMSNorm` (weight only).
        Rms = 1, "rms";
    }
}

coded_enum! {
    /// Positions in an attention block (`blocks[i].pos`).
    pub enum PosKind {
        /// No positional encoding.
        None = 0, "none";
        /// Rotary embedding of q and k ("rotate half").
        Rope = 1, "rope";
        /// ALiBi: a per-head linear bias on the distance `t − j`.
        Alibi = 2, "alibi";
    }
}

/// What a model consumes at each step, with its width.
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

impl InputKind {
    /// The stored code.
    pub const fn code(self) -> InputCode {
        match self {
            InputKind::Tokens { .. } => InputCode::Tokens,
            InputKind::Frames { .. } => InputCode::Frames,
        }
    }

    /// Vocabulary size or frame width.
    pub const fn dim(self) -> usize {
        match self {
            InputKind::Tokens { vocab } => vocab,
            InputKind::Frames { dim } => dim,
        }
    }

    /// From the stored code and width.
    pub const fn new(code: InputCode, dim: usize) -> Self {
        match code {
            InputCode::Tokens => InputKind::Tokens { vocab: dim },
            InputCode::Frames => InputKind::Frames { dim },
        }
    }
}

/// Whether a tensor is a weight matrix (stored in the model's weight type) or a vector (biases
/// and norm parameters, always f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRole {
    /// `[rows, cols]`, stored as the weight type.
    Matrix,
    /// `[cols]` (`rows` = 1), stored as f32.
    Vector,
    /// A bias the model does not have (§6.5 of the contract): absent from the model file,
    /// stored in the blob as an f32 vector of zeros.
    AbsentBias,
    /// A table the converter computes (not in the model file), stored as an f32 vector.
    Table,
    /// A parameter of the integer-only mode (`docs/INTEGER.md`), computed by the converter from
    /// the weights and the calibrated scales: `[cols]` 32-bit words (storage code
    /// [`crate::format::INT_CODE`]); which one is given by its [`IntPart`].
    Int(IntPart),
}

/// What an integer-mode parameter tensor ([`TensorRole::Int`]) of a module holds. Its
/// [`TensorName`] is the module's (a matrix's for [`IntPart::Rq`] and [`IntPart::Bias`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IntPart {
    /// `[rows + 1]`: the requantization of the matrix's exact sums
    /// ([`crate::kernels::integer::Requant`]): each row's multiplier `m`, then the matrix's
    /// shift (`0..=62`).
    Rq,
    /// `[rows]`: the matrix's bias on its accumulator grid (`round(b / (s_w[r] · s_in))`).
    Bias,
    /// `[2·W + 3]`: an integer LayerNorm / RMSNorm ([`crate::kernels::integer::norm_i8`]):
    /// multipliers `[W]`, offsets `[W]`, the shift, and ε on the squared input grid (two words,
    /// low first).
    Norm,
    /// `[2·n]`: `n` requantizations `(m, shift)` of one block's fixed sites (the block kind's
    /// file lists them).
    Requant,
    /// `[window · D]`: the RoPE cosines and sines of [`TensorRole::Table`] in Q14.
    Rope,
    /// `[heads]`: the ALiBi slopes in Q16.
    Alibi,
    /// `[64]`: a 256-entry int8 table (an FFN activation from its input grid to its output
    /// grid), four entries per word, indexed by the input byte (`q as u8`).
    Lut,
    /// `[1]`: an f32 scale (bits) at the API boundary: the frame grid of `input`, the logit
    /// grid of `head`. Only the f32 entry points read it.
    Scale,
}

impl IntPart {
    /// The suffix after the module name in messages (`blocks.0.lstm.weight_ih_l0:rq`).
    pub const fn suffix(self) -> &'static str {
        match self {
            IntPart::Rq => "rq",
            IntPart::Bias => "bias_q",
            IntPart::Norm => "norm_q",
            IntPart::Requant => "requant",
            IntPart::Rope => "rope_q14",
            IntPart::Alibi => "alibi_q16",
            IntPart::Lut => "lut",
            IntPart::Scale => "scale",
        }
    }
}

/// A tensor's contract name: `[blocks.{block}.]{module}.{param}[{layer}]`, e.g.
/// `blocks.0.lstm.weight_ih_l1` or `head.bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorName {
    /// The block index, for block tensors.
    pub block: Option<usize>,
    /// The module path (`lstm`, `attn.out_proj`, `norm_f`, …).
    pub module: &'static str,
    /// The parameter (`weight`, `bias`, `weight_ih_l`, …).
    pub param: &'static str,
    /// The layer suffix of stacked recurrent layers.
    pub layer: Option<usize>,
}

impl TensorName {
    /// A top-level tensor (`module.param`).
    pub const fn top(module: &'static str, param: &'static str) -> Self {
        TensorName {
            block: None,
            module,
            param,
            layer: None,
        }
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = self.block {
            write!(f, "blocks.{b}.")?;
        }
        write!(f, "{}.{}", self.module, self.param)?;
        if let Some(k) = self.layer {
            write!(f, "{k}")?;
        }
        Ok(())
    }
}

/// One entry of the tensor plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSpec {
    /// Contract name.
    pub name: TensorName,
    /// Matrix or vector.
    pub role: TensorRole,
    /// Rows (1 for a vector).
    pub rows: usize,
    /// Columns (the length of a vector).
    pub cols: usize,
}

/// Hands out the tensors of a plan in order. The plan functions (the model's [`input`],
/// [`tail`], and each block kind's) call it once per tensor; its three implementations are the
/// converter's collector (names and shapes), the runtime's validator ([`crate::Model::from_bytes`])
/// and the runtime's step-time reader, so the order and shapes are written in one place.
pub trait TensorSource<'a> {
    /// The next tensor, a matrix `[rows, cols]` in the weight type.
    fn mat(&mut self, name: TensorName, rows: usize, cols: usize) -> Mat<'a>;
    /// The next tensor, an f32 vector `[len]`.
    fn vector(&mut self, name: TensorName, len: usize) -> &'a [f32];
    /// The next tensor, a bias `[len]` (f32), which the model has if `present` and which is
    /// stored as zeros otherwise.
    fn bias(&mut self, name: TensorName, len: usize, present: bool) -> &'a [f32] {
        let _ = present;
        self.vector(name, len)
    }
    /// The next tensor, an f32 table `[len]` computed by the converter.
    fn table(&mut self, name: TensorName, len: usize) -> &'a [f32] {
        self.vector(name, len)
    }
    /// Whether the plan is the integer-only mode's ([`crate::format::FLAG_INTEGER`]).
    fn integer(&self) -> bool;
    /// The next tensor, an integer-mode parameter `[len]` of module `name` (i32 words).
    fn ints(&mut self, name: TensorName, part: IntPart, len: usize) -> &'a [i32];
}

/// A matrix of the integer step with its requantization and bias ([`IntPart::Rq`],
/// [`IntPart::Bias`]) — read in this order by [`int_mat`].
pub fn int_mat<'a>(
    t: &mut impl TensorSource<'a>,
    name: TensorName,
    rows: usize,
    cols: usize,
) -> crate::kernels::integer::IntMat<'a> {
    crate::kernels::integer::IntMat {
        w: t.mat(name, rows, cols),
        rq: t.ints(name, IntPart::Rq, rows + 1),
        bias: t.ints(name, IntPart::Bias, rows),
    }
}

/// An empty matrix view of the right shape (what a collector or a failed check returns).
pub const fn empty_mat<'a>(rows: usize, cols: usize) -> Mat<'a> {
    Mat {
        rows,
        cols,
        data: MatData::F32(&[]),
    }
}

/// Model-level configuration the plan depends on (the blob header, decoded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelDims {
    /// Input kind and width.
    pub input: InputKind,
    /// Width after the input layer.
    pub d_model: usize,
    /// Logits per step.
    pub output_dim: usize,
    /// A final norm precedes the head.
    pub final_norm: bool,
    /// The module of every norm.
    pub norm_kind: NormKind,
    /// The model has `input.bias` (frames input).
    pub input_bias: bool,
    /// The model has `head.bias`.
    pub head_bias: bool,
    /// The final LayerNorm has `norm_f.bias`.
    pub norm_f_bias: bool,
}

/// Norm parameters `[W]`: `module.weight`, and for a LayerNorm `module.bias` (zeros when the
/// LayerNorm has none).
#[derive(Debug, Clone, Copy)]
pub struct Norm<'a> {
    /// LayerNorm or RMSNorm.
    pub kind: NormKind,
    /// Scale `[W]`.
    pub w: &'a [f32],
    /// Shift `[W]` (LayerNorm; empty for RMSNorm).
    pub b: &'a [f32],
}

impl<'a> Norm<'a> {
    /// Reads `module.weight`, and for a LayerNorm `module.bias` (`bias`: whether the model has
    /// it), `[width]` each.
    pub fn read(
        t: &mut impl TensorSource<'a>,
        block: Option<usize>,
        module: &'static str,
        width: usize,
        kind: NormKind,
        bias: bool,
    ) -> Self {
        let name = |param| TensorName {
            block,
            module,
            param,
            layer: None,
        };
        let w = t.vector(name("weight"), width);
        let b = match kind {
            NormKind::Layer => t.bias(name("bias"), width, bias),
            NormKind::Rms => &[],
        };
        Norm { kind, w, b }
    }

    /// `out = norm(x)` with epsilon `eps`. `x, out: [W]`.
    pub fn apply(&self, x: &[f32], eps: f32, out: &mut [f32]) {
        match self.kind {
            NormKind::Layer => crate::kernels::layer_norm(x, self.w, self.b, eps, out),
            NormKind::Rms => crate::kernels::rms_norm(x, self.w, eps, out),
        }
    }
}

/// The input layer's weights.
#[derive(Debug, Clone, Copy)]
pub enum InputWeights<'a> {
    /// `embed.weight [vocab, d_model]`.
    Tokens {
        /// The embedding table.
        embed: Mat<'a>,
    },
    /// `input.weight [d_model, dim]`, `input.bias [d_model]`.
    Frames {
        /// The projection.
        w: Mat<'a>,
        /// Its bias.
        b: &'a [f32],
    },
}

/// Reads the input layer's tensors (plan step 1).
pub fn input<'a>(dims: &ModelDims, t: &mut impl TensorSource<'a>) -> InputWeights<'a> {
    let d = dims.d_model;
    match dims.input {
        InputKind::Tokens { vocab } => InputWeights::Tokens {
            embed: t.mat(TensorName::top("embed", "weight"), vocab, d),
        },
        InputKind::Frames { dim } => InputWeights::Frames {
            w: t.mat(TensorName::top("input", "weight"), d, dim),
            b: t.bias(TensorName::top("input", "bias"), d, dims.input_bias),
        },
    }
}

/// The final norm and the head.
#[derive(Debug, Clone, Copy)]
pub struct TailWeights<'a> {
    /// `norm_f [W]`, if the model has a final norm.
    pub norm: Option<Norm<'a>>,
    /// `head.weight [output_dim, W]`.
    pub head: Mat<'a>,
    /// `head.bias [output_dim]`.
    pub bias: &'a [f32],
}

/// Reads the final norm and head (plan step 3) for a last block output of `width`.
pub fn tail<'a>(dims: &ModelDims, width: usize, t: &mut impl TensorSource<'a>) -> TailWeights<'a> {
    let out = dims.output_dim;
    TailWeights {
        norm: dims
            .final_norm
            .then(|| Norm::read(t, None, "norm_f", width, dims.norm_kind, dims.norm_f_bias)),
        head: t.mat(TensorName::top("head", "weight"), out, width),
        bias: t.bias(TensorName::top("head", "bias"), out, dims.head_bias),
    }
}

/// The input layer of the integer step.
#[derive(Debug, Clone, Copy)]
pub enum IntInput<'a> {
    /// `embed.weight [vocab, d_model]` and its per-row requantization onto the residual grid.
    Tokens {
        /// The embedding table (int8).
        embed: Mat<'a>,
        /// `[vocab + 1]` ([`IntPart::Rq`]).
        rq: &'a [i32],
    },
    /// `input.weight [d_model, dim]` on the int8 frame grid.
    Frames {
        /// The projection, its requantization onto the residual grid and its bias.
        w: crate::kernels::integer::IntMat<'a>,
        /// `[1]`: the frame grid (f32 bits), used by [`crate::Session::step_frame`].
        scale: &'a [i32],
    },
}

/// Reads the input layer's tensors of the integer plan.
pub fn input_int<'a>(dims: &ModelDims, t: &mut impl TensorSource<'a>) -> IntInput<'a> {
    let d = dims.d_model;
    match dims.input {
        InputKind::Tokens { vocab } => {
            let name = TensorName::top("embed", "weight");
            IntInput::Tokens {
                embed: t.mat(name, vocab, d),
                rq: t.ints(name, IntPart::Rq, vocab + 1),
            }
        }
        InputKind::Frames { dim } => IntInput::Frames {
            w: int_mat(t, TensorName::top("input", "weight"), d, dim),
            scale: t.ints(TensorName::top("input", "weight"), IntPart::Scale, 1),
        },
    }
}

/// The final norm and the head of the integer step.
#[derive(Debug, Clone, Copy)]
pub struct IntTail<'a> {
    /// `norm_f` ([`IntPart::Norm`]) with a final norm, else the requantization of the residual
    /// stream onto the head's input grid ([`IntPart::Requant`], `[2]`).
    pub norm: &'a [i32],
    /// `head.weight` with its requantization onto the logit grid and its bias.
    pub head: crate::kernels::integer::IntMat<'a>,
    /// `[1]`: the logit grid (f32 bits), used by the f32 entry points.
    pub scale: &'a [i32],
}

/// Reads the final norm and head of the integer plan for a last block output of `width`.
pub fn tail_int<'a>(dims: &ModelDims, width: usize, t: &mut impl TensorSource<'a>) -> IntTail<'a> {
    let head = TensorName::top("head", "weight");
    IntTail {
        norm: if dims.final_norm {
            t.ints(
                TensorName::top("norm_f", "weight"),
                IntPart::Norm,
                2 * width + 3,
            )
        } else {
            t.ints(head, IntPart::Requant, 2)
        },
        head: int_mat(t, head, dims.output_dim, width),
        scale: t.ints(head, IntPart::Scale, 1),
    }
}

/// Walks the whole plan: input, each block's tensors, tail. `blocks` yields the specs in order
/// (their `in_width`s chain from `d_model`).
pub fn walk<'a, T: TensorSource<'a>>(
    dims: &ModelDims,
    blocks: impl IntoIterator<Item = BlockSpec>,
    t: &mut T,
) {
    let integer = t.integer();
    if integer {
        input_int(dims, t);
    } else {
        input(dims, t);
    }
    let mut width = dims.d_model;
    for (i, b) in blocks.into_iter().enumerate() {
        b.plan(i, t);
        width = b.out_width();
    }
    if integer {
        tail_int(dims, width, t);
    } else {
        tail(dims, width, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for &d in DType::ALL {
            assert_eq!(DType::from_u8(d.code()), Some(d));
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        for &a in Activation::ALL {
            assert_eq!(Activation::from_u8(a.code()), Some(a));
            assert_eq!(Activation::from_name(a.name()), Some(a));
        }
        for &k in BlockKind::ALL {
            assert_eq!(BlockKind::from_u8(k.code()), Some(k));
        }
        assert_eq!(DType::from_u8(3), None);
        assert_eq!(BlockKind::from_u8(0), None);
    }

    #[test]
    fn names_print_as_a_list() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(DType::names().to_string(), "f32, f16 or int8");
        let n = TensorName {
            block: Some(2),
            module: "lstm",
            param: "weight_hh_l",
            layer: Some(1),
        };
        assert_eq!(n.to_string(), "blocks.2.lstm.weight_hh_l1");
        assert_eq!(TensorName::top("head", "bias").to_string(), "head.bias");
    }
}
