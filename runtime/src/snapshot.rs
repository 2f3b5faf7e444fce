//! Saving a session's state and restoring it, e.g. across a deep sleep or a reboot: the
//! persistent state (recurrent `h`/`c`, KV caches and their ring counters; not the scratch) with
//! a [`SnapshotHeader`] that names the model and a CRC-32.

use crate::error::{Buffer, Error};
use crate::format::{crc32, SnapshotHeader, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use crate::model::Model;
use crate::session::Session;
use crate::slices::{copy, head, head_mut, le_u32, split_mut, tail};

const HLEN: usize = core::mem::size_of::<SnapshotHeader>();

const fn bad(what: &'static str) -> Error {
    Error::BadSnapshot { what }
}

impl Model<'_> {
    /// Bytes of a state snapshot of a session of this model ([`Session::snapshot`]): a 32-byte
    /// header, the persistent state, a 4-byte CRC.
    pub fn snapshot_bytes(&self) -> usize {
        HLEN + self.layout.state_words * 4 + 4
    }
}

impl Session<'_, '_> {
    /// Writes the session's persistent state into `buf` (at any alignment), which must hold at
    /// least [`Model::snapshot_bytes`] bytes, and returns the bytes written. The session is not
    /// changed; [`Session::restore`] continues the stream bit for bit, in this or another arena.
    pub fn snapshot(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let model = self.model();
        let n = model.snapshot_bytes();
        let Some(out) = buf.get_mut(..n) else {
            return Err(Error::WrongLength {
                what: Buffer::Snapshot,
                expected: n.min(u32::MAX as usize) as u32,
                given: buf.len().min(u32::MAX as usize) as u32,
            });
        };
        let state = head(self.arena, model.layout.state_words);
        let h = SnapshotHeader {
            magic: SNAPSHOT_MAGIC,
            version: SNAPSHOT_VERSION,
            header_len: HLEN as u16,
            total_len: n as u32,
            model_fingerprint: model.fingerprint(),
            model_len: model.blob_bytes() as u32,
            state_bytes: (state.len() * 4) as u32,
            reserved: [0; 2],
        };
        let Some((hd, rest)) = out.split_first_chunk_mut::<HLEN>() else {
            return Err(bad("header")); // unreachable: `n` > HLEN
        };
        *hd = bytemuck::cast(h);
        for (o, w) in rest.chunks_exact_mut(4).zip(state) {
            copy(o, &w.to_bits().to_le_bytes());
        }
        let (covered, crc) = split_mut(out, n - 4); // n > HLEN + 4
        let c = crc32(covered).to_le_bytes();
        copy(crc, &c);
        Ok(n)
    }

    /// Replaces the session's state with a snapshot (at any alignment; trailing bytes are
    /// ignored). A snapshot that is truncated, corrupted, of another format version or of another
    /// model, or that holds a state no step could produce, is refused with an error and the
    /// session is left exactly as it was.
    pub fn restore(&mut self, snap: &[u8]) -> Result<(), Error> {
        let model = self.model();
        let hd = snap.first_chunk::<HLEN>().ok_or(bad("truncated"))?;
        let h: SnapshotHeader = bytemuck::cast(*hd);
        if h.magic != SNAPSHOT_MAGIC {
            return Err(bad("not a snapshot (bad magic)"));
        }
        if h.version != SNAPSHOT_VERSION {
            return Err(bad("unsupported version"));
        }
        if h.header_len as usize != HLEN || h.reserved != [0; 2] {
            return Err(bad("header"));
        }
        let total = h.total_len as usize;
        let body = snap.get(..total).ok_or(bad("truncated"))?;
        if total < HLEN + 4 {
            return Err(bad("header"));
        }
        let (covered, crc) = body.split_last_chunk::<4>().ok_or(bad("header"))?;
        if crc32(covered) != u32::from_le_bytes(*crc) {
            return Err(bad("checksum mismatch"));
        }
        if h.model_fingerprint != model.fingerprint() || h.model_len as usize != model.blob_bytes()
        {
            return Err(Error::SnapshotOfAnotherModel {
                expected: model.fingerprint(),
                found: h.model_fingerprint,
            });
        }
        let words = model.layout.state_words;
        if h.state_bytes as usize != words * 4 || total != model.snapshot_bytes() {
            return Err(bad("state size"));
        }
        // Every block's state in the snapshot is checked before anything is written.
        let state = tail(covered, HLEN);
        let mut at = 0usize;
        for b in model.blocks() {
            let n = b.state_words(model.kv, model.integer).unwrap_or(0) * 4;
            if !state
                .get(at..at + n)
                .is_some_and(|st| b.check_state(st, model.kv, model.integer))
            {
                return Err(bad("state values"));
            }
            at += n;
        }
        for (w, b) in head_mut(self.arena, words)
            .iter_mut()
            .zip(state.chunks_exact(4))
        {
            *w = f32::from_bits(le_u32(b));
        }
        Ok(())
    }
}
