//! # runnel-test-support
//!
//! The one place that knows the test fixtures of runnel (`tests/fixtures/`), shared by the
//! conformance tests (`runnel-tests`), the benchmarks, the C API tests and the CLI tests:
//!
//! * [`fixtures_dir`], [`fixture_dirs`]: where the fixtures are; each `<name>/` holds
//!   `model.safetensors` (a contract model), `inputs.safetensors` (a stream) and
//!   `outputs.safetensors` (PyTorch's outputs for that stream);
//! * [`Fixture`], [`fixtures`], [`fixture`]: a fixture loaded (model bytes, inputs, expected
//!   outputs);
//! * [`MODES`], [`UNIFORM_MODES`], [`blob`], [`Fixture::blob`]: conversion to an aligned `.rnl`
//!   blob in each weights × KV mode;
//! * [`max_rel_err`]: the error measure of the contract;
//! * [`malformed_dir`], [`malformed_cases`]: the malformed models and the text each one's error
//!   must contain;
//! * [`exercise`], [`fix_crc`]: what the robustness tests and the fuzz targets (`fuzz/`) do with a
//!   blob they made.

use std::path::{Path, PathBuf};

use runnel::format::crc32;
use runnel::{DType, InputKind, Model, Session};
use runnel_converter::stream::{self, Inputs};
use runnel_converter::{AlignedBytes, ConvertOptions};

/// File name of a fixture's model.
pub const MODEL_FILE: &str = "model.safetensors";
/// File name of a fixture's input stream.
pub const INPUTS_FILE: &str = "inputs.safetensors";
/// File name of a fixture's expected (PyTorch) outputs.
pub const OUTPUTS_FILE: &str = "outputs.safetensors";

/// The fixtures directory (`tests/fixtures` in the workspace).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("tests/fixtures")
}

/// Every fixture directory (one that holds a [`MODEL_FILE`]), sorted by name. Any conforming
/// model dropped into `tests/fixtures/<name>/` with its inputs and outputs is tested too.
///
/// Panics if there are fewer than six.
pub fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(MODEL_FILE).is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 6,
        "expected at least six fixtures, found {}",
        dirs.len()
    );
    dirs
}

/// One fixture: a contract model with inputs and PyTorch's outputs.
pub struct Fixture {
    /// Directory name.
    pub name: String,
    /// The directory (holds [`MODEL_FILE`], [`INPUTS_FILE`], [`OUTPUTS_FILE`]).
    pub dir: PathBuf,
    /// [`MODEL_FILE`] bytes.
    pub model: Vec<u8>,
    /// The input stream.
    pub inputs: Inputs,
    /// PyTorch's outputs, `[steps * dim]`.
    pub expected: Vec<f32>,
    /// Output width.
    pub dim: usize,
}

impl Fixture {
    /// Loads the fixture in `dir`. Panics (naming the file) if a file is missing or does not
    /// parse, or if the outputs do not have one row per input step.
    pub fn load(dir: &Path) -> Fixture {
        let read = |f: &str| {
            std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()))
        };
        let inputs = stream::read_inputs(&read(INPUTS_FILE))
            .unwrap_or_else(|e| panic!("{}/{INPUTS_FILE}: {e}", dir.display()));
        let (steps, dim, expected) = stream::read_outputs(&read(OUTPUTS_FILE))
            .unwrap_or_else(|e| panic!("{}/{OUTPUTS_FILE}: {e}", dir.display()));
        assert_eq!(steps, inputs.len(), "{}: outputs rows", dir.display());
        Fixture {
            name: dir
                .file_name()
                .expect("a fixture directory has a name")
                .to_string_lossy()
                .into_owned(),
            dir: dir.to_path_buf(),
            model: read(MODEL_FILE),
            inputs,
            expected,
            dim,
        }
    }

    /// The model converted with the given modes into an aligned blob; a conversion error panics
    /// naming the fixture.
    pub fn blob(&self, weights: DType, kv: DType) -> AlignedBytes {
        convert(&self.model, weights, kv, &self.name)
    }
}

/// Every fixture ([`fixture_dirs`]), loaded.
pub fn fixtures() -> Vec<Fixture> {
    fixture_dirs().iter().map(|d| Fixture::load(d)).collect()
}

/// The fixture `tests/fixtures/<name>/`, loaded.
pub fn fixture(name: &str) -> Fixture {
    Fixture::load(&fixtures_dir().join(name))
}

