//! The no-float proof of the integer-only mode: no soft-float routine is
//! reachable from its step.
//!
//! This binary calls [`Model::from_bytes`], then the integer mode's entry
//! points — [`Session::new`], [`Session::step_token_int`],
//! [`Session::step_frame_int`], [`Session::reset`], snapshot and restore — on
//! inputs the optimiser cannot see (a blob, a frame and a snapshot behind
//! [`black_box`]). Each entry point is called through an `#[inline(never)]`,
//! `#[no_mangle]` wrapper whose symbol (`runnel_nofloat_*`) names it in the
//! ELF. `scripts/nofloat-check.sh` builds it for the cores without an FPU
//! (RV32IMAC, Cortex-M3) with the firmware's release profile (fat LTO) and
//! walks the call graph of the disassembly from those symbols
//! (`scripts/call-sites.py --soft-float --reachable-from runnel_nofloat_`):
//! the check fails if any soft-float routine (`__addsf3`, `__aeabi_fmul`,
//! `__floatsisf`, `__aeabi_dcmplt`, ...) is reachable. `Model::from_bytes` is
//! called directly, not through a wrapper: it validates the f32 fields of
//! float blobs and may compare floats.
//!
//! With the feature `deliberate-float` the token step's wrapper also does one
//! float multiplication the optimiser cannot remove: the check must then fail
//! (its self-test in `scripts/firmware-ci.sh`). Its panic handler is a plain
//! loop (the no-panic proof is `runnel-nopanic`'s). It is not meant to be run.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;
use core::ptr::addr_of_mut;

use runnel::{Error, Model, Session};

mod buffers;
use buffers::{Buffers, BLOB};

static mut BUFFERS: Buffers<i8, i32> = Buffers::new(0, 0);

// The roots of the reachability check: one per integer entry point.

#[no_mangle]
#[inline(never)]
fn runnel_nofloat_session_new<'m, 's>(
    model: &'m Model<'m>,
    arena: &'s mut [u8],
) -> Result<Session<'m, 's>, Error> {
    Session::new(model, arena)
}

#[no_mangle]
#[inline(never)]
fn runnel_nofloat_step_token_int(
    sess: &mut Session<'_, '_>,
    token: u32,
    logits: &mut [i32],
) -> u32 {
    let r = sess.step_token_int(token, logits).is_err() as u32;
    // the self-test: one float operation on opaque values
    #[cfg(feature = "deliberate-float")]
    let r = r + (black_box(token as f32) * black_box(1.5f32) > 2.0) as u32;
    r
}

#[no_mangle]
#[inline(never)]
fn runnel_nofloat_step_frame_int(
    sess: &mut Session<'_, '_>,
    frame: &[i8],
    logits: &mut [i32],
) -> u32 {
    sess.step_frame_int(frame, logits).is_err() as u32
}

#[no_mangle]
#[inline(never)]
fn runnel_nofloat_reset(sess: &mut Session<'_, '_>) {
    sess.reset()
}

#[no_mangle]
#[inline(never)]
fn runnel_nofloat_snapshot(sess: &Session<'_, '_>, buf: &mut [u8]) -> Result<usize, Error> {
    sess.snapshot(buf)
}

#[no_mangle]
#[inline(never)]
fn runnel_nofloat_restore(sess: &mut Session<'_, '_>, snap: &[u8]) -> Result<(), Error> {
    sess.restore(snap)
}

/// Every entry point, on opaque inputs; returns a status so nothing is dead.
#[inline(never)]
fn exercise(b: &'static mut Buffers<i8, i32>) -> u32 {
    let Some(blob) = b.blob.get(..black_box(BLOB)) else {
        return 6;
    };
    let Ok(model) = Model::from_bytes(black_box(blob)) else {
        return 1;
    };
    let model = black_box(&model);
    let Ok(mut sess) = runnel_nofloat_session_new(model, black_box(&mut b.arena[..])) else {
        return 2;
    };
    let logits = black_box(&mut b.out[..]);
    let mut status = 0;
    for i in 0..black_box(8u32) {
        status |= if matches!(
            black_box(model.input_kind()),
            runnel::InputKind::Tokens { .. }
        ) {
            runnel_nofloat_step_token_int(&mut sess, black_box(i), logits)
        } else {
            runnel_nofloat_step_frame_int(&mut sess, black_box(&b.frame[..]), logits)
        };
    }
    let snap = black_box(&mut b.snap[..]);
    let Ok(len) = runnel_nofloat_snapshot(&sess, snap) else {
        return 3;
    };
    runnel_nofloat_reset(&mut sess);
    let Ok(mut other) = runnel_nofloat_session_new(model, black_box(&mut b.arena2[..])) else {
        return 4;
    };
    if runnel_nofloat_restore(&mut other, black_box(snap.get(..len).unwrap_or(&[]))).is_err() {
        return 5;
    }
    status | runnel_nofloat_step_token_int(&mut other, black_box(0), logits)
}

fn entry() -> ! {
    // SAFETY: the only access to BUFFERS, from the only thread, once.
    let b = unsafe { &mut *addr_of_mut!(BUFFERS) };
    buffers::finish(exercise(b))
}

buffers::main_calls!(entry);

/// Panics are `runnel-nopanic`'s business: this handler links, so that the
/// no-float check does not depend on the no-panic proof.
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
