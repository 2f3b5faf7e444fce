//! The recurrent block kinds, `lstm` and `gru`: an optional pre-norm, `num_layers` stacked
//! `nn.LSTM` / `nn.GRU` layers, and an optional residual connection.
//!
//! Tensors (G = 4 for LSTM, 3 for GRU; W = input width, H = hidden, R = the recurrent width:
//! `proj_size` P if set, else H): `norm.weight [W]`, and for a LayerNorm `norm.bias [W]` (if
//! norm); per layer K: `{cell}.weight_ih_lK [G·H, in_K]`, `{cell}.weight_hh_lK [G·H, R]`,
//! `{cell}.bias_ih_lK [G·H]`, `{cell}.bias_hh_lK [G·H]` (zeros if the layers have no bias), and
//! with `proj_size`, `lstm.weight_hr_lK [P, H]` (`in_0` = W, `in_K` = R after).
//!
//! State per layer: `h [R]`, and `c [H]` for LSTM.

use core::fmt;

use crate::blocks::{Probe, Scratch, ScratchNeed, Site, StepCtx};
use crate::error::Error;
use crate::format::BlockEntry;
use crate::kernels::integer::{
    lstm_cell, norm_i8, rq_at, sat_i16, sat_i8, sat_x, sigmoid_q15, tanh_q15, IntMat,
};
use crate::kernels::{all_finite, matvec, sigmoid_in_place, tanh_in_place, Mat};
use crate::schema::{dim, int_mat, BlockKind, IntPart, Norm, NormKind, TensorName, TensorSource};
use crate::slices::{copy, head, head_mut, split, split_mut};

/// [`BlockEntry::flags`] bit: pre-norm.
pub const FLAG_NORM: u8 = 1;
/// [`BlockEntry::flags`] bit: residual connection.
pub const FLAG_RESIDUAL: u8 = 2;
/// [`BlockEntry::no_bias`] bit: the layers have no `bias_ih_lK` / `bias_hh_lK`.
pub const NO_BIAS_LAYERS: u32 = 1;
/// [`BlockEntry::no_bias`] bit: the pre-norm (a LayerNorm) has no `norm.bias`.
pub const NO_BIAS_NORM: u32 = 2;

/// Calibration site: the int8 input of layer 0 (the pre-norm's output, or the block input).
pub const SITE_IN: &str = "in";
/// Calibration site: an LSTM layer's cell state `c` (int16 in the integer mode).
pub const SITE_C: &str = "c";
/// Calibration site: an LSTM layer's projected `h` (`proj_size`; int8). Without a projection `h`
/// lies in (−1, 1) and its grid is fixed (1/127).
pub const SITE_H: &str = "h";

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

    /// The block kind (and its code).
    pub const fn kind(self) -> BlockKind {
        match self {
            Cell::Lstm => BlockKind::Lstm,
            Cell::Gru => BlockKind::Gru,
        }
    }

    /// Name in the config and in tensor names (`lstm`, `gru`).
    pub const fn name(self) -> &'static str {
        self.kind().name()
    }
}

/// An LSTM or GRU block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecurrentSpec {
    /// Cell type.
    pub cell: Cell,
    /// Stacked layers (≥ 1).
    pub num_layers: usize,
    /// Input width.
    pub in_width: usize,
    /// Hidden width (the output width unless `proj_size` is set).
    pub hidden: usize,
    /// LSTM projection size (0 = none, else below `hidden`): the width of `h` and the output.
    pub proj_size: usize,
    /// Pre-norm.
    pub norm: bool,
    /// Residual connection (then the output width equals `in_width`).
    pub residual: bool,
    /// The module of the pre-norm (the model's `norm_kind`).
    pub norm_kind: NormKind,
    /// The layers have biases.
    pub bias: bool,
    /// The pre-norm (a LayerNorm) has a bias.
    pub norm_bias: bool,
}

