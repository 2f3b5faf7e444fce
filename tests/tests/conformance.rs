//! Every fixture through convert → Model → Session, step by step, against PyTorch's outputs.

use runnel::DType::{self, F16, F32, I8};
use runnel::{BlockSpec, Model, Session};
use runnel_converter::stream;
use runnel_tests::*;

/// Allowed `|runnel − PyTorch| / (1 + |PyTorch|)` per (weights, KV) mode.
///
/// f32/f32 is the contract's 1e-4. The others are 2.5× the worst error measured over the twelve
/// fixtures (`cargo test --release -p runnel-tests --test measure -- --ignored --nocapture`),
/// rounded up; the measured worst is in the comment. They are properties of the quantization
/// scheme (f16: 11-bit mantissa; int8: per-row weight scales and a per-step input scale, per
/// row-and-head KV scales), not of any one fixture.
fn tolerance(w: DType, kv: DType) -> f64 {
    match (w, kv) {
        (F32, F32) => 1e-4,
        (F32, F16) => 1e-3,              // worst 2.4e-4 (activations)
        (F16, F32) | (F16, F16) => 5e-3, // worst 1.9e-3 (activations)
        (F32, I8) | (F16, I8) => 1.6e-2, // worst 6.3e-3 (norm_eps)
        (I8, _) => 0.12,                 // worst 4.7e-2 (activations, int8/f16)
    }
}

fn session_outputs(m: &Model<'_>, f: &Fixture) -> Vec<f32> {
    let mut arena = vec![0u8; m.state_bytes() + 3];
    let mut s = Session::new(m, &mut arena).unwrap();
    stream::run_session(&mut s, &f.inputs).unwrap()
}

