//! The demo application shared by every board: streams the input embedded at
//! build time through each embedded runnel blob (see `build.rs`), logging per
//! step the argmax and checksum of the output row (`runnel_fw_common::demo`),
//! and checks each run against the host runtime's result.
//!
//! Without prepared blobs (`scripts/fw-blobs.sh`) it runs the placeholder
//! int8 workload from `runnel_fw_common::placeholder` instead.
#![no_std]

#[cfg(runnel_fw_placeholder)]
use runnel_fw_common::{stack::StackRegion, InstrCounter};

/// Exit status: every run matched.
pub const EXIT_OK: i32 = 0;
/// Exit status: a run checksum differs from the host runtime's.
pub const EXIT_MISMATCH: i32 = 1;
/// Exit status: the runtime returned an error.
pub const EXIT_ERROR: i32 = 2;

/// Runs the demo; returns the exit status.
#[cfg(runnel_fw_placeholder)]
pub fn run<C: InstrCounter>(counter: &mut C, region: StackRegion) -> i32 {
    use runnel_fw_common::{demo, placeholder};
    defmt::warn!("no model blobs embedded (scripts/fw-blobs.sh): running the placeholder workload");
    let mut w = placeholder::Placeholder::new();
    let mut out = [0f32; placeholder::DIM_OUT];
    match demo::run(&mut w, counter, region, &mut out) {
        Ok(s) if s.run_checksum == placeholder::EXPECTED_RUN_CHECKSUM => EXIT_OK,
        Ok(s) => {
            defmt::error!(
                "run_checksum mismatch: got {=u32:#010x} expected {=u32:#010x}",
                s.run_checksum,
                placeholder::EXPECTED_RUN_CHECKSUM
            );
            EXIT_MISMATCH
        }
        Err(_) => EXIT_ERROR,
    }
}

#[cfg(not(runnel_fw_placeholder))]
pub use model::*;

#[cfg(not(runnel_fw_placeholder))]
mod model {
    use core::ptr::addr_of_mut;

    use runnel_fw_common::demo::{self, Workload};
    use runnel_fw_common::stack::{self, StackRegion};
    use runnel_fw_common::InstrCounter;

    use super::{EXIT_ERROR, EXIT_MISMATCH, EXIT_OK};

    /// The input stream.
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
            match INPUT {
                Input::Tokens(t) => self.sess.step_token(t[i], out),
                Input::Frames { dim, data } => {
                    self.sess.step_frame(&data[i * dim..(i + 1) * dim], out)
                }
            }
        }
    }

    /// Runs every embedded blob over [`INPUT`]; returns the exit status.
    pub fn run<C: InstrCounter>(counter: &mut C, region: StackRegion) -> i32 {
        // SAFETY: `run` is called once, from the only thread; nothing else
        // touches these statics.
        let (arena, out): (&mut [u8], &mut [f32]) =
            unsafe { (&mut (*addr_of_mut!(ARENA)).0, &mut *addr_of_mut!(OUT)) };
        defmt::info!(
            "models source={=str} blobs={=u32} steps={=u32} arena_bytes={=u32}",
            SOURCE,
            BLOBS.len() as u32,
            STEPS as u32,
            ARENA_BYTES as u32
        );
        let mut status = EXIT_OK;
        for b in BLOBS {
            // measure each run's stack from here on
            // SAFETY: `region` is this core's stack.
            unsafe { stack::paint(region) };
            let t0 = counter.now();
            let model = match runnel::Model::from_bytes(b.bytes) {
                Ok(m) => m,
                Err(e) => {
                    defmt::error!("model weights={=str}: Model::from_bytes: {}", b.weights, e);
                    status = EXIT_ERROR;
                    continue;
                }
            };
            let t1 = counter.now();
            let sess = match runnel::Session::new(&model, arena) {
                Ok(s) => s,
                Err(e) => {
                    defmt::error!("model weights={=str}: Session::new: {}", b.weights, e);
                    status = EXIT_ERROR;
                    continue;
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
                }
                Ok(s) => {
                    defmt::error!(
                        "result weights={=str} MISMATCH: run_checksum={=u32:#010x}, host runtime {=u32:#010x}",
                        b.weights,
                        s.run_checksum,
                        b.run_checksum
                    );
                    if status == EXIT_OK {
                        status = EXIT_MISMATCH;
                    }
                }
                Err(_) => status = EXIT_ERROR,
            }
        }
        status
    }
}
