//! # runnel-capi
//!
//! The C API of the [`runnel`] runtime: a static library (`librunnel_capi.a`) and the header
//! `include/runnel.h`, generated from this file by cbindgen (see `docs/C_API.md`).
//!
//! * Every function returns a [`runnel_status`] (0 = [`runnel_status::RUNNEL_OK`]), except
//!   [`runnel_status_message`], which returns a static string.
//! * Every pointer is checked for NULL and for the alignment it needs, every length for range,
//!   every object for initialisation (a magic word) and every output buffer for overlap with the
//!   memory the library reads or owns; a failed call changes nothing it does not document.
//! * The model ([`runnel_model`]) and session ([`runnel_session`]) objects live in caller memory
//!   (e.g. a `static`), with a published size and alignment per pointer width; the library never
//!   allocates.
//!
//! ## Panics and unwinding
//!
//! Nothing here panics on any input (no indexing, no `unwrap`, checked arithmetic), and the
//! runtime is built and tested not to panic either. As a second line of defence:
//!
//! * on hosted targets (std available) every entry point runs inside
//!   [`std::panic::catch_unwind`]; a panic becomes [`runnel_status::RUNNEL_ERR_INTERNAL`] (the
//!   session it happened in must then be reset or re-initialised before further use);
//! * on bare metal (`target_os = "none"`) the crate is `no_std`, the targets' panic strategy is
//!   `abort`, so a panic cannot unwind at all: the library's `#[panic_handler]` executes a
//!   permanently undefined instruction (`udf`), i.e. a HardFault the firmware handles;
//! * and in any case an `extern "C"` function that would unwind aborts instead (Rust ≥ 1.81).
#![cfg_attr(target_os = "none", no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
// The exported names are the C names.
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_void, CStr};
use core::mem::{align_of, size_of};
use core::ptr;

use runnel::{DType, Error, InputKind, Model, Session};

#[cfg(not(any(target_pointer_width = "32", target_pointer_width = "64")))]
compile_error!("runnel-capi publishes object sizes for 32- and 64-bit pointers only");

// ------------------------------------------------------------------------------------------------
// Status codes and small enums
// ------------------------------------------------------------------------------------------------

/// Result of every runnel C API call. `RUNNEL_OK` (0) is success; everything else is an error
/// that left the objects passed in unchanged (unless the function says otherwise).
/// `runnel_status_message()` turns a code into text.
///
/// The C type `runnel_status` is an `int32_t`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum runnel_status {
    /// Success.
    RUNNEL_OK = 0,
    /// A pointer argument is NULL.
    RUNNEL_ERR_NULL = 1,
    /// A pointer is not aligned as required: the blob (4 bytes), a `runnel_model` or
    /// `runnel_session` object (`RUNNEL_MODEL_ALIGN` / `RUNNEL_SESSION_ALIGN`), a frame or output
    /// buffer (`float`, 4 bytes).
    RUNNEL_ERR_MISALIGNED = 2,
    /// The blob is shorter than its 64-byte header or than the length its header declares.
    RUNNEL_ERR_TRUNCATED = 3,
    /// The blob does not start with the `.rnl` magic `"RNNL"`.
    RUNNEL_ERR_BAD_MAGIC = 4,
    /// The blob's format version is not the one this library reads; re-run `runnel convert`.
    RUNNEL_ERR_UNSUPPORTED_VERSION = 5,
    /// The blob's CRC-32 does not match its contents (corrupted or partially written).
    RUNNEL_ERR_BAD_CHECKSUM = 6,
    /// A header field, table entry, offset, length or shape in the blob is inconsistent.
    RUNNEL_ERR_MALFORMED = 7,
    /// The model exceeds a fixed capacity of this build (blocks, recurrent layers).
    RUNNEL_ERR_CAPACITY_EXCEEDED = 8,
    /// The state arena is smaller than `runnel_model_info.state_bytes` (plus up to 3 bytes if it
    /// does not start on a 4-byte boundary).
    RUNNEL_ERR_ARENA_TOO_SMALL = 9,
    /// The output buffer holds fewer than `runnel_model_info.output_dim` floats.
    RUNNEL_ERR_BUFFER_TOO_SMALL = 10,
    /// A length is wrong: a frame's length differs from the model's frame width, or a buffer
    /// length does not fit the address space.
    RUNNEL_ERR_BAD_LENGTH = 11,
    /// A token step on a frame model, or a frame step on a token model.
    RUNNEL_ERR_WRONG_INPUT_KIND = 12,
    /// The token id is not below the model's vocabulary size.
    RUNNEL_ERR_TOKEN_OUT_OF_RANGE = 13,
    /// The `runnel_model` or `runnel_session` object was not initialised by a successful
    /// `runnel_model_open()` / `runnel_session_init()` (or the model under a session was
    /// re-opened or failed to open since).
    RUNNEL_ERR_NOT_INITIALIZED = 14,
    /// Two buffers that must be disjoint overlap: the arena with the blob or with an object, an
    /// output buffer with the frame, the arena, the blob or an object.
    RUNNEL_ERR_OVERLAP = 15,
    /// An internal error (a runtime error this API does not know, or a caught panic). Reset or
    /// re-initialise the session before using it again.
    RUNNEL_ERR_INTERNAL = 16,
}

