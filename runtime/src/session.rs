//! A stream's state in the caller's arena, and the step function.

use half::f16;

use crate::error::{Buffer, Error};
use crate::format::DType;
use crate::kernels::{self, layer_norm, matvec, quantize_i8, row_to_f32, sigmoid};
use crate::layout::attention_state_words;
use crate::model::{AttnBlock, Block, Cell, Input, InputKind, Model, Norm, RnnBlock, Tensors};

/// One stream: a model plus its state (recurrent h/c, KV ring buffers, scratch) in an arena the
/// caller owns. Create as many sessions over one [`Model`] as you have arenas.
#[derive(Debug)]
pub struct Session<'m, 's> {
    model: &'m Model<'m>,
    arena: &'s mut [f32], // [model.layout.total_words]
}

/// Scratch vectors carved out of the arena for one step (shapes in [`crate::layout`]).
struct Scratch<'s> {
    x: &'s mut [f32],  // [wmax]
    u: &'s mut [f32],  // [wmax]
    g: &'s mut [f32],  // [gmax]
    g2: &'s mut [f32], // [g2max]
    p: &'s mut [f32],  // [pmax]
    q8: &'s mut [i8],  // [qmax rounded up to words]
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
    /// changes.
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
        let model = self.model;
        let mut t = model.tensors();
        let Input::Tokens { embed } = model.input(&mut t)? else {
            return Err(Error::WrongInputKind);
        };
        let (state, mut s) = self.split();
        row_to_f32(&embed, token as usize, &mut s.x[..embed.cols]);
        run(model, t, state, &mut s, out)
    }

    /// Feeds one frame (`[dim]`) and writes the step's logits into `out` (`[output_dim]`). On
    /// error nothing changes.
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
        self.check_out(out)?;
        let model = self.model;
        let mut t = model.tensors();
        let Input::Frames { w, b } = model.input(&mut t)? else {
            return Err(Error::WrongInputKind);
        };
        let (state, mut s) = self.split();
        matvec(&w, frame, b, &mut s.x[..w.rows], s.q8);
        run(model, t, state, &mut s, out)
    }

    fn split(&mut self) -> (&mut [f32], Scratch<'_>) {
        let l = &self.model.layout;
        let (state, rest) = self.arena.split_at_mut(l.state_words);
        let (x, rest) = rest.split_at_mut(l.wmax);
        let (u, rest) = rest.split_at_mut(l.wmax);
        let (g, rest) = rest.split_at_mut(l.gmax);
        let (g2, rest) = rest.split_at_mut(l.g2max);
        let (p, rest) = rest.split_at_mut(l.pmax);
        let q8: &mut [i8] = bytemuck::cast_slice_mut(rest);
        (state, Scratch { x, u, g, g2, p, q8 })
    }
}

/// Runs the blocks and the head on `s.x[..d_model]`, writing logits to `out`. `t` reads the
/// weight views from the tensor table as the blocks go; `Model::from_bytes` walked the same path
/// and validated every view, so the errors here cannot happen.
fn run<'a>(
    model: &Model<'a>,
    mut t: Tensors<'a>,
    state: &mut [f32],
    s: &mut Scratch<'_>,
    out: &mut [f32],
) -> Result<(), Error> {
    let eps = model.header.norm_eps;
    let mut width = model.d_model();
    for (e, &off) in model.entries.iter().zip(model.layout.block_state.iter()) {
        let st = &mut state[off..];
        match model.block(e, &mut t)? {
            Block::Rnn(r) => width = rnn_block(&r, &mut t, st, s, eps)?,
            Block::Attn(a) => attention_block(&a, model.kv, st, s, eps),
        }
    }
    let (final_norm, head, head_bias) = model.tail(&mut t)?;
    let inp: &[f32] = match final_norm {
        Some(n) => {
            layer_norm(&s.x[..width], n.w, n.b, eps, &mut s.u[..width]);
            &s.u[..width]
        }
        None => &s.x[..width],
    };
    matvec(&head, inp, head_bias, out, s.q8);
    Ok(())
}

