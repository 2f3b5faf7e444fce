//! Host side of the firmware demo (runs on the build machine, not the MCU).
//!
//! ```text
//! runnel-fw-host prepare --model M.safetensors (--inputs I.safetensors | --text T.txt)
//!                        --out DIR [--weights int8,f16,f32,integer] [--kv int8] [--steps N]
//!                        [--calibrate C.txt|C.safetensors]
//! runnel-fw-host check --blobs DIR --log DECODED_LOG
//! runnel-fw-host budget --budget budget.toml --logs BOARD=LOG[,BOARD=LOG]
//!                       --sizes SIZES.tsv [--bless 1] [--measured-out FILE]
//! ```
//!
//! `--text` takes the input tokens from a text file with the demo character
//! model's vocabulary (`runnel_converter::text::encode`: id 0 = '\n', ids
//! 1..=95 = ASCII 32..=126; other characters are skipped); `--steps N` keeps
//! the first N tokens (of either kind of input).
//!
//! `prepare` converts the model once per weight type with the runnel converter
//! (`DIR/<weights>.rnl`), writes the input stream (`DIR/inputs.bin`: u32 LE
//! tokens or f32 LE frames), runs every blob on the host with the runnel
//! runtime and writes the per-step argmax and output-row checksum the firmware
//! must reproduce (`DIR/expected.<weights>.txt`), and a `DIR/manifest.txt`
//! that firmware/app/build.rs reads to embed it all.
//!
//! The weight type `integer` is the integer-only mode (`runnel convert --integer`):
//! calibrated on `--calibrate` (a text file like `--text`, or an inputs file like
//! `--inputs`; default: the inputs themselves, all of them), run with
//! `Session::step_token_int` / `step_frame_int`, its expected rows the `i32`
//! logits (argmax and [`fnv1a_i32`] checksum). For a frame model it also writes
//! the frames on the model's int8 frame grid (`DIR/inputs_i8.bin`, manifest line
//! `input_i8 frames <dim>`), rounded as `Session::step_frame` rounds them.
//!
//! `check` compares a decoded firmware log (`defmt-print` output) with the
//! expected files, step by step.
//!
//! `budget` compares the figures of the QEMU runs (instructions per step,
//! stack, sizes, kernel costs) with the checked-in budget, see [`budget`].
mod budget;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runnel_converter::stream::{read_inputs, Inputs};
use runnel_converter::{convert, parse_dtype, AlignedBytes, ConvertOptions};
use runnel_fw_common::checksum::{fnv1a_f32, fnv1a_i32, Fnv1a};
use runnel_fw_common::demo::{argmax, argmax_i32};

type Res<T> = Result<T, String>;

fn usage() -> String {
    "usage:\n  runnel-fw-host prepare --model M.safetensors (--inputs I.safetensors | --text T.txt) \
     --out DIR [--weights int8,f16,f32,integer] [--kv int8] [--steps N] \
     [--calibrate C.txt|C.safetensors]\n  \
     runnel-fw-host check --blobs DIR --log LOG\n  \
     runnel-fw-host budget --budget budget.toml --logs BOARD=LOG[,BOARD=LOG] --sizes SIZES.tsv \
     [--bless 1] [--measured-out FILE]"
        .into()
}

fn args_map(args: &[String]) -> Res<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let k = k
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {k}\n{}", usage()))?;
        let v = it.next().ok_or_else(|| format!("--{k} needs a value"))?;
        m.insert(k.to_string(), v.clone());
    }
    Ok(m)
}

fn need<'a>(m: &'a BTreeMap<String, String>, k: &str) -> Res<&'a String> {
    m.get(k)
        .ok_or_else(|| format!("missing --{k}\n{}", usage()))
}

fn read(p: &Path) -> Res<Vec<u8>> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn write(p: &Path, b: impl AsRef<[u8]>) -> Res<()> {
    std::fs::write(p, b).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// Canonical weight-type names used in file names and logs.
fn dtype_name(d: runnel::DType) -> &'static str {
    match d {
        runnel::DType::F32 => "f32",
        runnel::DType::F16 => "f16",
        runnel::DType::I8 => "int8",
    }
}

