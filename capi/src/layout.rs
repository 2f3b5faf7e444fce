//! Object sizes and layout: the caller-placed objects [`runnel_model`] and [`runnel_session`],
//! the sizes and alignments published for them, and what they really hold ([`ModelObj`],
//! [`SessionObj`]).

use core::mem::{align_of, size_of};

use runnel::{Error, Model, Session};

use crate::status::runnel_status::{self, RUNNEL_ERR_NOT_INITIALIZED};

// ------------------------------------------------------------------------------------------------
// The published numbers: what to edit when a runtime type changes size
// ------------------------------------------------------------------------------------------------
//
// `RUNNEL_*_SIZE` / `RUNNEL_*_ALIGN` for each pointer width must equal the size and alignment of
// `ModelObj` / `SessionObj` on that width (asserted at compile time just below). When
// `runnel::Model` or `runnel::Session` changes size:
//
// 1. `cargo check -p runnel-capi` (64-bit host) and
//    `cargo check -p runnel-capi --target thumbv7em-none-eabihf` (32-bit) fail on the asserts
//    below with "expected an array with a size of <published>, found one with a size of <real>";
// 2. put each <real> into the constant of that pointer width here (an alignment also into the
//    `align(N)` of that width's struct further down: `repr(align)` takes only a literal; the last
//    assert checks it);
// 3. regenerate the header: `RUNNEL_BLESS=1 cargo test -p runnel-capi --test header`;
// 4. update the sizes quoted in docs/C_API.md and README.md.

/// Bytes of a `runnel_model` object (this pointer width).
#[cfg(target_pointer_width = "64")]
pub const RUNNEL_MODEL_SIZE: usize = 152;
/// Alignment of a `runnel_model` object (this pointer width).
#[cfg(target_pointer_width = "64")]
pub const RUNNEL_MODEL_ALIGN: usize = 8;
/// Bytes of a `runnel_session` object (this pointer width).
#[cfg(target_pointer_width = "64")]
pub const RUNNEL_SESSION_SIZE: usize = 56;
/// Alignment of a `runnel_session` object (this pointer width).
#[cfg(target_pointer_width = "64")]
pub const RUNNEL_SESSION_ALIGN: usize = 8;

/// Bytes of a `runnel_model` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_MODEL_SIZE: usize = 84;
/// Alignment of a `runnel_model` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_MODEL_ALIGN: usize = 4;
/// Bytes of a `runnel_session` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_SESSION_SIZE: usize = 32;
/// Alignment of a `runnel_session` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_SESSION_ALIGN: usize = 4;

// The published sizes and alignments are exactly those of the real types (see above for what to
// do when one of these fails).
const _: [(); RUNNEL_MODEL_SIZE] = [(); size_of::<ModelObj>()];
const _: [(); RUNNEL_MODEL_ALIGN] = [(); align_of::<ModelObj>()];
const _: [(); RUNNEL_SESSION_SIZE] = [(); size_of::<SessionObj>()];
const _: [(); RUNNEL_SESSION_ALIGN] = [(); align_of::<SessionObj>()];
const _: () = assert!(
    size_of::<runnel_model>() == size_of::<ModelObj>()
        && align_of::<runnel_model>() == align_of::<ModelObj>()
        && size_of::<runnel_session>() == size_of::<SessionObj>()
        && align_of::<runnel_session>() == align_of::<SessionObj>(),
    "RUNNEL_*_SIZE / RUNNEL_*_ALIGN do not match the real types"
);

// ------------------------------------------------------------------------------------------------
// The caller-placed objects (opaque to C)
// ------------------------------------------------------------------------------------------------

/// A validated model: storage of `RUNNEL_MODEL_SIZE` bytes, aligned to `RUNNEL_MODEL_ALIGN`, that
/// the caller provides (e.g. `static runnel_model model;`) and `runnel_model_open()` fills. It
/// borrows the weights from the blob, which must stay in place and unchanged while the model is
/// used. Opaque: do not read or write its bytes; do not copy it.
#[cfg(target_pointer_width = "64")]
#[repr(C, align(8))]
pub struct runnel_model {
    opaque: [u8; RUNNEL_MODEL_SIZE],
}