fn norm_or_copy(norm: &Option<Norm<'_>>, x: &[f32], eps: f32, out: &mut [f32]) {
    match norm {
        Some(n) => layer_norm(x, n.w, n.b, eps, out),
        None => out.copy_from_slice(x),
    }
}

/// One LSTM/GRU block; returns its output width.
fn rnn_block<'a>(
    b: &RnnBlock<'a>,
    t: &mut Tensors<'a>,
    st: &mut [f32],
    s: &mut Scratch<'_>,
    eps: f32,
) -> Result<usize, Error> {
    let w = b.in_width;
    let hid = b.hidden;
    let per = match b.cell {
        Cell::Lstm => 2 * hid,
        Cell::Gru => hid,
    };
    let gn = b.cell.gates() * hid;
    norm_or_copy(&b.norm, &s.x[..w], eps, &mut s.u[..w]);
    for k in 0..b.num_layers {
        let l = Model::rnn_layer(b, k, t)?;
        let in_len = if k == 0 {
            w
        } else {
            // The layer below's new h is this layer's input.
            s.u[..hid].copy_from_slice(&st[(k - 1) * per..(k - 1) * per + hid]);
            hid
        };
        let ls = &mut st[k * per..(k + 1) * per];
        let (h, c) = ls.split_at_mut(hid);
        let gi = &mut s.g[..gn];
        let gh = &mut s.g2[..gn];
        matvec(&l.w_ih, &s.u[..in_len], l.b_ih, gi, s.q8);
        matvec(&l.w_hh, h, l.b_hh, gh, s.q8);
        match b.cell {
            Cell::Lstm => {
                for j in 0..hid {
                    let i = sigmoid(gi[j] + gh[j]);
                    let f = sigmoid(gi[hid + j] + gh[hid + j]);
                    let g = libm::tanhf(gi[2 * hid + j] + gh[2 * hid + j]);
                    let o = sigmoid(gi[3 * hid + j] + gh[3 * hid + j]);
                    let cn = f * c[j] + i * g;
                    c[j] = cn;
                    h[j] = o * libm::tanhf(cn);
                }
            }
            Cell::Gru => {
                for j in 0..hid {
                    let r = sigmoid(gi[j] + gh[j]);
                    let z = sigmoid(gi[hid + j] + gh[hid + j]);
                    let n = libm::tanhf(gi[2 * hid + j] + r * gh[2 * hid + j]);
                    h[j] = (1.0 - z) * n + z * h[j];
                }
            }
        }
    }
    let top = b.num_layers.saturating_sub(1) * per;
    let h = &st[top..top + hid];
    if b.residual {
        for (x, &v) in s.x[..hid].iter_mut().zip(h) {
            *x += v;
        }
    } else {
        s.x[..hid].copy_from_slice(h);
    }
    Ok(hid)
}

/// One slot of a KV cache, typed.
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

    /// Stores `src` (`[W]`, `heads` heads) at row `slot`; int8 stores one scale per head.
    fn store(&mut self, slot: usize, src: &[f32], heads: usize, scales: &mut [f32]) {
        let w = src.len();
        let at = slot * w;
        match self {
            Kv::F32(d) => d[at..at + w].copy_from_slice(src),
            Kv::F16(d) => {
                for (o, &v) in d[at..at + w].iter_mut().zip(src) {
                    *o = f16::from_f32(v);
                }
            }
            Kv::I8(d) => {
                let hd = w / heads;
                for h in 0..heads {
                    let r = h * hd..(h + 1) * hd;
                    scales[slot * heads + h] =
                        quantize_i8(&src[r.clone()], &mut d[at + r.start..at + r.end]);
                }
            }
        }
    }

    /// `q · row[slot][range]` (dequantized).
    fn dot(&self, slot: usize, w: usize, r: core::ops::Range<usize>, q: &[f32], scale: f32) -> f32 {
        let a = slot * w + r.start..slot * w + r.end;
        match self {
            Kv::F32(d) => kernels::dot_f32(&d[a], q),
            Kv::F16(d) => kernels::dot_f16_f32(&d[a], q),
            Kv::I8(d) => kernels::dot_i8_f32(&d[a], q) * scale,
        }
    }

    /// `out += p · row[slot][range]` (dequantized).
    fn axpy(
        &self,
        slot: usize,
        w: usize,
        r: core::ops::Range<usize>,
        p: f32,
        scale: f32,
        out: &mut [f32],
    ) {
        let a = slot * w + r.start..slot * w + r.end;
        match self {
            Kv::F32(d) => {
                for (o, &v) in out.iter_mut().zip(&d[a]) {
                    *o += p * v;
                }
            }
            Kv::F16(d) => {
                for (o, v) in out.iter_mut().zip(&d[a]) {
                    *o += p * v.to_f32();
                }
            }
            Kv::I8(d) => {
                let ps = p * scale;
                for (o, &v) in out.iter_mut().zip(&d[a]) {
                    *o += ps * v as f32;
                }
            }
        }
    }
}