/// What a model consumes at each step (`runnel_model_info.input_kind`). The C type is a
/// `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum runnel_input_kind {
    /// Token ids in `[0, input_dim)`: use `runnel_session_step_token()`.
    RUNNEL_INPUT_TOKENS = 0,
    /// Frames of `input_dim` floats: use `runnel_session_step_frame()`.
    RUNNEL_INPUT_FRAMES = 1,
}

/// Storage type of weights or of the attention KV cache (`runnel_model_info`). The C type is a
/// `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum runnel_dtype {
    /// IEEE binary32.
    RUNNEL_DTYPE_F32 = 0,
    /// IEEE binary16.
    RUNNEL_DTYPE_F16 = 1,
    /// Symmetric int8 with one f32 scale per row.
    RUNNEL_DTYPE_INT8 = 2,
}

/// What `runnel_model_get_info()` reports about an opened model.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct runnel_model_info {
    /// Bytes of state arena a session needs, from a 4-byte aligned address (an unaligned arena
    /// needs up to 3 more). The "ram" figure `runnel convert` prints.
    pub state_bytes: u32,
    /// `RUNNEL_INPUT_TOKENS` or `RUNNEL_INPUT_FRAMES`.
    pub input_kind: runnel_input_kind,
    /// Vocabulary size (tokens) or floats per frame (frames).
    pub input_dim: u32,
    /// Floats each step writes (logits per step).
    pub output_dim: u32,
    /// Width after the input layer.
    pub d_model: u32,
    /// Bytes of the blob (its declared length; trailing padding excluded).
    pub blob_bytes: u32,
    /// Number of weights (matrix elements, biases, norm parameters).
    pub param_count: u32,
    /// Storage type of the weight matrices.
    pub weight_type: runnel_dtype,
    /// Storage type of the attention KV cache.
    pub kv_type: runnel_dtype,
}

// ------------------------------------------------------------------------------------------------
// Caller-placed objects
// ------------------------------------------------------------------------------------------------

/// Bytes of a `runnel_model` object (this pointer width).
#[cfg(target_pointer_width = "64")]
pub const RUNNEL_MODEL_SIZE: usize = 144;
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
pub const RUNNEL_MODEL_SIZE: usize = 80;
/// Alignment of a `runnel_model` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_MODEL_ALIGN: usize = 4;
/// Bytes of a `runnel_session` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_SESSION_SIZE: usize = 32;
/// Alignment of a `runnel_session` object (this pointer width).
#[cfg(target_pointer_width = "32")]
pub const RUNNEL_SESSION_ALIGN: usize = 4;

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

const MODEL_MAGIC: u32 = u32::from_le_bytes(*b"RNmd");
const SESSION_MAGIC: u32 = u32::from_le_bytes(*b"RNss");

/// What a `runnel_model` holds. `magic` first (repr(C)) so that it can be read before the rest
/// is known to be valid.
#[repr(C)]
struct ModelObj {
    magic: u32,
    /// Incremented by every `runnel_model_open()` into this storage, so that sessions notice.
    generation: u32,
    blob: *const u8,
    blob_len: usize,
    /// `Ok` whenever `magic` is `MODEL_MAGIC`.
    model: ModelResult,
}

impl ModelObj {
    /// The opened model (always `Ok` once the magic is set).
    fn model(&self) -> Result<&Model<'static>, runnel_status> {
        self.model.as_ref().map_err(|_| RUNNEL_ERR_NOT_INITIALIZED)
    }
}

type ModelResult = Result<Model<'static>, Error>;

/// What a `runnel_session` holds.
#[repr(C)]
struct SessionObj {
    magic: u32,
    /// `ModelObj::generation` when the session was initialised.
    generation: u32,
    model: *const ModelObj,
    arena: *const u8,
    arena_len: usize,
    session: Session<'static, 'static>,
}

// The published sizes and alignments are exactly those of the real types. If one of these fails
// (a runtime change, another compiler), update the constants above from the numbers in the error
// and regenerate the header (`RUNNEL_BLESS=1 cargo test -p runnel-capi --test header`).
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
// Helpers (none of them can panic)
// ------------------------------------------------------------------------------------------------

use runnel_status::*;

