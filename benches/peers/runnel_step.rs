//! The Rust contender of the peer comparison (`benches/peers/run.py`): streams a text through
//! runnel blobs one step at a time and prints, per blob, one JSON line with the mean wall time
//! per step and the bits per character of its own logits.
//!
//! ```text
//! cargo run --release -p runnel-benches --example peers -- TEXT STEPS LABEL=BLOB...
//! ```
//!
//! Each character of TEXT is one step (the demo model's vocabulary, `runnel_converter::text`);
//! STEPS limits the stream (0 = the whole text). Per blob: one untimed warm-up pass over the
//! first 200 steps, a reset, then the timed pass from zero state over the stream, every step's
//! logits kept (a copy of 96 floats) and scored after the clock stops. The timed figure is the
//! whole pass divided by its steps, as the Python contenders are timed.
use std::time::Instant;

use runnel::{Model, Session};
use runnel_converter::{text, AlignedBytes};

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: peers TEXT STEPS LABEL=BLOB...";
    let text = std::fs::read_to_string(args.next().expect(usage)).expect("cannot read TEXT");
    let steps: usize = args.next().expect(usage).parse().expect("STEPS: a number");
    let mut ids = text::encode(&text);
    if steps > 0 {
        ids.truncate(steps);
    }
    assert!(ids.len() >= 2, "the stream needs at least two characters");
    for spec in args {
        let (label, path) = spec.split_once('=').expect("LABEL=BLOB");
        let blob = AlignedBytes::new(&std::fs::read(path).expect("cannot read BLOB"));
        let model = Model::from_bytes(blob.as_bytes()).expect("invalid blob");
        let mut arena = vec![0u8; model.state_bytes() + 15];
        let mut session = Session::new(&model, &mut arena).expect("arena");
        let dim = model.output_dim();
        let mut logits = vec![0f32; ids.len() * dim];

        for (&id, out) in ids.iter().take(200).zip(logits.chunks_exact_mut(dim)) {
            session.step_token(id, out).expect("step");
        }
        session.reset();

        let t0 = Instant::now();
        for (&id, out) in ids.iter().zip(logits.chunks_exact_mut(dim)) {
            session.step_token(id, out).expect("step");
        }
        let us_per_step = t0.elapsed().as_secs_f64() * 1e6 / ids.len() as f64;

        // logits after step t predict character t + 1
        let bits: f64 = logits
            .chunks_exact(dim)
            .zip(&ids[1..])
            .map(|(row, &next)| text::surprisal_bits(row, next as usize))
            .sum();
        println!(
            "{{\"label\": \"{label}\", \"us_per_step\": {us_per_step:.3}, \"bits_per_char\": {:.6}, \"steps\": {}}}",
            bits / (ids.len() - 1) as f64,
            ids.len()
        );
    }
}
