//! The runtime's error type: small, `Copy`, and printable without allocation.

use core::fmt;

use crate::schema::TensorName;

/// Everything that can go wrong in the runtime. Every failure is a value; nothing panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The blob is shorter than its fixed header or than the length the header declares.
    Truncated {
        /// Bytes the blob needs.
        needed: u32,
        /// Bytes given.
        given: u32,
    },
    /// The blob does not start with the `.rnl` magic.
    BadMagic,
    /// The blob's format version is not one this runtime reads.
    UnsupportedVersion {
        /// The version found in the blob.
        found: u16,
        /// The version this runtime reads.
        supported: u16,
    },
    /// The CRC-32 stored at the end of the blob does not match its contents.
    BadChecksum {
        /// Checksum stored in the blob.
        stored: u32,
        /// Checksum computed over the blob.
        computed: u32,
    },
    /// The blob (or the state arena) does not start on the alignment it needs.
    Misaligned {
        /// Required alignment in bytes.
        required: u32,
    },
    /// A header field, table entry, offset, length or shape is inconsistent.
    /// `what` names the field.
    Malformed {
        /// The offending field.
        what: &'static str,
    },
    /// A tensor-table entry does not match the tensor the model's plan expects there: its type,
    /// shape, length, alignment or bounds.
    BadTensor {
        /// The tensor's contract name.
        name: TensorName,
    },
    /// The model exceeds one of this build's fixed capacities (see [`crate::limits`]).
    CapacityExceeded {
        /// The capacity exceeded.
        what: &'static str,
        /// The model's count.
        count: u32,
        /// The build's capacity.
        capacity: u32,
    },
    /// The caller's state arena is too small.
    ArenaTooSmall {
        /// Bytes needed (including alignment padding for this arena's address).
        needed: u32,
        /// Bytes given.
        given: u32,
    },
    /// A token step on a frame model, or a frame step on a token model.
    WrongInputKind,
    /// The token id is not below the vocabulary size.
    TokenOutOfRange {
        /// The token given.
        token: u32,
        /// The model's vocabulary size.
        vocab: u32,
    },
    /// A state snapshot is truncated, corrupted, of another format version, or holds values no
    /// session can have. The session was not changed.
    BadSnapshot {
        /// What is wrong.
        what: &'static str,
    },
    /// A state snapshot was taken from a session of another model (or another conversion of it).
    /// The session was not changed.
    SnapshotOfAnotherModel {
        /// The fingerprint of this session's model.
        expected: u32,
        /// The fingerprint in the snapshot.
        found: u32,
    },
    /// A frame value is NaN or infinite; the step did nothing.
    NonFiniteInput {
        /// Index of the first non-finite value in the frame.
        index: u32,
    },
    /// The step overflowed: it would have left a NaN or infinity in the session's state or in
    /// the logits. The session has been reset to the start of a stream and the logits zeroed, so
    /// the session stays usable.
    NonFiniteState,
    /// An integer entry point (`step_token_int`, `step_frame_int`) on a model that is not in
    /// the integer-only mode (convert it with `runnel convert --integer`).
    NotInteger,
    /// A caller slice (frame or output row) has the wrong length.
    WrongLength {
        /// Which slice.
        what: Buffer,
        /// Expected length in elements.
        expected: u32,
        /// Given length in elements.
        given: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, given } => {
                write!(f, "blob truncated: needs {needed} bytes, given {given}")
            }
            Error::BadMagic => write!(f, "not a runnel blob (bad magic)"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported blob version {found} (this runtime reads version {supported}); re-run `runnel convert`"
            ),
            Error::BadChecksum { stored, computed } => write!(
                f,
                "blob checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::Misaligned { required } => {
                write!(f, "buffer is not {required}-byte aligned")
            }
            Error::Malformed { what } => write!(f, "malformed blob: {what}"),
            Error::BadTensor { name } => write!(
                f,
                "malformed blob: tensor `{name}` (type, shape, length or offset)"
            ),
            Error::CapacityExceeded {
                what,
                count,
                capacity,
            } => write!(
                f,
                "model has {count} {what}, this build supports at most {capacity}"
            ),
            Error::ArenaTooSmall { needed, given } => write!(
                f,
                "state arena too small: needs {needed} bytes, given {given}"
            ),
            Error::WrongInputKind => write!(f, "wrong input kind for this model"),
            Error::BadSnapshot { what } => write!(f, "invalid state snapshot: {what}"),
            Error::SnapshotOfAnotherModel { expected, found } => write!(
                f,
                "state snapshot of another model (fingerprint {found:#010x}, this model {expected:#010x})"
            ),
            Error::NonFiniteInput { index } => {
                write!(f, "frame value {index} is not finite (NaN or infinity)")
            }
            Error::NonFiniteState => write!(
                f,
                "the step overflowed to a non-finite value; the session was reset"
            ),
            Error::NotInteger => write!(
                f,
                "the integer entry points need a model converted with `runnel convert --integer`"
            ),
            Error::TokenOutOfRange { token, vocab } => {
                write!(f, "token {token} out of range (vocab {vocab})")
            }
            Error::WrongLength {
                what,
                expected,
                given,
            } => write!(
                f,
                "{} has length {given}, expected {expected}",
                what.name()
            ),
        }
    }
}

impl core::error::Error for Error {}

/// A caller-provided slice that a step checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Buffer {
    /// The input frame of [`crate::Session::step_frame`] (`[input dim]`).
    Frame,
    /// The logits row a step writes (`[output_dim]`).
    Output,
    /// The buffer a snapshot is written to (`[crate::Model::snapshot_bytes]` bytes).
    Snapshot,
}

impl Buffer {
    /// Lower-case name for messages (`frame`, `output`).
    pub const fn name(self) -> &'static str {
        match self {
            Buffer::Frame => "frame",
            Buffer::Output => "output",
            Buffer::Snapshot => "snapshot buffer",
        }
    }
}
