//! A stream's state in the caller's arena, and the forward pass.

use crate::blocks::{Scratch, StepCtx};
use crate::error::{Buffer, Error};
use crate::kernels::{all_finite, matvec, row_to_f32};
use crate::model::{Model, Reader};
use crate::schema::{self, InputKind, InputWeights};
use crate::slices::{head, head_mut, split_mut};

/// One stream: a model plus its state (recurrent h/c, KV ring buffers, scratch) in an arena the
/// caller owns. Create as many sessions over one [`Model`] as you have arenas.
#[derive(Debug)]
pub struct Session<'m, 's> {
    model: &'m Model<'m>,
    pub(crate) arena: &'s mut [f32], // [model.layout.total_words]
}

impl<'m, 's> Session<'m, 's> {
    /// Starts a stream over `arena`, which must hold at least [`Model::state_bytes`] bytes from
    /// its first 4-byte aligned address. The state starts zeroed.
    pub fn new(model: &'m Model<'m>, arena: &'s mut [u8]) -> Result<Self, Error> {
        let need = model.state_bytes();
        let pad = arena.as_ptr().align_offset(4);
        let needed = pad.saturating_add(need);
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed: needed.min(u32::MAX as usize) as u32,
                given: arena.len().min(u32::MAX as usize) as u32,
            });
        }
        let words: &mut [f32] = bytemuck::try_cast_slice_mut(&mut arena[pad..needed])
            .map_err(|_| Error::Misaligned { required: 4 })?;
        let mut s = Session {
            model,
            arena: words,
        };
        s.reset();
        Ok(s)
    }

    /// The model this session runs.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Forgets the stream: zero recurrent state, empty KV caches.
    pub fn reset(&mut self) {
        self.arena.fill(0.0);
    }

    fn check_out(&self, out: &[f32]) -> Result<(), Error> {
        let n = self.model.output_dim();
        if out.len() != n {
            return Err(Error::WrongLength {
                what: Buffer::Output,
                expected: n as u32,
                given: out.len() as u32,
            });
        }
        Ok(())
    }

    /// Feeds one token and writes the step's logits into `out` (`[output_dim]`). On error nothing
    /// changes, with one exception: if the step would leave a non-finite value (NaN, ±inf) in the
    /// state or the logits — an overflow — it returns [`Error::NonFiniteState`], sets `out` to
    /// zeros and resets the session to the start of a stream (as [`Session::reset`]), so that the
    /// session stays usable and is never silently poisoned.
    pub fn step_token(&mut self, token: u32, out: &mut [f32]) -> Result<(), Error> {
        let InputKind::Tokens { vocab } = self.model.input_kind() else {
            return Err(Error::WrongInputKind);
        };
        if token as usize >= vocab {
            return Err(Error::TokenOutOfRange {
                token,
                vocab: vocab as u32,
            });
        }
        self.check_out(out)?;
        self.forward(out, |input, s| {
            if let InputWeights::Tokens { embed } = input {
                row_to_f32(&embed, token as usize, head_mut(s.x, embed.cols));
            }
        })
    }

    /// Feeds one frame (`[dim]`) and writes the step's logits into `out` (`[output_dim]`). On
    /// error nothing changes, except after [`Error::NonFiniteState`] (see [`Session::step_token`]).
    ///
    /// Every value must be finite ([`Error::NonFiniteInput`] otherwise). Any finite frame is
    /// accepted; the input layer computes in f32, so frames whose products with the input weights
    /// overflow f32 (about `|x| · Σ|w| > 3.4e38`) end in [`Error::NonFiniteState`].
    pub fn step_frame(&mut self, frame: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let InputKind::Frames { dim } = self.model.input_kind() else {
            return Err(Error::WrongInputKind);
        };
        if frame.len() != dim {
            return Err(Error::WrongLength {
                what: Buffer::Frame,
                expected: dim as u32,
                given: frame.len() as u32,
            });
        }
        if let Some(index) = frame.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput {
                index: index as u32,
            });
        }
        self.check_out(out)?;
        self.forward(out, |input, s| {
            if let InputWeights::Frames { w, b } = input {
                matvec(&w, frame, b, head_mut(s.x, w.rows), s.q8);
            }
        })
    }

    /// The forward pass: `embed` puts the input layer's output in `s.x[..d_model]`, then every
    /// block steps in order on its slice of the state, then the final norm and head write `out`.
    /// Inputs were checked by the caller and the model by [`Model::from_bytes`]; the only failure
    /// is a non-finite result, after which the session is reset.
    fn forward(
        &mut self,
        out: &mut [f32],
        embed: impl FnOnce(InputWeights<'_>, &mut Scratch<'_>),
    ) -> Result<(), Error> {
        let model = self.model;
        let dims = model.dims();
        let ctx = StepCtx {
            eps: model.norm_eps(),
            kv: model.kv,
        };
        let (mut state, mut s) = split(&model.layout, self.arena);
        let mut t: Reader<'_> = model.reader();

        embed(schema::input(&dims, &mut t), &mut s);
        let mut width = dims.d_model;
        let mut finite = true;
        for (i, block) in model.blocks().enumerate() {
            // Validated: the blocks' state words sum to `layout.state_words`.
            let words = block.state_words(ctx.kv).unwrap_or(0);
            let (st, rest) = split_mut(core::mem::take(&mut state), words);
            state = rest;
            finite &= block.step(i, &mut t, st, &mut s, ctx);
            width = block.out_width();
        }
        let tail = schema::tail(&dims, width, &mut t);
        let x: &[f32] = match tail.norm {
            Some(n) => {
                let u = head_mut(s.u, width);
                n.apply(head(s.x, width), ctx.eps, u);
                u
            }
            None => head(s.x, width),
        };
        matvec(&tail.head, x, tail.bias, out, s.q8);
        if finite && all_finite(out) {
            return Ok(());
        }
        out.fill(0.0);
        self.reset();
        Err(Error::NonFiniteState)
    }
}

/// Splits the arena into the blocks' persistent state and the scratch vectors.
fn split<'s>(l: &crate::layout::Layout, arena: &'s mut [f32]) -> (&'s mut [f32], Scratch<'s>) {
    let n = &l.scratch;
    // The arena holds `l.total_words` (checked in `Session::new`), so nothing is clamped here.
    let (state, rest) = split_mut(arena, l.state_words);
    let (x, rest) = split_mut(rest, n.width);
    let (u, rest) = split_mut(rest, n.width);
    let (g, rest) = split_mut(rest, n.g);
    let (g2, rest) = split_mut(rest, n.g2);
    let (p, rest) = split_mut(rest, n.p);
    let q8: &mut [i8] = bytemuck::cast_slice_mut(rest);
    (state, Scratch { x, u, g, g2, p, q8 })
}
