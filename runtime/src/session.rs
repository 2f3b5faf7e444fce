//! A stream's state in the caller's arena, and the forward pass.

use crate::blocks::{Probe, Scratch, StepCtx, SITE_FRAME, SITE_HEAD_IN, SITE_LOGITS, SITE_X};
use crate::error::{Buffer, Error};
use crate::kernels::integer::{norm_i8, rq_at, rq_row, sat_x};
use crate::kernels::{all_finite, matvec, round_to_i8, row_to_f32, MatData};
use crate::model::{Model, Reader};
use crate::schema::{self, InputKind, InputWeights, IntInput, NormKind};
use crate::slices::{copy, head, head_mut, split_mut};

/// The input of one step, checked against the model.
#[derive(Clone, Copy)]
enum Input<'i> {
    Token(usize),
    Frame(&'i [f32]),
    FrameI8(&'i [i8]),
    /// An int8 frame already in the scratch `q8` (rounded there by the f32 entry point).
    FrameInScratch,
}

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

    fn check_out(&self, len: usize) -> Result<(), Error> {
        let n = self.model.output_dim();
        if len != n {
            return Err(Error::WrongLength {
                what: Buffer::Output,
                expected: n as u32,
                given: len as u32,
            });
        }
        Ok(())
    }

    /// Feeds one token and writes the step's logits into `out` (`[output_dim]`). On error nothing
    /// changes, with one exception: if the step would leave a non-finite value (NaN, ±inf) in the
    /// state or the logits — an overflow — it returns [`Error::NonFiniteState`], sets `out` to
    /// zeros and resets the session to the start of a stream (as [`Session::reset`]), so that the
    /// session stays usable and is never silently poisoned.
    ///
    /// An integer-mode model (`runnel convert --integer`) computes the step in integers and
    /// converts its logits to f32 at the end (see [`Session::step_token_int`]).
    pub fn step_token(&mut self, token: u32, out: &mut [f32]) -> Result<(), Error> {
        self.step_token_probed(token, out, &mut ())
    }

    /// [`Session::step_token`], showing `probe` the values of the float step at every
    /// calibration site (what `runnel convert --integer --calibrate` records). An integer-mode
    /// model shows nothing.
    pub fn step_token_probed(
        &mut self,
        token: u32,
        out: &mut [f32],
        probe: &mut impl Probe,
    ) -> Result<(), Error> {
        let t = self.check_token(token)?;
        self.check_out(out.len())?;
        if self.model.integer {
            return self.forward_int_f32(Input::Token(t), out);
        }
        self.forward(out, probe, Input::Token(t))
    }

    /// One token step of an integer-mode model with its logits as integers on the model's logit
    /// grid (`logits[r] · scale` is the logit, `scale` from [`Model::integer_scales`]): the
    /// whole step, this included, uses no floating point. [`Error::NotInteger`] on other models.
    pub fn step_token_int(&mut self, token: u32, logits: &mut [i32]) -> Result<(), Error> {
        let t = self.check_token(token)?;
        self.check_out(logits.len())?;
        if !self.model.integer {
            return Err(Error::NotInteger);
        }
        self.forward_int(Input::Token(t), logits);
        Ok(())
    }

    /// One frame step of an integer-mode model: `frame` (`[dim]`) on the model's int8 frame grid
    /// (`frame[i] · scale` is the feature value, `scale` from [`Model::integer_scales`]), logits
    /// as in [`Session::step_token_int`]. No floating point. [`Error::NotInteger`] on other
    /// models.
    pub fn step_frame_int(&mut self, frame: &[i8], logits: &mut [i32]) -> Result<(), Error> {
        self.check_frame_len(frame.len())?;
        self.check_out(logits.len())?;
        if !self.model.integer {
            return Err(Error::NotInteger);
        }
        self.forward_int(Input::FrameI8(frame), logits);
        Ok(())
    }

    fn check_token(&self, token: u32) -> Result<usize, Error> {
        let InputKind::Tokens { vocab } = self.model.input_kind() else {
            return Err(Error::WrongInputKind);
        };
        if token as usize >= vocab {
            return Err(Error::TokenOutOfRange {
                token,
                vocab: vocab as u32,
            });
        }
        Ok(token as usize)
    }

    fn check_frame_len(&self, len: usize) -> Result<(), Error> {
        let InputKind::Frames { dim } = self.model.input_kind() else {
            return Err(Error::WrongInputKind);
        };
        if len != dim {
            return Err(Error::WrongLength {
                what: Buffer::Frame,
                expected: dim as u32,
                given: len as u32,
            });
        }
        Ok(())
    }

    /// Feeds one frame (`[dim]`) and writes the step's logits into `out` (`[output_dim]`). On
    /// error nothing changes, except after [`Error::NonFiniteState`] (see [`Session::step_token`]).
    ///
    /// Every value must be finite ([`Error::NonFiniteInput`] otherwise). Any finite frame is
    /// accepted; the input layer computes in f32, so frames whose products with the input weights
    /// overflow f32 (about `|x| · Σ|w| > 3.4e38`) end in [`Error::NonFiniteState`].
    ///
    /// An integer-mode model rounds the frame onto its int8 frame grid (saturating), computes
    /// the step in integers and converts the logits to f32 (see [`Session::step_frame_int`]).
    pub fn step_frame(&mut self, frame: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.step_frame_probed(frame, out, &mut ())
    }

    /// [`Session::step_frame`], showing `probe` the values of the float step at every
    /// calibration site (see [`Session::step_token_probed`]).
    pub fn step_frame_probed(
        &mut self,
        frame: &[f32],
        out: &mut [f32],
        probe: &mut impl Probe,
    ) -> Result<(), Error> {
        self.check_frame_len(frame.len())?;
        if let Some(index) = frame.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput {
                index: index as u32,
            });
        }
        self.check_out(out.len())?;
        if self.model.integer {
            return self.forward_int_f32(Input::Frame(frame), out);
        }
        self.forward(out, probe, Input::Frame(frame))
    }

    /// The forward pass: `embed` puts the input layer's output in `s.x[..d_model]`, then every
    /// block steps in order on its slice of the state, then the final norm and head write `out`.
    /// Inputs were checked by the caller and the model by [`Model::from_bytes`]; the only failure
    /// is a non-finite result, after which the session is reset.
    fn forward(
        &mut self,
        out: &mut [f32],
        probe: &mut impl Probe,
        input: Input<'_>,
    ) -> Result<(), Error> {
        let model = self.model;
        let dims = model.dims();
        let ctx = StepCtx {
            eps: model.norm_eps(),
            kv: model.kv,
        };
        let (mut state, mut s) = split(&model.layout, self.arena);
        let mut t: Reader<'_> = model.reader();

        match (schema::input(&dims, &mut t), input) {
            (InputWeights::Tokens { embed }, Input::Token(tok)) => {
                row_to_f32(&embed, tok, head_mut(s.x, embed.cols));
            }
            (InputWeights::Frames { w, b }, Input::Frame(frame)) => {
                probe.see(SITE_FRAME, frame);
                matvec(&w, frame, b, head_mut(s.x, w.rows), s.q8);
            }
            _ => {} // checked by the callers
        }
        let mut width = dims.d_model;
        probe.see(SITE_X, head(s.x, width));
        let mut finite = true;
        for (i, block) in model.blocks().enumerate() {
            // Validated: the blocks' state words sum to `layout.state_words`.
            let words = block.state_words(ctx.kv, false).unwrap_or(0);
            let (st, rest) = split_mut(core::mem::take(&mut state), words);
            state = rest;
            finite &= block.step(i, &mut t, st, &mut s, ctx, probe);
            width = block.out_width();
            probe.see(SITE_X, head(s.x, width));
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
        probe.see(SITE_HEAD_IN, x);
        matvec(&tail.head, x, tail.bias, out, s.q8);
        probe.see(SITE_LOGITS, out);
        if finite && all_finite(out) {
            return Ok(());
        }
        out.fill(0.0);
        self.reset();
        Err(Error::NonFiniteState)
    }
}