/// Runs an entry point's body; with std, a panic becomes `RUNNEL_ERR_INTERNAL` instead of
/// unwinding into C.
#[cfg(not(target_os = "none"))]
fn guard(body: impl FnOnce() -> Result<(), runnel_status>) -> runnel_status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => RUNNEL_OK,
        Ok(Err(status)) => status,
        Err(_) => RUNNEL_ERR_INTERNAL,
    }
}

/// Runs an entry point's body (bare metal: panics abort, see the crate docs).
#[cfg(target_os = "none")]
#[inline(always)]
fn guard(body: impl FnOnce() -> Result<(), runnel_status>) -> runnel_status {
    match body() {
        Ok(()) => RUNNEL_OK,
        Err(status) => status,
    }
}

/// The status code of a runtime error.
fn status_of(e: Error) -> runnel_status {
    match e {
        Error::Truncated { .. } => RUNNEL_ERR_TRUNCATED,
        Error::BadMagic => RUNNEL_ERR_BAD_MAGIC,
        Error::UnsupportedVersion { .. } => RUNNEL_ERR_UNSUPPORTED_VERSION,
        Error::BadChecksum { .. } => RUNNEL_ERR_BAD_CHECKSUM,
        Error::Misaligned { .. } => RUNNEL_ERR_MISALIGNED,
        Error::Malformed { .. } | Error::BadTensor { .. } => RUNNEL_ERR_MALFORMED,
        Error::CapacityExceeded { .. } => RUNNEL_ERR_CAPACITY_EXCEEDED,
        Error::ArenaTooSmall { .. } => RUNNEL_ERR_ARENA_TOO_SMALL,
        Error::WrongInputKind => RUNNEL_ERR_WRONG_INPUT_KIND,
        Error::TokenOutOfRange { .. } => RUNNEL_ERR_TOKEN_OUT_OF_RANGE,
        Error::WrongLength {
            what: runnel::Buffer::Output,
            ..
        } => RUNNEL_ERR_BUFFER_TOO_SMALL,
        Error::WrongLength { .. } => RUNNEL_ERR_BAD_LENGTH,
        _ => RUNNEL_ERR_INTERNAL,
    }
}

const fn dtype_of(d: DType) -> runnel_dtype {
    match d {
        DType::F32 => runnel_dtype::RUNNEL_DTYPE_F32,
        DType::F16 => runnel_dtype::RUNNEL_DTYPE_F16,
        DType::I8 => runnel_dtype::RUNNEL_DTYPE_INT8,
    }
}

/// `p` is a multiple of `align` (a power of two).
fn aligned<T>(p: *const T, align: usize) -> bool {
    (p as usize) & (align.wrapping_sub(1)) == 0
}

/// `[p, p + len)` can be a slice: at most `isize::MAX` bytes, not wrapping around.
fn range_ok(p: *const u8, len: usize) -> bool {
    len <= isize::MAX as usize && (p as usize).checked_add(len).is_some()
}

/// The byte ranges `[a, a + a_len)` and `[b, b + b_len)` share a byte.
fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a0, b0) = (a as usize, b as usize);
    a_len != 0 && b_len != 0 && a0 < b0.saturating_add(b_len) && b0 < a0.saturating_add(a_len)
}

fn check_null<T>(p: *const T) -> Result<(), runnel_status> {
    if p.is_null() {
        Err(RUNNEL_ERR_NULL)
    } else {
        Ok(())
    }
}

/// The model object behind `model`, if it was opened.
///
/// # Safety
/// `model` is NULL or points to `RUNNEL_MODEL_SIZE` readable bytes of caller storage that no one
/// writes during the returned borrow.
unsafe fn model_obj<'a>(model: *const runnel_model) -> Result<&'a ModelObj, runnel_status> {
    check_null(model)?;
    if !aligned(model, RUNNEL_MODEL_ALIGN) {
        return Err(RUNNEL_ERR_MISALIGNED);
    }
    let obj = model.cast::<ModelObj>();
    // SAFETY: `obj` is non-null and aligned for `ModelObj` (same alignment as `runnel_model`) and
    // points to readable storage of its size (the caller's contract); `magic` is the first field,
    // a `u32`, for which every bit pattern is valid. No reference is created yet.
    let magic = unsafe { ptr::addr_of!((*obj).magic).read() };
    if magic != MODEL_MAGIC {
        return Err(RUNNEL_ERR_NOT_INITIALIZED);
    }
    // SAFETY: the magic word is only ever written by `runnel_model_open` together with a complete,
    // valid `ModelObj`, and is cleared first when the storage is re-opened; the caller does not
    // write the storage while it is borrowed.
    Ok(unsafe { &*obj })
}

