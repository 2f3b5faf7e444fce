//! One embedded blob, run over the embedded input stream.

use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU32, Ordering};

use runnel_fw_common::demo::{self, Workload};
use runnel_fw_common::stack::{self, StackRegion};
use runnel_fw_common::InstrCounter;

use crate::{EXIT_ERROR, EXIT_MISMATCH, EXIT_OK};

/// The input stream.
#[allow(dead_code)] // build.rs constructs the one variant the model needs
pub enum Input {
    /// One token id per step.
    Tokens(&'static [u32]),
    /// `dim` features per step, row-major.
    Frames {
        /// Features per frame.
        dim: usize,
        /// `[STEPS * dim]`.
        data: &'static [f32],
    },
}

/// One embedded blob.
pub struct Blob {
    /// Weight storage type (`int8`, `f16`, `f32`), or `integer` for the
    /// integer-only mode (int8 weights, stepped through `step_token_int`).
    pub weights: &'static str,
    /// KV-cache storage type.
    pub kv: &'static str,
    /// The `.rnl` bytes, 16-byte aligned.
    pub bytes: &'static [u8],
    /// `run_checksum` the host runtime computed for this blob and input.
    pub run_checksum: u32,
}

include!(concat!(env!("OUT_DIR"), "/blobs.rs"));

/// Mean count (instructions or cycles) of a step of the int8 blob with a full
/// attention window: [`FULL_WINDOW_STEPS`] more steps after its demo run (0 if
/// not measured). The bench's per-step breakdown compares its parts with it.
pub static FULL_WINDOW_STEP: AtomicU32 = AtomicU32::new(0);
/// Steps timed for [`FULL_WINDOW_STEP`].
pub const FULL_WINDOW_STEPS: usize = 8;

#[repr(C, align(16))]
struct Arena([u8; ARENA_BYTES]);
static mut ARENA: Arena = Arena([0; ARENA_BYTES]);
static mut OUT: [f32; OUTPUT_DIM] = [0.0; OUTPUT_DIM];

struct ModelRun<'m, 's> {
    sess: runnel::Session<'m, 's>,
}

/// An integer-mode blob, stepped through the integer entry points: logits as
/// `i32` on the model's logit grid, no floating point in the step.
struct IntModelRun<'m, 's> {
    sess: runnel::Session<'m, 's>,
}

impl Workload for IntModelRun<'_, '_> {
    type Error = runnel::Error;
    type Out = i32;
    fn output_dim(&self) -> usize {
        OUTPUT_DIM
    }
    fn steps(&self) -> usize {
        STEPS
    }
    #[inline(never)]
    fn step(&mut self, i: usize, out: &mut [i32]) -> Result<(), runnel::Error> {
        match INPUT {
            Input::Tokens(t) => self
                .sess
                .step_token_int(t.get(i).copied().unwrap_or(u32::MAX), out),
            Input::Frames { dim, .. } => {
                let frame = INPUT_I8.get(i * dim..(i + 1) * dim).unwrap_or(&[]);
                self.sess.step_frame_int(frame, out)
            }
        }
    }
}

impl Workload for ModelRun<'_, '_> {
    type Error = runnel::Error;
    type Out = f32;
    fn output_dim(&self) -> usize {
        OUTPUT_DIM
    }
    fn steps(&self) -> usize {
        STEPS
    }
    #[inline(never)]
    fn step(&mut self, i: usize, out: &mut [f32]) -> Result<(), runnel::Error> {
        // `i < STEPS`, and build.rs sizes INPUT for STEPS steps; a short stream steps nothing.
        match INPUT {
            Input::Tokens(t) => self
                .sess
                .step_token(t.get(i).copied().unwrap_or(u32::MAX), out),
            Input::Frames { dim, data } => {
                let frame = data.get(i * dim..(i + 1) * dim).unwrap_or(&[]);
                self.sess.step_frame(frame, out)
            }
        }
    }
}

/// Loads `b`, runs it over [`INPUT`] and compares the run checksum with the
/// host runtime's; returns the exit status.
///
/// `#[inline(never)]`: the `Model` (several KB on 32-bit targets, mostly its
/// fixed-capacity block tables) lives in this frame only while this blob
/// runs, so the stack never holds more than one.
/// After the demo ran STEPS steps (more than the demo model's window): times
/// [`FULL_WINDOW_STEPS`] more, each with a full window, through the same (not
/// inlined) `Workload::step`, into [`FULL_WINDOW_STEP`]. Out of line, so that
/// `run_blob`'s frame (part of the measured step stack) does not grow.
#[inline(never)]
fn time_full_window<C: InstrCounter>(w: &mut ModelRun<'_, '_>, counter: &mut C, out: &mut [f32]) {
    if STEPS == 0 {
        return;
    }
    let t0 = counter.now();
    let mut ok = true;
    for i in 0..FULL_WINDOW_STEPS {
        ok &= w.step(i % STEPS, out).is_ok();
    }
    let mean = (counter.now() - t0) / FULL_WINDOW_STEPS as u64;
    FULL_WINDOW_STEP.store(if ok { mean as u32 } else { 0 }, Ordering::Relaxed);
}

/// The demo run of an integer-mode blob (`run_blob::<_, true>`).
#[inline(never)]
fn run_int<C: InstrCounter>(
    sess: runnel::Session<'_, '_>,
    counter: &mut C,
    region: StackRegion,
    out: &mut [f32],
) -> Result<demo::Summary, runnel::Error> {
    // the i32 logits share the f32 output buffer (same size and alignment, any bits valid)
    // SAFETY: `out` is not used while `logits` lives.
    let logits: &mut [i32] =
        unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<i32>(), out.len()) };
    demo::run(&mut IntModelRun { sess }, counter, region, logits)
}

