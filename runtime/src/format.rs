//! The `.rnl` blob layout: fixed `#[repr(C)]` little-endian records, shared by the runtime
//! (which reads them) and the converter (which writes them). `docs/FORMAT.md` documents every byte.
//!
//! ```text
//! offset 0            Header (64 bytes)
//! header.blocks_off   BlockEntry  × header.n_blocks   (32 bytes each)
//! header.tensors_off  TensorEntry × header.n_tensors  (32 bytes each)
//! header.data_off     tensor data and int8 scales, each run 16-byte aligned
//! total_len - 4       CRC-32 (IEEE) of bytes 0 .. total_len-4, little-endian
//! ```

use bytemuck::{Pod, Zeroable};

pub use crate::schema::DType;

/// The four bytes every blob starts with.
pub const MAGIC: [u8; 4] = *b"RNNL";
/// The blob format version this runtime reads and the converter writes. Version 2 (the model
/// contract's §6 additions) grew [`BlockEntry`] to 48 bytes; version-1 blobs are refused with
/// [`crate::Error::UnsupportedVersion`] (re-run `runnel convert`).
pub const VERSION: u16 = 2;
/// Alignment of every tensor's data (and scales) inside the blob, and of the blob itself when
/// embedded with [`crate::include_blob!`].
pub const DATA_ALIGN: usize = 16;
/// Alignment the runtime requires of the blob's first byte (f32 tensors are read in place).
pub const BLOB_ALIGN: usize = 4;

/// The four bytes every session snapshot starts with.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"RNSS";
/// The snapshot format version this runtime writes and reads.
pub const SNAPSHOT_VERSION: u16 = 1;

/// The fixed header of a session snapshot ([`crate::Session::snapshot`]), followed by the
/// session's persistent state (`state_bytes`, little-endian 4-byte words as in the arena) and a
/// CRC-32 of everything before it.
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct SnapshotHeader {
    /// [`SNAPSHOT_MAGIC`].
    pub magic: [u8; 4],
    /// [`SNAPSHOT_VERSION`].
    pub version: u16,
    /// `size_of::<SnapshotHeader>()` (32).
    pub header_len: u16,
    /// Bytes of the whole snapshot, CRC included.
    pub total_len: u32,
    /// [`crate::Model::fingerprint`] of the model the session ran.
    pub model_fingerprint: u32,
    /// [`Header::total_len`] of that model's blob.
    pub model_len: u32,
    /// Bytes of persistent state that follow.
    pub state_bytes: u32,
    /// Zero.
    pub reserved: [u32; 2],
}
const _: () = assert!(core::mem::size_of::<SnapshotHeader>() == 32);

/// [`Header::flags`] bit: a final norm precedes the head.
pub const FLAG_FINAL_NORM: u32 = 1;
/// [`Header::flags`] bit: every norm of the model is an RMSNorm (`norm_kind: "rms"`).
pub const FLAG_RMS_NORM: u32 = 2;
/// [`Header::flags`] bit: the model has no `input.bias` (stored as zeros).
pub const FLAG_NO_INPUT_BIAS: u32 = 4;
/// [`Header::flags`] bit: the model has no `head.bias` (stored as zeros).
pub const FLAG_NO_HEAD_BIAS: u32 = 8;
/// [`Header::flags`] bit: the final LayerNorm has no `norm_f.bias` (stored as zeros).
pub const FLAG_NO_NORM_F_BIAS: u32 = 16;
/// [`Header::flags`] bit: the integer-only mode (`docs/INTEGER.md`). Weights and KV cache are
/// int8; the tensor plan is the integer one (int8 matrices and [`INT_CODE`] parameters, no f32
/// vectors), and the step uses no floating point.
pub const FLAG_INTEGER: u32 = 32;
/// Every [`Header::flags`] bit this version defines.
pub const HEADER_FLAGS: u32 = FLAG_FINAL_NORM
    | FLAG_RMS_NORM
    | FLAG_NO_INPUT_BIAS
    | FLAG_NO_HEAD_BIAS
    | FLAG_NO_NORM_F_BIAS
    | FLAG_INTEGER;

/// [`TensorEntry::dtype`] of an integer-mode parameter tensor: little-endian 32-bit words
/// ([`crate::schema::TensorRole::Int`]). Not a [`DType`]: weights and caches are never stored
/// so.
pub const INT_CODE: u8 = 3;

