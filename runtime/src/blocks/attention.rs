//! The `attention` block kind: pre-norm causal multi-head self-attention over the last `window`
//! steps (a KV cache in a ring buffer), a residual connection, and an optional pre-norm FFN with
//! its own residual.
//!
//! Tensors (W = width, D = W / heads the head width, KW = kv_heads · D, F = ffn_dim):
//! `norm1.weight [W]` (and `norm1.bias [W]` for a LayerNorm); then either the packed
//! `attn.in_proj_weight [3W, W]`, `attn.in_proj_bias [3W]` or, with [`FLAG_SPLIT`],
//! `attn.q_proj.weight [W, W]`, `attn.q_proj.bias [W]`, `attn.k_proj.weight [KW, W]`,
//! `attn.k_proj.bias [KW]`, `attn.v_proj.weight [KW, W]`, `attn.v_proj.bias [KW]`; then
//! `attn.out_proj.weight [W, W]`, `attn.out_proj.bias [W]`; with RoPE the table
//! `attn.rope_cos_sin [window · D]` (computed by the converter, [`AttentionSpec::rope_value`]);
//! if F > 0: `norm2.weight [W]` (and `norm2.bias`), `ffn.0.weight [F, W]`, `ffn.0.bias [F]`,
//! `ffn.2.weight [W, F]`, `ffn.2.bias [W]`. A bias the model does not have is stored as zeros
//! (its bit in [`BlockEntry::no_bias`]).
//!
//! State ([`KvGeometry`]): a ring header `[next slot, filled rows]` (both always `< window`, so a
//! stream may run forever), then `K` and `V` `[window, KW]` in the KV type, then for int8 KV one
//! f32 scale per cached row and KV head for `K` and for `V` (`[window, kv_heads]` each). Keys are
//! cached **unrotated**: with RoPE, a step rotates the query by each cached row's distance
//! `t − j < window` instead (`(R_t q)·(R_j k) = (R_{t−j} q)·k`), so nothing in the state depends
//! on the absolute position and a stream may run forever with the same precision.

use core::fmt;

use half::f16;

use crate::blocks::{f32s_finite, Probe, Scratch, ScratchNeed, Site, StepCtx, SITE_X};
use crate::error::Error;
use crate::format::BlockEntry;
use crate::kernels::integer::{lut_i8, norm_i8, rq_at, sat_i32, sat_i8, softmax_q15, IntMat};
use crate::kernels::{self, all_finite, matvec, quantize_i8, rope_rotate, Mat};
use crate::limits::MAX_DIM;
use crate::schema::{
    dim, int_mat, Activation, BlockKind, DType, IntPart, Norm, NormKind, PosKind, TensorName,
    TensorSource,
};
use crate::slices::{copy, head, head_mut, le_u16, range, range_mut, split, split_mut};

/// [`BlockEntry::flags`] bit: q, k and v come from separate `q_proj`, `k_proj`, `v_proj`.
pub const FLAG_SPLIT: u8 = 1;
/// [`BlockEntry::no_bias`] bit: no `q_proj.bias` (or, packed, no `in_proj_bias`).
pub const NO_BIAS_Q: u32 = 1;
/// [`BlockEntry::no_bias`] bit: no `k_proj.bias` (packed: with [`NO_BIAS_Q`]).
pub const NO_BIAS_K: u32 = 2;
/// [`BlockEntry::no_bias`] bit: no `v_proj.bias` (packed: with [`NO_BIAS_Q`]).
pub const NO_BIAS_V: u32 = 4;
/// [`BlockEntry::no_bias`] bit: no `out_proj.bias` (packed: with [`NO_BIAS_Q`]).
pub const NO_BIAS_OUT: u32 = 8;
/// [`BlockEntry::no_bias`] bit: no `ffn.0.bias`.
pub const NO_BIAS_FFN0: u32 = 16;
/// [`BlockEntry::no_bias`] bit: no `ffn.2.bias`.
pub const NO_BIAS_FFN2: u32 = 32;
/// [`BlockEntry::no_bias`] bit: no `norm1.bias` (a LayerNorm).
pub const NO_BIAS_NORM1: u32 = 64;
/// [`BlockEntry::no_bias`] bit: no `norm2.bias` (a LayerNorm).
pub const NO_BIAS_NORM2: u32 = 128;

/// The modules of [`BlockEntry::no_bias`], bit by bit (for `runnel inspect`).
const BIAS_MODULES: [(u32, &str); 8] = [
    (NO_BIAS_Q, "q_proj"),
    (NO_BIAS_K, "k_proj"),
    (NO_BIAS_V, "v_proj"),
    (NO_BIAS_OUT, "out_proj"),
    (NO_BIAS_FFN0, "ffn.0"),
    (NO_BIAS_FFN2, "ffn.2"),
    (NO_BIAS_NORM1, "norm1"),
    (NO_BIAS_NORM2, "norm2"),
];