fn prepare(m: &BTreeMap<String, String>) -> Res<()> {
    let model_path = PathBuf::from(need(m, "model")?);
    let out = PathBuf::from(need(m, "out")?);
    let weights = m
        .get("weights")
        .map(String::as_str)
        .unwrap_or("int8,f16,f32,integer");
    let kv = parse_dtype(m.get("kv").map(String::as_str).unwrap_or("int8"))
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;

    let st = read(&model_path)?;
    let mut inputs = match (m.get("inputs"), m.get("text")) {
        (Some(p), None) => read_inputs(&read(Path::new(p))?).map_err(|e| e.to_string())?,
        (None, Some(p)) => text_inputs(Path::new(p))?,
        _ => {
            return Err(format!(
                "give exactly one of --inputs and --text\n{}",
                usage()
            ))
        }
    };
    // calibration data of the integer mode: --calibrate, else all of the inputs
    let calibration = match m.get("calibrate") {
        Some(p) if p.ends_with(".txt") => Some(text_inputs(Path::new(p))?),
        Some(p) => Some(read_inputs(&read(Path::new(p))?).map_err(|e| e.to_string())?),
        None => None,
    };
    let calibration = calibration.unwrap_or_else(|| inputs.clone());
    if let Some(n) = m.get("steps") {
        let n: usize = n.parse().map_err(|_| "--steps: not a number".to_string())?;
        match &mut inputs {
            Inputs::Tokens(t) => t.truncate(n),
            Inputs::Frames { dim, data } => data.truncate(n * *dim),
        }
    }
    let steps = inputs.len();
    let (input_line, input_bytes) = match &inputs {
        Inputs::Tokens(t) => {
            let mut b = Vec::with_capacity(t.len() * 4);
            for &x in t {
                let x = u32::try_from(x).map_err(|_| format!("token {x} does not fit u32"))?;
                b.extend_from_slice(&x.to_le_bytes());
            }
            ("input tokens".to_string(), b)
        }
        Inputs::Frames { dim, data } => {
            let mut b = Vec::with_capacity(data.len() * 4);
            for &x in data {
                b.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            (format!("input frames {dim}"), b)
        }
    };
    write(&out.join("inputs.bin"), &input_bytes)?;

    let mut manifest = String::new();
    writeln!(
        manifest,
        "# generated by runnel-fw-host prepare; read by firmware/app/build.rs"
    )
    .unwrap();
    // `<dir>/<file>`, e.g. `tok_lstm2_attn_gru/model.safetensors` (no spaces: the
    // manifest is whitespace separated)
    let short: Vec<String> = model_path
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().replace(' ', "_"))
        .collect();
    let short: Vec<&str> = short.iter().rev().map(String::as_str).collect();
    writeln!(manifest, "source {}", short.join("/")).unwrap();
    writeln!(manifest, "{input_line}").unwrap();
    writeln!(manifest, "steps {steps}").unwrap();
    let mut output_dim = 0;
    for w in weights.split(',').filter(|s| !s.is_empty()) {
        if w == "integer" {
            let cal = runnel_converter::integer::Calibration::run(&st, &calibration)
                .map_err(|e| format!("calibrate (integer): {e}"))?;
            let conv = runnel_converter::convert_integer(&st, &cal)
                .map_err(|e| format!("convert (integer): {e}"))?;
            output_dim = prepare_integer(&conv.blob, &inputs, &out, &mut manifest)?;
            continue;
        }
        let wd = parse_dtype(w).map_err(|e| e.to_string())?;
        let conv = convert(&st, &ConvertOptions { weights: wd, kv })
            .map_err(|e| format!("convert ({w}): {e}"))?;
        let name = dtype_name(wd);
        let file = format!("{name}.rnl");
        write(&out.join(&file), &conv.blob)?;
        let aligned = AlignedBytes::new(&conv.blob);
        let model =
            runnel::Model::from_bytes(aligned.as_bytes()).map_err(|e| format!("{file}: {e}"))?;
        output_dim = model.output_dim();
        let rows =
            runnel_converter::stream::run(&model, &inputs).map_err(|e| format!("{file}: {e}"))?;
        let mut exp = String::new();
        let mut run = Fnv1a::new();
        for (i, row) in rows.chunks_exact(output_dim).enumerate() {
            let c = fnv1a_f32(row);
            run.write_u32(c);
            writeln!(exp, "step={i} argmax={} checksum={c:#010x}", argmax(row)).unwrap();
        }
        write(&out.join(format!("expected.{name}.txt")), exp)?;
        writeln!(
            manifest,
            "blob {name} {file} kv={} state_bytes={} blob_bytes={} run_checksum={:#010x}",
            dtype_name(kv),
            model.state_bytes(),
            conv.blob.len(),
            run.finish()
        )
        .unwrap();
        eprintln!(
            "prepared {file}: {} bytes, state {} bytes, {} params, run_checksum {:#010x}",
            conv.blob.len(),
            model.state_bytes(),
            model.param_count(),
            run.finish()
        );
    }
    writeln!(manifest, "output_dim {output_dim}").unwrap();
    write(&out.join("manifest.txt"), manifest)?;
    eprintln!(
        "wrote {} ({steps} steps, output_dim {output_dim})",
        out.join("manifest.txt").display()
    );
    Ok(())
}

