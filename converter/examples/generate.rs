//! Converts the demo character model and generates text from a prompt, one character per step,
//! printing as it streams; then steps per second, flash (blob) and RAM (state) bytes.
//!
//! `cargo run --release -p runnel-converter --example generate -- [--weights int8] [--kv int8]
//!  [--model models/charlm/charlm.safetensors] [--chars 400] [--temperature 0.7] [PROMPT]`

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use runnel::{Model, Session};
use runnel_converter::{convert, parse_dtype, text, AlignedBytes, ConvertOptions};

fn main() -> Result<()> {
    let mut model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/charlm/charlm.safetensors"
    )
    .to_string();
    let mut opts = ConvertOptions::default();
    let mut chars = 400usize;
    let mut temperature = 0.7f64;
    let mut prompt = String::from("The ");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--weights" => opts.weights = parse_dtype(&val()?)?,
            "--kv" => opts.kv = parse_dtype(&val()?)?,
            "--model" => model = val()?,
            "--chars" => chars = val()?.parse()?,
            "--temperature" => temperature = val()?.parse()?,
            s if s.starts_with("--") => bail!("unknown option {s}"),
            _ => prompt = a,
        }
    }
    let st = std::fs::read(&model).with_context(|| format!("cannot read {model}"))?;
    let c = convert(&st, &opts)?;
    let blob = AlignedBytes::new(&c.blob);
    let m = Model::from_bytes(blob.as_bytes())?;
    let mut arena = vec![0u8; m.state_bytes() + 3];
    let mut s = Session::new(&m, &mut arena)?;
    let mut logits = vec![0f32; m.output_dim()];
    let ids = text::encode(&prompt);
    if ids.is_empty() {
        bail!("the prompt has no characters in the model's vocabulary");
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt}")?;
    // Only the steps are timed, not the printing.
    let mut busy = std::time::Duration::ZERO;
    let mut steps = 0usize;
    let mut step = |s: &mut Session<'_, '_>, id: u32, logits: &mut [f32]| -> Result<()> {
        let t = Instant::now();
        s.step_token(id, logits)?;
        busy += t.elapsed();
        steps += 1;
        Ok(())
    };
    for &id in &ids {
        step(&mut s, id, &mut logits)?;
    }
    // A fixed-seed generator: the same command prints the same text.
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..chars {
        let next = if temperature <= 0.0 {
            text::argmax_of(&logits)
        } else {
            let max = logits.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
            let p: Vec<f64> = logits
                .iter()
                .map(|&v| ((v as f64 - max) / temperature).exp())
                .collect();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut r = (rng >> 11) as f64 / (1u64 << 53) as f64 * p.iter().sum::<f64>();
            let mut pick = p.len() - 1;
            for (i, &pi) in p.iter().enumerate() {
                if r < pi {
                    pick = i;
                    break;
                }
                r -= pi;
            }
            pick as u32
        };
        write!(out, "{}", text::decode(next))?;
        out.flush()?;
        step(&mut s, next, &mut logits)?;
    }
    let secs = busy.as_secs_f64();
    writeln!(out)?;
    writeln!(out, "---")?;
    writeln!(
        out,
        "weights {} / kv {}: {steps} steps in {:.3} s = {:.0} steps/s ({:.1} µs/step)",
        m.weight_type().name(),
        m.kv_type().name(),
        secs,
        steps as f64 / secs,
        secs * 1e6 / steps as f64
    )?;
    writeln!(
        out,
        "flash (blob) {} bytes, RAM (state) {} bytes, {} parameters",
        m.blob_bytes(),
        m.state_bytes(),
        m.param_count()
    )?;
    Ok(())
}
