//! The growing in-memory segment.

use crate::{
    rowkey::{parse_head, IdRef},
    Result, SegmentError,
};
use quiver_core::{Id, SeqNo};
use std::collections::HashMap;

/// Id map hasher: foldhash, seeded randomly per process (fast, with some resistance to
/// adversarial ids).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Newest row position per id. Integer and string ids live in separate maps, so the common
/// integer case hashes and stores 12 bytes instead of a 32-byte `Id` enum (this map is updated
/// inside the WAL's commit critical section).
#[derive(Debug, Default)]
struct IdMap {
    ints: Map<u64, u32>,
    strs: Map<String, u32>,
}

impl IdMap {
    /// Records `pos` as the newest row of `id`; returns whether the id was already present.
    fn insert(&mut self, id: IdRef<'_>, pos: u32) -> bool {
        match id {
            IdRef::U64(v) => self.ints.insert(v, pos).is_some(),
            IdRef::Str(s) => match self.strs.get_mut(s) {
                Some(p) => {
                    *p = pos;
                    true
                }
                None => {
                    self.strs.insert(s.to_owned(), pos);
                    false
                }
            },
        }
    }

    fn get(&self, id: &Id) -> Option<u32> {
        match id {
            Id::U64(v) => self.ints.get(v).copied(),
            Id::Str(s) => self.strs.get(s.as_str()).copied(),
        }
    }

    fn len(&self) -> usize {
        self.ints.len() + self.strs.len()
    }
}

/// Bookkeeping bytes charged per entry on top of its body (row struct, index slot).
const ENTRY_OVERHEAD: usize =
    std::mem::size_of::<MemRow>() + std::mem::size_of::<(Id, usize)>() + 16;

#[derive(Debug)]
struct MemRow {
    seq: SeqNo,
    ts: Option<i64>,
    /// Arena chunk, offset in it, and length of the body.
    chunk: u32,
    off: u32,
    len: u32,
}

/// Bodies live back to back in chunks of this size (a larger body gets a chunk of its own),
/// so an insert is a copy, not an allocation, and a scan walks memory in order.
const CHUNK_BYTES: usize = 1 << 20;

/// The growing in-memory segment (memtable).
///
/// Keeps every entry in sequence order — older versions of an id too, since the ledger
/// verifier needs them until compaction — plus a map from id to its newest entry.
/// Entries are encoded with `quiver_core::codec`; their id, timestamp and sequence number
/// are decoded once at insert.
#[derive(Debug, Default)]
pub struct Memtable {
    rows: Vec<MemRow>,
    chunks: Vec<Vec<u8>>,
    newest: IdMap,
    bytes: usize,
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts an encoded entry (sequence number stamped). Entries must arrive in strictly
    /// increasing sequence order: [`SegmentError::OutOfOrder`] otherwise, and
    /// [`SegmentError::Core`] when the body does not decode. On error nothing is inserted.
    pub fn insert(&mut self, body: Vec<u8>) -> Result<()> {
        self.insert_slice(&body)
    }

    /// Like [`insert`](Self::insert), copying the body into the memtable's arena.
    pub fn insert_slice(&mut self, body: &[u8]) -> Result<()> {
        let head = parse_head(body)?;
        if let Some(last) = self.rows.last() {
            if head.seq <= last.seq {
                return Err(SegmentError::OutOfOrder {
                    last: last.seq,
                    got: head.seq,
                });
            }
        }
        let (seq, ts) = (head.seq, head.ts);
        let id_heap = match head.id {
            IdRef::Str(s) => s.len(),
            IdRef::U64(_) => 0,
        };
        let pos = u32::try_from(self.rows.len()).map_err(|_| SegmentError::InvalidOptions {
            key: "memtable",
            reason: "more than 2^32 entries in one memtable".into(),
        })?;
        if self.newest.insert(head.id, pos) {
            self.bytes += body.len() + ENTRY_OVERHEAD - std::mem::size_of::<(Id, usize)>();
        } else {
            self.bytes += body.len() + ENTRY_OVERHEAD + id_heap;
        }
        let (chunk, off) = self.place(body);
        self.rows.push(MemRow {
            seq,
            ts,
            chunk,
            off,
            len: body.len() as u32,
        });
        Ok(())
    }

    /// Copies `body` into the arena and returns where it went.
    fn place(&mut self, body: &[u8]) -> (u32, u32) {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= body.len());
        if !fits {
            self.chunks
                .push(Vec::with_capacity(CHUNK_BYTES.max(body.len())));
        }
        let idx = self.chunks.len() - 1;
        let c = &mut self.chunks[idx];
        let off = c.len();
        c.extend_from_slice(body);
        (idx as u32, off as u32)
    }

    fn body(&self, r: &MemRow) -> &[u8] {
        let c = &self.chunks[r.chunk as usize];
        &c[r.off as usize..r.off as usize + r.len as usize]
    }

    /// The body of the newest entry for `id` (tombstones included: the caller checks).
    pub fn get(&self, id: &Id) -> Option<&[u8]> {
        self.newest
            .get(id)
            .and_then(|i| self.rows.get(i as usize))
            .map(|r| self.body(r))
    }

    /// The sequence number of the newest entry for `id`.
    pub fn get_seq(&self, id: &Id) -> Option<SeqNo> {
        self.newest
            .get(id)
            .and_then(|i| self.rows.get(i as usize))
            .map(|r| r.seq)
    }

    /// Every body, in sequence order (all versions).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.rows.iter().map(|r| self.body(r))
    }

    /// Bodies of events whose timestamp lies in `[from, to)`, in sequence order.
    /// Entries without a timestamp (plain records, tombstones) are never returned.
    pub fn scan_time_range(&self, from: i64, to: i64) -> impl Iterator<Item = &[u8]> + '_ {
        self.rows
            .iter()
            .filter(move |r| r.ts.is_some_and(|t| t >= from && t < to))
            .map(|r| self.body(r))
    }

    /// Approximate memory held, in bytes: bodies plus per-entry bookkeeping.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    /// Number of entries (all versions).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no entry has been inserted.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of distinct ids.
    pub fn distinct_ids(&self) -> usize {
        self.newest.len()
    }

    /// Sequence number of the oldest entry.
    pub fn first_seq(&self) -> Option<SeqNo> {
        self.rows.first().map(|r| r.seq)
    }

    /// Sequence number of the newest entry.
    pub fn last_seq(&self) -> Option<SeqNo> {
        self.rows.last().map(|r| r.seq)
    }
}
