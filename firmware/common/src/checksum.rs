//! The output-row checksum (of an `f32` row; [`fnv1a_i32`] for the integer
//! mode's `i32` logits).
//!
//! **Definition** (the single source of truth; host tools must match it):
//! 32-bit FNV-1a over the bytes of the row, where the bytes are each `f32`'s
//! IEEE-754 bit pattern in little-endian order (`f32::to_bits().to_le_bytes()`),
//! element 0 first.
//!
//! ```text
//! h = 0x811c9dc5
//! for x in row: for b in x.to_bits().to_le_bytes(): h = (h ^ b) * 0x01000193  (mod 2^32)
//! ```
//!
//! It checks *bits*, not values: `-0.0` and `0.0` differ, and every NaN
//! payload is distinct. The empty row hashes to `0x811c9dc5`.
//!
//! Python equivalent:
//! ```text
//! def fnv1a_f32(row):            # row: numpy float32 array
//!     h = 0x811c9dc5
//!     for b in row.astype('<f4').tobytes():
//!         h = ((h ^ b) * 0x01000193) & 0xffffffff
//!     return h
//! ```

/// FNV-1a 32-bit offset basis.
pub const FNV_OFFSET: u32 = 0x811c_9dc5;
/// FNV-1a 32-bit prime.
pub const FNV_PRIME: u32 = 0x0100_0193;

/// Incremental FNV-1a hasher (32-bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a(pub u32);

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    pub const fn new() -> Self {
        Fnv1a(FNV_OFFSET)
    }

    #[inline]
    pub fn write_u8(&mut self, b: u8) {
        self.0 = (self.0 ^ b as u32).wrapping_mul(FNV_PRIME);
    }

    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u8(b);
        }
    }

    /// Feed one `f32` as its 4 little-endian bit-pattern bytes.
    #[inline]
    pub fn write_f32(&mut self, x: f32) {
        self.write(&x.to_bits().to_le_bytes());
    }

    /// Feed a `u32` as 4 little-endian bytes.
    #[inline]
    pub fn write_u32(&mut self, x: u32) {
        self.write(&x.to_le_bytes());
    }

    pub const fn finish(self) -> u32 {
        self.0
    }
}

/// Checksum of an `f32` row: FNV-1a 32 over the little-endian bytes of each
/// element's bit pattern (see the module docs).
pub fn fnv1a_f32(row: &[f32]) -> u32 {
    let mut h = Fnv1a::new();
    for &x in row {
        h.write_f32(x);
    }
    h.finish()
}

/// Checksum of an `i32` row (the integer mode's logits): FNV-1a 32 over the
/// little-endian bytes of each element's two's-complement bits, element 0
/// first (the same bytes as [`fnv1a_f32`] of a row whose `to_bits()` are these).
pub fn fnv1a_i32(row: &[i32]) -> u32 {
    let mut h = Fnv1a::new();
    for &x in row {
        h.write_u32(x as u32);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_row_is_offset_basis() {
        assert_eq!(fnv1a_f32(&[]), 0x811c_9dc5);
    }

    #[test]
    fn known_vectors() {
        // FNV-1a 32 of the ASCII bytes "a" is 0xe40c292c (reference value).
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xe40c_292c);
        // 1.0f32 = 0x3f800000 -> bytes 00 00 80 3f
        let mut h = Fnv1a::new();
        h.write(&[0x00, 0x00, 0x80, 0x3f]);
        assert_eq!(fnv1a_f32(&[1.0]), h.finish());
        assert_ne!(fnv1a_f32(&[0.0]), fnv1a_f32(&[-0.0]));
        assert_eq!(
            fnv1a_i32(&[0x3f80_0000, -1]),
            fnv1a_f32(&[1.0, f32::from_bits(u32::MAX)])
        );
    }
}
