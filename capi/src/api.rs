//! The exported `extern "C"` functions on models and sessions: opening a model, reporting on it,
//! starting, stepping (in floats, or in integers on an integer-only model), resetting, saving and
//! restoring a session. Each one checks its arguments (`check`) and runs
//! its body inside `guard` (`panic`). (`runnel_status_message()` is in `status`.)

use core::ffi::c_void;
use core::mem::{align_of, size_of};
use core::ptr;

use runnel::{InputKind, Model, Session};

use crate::check::{
    aligned, check_null, disjoint_from_session, model_obj, out_slice, overlaps, range_ok,
    session_obj, OutValue,
};
use crate::info::{info_of, integer_scales_of, runnel_integer_scales, runnel_model_info};
use crate::layout::{
    runnel_model, runnel_session, ModelObj, SessionObj, MODEL_MAGIC, RUNNEL_MODEL_ALIGN,
    RUNNEL_MODEL_SIZE, RUNNEL_SESSION_ALIGN, RUNNEL_SESSION_SIZE, SESSION_MAGIC,
};
use crate::panic::guard;
use crate::status::runnel_status::{self, *};
use crate::status::status_of;

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
    // SAFETY: the caller's contract for `model` and `info` is `write_model_query`'s.
    guard(|| unsafe { write_model_query(model, info, |m| Ok(info_of(m))) })
}