impl fmt::Display for RecurrentSpec {
    /// `lstm x2 96 -> 96, norm, residual` (and `hidden 128 proj 96`, `rms norm`,
    /// `no bias: layers, norm` where they apply).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<4} x{} {} -> {}",
            self.cell.name(),
            self.num_layers,
            self.in_width,
            self.out_width()
        )?;
        if self.proj_size > 0 {
            write!(f, " (hidden {}, proj {})", self.hidden, self.proj_size)?;
        }
        if self.norm {
            f.write_str(match self.norm_kind {
                NormKind::Layer => ", norm",
                NormKind::Rms => ", rms norm",
            })?;
        }
        if self.residual {
            f.write_str(", residual")?;
        }
        let no_norm_bias = self.norm && self.norm_kind == NormKind::Layer && !self.norm_bias;
        match (!self.bias, no_norm_bias) {
            (true, true) => f.write_str(", no bias: layers, norm"),
            (true, false) => f.write_str(", no bias: layers"),
            (false, true) => f.write_str(", no bias: norm"),
            (false, false) => Ok(()),
        }
    }
}

/// One stacked layer's weights in the integer mode.
#[derive(Debug, Clone, Copy)]
struct IntLayer<'a> {
    w_ih: IntMat<'a>,         // [G*H, in_K] → Q3.12
    w_hh: IntMat<'a>,         // [G*H, R] → Q3.12
    cell: &'a [i32], // LSTM [2·3]: i·g (Q0.30) → c grid, c → Q3.12, o·tanh(c) (Q0.30) → int8
    w_hr: Option<IntMat<'a>>, // [P, H] → the h grid (proj_size)
}

/// One stacked layer's weights.
#[derive(Debug, Clone, Copy)]
struct Layer<'a> {
    w_ih: Mat<'a>,         // [G*H, in_K]
    w_hh: Mat<'a>,         // [G*H, H]
    b_ih: &'a [f32],       // [G*H]
    b_hh: &'a [f32],       // [G*H]
    w_hr: Option<Mat<'a>>, // [P, H] (proj_size)
}

impl RecurrentSpec {
    /// Decodes and validates the kind-specific fields of an entry (`in_width` already checked).
    pub(crate) fn decode(e: &BlockEntry, cell: Cell, norm_kind: NormKind) -> Result<Self, Error> {
        let hidden = dim(e.hidden, "block hidden")?;
        let num_layers = dim(e.num_layers, "recurrent block fields")?;
        if e.heads != 0
            || e.window != 0
            || e.ffn_dim != 0
            || e.activation != 0
            || e.pos != 0
            || e.kv_heads != 0
            || e.rope_theta.to_bits() != 0
        {
            return Err(Error::Malformed {
                what: "recurrent block fields",
            });
        }
        // `proj_size`: LSTM only, below `hidden` (as `nn.LSTM` requires).
        let proj_size = e.proj_size as usize;
        if proj_size != 0 && (cell != Cell::Lstm || proj_size >= hidden) {
            return Err(Error::Malformed { what: "proj_size" });
        }
        let norm = e.flags & FLAG_NORM != 0;
        let norm_bias_bit = norm && norm_kind == NormKind::Layer;
        let allowed = NO_BIAS_LAYERS | if norm_bias_bit { NO_BIAS_NORM } else { 0 };
        if e.no_bias & !allowed != 0 {
            return Err(Error::Malformed { what: "no_bias" });
        }
        if e.flags & !(FLAG_NORM | FLAG_RESIDUAL) != 0 {
            return Err(Error::Malformed {
                what: "block flags",
            });
        }
        let spec = RecurrentSpec {
            cell,
            num_layers,
            in_width: e.in_width as usize,
            hidden,
            proj_size,
            norm,
            residual: e.flags & FLAG_RESIDUAL != 0,
            norm_kind,
            bias: e.no_bias & NO_BIAS_LAYERS == 0,
            norm_bias: e.no_bias & NO_BIAS_NORM == 0,
        };
        if spec.residual && spec.out_width() != spec.in_width {
            return Err(Error::Malformed {
                what: "residual block hidden",
            });
        }
        Ok(spec)
    }

