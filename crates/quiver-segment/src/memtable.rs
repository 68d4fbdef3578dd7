//! The growing in-memory segment.

use crate::{
    rowkey::{parse_head, IdRef},
    Result, SegmentError,
};
use quiver_core::{Id, SeqNo};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// Id map hasher: foldhash, seeded randomly per process (fast, with some resistance to
/// adversarial ids).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Newest row position per id. Integer and string ids live in separate maps, so the common
/// integer case hashes and stores 12 bytes instead of a 32-byte `Id` enum (this map is updated
/// inside the WAL's commit critical section).
#[derive(Debug, Default)]
struct IdMap {
    ints: IntMap,
    strs: Map<String, u32>,
}

type IntMap = HashMap<u64, u32, NearbyIds>;

/// Hashing for integer ids that keeps nearby ids in nearby buckets.
///
/// Ids are very often dense: counters, auto-increment keys, a client numbering its events. A
/// well-mixed hash sends each of them to a random bucket — two cache misses per insert (control
/// byte and slot) once the map outgrows the cache, and that map is updated inside the WAL's
/// commit critical section. Here the low [`NEARBY_BITS`] bits of the id pass through unmixed,
/// so a run of consecutive ids fills consecutive slots (four per cache line), while the
/// higher bits go through a seeded 64-bit mixer, so ids far apart still spread uniformly, and
/// strided or adversarial patterns do no worse than random ones. The id's lowest 7 bits are
/// also folded into the top 7 bits, which hashbrown uses as the per-slot tag, so neighbours
/// sharing a probe group do not all match each other's tag.
#[derive(Clone, Debug)]
struct NearbyIds {
    seed: u64,
}

const NEARBY_BITS: u32 = 12;

impl Default for NearbyIds {
    fn default() -> Self {
        use std::hash::BuildHasher;
        // A per-process random seed, from std's randomly keyed SipHash.
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x9e37_79b9_u64);
        NearbyIds { seed }
    }
}

impl std::hash::BuildHasher for NearbyIds {
    type Hasher = NearbyIdHasher;
    fn build_hasher(&self) -> NearbyIdHasher {
        NearbyIdHasher {
            seed: self.seed,
            h: 0,
        }
    }
}

struct NearbyIdHasher {
    seed: u64,
    h: u64,
}

/// The murmur3 / splitmix 64-bit finaliser.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl std::hash::Hasher for NearbyIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used for u64 keys (they call `write_u64`); a correct fallback all the same.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b) ^ self.h);
        }
    }

    fn write_u64(&mut self, v: u64) {
        let low = v & ((1 << NEARBY_BITS) - 1);
        self.h = mix64((v >> NEARBY_BITS) ^ self.seed) ^ low ^ ((v & 0x7f) << 57);
    }

    fn finish(&self) -> u64 {
        self.h
    }
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

/// Arena chunks — and the row list and integer id map — handed back by memtables that were
/// dropped (flushed), for the memtables after them.
///
/// Fresh memory costs a page fault and a zeroed page per 4 KiB the first time it is written,
/// and that first write happens inside the WAL's commit critical section. Recycled memory's
/// pages are already mapped. The pool keeps at most `max_chunks` chunks (about one memtable's
/// worth) and one row list and id map, so the memory it holds is bounded by what the next
/// memtable would map anyway. Only the first two memtables of a process (the active one and
/// the first being flushed) start on fresh memory.
#[derive(Debug)]
pub struct ChunkPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_chunks: usize,
    /// The row list and integer id map of the last memtable dropped, emptied.
    spare: Mutex<Option<(Vec<MemRow>, IntMap)>>,
}

impl ChunkPool {
    /// A pool holding at most `max_bytes` of chunks.
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(ChunkPool {
            free: Mutex::new(Vec::new()),
            max_chunks: max_bytes.div_ceil(CHUNK_BYTES),
            spare: Mutex::new(None),
        })
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give(&self, chunks: Vec<Vec<u8>>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        for mut c in chunks {
            // Only standard chunks come back: an oversized body's chunk is freed.
            if free.len() >= self.max_chunks || c.capacity() != CHUNK_BYTES {
                continue;
            }
            c.clear();
            free.push(c);
        }
    }