/// What `runnel_model_get_info()` and `runnel_model_get_integer_scales()` share: checks `model`
/// and `out` (NULL, alignment, an opened model, `out` outside the model object), computes the
/// value from the model with `value` and writes it to `*out` only on success.
///
/// # Safety
///
/// `model` must be NULL or point to a model object (see `runnel_model_open()`); `out` must be
/// NULL or point to a writable `T`.
unsafe fn write_model_query<T>(
    model: *const runnel_model,
    out: *mut T,
    value: impl FnOnce(&Model<'static>) -> Result<T, runnel_status>,
) -> Result<(), runnel_status> {
    check_null(model)?;
    check_null(out)?;
    if !aligned(out, align_of::<T>()) {
        return Err(RUNNEL_ERR_MISALIGNED);
    }
    // SAFETY: the caller's contract for `model` (see `model_obj`).
    let obj = unsafe { model_obj(model) }?;
    if overlaps(
        out.cast::<u8>(),
        size_of::<T>(),
        model.cast(),
        RUNNEL_MODEL_SIZE,
    ) {
        return Err(RUNNEL_ERR_OVERLAP);
    }
    let v = value(obj.model()?)?;
    // SAFETY: `out` is non-null, aligned and writable (the caller's contract) and does not
    // overlap the model object borrowed above (checked).
    unsafe { out.write(v) };
    Ok(())
}

/// Reports whether an opened model is in the integer-only mode (`runnel convert --integer`), and
/// if so its two grids (see `runnel_integer_scales`): the int8 frame grid and the logit grid of
/// `runnel_session_step_token_int()` / `runnel_session_step_frame_int()`. The call itself does
/// no floating-point arithmetic (the scales are copied from the blob).
///
/// Returns `RUNNEL_OK` (an integer-only model; `*scales` written), `RUNNEL_ERR_NOT_INTEGER`
/// (any other model), or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (model or scales),
/// `RUNNEL_ERR_NOT_INITIALIZED` (model not opened), `RUNNEL_ERR_OVERLAP` (scales inside the model
/// object). `*scales` is written only on success.
///
/// # Safety
///
/// `model` must be NULL or point to a model object (see `runnel_model_open()`); `scales` must be
/// NULL or point to a writable `runnel_integer_scales`.
#[no_mangle]
pub unsafe extern "C" fn runnel_model_get_integer_scales(
    model: *const runnel_model,
    scales: *mut runnel_integer_scales,
) -> runnel_status {
    // SAFETY: the caller's contract for `model` and `scales` is `write_model_query`'s.
    guard(|| unsafe {
        write_model_query(model, scales, |m| {
            integer_scales_of(m).ok_or(RUNNEL_ERR_NOT_INTEGER)
        })
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
            // From the caller's pointer, not from `mobj`: `runnel_model_open` may rewrite the object
            // later (invalidating references to it), and the session then reads its magic and
            // generation through this pointer.
            model: model.cast::<ModelObj>(),
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
        // SAFETY: the caller's contract for `frame` and `out` is `frame_and_out`'s.
        let (frame, out) = unsafe { frame_and_out(s, frame, frame_len, out, out_len, |_| Ok(())) }?;
        s.session.step_frame(frame, out).map_err(status_of)
    })
}

/// A frame's element type (`f32`, `i8`): plain data for which every bit pattern is a valid
/// value. (Crate-private: no other type can implement it.)
trait FrameValue: Copy {}
impl FrameValue for f32 {}
impl FrameValue for i8 {}

/// What `runnel_session_step_frame()` and `runnel_session_step_frame_int()` check before they
/// step, in this order: NULL frame or output, the model's mode (`mode`), the frame's alignment,
/// a frame model, `frame_len == input_dim`, the frame's range and its overlap with the session
/// object, the arena and the output; then the output ([`out_slice`]). Returns the frame and the
/// `output_dim` values of the output the step writes.
///
/// # Safety
///
/// `frame` must be NULL or point to `frame_len` readable values that do not change during the
/// call; `out` NULL or `out_len` writable values that nothing else accesses during the returned
/// borrow.
unsafe fn frame_and_out<'a, T: FrameValue, O: OutValue>(
    s: &SessionObj,
    frame: *const T,
    frame_len: usize,
    out: *mut O,
    out_len: usize,
    mode: impl FnOnce(&Model<'_>) -> Result<(), runnel_status>,
) -> Result<(&'a [T], &'a mut [O]), runnel_status> {
    check_null(frame)?;
    check_null(out)?;
    mode(s.session.model())?;
    if !aligned(frame, align_of::<T>()) {
        return Err(RUNNEL_ERR_MISALIGNED);
    }
    let InputKind::Frames { dim } = s.session.model().input_kind() else {
        return Err(RUNNEL_ERR_WRONG_INPUT_KIND);
    };
    if frame_len != dim {
        return Err(RUNNEL_ERR_BAD_LENGTH);
    }
    let frame_bytes = dim.saturating_mul(size_of::<T>());
    let fp = frame.cast::<u8>();
    if !range_ok(fp, frame_bytes) {
        return Err(RUNNEL_ERR_BAD_LENGTH);
    }
    let own = ptr::from_ref(s).cast::<u8>();
    if overlaps(fp, frame_bytes, own, RUNNEL_SESSION_SIZE)
        || overlaps(fp, frame_bytes, s.arena, s.arena_len)
    {
        return Err(RUNNEL_ERR_OVERLAP);
    }
    let out_bytes = out_len.saturating_mul(size_of::<O>());
    if overlaps(fp, frame_bytes, out.cast::<u8>(), out_bytes) {
        return Err(RUNNEL_ERR_OVERLAP);
    }
    // SAFETY: the caller's contract for `out` (see `out_slice`); `out` is disjoint from the
    // frame (checked above).
    let out = unsafe { out_slice(s, out, out_len) }?;
    // SAFETY: `frame` is non-null, aligned for `T` and points to `frame_len == dim` readable
    // values that do not change during the call (the caller's contract), any bits are a valid `T`
    // (`FrameValue`: f32 or i8); the range fits the address space and shares no byte with the
    // memory the step writes: the session object, the arena and `out` (all checked above).
    let frame = unsafe { core::slice::from_raw_parts(frame, dim) };
    Ok((frame, out))
}

/// Feeds one token to an integer-only token model (`runnel convert --integer`) and writes the
/// step's `output_dim` logits to `out[0..]` as integers on the model's logit grid (the logit is
/// `out[i] * logit_scale`, see `runnel_model_get_integer_scales()`). The whole step uses no
/// floating point: the call for cores without an FPU. The session is the same as for
/// `runnel_session_step_token()` (the two may be mixed on one stream; the float step returns these
/// logits times `logit_scale`).
///
/// * `out`, `out_len`: room for at least `runnel_model_info.output_dim` `int32_t`s (4-byte
///   aligned); exactly `output_dim` are written.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session or out),
/// `RUNNEL_ERR_NOT_INITIALIZED`, `RUNNEL_ERR_BUFFER_TOO_SMALL`, `RUNNEL_ERR_BAD_LENGTH`,
/// `RUNNEL_ERR_OVERLAP` (out overlaps the session or model object, the arena or the blob),
/// `RUNNEL_ERR_NOT_INTEGER` (a model in another mode; checked before the token),
/// `RUNNEL_ERR_WRONG_INPUT_KIND` (a frame model), `RUNNEL_ERR_TOKEN_OUT_OF_RANGE`
/// (`token >= input_dim`). On error, neither the session's state nor `out` changes.
///
/// # Safety
///
/// As for `runnel_session_step_token()`; `out` must be NULL or point to `out_len` writable
/// `int32_t`s.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_step_token_int(
    session: *mut runnel_session,
    token: u32,
    out: *mut i32,
    out_len: usize,
) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        // SAFETY: the caller's contract for `out` (see `out_slice`).
        let out = unsafe { out_slice(s, out, out_len) }?;
        if !s.session.model().is_integer() {
            return Err(RUNNEL_ERR_NOT_INTEGER);
        }
        s.session.step_token_int(token, out).map_err(status_of)
    })
}

