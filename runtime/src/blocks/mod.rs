//! Block kinds. Each kind is one file that owns everything about it: its spec (decoded from and
//! encoded to a [`BlockEntry`], with its validation), its part of the tensor plan, its state and
//! scratch sizes, and its step. This file only dispatches between them.
//!
//! Adding a kind: a code in [`crate::schema::BlockKind`], a file here with the same five pieces
//! as `recurrent.rs`, one arm in each `match` below, and the converter's config keys in
//! `converter/src/blocks/`.

pub mod attention;
pub mod recurrent;

use core::fmt;

use crate::error::Error;
use crate::format::BlockEntry;
use crate::schema::{BlockKind, DType, NormKind, TensorSource};
use crate::slices::le_u32;

pub use attention::AttentionSpec;
pub use recurrent::{Cell, RecurrentSpec};

/// One block of a model, decoded and validated.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlockSpec {
    /// LSTM or GRU layers.
    Recurrent(RecurrentSpec),
    /// Causal sliding-window attention.
    Attention(AttentionSpec),
}

/// A point of the float step whose values the integer mode quantizes onto a calibrated grid
/// (docs/INTEGER.md): `[blocks.{block}.]{name}[{layer}]`, e.g. `blocks.1.q` or `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Site {
    /// The block, for a block's site.
    pub block: Option<usize>,
    /// The site's name in its block kind's file (`recurrent::SITE_IN`, `attention::SITES`) or
    /// at the model level ([`SITE_X`], [`SITE_FRAME`], [`SITE_HEAD_IN`], [`SITE_LOGITS`]).
    pub name: &'static str,
    /// The stacked recurrent layer, for a per-layer site.
    pub layer: Option<usize>,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = self.block {
            write!(f, "blocks.{b}.")?;
        }
        f.write_str(self.name)?;
        if let Some(k) = self.layer {
            write!(f, "{k}")?;
        }
        Ok(())
    }
}

const fn top_site(name: &'static str) -> Site {
    Site {
        block: None,
        name,
        layer: None,
    }
}

/// The residual stream between (and inside) blocks: one i32 grid for the whole model.
pub const SITE_X: Site = top_site("x");
/// The input frames (int8 grid; frames models).
pub const SITE_FRAME: Site = top_site("frame");
/// The head's input (the final norm's output, or the residual stream).
pub const SITE_HEAD_IN: Site = top_site("head.in");
/// The logits (i32 grid).
pub const SITE_LOGITS: Site = top_site("logits");

/// Watches the values at each [`Site`] of a float step: how the converter calibrates the
/// integer mode ([`crate::Session::step_token_probed`]). `()` watches nothing.
pub trait Probe {
    /// Called with the values at `site` (in the float step's order).
    fn see(&mut self, site: Site, values: &[f32]);
}

impl Probe for () {
    #[inline(always)]
    fn see(&mut self, _: Site, _: &[f32]) {}
}

/// Whether every little-endian f32 in `b` (whole words) is finite.
pub(crate) fn f32s_finite(b: &[u8]) -> bool {
    b.chunks_exact(4)
        .all(|w| f32::from_bits(le_u32(w)).is_finite())
}

/// Largest scratch vectors a block uses during its step (elements; see [`crate::layout`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScratchNeed {
    /// Activation vectors `x` and `u`.
    pub width: usize,
    /// Gate / q|k|v / FFN hidden vector `g`.
    pub g: usize,
    /// Second gate vector / concatenated heads `g2`.
    pub g2: usize,
    /// Attention probabilities `p`.
    pub p: usize,
    /// int8-quantized matrix input (bytes; used with int8 weights only).
    pub q: usize,
}

impl ScratchNeed {
    /// The element-wise maximum.
    pub fn max(self, o: ScratchNeed) -> ScratchNeed {
        ScratchNeed {
            width: self.width.max(o.width),
            g: self.g.max(o.g),
            g2: self.g2.max(o.g2),
            p: self.p.max(o.p),
            q: self.q.max(o.q),
        }
    }
}

/// Scratch vectors carved out of the arena for one step (sizes from [`ScratchNeed`] maxima).
pub(crate) struct Scratch<'s> {
    pub x: &'s mut [f32],  // [width] residual stream
    pub u: &'s mut [f32],  // [width] normalised / temporary input
    pub g: &'s mut [f32],  // [g]
    pub g2: &'s mut [f32], // [g2]
    pub p: &'s mut [f32],  // [p]
    pub q8: &'s mut [i8],  // [q rounded up to words]
}

