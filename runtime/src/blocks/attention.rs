//! The `attention` block kind: pre-norm causal multi-head self-attention over the last `window`
//! steps (a KV cache in a ring buffer), a residual connection, and an optional pre-norm FFN with
//! its own residual.
//!
//! Tensors (W = width, F = ffn_dim): `norm1.weight`, `norm1.bias [W]`,
//! `attn.in_proj_weight [3W, W]`, `attn.in_proj_bias [3W]`, `attn.out_proj.weight [W, W]`,
//! `attn.out_proj.bias [W]`; if F > 0: `norm2.weight`, `norm2.bias [W]`, `ffn.0.weight [F, W]`,
//! `ffn.0.bias [F]`, `ffn.2.weight [W, F]`, `ffn.2.bias [W]`.
//!
//! State ([`KvGeometry`]): a ring header `[next slot, filled rows]` (both always `< window`, so a
//! stream may run forever), then `K` and `V` `[window, W]` in the KV type, then for int8 KV one
//! f32 scale per cached row and head for `K` and for `V` (`[window, heads]` each).

use core::fmt;

use half::f16;

use crate::blocks::{f32s_finite, Scratch, ScratchNeed, StepCtx};
use crate::error::Error;
use crate::format::BlockEntry;
use crate::kernels::{self, all_finite, layer_norm, matvec, quantize_i8, Mat};
use crate::limits::MAX_DIM;
use crate::schema::{dim, Activation, BlockKind, DType, Norm, TensorName, TensorSource};
use crate::slices::{copy, head, head_mut, le_u16, range, range_mut, split, split_mut};

/// A causal sliding-window attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AttentionSpec {
    /// Width (input = output).
    pub width: usize,
    /// Heads (divide `width`).
    pub heads: usize,
    /// Cached steps, this one included (≥ 1).
    pub window: usize,
    /// FFN width (0: no FFN).
    pub ffn_dim: usize,
    /// FFN activation.
    pub activation: Activation,
}

impl fmt::Display for AttentionSpec {
    /// `attention width 96, 4 heads, window 48, ffn 192 gelu`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attention width {}, {} heads, window {}",
            self.width, self.heads, self.window
        )?;
        if self.ffn_dim > 0 {
            write!(f, ", ffn {} {}", self.ffn_dim, self.activation)?;
        }
        Ok(())
    }
}

/// The block's weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weights<'a> {
    norm1: Norm<'a>,     // [W]
    in_proj: Mat<'a>,    // [3W, W]
    in_bias: &'a [f32],  // [3W]
    out_proj: Mat<'a>,   // [W, W]
    out_bias: &'a [f32], // [W]
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

/// Where an attention block's state lives inside its slice of the arena (words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvGeometry {
    /// Words of each of the `K` and `V` caches (`[window, W]` in the KV type, rounded up).
    pub cache: usize,
    /// f32 scales of each of `K` and `V` (`[window, heads]` for int8, else 0).
    pub scales: usize,
    /// Ring header (2) + both caches + both scale arrays.
    pub total: usize,
}

impl AttentionSpec {
    /// Decodes and validates the kind-specific fields of an entry (`in_width` already checked).
    pub(crate) fn decode(e: &BlockEntry) -> Result<Self, Error> {
        let width = e.in_width as usize;
        let hidden = dim(e.hidden, "block hidden")?;
        if e.num_layers != 1 || e.flags != 0 || hidden != width {
            return Err(Error::Malformed {
                what: "attention block fields",
            });
        }
        if e.heads == 0 || width % e.heads as usize != 0 {
            return Err(Error::Malformed {
                what: "attention heads",
            });
        }
        if e.window == 0 {
            return Err(Error::Malformed {
                what: "attention window",
            });
        }
        if e.ffn_dim as usize > MAX_DIM {
            return Err(Error::Malformed { what: "ffn_dim" });
        }
        Ok(AttentionSpec {
            width,
            heads: e.heads as usize,
            window: e.window as usize,
            ffn_dim: e.ffn_dim as usize,
            activation: Activation::from_u8(e.activation)
                .ok_or(Error::Malformed { what: "activation" })?,
        })
    }

    /// The block-table entry (without `first_tensor`).
    pub(crate) fn encode(&self) -> BlockEntry {
        BlockEntry {
            kind: BlockKind::Attention.code(),
            flags: 0,
            activation: self.activation.code(),
            reserved: 0,
            num_layers: 1,
            in_width: self.width as u32,
            hidden: self.width as u32,
            heads: self.heads as u32,
            window: self.window as u32,
            ffn_dim: self.ffn_dim as u32,
            first_tensor: 0,
        }
    }

