//! Microbenchmarks of the int8 matrix kernels, the side-by-side comparison
//! with CMSIS-NN, and the per-step breakdown: instructions (or cycles) per
//! multiply-accumulate and per step.
//!
//! * `dot_i8`: [`runnel::kernels::dot_i8`], the dispatching dot product (on
//!   `thumbv7em` the DSP `SXTB16`/`SMLAD` variant, on RV32 the 4-way unrolled
//!   one, elsewhere the reference), over [`LEN`]-long vectors, [`DOT_CALLS`]
//!   times (one weight row per call).
//! * `reference_dot_i8`: [`runnel::kernels::reference::dot_i8`], the same.
//! * `matvec_i8`: [`runnel::kernels::matvec`] on a `[ROWS, LEN]` int8
//!   [`Mat`], [`MATVEC_CALLS`] times: includes quantizing the f32 input to
//!   int8 and the per-row rescale and bias, i.e. what one int8 layer costs.
//! * The demo model's own matrix shapes, read from the first blob
//!   ([`Model::blocks`]): per distinct shape `bench shape=…` lines for
//!   runnel's `matvec` (f32 in, quantize + rows), runnel's row kernel
//!   [`kernels::rows_i8`] (int8 in, f32 out), its integer part
//!   [`kernels::dot_rows_i8`] (int8 in, exact i32 sums) and, on the Cortex-M4F QEMU
//!   build, CMSIS-NN's `arm_fully_connected_s8` (int8 in, int8 out), then the
//!   products of one step in model order (`bench kernel=step_…` lines, in the
//!   budget) and a `bench step …` summary.
//! * The per-step breakdown (`bench part=…`): matrix products, of which
//!   quantizing their inputs and the per-row rescale; attention over a full
//!   KV cache (int8: storing K and V, scores, softmax, weighted sum); the
//!   LayerNorms; the activations (LSTM/GRU gate non-linearities and cell
//!   update, FFN activation); beside a measured whole step of the int8 blob
//!   with a full cache (`model::FULL_WINDOW_STEP`, timed after its demo run),
//!   so that the remainder (input layer, residual adds, weight views, checks)
//!   is visible.
//!
//! Log lines:
//!
//! ```text
//! bench kernel=<name> variant=<v> rows=<n> cols=<n> calls=<n> macs=<n> <unit>=<n> milli_<unit>_per_mac=<n>
//! bench shape=<rows>x<cols> per_step=<n> impl=<runnel-matvec|runnel-rows|runnel-sums|cmsis-nn> calls=<n> macs=<n> <unit>=<n> milli_<unit>_per_mac=<n>
//! bench step products=<n> macs=<n> runnel_matvec=<n> runnel_rows=<n> runnel_sums=<n> cmsis_nn=<n>
//! bench part=<name> per_step_<unit>=<n> share_permille=<n>
//! ```
//!
//! The weights are bytes of an embedded blob (in flash, like real weights);
//! the timing does not depend on their values. Every optimised kernel's
//! result is checked on the target against the reference: the dot kernels'
//! sums, the row kernels and `matvec` bit for bit against
//! [`runnel::kernels::reference::rows_i8`] / `dot_rows_i8` / `quantize_i8` on
//! every shape, and
//! CMSIS-NN's outputs against its requantization of the exact sums. A
//! mismatch makes the run exit with status 1.

use core::hint::black_box;

use runnel::kernels::{self, reference, Mat, MatData};
use runnel::{Activation, BlockSpec, Cell, InputKind, Model};
use runnel_fw_common::stack::{self, StackRegion};
use runnel_fw_common::InstrCounter;

use crate::{EXIT_ERROR, EXIT_MISMATCH, EXIT_OK};

/// Vector length (columns).
pub const LEN: usize = 256;
/// Calls of each dot kernel.
pub const DOT_CALLS: usize = 64;
/// Rows of the matvec matrix.
pub const ROWS: usize = 64;
/// Calls of matvec.
pub const MATVEC_CALLS: usize = 4;
/// Largest matrix side the demo-shape benchmarks take (larger shapes are skipped).
pub const MAX_DIM: usize = 512;
/// Repetitions of each demo-shape call (the SysTick reading is ±40 instructions).
pub const SHAPE_CALLS: usize = 4;

/// Which implementation `runnel::kernels::dot_i8` dispatches to on this target.
pub const DOT_I8_VARIANT: &str = runnel::kernels::VARIANT;

fn lcg(s: &mut u32) -> u32 {
    *s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    *s
}

/// Roughly uniform in [-2, 2).
fn rand_f32(s: &mut u32) -> f32 {
    (lcg(s) >> 8) as f32 * (4.0 / 16_777_216.0) - 2.0
}

fn per_mac(n: u64, macs: u64) -> u32 {
    ((n * 1000 + macs / 2) / macs.max(1)) as u32
}

// Every kernel the bench runs is called through one of these out-of-line
// wrappers, so that each (with the assembly loops inlined into it) is in the
// firmware once rather than at every call site (about 10 instructions per
// call, negligible beside the thousands of a call).

#[inline(never)]
fn matvec_call(m: &Mat<'_>, x: &[f32], bias: &[f32], out: &mut [f32], q8: &mut [i8]) {
    kernels::matvec(m, x, bias, out, q8)
}

#[inline(never)]
fn rows_call(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    kernels::rows_i8(q, scales, cols, xq, sx, bias, out)
}