/// What every block's step needs besides its weights and state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepCtx {
    /// LayerNorm epsilon.
    pub eps: f32,
    /// KV cache storage type.
    pub kv: DType,
}

impl fmt::Display for BlockSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockSpec::Recurrent(r) => r.fmt(f),
            BlockSpec::Attention(a) => a.fmt(f),
        }
    }
}

impl BlockSpec {
    /// Decodes and validates a block-table entry whose input width must be `width` (the running
    /// width). Every field of the entry is checked; the result's [`Self::out_width`] is the next
    /// block's input width. `norm` is the model's norm kind (from the header).
    pub fn decode(e: &BlockEntry, width: usize, norm: NormKind) -> Result<BlockSpec, Error> {
        if e.in_width as usize != width {
            return Err(Error::Malformed {
                what: "block in_width",
            });
        }
        match BlockKind::from_u8(e.kind) {
            Some(BlockKind::Lstm) => {
                RecurrentSpec::decode(e, Cell::Lstm, norm).map(Self::Recurrent)
            }
            Some(BlockKind::Gru) => RecurrentSpec::decode(e, Cell::Gru, norm).map(Self::Recurrent),
            Some(BlockKind::Attention) => AttentionSpec::decode(e, norm).map(Self::Attention),
            None => Err(Error::Malformed { what: "block kind" }),
        }
    }

    /// The block-table entry of this block, whose tensors start at `first_tensor`.
    pub fn encode(&self, first_tensor: u32) -> BlockEntry {
        let mut e = match self {
            BlockSpec::Recurrent(r) => r.encode(),
            BlockSpec::Attention(a) => a.encode(),
        };
        e.first_tensor = first_tensor;
        e
    }

    /// The block's kind.
    pub fn kind(&self) -> BlockKind {
        match self {
            BlockSpec::Recurrent(r) => r.cell.kind(),
            BlockSpec::Attention(_) => BlockKind::Attention,
        }
    }

    /// Width of the block's input.
    pub fn in_width(&self) -> usize {
        match self {
            BlockSpec::Recurrent(r) => r.in_width,
            BlockSpec::Attention(a) => a.width,
        }
    }

    /// Width of the block's output.
    pub fn out_width(&self) -> usize {
        match self {
            BlockSpec::Recurrent(r) => r.out_width(),
            BlockSpec::Attention(a) => a.width,
        }
    }

    /// Stacked recurrent layers (0 for other kinds), counted against
    /// [`crate::limits::MAX_RNN_LAYERS`].
    pub fn rnn_layers(&self) -> usize {
        match self {
            BlockSpec::Recurrent(r) => r.num_layers,
            BlockSpec::Attention(_) => 0,
        }
    }