impl Session<'_, '_> {
    /// An integer-mode step with f32 at both ends: a float frame is rounded onto the frame grid
    /// first, and the integer logits are scaled to f32 (`out` holds them as i32 in between).
    fn forward_int_f32(&mut self, input: Input<'_>, out: &mut [f32]) -> Result<(), Error> {
        let (frame_scale, logit_scale) = self.model.integer_scales();
        let input = match input {
            Input::Frame(frame) => {
                let (_, s) = split(&self.model.layout, self.arena);
                let inv = 1.0 / frame_scale;
                for (q, &v) in s.q8.iter_mut().zip(frame) {
                    *q = round_to_i8(v * inv).max(-127);
                }
                Input::FrameInScratch
            }
            other => other,
        };
        let raw: &mut [i32] = bytemuck::cast_slice_mut(&mut *out);
        self.forward_int(input, raw);
        for v in out.iter_mut() {
            *v = v.to_bits() as i32 as f32 * logit_scale;
        }
        Ok(())
    }

    /// The integer step (docs/INTEGER.md): input layer onto the residual grid (i32 in `s.x`),
    /// every block's integer step, the final norm or requantization onto the head's int8 grid,
    /// and the head's logits on the logit grid into `out`. Inputs were checked by the callers;
    /// an [`Input::FrameInScratch`] frame is in `s.q8` already.
    #[inline(never)]
    fn forward_int(&mut self, input: Input<'_>, out: &mut [i32]) {
        let model = self.model;
        let dims = model.dims();
        let rms = model.norm_kind() == NormKind::Rms;
        let (mut state, mut s) = split(&model.layout, self.arena);
        let mut t: Reader<'_> = model.reader();
        let d = dims.d_model;
        match (schema::input_int(&dims, &mut t), input) {
            (IntInput::Tokens { embed, rq }, Input::Token(tok)) => {
                let rq = rq_row(rq, tok);
                if let MatData::I8 { q, .. } = embed.data {
                    let row = crate::slices::range(q, tok * d, d);
                    let x: &mut [i32] = bytemuck::cast_slice_mut(&mut *s.x);
                    for (x, &v) in x.iter_mut().zip(row) {
                        *x = sat_x(rq.apply_i32(v as i32));
                    }
                }
            }
            (IntInput::Frames { w, .. }, input @ (Input::FrameI8(_) | Input::FrameInScratch)) => {
                if let Input::FrameI8(frame) = input {
                    copy(head_mut(s.q8, frame.len()), frame);
                }
                let sums: &mut [i32] = bytemuck::cast_slice_mut(&mut *s.g);
                let x: &mut [i32] = bytemuck::cast_slice_mut(&mut *s.x);
                w.to_x(
                    head(s.q8, w.w.cols),
                    head_mut(sums, d),
                    head_mut(x, d),
                    false,
                );
            }
            _ => {} // checked by the callers
        }
        let mut width = d;
        for (i, block) in model.blocks().enumerate() {
            let words = block.state_words(model.kv, true).unwrap_or(0);
            let (st, rest) = split_mut(core::mem::take(&mut state), words);
            state = rest;
            block.step_int(i, &mut t, st, &mut s, rms);
            width = block.out_width();
        }
        let tail = schema::tail_int(&dims, width, &mut t);
        let x: &[i32] = bytemuck::cast_slice(head(s.x, width));
        let u: &mut [i8] = head_mut(bytemuck::cast_slice_mut(&mut *s.u), width);
        if dims.final_norm {
            norm_i8(x, tail.norm, rms, u);
        } else {
            rq_at(tail.norm, 0).to_i8(x, u);
        }
        tail.head.sums(u, out);
        tail.head.requant(out, |v| v);
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