/// Calibration sites of an attention block (docs/INTEGER.md), each an int8 grid in the integer
/// mode: the outputs of `norm1`, of the q, k and v projections, of the heads (the input of
/// `out_proj`), of `norm2`, and of `ffn.0` before and after the activation.
pub const SITES: [&str; 8] = [
    "norm1", "q", "k", "v", "att", "norm2", "ffn.pre", "ffn.post",
];
const SITE_NORM1: &str = SITES[0];
const SITE_Q: &str = SITES[1];
const SITE_K: &str = SITES[2];
const SITE_V: &str = SITES[3];
const SITE_ATT: &str = SITES[4];
const SITE_NORM2: &str = SITES[5];
const SITE_FFN_PRE: &str = SITES[6];
const SITE_FFN_POST: &str = SITES[7];
/// The site whose int8 grid has an offset (the FFN activation's output, which is one-sided):
/// `v = (q − zero) · scale`; `ffn.2`'s bias absorbs `−zero · Σ w`.
pub const SITE_OFFSET: &str = SITE_FFN_POST;

/// Index in the block's `attn.softmax` requantizations ([`IntPart::Requant`], `[2·2]`): the
/// exact `q·k` sums onto the Q5.10 logits (`s_q · s_k / √D · 2^10`, with RoPE also `/ 2^14`).
pub const RQ_SCORE: usize = 0;
/// Index in `attn.softmax`: the Q0.15-weighted sums of values onto the heads' int8 grid
/// (`s_v / (2^15 · s_att)`).
pub const RQ_HEADS: usize = 1;

/// A causal sliding-window attention block.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AttentionSpec {
    /// Width (input = output).
    pub width: usize,
    /// Query heads (divide `width`).
    pub heads: usize,
    /// Key/value heads (divide `heads`; `heads` unless [`Self::split`]).
    pub kv_heads: usize,
    /// Cached steps, this one included (≥ 1).
    pub window: usize,
    /// FFN width (0: no FFN).
    pub ffn_dim: usize,
    /// FFN activation.
    pub activation: Activation,
    /// Positions.
    pub pos: PosKind,
    /// RoPE base θ (with [`PosKind::Rope`]; 0 otherwise).
    pub rope_theta: f32,
    /// Separate `q_proj`, `k_proj`, `v_proj` instead of `in_proj_weight`.
    pub split: bool,
    /// The module of `norm1` and `norm2` (the model's `norm_kind`).
    pub norm_kind: NormKind,
    /// Modules without bias ([`NO_BIAS_Q`] …).
    pub no_bias: u32,
}

impl fmt::Display for AttentionSpec {
    /// `attention width 96, 4 heads, window 48, ffn 192 gelu` (and `2 kv heads`, `rope θ
    /// 10000`, `alibi`, `q/k/v_proj`, `rms norm`, `no bias: …` where they apply).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attention width {}, {} heads", self.width, self.heads)?;
        if self.kv_heads != self.heads {
            write!(f, " ({} kv)", self.kv_heads)?;
        }
        write!(f, ", window {}", self.window)?;
        match self.pos {
            PosKind::None => {}
            PosKind::Rope => write!(f, ", rope θ {}", self.rope_theta)?,
            PosKind::Alibi => f.write_str(", alibi")?,
        }
        if self.ffn_dim > 0 {
            write!(f, ", ffn {} {}", self.ffn_dim, self.activation)?;
        }
        if self.split {
            f.write_str(", q/k/v_proj")?;
        }
        if self.norm_kind == NormKind::Rms {
            f.write_str(", rms norm")?;
        }
        let mut first = true;
        for (bit, name) in BIAS_MODULES {
            if self.no_bias & bit != 0 {
                let name = if !self.split && bit == NO_BIAS_Q {
                    "in_proj"
                } else if !self.split && (bit == NO_BIAS_K || bit == NO_BIAS_V) {
                    continue;
                } else {
                    name
                };
                f.write_str(if first { ", no bias: " } else { ", " })?;
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The q/k/v projections.
#[derive(Debug, Clone, Copy)]
enum Qkv<'a> {
    /// `in_proj_weight [3W, W]`, `in_proj_bias [3W]`.
    Packed { w: Mat<'a>, b: &'a [f32] },
    /// `q_proj [W, W]`, `k_proj [KW, W]`, `v_proj [KW, W]` and their biases.
    Split {
        q: Mat<'a>,
        qb: &'a [f32],
        k: Mat<'a>,
        kb: &'a [f32],
        v: Mat<'a>,
        vb: &'a [f32],
    },
}

/// The block's weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weights<'a> {
    norm1: Norm<'a>, // [W]
    qkv: Qkv<'a>,
    out_proj: Mat<'a>,   // [W, W]
    out_bias: &'a [f32], // [W]
    rope: &'a [f32],     // [window * D] with RoPE, else empty
    ffn: Option<Ffn<'a>>,
}

#[derive(Debug, Clone, Copy)]
struct Ffn<'a> {
    norm2: Norm<'a>, // [W]
    w1: Mat<'a>,     // [F, W]
    b1: &'a [f32],   // [F]
    w2: Mat<'a>,     // [W, F]
    b2: &'a [f32],   // [W]
}

/// The q/k/v projections of the integer mode.
#[derive(Debug, Clone, Copy)]
enum IntQkv<'a> {
    /// `in_proj_weight [3W, W]`: rows onto the q, k and v grids.
    Packed(IntMat<'a>),
    /// `q_proj [W, W]`, `k_proj [KW, W]`, `v_proj [KW, W]`.
    Split {
        q: IntMat<'a>,
        k: IntMat<'a>,
        v: IntMat<'a>,
    },
}

