//! Embeds the model blobs prepared by `scripts/fw-blobs.sh`
//! (`runnel-fw-host prepare`) into the firmware.
//!
//! Inputs (build-time environment):
//! * `RUNNEL_FW_BLOBS`: directory with manifest.txt, `<weights>.rnl` and
//!   inputs.bin (default: firmware/blobs)
//! * `RUNNEL_FW_WEIGHTS`: comma list of weight types to embed, e.g. `int8`
//!   (default: every blob in the manifest)
//! * the cargo features `blob-int8`, `blob-f16`, `blob-f32`, `blob-integer`: a blob is
//!   embedded only if its feature is on (boards with a small flash turn some
//!   off) and `RUNNEL_FW_WEIGHTS` (if set) lists it
//!
//! Without a manifest the firmware runs the built-in placeholder workload
//! (cfg `runnel_fw_placeholder`) and cargo prints a warning.
//!
//! With the cargo feature `cmsis-nn` on a `thumbv7em-*-eabihf` target it also
//! compiles the vendored CMSIS-NN fully-connected kernel (`../cmsis-nn`) and
//! the bench's wrapper (`csrc/cmsis_fc.c`) with `arm-none-eabi-gcc` into a
//! static library and sets cfg `runnel_fw_cmsis_nn` (the side-by-side bench).
use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

/// Compiles CMSIS-NN's `arm_fully_connected_s8` (and what it calls) plus the
/// bench wrapper into `librunnel_cmsis_nn.a` in `OUT_DIR` and links it.
fn cmsis_nn() {
    println!("cargo::rustc-check-cfg=cfg(runnel_fw_cmsis_nn)");
    let target = env::var("TARGET").unwrap_or_default();
    if env::var_os("CARGO_FEATURE_CMSIS_NN").is_none() {
        return;
    }
    if !(target.starts_with("thumbv7em") && target.ends_with("eabihf")) {
        println!("cargo:warning=feature cmsis-nn ignored on {target} (Cortex-M4F only)");
        return;
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let nn = manifest_dir.join("../cmsis-nn");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cc = env::var("RUNNEL_ARM_CC").unwrap_or_else(|_| "arm-none-eabi-gcc".into());
    let ar = env::var("RUNNEL_ARM_AR").unwrap_or_else(|_| "arm-none-eabi-ar".into());
    println!("cargo:rerun-if-env-changed=RUNNEL_ARM_CC");
    println!("cargo:rerun-if-env-changed=RUNNEL_ARM_AR");
    let sources = [
        nn.join("Source/FullyConnectedFunctions/arm_fully_connected_s8.c"),
        nn.join("Source/NNSupportFunctions/arm_nn_vec_mat_mult_t_s8.c"),
        manifest_dir.join("csrc/cmsis_fc.c"),
    ];
    println!("cargo:rerun-if-changed={}", nn.display());
    println!("cargo:rerun-if-changed=csrc/cmsis_fc.c");
    let mut objects = Vec::new();
    for src in &sources {
        let obj = out.join(src.file_name().unwrap()).with_extension("o");
        let status = std::process::Command::new(&cc)
            .args([
                "-O2",
                "-mcpu=cortex-m4",
                "-mthumb",
                "-mfloat-abi=hard",
                "-mfpu=fpv4-sp-d16",
                "-ffreestanding",
                "-ffunction-sections",
                "-fdata-sections",
                "-std=c11",
                "-Wall",
                "-Werror",
            ])
            .arg("-I")
            .arg(nn.join("Include"))
            .arg("-I")
            .arg(nn.join("shim"))
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("{cc}: {e} (install gcc-arm-none-eabi)"));
        assert!(status.success(), "{cc} failed on {}", src.display());
        objects.push(obj);
    }
    let lib = out.join("librunnel_cmsis_nn.a");
    let _ = fs::remove_file(&lib);
    let status = std::process::Command::new(&ar)
        .arg("crs")
        .arg(&lib)
        .args(&objects)
        .status()
        .unwrap_or_else(|e| panic!("{ar}: {e}"));
    assert!(status.success(), "{ar} failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=runnel_cmsis_nn");
    println!("cargo:rustc-cfg=runnel_fw_cmsis_nn");
}

