//! Drives the host C test `tests/c/test_capi.c` against the static library.
//!
//! 1. builds `librunnel_capi.a` with a nested `cargo build -p runnel-capi` into its own target
//!    directory (`target/capi-c-test`), so it never waits on the lock of the `cargo test` that
//!    runs this;
//! 2. converts every fixture model in `tests/fixtures/` (loaded by `runnel-test-support`; f32
//!    weights and KV: expected = the PyTorch outputs, tolerance 1e-4; int8 and f16: expected = the
//!    Rust runtime's outputs, bit for bit; the integer-only mode, calibrated on the fixture's
//!    inputs: expected = the runtime's integer logits (`Session::step_token_int` /
//!    `step_frame_int`), bit for bit) and writes blob, inputs and expected outputs to a temp dir
//!    (format in the C file);
//! 3. compiles the C test with `gcc -std=c11 -Wall -Wextra -Werror -pedantic
//!    -fsanitize=address,undefined` and runs it on every case plus the misuse checks; then, if
//!    valgrind is installed, compiles it without sanitizers and runs it under valgrind (which,
//!    unlike ASan, also checks the library's own memory accesses).
//!
//! Environment: `CC` (default `gcc`); `RUNNEL_CAPI_NO_VALGRIND=1` skips the valgrind run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use runnel::DType;
use runnel_converter::stream::Inputs;
use runnel_converter::AlignedBytes;
use runnel_test_support::{fixtures, UNIFORM_MODES};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Builds the host static library in its own target directory and returns its path.
fn build_staticlib() -> PathBuf {
    let target_dir = root().join("target").join("capi-c-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(root())
        .args(["build", "-q", "-p", "runnel-capi", "--lib", "--target-dir"])
        .arg(&target_dir));
    let lib = target_dir.join("debug").join("librunnel_capi.a");
    assert!(lib.is_file(), "no {}", lib.display());
    lib
}

fn push_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn push_f32(b: &mut Vec<u8>, v: f32) {
    b.extend_from_slice(&v.to_bits().to_le_bytes());
}