/// The tokens of a text file in the demo character model's vocabulary.
fn text_inputs(p: &Path) -> Res<Inputs> {
    let text = String::from_utf8_lossy(&read(p)?).into_owned();
    let ids = runnel_converter::text::encode(&text);
    Ok(Inputs::Tokens(ids.into_iter().map(i64::from).collect()))
}

/// The integer-mode blob: writes `integer.rnl`, its expected `i32` logits per step
/// (`expected.integer.txt`), for a frame model the int8 frames (`inputs_i8.bin`), and its
/// manifest lines; returns the output width.
fn prepare_integer(blob: &[u8], inputs: &Inputs, out: &Path, manifest: &mut String) -> Res<usize> {
    let name = "integer";
    let file = format!("{name}.rnl");
    write(&out.join(&file), blob)?;
    let aligned = AlignedBytes::new(blob);
    let model =
        runnel::Model::from_bytes(aligned.as_bytes()).map_err(|e| format!("{file}: {e}"))?;
    let output_dim = model.output_dim();
    let mut arena = vec![0u8; model.state_bytes() + 3];
    let mut sess = runnel::Session::new(&model, &mut arena).map_err(|e| format!("{file}: {e}"))?;
    let mut logits = vec![0i32; output_dim];
    let mut exp = String::new();
    let mut run = Fnv1a::new();
    let mut record = |i: usize, logits: &[i32]| {
        let c = fnv1a_i32(logits);
        run.write_u32(c);
        writeln!(
            exp,
            "step={i} argmax={} checksum={c:#010x}",
            argmax_i32(logits)
        )
        .unwrap();
    };
    match inputs {
        Inputs::Tokens(t) => {
            for (i, &tok) in t.iter().enumerate() {
                let tok =
                    u32::try_from(tok).map_err(|_| format!("token {tok} does not fit u32"))?;
                sess.step_token_int(tok, &mut logits)
                    .map_err(|e| format!("{file}: step {i}: {e}"))?;
                record(i, &logits);
            }
        }
        Inputs::Frames { dim, data } => {
            // as `Session::step_frame` rounds a frame onto the int8 grid
            let inv = 1.0 / model.integer_scales().0;
            let q: Vec<i8> = data
                .iter()
                .map(|&v| runnel::kernels::round_to_i8(v * inv).max(-127))
                .collect();
            write(
                &out.join("inputs_i8.bin"),
                q.iter().map(|&v| v as u8).collect::<Vec<u8>>(),
            )?;
            writeln!(manifest, "input_i8 frames {dim}").unwrap();
            for (i, frame) in q.chunks_exact(*dim).enumerate() {
                sess.step_frame_int(frame, &mut logits)
                    .map_err(|e| format!("{file}: step {i}: {e}"))?;
                record(i, &logits);
            }
        }
    }
    write(&out.join(format!("expected.{name}.txt")), exp)?;
    writeln!(
        manifest,
        "blob {name} {file} kv=int8 state_bytes={} blob_bytes={} run_checksum={:#010x}",
        model.state_bytes(),
        blob.len(),
        run.finish()
    )
    .unwrap();
    eprintln!(
        "prepared {file}: {} bytes, state {} bytes, {} params, run_checksum {:#010x}",
        blob.len(),
        model.state_bytes(),
        model.param_count(),
        run.finish()
    );
    Ok(output_dim)
}