#[test]
fn every_fixture_in_every_mode_matches_pytorch() {
    let mut failures = Vec::new();
    for f in fixtures() {
        for (w, kv) in MODES {
            let b = blob(&f.model, w, kv);
            let m = Model::from_bytes(b.as_bytes()).unwrap();
            assert_eq!(m.output_dim(), f.dim, "{}", f.name);
            let out = session_outputs(&m, &f);
            let err = max_rel_err(&out, &f.expected);
            let tol = tolerance(w, kv);
            if err > tol || err.is_nan() {
                failures.push(format!(
                    "{} {}/{}: error {err:.3e} > {tol:.1e}",
                    f.name,
                    w.name(),
                    kv.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn f32_is_within_1e4_step_by_step() {
    // The contract's bound, checked row by row so a failure names the first bad step.
    for f in fixtures() {
        let b = blob(&f.model, F32, F32);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let out = session_outputs(&m, &f);
        for (t, (got, want)) in out.chunks(f.dim).zip(f.expected.chunks(f.dim)).enumerate() {
            for (j, (&g, &e)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - e).abs() as f64 <= 1e-4 * (1.0 + e.abs() as f64),
                    "{} step {t} logit {j}: runnel {g} vs PyTorch {e}",
                    f.name
                );
            }
        }
    }
}

#[test]
fn streams_longer_than_four_windows_are_covered() {
    // The ring buffer wraps many times in these fixtures; the conformance tests above check them.
    let mut covered = 0;
    for f in fixtures() {
        let b = blob(&f.model, F32, F32);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let max_window = m
            .blocks()
            .filter_map(|b| match b {
                BlockSpec::Attention(a) => Some(a.window),
                _ => None,
            })
            .max();
        if let Some(w) = max_window {
            if f.inputs.len() >= 4 * w {
                covered += 1;
            }
        }
    }
    assert!(
        covered >= 3,
        "only {covered} fixtures stream ≥ 4× their window"
    );
}

#[test]
fn reset_then_same_stream_equals_fresh_session() {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for f in fixtures() {
        for (w, kv) in [(F32, F32), (I8, I8), (F16, F16)] {
            let b = blob(&f.model, w, kv);
            let m = Model::from_bytes(b.as_bytes()).unwrap();
            let fresh = session_outputs(&m, &f);
            let mut arena = vec![0xA5u8; m.state_bytes() + 3];
            let mut s = Session::new(&m, &mut arena).unwrap();
            let first = stream::run_session(&mut s, &f.inputs).unwrap();
            s.reset();
            let second = stream::run_session(&mut s, &f.inputs).unwrap();
            assert_eq!(
                bits(&first),
                bits(&fresh),
                "{} {}/{}",
                f.name,
                w.name(),
                kv.name()
            );
            assert_eq!(
                bits(&second),
                bits(&fresh),
                "{} {}/{} after reset",
                f.name,
                w.name(),
                kv.name()
            );
        }
    }
}

#[test]
fn very_long_stream_stays_finite() {
    // A stream far longer than any window: the ring's counters never grow, outputs stay finite.
    for f in fixtures() {
        let b = blob(&f.model, I8, I8);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let mut arena = vec![0u8; m.state_bytes() + 3];
        let mut s = Session::new(&m, &mut arena).unwrap();
        let mut out = vec![0f32; m.output_dim()];
        for step in 0..3000usize {
            match &f.inputs {
                stream::Inputs::Tokens(t) => {
                    s.step_token(t[step % t.len()] as u32, &mut out).unwrap()
                }
                stream::Inputs::Frames { dim, data } => {
                    let i = step % (data.len() / dim);
                    s.step_frame(&data[i * dim..(i + 1) * dim], &mut out)
                        .unwrap()
                }
            }
            assert!(out.iter().all(|v| v.is_finite()), "{} step {step}", f.name);
        }
    }
}

#[test]
fn errors_leave_state_untouched() {
    for f in fixtures() {
        let b = blob(&f.model, I8, I8);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let fresh = session_outputs(&m, &f);
        let mut arena = vec![0u8; m.state_bytes() + 3];
        let mut s = Session::new(&m, &mut arena).unwrap();
        let od = m.output_dim();
        let mut short = vec![0f32; od - 1];
        let mut out = vec![0f32; od];
        match m.input_kind() {
            runnel::InputKind::Tokens { vocab } => {
                assert_eq!(
                    s.step_token(vocab as u32, &mut out),
                    Err(runnel::Error::TokenOutOfRange {
                        token: vocab as u32,
                        vocab: vocab as u32
                    })
                );
                assert!(matches!(
                    s.step_token(0, &mut short),
                    Err(runnel::Error::WrongLength { .. })
                ));
                assert_eq!(
                    s.step_frame(&[0.0], &mut out),
                    Err(runnel::Error::WrongInputKind)
                );
            }
            runnel::InputKind::Frames { dim } => {
                assert!(matches!(
                    s.step_frame(&vec![0.0; dim + 1], &mut out),
                    Err(runnel::Error::WrongLength { .. })
                ));
                assert!(matches!(
                    s.step_frame(&vec![0.0; dim], &mut short),
                    Err(runnel::Error::WrongLength { .. })
                ));
                assert_eq!(
                    s.step_token(0, &mut out),
                    Err(runnel::Error::WrongInputKind)
                );
            }
        }
        let after = stream::run_session(&mut s, &f.inputs).unwrap();
        assert_eq!(after, fresh, "{}: a failed step changed the state", f.name);
    }
}

#[test]
fn arena_too_small_names_needed_and_given_and_unaligned_arenas_work() {
    let f = &fixtures()[0];
    let b = blob(&f.model, I8, I8);
    let m = Model::from_bytes(b.as_bytes()).unwrap();
    let need = m.state_bytes();
    let mut words = vec![0u32; need / 4 + 2];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    assert_eq!(
        Session::new(&m, &mut bytes[..need - 1]).err(),
        Some(runnel::Error::ArenaTooSmall {
            needed: need as u32,
            given: need as u32 - 1
        })
    );
    // Exactly state_bytes from an aligned address is enough; an unaligned start needs the padding.
    assert!(Session::new(&m, &mut bytes[..need]).is_ok());
    assert_eq!(
        Session::new(&m, &mut bytes[1..need + 1]).err(),
        Some(runnel::Error::ArenaTooSmall {
            needed: need as u32 + 3,
            given: need as u32
        })
    );
    let fresh = session_outputs(&m, f);
    let mut s = Session::new(&m, &mut bytes[1..need + 4]).unwrap();
    assert_eq!(stream::run_session(&mut s, &f.inputs).unwrap(), fresh);
}

#[test]
fn state_bytes_reported_by_convert_is_what_the_runtime_asks() {
    for f in fixtures() {
        for (w, kv) in MODES {
            let c = runnel_converter::convert(
                &f.model,
                &runnel_converter::ConvertOptions { weights: w, kv },
            )
            .unwrap();
            let b = runnel_converter::AlignedBytes::new(&c.blob);
            let m = Model::from_bytes(b.as_bytes()).unwrap();
            assert_eq!(c.state_bytes, m.state_bytes());
            assert_eq!(c.blob.len(), m.blob_bytes());
            assert_eq!(c.params, m.param_count(), "{}", f.name);
        }
    }
}

/// The state a session would hold after `steps` more steps with the same last `window` inputs
/// to each attention block: every ring rotated so that its next slot is the one a stream of
/// `steps + now` steps writes (`t mod window`). Nothing else in the state depends on the step
/// count: that is the whole design (docs/CONTRACT.md §6.3, docs/FORMAT.md "State arena").
fn advance_rings(m: &Model<'_>, snap: &mut [u8], steps: u64) {
    let kv = m.kv_type();
    let mut at = 32; // the snapshot header
    for b in m.blocks() {
        let words = b.state_words(kv, false).unwrap();
        if let BlockSpec::Attention(a) = b {
            let st = &mut snap[at..at + 4 * words];
            let word = |st: &[u8], i: usize| {
                u32::from_le_bytes(st[4 * i..4 * i + 4].try_into().unwrap()) as u64
            };
            let (next, filled) = (word(st, 0), word(st, 1));
            let w = a.window as u64;
            assert_eq!(filled, w, "the ring must be full for this test");
            let new_next = (next + steps) % w;
            let shift = ((new_next + w - next) % w) as usize;
            st[0..4].copy_from_slice(&(new_next as u32).to_le_bytes());
            let geo = a.kv_geometry(kv).unwrap();
            let row = a.kv_width() * kv.size();
            let rotate = |region: &mut [u8], row: usize| {
                let n = a.window * row;
                region[..n].rotate_right(shift * row);
            };
            let caches = &mut st[8..];
            let (k, rest) = caches.split_at_mut(4 * geo.cache);
            let (v, scales) = rest.split_at_mut(4 * geo.cache);
            rotate(k, row);
            rotate(v, row);
            if geo.scales > 0 {
                let (ks, vs) = scales.split_at_mut(4 * geo.scales);
                rotate(ks, 4 * a.kv_heads);
                rotate(vs, 4 * a.kv_heads);
            }
        }
        at += 4 * words;
    }
    fix_crc(snap);
}

/// §6.3: "a stream may run forever". Attention state holds no position (RoPE rotates the query
/// by the distance `t − j < window`, ALiBi uses the same distance), so a session 2³² + 100 steps
/// into a stream — its rings advanced as that stream would have left them — gives the outputs
/// of a session at step 100 with the same recent inputs, in every KV mode.
#[test]
fn positions_do_not_grow_with_the_stream() {
    for name in ["gqa_rope", "alibi_odd_heads", "lstm_proj"] {
        let f = fixture(name);
        let stream::Inputs::Tokens(tokens) = &f.inputs else {
            panic!("{name}: token fixture expected")
        };
        for kv in [F32, F16, I8] {
            let b = blob(&f.model, F32, kv);
            let m = Model::from_bytes(b.as_bytes()).unwrap();
            let mut arena_a = vec![0u8; m.state_bytes() + 3];
            let mut arena_b = vec![0u8; m.state_bytes() + 3];
            let mut sa = Session::new(&m, &mut arena_a).unwrap();
            let mut sb = Session::new(&m, &mut arena_b).unwrap();
            let mut out_a = vec![0f32; f.dim];
            let mut out_b = vec![0f32; f.dim];
            let (warm, rest) = tokens.split_at(tokens.len() / 2);
            for &t in warm {
                sa.step_token(t as u32, &mut out_a).unwrap();
            }
            let mut snap = vec![0u8; m.snapshot_bytes()];
            sa.snapshot(&mut snap).unwrap();
            advance_rings(&m, &mut snap, (1u64 << 32) + 100);
            sb.restore(&snap).unwrap();
            let mut worst = 0f32;
            for &t in rest {
                sa.step_token(t as u32, &mut out_a).unwrap();
                sb.step_token(t as u32, &mut out_b).unwrap();
                for (x, y) in out_a.iter().zip(&out_b) {
                    worst = worst.max((x - y).abs() / (1.0 + y.abs()));
                }
            }
            // Only the order of the softmax sums over the ring differs.
            assert!(worst < 2e-6, "{name} kv {}: {worst:e}", kv.name());
        }
    }
}

/// The integer-only mode on every fixture (every block kind and option of the contract, token and
/// frame inputs), calibrated on the fixture's own inputs: the outputs stay within
/// `INTEGER_TOLERANCE` of PyTorch's (`|d| / (1 + |y|)`; the worst measured is in the comment), and
/// the integer entry points give the same logits as the f32 ones before their conversion.
#[test]
fn every_fixture_runs_in_the_integer_mode() {
    const INTEGER_TOLERANCE: f64 = 0.16; // worst 6.4e-2 (lstm_proj)
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for f in fixtures() {
        let cal = runnel_converter::integer::Calibration::run(&f.model, &f.inputs).unwrap();
        let c = runnel_converter::convert_integer(&f.model, &cal).unwrap();
        let b = runnel_converter::AlignedBytes::new(&c.blob);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        assert!(m.is_integer(), "{}", f.name);
        let out = session_outputs(&m, &f);
        let err = max_rel_err(&out, &f.expected);
        report.push(format!("{} {err:.3e}", f.name));
        if err > INTEGER_TOLERANCE || err.is_nan() {
            failures.push(format!("{}: error {err:.3e} > {INTEGER_TOLERANCE}", f.name));
        }
        // the integer entry point: the same logits, as integers on the logit grid
        let (frame_scale, logit_scale) = m.integer_scales();
        let mut arena = vec![0u8; m.state_bytes() + 3];
        let mut s = Session::new(&m, &mut arena).unwrap();
        let mut raw = vec![0i32; f.dim];
        let mut q = Vec::new();
        for (t, row) in out.chunks_exact(f.dim).enumerate().take(20) {
            match &f.inputs {
                stream::Inputs::Tokens(toks) => s.step_token_int(toks[t] as u32, &mut raw).unwrap(),
                stream::Inputs::Frames { dim, data } => {
                    q.clear();
                    q.extend(
                        data[t * dim..(t + 1) * dim]
                            .iter()
                            .map(|&v| runnel::kernels::round_to_i8(v / frame_scale).max(-127)),
                    );
                    s.step_frame_int(&q, &mut raw).unwrap()
                }
            }
            let back: Vec<f32> = raw.iter().map(|&l| l as f32 * logit_scale).collect();
            assert_eq!(back, row, "{} step {t}", f.name);
        }
    }
    println!(
        "integer mode, worst error per fixture:\n{}",
        report.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
