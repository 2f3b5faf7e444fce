//! The C API called from Rust (through the rlib): the same bits as the runtime used directly, and
//! the documented status codes. The C side is tested by `c_api.rs`.

use std::mem::MaybeUninit;
use std::ptr;

use runnel_capi::runnel_status::*;
use runnel_capi::*;
use runnel_converter::stream::Inputs;
use runnel_converter::{AlignedBytes, ConvertOptions};
use runnel_test_support::fixture;

/// The fixture's model converted with the default options, and its inputs.
fn fixture_blob(name: &str) -> (AlignedBytes, Inputs) {
    let f = fixture(name);
    let opts = ConvertOptions::default();
    (f.blob(opts.weights, opts.kv), f.inputs)
}

fn zeroed_model() -> Box<runnel_model> {
    // SAFETY: `runnel_model` is a byte array; all zeroes is a valid (unopened) value.
    Box::new(unsafe { MaybeUninit::<runnel_model>::zeroed().assume_init() })
}

fn zeroed_session() -> Box<runnel_session> {
    // SAFETY: as above.
    Box::new(unsafe { MaybeUninit::<runnel_session>::zeroed().assume_init() })
}

#[test]
fn same_bits_as_the_runtime() {
    for name in ["tok_lstm2_attn_gru", "frames_gru"] {
        let (blob, inputs) = fixture_blob(name);
        let bytes = blob.as_bytes();
        let model = runnel::Model::from_bytes(bytes).expect("open");
        let want = runnel_converter::stream::run(&model, &inputs).expect("run");

        let mut m = zeroed_model();
        let mut s = zeroed_session();
        let mut info = MaybeUninit::<runnel_model_info>::uninit();
        // SAFETY: valid pointers and lengths; the blob outlives the model and session.
        unsafe {
            assert_eq!(
                runnel_model_open(&mut *m, bytes.as_ptr().cast(), bytes.len()),
                RUNNEL_OK
            );
            assert_eq!(runnel_model_get_info(&*m, info.as_mut_ptr()), RUNNEL_OK);
        }
        // SAFETY: written by the successful call above.
        let info = unsafe { info.assume_init() };
        assert_eq!(info.state_bytes as usize, model.state_bytes());
        assert_eq!(info.output_dim as usize, model.output_dim());
        let od = info.output_dim as usize;
        let mut arena = vec![0u8; info.state_bytes as usize + 3]; // + 3: a Vec<u8> may be unaligned
                                                                  // SAFETY: as above; the arena outlives the session.
        let st =
            unsafe { runnel_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), arena.len()) };
        assert_eq!(st, RUNNEL_OK);
        let mut got = vec![0f32; want.len()];
        for (t, row) in got.chunks_exact_mut(od).enumerate() {
            // SAFETY: valid session, input and output pointers and lengths.
            let st = unsafe {
                match &inputs {
                    Inputs::Tokens(tok) => {
                        runnel_session_step_token(&mut *s, tok[t] as u32, row.as_mut_ptr(), od)
                    }
                    Inputs::Frames { dim, data } => runnel_session_step_frame(
                        &mut *s,
                        data[t * dim..].as_ptr(),
                        *dim,
                        row.as_mut_ptr(),
                        od,
                    ),
                }
            };
            assert_eq!(st, RUNNEL_OK, "{name} step {t}");
        }
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: the C API differs from the runtime"
        );
    }
}