    /// Every tensor of the block, in order.
    pub(crate) fn weights<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) -> Weights<'a> {
        let w = self.width;
        let f = self.ffn_dim;
        let name = |module, param| TensorName {
            block: Some(index),
            module,
            param,
            layer: None,
        };
        Weights {
            norm1: Norm::read(t, Some(index), "norm1", w),
            in_proj: t.mat(name("attn", "in_proj_weight"), 3 * w, w),
            in_bias: t.vector(name("attn", "in_proj_bias"), 3 * w),
            out_proj: t.mat(name("attn.out_proj", "weight"), w, w),
            out_bias: t.vector(name("attn.out_proj", "bias"), w),
            ffn: (f > 0).then(|| Ffn {
                norm2: Norm::read(t, Some(index), "norm2", w),
                w1: t.mat(name("ffn.0", "weight"), f, w),
                b1: t.vector(name("ffn.0", "bias"), f),
                w2: t.mat(name("ffn.2", "weight"), w, f),
                b2: t.vector(name("ffn.2", "bias"), w),
            }),
        }
    }

    /// The state layout for a KV cache of type `kv` (`None` if it overflows `usize`).
    pub fn kv_geometry(&self, kv: DType) -> Option<KvGeometry> {
        let cache = self
            .window
            .checked_mul(self.width)?
            .checked_mul(kv.size())?
            .div_ceil(4);
        let scales = if kv == DType::I8 {
            self.window.checked_mul(self.heads)?
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
        if st.len() != geo.total * 4 {
            return false;
        }
        let Some((ring, rest)) = st.split_first_chunk::<8>() else {
            return false;
        };
        let [n0, n1, n2, n3, f0, f1, f2, f3] = *ring;
        let next = u32::from_le_bytes([n0, n1, n2, n3]) as usize;
        let filled = u32::from_le_bytes([f0, f1, f2, f3]) as usize;
        if next >= self.window || filled > self.window {
            return false;
        }
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

    pub(crate) fn scratch(&self) -> ScratchNeed {
        let w = self.width;
        ScratchNeed {
            width: w,
            g: (3 * w).max(self.ffn_dim),
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
        b: &Weights<'_>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        ctx: StepCtx,
    ) -> bool {
        let w = self.width;
        let heads = self.heads;
        // `max(1)`: validation guarantees `heads` ≥ 1 dividing `w`; it keeps the division and
        // the `chunks_exact` below total.
        let hd = (w / heads.max(1)).max(1); // head width
        let window = self.window;
        let kv = ctx.kv;
        layer_norm(
            head(s.x, w),
            b.norm1.w,
            b.norm1.b,
            ctx.eps,
            head_mut(s.u, w),
        );
        let qkv = head_mut(s.g, 3 * w); // [3W]: q | k | v
        matvec(&b.in_proj, head(s.u, w), b.in_bias, qkv, s.q8);
        let (q, rest) = split(qkv, w); // [W]
        let (k, v) = split(rest, w); // [W] each

        // Validated in `Model::from_bytes`: the state fits, so `geo` exists and `st` holds it.
        let Some(geo) = self.kv_geometry(kv) else {
            return false;
        };
        let Some((ring, rest)) = head_mut(st, geo.total).split_first_chunk_mut::<2>() else {
            return false;
        };
        let ring: &mut [u32; 2] = bytemuck::cast_mut(ring); // [next slot, filled rows]
        let next = if (ring[0] as usize) < window {
            ring[0] as usize
        } else {
            0
        };
        let filled = (ring[1] as usize + 1).min(window);
        let (kw, rest) = split_mut(rest, geo.cache); // K [window, W] in the KV type
        let (vw, scales) = split_mut(rest, geo.cache); // V [window, W]
        let (ks, vs) = split_mut(scales, geo.scales); // [window, heads] each (int8 KV)
        let mut kc = Kv::view(kw, kv);
        let mut vc = Kv::view(vw, kv);
        kc.store(next, k, hd, range_mut(ks, next * heads, heads));
        vc.store(next, v, hd, range_mut(vs, next * heads, heads));
        let finite =
            all_finite(k) && all_finite(v) && kc.row_finite(next, w) && vc.row_finite(next, w);
        ring[0] = if next + 1 < window {
            next as u32 + 1
        } else {
            0
        };
        ring[1] = filled as u32;

        let inv_sqrt = 1.0 / libm::sqrtf(hd as f32);
        let p = head_mut(s.p, filled); // [filled]
        let att = head_mut(s.g2, w); // [W], the heads' outputs side by side
        for (h, (qh, o)) in q.chunks_exact(hd).zip(att.chunks_exact_mut(hd)).enumerate() {
            let at = h * hd; // the head's columns: [at, at + hd)
            let scale_of =
                |sc: &[f32], slot: usize| sc.get(slot * heads + h).copied().unwrap_or(1.0);
            for (slot, pv) in p.iter_mut().enumerate() {
                *pv = kc.dot(slot * w + at, qh, scale_of(ks, slot)) * inv_sqrt;
            }
            kernels::softmax(p);
            o.fill(0.0);
            for (slot, &pv) in p.iter().enumerate() {
                vc.axpy(slot * w + at, pv, scale_of(vs, slot), o);
            }
        }
        matvec(&b.out_proj, att, b.out_bias, head_mut(s.u, w), s.q8);
        for (x, &v) in head_mut(s.x, w).iter_mut().zip(head(s.u, w)) {
            *x += v;
        }
        if let Some(f) = &b.ffn {
            let hidden = head_mut(s.g, f.w1.rows); // [F]
            layer_norm(
                head(s.x, w),
                f.norm2.w,
                f.norm2.b,
                ctx.eps,
                head_mut(s.u, w),
            );
            matvec(&f.w1, head(s.u, w), f.b1, hidden, s.q8);
            self.activation.apply(hidden);
            matvec(&f.w2, hidden, f.b2, head_mut(s.u, w), s.q8);
            for (x, &v) in head_mut(s.x, w).iter_mut().zip(head(s.u, w)) {
                *x += v;
            }
        }
        finite
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
                for (o, v) in out.iter_mut().zip(range(d, at, n)) {
                    *o += p * v.to_f32();
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
