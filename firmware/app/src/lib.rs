//! The demo application shared by every board: streams the input embedded at
//! build time through each embedded runnel blob (see `build.rs`), logging per
//! step the argmax and checksum of the output row (`runnel_fw_common::demo`),
//! checks each run against the host runtime's result, and then times the int8
//! kernels ([`bench`]).
//!
//! Without prepared blobs (`scripts/fw-blobs.sh`) it runs the placeholder
//! int8 workload from `runnel_fw_common::placeholder` instead.
#![no_std]

#[cfg(not(runnel_fw_placeholder))]
pub mod bench;
#[cfg(not(runnel_fw_placeholder))]
mod model;

use runnel_fw_common::{stack::StackRegion, InstrCounter};

/// Exit status: every run matched.
pub const EXIT_OK: i32 = 0;
/// Exit status: a run checksum differs from the host runtime's.
pub const EXIT_MISMATCH: i32 = 1;
/// Exit status: the runtime returned an error.
pub const EXIT_ERROR: i32 = 2;

/// The more severe of two exit statuses (error > mismatch > ok).
#[cfg_attr(runnel_fw_placeholder, allow(dead_code))]
fn worse(a: i32, b: i32) -> i32 {
    let rank = |s: i32| match s {
        EXIT_OK => 0,
        EXIT_MISMATCH => 1,
        _ => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

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

/// Runs every embedded blob over the embedded input stream, then the kernel
/// benchmarks; returns the exit status.
#[cfg(not(runnel_fw_placeholder))]
pub fn run<C: InstrCounter>(counter: &mut C, region: StackRegion) -> i32 {
    use model::{ARENA_BYTES, BLOBS, SOURCE, STEPS};
    defmt::info!(
        "models source={=str} blobs={=u32} steps={=u32} arena_bytes={=u32} size_of_model={=u32} size_of_session={=u32}",
        SOURCE,
        BLOBS.len() as u32,
        STEPS as u32,
        ARENA_BYTES as u32,
        core::mem::size_of::<runnel::Model<'static>>() as u32,
        core::mem::size_of::<runnel::Session<'static, 'static>>() as u32
    );
    let mut status = EXIT_OK;
    for b in BLOBS {
        // one blob at a time: its `Model` lives only in `run_blob`'s frame
        let s = if b.weights == "integer" {
            model::run_blob::<C, true>(b, counter, region)
        } else {
            model::run_blob::<C, false>(b, counter, region)
        };
        status = worse(status, s);
    }
    // the kernels read their int8 "weights" from the first blob (in flash,
    // like real weights); the bytes do not matter for the timing
    status = worse(status, bench::run(counter, region, BLOBS[0].bytes));
    status
}