#[test]
fn status_codes() {
    let (blob, _) = fixture_blob("tok_lstm");
    let bytes = blob.as_bytes();
    let mut m = zeroed_model();
    let mut s = zeroed_session();
    let mut out = [0f32; 64];
    // SAFETY: every pointer is NULL, or valid for what the callee does with it.
    unsafe {
        assert_eq!(
            runnel_model_open(ptr::null_mut(), bytes.as_ptr().cast(), bytes.len()),
            RUNNEL_ERR_NULL
        );
        assert_eq!(
            runnel_model_open(&mut *m, bytes[1..].as_ptr().cast(), bytes.len() - 1),
            RUNNEL_ERR_MISALIGNED
        );
        assert_eq!(
            runnel_model_open(&mut *m, bytes.as_ptr().cast(), 10),
            RUNNEL_ERR_TRUNCATED
        );
        assert_eq!(
            runnel_session_step_token(&mut *s, 0, out.as_mut_ptr(), 64),
            RUNNEL_ERR_NOT_INITIALIZED
        );
        assert_eq!(
            runnel_model_open(&mut *m, bytes.as_ptr().cast(), bytes.len()),
            RUNNEL_OK
        );
        // f32 words, so that the overlap check below is not preceded by an alignment failure (a
        // Vec<u8> may be byte-aligned, as it is under Miri).
        let mut arena = vec![0f32; 1 << 14];
        assert_eq!(
            runnel_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), 8),
            RUNNEL_ERR_ARENA_TOO_SMALL
        );
        assert_eq!(
            runnel_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), arena.len() * 4),
            RUNNEL_OK
        );
        assert_eq!(
            runnel_session_step_token(&mut *s, 1_000_000, out.as_mut_ptr(), 64),
            RUNNEL_ERR_TOKEN_OUT_OF_RANGE
        );
        assert_eq!(
            runnel_session_step_token(&mut *s, 0, out.as_mut_ptr(), 1),
            RUNNEL_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            runnel_session_step_frame(&mut *s, out.as_ptr(), 1, out[32..].as_mut_ptr(), 32),
            RUNNEL_ERR_WRONG_INPUT_KIND
        );
        assert_eq!(
            runnel_session_step_token(&mut *s, 0, arena.as_mut_ptr(), 64),
            RUNNEL_ERR_OVERLAP
        );
        assert_eq!(runnel_session_reset(&mut *s), RUNNEL_OK);
    }
    for code in 0..=20 {
        // SAFETY: the function returns a static NUL-terminated string.
        let msg = unsafe { std::ffi::CStr::from_ptr(runnel_status_message(code)) };
        assert!(!msg.to_bytes().is_empty());
        assert_ne!(
            msg.to_str().unwrap(),
            "unknown runnel status code",
            "{code}"
        );
    }
    // SAFETY: as above.
    let unknown = unsafe { std::ffi::CStr::from_ptr(runnel_status_message(21)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown runnel status code");
}

/// Snapshot mid-stream, restore into a second session over another arena, continue bit for bit;
/// a corrupted snapshot is refused with the session unchanged.
#[test]
fn snapshot_and_restore_through_the_c_api() {
    // tok_lstm (LSTM only) is small enough for Miri; the runtime's own snapshot tests cover
    // attention caches in every mode.
    let (blob, inputs) = fixture_blob("tok_lstm");
    let Inputs::Tokens(tok) = &inputs else {
        panic!("a token fixture")
    };
    let bytes = blob.as_bytes();
    let mut m = zeroed_model();
    let mut info = MaybeUninit::<runnel_model_info>::uninit();
    // SAFETY: valid pointers and lengths; the blob outlives the model.
    unsafe {
        assert_eq!(
            runnel_model_open(&mut *m, bytes.as_ptr().cast(), bytes.len()),
            RUNNEL_OK
        );
        assert_eq!(runnel_model_get_info(&*m, info.as_mut_ptr()), RUNNEL_OK);
    }
    // SAFETY: written by the successful call above.
    let info = unsafe { info.assume_init() };
    let od = info.output_dim as usize;
    let steps = 12.min(tok.len());
    let mut arenas = [
        vec![0u8; info.state_bytes as usize + 3],
        vec![0u8; info.state_bytes as usize + 8],
    ];
    let (a1, a2) = arenas.split_at_mut(1);
    let (mut s1, mut s2) = (zeroed_session(), zeroed_session());
    let mut snap = vec![0u8; info.snapshot_bytes as usize + 1];
    let mut want = vec![0f32; od];
    let mut got = vec![0f32; od];
    // SAFETY: valid pointers and lengths; the blob, model and arenas outlive the sessions.
    unsafe {
        assert_eq!(
            runnel_session_init(&mut *s1, &*m, a1[0].as_mut_ptr().cast(), a1[0].len()),
            RUNNEL_OK
        );
        assert_eq!(
            runnel_session_init(
                &mut *s2,
                &*m,
                a2[0][1..].as_mut_ptr().cast(),
                a2[0].len() - 1
            ),
            RUNNEL_OK
        );
        for &t in &tok[..steps / 2] {
            let st = runnel_session_step_token(&mut *s1, t as u32, want.as_mut_ptr(), od);
            assert_eq!(st, RUNNEL_OK);
        }
        let mut written = 0usize;
        // At an odd address, one byte too short, then right.
        assert_eq!(
            runnel_session_snapshot(
                &mut *s1,
                snap[1..].as_mut_ptr().cast(),
                snap.len() - 2,
                &mut written
            ),
            RUNNEL_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            runnel_session_snapshot(
                &mut *s1,
                snap[1..].as_mut_ptr().cast(),
                snap.len() - 1,
                &mut written
            ),
            RUNNEL_OK
        );
        assert_eq!(written, info.snapshot_bytes as usize);
        let mut bad = snap.clone();
        bad[20] ^= 1;
        assert_eq!(
            runnel_session_restore(&mut *s2, bad[1..].as_ptr().cast(), written),
            RUNNEL_ERR_BAD_SNAPSHOT
        );
        assert_eq!(
            runnel_session_restore(&mut *s2, snap[1..].as_ptr().cast(), written),
            RUNNEL_OK
        );
        for &t in &tok[steps / 2..steps] {
            assert_eq!(
                runnel_session_step_token(&mut *s1, t as u32, want.as_mut_ptr(), od),
                RUNNEL_OK
            );
            assert_eq!(
                runnel_session_step_token(&mut *s2, t as u32, got.as_mut_ptr(), od),
                RUNNEL_OK
            );
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "restored session differs"
            );
        }
    }
}

