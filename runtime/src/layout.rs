//! Where everything lives in the caller's state arena. The converter uses the same function to
//! report the RAM a model needs, so the figure it prints is the figure the runtime asks for.
//!
//! The arena is a sequence of 4-byte words (offsets below are in words):
//!
//! ```text
//! per block, in order:
//!   lstm: for each layer: h [H], c [H]
//!   gru:  for each layer: h [H]
//!   attention: ring [2 words: next slot, filled rows]
//!              K [window, W] and V [window, W] in the KV type (f32 / f16 / int8),
//!              int8 only: K scales [window, heads], V scales [window, heads] (f32)
//! scratch:
//!   x  [wmax]  residual stream          u  [wmax]  normalised / temporary input
//!   g  [gmax]  gates, q|k|v, FFN hidden  g2 [g2max] recurrent gates, concatenated heads
//!   p  [pmax] attention probabilities (longest window)
//!   q8 [qmax] int8-quantized input vector (int8 weights only; bytes, rounded up to words)
//! ```

use crate::error::Error;
use crate::format::{
    BlockEntry, DType, Header, BLOCK_ATTENTION, BLOCK_GRU, BLOCK_LSTM, INPUT_FRAMES,
};
use crate::limits::MAX_BLOCKS;

/// Word offsets of the state arena regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Start of each block's persistent state.
    pub block_state: heapless::Vec<usize, MAX_BLOCKS>,
    /// Words of persistent state (all blocks); scratch follows.
    pub state_words: usize,
    /// Widest activation vector.
    pub wmax: usize,
    /// Largest gate / q|k|v / FFN vector.
    pub gmax: usize,
    /// Largest second gate vector.
    pub g2max: usize,
    /// Longest attention window.
    pub pmax: usize,
    /// Bytes of int8 input scratch (0 unless weights are int8).
    pub qmax: usize,
    /// Total words.
    pub total_words: usize,
}

fn words(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

/// Words of persistent state of one attention block: ring (2) + K + V (+ scales).
pub(crate) fn attention_state_words(
    width: usize,
    heads: usize,
    window: usize,
    kv: DType,
) -> Option<usize> {
    let cache = words(window.checked_mul(width)?.checked_mul(kv.size())?);
    let scales = if kv == DType::I8 {
        window.checked_mul(heads)?
    } else {
        0
    };
    2usize
        .checked_add(cache.checked_mul(2)?)?
        .checked_add(scales.checked_mul(2)?)
}

const OVERFLOW: Error = Error::Malformed {
    what: "state size overflows",
};

impl Layout {
    /// Computes the layout for a model. Only the header and the block table are read; shapes are
    /// assumed valid (checked by the caller), but every sum is overflow-checked.
    pub fn compute(h: &Header, blocks: &[BlockEntry]) -> Result<Layout, Error> {
        let kv = DType::from_u8(h.kv_type).ok_or(Error::Malformed { what: "kv_type" })?;
        let wt = DType::from_u8(h.weight_type).ok_or(Error::Malformed {
            what: "weight_type",
        })?;
        if blocks.len() > MAX_BLOCKS {
            return Err(Error::CapacityExceeded {
                what: "blocks",
                count: blocks.len() as u32,
                capacity: MAX_BLOCKS as u32,
            });
        }
        let d = h.d_model as usize;
        let mut block_state = heapless::Vec::new();
        let mut off = 0usize;
        // The logits go straight to the caller's slice, so output_dim does not size x or u.
        let mut wmax = d;
        let mut gmax = 1usize;
        let mut g2max = 1usize;
        let mut pmax = 1usize;
        let mut qmax = if h.input_kind == INPUT_FRAMES {
            h.input_dim as usize
        } else {
            0
        };
        qmax = qmax.max(d);
        for b in blocks {
            // Capacity was checked above, so the push cannot fail.
            let _ = block_state.push(off);
            let w_in = b.in_width as usize;
            let hid = b.hidden as usize;
            let layers = b.num_layers as usize;
            wmax = wmax.max(w_in).max(hid);
            qmax = qmax.max(w_in).max(hid);
            let state = match b.kind {
                BLOCK_LSTM => {
                    gmax = gmax.max(hid.checked_mul(4).ok_or(OVERFLOW)?);
                    g2max = g2max.max(hid * 4);
                    layers
                        .checked_mul(hid.checked_mul(2).ok_or(OVERFLOW)?)
                        .ok_or(OVERFLOW)?
                }
                BLOCK_GRU => {
                    gmax = gmax.max(hid.checked_mul(3).ok_or(OVERFLOW)?);
                    g2max = g2max.max(hid * 3);
                    layers.checked_mul(hid).ok_or(OVERFLOW)?
                }
                BLOCK_ATTENTION => {
                    let f = b.ffn_dim as usize;
                    gmax = gmax.max(w_in.checked_mul(3).ok_or(OVERFLOW)?).max(f);
                    g2max = g2max.max(w_in);
                    pmax = pmax.max(b.window as usize);
                    qmax = qmax.max(f);
                    attention_state_words(w_in, b.heads as usize, b.window as usize, kv)
                        .ok_or(OVERFLOW)?
                }
                _ => return Err(Error::Malformed { what: "block kind" }),
            };
            off = off.checked_add(state).ok_or(OVERFLOW)?;
        }
        if wt != DType::I8 {
            qmax = 0;
        }
        let state_words = off;
        let total_words = [wmax, wmax, gmax, g2max, pmax, words(qmax)]
            .iter()
            .try_fold(state_words, |acc, &n| acc.checked_add(n))
            .ok_or(OVERFLOW)?;
        if total_words > (u32::MAX / 4) as usize {
            return Err(OVERFLOW);
        }
        Ok(Layout {
            block_state,
            state_words,
            wmax,
            gmax,
            g2max,
            pmax,
            qmax,
            total_words,
        })
    }

    /// Total arena bytes (for a 4-byte aligned arena).
    pub fn bytes(&self) -> usize {
        self.total_words * 4
    }
}