/// A stream's state: storage of `RUNNEL_SESSION_SIZE` bytes, aligned to `RUNNEL_SESSION_ALIGN`,
/// that the caller provides (e.g. `static runnel_session session;`) and `runnel_session_init()`
/// fills. It refers to its model and to the caller's state arena, which must both stay in place
/// while the session is used. Opaque: do not read or write its bytes; do not copy it.
#[cfg(target_pointer_width = "64")]
#[repr(C, align(8))]
pub struct runnel_session {
    opaque: [u8; RUNNEL_SESSION_SIZE],
}

/// A validated model: storage of `RUNNEL_MODEL_SIZE` bytes, aligned to `RUNNEL_MODEL_ALIGN`, that
/// the caller provides (e.g. `static runnel_model model;`) and `runnel_model_open()` fills. It
/// borrows the weights from the blob, which must stay in place and unchanged while the model is
/// used. Opaque: do not read or write its bytes; do not copy it.
#[cfg(target_pointer_width = "32")]
#[repr(C, align(4))]
pub struct runnel_model {
    opaque: [u8; RUNNEL_MODEL_SIZE],
}

/// A stream's state: storage of `RUNNEL_SESSION_SIZE` bytes, aligned to `RUNNEL_SESSION_ALIGN`,
/// that the caller provides (e.g. `static runnel_session session;`) and `runnel_session_init()`
/// fills. It refers to its model and to the caller's state arena, which must both stay in place
/// while the session is used. Opaque: do not read or write its bytes; do not copy it.
#[cfg(target_pointer_width = "32")]
#[repr(C, align(4))]
pub struct runnel_session {
    opaque: [u8; RUNNEL_SESSION_SIZE],
}

// ------------------------------------------------------------------------------------------------
// What they hold
// ------------------------------------------------------------------------------------------------

/// The first word of an opened `ModelObj`.
pub(crate) const MODEL_MAGIC: u32 = u32::from_le_bytes(*b"RNmd");
/// The first word of an initialised `SessionObj`.
pub(crate) const SESSION_MAGIC: u32 = u32::from_le_bytes(*b"RNss");

/// What a `runnel_model` holds. `magic` first (repr(C)) so that it can be read before the rest
/// is known to be valid.
#[repr(C)]
pub(crate) struct ModelObj {
    /// `MODEL_MAGIC` once opened, anything else before.
    pub(crate) magic: u32,
    /// Incremented by every `runnel_model_open()` into this storage, so that sessions notice.
    pub(crate) generation: u32,
    /// The blob the model borrows.
    pub(crate) blob: *const u8,
    /// Bytes of the blob as passed in.
    pub(crate) blob_len: usize,
    /// `Ok` whenever `magic` is `MODEL_MAGIC`.
    pub(crate) model: ModelResult,
}

impl ModelObj {
    /// The opened model (always `Ok` once the magic is set).
    pub(crate) fn model(&self) -> Result<&Model<'static>, runnel_status> {
        self.model.as_ref().map_err(|_| RUNNEL_ERR_NOT_INITIALIZED)
    }
}

type ModelResult = Result<Model<'static>, Error>;

/// What a `runnel_session` holds.
#[repr(C)]
pub(crate) struct SessionObj {
    /// `SESSION_MAGIC` once initialised, anything else before.
    pub(crate) magic: u32,
    /// `ModelObj::generation` when the session was initialised.
    pub(crate) generation: u32,
    /// The model object the session was initialised with.
    pub(crate) model: *const ModelObj,
    /// The caller's state arena.
    pub(crate) arena: *const u8,
    /// Bytes of the arena as passed in.
    pub(crate) arena_len: usize,
    /// The runtime session.
    pub(crate) session: Session<'static, 'static>,
}