#[inline(never)]
fn sums_call(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    kernels::dot_rows_i8(q, cols, xq, sums)
}

#[inline(never)]
fn quantize_call(x: &[f32], q: &mut [i8]) -> f32 {
    kernels::quantize_i8(x, q)
}

#[inline(never)]
fn ref_rows(
    q: &[i8],
    scales: &[f32],
    cols: usize,
    xq: &[i8],
    sx: f32,
    bias: &[f32],
    out: &mut [f32],
) {
    reference::rows_i8(q, scales, cols, xq, sx, bias, out)
}

#[inline(never)]
fn ref_sums(q: &[i8], cols: usize, xq: &[i8], sums: &mut [i32]) {
    reference::dot_rows_i8(q, cols, xq, sums)
}

#[inline(never)]
fn ref_quantize(x: &[f32], q: &mut [i8]) -> f32 {
    reference::quantize_i8(x, q)
}

/// Logs one result; `rows` x `cols` MACs per call (`rows` = 1 for a dot product).
fn report<C: InstrCounter>(
    kernel: &str,
    variant: &str,
    rows: usize,
    cols: usize,
    calls: usize,
    n: u64,
) {
    let macs = (rows * cols * calls) as u64;
    defmt::info!(
        "bench kernel={=str} variant={=str} rows={=u32} cols={=u32} calls={=u32} macs={=u32} {=str}={=u64} milli_{=str}_per_mac={=u32}",
        kernel,
        variant,
        rows as u32,
        cols as u32,
        calls as u32,
        macs as u32,
        C::UNIT,
        n,
        C::UNIT,
        per_mac(n, macs)
    );
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// CMSIS-NN's per-tensor requantization (`arm_nn_requantize` without
/// `CMSIS_NN_USE_SINGLE_ROUNDING`), to check its outputs.
#[cfg(runnel_fw_cmsis_nn)]
fn cmsis_requantize(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.max(0);
    let right = (-shift).max(0);
    let v = acc.wrapping_mul(1 << left);
    let d = ((v as i64 * multiplier as i64 + (1i64 << 30)) >> 31) as i32;
    let mask = (1i32 << right) - 1;
    let rem = mask & d;
    let mut res = d >> right;
    let mut threshold = mask >> 1;
    if res < 0 {
        threshold += 1;
    }
    if rem > threshold {
        res += 1;
    }
    res
}

#[cfg(runnel_fw_cmsis_nn)]
extern "C" {
    /// `firmware/app/csrc/cmsis_fc.c`: `arm_fully_connected_s8` with symmetric
    /// int8 (all offsets 0), per-tensor `multiplier` / `shift`.
    fn runnel_bench_cmsis_fc_s8(
        input: *const i8,
        weights: *const i8,
        bias: *const i32,
        output: *mut i8,
        rows: i32,
        cols: i32,
        multiplier: i32,
        shift: i32,
    ) -> i32;
}

/// The CMSIS-NN requantization the bench uses: `acc · 2^-10` (multiplier 0.5
/// in Q31, shift −9), rounded, clamped to int8.
#[cfg(runnel_fw_cmsis_nn)]
const CMSIS_MULT: i32 = 1 << 30;
#[cfg(runnel_fw_cmsis_nn)]
const CMSIS_SHIFT: i32 = -9;

/// One `arm_fully_connected_s8` call (`rows · cols ≤ w.len()`, `xq: [cols]`,
/// `bias, out: [rows]`, checked by the caller).
#[cfg(runnel_fw_cmsis_nn)]
#[inline(never)]
fn cmsis_fc(w: &[i8], xq: &[i8], bias: &[i32], out: &mut [i8], rows: usize, cols: usize) {
    if w.len() < rows * cols || xq.len() < cols || bias.len() < rows || out.len() < rows {
        return;
    }
    // SAFETY: the lengths were checked above: the kernel reads `rows · cols`
    // weights, `cols` inputs, `rows` biases and writes `rows` outputs.
    let _ = unsafe {
        runnel_bench_cmsis_fc_s8(
            xq.as_ptr(),
            w.as_ptr(),
            bias.as_ptr(),
            out.as_mut_ptr(),
            rows as i32,
            cols as i32,
            CMSIS_MULT,
            CMSIS_SHIFT,
        )
    };
}

/// The work of one step of a model, read from its block table.
struct Plan {
    /// `(rows, cols)` of every matrix product, in step order.
    products: [(usize, usize); 32],
    n_products: usize,
    /// Width of every LayerNorm.
    norms: [usize; 16],
    n_norms: usize,
    /// `(cell, hidden)` of every recurrent layer (its gate non-linearities).
    cells: [(Cell, usize); 16],
    n_cells: usize,
    /// `(activation, width)` of every FFN activation.
    acts: [(Activation, usize); 8],
    n_acts: usize,
    /// `(width, heads, window)` of every attention block.
    attn: [(usize, usize, usize); 8],
    n_attn: usize,
}

impl Plan {
    fn of(model: &Model<'_>) -> Plan {
        let mut p = Plan {
            products: [(0, 0); 32],
            n_products: 0,
            norms: [0; 16],
            n_norms: 0,
            cells: [(Cell::Lstm, 0); 16],
            n_cells: 0,
            acts: [(Activation::Relu, 0); 8],
            n_acts: 0,
            attn: [(0, 0, 0); 8],
            n_attn: 0,
        };
        fn push<T: Copy>(a: &mut [T], n: &mut usize, v: T) {
            if let Some(s) = a.get_mut(*n) {
                *s = v;
                *n += 1;
            }
        }
        let d = model.d_model();
        if let InputKind::Frames { dim } = model.input_kind() {
            push(&mut p.products, &mut p.n_products, (d, dim));
        }
        let mut width = d;
        for b in model.blocks() {
            match b {
                BlockSpec::Recurrent(r) => {
                    if r.norm {
                        push(&mut p.norms, &mut p.n_norms, r.in_width);
                    }
                    let g = r.cell.gates() * r.hidden;
                    for k in 0..r.num_layers {
                        let i = if k == 0 { r.in_width } else { r.hidden };
                        push(&mut p.products, &mut p.n_products, (g, i));
                        push(&mut p.products, &mut p.n_products, (g, r.hidden));
                        push(&mut p.cells, &mut p.n_cells, (r.cell, r.hidden));
                    }
                }
                BlockSpec::Attention(a) => {
                    let w = a.width;
                    push(&mut p.norms, &mut p.n_norms, w);
                    push(&mut p.products, &mut p.n_products, (3 * w, w));
                    push(&mut p.attn, &mut p.n_attn, (w, a.heads, a.window));
                    push(&mut p.products, &mut p.n_products, (w, w));
                    if a.ffn_dim > 0 {
                        push(&mut p.norms, &mut p.n_norms, w);
                        push(&mut p.products, &mut p.n_products, (a.ffn_dim, w));
                        push(&mut p.acts, &mut p.n_acts, (a.activation, a.ffn_dim));
                        push(&mut p.products, &mut p.n_products, (w, a.ffn_dim));
                    }
                }
            }
            width = b.out_width();
        }
        if model.has_final_norm() {
            push(&mut p.norms, &mut p.n_norms, width);
        }
        push(
            &mut p.products,
            &mut p.n_products,
            (model.output_dim(), width),
        );
        p
    }

    fn products(&self) -> &[(usize, usize)] {
        self.products.get(..self.n_products).unwrap_or(&[])
    }

    /// The products the benchmarks can run (both sides ≤ [`MAX_DIM`]).
    fn fits(&self) -> bool {
        self.products()
            .iter()
            .all(|&(r, c)| r <= MAX_DIM && c <= MAX_DIM)
    }
}

/// Buffers of the demo-shape benchmarks (on the stack of [`run`]).
struct Bufs {
    x: [f32; MAX_DIM],
    xq: [i8; MAX_DIM],
    xq_ref: [i8; MAX_DIM],
    scales: [f32; MAX_DIM],
    bias: [f32; MAX_DIM],
    out: [f32; MAX_DIM],
    want: [f32; MAX_DIM],
    acc: [i32; MAX_DIM],
    acc_ref: [i32; MAX_DIM],
    #[cfg(runnel_fw_cmsis_nn)]
    bias_i32: [i32; MAX_DIM],
    #[cfg(runnel_fw_cmsis_nn)]
    out_i8: [i8; MAX_DIM],
}

/// Runs the benchmarks on int8 weights taken from `blob` (the first embedded
/// blob; at least `ROWS * LEN` bytes); returns the exit status.
#[inline(never)]
pub fn run<C: InstrCounter>(counter: &mut C, region: StackRegion, blob: &'static [u8]) -> i32 {
    let need = DOT_CALLS.max(ROWS) * LEN;
    if blob.len() < need {
        defmt::error!(
            "bench: blob too small ({=u32} < {=u32} bytes)",
            blob.len() as u32,
            need as u32
        );
        return EXIT_ERROR;
    }
    // SAFETY: i8 and u8 have the same size, alignment and validity.
    let wall: &[i8] =
        unsafe { core::slice::from_raw_parts(blob.as_ptr().cast::<i8>(), blob.len()) };
    let w = &wall[..need];

    // SAFETY: `region` is this core's stack.
    unsafe { stack::paint(region) };
    let mut seed = 0x5eed_1234u32;
    let mut x = [0f32; LEN];
    let mut xq = [0i8; LEN];
    for v in x.iter_mut() {
        *v = rand_f32(&mut seed);
    }
    let _ = quantize_call(&x, &mut xq);

    // dispatching dot_i8
    let t0 = counter.now();
    let mut acc_fast = 0i32;
    for row in w.chunks_exact(LEN).take(DOT_CALLS) {
        acc_fast = acc_fast.wrapping_add(kernels::dot_i8(black_box(row), black_box(&xq)));
    }
    let t1 = counter.now();
    report::<C>("dot_i8", DOT_I8_VARIANT, 1, LEN, DOT_CALLS, t1 - t0);

    // the reference kernel
    let t0 = counter.now();
    let mut acc_ref = 0i32;
    for row in w.chunks_exact(LEN).take(DOT_CALLS) {
        acc_ref = acc_ref.wrapping_add(reference::dot_i8(black_box(row), black_box(&xq)));
    }
    let t1 = counter.now();
    report::<C>("reference_dot_i8", "reference", 1, LEN, DOT_CALLS, t1 - t0);

    // one int8 layer: quantize x, ROWS dot products, rescale + bias
    let mut scales = [0f32; ROWS];
    let mut bias = [0f32; ROWS];
    for (s, b) in scales.iter_mut().zip(bias.iter_mut()) {
        *s = (1 + (lcg(&mut seed) >> 24)) as f32 * (1.0 / 8192.0);
        *b = (lcg(&mut seed) >> 8) as f32 * (1.0 / 16_777_216.0) - 0.5;
    }
    let mat = Mat {
        rows: ROWS,
        cols: LEN,
        data: MatData::I8 {
            q: &w[..ROWS * LEN],
            scales: &scales,
        },
    };
    let mut out = [0f32; ROWS];
    let t0 = counter.now();
    for _ in 0..MATVEC_CALLS {
        matvec_call(
            black_box(&mat),
            black_box(&x),
            black_box(&bias),
            &mut out,
            &mut xq,
        );
        black_box(&mut out);
    }
    let t1 = counter.now();
    report::<C>(
        "matvec_i8",
        DOT_I8_VARIANT,
        ROWS,
        LEN,
        MATVEC_CALLS,
        t1 - t0,
    );
    let mut want = [0f32; ROWS];
    let mut xq_ref = [0i8; LEN];
    let sx = ref_quantize(&x, &mut xq_ref);
    ref_rows(
        &w[..ROWS * LEN],
        &scales,
        LEN,
        &xq_ref,
        sx,
        &bias,
        &mut want,
    );
    let mut status = EXIT_OK;
    if !bits_equal(&out, &want) {
        defmt::error!("bench: matvec_i8 differs from the reference");
        status = EXIT_MISMATCH;
    }

    defmt::info!(
        "bench done dot_i8_sum={=i32} reference_sum={=i32} matvec_checksum={=u32:#010x} peak_stack_bytes={=u32}",
        acc_fast,
        acc_ref,
        runnel_fw_common::fnv1a_f32(&out),
        stack::high_water(region) as u32
    );
    if acc_fast != acc_ref {
        defmt::error!("bench: dot_i8 and reference::dot_i8 disagree");
        status = EXIT_MISMATCH;
    }

    let model = match Model::from_bytes(blob) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("bench: Model::from_bytes: {}", e);
            return EXIT_ERROR;
        }
    };
    let plan = Plan::of(&model);
    if !plan.fits() {
        defmt::warn!(
            "bench: a matrix side exceeds {=u32}: no demo-shape benchmarks",
            MAX_DIM as u32
        );
        return status;
    }
    // SAFETY: `region` is this core's stack.
    unsafe { stack::paint(region) };
    let mut b = Bufs {
        x: [0.0; MAX_DIM],
        xq: [0; MAX_DIM],
        xq_ref: [0; MAX_DIM],
        scales: [0.0; MAX_DIM],
        bias: [0.0; MAX_DIM],
        out: [0.0; MAX_DIM],
        want: [0.0; MAX_DIM],
        acc: [0; MAX_DIM],
        acc_ref: [0; MAX_DIM],
        #[cfg(runnel_fw_cmsis_nn)]
        bias_i32: [0; MAX_DIM],
        #[cfg(runnel_fw_cmsis_nn)]
        out_i8: [0; MAX_DIM],
    };
    for i in 0..MAX_DIM {
        b.x[i] = rand_f32(&mut seed);
        b.scales[i] = (1 + (lcg(&mut seed) >> 24)) as f32 * (1.0 / 8192.0);
        b.bias[i] = rand_f32(&mut seed) * 0.25;
        #[cfg(runnel_fw_cmsis_nn)]
        {
            b.bias_i32[i] = (lcg(&mut seed) >> 20) as i32 - 2048;
        }
    }
    if wall.len() < MAX_DIM * MAX_DIM {
        defmt::warn!(
            "bench: blob smaller than {=u32} bytes: no demo-shape benchmarks",
            (MAX_DIM * MAX_DIM) as u32
        );
        return status;
    }
    status = crate::worse(status, random_shapes(wall, &mut b, &mut seed));
    status = crate::worse(status, shapes::<C>(counter, &plan, wall, &mut b));
    status = crate::worse(status, step_products::<C>(counter, &plan, wall, &mut b));
    breakdown::<C>(counter, &plan, wall, &mut b);
    defmt::info!(
        "bench demo-shapes done peak_stack_bytes={=u32}",
        stack::high_water(region) as u32
    );
    status
}

