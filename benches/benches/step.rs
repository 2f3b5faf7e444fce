//! One `step` of every fixture model in three modes (f32/f32, f16/f16, int8/int8).
//! `cargo bench -p runnel-benches --bench step`

use criterion::{criterion_group, criterion_main, Criterion};
use runnel::{DType, InputKind, Model, Session};
use runnel_converter::{convert, AlignedBytes, ConvertOptions};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.safetensors").is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p.join("model.safetensors")).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

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
    for (name, model) in fixtures().into_iter().chain(extra) {
        for dt in [DType::F32, DType::F16, DType::I8] {
            let blob = convert(
                &model,
                &ConvertOptions {
                    weights: dt,
                    kv: dt,
                },
            )
            .expect("convert")
            .blob;
            let blob = AlignedBytes::new(&blob);
            let m = Model::from_bytes(blob.as_bytes()).unwrap();
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

criterion_group!(benches, step);
criterion_main!(benches);
