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
