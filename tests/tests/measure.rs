//! Prints the measured error of every fixture in every mode (run with --nocapture).
use runnel_tests::*;

#[test]
#[ignore]
fn measure_quantization_error() {
    for f in fixtures() {
        for (w, kv) in MODES {
            let b = blob(&f.model, w, kv);
            let m = runnel::Model::from_bytes(b.as_bytes()).unwrap();
            let out = runnel_converter::stream::run(&m, &f.inputs).unwrap();
            let amax = f.expected.iter().fold(0f32, |a, &v| a.max(v.abs()));
            println!(
                "{:<22} {:>4}/{:<4} rel {:.3e}  absmax_y {:.2}",
                f.name,
                w.name(),
                kv.name(),
                max_rel_err(&out, &f.expected),
                amax
            );
        }
    }
}

/// Per fixture: parameters, blob and state bytes in each mode (for docs/PERFORMANCE.md):
/// `cargo test --release -p runnel-tests --test measure fixture_table -- --ignored --nocapture`
#[test]
#[ignore]
fn fixture_table() {
    use runnel::DType::*;
    println!("| fixture | params | blob f32 | blob f16 | blob int8 | state f32/f32 | state f16/f16 | state int8/int8 |");
    println!("|---|---|---|---|---|---|---|---|");
    for f in fixtures() {
        let size = |w, kv| {
            let b = blob(&f.model, w, kv);
            let m = runnel::Model::from_bytes(b.as_bytes()).unwrap();
            (m.param_count(), m.blob_bytes(), m.state_bytes())
        };
        let (p, b32, s32) = size(F32, F32);
        let (_, b16, s16) = size(F16, F16);
        let (_, b8, s8) = size(I8, I8);
        println!(
            "| {} | {p} | {b32} | {b16} | {b8} | {s32} | {s16} | {s8} |",
            f.name
        );
    }
}