/// The block's weights in the integer mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntWeights<'a> {
    norm1: &'a [i32], // [2W + 3]
    qkv: IntQkv<'a>,
    out_proj: IntMat<'a>, // [W, W] → residual grid
    softmax: &'a [i32],   // [2·2]: RQ_SCORE, RQ_HEADS
    rope: &'a [i32],      // [window · D] Q14 with RoPE, else empty
    alibi: &'a [i32],     // [heads] Q16 with ALiBi, else empty
    ffn: Option<IntFfn<'a>>,
}

#[derive(Debug, Clone, Copy)]
struct IntFfn<'a> {
    norm2: &'a [i32], // [2W + 3]
    w1: IntMat<'a>,   // [F, W] → ffn.pre grid
    lut: &'a [i32],   // [64]: ffn.pre → ffn.post
    w2: IntMat<'a>,   // [W, F] → residual grid
}

/// Where an attention block's state lives inside its slice of the arena (words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvGeometry {
    /// Words of each of the `K` and `V` caches (`[window, KW]` in the KV type, rounded up).
    pub cache: usize,
    /// f32 scales of each of `K` and `V` (`[window, kv_heads]` for int8, else 0).
    pub scales: usize,
    /// Ring header (2) + both caches + both scale arrays.
    pub total: usize,
}

/// The ALiBi slope of head `h` of `n` (the paper's, in its order, as the model contract §6.3
/// gives them): `2^(−8(h+1)/n)` for a power of two `n`; otherwise, with `c` the largest power
/// of two below `n`, the first `c` slopes of `c` heads and then every other slope of `2c` heads.
pub fn alibi_slope(h: usize, n: usize) -> f32 {
    let n = n.max(1);
    let c = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let e = if h < c {
        8.0 * (h + 1) as f32 / c as f32
    } else {
        8.0 * (2 * (h - c) + 1) as f32 / (2 * c) as f32
    };
    // f32 (no soft-double code on the MCUs); exact whenever the exponent is an integer.
    libm::exp2f(-e)
}

/// Moves a KV ring (`[next slot, filled rows]`, both kept below / at most `window`) on by one
/// step: returns the slot this step writes and the rows filled after it.
#[inline(always)]
fn advance(ring: &mut [u32; 2], window: usize) -> (usize, usize) {
    let next = if (ring[0] as usize) < window {
        ring[0] as usize
    } else {
        0
    };
    let filled = (ring[1] as usize + 1).min(window);
    ring[0] = if next + 1 < window {
        next as u32 + 1
    } else {
        0
    };
    ring[1] = filled as u32;
    (next, filled)
}

/// The distance `t − j` of ring slot `slot` from the slot `now` written at this step, both
/// below `window`.
#[inline(always)]
fn distance(now: usize, slot: usize, window: usize) -> usize {
    if slot <= now {
        now - slot
    } else {
        now + (window - slot)
    }
}

impl AttentionSpec {
    /// Decodes and validates the kind-specific fields of an entry (`in_width` already checked).
    pub(crate) fn decode(e: &BlockEntry, norm_kind: NormKind) -> Result<Self, Error> {
        let width = e.in_width as usize;
        let hidden = dim(e.hidden, "block hidden")?;
        if e.num_layers != 1 || e.flags & !FLAG_SPLIT != 0 || hidden != width || e.proj_size != 0 {
            return Err(Error::Malformed {
                what: "attention block fields",
            });
        }
        if e.heads == 0 || width % e.heads as usize != 0 {
            return Err(Error::Malformed {
                what: "attention heads",
            });
        }
        let heads = e.heads as usize;
        let split = e.flags & FLAG_SPLIT != 0;
        let kv_heads = e.kv_heads as usize;
        if kv_heads == 0 || heads % kv_heads != 0 || (!split && kv_heads != heads) {
            return Err(Error::Malformed { what: "kv_heads" });
        }
        if e.window == 0 {
            return Err(Error::Malformed {
                what: "attention window",
            });
        }
        if e.ffn_dim as usize > MAX_DIM {
            return Err(Error::Malformed { what: "ffn_dim" });
        }
        let pos = PosKind::from_u8(e.pos).ok_or(Error::Malformed { what: "pos" })?;
        let theta = e.rope_theta;
        let theta_ok = match pos {
            // The head width must be even, and the table `window · D` must fit.
            PosKind::Rope => {
                theta.is_finite()
                    && theta > 0.0
                    && (width / heads) % 2 == 0
                    && (e.window as usize).checked_mul(width / heads).is_some()
            }
            PosKind::None | PosKind::Alibi => theta.to_bits() == 0,
        };
        if !theta_ok {
            return Err(Error::Malformed { what: "rope" });
        }
        // Bias bits only for modules the block has; packed projections lose their biases
        // together (`nn.MultiheadAttention(bias=False)`).
        let mut allowed = NO_BIAS_Q | NO_BIAS_K | NO_BIAS_V | NO_BIAS_OUT;
        if norm_kind == NormKind::Layer {
            allowed |= NO_BIAS_NORM1;
        }
        if e.ffn_dim > 0 {
            allowed |= NO_BIAS_FFN0 | NO_BIAS_FFN2;
            if norm_kind == NormKind::Layer {
                allowed |= NO_BIAS_NORM2;
            }
        }
        let packed = e.no_bias & (NO_BIAS_Q | NO_BIAS_K | NO_BIAS_V | NO_BIAS_OUT);
        if e.no_bias & !allowed != 0
            || (!split
                && packed != 0
                && packed != (NO_BIAS_Q | NO_BIAS_K | NO_BIAS_V | NO_BIAS_OUT))
        {
            return Err(Error::Malformed { what: "no_bias" });
        }
        Ok(AttentionSpec {
            width,
            heads,
            kv_heads,
            window: e.window as usize,
            ffn_dim: e.ffn_dim as usize,
            activation: Activation::from_u8(e.activation)
                .ok_or(Error::Malformed { what: "activation" })?,
            pos,
            rope_theta: theta,
            split,
            norm_kind,
            no_bias: e.no_bias,
        })
    }