/// The session object behind `session`, if it was initialised and its model is still the one it
/// was initialised with.
///
/// # Safety
/// `session` is NULL or points to `RUNNEL_SESSION_SIZE` bytes of caller storage that nothing else
/// accesses during the returned borrow; the model storage the session was initialised with is
/// still readable.
unsafe fn session_obj<'a>(
    session: *mut runnel_session,
) -> Result<&'a mut SessionObj, runnel_status> {
    check_null(session)?;
    if !aligned(session, RUNNEL_SESSION_ALIGN) {
        return Err(RUNNEL_ERR_MISALIGNED);
    }
    let obj = session.cast::<SessionObj>();
    // SAFETY: non-null, aligned for `SessionObj`, readable (the caller's contract); `magic` is the
    // first field, a `u32` (any bit pattern is valid); no reference is created yet.
    let magic = unsafe { ptr::addr_of!((*obj).magic).read() };
    if magic != SESSION_MAGIC {
        return Err(RUNNEL_ERR_NOT_INITIALIZED);
    }
    // SAFETY: the magic word is only written by `runnel_session_init` together with a complete,
    // valid `SessionObj` (and cleared first on re-initialisation); the caller gives this call
    // exclusive access to the storage.
    let s = unsafe { &mut *obj };
    // SAFETY: `s.model` pointed to an opened, aligned `ModelObj` at initialisation and the caller
    // keeps that storage in place while the session is used; only the two leading `u32` fields
    // are read, through raw pointers (the session's `&Model` covers other bytes).
    let (model_magic, generation) = unsafe {
        (
            ptr::addr_of!((*s.model).magic).read(),
            ptr::addr_of!((*s.model).generation).read(),
        )
    };
    if model_magic != MODEL_MAGIC || generation != s.generation {
        return Err(RUNNEL_ERR_NOT_INITIALIZED);
    }
    Ok(s)
}

/// Checks an output buffer against the session's needs and returns the `output_dim` floats of it
/// the step writes.
///
/// # Safety
/// `out` is NULL or points to `out_len` writable floats that nothing else accesses during the
/// returned borrow.
unsafe fn out_slice<'a>(
    s: &SessionObj,
    out: *mut f32,
    out_len: usize,
) -> Result<&'a mut [f32], runnel_status> {
    check_null(out)?;
    if !aligned(out, align_of::<f32>()) {
        return Err(RUNNEL_ERR_MISALIGNED);
    }
    let n = s.session.model().output_dim();
    if out_len < n {
        return Err(RUNNEL_ERR_BUFFER_TOO_SMALL);
    }
    let bytes = n.saturating_mul(size_of::<f32>());
    let p = out.cast::<u8>().cast_const();
    if !range_ok(p, bytes) {
        return Err(RUNNEL_ERR_BAD_LENGTH);
    }
    if disjoint_from_session(s, p, bytes).is_err() {
        return Err(RUNNEL_ERR_OVERLAP);
    }
    // SAFETY: non-null, aligned for f32, `n <= out_len` floats are writable (the caller's
    // contract), the range fits the address space (checked) and is disjoint from every other
    // memory this call reads or writes (the session and model objects, the arena, the blob:
    // checked above; the frame: checked by the caller of this function).
    Ok(unsafe { core::slice::from_raw_parts_mut(out, n) })
}

