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
    for code in 0..=21 {
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
    let unknown = unsafe { std::ffi::CStr::from_ptr(runnel_status_message(22)) };
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

/// The fixture's model in the integer-only mode (`runnel convert --integer`), calibrated on the
/// first `calibration_steps` of its inputs (fewer steps: faster under Miri), and all its inputs.
fn integer_blob(name: &str, calibration_steps: usize) -> (AlignedBytes, Inputs) {
    let f = fixture(name);
    let calibration = match &f.inputs {
        Inputs::Tokens(t) => Inputs::Tokens(t[..calibration_steps.min(t.len())].to_vec()),
        Inputs::Frames { dim, data } => Inputs::Frames {
            dim: *dim,
            data: data[..calibration_steps.saturating_mul(*dim).min(data.len())].to_vec(),
        },
    };
    let cal =
        runnel_converter::integer::Calibration::run(&f.model, &calibration).expect("calibrate");
    let c = runnel_converter::convert_integer(&f.model, &cal).expect("convert --integer");
    (AlignedBytes::new(&c.blob), f.inputs)
}

/// `data` on the int8 frame grid `scale`, rounded as the float step rounds a frame
/// (`runnel::Session::step_frame` on an integer-only model).
fn frames_i8(data: &[f32], scale: f32) -> Vec<i8> {
    let inv = 1.0 / scale;
    data.iter()
        .map(|&v| runnel::kernels::round_to_i8(v * inv).max(-127))
        .collect()
}

/// The integer entry points give the runtime's integers bit for bit, the scales are the model's,
/// and the float step on the same model returns those integers times `logit_scale`.
#[test]
fn integer_steps_same_bits_as_the_runtime() {
    for name in ["tok_lstm2_attn_gru", "frames_gru"] {
        let (blob, inputs) = integer_blob(name, usize::MAX);
        let bytes = blob.as_bytes();
        let model = runnel::Model::from_bytes(bytes).expect("open");
        assert!(model.is_integer());
        let (frame_scale, logit_scale) = model.integer_scales();
        let od = model.output_dim();
        let steps = inputs.len().min(24);
        let mut want_arena = vec![0u8; model.state_bytes() + 3];
        let mut want_sess = runnel::Session::new(&model, &mut want_arena).expect("session");

        let mut m = zeroed_model();
        let (mut s, mut sf) = (zeroed_session(), zeroed_session());
        let mut scales = runnel_integer_scales {
            frame_scale: -1.0,
            logit_scale: -1.0,
        };
        let mut arena = vec![0u8; model.state_bytes() + 3];
        let mut arena_f = vec![0u8; model.state_bytes() + 3];
        // SAFETY: valid pointers and lengths; the blob and arenas outlive the model and sessions.
        unsafe {
            assert_eq!(
                runnel_model_open(&mut *m, bytes.as_ptr().cast(), bytes.len()),
                RUNNEL_OK
            );
            assert_eq!(runnel_model_get_integer_scales(&*m, &mut scales), RUNNEL_OK);
            assert_eq!(
                runnel_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), arena.len()),
                RUNNEL_OK
            );
            assert_eq!(
                runnel_session_init(&mut *sf, &*m, arena_f.as_mut_ptr().cast(), arena_f.len()),
                RUNNEL_OK
            );
        }
        assert_eq!(
            scales.frame_scale.to_bits(),
            frame_scale.to_bits(),
            "{name}"
        );
        assert_eq!(
            scales.logit_scale.to_bits(),
            logit_scale.to_bits(),
            "{name}"
        );
        let q = match &inputs {
            Inputs::Frames { data, .. } => frames_i8(data, scales.frame_scale),
            Inputs::Tokens(_) => Vec::new(),
        };
        let (mut got, mut want, mut float) = (vec![0i32; od], vec![0i32; od], vec![0f32; od]);
        for t in 0..steps {
            // SAFETY: valid session, input and output pointers and lengths.
            let (st, stf) = unsafe {
                match &inputs {
                    Inputs::Tokens(tok) => {
                        want_sess.step_token_int(tok[t] as u32, &mut want).unwrap();
                        (
                            runnel_session_step_token_int(
                                &mut *s,
                                tok[t] as u32,
                                got.as_mut_ptr(),
                                od,
                            ),
                            runnel_session_step_token(
                                &mut *sf,
                                tok[t] as u32,
                                float.as_mut_ptr(),
                                od,
                            ),
                        )
                    }
                    Inputs::Frames { dim, data } => {
                        let frame = &q[t * dim..(t + 1) * dim];
                        want_sess.step_frame_int(frame, &mut want).unwrap();
                        (
                            runnel_session_step_frame_int(
                                &mut *s,
                                frame.as_ptr(),
                                *dim,
                                got.as_mut_ptr(),
                                od,
                            ),
                            runnel_session_step_frame(
                                &mut *sf,
                                data[t * dim..].as_ptr(),
                                *dim,
                                float.as_mut_ptr(),
                                od,
                            ),
                        )
                    }
                }
            };
            assert_eq!((st, stf), (RUNNEL_OK, RUNNEL_OK), "{name} step {t}");
            assert_eq!(
                got, want,
                "{name} step {t}: the C API differs from the runtime"
            );
            let back: Vec<u32> = got
                .iter()
                .map(|&l| (l as f32 * scales.logit_scale).to_bits())
                .collect();
            let float: Vec<u32> = float.iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                back, float,
                "{name} step {t}: l * logit_scale != the float step"
            );
        }
    }
}

