//! End-to-end tests of the `runnel` binary: convert → run reproduces PyTorch; every malformed
//! input exits non-zero with a message that names the problem, never a panic.

use std::path::PathBuf;
use std::process::{Command, Output};

use runnel_converter::stream;
use runnel_test_support::{
    fixtures, fixtures_dir, malformed_cases, malformed_dir, INPUTS_FILE, MODEL_FILE,
};

fn runnel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .output()
        .expect("runnel runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("runnel-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
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
