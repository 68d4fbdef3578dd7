//! A write batch laid out as the log will hold it.
//!
//! The bodies of a batch sit back to back in one buffer, each behind the room for its frame
//! header (`len`, `crc`; see [`crate::format`]), the whole behind the room for a commit group's
//! header. A writer encodes its records straight into
//! that buffer, outside any lock; inside the commit critical section the leader only stamps
//! each record's seq and fills in its frame header, and a group of one batch is written with
//! no copy at all. One allocation per batch instead of one per record, on the writer's side
//! and again on whichever thread drops the batch after the commit (the ledger's hashing
//! thread, when the ledger is on).

use crate::format::{frame_header, FRAME_HEADER_LEN, GROUP_HEADER_LEN};
use quiver_core::codec::stamp_seq;
use quiver_core::SeqNo;

/// Bodies framed back to back, ready for the log once stamped (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Room for a group header, then frames `[len u32][crc u32][body]` (frame headers filled in
    /// by [`Batch::seal`], the group header by the commit leader when the batch is a group on
    /// its own). Empty until the first body.
    buf: Vec<u8>,
    /// Offset in `buf` of each frame.
    starts: Vec<usize>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `records` bodies of `body_bytes` bytes in all.
    pub fn with_capacity(records: usize, body_bytes: usize) -> Self {
        Batch {
            buf: Vec::with_capacity(GROUP_HEADER_LEN + body_bytes + records * FRAME_HEADER_LEN),
            starts: Vec::with_capacity(records),
        }
    }

    /// Appends a copy of `body`.
    pub fn push(&mut self, body: &[u8]) {
        self.open_frame();
        self.buf.extend_from_slice(body);
    }

    /// Appends a body that `encode` writes at the end of the given buffer. When `encode` fails
    /// the batch is left as it was.
    pub fn push_with<E>(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        self.open_frame();
        // (A failed first body takes the group header's room with it: the batch is empty.)
        match encode(&mut self.buf) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.buf.truncate(start);
                self.starts.pop();
                Err(e)
            }
        }
    }

    fn open_frame(&mut self) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&[0u8; GROUP_HEADER_LEN]);
        }
        self.starts.push(self.buf.len());
        self.buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    }

    /// Number of bodies.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the batch holds no body.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    fn span(&self, i: usize) -> (usize, usize) {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.buf.len());
        (self.starts[i] + FRAME_HEADER_LEN, end)
    }

    /// Body `i` (seq stamped once the batch is committed). Panics when `i >= len()`.
    pub fn body(&self, i: usize) -> &[u8] {
        let (a, b) = self.span(i);
        &self.buf[a..b]
    }

    /// The bodies in order.
    pub fn bodies(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.body(i))
    }

    /// Stamps seqs `first..` into the bodies and fills in every frame header, making the
    /// buffer exactly the bytes the log appends. Callers check body sizes first.
    pub(crate) fn seal(&mut self, first: SeqNo) {
        for i in 0..self.len() {
            let (a, b) = self.span(i);
            let body = &mut self.buf[a..b];
            stamp_seq(body, first + i as u64);
            let header = frame_header(body);
            self.buf[a - FRAME_HEADER_LEN..a].copy_from_slice(&header);
        }
    }

    /// The framed bytes (meaningful once sealed), without the group header's room.
    pub(crate) fn frames(&self) -> &[u8] {
        self.buf.get(GROUP_HEADER_LEN..).unwrap_or_default()
    }

    /// The group header's room followed by the framed bytes: what the log appends when the
    /// batch is a group on its own, once its group header is filled in.
    pub(crate) fn group_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl From<Vec<Vec<u8>>> for Batch {
    fn from(bodies: Vec<Vec<u8>>) -> Self {
        let mut b = Batch::with_capacity(bodies.len(), bodies.iter().map(Vec::len).sum());
        for body in &bodies {
            b.push(body);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::push_frame;

    #[test]
    fn sealed_batch_is_byte_identical_to_framing_each_body() {
        let bodies: Vec<Vec<u8>> = (0..5u8)
            .map(|i| (0..8 + i as usize * 37).map(|j| j as u8 ^ i).collect())
            .collect();
        let mut batch = Batch::from(bodies.clone());
        assert_eq!(batch.len(), 5);
        batch.seal(41);
        let mut want = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let mut b = b.clone();
            stamp_seq(&mut b, 41 + i as u64);
            assert_eq!(batch.body(i), &b[..]);
            push_frame(&mut want, &b);
        }
        assert_eq!(batch.frames(), &want[..]);
        assert_eq!(batch.bodies().count(), 5);
        let group = batch.group_mut();
        assert_eq!(group.len(), GROUP_HEADER_LEN + want.len());
        assert_eq!(&group[GROUP_HEADER_LEN..], &want[..]);
        // A first body that fails to encode leaves nothing behind, not even the group's room.
        let mut empty = Batch::new();
        let r: Result<(), ()> = empty.push_with(|buf| {
            buf.push(1);
            Err(())
        });
        assert!(r.is_err() && empty.is_empty() && empty.group_mut().is_empty());
    }

    #[test]
    fn failed_encode_leaves_the_batch_unchanged() {
        let mut batch = Batch::new();
        batch.push(&[7; 12]);
        let before = batch.clone();
        let r: Result<(), &str> = batch.push_with(|buf| {
            buf.extend_from_slice(&[1; 30]);
            Err("bad")
        });
        assert_eq!(r, Err("bad"));
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.frames(), before.frames());
        batch
            .push_with(|buf| {
                buf.extend_from_slice(&[9; 10]);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(batch.body(1), &[9; 10]);
        assert_eq!(batch.body(0), &[7; 12]);
    }
}