/// Converts a model (safetensors bytes) with the given modes into an aligned blob.
pub fn blob(model: &[u8], weights: DType, kv: DType) -> AlignedBytes {
    convert(model, weights, kv, "model")
}

fn convert(model: &[u8], weights: DType, kv: DType, what: &str) -> AlignedBytes {
    let c = runnel_converter::convert(model, &ConvertOptions { weights, kv })
        .unwrap_or_else(|e| panic!("{what}: convert ({}/{}): {e}", weights.name(), kv.name()));
    AlignedBytes::new(&c.blob)
}

/// Every weights × KV combination, f32/f32 first (the converter's `eval` list).
pub use runnel_converter::eval::MODES;

/// The modes with weights and KV cache of one type: f32/f32, f16/f16, int8/int8.
pub const UNIFORM_MODES: [(DType, DType); 3] = {
    use DType::*;
    [(F32, F32), (F16, F16), (I8, I8)]
};

/// Largest `|got − want| / (1 + |want|)`. Panics if the lengths differ.
pub fn max_rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w as f64).abs() / (1.0 + (w as f64).abs()))
        .fold(0.0, f64::max)
}

/// The malformed models (`tests/fixtures/malformed/`).
pub fn malformed_dir() -> PathBuf {
    fixtures_dir().join("malformed")
}

/// Every malformed model of [`malformed_dir`] as (file name, text its conversion error must
/// contain), from its `expected.json`.
pub fn malformed_cases() -> Vec<(String, String)> {
    let path = malformed_dir().join("expected.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected: serde_json::Value = serde_json::from_slice(&bytes).expect("expected.json");
    expected
        .as_object()
        .expect("expected.json is an object")
        .iter()
        .map(|(file, needle)| {
            let needle = needle.as_str().expect("expected.json values are strings");
            (file.clone(), needle.to_owned())
        })
        .collect()
}

/// Largest state arena [`exercise`] allocates; a model that needs more is parsed but not run.
pub const EXERCISE_MAX_STATE: usize = 64 << 20;

/// Parses `bytes` (copied to an aligned buffer); if the runtime accepts them, runs three steps of
/// every input kind — the model's own (tokens `t % vocab`, or frames of its width) and the wrong
/// ones (a token to a frames model, a frame of the wrong length) — none of which may panic,
/// whatever the weights hold. Returns whether the runtime accepted the blob.
pub fn exercise(bytes: &[u8]) -> bool {
    let a = AlignedBytes::new(bytes);
    let Ok(m) = Model::from_bytes(a.as_bytes()) else {
        return false;
    };
    if m.state_bytes() > EXERCISE_MAX_STATE {
        return true;
    }
    let mut arena = vec![0u8; m.state_bytes()];
    let mut s = Session::new(&m, &mut arena).expect("state_bytes is enough");
    let mut out = vec![0f32; m.output_dim()];
    let (vocab, dim) = match m.input_kind() {
        InputKind::Tokens { vocab } => (vocab as u32, 64),
        InputKind::Frames { dim } => (1, dim),
    };
    for t in 0..3u32 {
        let _ = s.step_token(t % vocab.max(1), &mut out);
        let _ = s.step_token(t, &mut out);
        let _ = s.step_frame(&vec![0.5; 64], &mut out);
        let frame: Vec<f32> = (0..dim)
            .map(|i| ((i + t as usize) % 7) as f32 * 0.25 - 0.75)
            .collect();
        let _ = s.step_frame(&frame, &mut out);
    }
    true
}

/// Rewrites the last four bytes of `blob` with the CRC-32 of the others, as the converter does.
/// Does nothing to a blob shorter than that.
pub fn fix_crc(blob: &mut [u8]) {
    let Some(n) = blob.len().checked_sub(4) else {
        return;
    };
    let crc = crc32(&blob[..n]);
    blob[n..].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_loads_and_the_lists_are_consistent() {
        let dirs = fixture_dirs();
        assert!(dirs.windows(2).all(|w| w[0] < w[1]), "sorted");
        for f in fixtures() {
            assert_eq!(f.expected.len(), f.inputs.len() * f.dim, "{}", f.name);
        }
        assert!(UNIFORM_MODES.iter().all(|m| MODES.contains(m)));
        assert!(!malformed_cases().is_empty());
        assert_eq!(max_rel_err(&[1.0, 3.0], &[1.0, 1.0]), 1.0);
    }
}
