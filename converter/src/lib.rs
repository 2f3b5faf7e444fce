//! # runnel-converter
//!
//! Host-side tooling: reads a PyTorch model saved as safetensors under the model contract
//! (`runnel-model/1`), checks it, quantizes it and writes a `.rnl` blob for the `runnel` runtime;
//! reads and writes the `runnel run` input/output files; writes output files atomically, never
//! over an input. The `runnel` binary wraps this crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocks;
pub mod config;
pub mod convert;
pub mod eval;
pub mod integer;
pub mod io;
pub mod stream;
pub mod text;

pub use config::Config;
pub use convert::{
    convert, convert_integer, ConvertOptions, Converted, TensorReport, MAX_STATE_BYTES,
};

use std::fmt;

/// A converter error: a message that names the offending key, tensor or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<runnel::Error> for Error {
    fn from(e: runnel::Error) -> Self {
        Error(e.to_string())
    }
}

/// Bytes held at a 16-byte aligned address, as [`runnel::Model::from_bytes`] wants them.
#[derive(Clone)]
pub struct AlignedBytes {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }
}

/// Parses `s` as a storage type name: `f32`, `f16` or `int8`.
pub fn parse_dtype(s: &str) -> Result<runnel::DType, Error> {
    match s {
        "i8" => Ok(runnel::DType::I8),
        other => runnel::DType::from_name(other).ok_or_else(|| {
            Error::new(format!(
                "unknown type `{other}` (expected {})",
                runnel::DType::names()
            ))
        }),
    }
}
