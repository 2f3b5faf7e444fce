//! State snapshots (save mid-stream, restore elsewhere, continue bit for bit; every corruption
//! refused with the session untouched) and the non-finite policy (a non-finite frame is refused;
//! a step that overflows reports it and leaves the session usable, never silently poisoned).

use runnel::DType::{F16, F32, I8};
use runnel::{Error, InputKind, Model, Session};
use runnel_converter::stream::Inputs;
use runnel_tests::*;

/// One step of input `t` of a fixture's stream.
fn step(s: &mut Session<'_, '_>, inputs: &Inputs, t: usize, out: &mut [f32]) -> Result<(), Error> {
    match inputs {
        Inputs::Tokens(ids) => s.step_token(ids[t] as u32, out),
        Inputs::Frames { dim, data } => s.step_frame(&data[t * dim..(t + 1) * dim], out),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The snapshot of a session (the whole persistent state, as bytes).
fn snap(s: &Session<'_, '_>) -> Vec<u8> {
    let mut buf = vec![0u8; s.model().snapshot_bytes()];
    assert_eq!(s.snapshot(&mut buf).unwrap(), buf.len());
    buf
}

#[test]
fn a_restored_snapshot_continues_the_stream_bit_for_bit() {
    for f in fixtures() {
        for (w, kv) in UNIFORM_MODES {
            let b = f.blob(w, kv);
            let m = Model::from_bytes(b.as_bytes()).unwrap();
            let steps = f.inputs.len();
            let cut = steps / 2;
            let mut out = vec![0f32; m.output_dim()];

            // Uninterrupted.
            let mut arena = vec![0u8; m.state_bytes()];
            let mut s = Session::new(&m, &mut arena).unwrap();
            let mut want = Vec::new();
            let mut saved = Vec::new();
            for t in 0..steps {
                if t == cut {
                    saved = snap(&s);
                }
                step(&mut s, &f.inputs, t, &mut out).unwrap();
                want.extend(bits(&out));
            }

            // Restored into a fresh arena at an odd address, from a snapshot at an odd address.
            let mut moved = vec![0u8; saved.len() + 1];
            moved[1..].copy_from_slice(&saved);
            let mut arena2 = vec![0u8; m.state_bytes() + 4];
            let mut s2 = Session::new(&m, &mut arena2[1..]).unwrap();
            s2.restore(&moved[1..]).unwrap();
            let mut got = want[..cut * m.output_dim()].to_vec();
            for t in cut..steps {
                step(&mut s2, &f.inputs, t, &mut out).unwrap();
                got.extend(bits(&out));
            }
            assert!(
                got == want,
                "{} {}/{}: restored stream differs",
                f.name,
                w.name(),
                kv.name()
            );
        }
    }
}

#[test]
fn every_corrupted_snapshot_is_refused_and_the_session_untouched() {
    let f = fixture("tok_lstm2_attn_gru");
    let other = fixture("tok_lstm");
    for (w, kv) in UNIFORM_MODES {
        let b = f.blob(w, kv);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let mut out = vec![0f32; m.output_dim()];
        let mut arena = vec![0u8; m.state_bytes()];
        let mut s = Session::new(&m, &mut arena).unwrap();
        for t in 0..5 {
            step(&mut s, &f.inputs, t, &mut out).unwrap();
        }
        let good = snap(&s);
        // Move the session elsewhere in the stream, so that "untouched" is visible.
        step(&mut s, &f.inputs, 5, &mut out).unwrap();
        let before = snap(&s);
        let mut check = |bytes: &[u8], what: &str| {
            let e = s.restore(bytes).expect_err(what);
            assert!(
                matches!(
                    e,
                    Error::BadSnapshot { .. } | Error::SnapshotOfAnotherModel { .. }
                ),
                "{what}: {e:?}"
            );
            assert!(snap(&s) == before, "{what}: the session changed");
        };
        // Every truncation.
        for n in 0..good.len() {
            check(&good[..n], "truncated");
        }
        // Every single-byte corruption.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            check(&bad, "corrupted");
        }
        // Another version, with the CRC made valid again.
        let mut v2 = good.clone();
        v2[4] = 2;
        let n = v2.len();
        let c = runnel::format::crc32(&v2[..n - 4]);
        v2[n - 4..].copy_from_slice(&c.to_le_bytes());
        check(&v2, "version 2");
        // A state no step can produce (a NaN in the first state word), CRC valid.
        let mut nan = good.clone();
        nan[32..36].copy_from_slice(&f32::NAN.to_bits().to_le_bytes());
        let c = runnel::format::crc32(&nan[..n - 4]);
        nan[n - 4..].copy_from_slice(&c.to_le_bytes());
        check(&nan, "NaN state");
        // The same model converted otherwise, and another model.
        let (w2, kv2) = if w == I8 { (F32, F32) } else { (I8, I8) };
        for (name, model) in [("other mode", &f), ("other model", &other)] {
            let (ww, kk) = if name == "other mode" {
                (w2, kv2)
            } else {
                (w, kv)
            };
            let ob = model.blob(ww, kk);
            let om = Model::from_bytes(ob.as_bytes()).unwrap();
            let mut oa = vec![0u8; om.state_bytes()];
            let os = Session::new(&om, &mut oa).unwrap();
            let e = s.restore(&snap(&os)).expect_err(name);
            assert!(
                matches!(
                    e,
                    Error::SnapshotOfAnotherModel { .. } | Error::BadSnapshot { .. }
                ),
                "{name}: {e:?}"
            );
            assert!(snap(&s) == before, "{name}: the session changed");
        }
        // The good one is accepted, and a too-small snapshot buffer is refused.
        s.restore(&good).unwrap();
        assert!(snap(&s) == good);
        let mut small = vec![0u8; good.len() - 1];
        assert!(matches!(
            s.snapshot(&mut small),
            Err(Error::WrongLength { .. })
        ));
    }
}

#[test]
fn a_non_finite_frame_is_refused_and_changes_nothing() {
    let f = fixture("frames_gru");
    for w in [F32, F16, I8] {
        let b = f.blob(w, w);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let InputKind::Frames { dim } = m.input_kind() else {
            panic!("frames_gru takes frames")
        };
        let mut out = vec![0f32; m.output_dim()];
        let mut arena = vec![0u8; m.state_bytes()];
        let mut s = Session::new(&m, &mut arena).unwrap();
        step(&mut s, &f.inputs, 0, &mut out).unwrap();
        let before = snap(&s);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut frame = vec![0.5f32; dim];
            frame[dim - 1] = bad;
            assert_eq!(
                s.step_frame(&frame, &mut out),
                Err(Error::NonFiniteInput {
                    index: dim as u32 - 1
                }),
                "{} {bad}",
                w.name()
            );
            assert!(snap(&s) == before, "{}: the state changed", w.name());
        }
    }
}

