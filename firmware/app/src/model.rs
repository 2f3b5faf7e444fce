//! One embedded blob, run over the embedded input stream.

use core::ptr::addr_of_mut;

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
    /// Weight storage type (`int8`, `f16`, `f32`).
    pub weights: &'static str,
    /// KV-cache storage type.
    pub kv: &'static str,
    /// The `.rnl` bytes, 16-byte aligned.
    pub bytes: &'static [u8],
    /// `run_checksum` the host runtime computed for this blob and input.
    pub run_checksum: u32,
}

include!(concat!(env!("OUT_DIR"), "/blobs.rs"));

#[repr(C, align(16))]
struct Arena([u8; ARENA_BYTES]);
static mut ARENA: Arena = Arena([0; ARENA_BYTES]);
static mut OUT: [f32; OUTPUT_DIM] = [0.0; OUTPUT_DIM];

struct ModelRun<'m, 's> {
    sess: runnel::Session<'m, 's>,
}

impl Workload for ModelRun<'_, '_> {
    type Error = runnel::Error;
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
#[inline(never)]
pub fn run_blob<C: InstrCounter>(b: &Blob, counter: &mut C, region: StackRegion) -> i32 {
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
    let mut w = ModelRun { sess };
    match demo::run(&mut w, counter, region, out) {
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
