//! Shared helpers for the runnel test suites: fixture discovery and loading.

use std::path::{Path, PathBuf};

use runnel_converter::stream::{self, Inputs};
use runnel_converter::{AlignedBytes, ConvertOptions};

/// The fixtures directory (`tests/fixtures`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One fixture: a contract model with inputs and PyTorch's outputs.
pub struct Fixture {
    /// Directory name.
    pub name: String,
    /// `model.safetensors` bytes.
    pub model: Vec<u8>,
    /// The input stream.
    pub inputs: Inputs,
    /// PyTorch's outputs, `[steps * dim]`.
    pub expected: Vec<f32>,
    /// Output width.
    pub dim: usize,
}

/// Every fixture directory that holds a `model.safetensors`, sorted by name. Any conforming model
/// dropped into `tests/fixtures/<name>/` with its inputs and outputs is tested too.
pub fn fixtures() -> Vec<Fixture> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.safetensors").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 6,
        "expected at least six fixtures, found {}",
        dirs.len()
    );
    dirs.iter()
        .map(|d| {
            let read = |f: &str| {
                std::fs::read(d.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", d.display()))
            };
            let inputs = stream::read_inputs(&read("inputs.safetensors")).expect("inputs");
            let (steps, dim, expected) =
                stream::read_outputs(&read("outputs.safetensors")).expect("outputs");
            assert_eq!(steps, inputs.len(), "{}: outputs rows", d.display());
            Fixture {
                name: d.file_name().unwrap().to_string_lossy().into_owned(),
                model: read("model.safetensors"),
                inputs,
                expected,
                dim,
            }
        })
        .collect()
}

/// Converts a fixture model with the given modes into an aligned blob.
pub fn blob(model: &[u8], weights: runnel::DType, kv: runnel::DType) -> AlignedBytes {
    let c = runnel_converter::convert(model, &ConvertOptions { weights, kv }).expect("convert");
    AlignedBytes::new(&c.blob)
}

/// Every weights × KV combination.
pub const MODES: [(runnel::DType, runnel::DType); 9] = {
    use runnel::DType::*;
    [
        (F32, F32),
        (F32, F16),
        (F32, I8),
        (F16, F32),
        (F16, F16),
        (F16, I8),
        (I8, F32),
        (I8, F16),
        (I8, I8),
    ]
};

/// Largest `|got − want| / (1 + |want|)`.
pub fn max_rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w as f64).abs() / (1.0 + (w as f64).abs()))
        .fold(0.0, f64::max)
}