/// The shared harness's row-sum check on the target (the host cannot run this build's
/// assembly): [`kernels::dot_rows_i8`] against [`reference::dot_rows_i8`] on random shapes —
/// rows 0–9, columns around every step width of the kernels (4, 8, 32) and its input chunk
/// (256), unaligned weights and inputs, a longer output whose extra element must stay untouched;
/// and [`kernels::dot_rows_bias_i8`], [`kernels::dot_rows_strided_i8`] and
/// [`kernels::dot_rows_strided_q15`] against their references on the same (strided: row starts
/// 0–8 bytes further apart than the columns; Q0.15: values past the i16 range).
#[inline(never)]
fn random_shapes(wall: &'static [i8], b: &mut Bufs, seed: &mut u32) -> i32 {
    const COLS: [usize; 22] = [
        0, 1, 3, 4, 5, 7, 8, 12, 16, 28, 31, 32, 36, 40, 64, 96, 100, 192, 252, 256, 260, 300,
    ];
    let mut status = EXIT_OK;
    for case in 0..120u32 {
        let rows = (lcg(seed) >> 16) as usize % 10;
        let cols = COLS[(lcg(seed) >> 16) as usize % COLS.len()];
        let at = (lcg(seed) >> 16) as usize % 4096;
        let q = &wall[at..at + rows * cols];
        let xa = (lcg(seed) >> 16) as usize % 4096;
        let xq = &wall[xa..xa + cols];
        let n = (rows + 1).min(MAX_DIM);
        b.acc[..n].fill(-7);
        b.acc_ref[..n].fill(-7);
        sums_call(black_box(q), cols, black_box(xq), &mut b.acc[..n]);
        ref_sums(q, cols, xq, &mut b.acc_ref[..n]);
        let mut same = b.acc[..n] == b.acc_ref[..n];
        // with a bias (the integer step's products), whose length may be short of the rows
        let mut bias = [0i32; 10];
        for v in bias.iter_mut() {
            *v = lcg(seed) as i32 >> 8;
        }
        let bias = &bias[..(lcg(seed) >> 16) as usize % 11];
        b.acc[..n].fill(-7);
        b.acc_ref[..n].fill(-7);
        kernels::dot_rows_bias_i8(black_box(q), cols, black_box(xq), bias, &mut b.acc[..n]);
        reference::dot_rows_bias_i8(q, cols, xq, bias, &mut b.acc_ref[..n]);
        same &= b.acc[..n] == b.acc_ref[..n];
        // strided (the attention's cached keys and transposed values), int8 and Q0.15 vectors
        let stride = cols + 4 * ((lcg(seed) >> 16) as usize % 3);
        let sq = &wall[at..at + rows * stride];
        let mut p = [0i32; 300];
        for v in p[..cols].iter_mut() {
            *v = lcg(seed) as i32 >> (lcg(seed) >> 27);
        }
        b.acc[..n].fill(-7);
        b.acc_ref[..n].fill(-7);
        kernels::dot_rows_strided_i8(black_box(sq), stride, black_box(xq), &mut b.acc[..n]);
        reference::dot_rows_strided(sq, stride, xq, &[], &mut b.acc_ref[..n]);
        same &= b.acc[..n] == b.acc_ref[..n];
        b.acc[..n].fill(-7);
        b.acc_ref[..n].fill(-7);
        kernels::dot_rows_strided_q15(black_box(sq), stride, &p[..cols], &mut b.acc[..n]);
        reference::dot_rows_strided(sq, stride, &[], &p[..cols], &mut b.acc_ref[..n]);
        same &= b.acc[..n] == b.acc_ref[..n];
        if !same {
            defmt::error!(
                "bench: dot_rows_i8 {=u32}x{=u32} (case {=u32}, offsets {=u32}/{=u32}) differs from the reference",
                rows as u32,
                cols as u32,
                case,
                at as u32,
                xa as u32
            );
            status = EXIT_MISMATCH;
        }
    }
    if status == EXIT_OK {
        defmt::info!("bench: dot_rows_i8 equals the reference on 120 random shapes");
    }
    status
}