/// What a case expects: float outputs within a tolerance, or (an integer-only model) the integer
/// logits of the integer entry points, exactly.
enum Expected<'a> {
    Floats(&'a [f32], f32),
    Integers(&'a [i32]),
}

/// Writes `dir/model.rnl` and `dir/case.bin` (format: see tests/c/test_capi.c).
fn write_case(dir: &Path, blob: &AlignedBytes, inputs: &Inputs, expected: Expected<'_>) {
    let model = runnel::Model::from_bytes(blob.as_bytes()).expect("blob opens");
    let steps = inputs.len();
    let n = match expected {
        Expected::Floats(e, _) => e.len(),
        Expected::Integers(e) => e.len(),
    };
    assert_eq!(n, steps * model.output_dim());
    let (tol, integer) = match expected {
        Expected::Floats(_, tol) => (tol, false),
        Expected::Integers(_) => (0.0, true),
    };
    assert_eq!(integer, model.is_integer());
    let (frame_scale, logit_scale) = if integer {
        model.integer_scales()
    } else {
        (0.0, 0.0)
    };
    let mut b = Vec::new();
    b.extend_from_slice(b"RNLC");
    push_u32(&mut b, 2);
    let (kind, dim) = match model.input_kind() {
        runnel::InputKind::Tokens { vocab } => (0, vocab),
        runnel::InputKind::Frames { dim } => (1, dim),
    };
    push_u32(&mut b, kind);
    push_u32(&mut b, steps as u32);
    push_u32(&mut b, dim as u32);
    push_u32(&mut b, model.output_dim() as u32);
    push_u32(&mut b, model.state_bytes() as u32);
    push_f32(&mut b, tol);
    push_u32(&mut b, u32::from(integer));
    push_f32(&mut b, frame_scale);
    push_f32(&mut b, logit_scale);
    match inputs {
        Inputs::Tokens(t) => t
            .iter()
            .for_each(|&x| push_u32(&mut b, u32::try_from(x).expect("token fits u32"))),
        Inputs::Frames { data, .. } => {
            data.iter().for_each(|&x| push_f32(&mut b, x));
            if integer {
                b.extend(frames_i8(data, frame_scale).iter().map(|&q| q as u8));
                b.resize(b.len().next_multiple_of(4), 0);
            }
        }
    }
    match expected {
        Expected::Floats(e, _) => e.iter().for_each(|&x| push_f32(&mut b, x)),
        Expected::Integers(e) => e.iter().for_each(|&x| push_u32(&mut b, x as u32)),
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("model.rnl"), blob.as_bytes()).expect("write blob");
    std::fs::write(dir.join("case.bin"), b).expect("write case");
}

/// `data` on the int8 frame grid `scale`, rounded as the float step rounds a frame
/// (`runnel::Session::step_frame` on an integer-only model).
fn frames_i8(data: &[f32], scale: f32) -> Vec<i8> {
    let inv = 1.0 / scale;
    data.iter()
        .map(|&v| runnel::kernels::round_to_i8(v * inv).max(-127))
        .collect()
}

/// The runtime's integer logits for `inputs` on an integer-only model.
fn run_int(model: &runnel::Model<'_>, inputs: &Inputs) -> Vec<i32> {
    let od = model.output_dim();
    let mut arena = vec![0u8; model.state_bytes() + 3];
    let mut s = runnel::Session::new(model, &mut arena).expect("session");
    let mut out = vec![0i32; inputs.len() * od];
    match inputs {
        Inputs::Tokens(t) => {
            for (row, &tok) in out.chunks_exact_mut(od).zip(t) {
                s.step_token_int(tok as u32, row).expect("step_token_int");
            }
        }
        Inputs::Frames { dim, data } => {
            let q = frames_i8(data, model.integer_scales().0);
            for (row, frame) in out.chunks_exact_mut(od).zip(q.chunks_exact(*dim)) {
                s.step_frame_int(frame, row).expect("step_frame_int");
            }
        }
    }
    out
}

/// The case directories and the models for the misuse checks.
struct Cases {
    all: Vec<PathBuf>,
    /// `--misuse` arguments: float token and frame models, integer-only token and frame models.
    misuse: [PathBuf; 4],
}

/// Converts every fixture in three modes and in the integer-only mode.
fn write_cases(tmp: &Path) -> Cases {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 10,
        "expected the fixture models, found {:?}",
        fixtures.iter().map(|f| &f.dir).collect::<Vec<_>>()
    );
    let mut cases = Vec::new();
    let (mut tok, mut frames) = (None, None);
    let (mut tok_int, mut frames_int) = (None, None);
    for fx in &fixtures {
        for (w, kv) in UNIFORM_MODES {
            let blob = fx.blob(w, kv);
            let dir = tmp.join(format!("{}.{}-{}", fx.name, w.name(), kv.name()));
            if w == DType::F32 {
                write_case(
                    &dir,
                    &blob,
                    &fx.inputs,
                    Expected::Floats(&fx.expected, 1e-4),
                );
                match fx.inputs {
                    Inputs::Tokens(_) if tok.is_none() => tok = Some(dir.clone()),
                    Inputs::Frames { .. } if frames.is_none() => frames = Some(dir.clone()),
                    _ => {}
                }
            } else {
                let model = runnel::Model::from_bytes(blob.as_bytes()).expect("open");
                let rust = runnel_converter::stream::run(&model, &fx.inputs).expect("run");
                write_case(&dir, &blob, &fx.inputs, Expected::Floats(&rust, 0.0));
            }
            cases.push(dir);
        }
        let cal = runnel_converter::integer::Calibration::run(&fx.model, &fx.inputs)
            .unwrap_or_else(|e| panic!("{}: calibrate: {e}", fx.name));
        let conv = runnel_converter::convert_integer(&fx.model, &cal)
            .unwrap_or_else(|e| panic!("{}: convert --integer: {e}", fx.name));
        let blob = AlignedBytes::new(&conv.blob);
        let model = runnel::Model::from_bytes(blob.as_bytes()).expect("open");
        let dir = tmp.join(format!("{}.integer", fx.name));
        write_case(
            &dir,
            &blob,
            &fx.inputs,
            Expected::Integers(&run_int(&model, &fx.inputs)),
        );
        match fx.inputs {
            Inputs::Tokens(_) if tok_int.is_none() => tok_int = Some(dir.clone()),
            Inputs::Frames { .. } if frames_int.is_none() => frames_int = Some(dir.clone()),
            _ => {}
        }
        cases.push(dir);
    }
    Cases {
        all: cases,
        misuse: [
            tok.expect("a token fixture"),
            frames.expect("a frame fixture"),
            tok_int.expect("a token fixture"),
            frames_int.expect("a frame fixture"),
        ],
    }
}