fn attention_block(b: &AttnBlock<'_>, kv: DType, st: &mut [f32], s: &mut Scratch<'_>, eps: f32) {
    let w = b.width;
    let heads = b.heads;
    let hd = w / heads;
    let window = b.window;
    layer_norm(&s.x[..w], b.norm1.w, b.norm1.b, eps, &mut s.u[..w]);
    let qkv = &mut s.g[..3 * w];
    matvec(&b.in_proj, &s.u[..w], b.in_bias, qkv, s.q8);

    // Ring buffer: [next slot, filled rows] then K, V (and int8 scales). Both counters stay below
    // `window`, so a stream can run forever.
    let total = attention_state_words(w, heads, window, kv).unwrap_or(2);
    let (ring, rest) = st[..total].split_at_mut(2);
    let ring: &mut [u32] = bytemuck::cast_slice_mut(ring);
    let next = if (ring[0] as usize) < window {
        ring[0] as usize
    } else {
        0
    };
    let filled = (ring[1] as usize + 1).min(window);
    let cache_words = (window * w * kv.size()).div_ceil(4);
    let (kw, rest) = rest.split_at_mut(cache_words);
    let (vw, scales) = rest.split_at_mut(cache_words);
    let (ks, vs) = if kv == DType::I8 {
        scales.split_at_mut(window * heads)
    } else {
        scales.split_at_mut(0)
    };
    let mut kc = Kv::view(kw, kv);
    let mut vc = Kv::view(vw, kv);
    kc.store(next, &qkv[w..2 * w], heads, ks);
    vc.store(next, &qkv[2 * w..3 * w], heads, vs);
    ring[0] = ((next + 1) % window) as u32;
    ring[1] = filled as u32;

    let inv_sqrt = 1.0 / libm::sqrtf(hd as f32);
    let p = &mut s.p[..filled];
    let att = &mut s.g2[..w];
    for h in 0..heads {
        let r = h * hd..(h + 1) * hd;
        let q = &qkv[r.clone()];
        let scale_of = |sc: &[f32], slot: usize| sc.get(slot * heads + h).copied().unwrap_or(1.0);
        for (slot, pv) in p.iter_mut().enumerate() {
            *pv = kc.dot(slot, w, r.clone(), q, scale_of(ks, slot)) * inv_sqrt;
        }
        kernels::softmax(p);
        let o = &mut att[r.clone()];
        o.fill(0.0);
        for (slot, &pv) in p.iter().enumerate() {
            vc.axpy(slot, w, r.clone(), pv, scale_of(vs, slot), o);
        }
    }
    matvec(&b.out_proj, att, b.out_bias, &mut s.u[..w], s.q8);
    for (x, &v) in s.x[..w].iter_mut().zip(s.u[..w].iter()) {
        *x += v;
    }
    if let Some(f) = &b.ffn {
        let fd = f.w1.rows;
        layer_norm(&s.x[..w], f.norm2.w, f.norm2.b, eps, &mut s.u[..w]);
        matvec(&f.w1, &s.u[..w], f.b1, &mut s.g[..fd], s.q8);
        f.act.apply(&mut s.g[..fd]);
        matvec(&f.w2, &s.g[..fd], f.b2, &mut s.u[..w], s.q8);
        for (x, &v) in s.x[..w].iter_mut().zip(s.u[..w].iter()) {
            *x += v;
        }
    }
}