/// Per distinct shape: runnel's `matvec`, runnel's row kernel, CMSIS-NN;
/// each checked against the reference.
#[inline(never)]
fn shapes<C: InstrCounter>(counter: &mut C, plan: &Plan, wall: &'static [i8], b: &mut Bufs) -> i32 {
    let mut status = EXIT_OK;
    let products = plan.products();
    for (i, &(rows, cols)) in products.iter().enumerate() {
        if products[..i].contains(&(rows, cols)) {
            continue;
        }
        let per_step = products.iter().filter(|&&s| s == (rows, cols)).count();
        let wq = &wall[..rows * cols];
        let mat = Mat {
            rows,
            cols,
            data: MatData::I8 {
                q: wq,
                scales: &b.scales[..rows],
            },
        };
        let macs = (rows * cols * SHAPE_CALLS) as u64;
        let line = |imp: &str, n: u64| {
            defmt::info!(
                "bench shape={=u32}x{=u32} per_step={=u32} impl={=str} calls={=u32} macs={=u32} {=str}={=u64} milli_{=str}_per_mac={=u32}",
                rows as u32,
                cols as u32,
                per_step as u32,
                imp,
                SHAPE_CALLS as u32,
                macs as u32,
                C::UNIT,
                n,
                C::UNIT,
                per_mac(n, macs)
            )
        };

        // runnel matvec: f32 in (quantized here), f32 out
        let t0 = counter.now();
        for _ in 0..SHAPE_CALLS {
            matvec_call(
                black_box(&mat),
                black_box(&b.x[..cols]),
                black_box(&b.bias[..rows]),
                &mut b.out[..rows],
                &mut b.xq[..cols],
            );
            black_box(&mut b.out);
        }
        line("runnel-matvec", counter.now() - t0);
        let sx = ref_quantize(&b.x[..cols], &mut b.xq_ref[..cols]);
        ref_rows(
            wq,
            &b.scales[..rows],
            cols,
            &b.xq_ref[..cols],
            sx,
            &b.bias[..rows],
            &mut b.want[..rows],
        );
        if !bits_equal(&b.out[..rows], &b.want[..rows]) {
            defmt::error!(
                "bench: matvec {=u32}x{=u32} differs from the reference",
                rows as u32,
                cols as u32
            );
            status = EXIT_MISMATCH;
        }

        // runnel row kernel: int8 in, f32 out (what CMSIS-NN's kernel does, plus the rescale)
        let t0 = counter.now();
        for _ in 0..SHAPE_CALLS {
            rows_call(
                black_box(wq),
                black_box(&b.scales[..rows]),
                cols,
                black_box(&b.xq_ref[..cols]),
                sx,
                black_box(&b.bias[..rows]),
                &mut b.out[..rows],
            );
            black_box(&mut b.out);
        }
        line("runnel-rows", counter.now() - t0);
        if !bits_equal(&b.out[..rows], &b.want[..rows]) {
            defmt::error!(
                "bench: rows_i8 {=u32}x{=u32} differs from the reference",
                rows as u32,
                cols as u32
            );
            status = EXIT_MISMATCH;
        }

        // runnel's exact row sums alone (int8 in, i32 out: the integer kernel without the rescale)
        let t0 = counter.now();
        for _ in 0..SHAPE_CALLS {
            sums_call(
                black_box(wq),
                cols,
                black_box(&b.xq_ref[..cols]),
                &mut b.acc[..rows],
            );
            black_box(&mut b.acc);
        }
        line("runnel-sums", counter.now() - t0);
        ref_sums(wq, cols, &b.xq_ref[..cols], &mut b.acc_ref[..rows]);
        if b.acc[..rows] != b.acc_ref[..rows] {
            defmt::error!(
                "bench: dot_rows_i8 {=u32}x{=u32} differs from the reference",
                rows as u32,
                cols as u32
            );
            status = EXIT_MISMATCH;
        }

        #[cfg(runnel_fw_cmsis_nn)]
        {
            let t0 = counter.now();
            for _ in 0..SHAPE_CALLS {
                cmsis_fc(
                    black_box(wq),
                    black_box(&b.xq_ref[..cols]),
                    black_box(&b.bias_i32[..rows]),
                    &mut b.out_i8[..rows],
                    rows,
                    cols,
                );
                black_box(&mut b.out_i8);
            }
            line("cmsis-nn", counter.now() - t0);
            let ok = wq
                .chunks_exact(cols)
                .zip(&b.bias_i32[..rows])
                .zip(&b.out_i8[..rows])
                .all(|((row, &bi), &o)| {
                    let acc = reference::dot_i8(row, &b.xq_ref[..cols]).wrapping_add(bi);
                    cmsis_requantize(acc, CMSIS_MULT, CMSIS_SHIFT).clamp(-128, 127) == o as i32
                });
            if !ok {
                defmt::error!(
                    "bench: CMSIS-NN {=u32}x{=u32} differs from its requantized exact sums",
                    rows as u32,
                    cols as u32
                );
                status = EXIT_MISMATCH;
            }
        }
    }
    status
}