    /// The block-table entry (without `first_tensor`).
    pub(crate) fn encode(&self) -> BlockEntry {
        BlockEntry {
            kind: BlockKind::Attention.code(),
            flags: if self.split { FLAG_SPLIT } else { 0 },
            activation: self.activation.code(),
            pos: self.pos.code(),
            num_layers: 1,
            in_width: self.width as u32,
            hidden: self.width as u32,
            heads: self.heads as u32,
            window: self.window as u32,
            ffn_dim: self.ffn_dim as u32,
            first_tensor: 0,
            kv_heads: self.kv_heads as u32,
            proj_size: 0,
            rope_theta: self.rope_theta,
            no_bias: self.no_bias,
        }
    }

    /// Head width `D = width / heads`.
    pub fn head_dim(&self) -> usize {
        self.width / self.heads.max(1)
    }

    /// Width of the cached keys (and values) of one step: `kv_heads · D`.
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// Entry `i` of the RoPE table `attn.rope_cos_sin` (`[window · D]`): row `o` (a distance
    /// `t − j`) holds `cos(o·ω_d)` for `d < D/2`, then `sin(o·ω_d)`, `ω_d = θ^(−2d/D)`. Computed
    /// in f64 and rounded once, so every distance is as exact as the first.
    pub fn rope_value(&self, i: usize) -> f32 {
        let d_head = self.head_dim().max(2);
        let (o, r) = (i / d_head, i % d_head);
        let half = d_head / 2;
        let d = r % half;
        let omega = libm::pow(self.rope_theta as f64, -2.0 * d as f64 / d_head as f64);
        let a = o as f64 * omega;
        (if r < half { libm::cos(a) } else { libm::sin(a) }) as f32
    }

    fn has_bias(&self, bit: u32) -> bool {
        self.no_bias & bit == 0
    }

