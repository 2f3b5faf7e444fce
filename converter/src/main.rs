//! `runnel`: convert, inspect and run models (see the model contract §5).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use runnel::{InputKind, Model};
use runnel_converter::io::{check_output_is_not_an_input, convert_file, write_atomically};
use runnel_converter::{eval, stream, AlignedBytes, ConvertOptions};

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "Convert, inspect and run runnel models"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a contract model (safetensors), quantize it and write a .rnl blob.
    Convert {
        /// The model (.safetensors with `runnel.config` metadata).
        model: PathBuf,
        /// Output blob.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Weight storage: f32, f16 or int8.
        #[arg(long, default_value = "int8")]
        weights: String,
        /// Attention KV cache storage: f32, f16 or int8.
        #[arg(long, default_value = "int8")]
        kv: String,
        /// Also list every tensor with its quantization error.
        #[arg(long)]
        verbose: bool,
        /// Integer-only mode (int8 weights, KV cache and activations; no floating point in the
        /// step): needs --calibrate.
        #[arg(long)]
        integer: bool,
        /// Calibration inputs for --integer, as for `run`: a few thousand steps of data like the
        /// model will see (never the evaluation data).
        #[arg(long, value_name = "DATA")]
        calibrate: Option<PathBuf>,
    },
    /// Describe a .rnl blob.
    Inspect {
        /// The blob.
        blob: PathBuf,
    },
    /// Stream inputs through a blob one step at a time and write the outputs.
    Run {
        /// The blob.
        blob: PathBuf,
        /// Inputs: safetensors with `tokens` (I64/I32, shape T) or `frames` (F32, shape T×dim).
        #[arg(long)]
        inputs: PathBuf,
        /// Outputs: safetensors with `outputs` (F32, shape T×output_dim).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Convert a model in every weights × KV mode, stream inputs through each, and compare:
    /// flash and state bytes, µs per step, error and top-1 agreement against f32, bits per token.
    Eval {
        /// The model (.safetensors with `runnel.config` metadata).
        model: PathBuf,
        /// Inputs, as for `run`: `tokens` (I64/I32, shape T) or `frames` (F32, shape T×dim).
        #[arg(long)]
        inputs: PathBuf,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Also evaluate the integer-only mode, calibrated on DATA (inputs as for `run`; typical
        /// data, not the evaluation inputs).
        #[arg(long, value_name = "DATA")]
        calibrate: Option<PathBuf>,
    },
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_blob(path: &PathBuf) -> Result<AlignedBytes> {
    Ok(AlignedBytes::new(&read(path)?))
}

fn describe(model: &Model<'_>) {
    match model.input_kind() {
        InputKind::Tokens { vocab } => println!(
            "input     tokens, vocab {vocab} -> d_model {}",
            model.d_model()
        ),
        InputKind::Frames { dim } => {
            println!("input     frames, dim {dim} -> d_model {}", model.d_model())
        }
    }
    for (i, b) in model.blocks().enumerate() {
        println!("block {i:<3} {b}");
    }
    if model.norm_kind() != runnel::NormKind::Layer {
        println!("norms     {}", model.norm_kind().name());
    }
    let dims = model.dims();
    let top: Vec<&str> = [
        (dims.input_bias, "input"),
        (dims.norm_f_bias, "norm_f"),
        (dims.head_bias, "head"),
    ]
    .into_iter()
    .filter_map(|(has, m)| (!has).then_some(m))
    .collect();
    if !top.is_empty() {
        println!("no bias   {}", top.join(", "));
    }
    println!(
        "output    {}{}",
        model.output_dim(),
        if model.has_final_norm() {
            " (final norm)"
        } else {
            ""
        }
    );
    println!("weights   {}", model.weight_type().name());
    if model.is_integer() {
        println!("mode      integer-only (int8 activations, no floating point in the step)");
    }
    println!("kv cache  {}", model.kv_type().name());
    println!("params    {}", model.param_count());
    println!("flash     {} bytes (blob)", model.blob_bytes());
    println!("ram       {} bytes (state arena)", model.state_bytes());
}

/// A progress line on stderr for long runs: shown only on a terminal, once a run has taken more
/// than a second, redrawn at most ten times a second.
struct Progress {
    start: std::time::Instant,
    last: std::time::Instant,
    shown: bool,
    tty: bool,
}

impl Progress {
    fn new() -> Self {
        use std::io::IsTerminal;
        let now = std::time::Instant::now();
        Progress {
            start: now,
            last: now,
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, done: usize, total: usize) {
        let now = std::time::Instant::now();
        if !self.tty
            || now.duration_since(self.start).as_secs_f64() < 1.0
            || now.duration_since(self.last).as_secs_f64() < 0.1
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let width = 30;
        let filled = done * width / total.max(1);
        eprint!(
            "\r[{}{}] {done}/{total} steps",
            "#".repeat(filled),
            " ".repeat(width - filled)
        );
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// With `RUNNEL_PEAK_RSS` set in the environment, prints the process's peak resident set size to
/// stderr (Linux: `VmHWM` from `/proc/self/status`; elsewhere nothing).
fn report_peak_rss() {
    if std::env::var_os("RUNNEL_PEAK_RSS").is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(hwm) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        eprintln!("peak rss {}", hwm.trim());
    }
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Convert {
            model,
            output,
            weights,
            kv,
            verbose,
            integer,
            calibrate,
        } => {
            let mut opts = ConvertOptions {
                weights: runnel_converter::parse_dtype(&weights)?,
                kv: runnel_converter::parse_dtype(&kv)?,
            };
            match (integer, &calibrate) {
                (true, None) => anyhow::bail!(
                    "--integer needs --calibrate DATA: the integer mode fixes the range of every activation at conversion time, from the float model run over DATA (inputs as for `runnel run`; a few thousand steps of typical data, not the evaluation data)"
                ),
                (false, Some(_)) => {
                    anyhow::bail!("--calibrate is for --integer (the integer-only mode)")
                }
                (true, Some(_)) => {
                    opts = ConvertOptions {
                        weights: runnel::DType::I8,
                        kv: runnel::DType::I8,
                    };
                }
                (false, None) => {}
            }
            let (c, cal) = convert_file(&model, &output, &opts, calibrate.as_deref())?;
            // One line, so that what follows is exactly `runnel inspect`'s output.
            let bias_free = c.config.bias_free_modules();
            if bias_free.is_empty() {
                println!("wrote {}", output.display());
            } else {
                println!(
                    "wrote {}; modules without bias (stored as zeros): {}",
                    output.display(),
                    bias_free.join(", ")
                );
            }
            if verbose || opts.weights != runnel::DType::F32 {
                println!(
                    "{:<40} {:>12} {:>5} {:>9} {:>10}",
                    "tensor", "shape", "type", "SNR dB", "max |err|"
                );
                let mut worst = f64::INFINITY;
                for t in &c.tensors {
                    if t.dtype == runnel::DType::F32 && !verbose {
                        continue;
                    }
                    worst = worst.min(t.snr_db);
                    println!(
                        "{:<40} {:>12} {:>5} {:>9.2} {:>10.3e}",
                        t.name,
                        format!("{}x{}", t.shape[0], t.shape[1]),
                        t.dtype.name(),
                        t.snr_db,
                        t.max_abs_err
                    );
                }
                println!("worst weight SNR {worst:.2} dB");
            }
            if let Some(cal) = &cal {
                println!("calibration: {} steps", cal.steps);
                println!(
                    "{:<24} {:>12} {:>12} {:>6} {:>8}",
                    "site", "max |value|", "scale", "type", "clipped"
                );
                for r in cal.report() {
                    println!(
                        "{:<24} {:>12.4e} {:>12.4e} {:>6} {:>7.3}%",
                        r.site,
                        r.max_abs,
                        r.scale,
                        r.format,
                        100.0 * r.clipped
                    );
                }
            }
            let aligned = AlignedBytes::new(&c.blob);
            let m = Model::from_bytes(aligned.as_bytes())?;
            describe(&m);
        }
        Cmd::Inspect { blob } => {
            let b = load_blob(&blob)?;
            let m = Model::from_bytes(b.as_bytes())
                .with_context(|| format!("cannot load {}", blob.display()))?;
            describe(&m);
        }
        Cmd::Run {
            blob,
            inputs,
            output,
        } => {
            check_output_is_not_an_input(&output, &[&blob, &inputs])?;
            let b = load_blob(&blob)?;
            let m = Model::from_bytes(b.as_bytes())
                .with_context(|| format!("cannot load {}", blob.display()))?;
            let inp = stream::read_inputs(&read(&inputs)?)?;
            stream::check_inputs(&inp, m.input_kind())?;
            // Rows go to disk as they are computed; the file appears only once complete.
            write_atomically(&output, |w| stream::run_to(&m, &inp, w).map(drop))
                .with_context(|| format!("{} not written", output.display()))?;
            println!("ran {} steps, wrote {}", inp.len(), output.display());
        }
        Cmd::Eval {
            model,
            inputs,
            json,
            calibrate,
        } => {
            let bytes = read(&model)?;
            let inp = stream::read_inputs(&read(&inputs)?)?;
            let cal = match &calibrate {
                Some(p) => Some(stream::read_inputs(&read(p)?)?),
                None => None,
            };
            let mut bar = Progress::new();
            let reports = eval::eval(&bytes, &inp, cal.as_ref(), |done, total| {
                bar.update(done, total)
            })?;
            bar.finish();
            if json {
                println!("{}", serde_json::to_string_pretty(&eval::json(&reports))?);
            } else {
                println!("{} steps of {}", inp.len(), inputs.display());
                print!("{}", eval::table(&reports));
            }
        }
    }
    report_peak_rss();
    Ok(())
}
