//! End-to-end tests of the `runnel` binary: convert → run reproduces PyTorch; every malformed
//! input exits non-zero with a message that names the problem, never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use half::{bf16, f16};
use runnel_converter::{stream, MAX_STATE_BYTES};
use runnel_test_support::{
    fixtures, fixtures_dir, malformed_cases, malformed_dir, INPUTS_FILE, MODEL_FILE,
};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn runnel(args: &[&str]) -> Output {
    runnel_in(Path::new("."), args)
}

/// Runs the binary in `dir`, so that relative paths are relative to it.
fn runnel_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runnel runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("runnel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A fresh, empty directory for one test.
fn tmp_dir(name: &str) -> PathBuf {
    let d = tmp(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Converts `tests/fixtures/tok_lstm` with the default types into `dir/b.rnl`.
fn tok_lstm_blob(dir: &Path) -> PathBuf {
    let blob = dir.join("b.rnl");
    let m = fixtures_dir().join("tok_lstm/model.safetensors");
    let o = runnel(&["convert", path_str(&m), "-o", path_str(&blob)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    blob
}

/// The arguments of `runnel run blob --inputs inputs -o out`.
fn run_args<'a>(blob: &'a Path, inputs: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "run",
        path_str(blob),
        "--inputs",
        path_str(inputs),
        "-o",
        path_str(out),
    ]
}

/// An inputs file of `steps` tokens below `vocab`.
fn tokens_file(path: &Path, steps: usize, vocab: i64) {
    let mut header = format!(
        r#"{{"tokens":{{"dtype":"I64","shape":[{steps}],"data_offsets":[0,{}]}}}}"#,
        steps * 8
    )
    .into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(&header);
    for t in 0..steps as i64 {
        f.extend_from_slice(&(t * 7 % vocab).to_le_bytes());
    }
    std::fs::write(path, f).unwrap();
}

/// The names in `dir` that look like leftover temporary files.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

fn assert_clean_failure(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: exited 0");
    assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit code {:?}: {stderr}",
        out.status.code()
    );
    assert!(
        stderr.contains(needle),
        "{what}: stderr does not name `{needle}`: {stderr}"
    );
}

#[test]
fn convert_then_run_reproduces_pytorch_for_every_fixture() {
    let mut n = 0;
    for f in fixtures() {
        let (name, d) = (&f.name, &f.dir);
        let blob = tmp(&format!("{name}.rnl"));
        let outp = tmp(&format!("{name}.out.safetensors"));
        let o = runnel(&[
            "convert",
            d.join(MODEL_FILE).to_str().unwrap(),
            "-o",
            blob.to_str().unwrap(),
            "--weights",
            "f32",
            "--kv",
            "f32",
        ]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("flash") && stdout.contains("ram"),
            "{name}: {stdout}"
        );
        let o = runnel(&["inspect", blob.to_str().unwrap()]);
        assert!(o.status.success());
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            stdout.split_once('\n').unwrap().1,
            "{name}: inspect describes what convert wrote"
        );
        let o = runnel(&[
            "run",
            blob.to_str().unwrap(),
            "--inputs",
            d.join(INPUTS_FILE).to_str().unwrap(),
            "-o",
            outp.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (_, _, got) = stream::read_outputs(&std::fs::read(&outp).unwrap()).unwrap();
        let want = &f.expected;
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{name}: {g} vs {w}"
            );
        }
        n += 1;
    }
    assert!(n >= 6);
}

#[test]
fn quantized_modes_convert_and_report_error() {
    let m = fixtures_dir().join("tok_lstm2_attn_gru").join(MODEL_FILE);
    for (w, kv) in [("f16", "f16"), ("int8", "int8"), ("int8", "f32")] {
        let blob = tmp(&format!("q-{w}-{kv}.rnl"));
        let o = runnel(&[
            "convert",
            m.to_str().unwrap(),
            "-o",
            blob.to_str().unwrap(),
            "--weights",
            w,
            "--kv",
            kv,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(
            s.contains("SNR")
                && s.contains(&format!("weights   {w}"))
                && s.contains(&format!("kv cache  {kv}")),
            "{s}"
        );
    }
    // The default is int8 weights and an int8 KV cache.
    let blob = tmp("default.rnl");
    let o = runnel(&["convert", m.to_str().unwrap(), "-o", blob.to_str().unwrap()]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("weights   int8") && s.contains("kv cache  int8"),
        "{s}"
    );
}

#[test]
fn malformed_models_fail_cleanly_with_named_errors() {
    let dir = malformed_dir();
    for (file, needle) in malformed_cases() {
        let o = runnel(&[
            "convert",
            dir.join(&file).to_str().unwrap(),
            "-o",
            tmp("bad.rnl").to_str().unwrap(),
        ]);
        assert_clean_failure(&o, &needle, &file);
    }
}

#[test]
fn bad_files_and_arguments_fail_cleanly() {
    let garbage = tmp("garbage.bin");
    std::fs::write(&garbage, b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage").unwrap();
    assert_clean_failure(
        &runnel(&[
            "convert",
            garbage.to_str().unwrap(),
            "-o",
            tmp("g.rnl").to_str().unwrap(),
        ]),
        "not a valid safetensors file",
        "garbage model",
    );
    assert_clean_failure(
        &runnel(&["inspect", garbage.to_str().unwrap()]),
        "blob",
        "garbage blob",
    );
    assert_clean_failure(
        &runnel(&["inspect", "/nonexistent.rnl"]),
        "/nonexistent.rnl",
        "missing file",
    );
    let m = fixtures_dir().join("tok_lstm").join(MODEL_FILE);
    assert_clean_failure(
        &runnel(&[
            "convert",
            m.to_str().unwrap(),
            "-o",
            tmp("x.rnl").to_str().unwrap(),
            "--weights",
            "int4",
        ]),
        "int4",
        "unknown weight type",
    );
    // Inputs of the wrong kind for the model.
    let blob = tmp("tok.rnl");
    assert!(
        runnel(&["convert", m.to_str().unwrap(), "-o", blob.to_str().unwrap()])
            .status
            .success()
    );
    let frames = fixtures_dir().join("frames_gru").join(INPUTS_FILE);
    assert_clean_failure(
        &runnel(&[
            "run",
            blob.to_str().unwrap(),
            "--inputs",
            frames.to_str().unwrap(),
            "-o",
            tmp("o.safetensors").to_str().unwrap(),
        ]),
        "input kind",
        "frames into a token model",
    );
    // A token out of range names the step.
    let toks = tmp("bad-tokens.safetensors");
    let mut header = br#"{"tokens":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#.to_vec();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(&header);
    f.extend_from_slice(&1i64.to_le_bytes());
    f.extend_from_slice(&1000i64.to_le_bytes());
    std::fs::write(&toks, f).unwrap();
    assert_clean_failure(
        &runnel(&[
            "run",
            blob.to_str().unwrap(),
            "--inputs",
            toks.to_str().unwrap(),
            "-o",
            tmp("o.safetensors").to_str().unwrap(),
        ]),
        "step 1",
        "token out of range",
    );
    // A corrupted blob names the checksum.
    let mut b = std::fs::read(&blob).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x40;
    let bad = tmp("corrupt.rnl");
    std::fs::write(&bad, b).unwrap();
    assert_clean_failure(
        &runnel(&["inspect", bad.to_str().unwrap()]),
        "checksum",
        "corrupted blob",
    );
}

#[test]
fn an_output_that_is_an_input_is_refused_however_spelled() {
    let d = tmp_dir("same-file");
    let model = d.join("m.safetensors");
    std::fs::copy(fixtures_dir().join("tok_lstm/model.safetensors"), &model).unwrap();
    let inputs = d.join("i.safetensors");
    std::fs::copy(fixtures_dir().join("tok_lstm/inputs.safetensors"), &inputs).unwrap();
    let blob = tok_lstm_blob(&d);
    // (the file that must survive, the arguments (the output last), the input it clashes with)
    let convert = |out| vec!["convert", "m.safetensors", "-o", out];
    let run = |out| vec!["run", "b.rnl", "--inputs", "i.safetensors", "-o", out];
    let mut cases = vec![
        (&model, convert("m.safetensors"), "m.safetensors"),
        (&model, convert("./m.safetensors"), "m.safetensors"),
        (&model, convert(path_str(&model)), "m.safetensors"),
        (&inputs, run("i.safetensors"), "i.safetensors"),
        (&inputs, run("./i.safetensors"), "i.safetensors"),
        (&blob, run("b.rnl"), "b.rnl"),
        (&blob, run(path_str(&blob)), "b.rnl"),
    ];
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&model, d.join("m-sym")).unwrap();
        std::fs::hard_link(&model, d.join("m-hard")).unwrap();
        std::os::unix::fs::symlink("i.safetensors", d.join("i-sym")).unwrap();
        std::fs::hard_link(&blob, d.join("b-hard")).unwrap();
        cases.extend([
            (&model, convert("m-sym"), "m.safetensors"),
            (&model, convert("m-hard"), "m.safetensors"),
            (&inputs, run("i-sym"), "i.safetensors"),
            (&blob, run("b-hard"), "b.rnl"),
        ]);
    }
    for (victim, args, input) in cases {
        let before = std::fs::read(victim).unwrap();
        let o = runnel_in(&d, &args);
        let what = args.join(" ");
        assert_clean_failure(&o, args[args.len() - 1], &what);
        assert_clean_failure(&o, input, &what);
        assert_eq!(
            std::fs::read(victim).unwrap(),
            before,
            "{what}: input changed"
        );
        assert_eq!(temp_files(&d), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn a_run_failing_midway_leaves_the_previous_output_untouched() {
    let d = tmp_dir("midway");
    let blob = tok_lstm_blob(&d);
    let out = d.join("out.safetensors");
    let good = fixtures_dir().join("tok_lstm/inputs.safetensors");
    let o = runnel(&run_args(&blob, &good, &out));
    assert!(o.status.success());
    let before = std::fs::read(&out).unwrap();
    // Token 1000 is out of the vocabulary (50) at step 300, after the header and 300 rows have
    // gone out.
    let bad = d.join("bad.safetensors");
    tokens_file(&bad, 400, 50);
    let mut b = std::fs::read(&bad).unwrap();
    let at = b.len() - 100 * 8;
    b[at..at + 8].copy_from_slice(&1000i64.to_le_bytes());
    std::fs::write(&bad, b).unwrap();
    let o = runnel(&run_args(&blob, &bad, &out));
    assert_clean_failure(&o, "step 300", "bad token midway");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(temp_files(&d), Vec::<String>::new());
}

/// A write that fails for lack of room (a file size limit, which binds root as well; the shell
/// ignores SIGXFSZ so the write returns EFBIG instead of killing the process): the old output
/// must survive whole and no temporary file may remain. Writing in place would truncate it.
#[cfg(unix)]
#[test]
fn a_write_failing_for_lack_of_room_leaves_the_previous_output_untouched() {
    let d = tmp_dir("no-room");
    let m = fixtures_dir().join("tok_lstm/model.safetensors");
    let blob = tok_lstm_blob(&d);
    let out = d.join("out.safetensors");
    let inputs = fixtures_dir().join("tok_lstm/inputs.safetensors");
    let o = runnel(&run_args(&blob, &inputs, &out));
    assert!(o.status.success());
    let limited = |args: &[&str]| {
        Command::new("sh")
            .arg("-c")
            .arg(r#"trap '' XFSZ; ulimit -f 1; exec "$0" "$@""#)
            .arg(env!("CARGO_BIN_EXE_runnel"))
            .args(args)
            .output()
            .expect("sh runs")
    };
    for (args, target) in [
        (run_args(&blob, &inputs, &out), &out),
        (
            vec![
                "convert",
                path_str(&m),
                "-o",
                path_str(&blob),
                "--weights",
                "f32",
            ],
            &blob,
        ),
    ] {
        let before = std::fs::read(target).unwrap();
        assert!(before.len() > 1024, "the limit must bite");
        let o = limited(&args);
        assert_clean_failure(&o, path_str(target), &args.join(" "));
        assert_eq!(std::fs::read(target).unwrap(), before, "{}", args.join(" "));
        assert_eq!(temp_files(&d), Vec::<String>::new());
    }
}

/// `run` writes rows as it computes them: 100k steps of 50 outputs (20 MB of F32s) must not be
/// held in memory (the old `run` held them twice).
#[cfg(target_os = "linux")]
#[test]
fn run_streams_outputs_in_bounded_memory() {
    let d = tmp_dir("rss");
    let blob = tok_lstm_blob(&d);
    let inputs = d.join("long.safetensors");
    tokens_file(&inputs, 100_000, 50);
    let out = d.join("out.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .env("RUNNEL_PEAK_RSS", "1")
        .args(run_args(&blob, &inputs, &out))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak rss "))
        .and_then(|v| v.trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no peak rss report: {stderr}"));
    // Inputs (file and tokens, 1.6 MB) plus the program; the outputs alone are 20 MB.
    assert!(kb < 15_000, "peak rss {kb} kB");
    let (t, dim, data) = stream::read_outputs(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!((t, dim, data.len()), (100_000, 50, 5_000_000));
}

/// Writes to `dst` the model of fixture `fixture` with its `runnel.config` text passed through
/// `config` and each tensor's raw bytes through `edit(name, dtype, bytes)`.
fn edited_model(
    fixture: &str,
    dst: &Path,
    config: impl FnOnce(&str) -> String,
    mut edit: impl FnMut(&str, Dtype, &mut [u8]),
) {
    let bytes = std::fs::read(fixtures_dir().join(fixture).join(MODEL_FILE)).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let text = &meta.metadata().as_ref().unwrap()["runnel.config"];
    let meta = HashMap::from([("runnel.config".to_string(), config(text))]);
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let mut data = v.data().to_vec();
            edit(&name, v.dtype(), &mut data);
            (name, v.dtype(), v.shape().to_vec(), data)
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()));
    std::fs::write(dst, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// `runnel convert model -o <tmp> --weights w --kv kv`.
fn convert_with(model: &Path, weights: &str, kv: &str) -> Output {
    let blob = model.with_extension("rnl");
    runnel(&[
        "convert",
        path_str(model),
        "-o",
        path_str(&blob),
        "--weights",
        weights,
        "--kv",
        kv,
    ])
}

/// Element `i`'s bytes in a tensor of `dtype` set to `v`.
fn poke(dtype: Dtype, data: &mut [u8], i: usize, v: f32) {
    match dtype {
        Dtype::F32 => data[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes()),
        Dtype::F16 => data[2 * i..2 * i + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes()),
        Dtype::BF16 => data[2 * i..2 * i + 2].copy_from_slice(&bf16::from_f32(v).to_le_bytes()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_finite_weights_are_refused_naming_tensor_and_index() {
    let d = tmp_dir("non-finite");
    // (fixture, tensor, its columns (0: a vector), index, value, expected position)
    let cases = [
        (
            "tok_lstm",
            "blocks.0.lstm.weight_ih_l0",
            32,
            f32::NAN,
            "(NaN) at [12, 3]",
        ),
        ("tok_lstm", "head.bias", 0, f32::INFINITY, "(inf) at [12]"),
        (
            "tok_lstm",
            "embed.weight",
            32,
            f32::NEG_INFINITY,
            "(-inf) at [12, 3]",
        ),
        (
            "f16_weights",
            "blocks.0.lstm.weight_ih_l0",
            24,
            f32::NAN,
            "(NaN) at [12, 3]",
        ),
        (
            "f16_weights",
            "head.weight",
            24,
            f32::INFINITY,
            "(inf) at [12, 3]",
        ),
        (
            "bf16_weights",
            "blocks.0.gru.weight_ih_l0",
            24,
            f32::NAN,
            "(NaN) at [12, 3]",
        ),
        (
            "bf16_weights",
            "blocks.0.norm.bias",
            0,
            f32::NEG_INFINITY,
            "(-inf) at [12]",
        ),
    ];
    for (fixture, tensor, cols, value, at) in cases {
        let model = d.join(format!("{fixture}-{tensor}.safetensors"));
        let i = if cols == 0 { 12 } else { 12 * cols + 3 };
        edited_model(fixture, &model, str::to_string, |name, dtype, data| {
            if name == tensor {
                poke(dtype, data, i, value)
            }
        });
        let want = format!("tensor `{tensor}` has a non-finite value {at}");
        for (w, kv) in [("f32", "f32"), ("f16", "f16"), ("int8", "int8")] {
            let what = format!("{fixture} {tensor} {w}/{kv}");
            assert_clean_failure(&convert_with(&model, w, kv), &want, &what);
        }
    }
}

#[test]
fn weights_beyond_the_f16_range_are_refused_for_f16_storage() {
    let d = tmp_dir("f16-range");
    let model = d.join("big.safetensors");
    edited_model("tok_lstm", &model, str::to_string, |name, dtype, data| {
        if name == "head.weight" {
            poke(dtype, data, 2 * 32 + 5, 1e5)
        }
    });
    assert_clean_failure(
        &convert_with(&model, "f16", "f16"),
        "tensor `head.weight` has the value 100000 at [2, 5], beyond the f16 range",
        "1e5 as f16",
    );
    for w in ["f32", "int8"] {
        let o = convert_with(&model, w, "int8");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn config_errors_name_the_key() {
    let d = tmp_dir("config-keys");
    let cases = [
        // (fixture, a config edit, the text the error must contain)
        (
            "tok_lstm",
            ("\"d_model\": 32", "\"d_model\": 32, \"d_model\": 16"),
            "runnel.config: duplicate key `d_model`",
        ),
        (
            "tok_lstm2_attn_gru",
            (
                "\"hidden\": 48, \"norm\"",
                "\"hidden\": 48, \"hidden\": 48, \"norm\"",
            ),
            "runnel.config: duplicate key `blocks[0].hidden`",
        ),
        (
            "tok_lstm",
            (
                "\"kind\": \"tokens\"",
                "\"kind\": \"tokens\", \"kind\": \"tokens\"",
            ),
            "runnel.config: duplicate key `input.kind`",
        ),
        (
            "tok_lstm2_attn_gru",
            ("\"norm_eps\": 1e-05", "\"norm_eps\": 1e39"),
            "runnel.config: `norm_eps` = 1e39 does not fit an f32",
        ),
        (
            "tok_lstm2_attn_gru",
            ("\"norm_eps\": 1e-05", "\"norm_eps\": 1e400"),
            "runnel.config: `norm_eps` is not valid JSON",
        ),
    ];
    for (fixture, (from, to), needle) in cases {
        let model = d.join("m.safetensors");
        edited_model(
            fixture,
            &model,
            |c| {
                assert!(c.contains(from), "{fixture}: {c}");
                c.replacen(from, to, 1)
            },
            |_, _, _| {},
        );
        assert_clean_failure(&convert_with(&model, "int8", "int8"), needle, to);
    }
}

#[test]
fn a_state_arena_over_the_limit_is_refused_naming_the_window() {
    let d = tmp_dir("state-limit");
    let model = d.join("huge-window.safetensors");
    edited_model(
        "tok_lstm2_attn_gru",
        &model,
        |c| c.replacen("\"window\": 8", "\"window\": 100000000", 1),
        |_, _, _| {},
    );
    for kv in ["f32", "f16", "int8"] {
        for w in ["f32", "int8"] {
            let o = convert_with(&model, w, kv);
            assert_clean_failure(
                &o,
                "runnel.config: `blocks[1].window` = 100000000 makes the state arena",
                &format!("{w}/{kv}"),
            );
            assert_clean_failure(&o, &MAX_STATE_BYTES.to_string(), &format!("{w}/{kv}"));
            assert!(
                !model.with_extension("rnl").exists(),
                "{w}/{kv}: blob written"
            );
        }
    }
}

#[test]
fn eval_compares_every_mode_on_the_users_data() {
    let dir = tmp_dir("eval");
    let m = fixtures_dir().join("tok_lstm2_attn_gru/model.safetensors");
    let inputs = fixtures_dir().join("tok_lstm2_attn_gru").join(INPUTS_FILE);
    let o = runnel(&[
        "eval",
        path_str(&m),
        "--inputs",
        path_str(&inputs),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = v.as_array().expect("an array");
    assert_eq!(rows.len(), 9, "every weights x KV mode");
    let f32 = &rows[0];
    assert_eq!(
        (f32["weights"].as_str(), f32["kv"].as_str()),
        (Some("f32"), Some("f32"))
    );
    assert_eq!(f32["max_abs_err"].as_f64(), Some(0.0));
    assert_eq!(f32["top1_agreement"].as_f64(), Some(1.0));
    let bits = f32["bits_per_token"]
        .as_f64()
        .expect("token inputs give bits per token");
    assert!(bits.is_finite() && bits > 0.0);
    let int8 = &rows[8];
    assert_eq!(
        (int8["weights"].as_str(), int8["kv"].as_str()),
        (Some("int8"), Some("int8"))
    );
    assert!(int8["flash_bytes"].as_u64() < f32["flash_bytes"].as_u64());
    assert!(int8["state_bytes"].as_u64() < f32["state_bytes"].as_u64());
    let err = int8["max_abs_err"].as_f64().unwrap();
    assert!(err > 0.0 && err < 1.0, "int8 error {err}");

    // the table, and inputs of the wrong kind
    let o = runnel(&["eval", path_str(&m), "--inputs", path_str(&inputs)]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && table.lines().count() == 11, "{table}");
    let frames = fixtures_dir().join("frames_gru").join(INPUTS_FILE);
    let o = runnel(&["eval", path_str(&m), "--inputs", path_str(&frames)]);
    assert_clean_failure(&o, "input kind", "frames into a token model");

    // with calibration data, the integer-only mode too
    let o = runnel(&[
        "eval",
        path_str(&m),
        "--inputs",
        path_str(&inputs),
        "--calibrate",
        path_str(&inputs),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = v.as_array().expect("an array");
    assert_eq!(rows.len(), 10, "nine modes and the integer one");
    let int = &rows[9];
    assert_eq!(int["integer"].as_bool(), Some(true));
    assert!(int["state_bytes"].as_u64() <= rows[8]["state_bytes"].as_u64());
    let agree = int["top1_agreement"].as_f64().unwrap();
    assert!(agree > 0.5, "integer top-1 {agree}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn integer_mode_needs_calibration_and_reports_every_site() {
    let dir = tmp_dir("integer");
    let m = fixtures_dir().join("tok_lstm2_attn_gru/model.safetensors");
    let cal = fixtures_dir().join("tok_lstm2_attn_gru/inputs.safetensors");
    let blob = dir.join("int.rnl");
    let o = runnel(&["convert", path_str(&m), "-o", path_str(&blob), "--integer"]);
    assert_clean_failure(&o, "--integer needs --calibrate DATA", "--integer alone");
    assert!(!blob.exists());
    let o = runnel(&[
        "convert",
        path_str(&m),
        "-o",
        path_str(&blob),
        "--calibrate",
        path_str(&cal),
    ]);
    assert_clean_failure(&o, "--calibrate is for --integer", "--calibrate alone");
    // calibration data of the wrong kind is refused, naming it
    let frames = fixtures_dir().join("frames_gru/inputs.safetensors");
    let o = runnel(&[
        "convert",
        path_str(&m),
        "-o",
        path_str(&blob),
        "--integer",
        "--calibrate",
        path_str(&frames),
    ]);
    assert_clean_failure(&o, "input kind", "frames for a token model");
    let o = runnel(&[
        "convert",
        path_str(&m),
        "-o",
        path_str(&blob),
        "--integer",
        "--calibrate",
        path_str(&cal),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for site in [
        "x",
        "logits",
        "head.in",
        "blocks.0.in",
        "blocks.0.c1",
        "blocks.1.q",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{site} "))),
            "no calibration row for {site}: {stdout}"
        );
    }
    assert!(stdout.contains("mode      integer-only"), "{stdout}");
    // the blob runs
    let out = dir.join("out.safetensors");
    let o = runnel(&run_args(&blob, &cal, &out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
