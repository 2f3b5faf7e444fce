//! One `step` of every fixture model in three modes (f32/f32, f16/f16, int8/int8), and of the
//! demo model (`models/charlm`) in all nine weight × KV-cache modes, streamed over its held-out
//! text.
//!
//! `cargo bench -p runnel-benches --bench step` (`-- demo` for the demo model only)

use criterion::{criterion_group, criterion_main, Criterion};
use runnel::{InputKind, Model, Session};
use runnel_test_support::{blob, fixtures, MODES, UNIFORM_MODES};

fn step(c: &mut Criterion) {
    let extra = std::env::var("RUNNEL_BENCH_MODEL").ok().map(|p| {
        let name = std::path::Path::new(&p)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        (name, std::fs::read(&p).expect("RUNNEL_BENCH_MODEL"))
    });
    let mut g = c.benchmark_group("step");
    g.warm_up_time(std::time::Duration::from_millis(300));
    g.measurement_time(std::time::Duration::from_secs(1));
    let models = fixtures().into_iter().map(|f| (f.name, f.model));
    for (name, model) in models.chain(extra) {
        for (dt, kv) in UNIFORM_MODES {
            let b = blob(&model, dt, kv);
            let m = Model::from_bytes(b.as_bytes()).unwrap();
            let mut arena = vec![0u8; m.state_bytes() + 3];
            let mut s = Session::new(&m, &mut arena).unwrap();
            let mut out = vec![0f32; m.output_dim()];
            let mut t = 0u32;
            match m.input_kind() {
                InputKind::Tokens { vocab } => {
                    g.bench_function(format!("{name}/{}", dt.name()), |b| {
                        b.iter(|| {
                            t = (t + 7) % vocab as u32;
                            s.step_token(t, &mut out).unwrap();
                        })
                    })
                }
                InputKind::Frames { dim } => {
                    let frame: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
                    g.bench_function(format!("{name}/{}", dt.name()), |b| {
                        b.iter(|| s.step_frame(&frame, &mut out).unwrap())
                    })
                }
            };
        }
    }
    g.finish();
}

/// The demo model in every mode: one step per held-out character (token = byte mod vocab), the
/// session running on across iterations (the KV caches stay full, as in a long stream).
fn demo(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/charlm");
    let model = std::fs::read(root.join("charlm.safetensors")).expect("models/charlm");
    let text = std::fs::read(root.join("heldout.txt")).expect("models/charlm/heldout.txt");
    let mut g = c.benchmark_group("demo");
    g.warm_up_time(std::time::Duration::from_millis(300));
    g.measurement_time(std::time::Duration::from_secs(1));
    for (dt, kv) in MODES {
        let b = blob(&model, dt, kv);
        let m = Model::from_bytes(b.as_bytes()).unwrap();
        let InputKind::Tokens { vocab } = m.input_kind() else {
            panic!("the demo model takes tokens");
        };
        let mut arena = vec![0u8; m.state_bytes() + 3];
        let mut s = Session::new(&m, &mut arena).unwrap();
        let mut out = vec![0f32; m.output_dim()];
        let mut at = 0;
        g.bench_function(format!("charlm/{}-{}", dt.name(), kv.name()), |b| {
            b.iter(|| {
                at = (at + 1) % text.len();
                s.step_token(text[at] as u32 % vocab as u32, &mut out)
                    .unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, step, demo);
criterion_main!(benches);
