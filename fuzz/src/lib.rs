//! What the `blob_structured` fuzz target does to a valid blob: a [`Plan`] (built by the fuzzer
//! through [`arbitrary`]) picks one of the [`seeds`] and changes its header fields, block and
//! tensor entries, single bytes and length, then recomputes the checksum.

use std::mem::{offset_of, size_of};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use runnel::format::{BlockEntry, Header, TensorEntry};
use runnel::DType;

/// The fixtures the seeds are converted from: the smallest models that together have every block
/// kind (LSTM, GRU, attention first or later), both input kinds, norms,
/// residuals, FFN activations and a final norm. Small blobs keep the executions fast (the
/// checksum and the copies cost in proportion to the blob).
pub const SEED_FIXTURES: [&str; 5] = [
    "stacked_narrow",
    "tokens_i32",
    "norm_eps",
    "gqa_rope",
    "lstm_proj",
];

/// Weights × KV modes of the seeds.
pub const SEED_MODES: [(DType, DType); 3] = [
    (DType::I8, DType::I8),
    (DType::F16, DType::F16),
    (DType::F32, DType::F32),
];

/// Every [`SEED_FIXTURES`] model converted in every [`SEED_MODES`] mode (once per process).
pub fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        SEED_FIXTURES
            .iter()
            .flat_map(|name| {
                let f = runnel_test_support::fixture(name);
                SEED_MODES.map(|(w, kv)| f.blob(w, kv).as_bytes().to_vec())
            })
            .collect()
    })
}

/// Values worth trying in a `u32` field: bounds, powers of two around the limits, and float bit
/// patterns (the header's `norm_eps`).
const SPECIAL: [u32; 24] = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    15,
    16,
    17,
    32,
    64,
    255,
    256,
    0xFFFF,
    0x1_0000,
    0x1_0001,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFF0,
    0xFFFF_FFFF,
    0x3F80_0000, // 1.0
    0x7FC0_0000, // NaN
    0xFF80_0000, // -inf
];

/// A new value for a `u32` field.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Value {
    /// This value.
    Set(u32),
    /// The old value plus this (wrapping).
    Add(i16),
    /// One of the special values (index modulo their number).
    Special(u8),
    /// The `u32` at this word index (modulo the header and tables) of the original blob, e.g.
    /// another tensor's offset or another block's width.
    Word(u16),
}

/// One change to the blob.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Edit {
    /// A `u32` word of the header (index modulo 16).
    Header {
        /// Word index.
        word: u8,
        /// New value.
        value: Value,
    },
    /// A `u32` word of a block entry (entry and word modulo their numbers).
    Block {
        /// Entry index.
        index: u8,
        /// Word index.
        word: u8,
        /// New value.
        value: Value,
    },
    /// A `u32` word of a tensor entry (entry and word modulo their numbers).
    Tensor {
        /// Entry index.
        index: u8,
        /// Word index.
        word: u8,
        /// New value.
        value: Value,
    },
    /// A byte of the header or the tables (offset modulo the data offset).
    TableByte {
        /// Offset.
        at: u16,
        /// New byte.
        value: u8,
    },
    /// A byte anywhere before the checksum (offset modulo that length): weights and scales too.
    Byte {
        /// Offset.
        at: u32,
        /// New byte.
        value: u8,
    },
}

/// A truncation of the blob.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Cut {
    /// New length (modulo the length + 1).
    pub len: u32,
    /// Also write the new length into the header's `total_len`, so that the cut passes the
    /// length check and the checksum lands on the new last four bytes.
    pub fix_total_len: bool,
}

/// The fuzzer's input for `blob_structured`.
#[derive(Arbitrary, Debug, Clone)]
pub struct Plan {
    /// Which of the [`seeds`] (modulo their number).
    pub seed: u8,
    /// Changes, in order.
    pub edits: Vec<Edit>,
    /// An optional truncation, after the edits.
    pub cut: Option<Cut>,
}

const WORDS_PER_BLOCK: usize = 12;
const WORDS_PER_TENSOR: usize = 8;
const _: () = assert!(size_of::<BlockEntry>() == 4 * WORDS_PER_BLOCK);
const _: () = assert!(size_of::<TensorEntry>() == 4 * WORDS_PER_TENSOR);

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"))
}

fn write_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The seed's header field at `off` (an offset into [`Header`]) as an index.
fn field(seed: &[u8], off: usize) -> usize {
    read_u32(seed, off) as usize
}

impl Plan {
    /// The changed blob, checksum recomputed over its (possibly changed) declared length.
    pub fn apply(&self) -> Vec<u8> {
        let all = seeds();
        let seed = &all[self.seed as usize % all.len()];
        let data_off = field(seed, offset_of!(Header, data_off));
        let n_blocks = field(seed, offset_of!(Header, n_blocks));
        let n_tensors = field(seed, offset_of!(Header, n_tensors));
        let blocks_off = field(seed, offset_of!(Header, blocks_off));
        let tensors_off = field(seed, offset_of!(Header, tensors_off));
        let body = seed.len() - 4;
        let mut b = seed.clone();

        // The byte offset of word `word` of entry `index` of a table at `off` with `n` entries.
        let entry_word = |off: usize, n: usize, words: usize, index: u8, word: u8| {
            off + 4 * (words * (index as usize % n.max(1)) + word as usize % words)
        };
        for edit in &self.edits {
            let (at, value) = match *edit {
                Edit::Header { word, value } => {
                    (4 * (word as usize % (size_of::<Header>() / 4)), value)
                }
                Edit::Block { index, word, value } if n_blocks > 0 => (
                    entry_word(blocks_off, n_blocks, WORDS_PER_BLOCK, index, word),
                    value,
                ),
                Edit::Tensor { index, word, value } => (
                    entry_word(tensors_off, n_tensors, WORDS_PER_TENSOR, index, word),
                    value,
                ),
                Edit::TableByte { at, value } => {
                    b[at as usize % data_off] = value;
                    continue;
                }
                Edit::Byte { at, value } => {
                    b[at as usize % body] = value;
                    continue;
                }
                Edit::Block { .. } => continue,
            };
            let old = read_u32(&b, at);
            let new = match value {
                Value::Set(v) => v,
                Value::Add(d) => old.wrapping_add(d as i32 as u32),
                Value::Special(i) => SPECIAL[i as usize % SPECIAL.len()],
                Value::Word(i) => read_u32(seed, 4 * (i as usize % (data_off / 4))),
            };
            write_u32(&mut b, at, new);
        }

        let total_at = offset_of!(Header, total_len);
        if let Some(cut) = self.cut {
            b.truncate(cut.len as usize % (b.len() + 1));
            if cut.fix_total_len && b.len() >= total_at + 4 {
                let n = b.len() as u32;
                write_u32(&mut b, total_at, n);
            }
        }
        if b.len() >= total_at + 4 {
            let total = read_u32(&b, total_at) as usize;
            if total <= b.len() {
                runnel_test_support::fix_crc(&mut b[..total]);
            }
        }
        b
    }
}
