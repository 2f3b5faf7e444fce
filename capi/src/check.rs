//! Argument checks (none of them can panic): NULL, alignment, length and overlap checks, and
//! getting the model and session objects from the caller's pointers.

use core::mem::{align_of, size_of};
use core::ptr;

use crate::layout::{
    runnel_model, runnel_session, ModelObj, SessionObj, MODEL_MAGIC, RUNNEL_MODEL_ALIGN,
    RUNNEL_MODEL_SIZE, RUNNEL_SESSION_ALIGN, RUNNEL_SESSION_SIZE, SESSION_MAGIC,
};
use crate::status::runnel_status::{self, *};

/// `p` is a multiple of `align` (a power of two).
pub(crate) fn aligned<T>(p: *const T, align: usize) -> bool {
    (p as usize) & (align.wrapping_sub(1)) == 0
}

/// `[p, p + len)` can be a slice: at most `isize::MAX` bytes, not wrapping around.
pub(crate) fn range_ok(p: *const u8, len: usize) -> bool {
    len <= isize::MAX as usize && (p as usize).checked_add(len).is_some()
}

/// The byte ranges `[a, a + a_len)` and `[b, b + b_len)` share a byte.
pub(crate) fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a0, b0) = (a as usize, b as usize);
    a_len != 0 && b_len != 0 && a0 < b0.saturating_add(b_len) && b0 < a0.saturating_add(a_len)
}

/// `Err(RUNNEL_ERR_NULL)` if `p` is NULL.
pub(crate) fn check_null<T>(p: *const T) -> Result<(), runnel_status> {
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
pub(crate) unsafe fn model_obj<'a>(
    model: *const runnel_model,
) -> Result<&'a ModelObj, runnel_status> {
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
pub(crate) unsafe fn session_obj<'a>(
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

/// An element type of the steps' output buffers: `f32` (the float steps) or `i32` (the integer
/// steps) — plain 4-byte data for which every bit pattern is a valid value. (Crate-private: no
/// other type can implement it.)
pub(crate) trait OutValue: Copy {}
impl OutValue for f32 {}
impl OutValue for i32 {}

/// Checks an output buffer against the session's needs and returns the `output_dim` values of it
/// the step writes.
///
/// # Safety
/// `out` is NULL or points to `out_len` writable values of `T` that nothing else accesses during
/// the returned borrow.
pub(crate) unsafe fn out_slice<'a, T: OutValue>(
    s: &SessionObj,
    out: *mut T,
    out_len: usize,
) -> Result<&'a mut [T], runnel_status> {
    check_null(out)?;
    if !aligned(out, align_of::<T>()) {
        return Err(RUNNEL_ERR_MISALIGNED);
    }
    let n = s.session.model().output_dim();
    if out_len < n {
        return Err(RUNNEL_ERR_BUFFER_TOO_SMALL);
    }
    let bytes = n.saturating_mul(size_of::<T>());
    let p = out.cast::<u8>().cast_const();
    if !range_ok(p, bytes) {
        return Err(RUNNEL_ERR_BAD_LENGTH);
    }
    if disjoint_from_session(s, p, bytes).is_err() {
        return Err(RUNNEL_ERR_OVERLAP);
    }
    // SAFETY: non-null, aligned for `T`, `n <= out_len` values of `T` are writable (the caller's
    // contract) and any bits are a valid `T` (`OutValue`: f32 or i32), the range fits the address
    // space (checked) and is disjoint from every other memory this call reads or writes (the
    // session and model objects, the arena, the blob: checked above; the frame: checked by the
    // caller of this function).
    Ok(unsafe { core::slice::from_raw_parts_mut(out, n) })
}

/// `[p, p + len)` shares no byte with the session object, its model object, arena or blob.
pub(crate) fn disjoint_from_session(
    s: &SessionObj,
    p: *const u8,
    len: usize,
) -> Result<(), runnel_status> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