/// `[p, p + len)` shares no byte with the session object, its model object, arena or blob.
fn disjoint_from_session(s: &SessionObj, p: *const u8, len: usize) -> Result<(), runnel_status> {
    // SAFETY: `s.model` points to the opened model object (checked by `session_obj`); only its
    // plain-data fields `blob` and `blob_len` are read, through a raw pointer.
    let (blob, blob_len) = unsafe {
        (
            ptr::addr_of!((*s.model).blob).read(),
            ptr::addr_of!((*s.model).blob_len).read(),
        )
    };
    let own = ptr::from_ref(s).cast::<u8>();
    if overlaps(p, len, own, RUNNEL_SESSION_SIZE)
        || overlaps(p, len, s.model.cast(), RUNNEL_MODEL_SIZE)
        || overlaps(p, len, s.arena, s.arena_len)
        || overlaps(p, len, blob, blob_len)
    {
        return Err(RUNNEL_ERR_OVERLAP);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The API
// ------------------------------------------------------------------------------------------------

/// Validates a `.rnl` blob (magic, version, CRC-32, every offset, length, alignment and shape)
/// and opens it into `*model`. The weights are used in place: the blob must stay at the same
/// address, unchanged, for as long as the model (or any session on it) is used.
///
/// * `model`: storage for the model object (`RUNNEL_MODEL_SIZE` bytes aligned to
///   `RUNNEL_MODEL_ALIGN`; a `runnel_model` variable is both).
/// * `blob`, `blob_len`: the blob; it must start on a 4-byte boundary (16 recommended). Bytes
///   after the blob's declared length (flash padding) are ignored.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (model storage or blob),
/// `RUNNEL_ERR_BAD_LENGTH`, `RUNNEL_ERR_OVERLAP` (blob and model storage share bytes),
/// `RUNNEL_ERR_TRUNCATED`, `RUNNEL_ERR_BAD_MAGIC`, `RUNNEL_ERR_UNSUPPORTED_VERSION`,
/// `RUNNEL_ERR_BAD_CHECKSUM`, `RUNNEL_ERR_MALFORMED`, `RUNNEL_ERR_CAPACITY_EXCEEDED`. On any
/// error other than NULL/misaligned `model`, `*model` is left "not initialised" (sessions on a
/// model previously opened there then fail with `RUNNEL_ERR_NOT_INITIALIZED`).
///
/// # Safety
///
/// `model` must be NULL or point to `RUNNEL_MODEL_SIZE` writable bytes not used by any other
/// thread during the call; `blob` must be NULL or point to `blob_len` readable bytes that stay
/// unchanged while the model is used. Re-opening a model object invalidates the sessions that use
/// it (they then return `RUNNEL_ERR_NOT_INITIALIZED`).
#[no_mangle]
pub unsafe extern "C" fn runnel_model_open(
    model: *mut runnel_model,
    blob: *const c_void,
    blob_len: usize,
) -> runnel_status {
    guard(|| {
        check_null(model)?;
        if !aligned(model, RUNNEL_MODEL_ALIGN) {
            return Err(RUNNEL_ERR_MISALIGNED);
        }
        let obj = model.cast::<ModelObj>();
        // SAFETY: `obj` is non-null, aligned and points to writable storage of a `ModelObj`'s
        // size (the caller's contract). The two leading `u32` fields are read (any bit pattern is
        // valid) and written through raw pointers; no reference to the storage exists here.
        unsafe {
            let g = ptr::addr_of!((*obj).generation).read().wrapping_add(1);
            ptr::addr_of_mut!((*obj).magic).write(0);
            ptr::addr_of_mut!((*obj).generation).write(g);
        }
        check_null(blob)?;
        let blob = blob.cast::<u8>();
        if !range_ok(blob, blob_len) {
            return Err(RUNNEL_ERR_BAD_LENGTH);
        }
        if overlaps(blob, blob_len, model.cast(), RUNNEL_MODEL_SIZE) {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        // SAFETY: `blob` is non-null and points to `blob_len` readable bytes that stay unchanged
        // while the model is used (the caller's contract, which is what lets the model borrow
        // them for `'static`); the range fits the address space and is disjoint from the object
        // written below (both checked); `u8` needs no alignment.
        let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(blob, blob_len) };
        // Written field by field, straight into the caller's storage: `Model` is several KB (its
        // fixed-capacity tables), and each `Model`-sized temporary in this frame costs that much
        // stack on a microcontroller.
        // SAFETY: `obj` is valid for writes of a `ModelObj` (size and alignment equal those of
        // `runnel_model`, asserted at compile time); the old contents need no drop (no drop
        // glue); until the magic is written the object reads as not initialised, and the fields
        // written and read here are plain data.
        unsafe {
            let model = ptr::addr_of_mut!((*obj).model);
            model.write(Model::from_bytes(bytes));
            if let Err(e) = &*model {
                return Err(status_of(*e));
            }
            ptr::addr_of_mut!((*obj).blob).write(blob);
            ptr::addr_of_mut!((*obj).blob_len).write(blob_len);
            ptr::addr_of_mut!((*obj).magic).write(MODEL_MAGIC);
        }
        Ok(())
    })
}

/// Reports what an opened model needs and produces: state bytes, input kind and width, output
/// width, and more (see `runnel_model_info`).
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (model or info),
/// `RUNNEL_ERR_NOT_INITIALIZED` (model not opened), `RUNNEL_ERR_OVERLAP` (info inside the model
/// object). `*info` is written only on success.
///
/// # Safety
///
/// `model` must be NULL or point to a model object (see `runnel_model_open()`); `info` must be
/// NULL or point to a writable `runnel_model_info`.
#[no_mangle]
pub unsafe extern "C" fn runnel_model_get_info(
    model: *const runnel_model,
    info: *mut runnel_model_info,
) -> runnel_status {
    guard(|| {
        check_null(model)?;
        check_null(info)?;
        if !aligned(info, align_of::<runnel_model_info>()) {
            return Err(RUNNEL_ERR_MISALIGNED);
        }
        // SAFETY: the caller's contract for `model` (see `model_obj`).
        let obj = unsafe { model_obj(model) }?;
        if overlaps(
            info.cast::<u8>(),
            size_of::<runnel_model_info>(),
            model.cast(),
            RUNNEL_MODEL_SIZE,
        ) {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        let m = obj.model()?;
        let (input_kind, input_dim) = match m.input_kind() {
            InputKind::Tokens { vocab } => (runnel_input_kind::RUNNEL_INPUT_TOKENS, vocab),
            InputKind::Frames { dim } => (runnel_input_kind::RUNNEL_INPUT_FRAMES, dim),
        };
        // Every figure is stored as a u32 in the blob (or bounded by 2^16 per dimension).
        let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let value = runnel_model_info {
            state_bytes: u(m.state_bytes()),
            input_kind,
            input_dim: u(input_dim),
            output_dim: u(m.output_dim()),
            d_model: u(m.d_model()),
            blob_bytes: u(m.blob_bytes()),
            param_count: u(m.param_count()),
            weight_type: dtype_of(m.weight_type()),
            kv_type: dtype_of(m.kv_type()),
        };
        // SAFETY: `info` is non-null, aligned and writable (the caller's contract) and does not
        // overlap the model object borrowed above (checked).
        unsafe { info.write(value) };
        Ok(())
    })
}

/// Starts a stream over an opened model, with its state in the caller's arena, and zeroes that
/// state. The session refers to the model object and to the arena: both must stay in place while
/// it is used, and nothing else may use the arena meanwhile. Any number of sessions may share one
/// model (one arena each).
///
/// * `session`: storage for the session object (`RUNNEL_SESSION_SIZE` bytes aligned to
///   `RUNNEL_SESSION_ALIGN`; a `runnel_session` variable is both).
/// * `arena`, `arena_len`: at least `runnel_model_info.state_bytes` bytes from the arena's first
///   4-byte aligned address (so up to 3 more if `arena` is not 4-aligned).
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session or model storage),
/// `RUNNEL_ERR_NOT_INITIALIZED` (model not opened), `RUNNEL_ERR_BAD_LENGTH`,
/// `RUNNEL_ERR_OVERLAP` (arena, session object, model object and blob must be pairwise
/// disjoint), `RUNNEL_ERR_ARENA_TOO_SMALL`. On any error other than NULL/misaligned `session`,
/// `*session` is left "not initialised".
///
/// # Safety
///
/// `session` must be NULL or point to `RUNNEL_SESSION_SIZE` writable bytes; `model` NULL or a
/// model object (see `runnel_model_open()`); `arena` NULL or `arena_len` writable bytes that only
/// this session uses from now on.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_init(
    session: *mut runnel_session,
    model: *const runnel_model,
    arena: *mut c_void,
    arena_len: usize,
) -> runnel_status {
    guard(|| {
        check_null(session)?;
        if !aligned(session, RUNNEL_SESSION_ALIGN) {
            return Err(RUNNEL_ERR_MISALIGNED);
        }
        let sobj = session.cast::<SessionObj>();
        // SAFETY: non-null, aligned, writable storage of a `SessionObj`'s size (the caller's
        // contract); clearing the leading `u32` through a raw pointer marks it uninitialised.
        unsafe { ptr::addr_of_mut!((*sobj).magic).write(0) };
        check_null(model)?;
        check_null(arena)?;
        let arena = arena.cast::<u8>();
        if !range_ok(arena, arena_len) {
            return Err(RUNNEL_ERR_BAD_LENGTH);
        }
        let own = session.cast::<u8>().cast_const();
        if overlaps(own, RUNNEL_SESSION_SIZE, model.cast(), RUNNEL_MODEL_SIZE) {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        // SAFETY: the caller's contract for `model` (see `model_obj`); the model object does not
        // overlap the session storage written below (checked).
        let mobj: &'static ModelObj = unsafe { model_obj(model) }?;
        if overlaps(arena, arena_len, own, RUNNEL_SESSION_SIZE)
            || overlaps(arena, arena_len, model.cast(), RUNNEL_MODEL_SIZE)
            || overlaps(arena, arena_len, mobj.blob, mobj.blob_len)
            || overlaps(own, RUNNEL_SESSION_SIZE, mobj.blob, mobj.blob_len)
        {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        // SAFETY: `arena` is non-null and points to `arena_len` writable bytes that only this
        // session uses from now on (the caller's contract, which is what lets the session borrow
        // them for `'static`); the range fits the address space and is disjoint from the session
        // and model objects and the blob (checked); `u8` needs no alignment.
        let bytes: &'static mut [u8] = unsafe { core::slice::from_raw_parts_mut(arena, arena_len) };
        let s = Session::new(mobj.model()?, bytes).map_err(status_of)?;
        let value = SessionObj {
            magic: SESSION_MAGIC,
            generation: mobj.generation,
            model: ptr::from_ref(mobj),
            arena: arena.cast_const(),
            arena_len,
            session: s,
        };
        // SAFETY: `sobj` is valid for writes of a `SessionObj` (size and alignment equal those of
        // `runnel_session`, asserted at compile time); the old contents need no drop.
        unsafe { sobj.write(value) };
        Ok(())
    })
}

/// Feeds one token to a token model and writes the step's `output_dim` logits to `out[0..]`.
///
/// * `out`, `out_len`: room for at least `runnel_model_info.output_dim` floats (4-byte aligned);
///   exactly `output_dim` are written.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session or out),
/// `RUNNEL_ERR_NOT_INITIALIZED`, `RUNNEL_ERR_BUFFER_TOO_SMALL`, `RUNNEL_ERR_BAD_LENGTH`,
/// `RUNNEL_ERR_OVERLAP` (out overlaps the session or model object, the arena or the blob),
/// `RUNNEL_ERR_WRONG_INPUT_KIND` (a frame model), `RUNNEL_ERR_TOKEN_OUT_OF_RANGE`
/// (`token >= input_dim`). On error, neither the session's state nor `out` changes.
///
/// # Safety
///
/// `session` must be NULL or point to a session object (see `runnel_session_init()`) that no other
/// thread uses during the call, whose model and arena are still in place; `out` must be NULL or
/// point to `out_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_step_token(
    session: *mut runnel_session,
    token: u32,
    out: *mut f32,
    out_len: usize,
) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        // SAFETY: the caller's contract for `out` (see `out_slice`).
        let out = unsafe { out_slice(s, out, out_len) }?;
        s.session.step_token(token, out).map_err(status_of)
    })
}

