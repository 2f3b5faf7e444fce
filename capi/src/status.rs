//! Status codes: [`runnel_status`], the text of each code ([`runnel_status_message`]), and the
//! code of each runtime error.

use core::ffi::{c_char, CStr};

use runnel::Error;

use self::runnel_status::*;

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
    /// `runnel_session` object (`RUNNEL_MODEL_ALIGN` / `RUNNEL_SESSION_ALIGN`), a float frame or
    /// an output buffer (`float` or `int32_t`, 4 bytes), an info or scales structure.
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
    /// The output buffer holds fewer than `runnel_model_info.output_dim` values.
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
    /// A frame value is NaN or infinite; the step did nothing.
    RUNNEL_ERR_NON_FINITE_INPUT = 17,
    /// The step overflowed to a NaN or infinity in the state or the logits: the session was reset
    /// to the start of a stream and `out` zeroed, so the session stays usable.
    RUNNEL_ERR_NON_FINITE_STATE = 18,
    /// A state snapshot is truncated, corrupted, of another format version or holds values no
    /// session can have; the session did not change.
    RUNNEL_ERR_BAD_SNAPSHOT = 19,
    /// A state snapshot was taken from a session of another model (or another conversion of it);
    /// the session did not change.
    RUNNEL_ERR_SNAPSHOT_MISMATCH = 20,
    /// An integer entry point (`runnel_session_step_token_int()`,
    /// `runnel_session_step_frame_int()`, `runnel_model_get_integer_scales()`) on a model that is
    /// not in the integer-only mode (convert it with `runnel convert --integer --calibrate ...`);
    /// nothing changed.
    RUNNEL_ERR_NOT_INTEGER = 21,
}

/// The status code of a runtime error.
pub(crate) fn status_of(e: Error) -> runnel_status {
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
            what: runnel::Buffer::Output | runnel::Buffer::Snapshot,
            ..
        } => RUNNEL_ERR_BUFFER_TOO_SMALL,
        Error::NonFiniteInput { .. } => RUNNEL_ERR_NON_FINITE_INPUT,
        Error::NonFiniteState => RUNNEL_ERR_NON_FINITE_STATE,
        Error::BadSnapshot { .. } => RUNNEL_ERR_BAD_SNAPSHOT,
        Error::SnapshotOfAnotherModel { .. } => RUNNEL_ERR_SNAPSHOT_MISMATCH,
        Error::WrongLength { .. } => RUNNEL_ERR_BAD_LENGTH,
        Error::NotInteger => RUNNEL_ERR_NOT_INTEGER,
        _ => RUNNEL_ERR_INTERNAL,
    }
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

/// The text `runnel_status_message()` returns for `status` (any integer C may pass).
fn message(status: i32) -> &'static CStr {
    const TABLE: [(runnel_status, &CStr); 22] = [
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
        (
            RUNNEL_ERR_NON_FINITE_INPUT,
            c"a frame value is NaN or infinite",
        ),
        (
            RUNNEL_ERR_NON_FINITE_STATE,
            c"the step overflowed to a non-finite value; the session was reset",
        ),
        (
            RUNNEL_ERR_BAD_SNAPSHOT,
            c"invalid state snapshot (truncated, corrupted or another version)",
        ),
        (
            RUNNEL_ERR_SNAPSHOT_MISMATCH,
            c"state snapshot of another model",
        ),
        (
            RUNNEL_ERR_NOT_INTEGER,
            c"not an integer-only model (convert it with `runnel convert --integer`)",
        ),
    ];
    for (code, text) in TABLE {
        if code as i32 == status {
            return text;
        }
    }
    c"unknown runnel status code"
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (
                Error::NonFiniteInput { index: 3 },
                RUNNEL_ERR_NON_FINITE_INPUT,
            ),
            (Error::NonFiniteState, RUNNEL_ERR_NON_FINITE_STATE),
            (
                Error::BadSnapshot { what: "checksum" },
                RUNNEL_ERR_BAD_SNAPSHOT,
            ),
            (
                Error::SnapshotOfAnotherModel {
                    expected: 1,
                    found: 2,
                },
                RUNNEL_ERR_SNAPSHOT_MISMATCH,
            ),
            (
                Error::WrongLength {
                    what: runnel::Buffer::Snapshot,
                    expected: 2,
                    given: 1,
                },
                RUNNEL_ERR_BUFFER_TOO_SMALL,
            ),
            (Error::NotInteger, RUNNEL_ERR_NOT_INTEGER),
        ];
        for (e, code) in cases {
            assert_eq!(status_of(e), code);
            assert_ne!(message(code as i32), message(-1));
        }
    }
}