/// Re-opening a model object while sessions exist (the documented invalidation path): the
/// session reports `RUNNEL_ERR_NOT_INITIALIZED` — and, under Miri, without undefined behaviour
/// (the session's model pointer once came from a shared reference that the re-open invalidated).
#[test]
fn reopening_the_model_invalidates_its_sessions() {
    let (blob, _) = fixture_blob("tok_lstm");
    let bytes = blob.as_bytes();
    let mut m = zeroed_model();
    let mut s = zeroed_session();
    let mut arena = vec![0u8; 1 << 16];
    let mut out = [0f32; 64];
    let pm: *mut runnel_model = &mut *m;
    // SAFETY: valid pointers and lengths; the blob and arena outlive the model and session.
    unsafe {
        assert_eq!(
            runnel_model_open(pm, bytes.as_ptr().cast(), bytes.len()),
            RUNNEL_OK
        );
        assert_eq!(
            runnel_session_init(&mut *s, pm, arena.as_mut_ptr().cast(), arena.len()),
            RUNNEL_OK
        );
        let mut info = MaybeUninit::<runnel_model_info>::uninit();
        assert_eq!(runnel_model_get_info(pm, info.as_mut_ptr()), RUNNEL_OK);
        let od = info.assume_init().output_dim as usize;
        assert_eq!(
            runnel_session_step_token(&mut *s, 1, out.as_mut_ptr(), od),
            RUNNEL_OK
        );
        assert_eq!(
            runnel_model_open(pm, bytes.as_ptr().cast(), bytes.len()),
            RUNNEL_OK
        );
        assert_eq!(
            runnel_session_step_token(&mut *s, 1, out.as_mut_ptr(), od),
            RUNNEL_ERR_NOT_INITIALIZED
        );
        assert_eq!(runnel_session_reset(&mut *s), RUNNEL_ERR_NOT_INITIALIZED);
    }
}