/// Feeds one frame of `input_dim` int8 values on the model's frame grid to an integer-only frame
/// model (`runnel convert --integer`): `frame[i]` stands for the feature value
/// `frame[i] * frame_scale` (see `runnel_model_get_integer_scales()`). Writes the step's
/// `output_dim` logits to `out[0..]` as integers on the logit grid, as
/// `runnel_session_step_token_int()` does. The whole step uses no floating point.
///
/// * `frame`, `frame_len`: the frame (any alignment); `frame_len` must equal
///   `runnel_model_info.input_dim`. Any int8 value is accepted (`runnel_session_step_frame()`
///   rounds a float frame onto `[-127, 127]` of this grid).
/// * `out`, `out_len`: as for `runnel_session_step_token_int()`; must not overlap `frame`.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session or out),
/// `RUNNEL_ERR_NOT_INITIALIZED`, `RUNNEL_ERR_NOT_INTEGER` (a model in another mode; checked before
/// the frame), `RUNNEL_ERR_WRONG_INPUT_KIND` (a token model), `RUNNEL_ERR_BAD_LENGTH`
/// (`frame_len != input_dim`), `RUNNEL_ERR_BUFFER_TOO_SMALL`, `RUNNEL_ERR_OVERLAP` (out overlaps
/// the frame, the session or model object, the arena or the blob; or the frame overlaps the
/// session object or the arena). On error, neither the session's state nor `out` changes.
///
/// # Safety
///
/// As for `runnel_session_step_token_int()`; `frame` must be NULL or point to `frame_len`
/// readable bytes that do not change during the call.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_step_frame_int(
    session: *mut runnel_session,
    frame: *const i8,
    frame_len: usize,
    out: *mut i32,
    out_len: usize,
) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        let integer = |m: &Model<'_>| {
            if m.is_integer() {
                Ok(())
            } else {
                Err(RUNNEL_ERR_NOT_INTEGER)
            }
        };
        // SAFETY: the caller's contract for `frame` and `out` is `frame_and_out`'s.
        let (frame, out) = unsafe { frame_and_out(s, frame, frame_len, out, out_len, integer) }?;
        s.session.step_frame_int(frame, out).map_err(status_of)
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