/// The products of one step in model order: runnel `matvec`, runnel row
/// kernel, CMSIS-NN (`bench kernel=step_…` lines, in the budget).
#[inline(never)]
fn step_products<C: InstrCounter>(
    counter: &mut C,
    plan: &Plan,
    wall: &'static [i8],
    b: &mut Bufs,
) -> i32 {
    let products = plan.products();
    let macs: usize = products.iter().map(|&(r, c)| r * c).sum();
    let t0 = counter.now();
    for _ in 0..SHAPE_CALLS {
        for &(rows, cols) in products {
            let mat = Mat {
                rows,
                cols,
                data: MatData::I8 {
                    q: &wall[..rows * cols],
                    scales: &b.scales[..rows],
                },
            };
            matvec_call(
                black_box(&mat),
                black_box(&b.x[..cols]),
                black_box(&b.bias[..rows]),
                &mut b.out[..rows],
                &mut b.xq[..cols],
            );
            black_box(&mut b.out);
        }
    }
    let matvec = (counter.now() - t0) / SHAPE_CALLS as u64;
    report_step::<C>(
        "step_matvec_i8",
        DOT_I8_VARIANT,
        products.len(),
        macs,
        matvec,
    );

    let sx = 0.01f32;
    let t0 = counter.now();
    for _ in 0..SHAPE_CALLS {
        for &(rows, cols) in products {
            rows_call(
                black_box(&wall[..rows * cols]),
                black_box(&b.scales[..rows]),
                cols,
                black_box(&b.xq_ref[..cols]),
                sx,
                black_box(&b.bias[..rows]),
                &mut b.out[..rows],
            );
            black_box(&mut b.out);
        }
    }
    let rows_only = (counter.now() - t0) / SHAPE_CALLS as u64;
    report_step::<C>(
        "step_rows_i8",
        DOT_I8_VARIANT,
        products.len(),
        macs,
        rows_only,
    );

    let t0 = counter.now();
    for _ in 0..SHAPE_CALLS {
        for &(rows, cols) in products {
            sums_call(
                black_box(&wall[..rows * cols]),
                cols,
                black_box(&b.xq_ref[..cols]),
                &mut b.acc[..rows],
            );
            black_box(&mut b.acc);
        }
    }
    let sums = (counter.now() - t0) / SHAPE_CALLS as u64;
    report_step::<C>(
        "step_dot_rows_i8",
        DOT_I8_VARIANT,
        products.len(),
        macs,
        sums,
    );

    #[cfg(not(runnel_fw_cmsis_nn))]
    let cmsis = 0u64;
    #[cfg(runnel_fw_cmsis_nn)]
    let cmsis = {
        let t0 = counter.now();
        for _ in 0..SHAPE_CALLS {
            for &(rows, cols) in products {
                cmsis_fc(
                    black_box(&wall[..rows * cols]),
                    black_box(&b.xq_ref[..cols]),
                    black_box(&b.bias_i32[..rows]),
                    &mut b.out_i8[..rows],
                    rows,
                    cols,
                );
                black_box(&mut b.out_i8);
            }
        }
        let cmsis = (counter.now() - t0) / SHAPE_CALLS as u64;
        report_step::<C>("step_cmsis_fc_s8", "cmsis-nn", products.len(), macs, cmsis);
        cmsis
    };
    defmt::info!(
        "bench step products={=u32} macs={=u32} runnel_matvec={=u64} runnel_rows={=u64} runnel_sums={=u64} cmsis_nn={=u64} (per step, {=str}; cmsis_nn 0 = not built for this target)",
        products.len() as u32,
        macs as u32,
        matvec,
        rows_only,
        sums,
        cmsis,
        C::UNIT
    );
    EXIT_OK
}