    /// Reads the block's tensors in plan order (block `index` of the model; the integer plan
    /// with an integer source).
    pub fn plan<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) {
        match self {
            BlockSpec::Recurrent(r) => r.plan(index, t),
            BlockSpec::Attention(a) if t.integer() => {
                a.int_weights(index, t);
            }
            BlockSpec::Attention(a) => {
                a.weights(index, t);
            }
        }
    }

    /// Words of persistent state with a KV cache of type `kv`, or in the integer mode
    /// (`None` if the size overflows `usize`).
    pub fn state_words(&self, kv: DType, integer: bool) -> Option<usize> {
        match self {
            BlockSpec::Recurrent(r) if integer => r.int_state_words(),
            BlockSpec::Attention(a) if integer => a.int_state_words(),
            BlockSpec::Recurrent(r) => r.state_words(),
            BlockSpec::Attention(a) => a.kv_geometry(kv).map(|g| g.total),
        }
    }

    /// Whether `st` — the block's state as little-endian bytes (`[state_words * 4]`, as in a
    /// snapshot) — is a state this block's steps can produce: finite values, ring counters in
    /// range. A restored snapshot must satisfy it.
    pub fn check_state(&self, st: &[u8], kv: DType, integer: bool) -> bool {
        if integer {
            // Every bit pattern of int8 / int16 state is a valid state; the ring counters are
            // checked as for the float modes.
            return match self {
                BlockSpec::Recurrent(r) => r.int_state_words().map(|n| n * 4) == Some(st.len()),
                BlockSpec::Attention(a) => a.check_ring(st, a.int_state_words()),
            };
        }
        match self {
            BlockSpec::Recurrent(r) => {
                r.state_words().map(|n| n * 4) == Some(st.len()) && f32s_finite(st)
            }
            BlockSpec::Attention(a) => a.check_state(st, kv),
        }
    }

    /// Scratch the block's step uses.
    pub fn scratch(&self) -> ScratchNeed {
        match self {
            BlockSpec::Recurrent(r) => r.scratch(),
            BlockSpec::Attention(a) => a.scratch(),
        }
    }

    /// One step of block `index` on `s.x[..in_width]` (leaving its output in
    /// `s.x[..out_width]`), reading its weights from `t` and its state from `st`
    /// (`[state_words]`). Returns whether everything it wrote to `st` is finite.
    pub(crate) fn step<'a>(
        &self,
        index: usize,
        t: &mut impl TensorSource<'a>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        ctx: StepCtx,
        probe: &mut impl Probe,
    ) -> bool {
        match self {
            BlockSpec::Recurrent(r) => r.step(index, t, st, s, ctx, probe),
            BlockSpec::Attention(a) => a.step(index, &a.weights(index, t), st, s, ctx, probe),
        }
    }

    /// One step of the integer mode on the residual stream (`s.x` as i32), reading the integer
    /// plan from `t` and the integer state from `st`. `rms`: the norms are RMSNorms.
    pub(crate) fn step_int<'a>(
        &self,
        index: usize,
        t: &mut impl TensorSource<'a>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        rms: bool,
    ) {
        match self {
            BlockSpec::Recurrent(r) => r.step_int(index, t, st, s, rms),
            BlockSpec::Attention(a) => a.step_int(&a.int_weights(index, t), st, s, rms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::attention::{FLAG_SPLIT, NO_BIAS_FFN0, NO_BIAS_NORM1, NO_BIAS_OUT, NO_BIAS_Q};
    use super::recurrent::{FLAG_NORM, FLAG_RESIDUAL, NO_BIAS_LAYERS, NO_BIAS_NORM};
    use super::*;
    use crate::schema::PosKind;

    fn attention() -> BlockEntry {
        BlockEntry {
            kind: BlockKind::Attention.code(),
            flags: FLAG_SPLIT,
            activation: 0,
            pos: 0,
            num_layers: 1,
            in_width: 16,
            hidden: 16,
            heads: 4,
            window: 8,
            ffn_dim: 0,
            first_tensor: 0,
            kv_heads: 2,
            proj_size: 0,
            rope_theta: 0.0,
            no_bias: 0,
        }
    }

    fn lstm() -> BlockEntry {
        BlockEntry {
            kind: BlockKind::Lstm.code(),
            flags: FLAG_NORM | FLAG_RESIDUAL,
            activation: 0,
            pos: 0,
            num_layers: 2,
            in_width: 16,
            hidden: 24,
            heads: 0,
            window: 0,
            ffn_dim: 0,
            first_tensor: 0,
            kv_heads: 0,
            proj_size: 16,
            rope_theta: 0.0,
            no_bias: 0,
        }
    }

    fn what(e: &BlockEntry, norm: NormKind) -> Option<&'static str> {
        match BlockSpec::decode(e, 16, norm) {
            Ok(_) => None,
            Err(Error::Malformed { what }) => Some(what),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn every_new_attention_field_is_validated() {
        let l = NormKind::Layer;
        assert_eq!(what(&attention(), l), None);
        let with = |f: &dyn Fn(&mut BlockEntry)| {
            let mut e = attention();
            f(&mut e);
            e
        };
        assert_eq!(what(&with(&|e| e.kv_heads = 0), l), Some("kv_heads"));
        assert_eq!(what(&with(&|e| e.kv_heads = 3), l), Some("kv_heads"));
        assert_eq!(what(&with(&|e| e.kv_heads = 8), l), Some("kv_heads"));
        // GQA needs the split naming
        assert_eq!(what(&with(&|e| e.flags = 0), l), Some("kv_heads"));
        assert_eq!(
            what(&with(&|e| e.flags = 2), l),
            Some("attention block fields")
        );
        assert_eq!(
            what(&with(&|e| e.proj_size = 4), l),
            Some("attention block fields")
        );
        assert_eq!(what(&with(&|e| e.pos = 3), l), Some("pos"));
        let rope = |theta: f32| {
            with(&move |e| {
                e.pos = PosKind::Rope.code();
                e.rope_theta = theta;
            })
        };
        assert_eq!(what(&rope(10000.0), l), None);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(what(&rope(bad), l), Some("rope"), "{bad}");
        }
        // rope needs an even head width: 12 / 4 = 3
        let mut odd = rope(10000.0);
        odd.in_width = 12;
        odd.hidden = 12;
        assert_eq!(
            BlockSpec::decode(&odd, 12, l).err(),
            Some(Error::Malformed { what: "rope" })
        );
        // a theta without rope
        assert_eq!(what(&with(&|e| e.rope_theta = 1.0), l), Some("rope"));
        let alibi = with(&|e| e.pos = PosKind::Alibi.code());
        assert_eq!(what(&alibi, l), None);
        // bias bits: only modules the block has
        assert_eq!(what(&with(&|e| e.no_bias = NO_BIAS_OUT), l), None);
        assert_eq!(
            what(&with(&|e| e.no_bias = NO_BIAS_FFN0), l),
            Some("no_bias")
        );
        assert_eq!(what(&with(&|e| e.no_bias = 1 << 8), l), Some("no_bias"));
        assert_eq!(what(&with(&|e| e.no_bias = NO_BIAS_NORM1), l), None);
        assert_eq!(
            what(&with(&|e| e.no_bias = NO_BIAS_NORM1), NormKind::Rms),
            Some("no_bias")
        );
        // nn.MultiheadAttention(bias=False): all four together or none
        let packed = |bits| {
            with(&move |e| {
                e.flags = 0;
                e.kv_heads = 4;
                e.no_bias = bits;
            })
        };
        assert_eq!(what(&packed(0), l), None);
        assert_eq!(what(&packed(15), l), None);
        assert_eq!(what(&packed(NO_BIAS_Q), l), Some("no_bias"));
    }

    #[test]
    fn every_new_recurrent_field_is_validated() {
        let l = NormKind::Layer;
        assert_eq!(what(&lstm(), l), None);
        let with = |f: &dyn Fn(&mut BlockEntry)| {
            let mut e = lstm();
            f(&mut e);
            e
        };
        let spec = BlockSpec::decode(&lstm(), 16, l).unwrap();
        assert_eq!(spec.out_width(), 16);
        // h [16] + c [24] per layer
        assert_eq!(spec.state_words(DType::F32, false), Some(2 * (16 + 24)));
        // integer: h [16] int8 (4 words) + c [24] int16 (12 words) per layer
        assert_eq!(spec.state_words(DType::I8, true), Some(2 * (4 + 12)));
        assert_eq!(what(&with(&|e| e.proj_size = 24), l), Some("proj_size"));
        assert_eq!(
            what(&with(&|e| e.kind = BlockKind::Gru.code()), l),
            Some("proj_size")
        );
        // residual: the output width (proj_size) must be the input width
        assert_eq!(
            what(&with(&|e| e.proj_size = 12), l),
            Some("residual block hidden")
        );
        for f in [
            &(|e: &mut BlockEntry| e.pos = 1) as &dyn Fn(&mut BlockEntry),
            &|e| e.kv_heads = 1,
            &|e| e.rope_theta = 1.0,
        ] {
            assert_eq!(what(&with(f), l), Some("recurrent block fields"));
        }
        assert_eq!(
            what(&with(&|e| e.no_bias = NO_BIAS_LAYERS | NO_BIAS_NORM), l),
            None
        );
        assert_eq!(
            what(&with(&|e| e.no_bias = NO_BIAS_NORM), NormKind::Rms),
            Some("no_bias")
        );
        assert_eq!(what(&with(&|e| e.no_bias = 4), l), Some("no_bias"));
    }

    #[test]
    fn alibi_slopes_are_the_papers() {
        use super::attention::alibi_slope;
        // 8 heads: 2^-1 .. 2^-8
        for h in 0..8 {
            assert_eq!(alibi_slope(h, 8), 1.0 / (1u32 << (h + 1)) as f32);
        }
        // 6 heads: slopes(4) = 2^-2, 2^-4, 2^-6, 2^-8, then slopes(8)[0::2][:2] = 2^-1, 2^-3
        let want = [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125];
        for (h, &w) in want.iter().enumerate() {
            assert_eq!(alibi_slope(h, 6), w, "{h}");
        }
        // 3 heads: slopes(2) = 2^-4, 2^-8, then slopes(4)[0] = 2^-2
        assert_eq!(alibi_slope(2, 3), 0.25);
    }
}
