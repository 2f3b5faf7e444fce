//! Microbenchmarks of the int8 matrix kernels: instructions (or cycles) per
//! multiply-accumulate.
//!
//! * `dot_i8`: [`runnel::kernels::dot_i8`], the dispatching kernel the model
//!   uses (on `thumbv7em` the DSP `SXTB16`/`SMLAD` variant, on RV32 the
//!   4-way unrolled one, elsewhere the reference), over [`LEN`]-long vectors, [`DOT_CALLS`] times (one weight
//!   row per call).
//! * `reference_dot_i8`: [`runnel::kernels::reference::dot_i8`], the same.
//! * `matvec_i8`: [`runnel::kernels::matvec`] on a `[ROWS, LEN]` int8
//!   [`Mat`], [`MATVEC_CALLS`] times: includes quantizing the f32 input to
//!   int8 and the per-row rescale and bias, i.e. what one int8 layer costs.
//!
//! Log lines (one per kernel):
//!
//! ```text
//! bench kernel=<name> variant=<v> rows=<n> cols=<n> calls=<n> macs=<n> <unit>=<n> milli_<unit>_per_mac=<n>
//! ```
//!
//! The weights are bytes of an embedded blob (in flash, like real weights);
//! the timing does not depend on their values. The two dot kernels must
//! return the same sums (checked).

use core::hint::black_box;

use runnel::kernels::{self, Mat, MatData};
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

/// Which implementation `runnel::kernels::dot_i8` dispatches to on this target.
pub const DOT_I8_VARIANT: &str = runnel::kernels::VARIANT;

fn lcg(s: &mut u32) -> u32 {
    *s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    *s
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
        ((n * 1000 + macs / 2) / macs) as u32
    );
}

/// Runs the benchmarks on int8 weights taken from `weights` (at least
/// `ROWS * LEN` bytes); returns the exit status.
#[inline(never)]
pub fn run<C: InstrCounter>(counter: &mut C, region: StackRegion, weights: &'static [u8]) -> i32 {
    let need = DOT_CALLS.max(ROWS) * LEN;
    if weights.len() < need {
        defmt::error!(
            "bench: blob too small ({=u32} < {=u32} bytes)",
            weights.len() as u32,
            need as u32
        );
        return EXIT_ERROR;
    }
    // SAFETY: i8 and u8 have the same size, alignment and validity.
    let w: &[i8] = unsafe { core::slice::from_raw_parts(weights.as_ptr().cast::<i8>(), need) };

    // SAFETY: `region` is this core's stack.
    unsafe { stack::paint(region) };
    let mut seed = 0x5eed_1234u32;
    let mut x = [0f32; LEN];
    let mut xq = [0i8; LEN];
    for v in x.iter_mut() {
        // roughly uniform in [-2, 2)
        *v = (lcg(&mut seed) >> 8) as f32 * (4.0 / 16_777_216.0) - 2.0;
    }
    let _ = kernels::quantize_i8(&x, &mut xq);

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
        acc_ref = acc_ref.wrapping_add(kernels::reference::dot_i8(black_box(row), black_box(&xq)));
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
        kernels::matvec(
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

    defmt::info!(
        "bench done dot_i8_sum={=i32} reference_sum={=i32} matvec_checksum={=u32:#010x} peak_stack_bytes={=u32}",
        acc_fast,
        acc_ref,
        runnel_fw_common::fnv1a_f32(&out),
        stack::high_water(region) as u32
    );
    if acc_fast != acc_ref {
        defmt::error!("bench: dot_i8 and reference::dot_i8 disagree");
        return EXIT_MISMATCH;
    }
    EXIT_OK
}