/// Logs the cost of all the products of one step (`bench kernel=` so that
/// the budget keeps it).
fn report_step<C: InstrCounter>(kernel: &str, variant: &str, products: usize, macs: usize, n: u64) {
    defmt::info!(
        "bench kernel={=str} variant={=str} products={=u32} macs={=u32} {=str}={=u64} milli_{=str}_per_mac={=u32}",
        kernel,
        variant,
        products as u32,
        macs as u32,
        C::UNIT,
        n,
        C::UNIT,
        per_mac(n, macs as u64)
    );
}

/// Logs one part of the step.
fn part<C: InstrCounter>(name: &str, n: u64, whole: u64) {
    defmt::info!(
        "bench part={=str} per_step_{=str}={=u64} share_permille={=u32}",
        name,
        C::UNIT,
        n,
        ((n * 1000 + whole / 2) / whole.max(1)) as u32
    );
}

/// The per-step breakdown: each kind of work of one step (full attention
/// window) timed with the public kernels on the model's sizes, beside a
/// measured whole step.
#[inline(never)]
fn breakdown<C: InstrCounter>(counter: &mut C, plan: &Plan, wall: &'static [i8], b: &mut Bufs) {
    // matrix products (quantize + rows + rescale), once each
    let t0 = counter.now();
    for &(rows, cols) in plan.products() {
        let mat = Mat {
            rows,
            cols,
            data: MatData::I8 {
                q: &wall[..rows * cols],
                scales: &b.scales[..rows],
            },
        };
        matvec_call(
            black_box(&mat),
            black_box(&b.x[..cols]),
            black_box(&b.bias[..rows]),
            &mut b.out[..rows],
            &mut b.xq[..cols],
        );
        black_box(&mut b.out);
    }
    let matrix = counter.now() - t0;

    // of which: quantizing the inputs
    let t0 = counter.now();
    for &(_, cols) in plan.products() {
        black_box(quantize_call(black_box(&b.x[..cols]), &mut b.xq[..cols]));
    }
    let quantize = counter.now() - t0;

    // of which: the per-row rescale (what the row kernels do after the sums)
    for (a, i) in b.acc.iter_mut().zip(0i32..) {
        *a = i.wrapping_mul(7919) - 2000;
    }
    let t0 = counter.now();
    for &(rows, _) in plan.products() {
        let sx = black_box(0.01f32);
        for (((o, &a), &s), &bb) in b.out[..rows]
            .iter_mut()
            .zip(black_box(&b.acc[..rows]))
            .zip(&b.scales[..rows])
            .zip(&b.bias[..rows])
        {
            *o = a as f32 * (s * sx) + bb;
        }
        black_box(&mut b.out);
    }
    let rescale = counter.now() - t0;

    // attention over a full int8 KV cache, as the attention block does it
    let t0 = counter.now();
    for &(width, heads, window) in plan.attn.get(..plan.n_attn).unwrap_or(&[]) {
        attention(b, wall, width, heads, window);
    }
    let attention = counter.now() - t0;

    // LayerNorms
    let (nw, nb) = b.scales.split_at(MAX_DIM / 2);
    let t0 = counter.now();
    for &n in plan.norms.get(..plan.n_norms).unwrap_or(&[]) {
        let n = n.min(MAX_DIM / 2);
        kernels::layer_norm(
            black_box(&b.x[..n]),
            &nw[..n],
            &nb[..n],
            1e-5,
            &mut b.out[..n],
        );
        black_box(&mut b.out);
    }
    let norms = counter.now() - t0;

    // activations: the recurrent gate non-linearities + cell update, the FFN activation
    let t0 = counter.now();
    for &(cell, hid) in plan.cells.get(..plan.n_cells).unwrap_or(&[]) {
        gates(b, cell, hid.min(MAX_DIM / 4));
    }
    for &(act, n) in plan.acts.get(..plan.n_acts).unwrap_or(&[]) {
        let n = n.min(MAX_DIM);
        b.want[..n].copy_from_slice(&b.x[..n]);
        activation(act, black_box(&mut b.want[..n]));
        black_box(&mut b.want);
    }
    let activations = counter.now() - t0;

    let whole = crate::model::FULL_WINDOW_STEP.load(core::sync::atomic::Ordering::Relaxed) as u64;
    let parts = matrix + attention + norms + activations;
    defmt::info!(
        "bench breakdown whole_step_{=str}={=u64} (int8 blob, full attention window, mean of {=u32} steps after its demo run; 0 = not measured) parts={=u64}",
        C::UNIT,
        whole,
        crate::model::FULL_WINDOW_STEPS as u32,
        parts
    );
    let whole = if whole == 0 { parts } else { whole };
    part::<C>("matrix", matrix, whole);
    part::<C>("matrix.quantize", quantize, whole);
    part::<C>("matrix.rescale", rescale, whole);
    part::<C>("attention", attention, whole);
    part::<C>("norms", norms, whole);
    part::<C>("activations", activations, whole);
    part::<C>("remainder", whole.saturating_sub(parts), whole);
}