fn compile(cc: &str, lib: &Path, exe: &Path, extra: &[&str]) {
    let src = root().join("capi/tests/c/test_capi.c");
    let include = root().join("capi/include");
    run(Command::new(cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
            "-g",
        ])
        .args(extra)
        .arg("-I")
        .arg(include)
        .arg(src)
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(exe));
}

fn report(what: &str, out: &Output, t0: Instant) {
    // Shown with `--nocapture`: one line per case, then the totals.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        eprintln!("  {line}");
    }
    eprintln!("{what}: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn c_test_program() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let t0 = Instant::now();
    let lib = build_staticlib();
    eprintln!(
        "built {} ({:.1} s)",
        lib.display(),
        t0.elapsed().as_secs_f64()
    );
    let tmp = tempfile::Builder::new()
        .prefix("runnel-capi-c-test")
        .tempdir()
        .expect("tempdir");
    let cases = write_cases(tmp.path());
    let mut args: Vec<PathBuf> = vec!["--misuse".into()];
    args.extend(cases.misuse);
    args.extend(cases.all);

    // 1. ASan + UBSan.
    let t1 = Instant::now();
    let exe = tmp.path().join("test_capi_asan");
    compile(
        &cc,
        &lib,
        &exe,
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
    // LeakSanitizer needs ptrace, which containers often forbid; leaks are valgrind's job below.
    let out = run(Command::new(&exe)
        .args(&args)
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"));
    report("C test (ASan+UBSan)", &out, t1);

    // 2. valgrind, which sees the Rust code's accesses too.
    let have_valgrind = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if std::env::var_os("RUNNEL_CAPI_NO_VALGRIND").is_some_and(|v| v == "1") || !have_valgrind {
        eprintln!(
            "C test under valgrind: skipped (valgrind not found or RUNNEL_CAPI_NO_VALGRIND=1)"
        );
        return;
    }
    let t2 = Instant::now();
    let exe = tmp.path().join("test_capi");
    compile(&cc, &lib, &exe, &[]);
    let out = run(Command::new("valgrind")
        .args([
            "-q",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ])
        .arg(&exe)
        .args(&args));
    report("C test (valgrind)", &out, t2);
}

/// The same C test built through `capi/CMakeLists.txt` (`runnel::runnel`), as a CMake firmware
/// project would consume the library, then run on the same cases. Needs `cmake` (installed by
/// scripts/install-ci-deps.sh); `RUNNEL_CAPI_NO_CMAKE=1` skips it.
#[test]
fn c_test_program_through_cmake() {
    if std::env::var_os("RUNNEL_CAPI_NO_CMAKE").is_some_and(|v| v == "1") {
        eprintln!("C test through CMake: skipped (RUNNEL_CAPI_NO_CMAKE=1)");
        return;
    }
    let t0 = Instant::now();
    let build = root().join("target").join("capi-cmake-test");
    // the same cargo target directory and profile as `build_staticlib`: no second build
    let cargo_dir = root().join("target").join("capi-c-test");
    run(Command::new("cmake")
        .arg("-S")
        .arg(root().join("capi/tests/c"))
        .arg("-B")
        .arg(&build)
        .arg("-DRUNNEL_CARGO_PROFILE=dev")
        .arg(format!("-DRUNNEL_CARGO_TARGET_DIR={}", cargo_dir.display())));
    run(Command::new("cmake").arg("--build").arg(&build));
    let exe = build.join("test_capi");
    assert!(exe.is_file(), "no {}", exe.display());
    let tmp = tempfile::Builder::new()
        .prefix("runnel-capi-cmake-test")
        .tempdir()
        .expect("tempdir");
    let cases = write_cases(tmp.path());
    let mut args: Vec<PathBuf> = vec!["--misuse".into()];
    args.extend(cases.misuse);
    args.extend(cases.all);
    let out = run(Command::new(&exe).args(&args));
    report("C test (built with CMake)", &out, t0);
}
