//! Slice access that cannot panic, for the step's code paths.
//!
//! [`crate::Model::from_bytes`] validates every length the step relies on, but the compiler cannot
//! see that, so plain indexing (`&x[..n]`, `split_at(n)`, `copy_from_slice`) keeps a panic path
//! behind every access. These helpers clamp instead: on a validated model they return exactly what
//! indexing would, and on a state validation excluded they return a shorter slice rather than
//! panicking. `firmware/nopanic` proves at link time that no panic path is left.

/// `&s[..n]`, or all of `s` if it is shorter.
#[inline(always)]
pub(crate) fn head<T>(s: &[T], n: usize) -> &[T] {
    s.split_at(n.min(s.len())).0
}

/// `&mut s[..n]`, or all of `s` if it is shorter.
#[inline(always)]
pub(crate) fn head_mut<T>(s: &mut [T], n: usize) -> &mut [T] {
    let n = n.min(s.len());
    s.split_at_mut(n).0
}

/// `&s[start..start + len]`, clamped to `s` (empty if `start` is beyond it).
#[inline(always)]
pub(crate) fn range<T>(s: &[T], start: usize, len: usize) -> &[T] {
    head(tail(s, start), len)
}

/// `&mut s[start..start + len]`, clamped to `s`.
#[inline(always)]
pub(crate) fn range_mut<T>(s: &mut [T], start: usize, len: usize) -> &mut [T] {
    head_mut(tail_mut(s, start), len)
}

/// `&s[start..]`, or empty if `start` is beyond `s`.
#[inline(always)]
pub(crate) fn tail<T>(s: &[T], start: usize) -> &[T] {
    s.split_at(start.min(s.len())).1
}

/// `&mut s[start..]`, or empty if `start` is beyond `s`.
#[inline(always)]
pub(crate) fn tail_mut<T>(s: &mut [T], start: usize) -> &mut [T] {
    let start = start.min(s.len());
    s.split_at_mut(start).1
}

/// `s.split_at(n)`, with `n` clamped to `s.len()`.
#[inline(always)]
pub(crate) fn split<T>(s: &[T], n: usize) -> (&[T], &[T]) {
    s.split_at(n.min(s.len()))
}

/// `s.split_at_mut(n)`, with `n` clamped to `s.len()`.
#[inline(always)]
pub(crate) fn split_mut<T>(s: &mut [T], n: usize) -> (&mut [T], &mut [T]) {
    let n = n.min(s.len());
    s.split_at_mut(n)
}

/// Copies the common prefix of `src` into `dst` (`dst.copy_from_slice(src)` for equal lengths).
#[inline(always)]
pub(crate) fn copy<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len().min(src.len());
    head_mut(dst, n).copy_from_slice(head(src, n));
}

/// The little-endian `u32` in the first 4 bytes of `b` (0 if shorter; `b` is a
/// `chunks_exact(4)` chunk where it is used).
#[inline(always)]
pub(crate) fn le_u32(b: &[u8]) -> u32 {
    b.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w))
}

/// The little-endian `u16` in the first 2 bytes of `b` (0 if shorter).
#[inline(always)]
pub(crate) fn le_u16(b: &[u8]) -> u16 {
    b.first_chunk::<2>().map_or(0, |w| u16::from_le_bytes(*w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_instead_of_panicking() {
        let s = [1, 2, 3, 4];
        assert_eq!(head(&s, 2), &[1, 2]);
        assert_eq!(head(&s, 9), &s);
        assert_eq!(tail(&s, 3), &[4]);
        assert_eq!(tail(&s, 9), &[] as &[i32]);
        assert_eq!(range(&s, 1, 2), &[2, 3]);
        assert_eq!(range(&s, 3, 5), &[4]);
        assert_eq!(range(&s, 7, 1), &[] as &[i32]);
        assert_eq!(split(&s, 9), (&s[..], &[] as &[i32]));
        let mut d = [0; 3];
        copy(&mut d, &s);
        assert_eq!(d, [1, 2, 3]);
        let mut m = [0; 4];
        copy(&mut m, &s[..2]);
        assert_eq!(m, [1, 2, 0, 0]);
        head_mut(&mut m, 9)[3] = 7;
        range_mut(&mut m, 2, 1)[0] = 5;
        tail_mut(&mut m, 9).fill(1); // empty
        assert_eq!(split_mut(&mut m, 1).1, &[2, 5, 7]);
        assert_eq!(le_u32(&[1, 2, 3, 4, 5]), 0x0403_0201);
        assert_eq!(le_u32(&[1, 2]), 0);
        assert_eq!(le_u16(&[1, 2]), 0x0201);
    }
}