/// One attention block's work over a full int8 KV cache of `window` rows
/// (K and V bytes from the blob, like the block's `Kv::dot` / `Kv::axpy`):
/// storing this step's K and V (quantized per head), the scores, softmax,
/// the weighted sum of V.
#[inline(never)]
fn attention(b: &mut Bufs, wall: &'static [i8], width: usize, heads: usize, window: usize) {
    let hd = width.checked_div(heads).unwrap_or(0);
    let window = window.min(MAX_DIM / 2);
    if hd == 0 || 3 * width > MAX_DIM || 2 * window * width > wall.len() {
        return;
    }
    let (kc, rest) = wall.split_at(window * width);
    let vc = &rest[..window * width];
    // K and V of this step into the cache row (here: into `xq` / `xq_ref`)
    for h in 0..heads {
        let r = h * hd..(h + 1) * hd;
        let _ = quantize_call(&b.x[width + r.start..width + r.end], &mut b.xq[r.clone()]);
        let _ = quantize_call(
            &b.x[2 * width + r.start..2 * width + r.end],
            &mut b.xq_ref[r.clone()],
        );
    }
    let inv_sqrt = 1.0 / libm::sqrtf(hd as f32);
    let (p, rest) = b.want.split_at_mut(window);
    let scale_of = |slot: usize, h: usize| b.scales[(slot * heads + h) % MAX_DIM];
    for h in 0..heads {
        let r = h * hd..(h + 1) * hd;
        let q = &b.x[r.clone()];
        for (slot, pv) in p.iter_mut().enumerate() {
            let row = &kc[slot * width + r.start..slot * width + r.end];
            *pv = kernels::dot_i8_f32(black_box(row), q) * scale_of(slot, h) * inv_sqrt;
        }
        kernels::softmax(p);
        let o = &mut rest[r.clone()];
        o.fill(0.0);
        for (slot, &pv) in p.iter().enumerate() {
            let ps = pv * scale_of(slot, h);
            for (o, &v) in o
                .iter_mut()
                .zip(&vc[slot * width + r.start..slot * width + r.end])
            {
                *o += ps * v as f32;
            }
        }
    }
    black_box(&mut b.want);
}