    /// Keeps `rows` and `ints`, emptied, for the next memtable, unless a larger pair is kept.
    fn give_lists(&self, mut rows: Vec<MemRow>, mut ints: IntMap) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare
            .as_ref()
            .is_some_and(|(r, _)| r.capacity() >= rows.capacity())
        {
            return;
        }
        rows.clear();
        ints.clear();
        *spare = Some((rows, ints));
    }

    fn take_lists(&self) -> Option<(Vec<MemRow>, IntMap)> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Chunks waiting for reuse.
    pub fn len(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no chunk waits for reuse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
    /// Where chunks come from and go back to when the memtable is dropped.
    pool: Option<Arc<ChunkPool>>,
}

impl Drop for Memtable {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give(std::mem::take(&mut self.chunks));
            pool.give_lists(
                std::mem::take(&mut self.rows),
                std::mem::take(&mut self.newest.ints),
            );
        }
    }
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty memtable that takes its arena chunks, row list and id map from `pool` and
    /// returns them when dropped, with room for `expected_rows` entries (typically the previous memtable's count), so its
    /// row list and id map do not grow and rehash inside the commit critical section.
    pub fn with_pool(pool: Arc<ChunkPool>, expected_rows: usize) -> Self {
        let mut m = Self::default();
        if let Some((rows, ints)) = pool.take_lists() {
            (m.rows, m.newest.ints) = (rows, ints);
        }
        m.pool = Some(pool);
        m.rows.reserve(expected_rows);
        m.newest.ints.reserve(expected_rows);
        m
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
            let recycled = match &self.pool {
                Some(p) if body.len() <= CHUNK_BYTES => p.take(),
                _ => None,
            };
            self.chunks
                .push(recycled.unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES.max(body.len()))));
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

    /// Bodies of events whose timestamp lies in `[from, to)` (`to = i64::MAX`: no upper
    /// bound), in sequence order.
    /// Entries without a timestamp (plain records, tombstones) are never returned.
    pub fn scan_time_range(&self, from: i64, to: i64) -> impl Iterator<Item = &[u8]> + '_ {
        self.rows
            .iter()
            .filter(move |r| {
                r.ts.is_some_and(|t| quiver_core::in_time_range(t, from, to))
            })
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

#[cfg(test)]
mod nearby_ids_tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_fill_consecutive_slots_and_strided_ids_spread() {
        let s = NearbyIds::default();
        let mask = (1u64 << NEARBY_BITS) - 1;
        // A window of consecutive ids: every low-bit slot exactly once.
        let base = 7 << NEARBY_BITS;
        let slots: HashSet<u64> = (base..base + (1 << NEARBY_BITS))
            .map(|id| s.hash_one(id) & mask)
            .collect();
        assert_eq!(slots.len(), 1 << NEARBY_BITS);
        // Ids a window apart (identical low bits): spread like random keys. 1024 keys into
        // 4096 slots occupy ~906 distinct slots at random; a degenerate hash gives 1.
        let spread: HashSet<u64> = (0..1024u64)
            .map(|i| s.hash_one(i << NEARBY_BITS) & mask)
            .collect();
        assert!(spread.len() > 800, "{} distinct slots", spread.len());
        // Tags (top 7 bits) of neighbours differ.
        let tags: HashSet<u64> = (base..base + 128).map(|id| s.hash_one(id) >> 57).collect();
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn map_semantics_hold_for_mixed_id_patterns() {
        let mut m: HashMap<u64, u32, NearbyIds> = HashMap::default();
        let ids: Vec<u64> = (0..5000u64)
            .chain((0..5000u64).map(|i| i << 20))
            .chain((0..5000u64).map(|i| u64::MAX - i))
            .collect();
        for (pos, &id) in ids.iter().enumerate() {
            m.insert(id, pos as u32);
        }
        let distinct: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(m.len(), distinct.len());
        for &id in &distinct {
            let last = ids.iter().rposition(|&x| x == id).map(|p| p as u32);
            assert_eq!(m.get(&id).copied(), last);
        }
    }
}