    /// Every tensor of the block, in order.
    pub(crate) fn weights<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) -> Weights<'a> {
        let w = self.width;
        let kw = self.kv_width();
        let f = self.ffn_dim;
        let name = |module, param| TensorName {
            block: Some(index),
            module,
            param,
            layer: None,
        };
        let norm = |t: &mut _, module, bit| {
            Norm::read(
                t,
                Some(index),
                module,
                w,
                self.norm_kind,
                self.has_bias(bit),
            )
        };
        Weights {
            norm1: norm(t, "norm1", NO_BIAS_NORM1),
            qkv: if self.split {
                Qkv::Split {
                    q: t.mat(name("attn.q_proj", "weight"), w, w),
                    qb: t.bias(name("attn.q_proj", "bias"), w, self.has_bias(NO_BIAS_Q)),
                    k: t.mat(name("attn.k_proj", "weight"), kw, w),
                    kb: t.bias(name("attn.k_proj", "bias"), kw, self.has_bias(NO_BIAS_K)),
                    v: t.mat(name("attn.v_proj", "weight"), kw, w),
                    vb: t.bias(name("attn.v_proj", "bias"), kw, self.has_bias(NO_BIAS_V)),
                }
            } else {
                Qkv::Packed {
                    w: t.mat(name("attn", "in_proj_weight"), 3 * w, w),
                    b: t.bias(
                        name("attn", "in_proj_bias"),
                        3 * w,
                        self.has_bias(NO_BIAS_Q),
                    ),
                }
            },
            out_proj: t.mat(name("attn.out_proj", "weight"), w, w),
            out_bias: t.bias(name("attn.out_proj", "bias"), w, self.has_bias(NO_BIAS_OUT)),
            rope: match self.pos {
                PosKind::Rope => t.table(
                    name("attn", "rope_cos_sin"),
                    self.window.saturating_mul(self.head_dim()),
                ),
                PosKind::None | PosKind::Alibi => &[],
            },
            ffn: (f > 0).then(|| Ffn {
                norm2: norm(t, "norm2", NO_BIAS_NORM2),
                w1: t.mat(name("ffn.0", "weight"), f, w),
                b1: t.bias(name("ffn.0", "bias"), f, self.has_bias(NO_BIAS_FFN0)),
                w2: t.mat(name("ffn.2", "weight"), w, f),
                b2: t.bias(name("ffn.2", "bias"), w, self.has_bias(NO_BIAS_FFN2)),
            }),
        }
    }

    /// Every tensor of the block in the integer plan, in order: `norm1` ([`IntPart::Norm`]), the
    /// q/k/v matrices and `out_proj` (each with [`IntPart::Rq`] and [`IntPart::Bias`]),
    /// `attn.softmax` ([`IntPart::Requant`], [`RQ_SCORE`], [`RQ_HEADS`]), with RoPE
    /// `attn.rope_cos_sin` ([`IntPart::Rope`]), with ALiBi `attn.alibi` ([`IntPart::Alibi`]),
    /// and with an FFN `norm2`, `ffn.0.weight`, `ffn.activation` ([`IntPart::Lut`]),
    /// `ffn.2.weight`.
    pub(crate) fn int_weights<'a>(
        &self,
        index: usize,
        t: &mut impl TensorSource<'a>,
    ) -> IntWeights<'a> {
        let w = self.width;
        let kw = self.kv_width();
        let f = self.ffn_dim;
        let name = |module, param| TensorName {
            block: Some(index),
            module,
            param,
            layer: None,
        };
        let norm = |t: &mut _, module| {
            TensorSource::ints(t, name(module, "weight"), IntPart::Norm, 2 * w + 3)
        };
        IntWeights {
            norm1: norm(t, "norm1"),
            qkv: if self.split {
                IntQkv::Split {
                    q: int_mat(t, name("attn.q_proj", "weight"), w, w),
                    k: int_mat(t, name("attn.k_proj", "weight"), kw, w),
                    v: int_mat(t, name("attn.v_proj", "weight"), kw, w),
                }
            } else {
                IntQkv::Packed(int_mat(t, name("attn", "in_proj_weight"), 3 * w, w))
            },
            out_proj: int_mat(t, name("attn.out_proj", "weight"), w, w),
            softmax: t.ints(name("attn", "softmax"), IntPart::Requant, 4),
            rope: match self.pos {
                PosKind::Rope => t.ints(
                    name("attn", "rope_cos_sin"),
                    IntPart::Rope,
                    self.window.saturating_mul(self.head_dim()),
                ),
                PosKind::None | PosKind::Alibi => &[],
            },
            alibi: match self.pos {
                PosKind::Alibi => t.ints(name("attn", "alibi"), IntPart::Alibi, self.heads),
                PosKind::None | PosKind::Rope => &[],
            },
            ffn: (f > 0).then(|| IntFfn {
                norm2: norm(t, "norm2"),
                w1: int_mat(t, name("ffn.0", "weight"), f, w),
                lut: t.ints(name("ffn", "activation"), IntPart::Lut, 64),
                w2: int_mat(t, name("ffn.2", "weight"), w, f),
            }),
        }
    }

    /// Integer mode state words: the ring header (2), then `K` and `V` `[window, KW]` int8 with
    /// static scales (no per-row scales).
    pub fn int_state_words(&self) -> Option<usize> {
        let cache = self.window.checked_mul(self.kv_width())?.div_ceil(4);
        2usize.checked_add(cache.checked_mul(2)?)
    }

    /// The state layout for a KV cache of type `kv` (`None` if it overflows `usize`).
    pub fn kv_geometry(&self, kv: DType) -> Option<KvGeometry> {
        let cache = self
            .window
            .checked_mul(self.kv_width())?
            .checked_mul(kv.size())?
            .div_ceil(4);
        let scales = if kv == DType::I8 {
            self.window.checked_mul(self.kv_heads)?
        } else {
            0
        };
        let total = 2usize
            .checked_add(cache.checked_mul(2)?)?
            .checked_add(scales.checked_mul(2)?)?;
        Some(KvGeometry {
            cache,
            scales,
            total,
        })
    }

    /// Whether `st` is a state this block's steps can produce: ring counters below / at most
    /// `window`, finite keys, values and scales.
    pub(crate) fn check_state(&self, st: &[u8], kv: DType) -> bool {
        let Some(geo) = self.kv_geometry(kv) else {
            return false;
        };
        if !self.check_ring(st, Some(geo.total)) {
            return false;
        }
        let rest = crate::slices::tail(st, 8);
        let (caches, scales) = split(rest, 8 * geo.cache);
        let caches_finite = match kv {
            DType::F32 => f32s_finite(caches),
            DType::F16 => caches
                .chunks_exact(2)
                .all(|h| f16::from_bits(le_u16(h)).is_finite()),
            DType::I8 => true,
        };
        caches_finite && f32s_finite(scales)
    }

    /// Whether `st` is `words` words long and starts with ring counters below / at most
    /// `window`.
    pub(crate) fn check_ring(&self, st: &[u8], words: Option<usize>) -> bool {
        if words.map(|n| n * 4) != Some(st.len()) {
            return false;
        }
        let Some((ring, _)) = st.split_first_chunk::<8>() else {
            return false;
        };
        let [n0, n1, n2, n3, f0, f1, f2, f3] = *ring;
        let next = u32::from_le_bytes([n0, n1, n2, n3]) as usize;
        let filled = u32::from_le_bytes([f0, f1, f2, f3]) as usize;
        next < self.window && filled <= self.window
    }

    pub(crate) fn scratch(&self) -> ScratchNeed {
        let w = self.width;
        ScratchNeed {
            width: w,
            g: (w + 2 * self.kv_width()).max(self.ffn_dim),
            g2: w,
            p: self.window,
            q: w.max(self.ffn_dim),
        }
    }

    /// One step on `s.x[..width]`, in place. Returns whether the key and value it cached are
    /// finite (as computed, and as stored: f16 overflows beyond ±65504).
    ///
    /// Slices are taken with [`crate::slices`] (no panic path); on a validated model they have
    /// exactly the lengths written next to them.
    pub(crate) fn step(
        &self,
        index: usize,
        b: &Weights<'_>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        ctx: StepCtx,
        probe: &mut impl Probe,
    ) -> bool {
        let site = |name| Site {
            block: Some(index),
            name,
            layer: None,
        };
        let w = self.width;
        let heads = self.heads;
        let kv_heads = self.kv_heads.max(1);
        // `max(1)`: validation guarantees `heads` ≥ 1 dividing `w` and `kv_heads` dividing
        // `heads`; it keeps the divisions and the `chunks_exact` below total.
        let hd = (w / heads.max(1)).max(1); // head width
        let kw = kv_heads * hd; // cached width of one step
        let group = (heads / kv_heads).max(1); // query heads per KV head
        let window = self.window;
        let kv = ctx.kv;
        b.norm1.apply(head(s.x, w), ctx.eps, head_mut(s.u, w));
        probe.see(site(SITE_NORM1), head(s.u, w));
        let qkv = head_mut(s.g, w + 2 * kw); // [W + 2KW]: q | k | v
        match &b.qkv {
            Qkv::Packed { w: m, b: bias } => matvec(m, head(s.u, w), bias, qkv, s.q8),
            Qkv::Split {
                q,
                qb,
                k,
                kb,
                v,
                vb,
            } => {
                let (qo, rest) = split_mut(qkv, w);
                let (ko, vo) = split_mut(rest, kw);
                let u = head(s.u, w);
                matvec(q, u, qb, qo, s.q8);
                matvec(k, u, kb, ko, s.q8);
                matvec(v, u, vb, vo, s.q8);
            }
        }
        let (q, rest) = split(qkv, w); // [W]
        let (k, v) = split(rest, kw); // [KW] each
        probe.see(site(SITE_Q), q);
        probe.see(site(SITE_K), k);
        probe.see(site(SITE_V), v);

        // Validated in `Model::from_bytes`: the state fits, so `geo` exists and `st` holds it.
        let Some(geo) = self.kv_geometry(kv) else {
            return false;
        };
        let Some((ring, rest)) = head_mut(st, geo.total).split_first_chunk_mut::<2>() else {
            return false;
        };
        let ring: &mut [u32; 2] = bytemuck::cast_mut(ring); // [next slot, filled rows]
        let (next, filled) = advance(ring, window);
        let (kwds, rest) = split_mut(rest, geo.cache); // K [window, KW] in the KV type
        let (vwds, scales) = split_mut(rest, geo.cache); // V [window, KW]
        let (ks, vs) = split_mut(scales, geo.scales); // [window, kv_heads] each (int8 KV)
        let mut kc = Kv::view(kwds, kv);
        let mut vc = Kv::view(vwds, kv);
        kc.store(next, k, hd, range_mut(ks, next * kv_heads, kv_heads));
        vc.store(next, v, hd, range_mut(vs, next * kv_heads, kv_heads));
        let finite =
            all_finite(k) && all_finite(v) && kc.row_finite(next, kw) && vc.row_finite(next, kw);

        let inv_sqrt = 1.0 / libm::sqrtf(hd as f32);
        let p = head_mut(s.p, filled); // [filled]
        let att = head_mut(s.g2, w); // [W], the heads' outputs side by side
        let qr = head_mut(s.u, hd); // [D], a rotated query (RoPE)
        for (h, (qh, o)) in q.chunks_exact(hd).zip(att.chunks_exact_mut(hd)).enumerate() {
            let g = h / group; // the head's KV head
            let at = g * hd; // its columns in a cached row: [at, at + hd)
            let scale_of =
                |sc: &[f32], slot: usize| sc.get(slot * kv_heads + g).copied().unwrap_or(1.0);
            match self.pos {
                PosKind::None => {
                    for (slot, pv) in p.iter_mut().enumerate() {
                        *pv = kc.dot(slot * kw + at, qh, scale_of(ks, slot)) * inv_sqrt;
                    }
                }
                PosKind::Rope => {
                    for (slot, pv) in p.iter_mut().enumerate() {
                        let cs = range(b.rope, distance(next, slot, window) * hd, hd);
                        rope_rotate(qh, cs, qr);
                        *pv = kc.dot(slot * kw + at, qr, scale_of(ks, slot)) * inv_sqrt;
                    }
                }
                PosKind::Alibi => {
                    let m = alibi_slope(h, heads);
                    for (slot, pv) in p.iter_mut().enumerate() {
                        let dist = distance(next, slot, window) as f32;
                        *pv = kc.dot(slot * kw + at, qh, scale_of(ks, slot)) * inv_sqrt - m * dist;
                    }
                }
            }
            kernels::softmax(p);
            o.fill(0.0);
            for (slot, &pv) in p.iter().enumerate() {
                vc.axpy(slot * kw + at, pv, scale_of(vs, slot), o);
            }
        }
        probe.see(site(SITE_ATT), att);
        matvec(&b.out_proj, att, b.out_bias, head_mut(s.u, w), s.q8);
        for (x, &v) in head_mut(s.x, w).iter_mut().zip(head(s.u, w)) {
            *x += v;
        }
        if let Some(f) = &b.ffn {
            probe.see(SITE_X, head(s.x, w));
            let hidden = head_mut(s.g, f.w1.rows); // [F]
            f.norm2.apply(head(s.x, w), ctx.eps, head_mut(s.u, w));
            probe.see(site(SITE_NORM2), head(s.u, w));
            matvec(&f.w1, head(s.u, w), f.b1, hidden, s.q8);
            probe.see(site(SITE_FFN_PRE), hidden);
            self.activation.apply(hidden);
            probe.see(site(SITE_FFN_POST), hidden);
            matvec(&f.w2, hidden, f.b2, head_mut(s.u, w), s.q8);
            for (x, &v) in head_mut(s.x, w).iter_mut().zip(head(s.u, w)) {
                *x += v;
            }
        }
        finite
    }
}