/// Feeds one frame of `input_dim` floats to a frame model and writes the step's `output_dim`
/// outputs to `out[0..]`.
///
/// * `frame`, `frame_len`: the frame (4-byte aligned); `frame_len` must equal
///   `runnel_model_info.input_dim`.
/// * `out`, `out_len`: as for `runnel_session_step_token()`; must not overlap `frame`.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session, frame or out),
/// `RUNNEL_ERR_NOT_INITIALIZED`, `RUNNEL_ERR_WRONG_INPUT_KIND` (a token model),
/// `RUNNEL_ERR_BAD_LENGTH` (`frame_len != input_dim`), `RUNNEL_ERR_BUFFER_TOO_SMALL`,
/// `RUNNEL_ERR_OVERLAP` (out overlaps the frame, the session or model object, the arena or the
/// blob; or the frame overlaps the session object or the arena). On error, neither the session's
/// state nor `out` changes.
///
/// # Safety
///
/// As for `runnel_session_step_token()`; `frame` must be NULL or point to `frame_len` readable
/// floats that do not change during the call.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_step_frame(
    session: *mut runnel_session,
    frame: *const f32,
    frame_len: usize,
    out: *mut f32,
    out_len: usize,
) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        check_null(frame)?;
        check_null(out)?;
        if !aligned(frame, align_of::<f32>()) {
            return Err(RUNNEL_ERR_MISALIGNED);
        }
        let InputKind::Frames { dim } = s.session.model().input_kind() else {
            return Err(RUNNEL_ERR_WRONG_INPUT_KIND);
        };
        if frame_len != dim {
            return Err(RUNNEL_ERR_BAD_LENGTH);
        }
        let frame_bytes = dim.saturating_mul(size_of::<f32>());
        let fp = frame.cast::<u8>();
        if !range_ok(fp, frame_bytes) {
            return Err(RUNNEL_ERR_BAD_LENGTH);
        }
        let own = ptr::from_ref(&*s).cast::<u8>();
        if overlaps(fp, frame_bytes, own, RUNNEL_SESSION_SIZE)
            || overlaps(fp, frame_bytes, s.arena, s.arena_len)
        {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        let out_bytes = out_len.saturating_mul(size_of::<f32>());
        if overlaps(fp, frame_bytes, out.cast::<u8>(), out_bytes) {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        // SAFETY: the caller's contract for `out` (see `out_slice`); `out` is disjoint from the
        // frame (checked above).
        let out = unsafe { out_slice(s, out, out_len) }?;
        // SAFETY: `frame` is non-null, aligned for f32 and points to `frame_len == dim` readable
        // floats that do not change during the call (the caller's contract); the range fits the
        // address space and shares no byte with the memory this call writes: the session object,
        // the arena and `out` (all checked above).
        let frame = unsafe { core::slice::from_raw_parts(frame, dim) };
        s.session.step_frame(frame, out).map_err(status_of)
    })
}