/// [`Activation::apply`]'s arithmetic, written out here: a second call site of
/// `apply` (or of `Session::step_token`) would change LLVM's inlining of the
/// runtime's step and with it the step's stack depth, which the budget
/// measures.
#[inline(never)]
fn activation(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Gelu => {
            for v in x {
                *v = 0.5 * *v * (1.0 + libm::erff(*v * core::f32::consts::FRAC_1_SQRT_2));
            }
        }
        Activation::GeluTanh => {
            const K: f32 = 0.797_884_6; // sqrt(2/pi)
            for v in x {
                let u = *v;
                *v = 0.5 * u * (1.0 + libm::tanhf(K * (u + 0.044_715 * u * u * u)));
            }
        }
        Activation::Relu => {
            for v in x {
                if *v < 0.0 {
                    *v = 0.0;
                }
            }
        }
        Activation::Silu => {
            for v in x {
                *v *= kernels::sigmoid(*v);
            }
        }
    }
}

/// One recurrent layer's gate non-linearities and state update over `hid`
/// units, as the recurrent block computes them (`gi`, `gh` from `x`).
#[inline(never)]
fn gates(b: &mut Bufs, cell: Cell, hid: usize) {
    let gi = &b.x[..cell.gates() * hid];
    let gh = &b.bias[..cell.gates() * hid];
    let (h, c) = b.out.split_at_mut(hid);
    let c = &mut c[..hid];
    match cell {
        Cell::Lstm => {
            for j in 0..hid {
                let i = kernels::sigmoid(gi[j] + gh[j]);
                let f = kernels::sigmoid(gi[hid + j] + gh[hid + j]);
                let g = libm::tanhf(gi[2 * hid + j] + gh[2 * hid + j]);
                let o = kernels::sigmoid(gi[3 * hid + j] + gh[3 * hid + j]);
                let cn = f * c[j] + i * g;
                c[j] = cn;
                h[j] = o * libm::tanhf(cn);
            }
        }
        Cell::Gru => {
            for j in 0..hid {
                let r = kernels::sigmoid(gi[j] + gh[j]);
                let z = kernels::sigmoid(gi[hid + j] + gh[hid + j]);
                let n = libm::tanhf(gi[2 * hid + j] + r * gh[2 * hid + j]);
                h[j] = (1.0 - z) * n + z * h[j];
            }
        }
    }
    black_box(&mut b.out);
}