    /// The block-table entry (without `first_tensor`).
    pub(crate) fn encode(&self) -> BlockEntry {
        BlockEntry {
            kind: self.cell.kind().code(),
            flags: (if self.norm { FLAG_NORM } else { 0 })
                | (if self.residual { FLAG_RESIDUAL } else { 0 }),
            activation: 0,
            pos: 0,
            num_layers: self.num_layers as u32,
            in_width: self.in_width as u32,
            hidden: self.hidden as u32,
            heads: 0,
            window: 0,
            ffn_dim: 0,
            first_tensor: 0,
            kv_heads: 0,
            proj_size: self.proj_size as u32,
            rope_theta: 0.0,
            no_bias: (if self.bias { 0 } else { NO_BIAS_LAYERS })
                | (if self.norm_bias || !self.norm || self.norm_kind == NormKind::Rms {
                    0
                } else {
                    NO_BIAS_NORM
                }),
        }
    }

    /// The block's output width: `proj_size` if set, else `hidden`.
    pub fn out_width(&self) -> usize {
        self.rec_width()
    }

    /// The width of the recurrent state `h`: `proj_size` if set, else `hidden`.
    fn rec_width(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden
        }
    }

    fn norm<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) -> Option<Norm<'a>> {
        self.norm.then(|| {
            Norm::read(
                t,
                Some(index),
                "norm",
                self.in_width,
                self.norm_kind,
                self.norm_bias,
            )
        })
    }

    /// Layer `k`'s tensors (read in order after the norm and layers `0..k`).
    fn layer<'a>(&self, index: usize, k: usize, t: &mut impl TensorSource<'a>) -> Layer<'a> {
        let g = self.cell.gates() * self.hidden;
        let r = self.rec_width();
        let in_k = if k == 0 { self.in_width } else { r };
        let name = |param| TensorName {
            block: Some(index),
            module: self.cell.name(),
            param,
            layer: Some(k),
        };
        Layer {
            w_ih: t.mat(name("weight_ih_l"), g, in_k),
            w_hh: t.mat(name("weight_hh_l"), g, r),
            b_ih: t.bias(name("bias_ih_l"), g, self.bias),
            b_hh: t.bias(name("bias_hh_l"), g, self.bias),
            w_hr: (self.proj_size > 0)
                .then(|| t.mat(name("weight_hr_l"), self.proj_size, self.hidden)),
        }
    }

    /// Every tensor of the block, in order (the integer plan's with an integer source).
    pub(crate) fn plan<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) {
        if t.integer() {
            self.int_input(index, t);
            for k in 0..self.num_layers {
                self.int_layer(index, k, t);
            }
            self.int_out(index, t);
            return;
        }
        self.norm(index, t);
        for k in 0..self.num_layers {
            self.layer(index, k, t);
        }
    }

    /// State words of one layer: `h [R]`, and `c [H]` for LSTM.
    fn layer_words(&self) -> Option<usize> {
        match self.cell {
            Cell::Lstm => self.rec_width().checked_add(self.hidden),
            Cell::Gru => Some(self.hidden),
        }
    }

    /// `num_layers × (R + H)` words for LSTM, `num_layers × H` for GRU.
    pub(crate) fn state_words(&self) -> Option<usize> {
        self.num_layers.checked_mul(self.layer_words()?)
    }

    /// Integer mode, words of one layer: `h [R]` int8, and `c [H]` int16 for LSTM.
    fn int_layer_words(&self) -> usize {
        let h = self.rec_width().div_ceil(4);
        match self.cell {
            Cell::Lstm => h + self.hidden.div_ceil(2),
            Cell::Gru => h,
        }
    }

    /// Integer mode: `num_layers × (⌈R/4⌉ + ⌈H/2⌉)` words for LSTM, `num_layers × ⌈H/4⌉` for
    /// GRU.
    pub(crate) fn int_state_words(&self) -> Option<usize> {
        self.num_layers.checked_mul(self.int_layer_words())
    }

    pub(crate) fn scratch(&self) -> ScratchNeed {
        let gates = self.cell.gates() * self.hidden;
        let width = self.in_width.max(self.hidden);
        ScratchNeed {
            width,
            g: gates,
            g2: gates,
            p: 0,
            q: width,
        }
    }

    /// One step: `s.x[..in_width]` → `s.x[..hidden]`. Returns whether the new state is finite.
    ///
    /// Slices are taken with [`crate::slices`] (no panic path); on a validated model they have
    /// exactly the lengths written next to them.
    pub(crate) fn step<'a>(
        &self,
        index: usize,
        t: &mut impl TensorSource<'a>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        ctx: StepCtx,
        probe: &mut impl Probe,
    ) -> bool {
        let site = |name, layer| Site {
            block: Some(index),
            name,
            layer,
        };
        let w = self.in_width;
        let hid = self.hidden;
        let rw = self.rec_width(); // R: the width of h and of the output
        let per = self.layer_words().unwrap_or(0); // state words per layer
        let gn = self.cell.gates() * hid;
        {
            let (x, u) = (head(s.x, w), head_mut(s.u, w)); // [W]
            match self.norm(index, t) {
                Some(n) => n.apply(x, ctx.eps, u),
                None => copy(u, x),
            }
            probe.see(site(SITE_IN, None), u);
        }
        let layers = head_mut(st, self.num_layers * per);
        // `max(1)`: `per` ≥ 1 on a validated model; it only keeps `chunks_exact_mut` total.
        for (k, layer) in layers.chunks_exact_mut(per.max(1)).enumerate() {
            let l = self.layer(index, k, t);
            let input = head(s.u, if k == 0 { w } else { rw }); // [in_K]
            let gi = head_mut(s.g, gn); // [G*H]
            let gh = head_mut(s.g2, gn); // [G*H]
            let (h, c) = split_mut(layer, rw); // h [R], c [H] (empty for GRU)
            matvec(&l.w_ih, input, l.b_ih, gi, s.q8);
            matvec(&l.w_hh, h, l.b_hh, gh, s.q8);
            // pre-activations, then each gate's nonlinearity over all H units at once (the
            // batch kernels give the scalar functions' bits, several lanes at a time)
            match self.cell {
                Cell::Lstm => {
                    // gates i, f, g, o: rows [0, H), [H, 2H), [2H, 3H), [3H, 4H)
                    for (a, &b) in gi.iter_mut().zip(gh.iter()) {
                        *a += b;
                    }
                    let (i_f, rest) = split_mut(gi, 2 * hid);
                    let (g, o) = split_mut(rest, hid);
                    sigmoid_in_place(i_f);
                    tanh_in_place(g);
                    sigmoid_in_place(o);
                    let (i, f) = split(i_f, hid);
                    let cn = head_mut(gh, hid); // c's new value, then its tanh
                    for ((((cj, cn), &i), &f), &g) in
                        c.iter_mut().zip(cn.iter_mut()).zip(i).zip(f).zip(g.iter())
                    {
                        *cj = f * *cj + i * g;
                        *cn = *cj;
                    }
                    probe.see(site(SITE_C, Some(k)), c);
                    tanh_in_place(cn);
                    match &l.w_hr {
                        None => {
                            for ((hj, &o), &t) in h.iter_mut().zip(o.iter()).zip(cn.iter()) {
                                *hj = o * t;
                            }
                        }
                        Some(w_hr) => {
                            // h = W_hr · (o ∘ tanh(c')), no bias: gi's first P entries (the i
                            // and f gates, consumed) serve as the zero bias.
                            for (t, &o) in cn.iter_mut().zip(o.iter()) {
                                *t *= o;
                            }
                            let zero = head_mut(gi, rw);
                            zero.fill(0.0);
                            matvec(w_hr, cn, zero, h, s.q8);
                            probe.see(site(SITE_H, Some(k)), h);
                        }
                    }
                }
                Cell::Gru => {
                    // gates r, z, n: the same three row ranges
                    let (rz, ni) = split_mut(gi, 2 * hid);
                    let (rzh, nh) = split(gh, 2 * hid);
                    for (a, &b) in rz.iter_mut().zip(rzh) {
                        *a += b;
                    }
                    sigmoid_in_place(rz);
                    let (r, z) = split(rz, hid);
                    for ((n, &r), &nh) in ni.iter_mut().zip(r).zip(nh) {
                        *n += r * nh;
                    }
                    tanh_in_place(ni);
                    for ((hj, &z), &n) in h.iter_mut().zip(z).zip(ni.iter()) {
                        *hj = (1.0 - z) * n + z * *hj;
                    }
                }
            }
            // The new h is the next layer's input, and the top layer's is the block's output.
            copy(head_mut(s.u, rw), h);
        }
        let h = head(s.u, rw); // [R], the top layer's new h
        let x = head_mut(s.x, rw);
        if self.residual {
            for (x, &v) in x.iter_mut().zip(h) {
                *x += v;
            }
        } else {
            copy(x, h);
        }
        all_finite(layers)
    }

    fn tname(&self, index: usize, param: &'static str, layer: Option<usize>) -> TensorName {
        TensorName {
            block: Some(index),
            module: self.cell.name(),
            param,
            layer,
        }
    }

    /// Integer plan: the pre-norm ([`IntPart::Norm`] of `norm.weight`), or without one the
    /// requantization of the residual stream onto layer 0's input grid (`{cell}.input`, `[2]`).
    fn int_input<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) -> &'a [i32] {
        if self.norm {
            let name = TensorName {
                block: Some(index),
                module: "norm",
                param: "weight",
                layer: None,
            };
            t.ints(name, IntPart::Norm, 2 * self.in_width + 3)
        } else {
            t.ints(self.tname(index, "input", None), IntPart::Requant, 2)
        }
    }

    /// Integer plan: layer `k`'s matrices (each with its [`IntPart::Rq`] and [`IntPart::Bias`]),
    /// for LSTM its three cell requantizations (`{cell}.cell_lK`, `[6]`), and with `proj_size`
    /// `weight_hr_lK` (its bias words are zeros).
    fn int_layer<'a>(&self, index: usize, k: usize, t: &mut impl TensorSource<'a>) -> IntLayer<'a> {
        let g = self.cell.gates() * self.hidden;
        let r = self.rec_width();
        let in_k = if k == 0 { self.in_width } else { r };
        IntLayer {
            w_ih: int_mat(t, self.tname(index, "weight_ih_l", Some(k)), g, in_k),
            w_hh: int_mat(t, self.tname(index, "weight_hh_l", Some(k)), g, r),
            cell: match self.cell {
                Cell::Lstm => t.ints(self.tname(index, "cell_l", Some(k)), IntPart::Requant, 6),
                Cell::Gru => &[],
            },
            w_hr: (self.proj_size > 0).then(|| {
                int_mat(
                    t,
                    self.tname(index, "weight_hr_l", Some(k)),
                    self.proj_size,
                    self.hidden,
                )
            }),
        }
    }

    /// Integer plan: the requantization of the top layer's `h` onto the residual grid
    /// (`{cell}.output`, `[2]`).
    fn int_out<'a>(&self, index: usize, t: &mut impl TensorSource<'a>) -> &'a [i32] {
        t.ints(self.tname(index, "output", None), IntPart::Requant, 2)
    }

    /// One step of the integer mode (docs/INTEGER.md): `s.x` holds the residual stream as i32
    /// `[in_width]` and is left holding the block's output `[out_width]`; `st` is the block's
    /// integer state (per layer `h [R]` int8, then for LSTM `c [H]` int16). No floating point.
    #[inline(never)]
    pub(crate) fn step_int<'a>(
        &self,
        index: usize,
        t: &mut impl TensorSource<'a>,
        st: &mut [f32],
        s: &mut Scratch<'_>,
        rms: bool,
    ) {
        let w = self.in_width;
        let hid = self.hidden;
        let rw = self.rec_width();
        let gn = self.cell.gates() * hid;
        let per = self.int_layer_words();
        let x: &mut [i32] = bytemuck::cast_slice_mut(&mut *s.x); // [W] residual stream
        let u: &mut [i8] = bytemuck::cast_slice_mut(&mut *s.u); // int8 matrix input
        let p = self.int_input(index, t);
        if self.norm {
            norm_i8(head(x, w), p, rms, head_mut(u, w));
        } else {
            rq_at(p, 0).to_i8(head(x, w), head_mut(u, w));
        }
        let layers = head_mut(st, self.num_layers * per);
        for (k, layer) in layers.chunks_exact_mut(per.max(1)).enumerate() {
            let l = self.int_layer(index, k, t);
            let (hw, cw) = split_mut(layer, rw.div_ceil(4));
            let h: &mut [i8] = head_mut(bytemuck::cast_slice_mut(hw), rw); // [R]
            let c: &mut [i16] = head_mut(bytemuck::cast_slice_mut(cw), hid); // [H] (LSTM)
            let gi: &mut [i32] = head_mut(bytemuck::cast_slice_mut(&mut *s.g), gn); // [G*H]
            let gh: &mut [i32] = head_mut(bytemuck::cast_slice_mut(&mut *s.g2), gn); // [G*H]
            l.w_ih.sums(head(u, if k == 0 { w } else { rw }), gi);
            l.w_hh.sums(h, gh);
            // both onto Q3.12 (kept in i32 until the sum saturates to the tables' range); the
            // LSTM adds them at once (`gi` = the gates' pre-activations), the GRU needs `W_hn h`
            l.w_ih.requant(gi, q12);
            if self.cell == Cell::Lstm {
                l.w_hh
                    .requant_into(gh, gi, |a, b| sat_i16(a + q12(b)) as i32);
            } else {
                l.w_hh.requant(gh, q12);
            }
            let (g0, g1) = split(gi, 2 * hid); // LSTM i|f, g|o; GRU r|z, n
            let (h0, h1) = split(gh, 2 * hid);
            let gate = |a: &[i32], b: &[i32], j: usize| {
                sat_i16(a.get(j).copied().unwrap_or(0) + b.get(j).copied().unwrap_or(0))
            };
            match self.cell {
                Cell::Lstm => {
                    let (rq_ig, rq_c, rq_h) =
                        (rq_at(l.cell, 0), rq_at(l.cell, 1), rq_at(l.cell, 2));
                    // o ∘ tanh(c') on the int8 grid: h itself, or W_hr's input
                    let m: &mut [i8] = match l.w_hr {
                        None => &mut *h,
                        Some(_) => head_mut(&mut *s.q8, hid),
                    };
                    lstm_cell(gi, hid, [rq_ig, rq_c, rq_h], c, m);
                    if let Some(w_hr) = &l.w_hr {
                        let sums = head_mut(bytemuck::cast_slice_mut(&mut *s.g), rw);
                        w_hr.to_i8(head(s.q8, hid), sums, h);
                    }
                }
                Cell::Gru => {
                    for (j, hj) in h.iter_mut().enumerate() {
                        let r = sigmoid_q15(gate(g0, h0, j)) as i32;
                        let z = sigmoid_q15(gate(g0, h0, hid + j)) as i64;
                        let nh = h1.get(j).copied().unwrap_or(0);
                        let ni = g1.get(j).copied().unwrap_or(0);
                        // |r · nh| ≤ 2^15 · 2^29: in i64, then back to the Q3.12 range
                        let rn = ((r as i64 * nh as i64 + (1 << 14)) >> 15) as i32;
                        let n = tanh_q15(sat_i16(ni.saturating_add(rn))) as i64;
                        // h' = (1 − z)·n + z·h: Q0.30 on the h grid (1/127)
                        let v = (32768 - z) * n * 127 + z * (*hj as i64) * 32768;
                        *hj = sat_i8(((v + (1 << 29)) >> 30) as i32); // |v| < 2^38
                    }
                }
            }
            copy(head_mut(u, rw), h);
        }
        let rq = rq_at(self.int_out(index, t), 0);
        for (o, &v) in head_mut(x, rw).iter_mut().zip(head(u, rw)) {
            let base = if self.residual { *o } else { 0 };
            *o = sat_x(base.saturating_add(rq.apply_i32(v as i32)));
        }
    }
}

/// `v` saturated to `[−2^29, 2^29 − 1]` (one `SSAT` on a Cortex-M): Q3.12 pre-activations, far
/// beyond the tables' ±8; two of them add up without overflowing i32.
#[inline(always)]
fn q12(v: i32) -> i32 {
    v.clamp(-(1 << 29), (1 << 29) - 1)
}