/// The fixed header at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// [`VERSION`].
    pub version: u16,
    /// `size_of::<Header>()` (64).
    pub header_len: u16,
    /// Length of the whole blob in bytes, CRC included.
    pub total_len: u32,
    /// [`HEADER_FLAGS`] bits; other bits must be zero.
    pub flags: u32,
    /// [`crate::schema::InputCode`]: 0 tokens, 1 frames.
    pub input_kind: u8,
    /// [`DType`] of the weight matrices (informational; every tensor carries its own type).
    pub weight_type: u8,
    /// [`DType`] of the attention KV cache.
    pub kv_type: u8,
    /// Zero.
    pub reserved0: u8,
    /// Vocabulary size (tokens) or frame width (frames).
    pub input_dim: u32,
    /// Width after the input layer.
    pub d_model: u32,
    /// Logits per step.
    pub output_dim: u32,
    /// LayerNorm epsilon.
    pub norm_eps: f32,
    /// Number of [`BlockEntry`] records.
    pub n_blocks: u32,
    /// Number of [`TensorEntry`] records.
    pub n_tensors: u32,
    /// Offset of the block table.
    pub blocks_off: u32,
    /// Offset of the tensor table.
    pub tensors_off: u32,
    /// Offset of the data section.
    pub data_off: u32,
    /// State arena bytes the converter computed; the runtime recomputes it and checks equality.
    pub state_bytes: u32,
    /// Zero.
    pub reserved1: u32,
}
const _: () = assert!(core::mem::size_of::<Header>() == 64);

/// One block of the model.
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockEntry {
    /// [`crate::schema::BlockKind`] code: 1 LSTM, 2 GRU, 3 attention.
    pub kind: u8,
    /// Kind-specific bits: recurrent blocks [`crate::blocks::recurrent::FLAG_NORM`] |
    /// [`crate::blocks::recurrent::FLAG_RESIDUAL`]; attention
    /// [`crate::blocks::attention::FLAG_SPLIT`].
    pub flags: u8,
    /// Attention FFN [`crate::schema::Activation`] code: 0 gelu (erf), 1 gelu_tanh, 2 relu,
    /// 3 silu; zero for recurrent blocks.
    pub activation: u8,
    /// Attention [`crate::schema::PosKind`] code: 0 none, 1 rope, 2 alibi; zero for recurrent
    /// blocks.
    pub pos: u8,
    /// Stacked layers (recurrent blocks; 1 for attention).
    pub num_layers: u32,
    /// Width of the block's input.
    pub in_width: u32,
    /// Recurrent hidden size; for attention, equal to `in_width`.
    pub hidden: u32,
    /// Attention heads (0 for recurrent blocks).
    pub heads: u32,
    /// Attention window in steps (0 for recurrent blocks).
    pub window: u32,
    /// Attention FFN width, 0 for none.
    pub ffn_dim: u32,
    /// Index of the block's first tensor in the tensor table.
    pub first_tensor: u32,
    /// Attention key/value heads (divide `heads`); zero for recurrent blocks.
    pub kv_heads: u32,
    /// LSTM projection size (0 = none, else below `hidden`); zero for other kinds.
    pub proj_size: u32,
    /// Attention RoPE base θ (finite, > 0) with `pos` rope; zero otherwise.
    pub rope_theta: f32,
    /// Modules without bias, one bit each (the kind's `NO_BIAS_*` constants); their bias
    /// tensors are stored as zeros.
    pub no_bias: u32,
}
const _: () = assert!(core::mem::size_of::<BlockEntry>() == 48);

/// One stored tensor (a matrix `[rows, cols]` or a vector `[1, cols]`).
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct TensorEntry {
    /// [`DType`] code.
    pub dtype: u8,
    /// Zero.
    pub reserved: [u8; 3],
    /// Rows (1 for vectors).
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Offset of the data from the blob start; a multiple of [`DATA_ALIGN`].
    pub offset: u32,
    /// Data length in bytes: `rows * cols * dtype.size()`.
    pub len: u32,
    /// int8: offset of `rows` f32 scales (multiple of [`DATA_ALIGN`]); otherwise 0.
    pub scale_offset: u32,
    /// Zero.
    pub reserved1: [u32; 2],
}
const _: () = assert!(core::mem::size_of::<TensorEntry>() == 32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Rounds `n` up to a multiple of `align` (a power of two). Saturates instead of overflowing.
pub const fn align_up(n: usize, align: usize) -> usize {
    match n.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => usize::MAX & !(align - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn align_up_rounds() {
        assert_eq!(align_up(0, 16), 0);
        assert_eq!(align_up(1, 16), 16);
        assert_eq!(align_up(16, 16), 16);
        assert_eq!(align_up(usize::MAX, 16), usize::MAX & !15);
    }
}