/// 1e38 in every feature overflows f32 inside the model. Whatever the weight type, the step
/// either gives finite logits or reports `NonFiniteState`; it never returns `Ok` with a NaN, and
/// afterwards the session works: the next step equals the first step of a fresh session.
#[test]
fn an_overflowing_step_is_reported_and_the_session_stays_usable() {
    let f = fixture("frames_gru");
    for w in [F32, F16, I8] {
        let b = f.blob(w, w);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let InputKind::Frames { dim } = m.input_kind() else {
            panic!("frames_gru takes frames")
        };
        let mut out = vec![0f32; m.output_dim()];
        let mut fresh_out = vec![0f32; m.output_dim()];
        let mut fresh_arena = vec![0u8; m.state_bytes()];
        let mut fresh = Session::new(&m, &mut fresh_arena).unwrap();
        step(&mut fresh, &f.inputs, 0, &mut fresh_out).unwrap();

        let mut arena = vec![0u8; m.state_bytes()];
        let mut s = Session::new(&m, &mut arena).unwrap();
        step(&mut s, &f.inputs, 0, &mut out).unwrap();
        let mut overflowed = 0;
        for sign in [1.0f32, -1.0] {
            let huge = vec![sign * 1e38; dim];
            match s.step_frame(&huge, &mut out) {
                Ok(()) => assert!(out.iter().all(|v| v.is_finite()), "{}", w.name()),
                Err(Error::NonFiniteState) => {
                    overflowed += 1;
                    assert!(out.iter().all(|&v| v == 0.0));
                    step(&mut s, &f.inputs, 0, &mut out).unwrap();
                    assert_eq!(bits(&out), bits(&fresh_out), "{}: not reset", w.name());
                }
                Err(e) => panic!("{}: {e:?}", w.name()),
            }
        }
        // With f32 weights the input projection itself overflows (this returned Ok with NaN
        // logits, for every later step too, before the policy). int8 quantizes the frame to
        // ±127 with a scale, and the gates saturate, so it may stay finite.
        if w == F32 {
            assert!(overflowed > 0, "f32: 1e38 frames never overflowed");
        }
    }
}

/// Soak: 10⁶ steps of the int8 demo model over its held-out text, cycled. Every output stays
/// finite and the step time does not drift (the last 100k steps are not slower than the first
/// 100k by more than half, which a shared machine's noise stays within). Ignored: about a minute
/// in release.
///
/// `cargo test --release -p runnel-tests --test reliability soak -- --ignored --nocapture`
#[test]
#[ignore]
fn soak_a_million_steps_of_the_demo_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/charlm");
    let model = std::fs::read(dir.join("charlm.safetensors")).unwrap();
    let text = std::fs::read_to_string(dir.join("heldout.txt")).unwrap();
    let ids = runnel_converter::text::encode(&text);
    let b = blob(&model, I8, I8);
    let m = Model::from_bytes(b.as_bytes()).unwrap();
    let mut arena = vec![0u8; m.state_bytes()];
    let mut s = Session::new(&m, &mut arena).unwrap();
    let mut out = vec![0f32; m.output_dim()];
    const STEPS: usize = 1_000_000;
    const WINDOW: usize = 100_000;
    let mut windows = Vec::new();
    let mut t0 = std::time::Instant::now();
    for t in 0..STEPS {
        s.step_token(ids[t % ids.len()], &mut out).unwrap();
        assert!(out.iter().all(|v| v.is_finite()), "step {t}");
        if (t + 1) % WINDOW == 0 {
            windows.push(t0.elapsed().as_secs_f64() * 1e6 / WINDOW as f64);
            t0 = std::time::Instant::now();
        }
    }
    let first = windows[0];
    let last = *windows.last().unwrap();
    println!(
        "soak: {STEPS} steps, µs/step per {WINDOW}-step window: {}",
        windows
            .iter()
            .map(|w| format!("{w:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(
        last < first * 1.5,
        "step time drifted: {first:.1} → {last:.1} µs"
    );
}

/// Prints the state arena and snapshot sizes of the demo model in each mode (docs/RELIABILITY.md):
/// `cargo test -p runnel-tests --test reliability snapshot_sizes -- --ignored --nocapture`
#[test]
#[ignore]
fn snapshot_sizes_of_the_demo_model() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/charlm/charlm.safetensors");
    let model = std::fs::read(path).unwrap();
    for w in [F32, F16, I8] {
        let b = blob(&model, w, w);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        println!(
            "{}/{}: state {} B, snapshot {} B",
            w.name(),
            w.name(),
            m.state_bytes(),
            m.snapshot_bytes()
        );
    }
}