impl AttentionSpec {
    /// One step of the integer mode (docs/INTEGER.md) on the residual stream `s.x` (i32
    /// `[width]`), in place; `st` is the integer state (ring header, `K` and `V` int8
    /// `[window, KW]`). No floating point.
    #[inline(never)]
    pub(crate) fn step_int(
        &self,
        b: &IntWeights<'_>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        rms: bool,
    ) {
        let w = self.width;
        let heads = self.heads;
        let kv_heads = self.kv_heads.max(1);
        let hd = (w / heads.max(1)).max(1); // head width
        let kw = kv_heads * hd;
        let group = (heads / kv_heads).max(1);
        let window = self.window;
        let x: &mut [i32] = bytemuck::cast_slice_mut(&mut *s.x); // [W] residual stream
        let u: &mut [i8] = head_mut(bytemuck::cast_slice_mut(&mut *s.u), w); // [W] int8
        let g: &mut [i32] = bytemuck::cast_slice_mut(&mut *s.g); // sums
        norm_i8(head(x, w), b.norm1, rms, u);

        let cache = window.saturating_mul(kw).div_ceil(4);
        let Some((ring, rest)) = st.split_first_chunk_mut::<2>() else {
            return;
        };
        let ring: &mut [u32; 2] = bytemuck::cast_mut(ring); // [next slot, filled rows]
        let (next, filled) = advance(ring, window);
        let (kwds, rest) = split_mut(rest, cache);
        // K [window, KW]; V transposed, [KW, window], so that a head's output is a row-sum
        // product over the slots
        let kc: &mut [i8] = bytemuck::cast_slice_mut(kwds);
        let vc: &mut [i8] = bytemuck::cast_slice_mut(head_mut(rest, cache));
        let q = head_mut(&mut *s.q8, w); // [W]
        match &b.qkv {
            IntQkv::Packed(m) => {
                let sums = head_mut(g, w + 2 * kw);
                m.sums(u, sums);
                let (sq, rest) = split(sums, w);
                let (sk, sv) = split(rest, kw);
                m.rows_to_i8(0, sq, q);
                m.rows_to_i8(w, sk, range_mut(kc, next * kw, kw));
                m.rows_to_column(w + kw, sv, vc, next, window);
            }
            IntQkv::Split { q: mq, k, v } => {
                mq.to_i8(u, head_mut(g, w), q);
                k.to_i8(u, head_mut(g, kw), range_mut(kc, next * kw, kw));
                let sv = head_mut(g, kw);
                v.sums(u, sv);
                v.rows_to_column(0, sv, vc, next, window);
            }
        }

        let (rq_s, rq_o) = (rq_at(b.softmax, RQ_SCORE), rq_at(b.softmax, RQ_HEADS));
        // the weighted sum runs over `cols ≥ filled` slots, a multiple of 4 where the window is
        // (the row-pair kernel's fast path), with zero probabilities beyond `filled`
        let cols = if window % 4 == 0 {
            filled.next_multiple_of(4).min(window)
        } else {
            filled
        };
        let probs: &mut [i32] = head_mut(bytemuck::cast_slice_mut(&mut *s.p), cols);
        let g2: &mut [i32] = head_mut(bytemuck::cast_slice_mut(&mut *s.g2), hd); // rotated q | sums
        let att = u; // [W], the heads' outputs side by side (norm1's output is consumed)
        for (h, (qh, o)) in q.chunks_exact(hd).zip(att.chunks_exact_mut(hd)).enumerate() {
            let at = (h / group) * hd; // the head's KV head's columns in a cached row
            let slope = b.alibi.get(h).copied().unwrap_or(0) as i64;
            let (scores, pad) = split_mut(&mut *probs, filled);
            if self.pos == PosKind::Rope {
                for (slot, sc) in scores.iter_mut().enumerate() {
                    let k = range(kc, slot * kw + at, hd);
                    let cs = range(b.rope, distance(next, slot, window) * hd, hd);
                    rope_rotate_q14(qh, cs, g2);
                    let dot: i64 = g2.iter().zip(k).map(|(&a, &b)| a as i64 * b as i64).sum();
                    *sc = sat_i32(rq_s.apply(dot)).clamp(-(1 << 30), 1 << 30);
                }
            } else {
                // the head's cached keys are rows `kw` apart from column `at` on
                kernels::dot_rows_strided_i8(crate::slices::tail(kc, at), kw, qh, scores);
                for (slot, sc) in scores.iter_mut().enumerate() {
                    let mut v = rq_s.apply_i32(*sc);
                    if self.pos == PosKind::Alibi {
                        let d = distance(next, slot, window) as i64;
                        v = v.saturating_sub(sat_i32((slope * d + 32) >> 6));
                    }
                    *sc = v.clamp(-(1 << 30), 1 << 30);
                }
            }
            softmax_q15(scores);
            pad.fill(0);
            // o[d] = Σ_j p_j · v_j[d]: row `at + d` of the transposed values, `window` apart
            let vt = crate::slices::tail(vc, at * window);
            kernels::dot_rows_strided_q15(vt, window, probs, g2);
            for (o, &a) in o.iter_mut().zip(g2.iter()) {
                *o = sat_i8(rq_o.apply_i32(a));
            }
        }
        b.out_proj.to_x(att, head_mut(g, w), head_mut(x, w), true);
        if let Some(f) = &b.ffn {
            let fd = self.ffn_dim;
            let u: &mut [i8] = head_mut(bytemuck::cast_slice_mut(&mut *s.u), w);
            norm_i8(head(x, w), f.norm2, rms, u);
            let hidden = head_mut(&mut *s.q8, fd); // [F]
            f.w1.to_i8(u, head_mut(g, fd), hidden);
            lut_i8(f.lut, hidden);
            f.w2.to_x(hidden, head_mut(g, w), head_mut(x, w), true);
        }
    }
}

