//! Median wall time of one step of token blobs, streamed over a text file — the measurement that
//! `scripts/bench-host-vs.sh` runs against two builds of the runtime (this tree and a base commit)
//! in one run, so that speed-ups are ratios measured side by side.
//!
//! ```text
//! cargo run --release -p runnel-benches --example step_time -- TEXT LABEL=BLOB...
//! ```
//!
//! Prints one line per blob: `LABEL median_us=… p10_us=… p90_us=… steps=…`. Each character of
//! TEXT is one step (token = byte mod vocab); the session starts from zero state, and the first
//! 200 steps are a warm-up that is not timed. Only the stable public API is used
//! (`Model::from_bytes`, `Session::new`, `step_token`), so the same file builds against older
//! commits.
use std::time::Instant;

use runnel::{InputKind, Model, Session};

fn main() {
    let mut args = std::env::args().skip(1);
    let text = std::fs::read(args.next().expect("usage: step_time TEXT LABEL=BLOB...")).unwrap();
    for spec in args {
        let (label, path) = spec.split_once('=').expect("LABEL=BLOB");
        let bytes = std::fs::read(path).unwrap();
        // 16-byte aligned copy of the blob
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        let buf: &mut [u8] = bytemuck_free_view(&mut words);
        buf[..bytes.len()].copy_from_slice(&bytes);
        let m = Model::from_bytes(&buf[..bytes.len()]).unwrap();
        let InputKind::Tokens { vocab } = m.input_kind() else {
            panic!("{label}: a token model is needed");
        };
        let mut arena = vec![0u32; m.state_bytes().div_ceil(4) + 1];
        let arena: &mut [u8] = bytemuck_free_view(&mut arena);
        let mut s = Session::new(&m, arena).unwrap();
        let mut out = vec![0f32; m.output_dim()];
        let warm = 200.min(text.len());
        for &c in &text[..warm] {
            s.step_token(c as u32 % vocab as u32, &mut out).unwrap();
        }
        let mut t: Vec<f64> = Vec::with_capacity(text.len());
        for &c in &text[warm..] {
            let t0 = Instant::now();
            s.step_token(c as u32 % vocab as u32, &mut out).unwrap();
            t.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        t.sort_by(f64::total_cmp);
        let q = |f: f64| t[((t.len() - 1) as f64 * f) as usize];
        println!(
            "{label} median_us={:.2} p10_us={:.2} p90_us={:.2} steps={}",
            q(0.5),
            q(0.1),
            q(0.9),
            t.len()
        );
    }
}

/// The bytes of a slice of plain integers.
fn bytemuck_free_view<T: Copy>(v: &mut [T]) -> &mut [u8] {
    let len = std::mem::size_of_val(v);
    // SAFETY: `T` is a plain integer type here (u32, u128): every byte is initialised and any
    // byte pattern is valid; the view borrows `v` mutably for its lifetime.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), len) }
}
