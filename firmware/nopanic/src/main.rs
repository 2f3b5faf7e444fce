//! Link-time proof that runnel's entry points cannot panic.
//!
//! This binary calls every entry point a firmware uses — [`Model::from_bytes`],
//! [`Session::new`], both steps, [`Session::reset`], snapshot and restore — on
//! inputs the optimiser cannot see (a blob, a frame and a snapshot behind
//! [`black_box`]), so every path through them is compiled in. Its panic
//! handler calls a function that does not exist. If any panic (a bounds
//! check, an overflow check, an `unwrap`, a slice index, a formatting path)
//! survived optimisation, the handler would be referenced and the link would
//! fail with an undefined symbol naming the problem:
//!
//! ```text
//! undefined symbol: runnel_link_check_a_panic_is_reachable
//! ```
//!
//! `scripts/nopanic-check.sh` builds it for the Cortex-M4F and RV32IMAC
//! firmware targets with the firmware's release profile; CI runs that script.
//! The binary is not meant to be run (it would step whatever bytes are in the
//! blob slot); its value is that it links.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;
use core::ptr::addr_of_mut;

use runnel::{Model, Session};

mod buffers;
use buffers::{Buffers, BLOB};

static mut BUFFERS: Buffers<f32, f32> = Buffers::new(0.0, 0.0);

/// Every entry point, on opaque inputs; returns a status so nothing is dead.
#[inline(never)]
fn exercise(b: &'static mut Buffers<f32, f32>) -> u32 {
    let Some(blob) = b.blob.get(..black_box(BLOB)) else {
        return 6;
    };
    let blob: &[u8] = black_box(blob);
    let Ok(model) = Model::from_bytes(blob) else {
        return 1;
    };
    let model = black_box(&model);
    let arena = black_box(&mut b.arena[..]);
    let Ok(mut sess) = Session::new(model, arena) else {
        return 2;
    };
    let out = black_box(&mut b.out[..]);
    let mut status = 0;
    let n = black_box(8u32);
    for i in 0..n {
        let r = if matches!(
            black_box(model.input_kind()),
            runnel::InputKind::Tokens { .. }
        ) {
            sess.step_token(black_box(i), out)
        } else {
            sess.step_frame(black_box(&b.frame[..]), out)
        };
        status |= r.is_err() as u32;
    }
    let snap = black_box(&mut b.snap[..]);
    let len = match sess.snapshot(snap) {
        Ok(len) => len,
        Err(_) => return 3,
    };
    sess.reset();
    let Ok(mut other) = Session::new(model, black_box(&mut b.arena2[..])) else {
        return 4;
    };
    if other
        .restore(black_box(snap.get(..len).unwrap_or(&[])))
        .is_err()
    {
        return 5;
    }
    status | other.step_token(black_box(0), out).is_err() as u32
}

fn entry() -> ! {
    // SAFETY: the only access to BUFFERS, from the only thread, once.
    let b = unsafe { &mut *addr_of_mut!(BUFFERS) };
    let status = exercise(b);
    // The check's self-test (scripts/firmware-ci.sh): one bounds check the optimiser cannot
    // remove, so the link must fail.
    #[cfg(feature = "deliberate-panic")]
    let status = status + [1u32, 2][black_box(2usize)];
    buffers::finish(status)
}

buffers::main_calls!(entry);

#[cfg(not(feature = "allow-panic"))]
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    extern "C" {
        /// Deliberately never defined: see the crate documentation.
        fn runnel_link_check_a_panic_is_reachable() -> !;
    }
    // SAFETY: never executed — the link fails if this handler is reachable.
    unsafe { runnel_link_check_a_panic_is_reachable() }
}

/// With `--features allow-panic` the binary links whatever panics remain, so
/// `scripts/nopanic-check.sh --report` can list and measure them.
#[cfg(feature = "allow-panic")]
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