/// The integer entry points' status codes; every failing call leaves `out` and the session's state
/// unchanged.
#[test]
fn integer_status_codes() {
    let (fblob, _) = fixture_blob("tok_lstm"); // a float (default options) model
                                               // calibrated on 4 steps: the grids do not matter here, and Miri runs this test
    let (tblob, _) = integer_blob("tok_lstm", 4);
    let (gblob, ginputs) = integer_blob("frames_gru", 4);
    let Inputs::Frames { dim, data } = &ginputs else {
        panic!("a frame fixture")
    };
    let dim = *dim;
    let (fb, tb, gb) = (fblob.as_bytes(), tblob.as_bytes(), gblob.as_bytes());
    let (mut fm, mut tm, mut gm, mut zero_m) = (
        zeroed_model(),
        zeroed_model(),
        zeroed_model(),
        zeroed_model(),
    );
    let (mut fs, mut ts, mut ts2, mut gs, mut zero_s) = (
        zeroed_session(),
        zeroed_session(),
        zeroed_session(),
        zeroed_session(),
        zeroed_session(),
    );
    // Raw pointers only, taken once, as C holds them (a later `&mut` to a model would invalidate
    // the pointer its sessions keep: Miri).
    let [fmp, tmp, gmp, zmp]: [*mut runnel_model; 4] = [
        ptr::from_mut(&mut *fm),
        ptr::from_mut(&mut *tm),
        ptr::from_mut(&mut *gm),
        ptr::from_mut(&mut *zero_m),
    ];
    let [fsp, tsp, ts2p, gsp, zsp]: [*mut runnel_session; 5] = [
        ptr::from_mut(&mut *fs),
        ptr::from_mut(&mut *ts),
        ptr::from_mut(&mut *ts2),
        ptr::from_mut(&mut *gs),
        ptr::from_mut(&mut *zero_s),
    ];
    // f32 words, so that alignment never hides the checks that follow it
    let mut arenas = vec![vec![0f32; 1 << 14]; 4];
    let [fa, ta, ta2, ga] = &mut arenas[..] else {
        unreachable!()
    };
    const POISON: i32 = 0x5a5a_5a5a;
    let mut out = vec![POISON; 300];
    let mut want = vec![0i32; 300];
    let mut scales = runnel_integer_scales {
        frame_scale: -1.0,
        logit_scale: -1.0,
    };
    // SAFETY: every pointer is NULL, or valid for what the callee does with it; the blobs and
    // arenas outlive the models and sessions.
    unsafe {
        for (m, b) in [(fmp, fb), (tmp, tb), (gmp, gb)] {
            assert_eq!(runnel_model_open(m, b.as_ptr().cast(), b.len()), RUNNEL_OK);
        }
        let init = |s: *mut runnel_session, m: *const runnel_model, a: &mut Vec<f32>| {
            runnel_session_init(s, m, a.as_mut_ptr().cast(), a.len() * 4)
        };
        assert_eq!(init(fsp, fmp, fa), RUNNEL_OK);
        assert_eq!(init(tsp, tmp, ta), RUNNEL_OK);
        assert_eq!(init(ts2p, tmp, ta2), RUNNEL_OK);
        assert_eq!(init(gsp, gmp, ga), RUNNEL_OK);
        let mut info = MaybeUninit::<runnel_model_info>::uninit();
        assert_eq!(runnel_model_get_info(tmp, info.as_mut_ptr()), RUNNEL_OK);
        let od = info.assume_init().output_dim as usize;
        let vocab = info.assume_init().input_dim;
        assert_eq!(runnel_model_get_info(gmp, info.as_mut_ptr()), RUNNEL_OK);
        let god = info.assume_init().output_dim as usize;
        assert!(od < 300 && god < 300);

        // runnel_model_get_integer_scales
        let unchanged = scales;
        assert_eq!(
            runnel_model_get_integer_scales(fmp, &mut scales),
            RUNNEL_ERR_NOT_INTEGER
        );
        assert_eq!(
            runnel_model_get_integer_scales(zmp, &mut scales),
            RUNNEL_ERR_NOT_INITIALIZED
        );
        assert_eq!(
            runnel_model_get_integer_scales(ptr::null(), &mut scales),
            RUNNEL_ERR_NULL
        );
        assert_eq!(
            runnel_model_get_integer_scales(tmp, ptr::null_mut()),
            RUNNEL_ERR_NULL
        );
        let mut raw = [0u32; 8];
        let mis = raw
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<runnel_integer_scales>();
        assert_eq!(
            runnel_model_get_integer_scales(tmp, mis),
            RUNNEL_ERR_MISALIGNED
        );
        let inside = tmp.cast::<runnel_integer_scales>();
        assert_eq!(
            runnel_model_get_integer_scales(tmp, inside),
            RUNNEL_ERR_OVERLAP
        );
        assert_eq!(scales, unchanged, "a failed call wrote the scales");
        assert_eq!(runnel_model_get_integer_scales(tmp, &mut scales), RUNNEL_OK);
        assert_eq!(scales.frame_scale, 1.0, "a token model's frame grid");
        assert!(scales.logit_scale > 0.0);
        assert_eq!(runnel_model_get_integer_scales(gmp, &mut scales), RUNNEL_OK);
        let frame_scale = scales.frame_scale;
        assert!(frame_scale > 0.0 && frame_scale != 1.0);

        // step_token_int: on the float model, then the argument checks; `ts2` takes the same
        // successful steps as `ts`, none of the failing ones
        let o = out.as_mut_ptr();
        assert_eq!(
            runnel_session_step_token_int(fsp, 0, o, od),
            RUNNEL_ERR_NOT_INTEGER
        );
        assert_eq!(
            runnel_session_step_frame_int(fsp, [0i8; 4].as_ptr(), 4, o, od),
            RUNNEL_ERR_NOT_INTEGER
        );
        assert_eq!(runnel_session_step_token_int(tsp, 3, o, od), RUNNEL_OK);
        assert_eq!(
            runnel_session_step_token_int(ts2p, 3, want.as_mut_ptr(), od),
            RUNNEL_OK
        );
        assert_eq!(out[..od], want[..od]);
        out.fill(POISON);
        let cases: [(runnel_status, runnel_status); 12] = [
            (
                runnel_session_step_token_int(ptr::null_mut(), 0, o, od),
                RUNNEL_ERR_NULL,
            ),
            (
                runnel_session_step_token_int(tsp, 0, ptr::null_mut(), od),
                RUNNEL_ERR_NULL,
            ),
            (
                runnel_session_step_token_int(zsp, 0, o, od),
                RUNNEL_ERR_NOT_INITIALIZED,
            ),
            (
                runnel_session_step_token_int(tsp, 0, o.cast::<u8>().wrapping_add(2).cast(), od),
                RUNNEL_ERR_MISALIGNED,
            ),
            (
                runnel_session_step_token_int(tsp, 0, o, 0),
                RUNNEL_ERR_BUFFER_TOO_SMALL,
            ),
            (
                runnel_session_step_token_int(tsp, 0, o, od - 1),
                RUNNEL_ERR_BUFFER_TOO_SMALL,
            ),
            (
                runnel_session_step_token_int(tsp, vocab, o, od),
                RUNNEL_ERR_TOKEN_OUT_OF_RANGE,
            ),
            (
                runnel_session_step_token_int(tsp, u32::MAX, o, od),
                RUNNEL_ERR_TOKEN_OUT_OF_RANGE,
            ),
            (
                runnel_session_step_token_int(tsp, 0, ta.as_mut_ptr().cast(), od),
                RUNNEL_ERR_OVERLAP,
            ),
            (
                runnel_session_step_token_int(tsp, 0, tsp.cast(), od),
                RUNNEL_ERR_OVERLAP,
            ),
            (
                runnel_session_step_token_int(tsp, 0, tb.as_ptr().cast_mut().cast(), od),
                RUNNEL_ERR_OVERLAP,
            ),
            (
                runnel_session_step_frame_int(tsp, [0i8; 4].as_ptr(), 4, o, od),
                RUNNEL_ERR_WRONG_INPUT_KIND,
            ),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "token case {i}");
        }
        assert!(
            out.iter().all(|&v| v == POISON),
            "a failed call wrote the output"
        );
        // the failures changed no state: both sessions step on in step
        for t in [5, vocab - 1, 0] {
            assert_eq!(runnel_session_step_token_int(tsp, t, o, od + 7), RUNNEL_OK);
            assert_eq!(
                runnel_session_step_token_int(ts2p, t, want.as_mut_ptr(), od),
                RUNNEL_OK
            );
            assert_eq!(out[..od], want[..od], "token {t}");
            assert_eq!(out[od], POISON, "wrote past output_dim");
        }

        // step_frame_int on the frame model
        let q = frames_i8(&data[..dim], frame_scale);
        let mut frame = vec![0i8; dim + 16];
        frame[1..=dim].copy_from_slice(&q); // at an odd address: int8 frames need no alignment
        let f = frame[1..].as_ptr();
        let go = out.as_mut_ptr();
        out.fill(POISON);
        let cases: [(runnel_status, runnel_status); 13] = [
            (
                runnel_session_step_frame_int(ptr::null_mut(), f, dim, go, god),
                RUNNEL_ERR_NULL,
            ),
            (
                runnel_session_step_frame_int(gsp, ptr::null(), dim, go, god),
                RUNNEL_ERR_NULL,
            ),
            (
                runnel_session_step_frame_int(gsp, f, dim, ptr::null_mut(), god),
                RUNNEL_ERR_NULL,
            ),
            (
                runnel_session_step_frame_int(zsp, f, dim, go, god),
                RUNNEL_ERR_NOT_INITIALIZED,
            ),
            (
                runnel_session_step_frame_int(gsp, f, dim - 1, go, god),
                RUNNEL_ERR_BAD_LENGTH,
            ),
            (
                runnel_session_step_frame_int(gsp, f, dim + 1, go, god),
                RUNNEL_ERR_BAD_LENGTH,
            ),
            (
                runnel_session_step_frame_int(gsp, f, 0, go, god),
                RUNNEL_ERR_BAD_LENGTH,
            ),
            (
                runnel_session_step_frame_int(gsp, f, usize::MAX, go, god),
                RUNNEL_ERR_BAD_LENGTH,
            ),
            (
                runnel_session_step_frame_int(gsp, f, dim, go, god - 1),
                RUNNEL_ERR_BUFFER_TOO_SMALL,
            ),
            (
                runnel_session_step_frame_int(
                    gsp,
                    f,
                    dim,
                    go.cast::<u8>().wrapping_add(1).cast(),
                    god,
                ),
                RUNNEL_ERR_MISALIGNED,
            ),
            (
                runnel_session_step_frame_int(gsp, ga.as_ptr().cast(), dim, go, god),
                RUNNEL_ERR_OVERLAP,
            ),
            (
                runnel_session_step_frame_int(gsp, f, dim, ga.as_mut_ptr().cast(), god),
                RUNNEL_ERR_OVERLAP,
            ),
            (
                runnel_session_step_token_int(gsp, 0, go, god),
                RUNNEL_ERR_WRONG_INPUT_KIND,
            ),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "frame case {i}");
        }
        assert!(
            out.iter().all(|&v| v == POISON),
            "a failed call wrote the output"
        );
        // out overlapping the frame
        let mut words = vec![0i32; god + dim];
        let wp = words.as_mut_ptr();
        std::ptr::copy_nonoverlapping(q.as_ptr(), wp.cast::<i8>(), dim);
        assert_eq!(
            runnel_session_step_frame_int(gsp, wp.cast::<i8>(), dim, wp, god),
            RUNNEL_ERR_OVERLAP
        );
        // the frame read from the blob is fine (both only read)
        assert_eq!(
            runnel_session_step_frame_int(gsp, gb.as_ptr().cast(), dim, go, god),
            RUNNEL_OK
        );
        assert_eq!(runnel_session_reset(gsp), RUNNEL_OK);
        assert_eq!(
            runnel_session_step_frame_int(gsp, f, dim, go, god),
            RUNNEL_OK
        );
        // the same as the runtime's first step (the failures and the reset left a fresh stream)
        let model = runnel::Model::from_bytes(gb).unwrap();
        let mut arena = vec![0u8; model.state_bytes() + 3];
        let mut sess = runnel::Session::new(&model, &mut arena).unwrap();
        sess.step_frame_int(&q, &mut want[..god]).unwrap();
        assert_eq!(out[..god], want[..god]);
    }
}