/// [`rope_rotate`] on an int8 head with a Q14 table (`cs`: `[D]`, cosines then sines), into Q14
/// (`out: [D]`; `|out| < 2^22`).
fn rope_rotate_q14(x: &[i8], cs: &[i32], out: &mut [i32]) {
    let half = x.len() / 2;
    let (x1, x2) = split(x, half);
    let (c, s) = split(cs, half);
    let (o1, o2) = split_mut(out, half);
    for (((((o1, o2), &a), &b), &c), &s) in o1
        .iter_mut()
        .zip(o2.iter_mut())
        .zip(x1)
        .zip(x2)
        .zip(c)
        .zip(s)
    {
        let (a, b) = (a as i32, b as i32);
        *o1 = a.wrapping_mul(c).wrapping_sub(b.wrapping_mul(s));
        *o2 = b.wrapping_mul(c).wrapping_add(a.wrapping_mul(s));
    }
}

/// One KV cache (`[window, W]`), typed.
enum Kv<'a> {
    F32(&'a mut [f32]),
    F16(&'a mut [f16]),
    I8(&'a mut [i8]),
}

impl Kv<'_> {
    fn view(words: &mut [f32], dt: DType) -> Kv<'_> {
        match dt {
            DType::F32 => Kv::F32(words),
            DType::F16 => Kv::F16(bytemuck::cast_slice_mut(words)),
            DType::I8 => Kv::I8(bytemuck::cast_slice_mut(words)),
        }
    }

    /// Stores `src` (`[W]`, heads of `hd` values) at row `slot`; int8 stores one scale per head
    /// into `scales` (`[heads]`, the row's scales).
    fn store(&mut self, slot: usize, src: &[f32], hd: usize, scales: &mut [f32]) {
        let w = src.len();
        match self {
            Kv::F32(d) => copy(range_mut(d, slot * w, w), src),
            Kv::F16(d) => {
                for (o, &v) in range_mut(d, slot * w, w).iter_mut().zip(src) {
                    *o = f16::from_f32(v);
                }
            }
            Kv::I8(d) => {
                let row = range_mut(d, slot * w, w);
                // (≥ 1 already; said here so that no build keeps `chunks_exact`'s zero-size panic)
                let hd = hd.max(1);
                for ((x, q), sc) in src
                    .chunks_exact(hd)
                    .zip(row.chunks_exact_mut(hd))
                    .zip(scales)
                {
                    *sc = quantize_i8(x, q);
                }
            }
        }
    }

    /// Whether row `slot` (`[w]`) holds finite values (int8 rows always do; their scales come
    /// from finite inputs, which the caller checks).
    fn row_finite(&self, slot: usize, w: usize) -> bool {
        match self {
            Kv::F32(d) => all_finite(range(d, slot * w, w)),
            Kv::F16(d) => range(d, slot * w, w).iter().all(|v| v.is_finite()),
            Kv::I8(_) => true,
        }
    }

    /// `q · cache[at..at + q.len()]` (dequantized with `scale` for int8).
    fn dot(&self, at: usize, q: &[f32], scale: f32) -> f32 {
        let n = q.len();
        match self {
            Kv::F32(d) => kernels::dot_f32(range(d, at, n), q),
            Kv::F16(d) => kernels::dot_f16_f32(range(d, at, n), q),
            Kv::I8(d) => kernels::dot_i8_f32(range(d, at, n), q) * scale,
        }
    }

    /// `out += p · cache[at..at + out.len()]` (dequantized with `scale` for int8).
    fn axpy(&self, at: usize, p: f32, scale: f32, out: &mut [f32]) {
        let n = out.len();
        match self {
            Kv::F32(d) => {
                for (o, &v) in out.iter_mut().zip(range(d, at, n)) {
                    *o += p * v;
                }
            }
            Kv::F16(d) => {
                // converted 32 at a time (exact), then the same products and sums as f32
                let mut buf = [0f32; 32];
                for (o, v) in out.chunks_mut(32).zip(range(d, at, n).chunks(32)) {
                    let w = head_mut(&mut buf, v.len());
                    kernels::f16_to_f32_slice(v, w);
                    for (o, &v) in o.iter_mut().zip(w.iter()) {
                        *o += p * v;
                    }
                }
            }
            Kv::I8(d) => {
                let ps = p * scale;
                for (o, &v) in out.iter_mut().zip(range(d, at, n)) {
                    *o += ps * v as f32;
                }
            }
        }
    }
}