///
/// `INTEGER`: `b` is an integer-mode blob, stepped through the integer entry
/// points (a separate instance, so that the float modes' `run_blob`, whose
/// frame is part of their measured stack, is what it is without the integer mode).
#[inline(never)]
pub fn run_blob<C: InstrCounter, const INTEGER: bool>(
    b: &Blob,
    counter: &mut C,
    region: StackRegion,
) -> i32 {
    // SAFETY: `run_blob` is called from the only thread and never re-entered,
    // and the borrows end when it returns; nothing else touches these statics.
    let (arena, out): (&mut [u8], &mut [f32]) =
        unsafe { (&mut (*addr_of_mut!(ARENA)).0, &mut *addr_of_mut!(OUT)) };
    // measure this run's stack from here on
    // SAFETY: `region` is this core's stack.
    unsafe { stack::paint(region) };
    let t0 = counter.now();
    // matched by reference: the Model stays where `from_bytes` returned it
    let loaded = runnel::Model::from_bytes(b.bytes);
    let t1 = counter.now();
    let model = match &loaded {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("model weights={=str}: Model::from_bytes: {}", b.weights, e);
            return EXIT_ERROR;
        }
    };
    let sess = match runnel::Session::new(model, arena) {
        Ok(s) => s,
        Err(e) => {
            defmt::error!("model weights={=str}: Session::new: {}", b.weights, e);
            return EXIT_ERROR;
        }
    };
    let t2 = counter.now();
    // peak stack of loading; then measure the steps separately
    let load_stack = stack::high_water(region);
    // SAFETY: as above.
    unsafe { stack::paint(region) };
    defmt::info!(
        "model weights={=str} kv={=str} blob_bytes={=u32} params={=u32} state_bytes={=u32} from_bytes_{=str}={=u64} session_new_{=str}={=u64} load_peak_stack_bytes={=u32}",
        b.weights,
        b.kv,
        b.bytes.len() as u32,
        model.param_count() as u32,
        model.state_bytes() as u32,
        C::UNIT,
        t1 - t0,
        C::UNIT,
        t2 - t1,
        load_stack as u32
    );
    let result = if INTEGER {
        run_int(sess, counter, region, out)
    } else {
        let mut w = ModelRun { sess };
        let result = demo::run(&mut w, counter, region, out);
        if b.weights == "int8" {
            time_full_window(&mut w, counter, out);
        }
        result
    };
    match result {
        Ok(s) if s.run_checksum == b.run_checksum => {
            defmt::info!(
                "result weights={=str} ok: run_checksum={=u32:#010x} matches the host runtime",
                b.weights,
                s.run_checksum
            );
            EXIT_OK
        }
        Ok(s) => {
            defmt::error!(
                "result weights={=str} MISMATCH: run_checksum={=u32:#010x}, host runtime {=u32:#010x}",
                b.weights,
                s.run_checksum,
                b.run_checksum
            );
            EXIT_MISMATCH
        }
        Err(_) => EXIT_ERROR,
    }
}