/// Saves the session's persistent state (recurrent state, attention caches) into `buf` — e.g.
/// before a deep sleep or a power cycle — with a header naming the model and a CRC-32, and sets
/// `*written` to its size, `runnel_model_info.snapshot_bytes`. `buf` may have any alignment. The
/// session does not change.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session),
/// `RUNNEL_ERR_NOT_INITIALIZED`, `RUNNEL_ERR_BUFFER_TOO_SMALL` (`buf_len < snapshot_bytes`),
/// `RUNNEL_ERR_BAD_LENGTH`, `RUNNEL_ERR_OVERLAP` (buf overlaps the session or model object, the
/// arena or the blob).
///
/// # Safety
///
/// As for `runnel_session_step_token()` (`session`); `buf` must be NULL or point to `buf_len`
/// writable bytes; `written` NULL or a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_snapshot(
    session: *mut runnel_session,
    buf: *mut c_void,
    buf_len: usize,
    written: *mut usize,
) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        check_null(buf)?;
        check_null(written)?;
        let buf = buf.cast::<u8>();
        if !range_ok(buf, buf_len) {
            return Err(RUNNEL_ERR_BAD_LENGTH);
        }
        disjoint_from_session(s, buf, buf_len)?;
        // SAFETY: `buf` is non-null and points to `buf_len` writable bytes (the caller's
        // contract); the range fits the address space and shares no byte with the session and
        // model objects, the arena or the blob (checked); `u8` needs no alignment.
        let out = unsafe { core::slice::from_raw_parts_mut(buf, buf_len) };
        let n = s.session.snapshot(out).map_err(status_of)?;
        // SAFETY: `written` is non-null and writable (the caller's contract).
        unsafe { written.write_unaligned(n) };
        Ok(())
    })
}

/// Replaces the session's state with a snapshot made by `runnel_session_snapshot()` from a
/// session of the same model (in this arena or another, before a reboot or not). `snap` may have
/// any alignment; bytes after the snapshot's length are ignored. The stream continues exactly as
/// if it had not been interrupted.
///
/// Returns `RUNNEL_OK`, or `RUNNEL_ERR_NULL`, `RUNNEL_ERR_MISALIGNED` (session),
/// `RUNNEL_ERR_NOT_INITIALIZED`, `RUNNEL_ERR_BAD_LENGTH`, `RUNNEL_ERR_OVERLAP` (snap overlaps the
/// session object or the arena), `RUNNEL_ERR_BAD_SNAPSHOT` (truncated, corrupted, another format
/// version, impossible values), `RUNNEL_ERR_SNAPSHOT_MISMATCH` (another model). On error the
/// session does not change.
///
/// # Safety
///
/// As for `runnel_session_step_token()` (`session`); `snap` must be NULL or point to `snap_len`
/// readable bytes that do not change during the call.
#[no_mangle]
pub unsafe extern "C" fn runnel_session_restore(
    session: *mut runnel_session,
    snap: *const c_void,
    snap_len: usize,
) -> runnel_status {
    guard(|| {
        // SAFETY: the caller's contract for `session` (see `session_obj`).
        let s = unsafe { session_obj(session) }?;
        check_null(snap)?;
        let snap = snap.cast::<u8>();
        if !range_ok(snap, snap_len) {
            return Err(RUNNEL_ERR_BAD_LENGTH);
        }
        let own = ptr::from_ref(&*s).cast::<u8>();
        if overlaps(snap, snap_len, own, RUNNEL_SESSION_SIZE)
            || overlaps(snap, snap_len, s.arena, s.arena_len)
        {
            return Err(RUNNEL_ERR_OVERLAP);
        }
        // SAFETY: `snap` is non-null and points to `snap_len` readable bytes that do not change
        // during the call (the caller's contract); the range fits the address space and shares no
        // byte with what this call writes: the session object and the arena (checked).
        let bytes = unsafe { core::slice::from_raw_parts(snap, snap_len) };
        s.session.restore(bytes).map_err(status_of)
    })
}