/// Forgets the stream: zeroes the recurrent state and empties the attention caches, as
/// `runnel_session_init()` left them.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED`,
/// `RUNNEL_ERR_NOT_INITIALIZED`.
///
/// # Safety
///
/// As for `runnel_session_step_token()` (`session`).
#[no_mangle]
pub unsafe extern "C" fn runnel_session_reset(session: *mut runnel_session) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        s.session.reset();
        Ok(())
    })
}

/// A static, NUL-terminated English description of a status code, e.g. "ok" or
/// "state arena too small". Unknown codes give "unknown runnel status code". Never NULL; the
/// string must not be freed or modified.
#[no_mangle]
pub extern "C" fn runnel_status_message(status: i32) -> *const c_char {
    // An `i32`, not a `runnel_status`: C may pass any integer, and a Rust enum must not hold an
    // unlisted value.
    message(status).as_ptr()
}

fn message(status: i32) -> &'static CStr {
    const TABLE: [(runnel_status, &CStr); 17] = [
        (RUNNEL_OK, c"ok"),
        (RUNNEL_ERR_NULL, c"a pointer argument is NULL"),
        (
            RUNNEL_ERR_MISALIGNED,
            c"a pointer is not aligned as required",
        ),
        (
            RUNNEL_ERR_TRUNCATED,
            c"blob truncated (shorter than its header or its declared length)",
        ),
        (RUNNEL_ERR_BAD_MAGIC, c"not a runnel blob (bad magic)"),
        (
            RUNNEL_ERR_UNSUPPORTED_VERSION,
            c"unsupported blob version; re-run `runnel convert`",
        ),
        (
            RUNNEL_ERR_BAD_CHECKSUM,
            c"blob checksum mismatch (corrupted blob)",
        ),
        (
            RUNNEL_ERR_MALFORMED,
            c"malformed blob (inconsistent field, offset or shape)",
        ),
        (
            RUNNEL_ERR_CAPACITY_EXCEEDED,
            c"model exceeds a capacity of this build",
        ),
        (RUNNEL_ERR_ARENA_TOO_SMALL, c"state arena too small"),
        (RUNNEL_ERR_BUFFER_TOO_SMALL, c"output buffer too small"),
        (
            RUNNEL_ERR_BAD_LENGTH,
            c"wrong length (frame length or buffer size)",
        ),
        (
            RUNNEL_ERR_WRONG_INPUT_KIND,
            c"wrong input kind for this model (token vs frame)",
        ),
        (
            RUNNEL_ERR_TOKEN_OUT_OF_RANGE,
            c"token out of range (not below the vocabulary size)",
        ),
        (
            RUNNEL_ERR_NOT_INITIALIZED,
            c"model or session object not initialised",
        ),
        (RUNNEL_ERR_OVERLAP, c"buffers that must be disjoint overlap"),
        (RUNNEL_ERR_INTERNAL, c"internal error"),
    ];
    for (code, text) in TABLE {
        if code as i32 == status {
            return text;
        }
    }
    c"unknown runnel status code"
}