fn main() {
    cmsis_nn();
    println!("cargo::rustc-check-cfg=cfg(runnel_fw_placeholder)");
    println!("cargo:rerun-if-env-changed=RUNNEL_FW_BLOBS");
    println!("cargo:rerun-if-env-changed=RUNNEL_FW_WEIGHTS");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let dir = env::var_os("RUNNEL_FW_BLOBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../blobs"));
    let dir = fs::canonicalize(&dir).unwrap_or(dir);
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("blobs.rs");
    let manifest_path = dir.join("manifest.txt");
    println!("cargo:rerun-if-changed={}", manifest_path.display());

    let Ok(manifest) = fs::read_to_string(&manifest_path) else {
        println!(
            "cargo:warning=no {} (run scripts/fw-blobs.sh): building the placeholder workload",
            manifest_path.display()
        );
        println!("cargo:rustc-cfg=runnel_fw_placeholder");
        fs::write(out, "").unwrap();
        return;
    };
    let only: Option<Vec<String>> = env::var("RUNNEL_FW_WEIGHTS")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());

    let feature_on =
        |name: &str| env::var_os(format!("CARGO_FEATURE_BLOB_{}", name.to_uppercase())).is_some();

    let mut src = String::new();
    let mut steps = 0usize;
    let mut output_dim = 0usize;
    let mut arena = 0usize;
    let mut input = String::from("Input::Tokens(&[])");
    // the frames on the integer mode's int8 grid (`input_i8 frames <dim>`), if prepared
    let mut input_i8 = String::from("&[]");
    let mut blobs = String::new();
    let mut source = String::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let kv = |k: &str| {
            f.iter()
                .find_map(|t| t.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .unwrap_or_else(|| panic!("manifest line `{line}`: no {k}="))
                .to_string()
        };
        match f.as_slice() {
            ["source", s] => source = s.to_string(),
            ["steps", n] => steps = n.parse().unwrap(),
            ["output_dim", n] => output_dim = n.parse().unwrap(),
            ["input", "tokens"] | ["input", "frames", _] => {
                let p = dir.join("inputs.bin");
                println!("cargo:rerun-if-changed={}", p.display());
                let b = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let words: Vec<u32> = b
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                input = if f[1] == "tokens" {
                    let list: Vec<String> = words.iter().map(|w| w.to_string()).collect();
                    format!("Input::Tokens(&[{}])", list.join(","))
                } else {
                    let list: Vec<String> = words
                        .iter()
                        .map(|w| format!("f32::from_bits({w:#x})"))
                        .collect();
                    format!(
                        "Input::Frames {{ dim: {}, data: &[{}] }}",
                        f[2],
                        list.join(",")
                    )
                };
            }
            ["input_i8", "frames", _] => {
                let p = dir.join("inputs_i8.bin");
                println!("cargo:rerun-if-changed={}", p.display());
                let b = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let list: Vec<String> = b.iter().map(|&v| (v as i8).to_string()).collect();
                input_i8 = format!("&[{}]", list.join(","));
            }
            ["blob", name, file, ..] => {
                if !feature_on(name) || only.as_ref().is_some_and(|o| !o.iter().any(|x| x == name))
                {
                    continue;
                }
                let p = dir.join(file);
                println!("cargo:rerun-if-changed={}", p.display());
                assert!(
                    p.exists(),
                    "{} listed in the manifest but missing",
                    p.display()
                );
                let state: usize = kv("state_bytes").parse().unwrap();
                arena = arena.max(state);
                let sum =
                    u32::from_str_radix(kv("run_checksum").trim_start_matches("0x"), 16).unwrap();
                writeln!(
                    blobs,
                    "    Blob {{ weights: {name:?}, kv: {:?}, bytes: runnel::include_blob!({:?}), run_checksum: {sum:#010x} }},",
                    kv("kv"),
                    p.display().to_string()
                )
                .unwrap();
            }
            _ => {}
        }
    }
    assert!(
        !blobs.is_empty(),
        "no blob selected from {} (features blob-*: int8={} f16={} f32={} integer={}, RUNNEL_FW_WEIGHTS={:?})",
        manifest_path.display(),
        feature_on("int8"),
        feature_on("f16"),
        feature_on("f32"),
        feature_on("integer"),
        only
    );
    writeln!(src, "/// Model the blobs were converted from.").unwrap();
    writeln!(src, "pub const SOURCE: &str = {source:?};").unwrap();
    writeln!(
        src,
        "/// Steps in the input stream.\npub const STEPS: usize = {steps};"
    )
    .unwrap();
    writeln!(
        src,
        "/// Logits per step.\npub const OUTPUT_DIM: usize = {output_dim};"
    )
    .unwrap();
    writeln!(src, "/// Largest `state_bytes()` of the embedded blobs.\npub const ARENA_BYTES: usize = {arena};").unwrap();
    writeln!(
        src,
        "/// The input stream.\npub static INPUT: Input = {input};"
    )
    .unwrap();
    writeln!(
        src,
        "/// The input frames on the integer mode's int8 frame grid (empty for tokens).\n#[allow(dead_code)]\npub static INPUT_I8: &[i8] = {input_i8};"
    )
    .unwrap();
    writeln!(
        src,
        "/// The embedded blobs.\npub static BLOBS: &[Blob] = &[\n{blobs}];"
    )
    .unwrap();
    fs::write(out, src).unwrap();
}
