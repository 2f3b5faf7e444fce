//! Where everything lives in the caller's state arena. The converter uses the same function to
//! report the RAM a model needs, so the figure it prints is the figure the runtime asks for.
//!
//! The arena is a sequence of 4-byte words:
//!
//! ```text
//! per block, in order: its persistent state (BlockSpec::state_words; each kind's file says what)
//! scratch (sizes: the maximum over the blocks' ScratchNeed, see below):
//!   x  [width]  residual stream          u  [width]  normalised / temporary input
//!   g  [g]      gates, q|k|v, FFN hidden  g2 [g2]     recurrent gates, concatenated heads
//!   p  [p]      attention probabilities
//!   q8 [q]      int8-quantized matrix input (int8 weights only; bytes, rounded up to words)
//! ```
//!
//! The integer-only mode uses the same regions as 32-bit integers (`x` the residual stream, `g`
//! and `g2` exact sums, `p` scores) or bytes (`u` and `q8` int8 vectors), and a smaller state.

use crate::blocks::{BlockSpec, ScratchNeed};
use crate::error::Error;
use crate::schema::{DType, InputKind, ModelDims};

/// Word counts of the state arena regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Words of persistent state (all blocks); scratch follows.
    pub state_words: usize,
    /// Scratch sizes (`q` in bytes, 0 unless weights are int8).
    pub scratch: ScratchNeed,
    /// Total words.
    pub total_words: usize,
}

const OVERFLOW: Error = Error::Malformed {
    what: "state size overflows",
};

fn words(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

impl Layout {
    /// Computes the layout for a model whose blocks are `blocks` (validated specs), in the
    /// integer-only mode if `integer`. Every sum is overflow-checked, and the total must fit the
    /// blob's `u32` byte count.
    pub fn compute(
        dims: &ModelDims,
        blocks: impl IntoIterator<Item = BlockSpec>,
        weights: DType,
        kv: DType,
        integer: bool,
    ) -> Result<Layout, Error> {
        let d = dims.d_model;
        // The logits go straight to the caller's slice, so output_dim does not size x or u; the
        // head's input is the last block's output, which is one of the widths below.
        let frame = match dims.input {
            InputKind::Frames { dim } => dim,
            InputKind::Tokens { .. } => 0,
        };
        let mut need = ScratchNeed {
            width: d,
            g: 1,
            g2: 1,
            p: 1,
            q: frame.max(d),
        };
        let mut state_words = 0usize;
        for b in blocks {
            need = need.max(b.scratch());
            state_words = state_words
                .checked_add(b.state_words(kv, integer).ok_or(OVERFLOW)?)
                .ok_or(OVERFLOW)?;
        }
        if weights != DType::I8 {
            need.q = 0;
        }
        let total_words = [
            need.width,
            need.width,
            need.g,
            need.g2,
            need.p,
            words(need.q),
        ]
        .iter()
        .try_fold(state_words, |acc, &n| acc.checked_add(n))
        .ok_or(OVERFLOW)?;
        if total_words > (u32::MAX / 4) as usize {
            return Err(OVERFLOW);
        }
        Ok(Layout {
            state_words,
            scratch: need,
            total_words,
        })
    }

    /// Total arena bytes (for a 4-byte aligned arena).
    pub fn bytes(&self) -> usize {
        self.total_words * 4
    }
}