// ------------------------------------------------------------------------------------------------
// Bare metal
// ------------------------------------------------------------------------------------------------

/// Unreachable by construction (see the crate docs). Should it ever run, it stops the core with a
/// permanently undefined instruction — a HardFault on Cortex-M that the firmware's handler
/// reports — rather than returning into C.
#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(any(target_arch = "arm", target_arch = "riscv32"))]
    // SAFETY: `udf` / `unimp` only raises an exception; it touches no memory and does not
    // return (`noreturn`).
    unsafe {
        #[cfg(target_arch = "arm")]
        core::arch::asm!("udf #0xfe", options(noreturn, nomem, nostack));
        #[cfg(target_arch = "riscv32")]
        core::arch::asm!("unimp", options(noreturn, nomem, nostack));
    }
    #[cfg(not(any(target_arch = "arm", target_arch = "riscv32")))]
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status() {
        assert_eq!(guard(|| panic!("boom")), RUNNEL_ERR_INTERNAL);
        assert_eq!(guard(|| Err(RUNNEL_ERR_NULL)), RUNNEL_ERR_NULL);
        assert_eq!(guard(|| Ok(())), RUNNEL_OK);
    }

    #[test]
    fn every_runtime_error_has_a_code() {
        let cases = [
            (Error::BadMagic, RUNNEL_ERR_BAD_MAGIC),
            (
                Error::WrongLength {
                    what: runnel::Buffer::Output,
                    expected: 2,
                    given: 1,
                },
                RUNNEL_ERR_BUFFER_TOO_SMALL,
            ),
            (
                Error::WrongLength {
                    what: runnel::Buffer::Frame,
                    expected: 2,
                    given: 1,
                },
                RUNNEL_ERR_BAD_LENGTH,
            ),
            (Error::Misaligned { required: 4 }, RUNNEL_ERR_MISALIGNED),
        ];
        for (e, code) in cases {
            assert_eq!(status_of(e), code);
            assert_ne!(message(code as i32), message(-1));
        }
    }

    #[test]
    fn overlap_and_range_helpers() {
        let p = 0x1000 as *const u8;
        assert!(overlaps(p, 16, p.wrapping_add(15), 1));
        assert!(!overlaps(p, 16, p.wrapping_add(16), 1));
        assert!(!overlaps(p, 0, p, 16));
        assert!(overlaps(p, usize::MAX, p.wrapping_add(100), 1));
        assert!(!range_ok(p, usize::MAX));
        assert!(range_ok(p, 16));
        assert!(aligned(0x1004 as *const u8, 4) && !aligned(0x1002 as *const u8, 4));
    }
}