/// `key=value` fields of a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn check(m: &BTreeMap<String, String>) -> Res<bool> {
    let dir = PathBuf::from(need(m, "blobs")?);
    let log = String::from_utf8_lossy(&read(Path::new(need(m, "log")?))?).into_owned();
    // split the log into runs: "model weights=<w> ..." starts one
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in log.lines() {
        if line.contains("model weights=") {
            cur = field(line, "weights").map(str::to_string);
            if let Some(c) = &cur {
                runs.insert(c.clone(), Vec::new());
            }
        } else if let (Some(c), Some(_)) = (&cur, field(line, "step")) {
            if line.contains("checksum=") {
                runs.get_mut(c).unwrap().push(line.to_string());
            }
        }
    }
    let manifest = String::from_utf8_lossy(&read(&dir.join("manifest.txt"))?).into_owned();
    let mut ok = true;
    let mut n_blobs = 0;
    for l in manifest.lines().filter(|l| l.starts_with("blob ")) {
        let name = l.split_whitespace().nth(1).unwrap_or("");
        n_blobs += 1;
        let exp =
            String::from_utf8_lossy(&read(&dir.join(format!("expected.{name}.txt")))?).into_owned();
        let Some(got) = runs.get(name) else {
            println!("{name}: MISSING from the firmware log");
            ok = false;
            continue;
        };
        let exp: Vec<&str> = exp.lines().collect();
        let mut bad = 0;
        for (i, e) in exp.iter().enumerate() {
            let g = got.get(i).map(String::as_str).unwrap_or("");
            let same = ["step", "argmax", "checksum"]
                .iter()
                .all(|k| field(e, k).is_some() && field(e, k) == field(g, k));
            if !same {
                if bad < 5 {
                    println!("{name}: step {i}: expected `{e}`, firmware `{}`", g.trim());
                }
                bad += 1;
            }
        }
        if got.len() != exp.len() {
            println!(
                "{name}: firmware logged {} steps, expected {}",
                got.len(),
                exp.len()
            );
            bad += 1;
        }
        // cost per step (grows with the attention context until the window is full)
        let cost: Vec<u64> = got
            .iter()
            .filter_map(|g| field(g, "instructions").or_else(|| field(g, "cycles")))
            .filter_map(|v| v.parse().ok())
            .collect();
        let cost = match (cost.iter().min(), cost.iter().max()) {
            (Some(lo), Some(hi)) if cost.len() == got.len() => format!(
                " (per step: mean {}, min {lo}, max {hi})",
                (cost.iter().sum::<u64>() + cost.len() as u64 / 2) / cost.len() as u64
            ),
            _ => String::new(),
        };
        if bad == 0 {
            println!(
                "{name}: {} steps match the host runtime bit for bit{cost}",
                exp.len()
            );
        } else {
            println!("{name}: {bad} mismatches");
            ok = false;
        }
    }
    if n_blobs == 0 {
        println!("no blobs in {}", dir.join("manifest.txt").display());
        ok = false;
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("prepare") => args_map(&args[1..]).and_then(|m| prepare(&m)).map(|_| true),
        Some("check") => args_map(&args[1..]).and_then(|m| check(&m)),
        Some("budget") => args_map(&args[1..]).and_then(|m| budget::main(&m)),
        _ => Err(usage()),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("runnel-fw-host: {e}");
            ExitCode::from(2)
        }
    }
}
