//! Reads: get by id, full scan and time-range scan, all over a consistent snapshot.
//!
//! The code here works on a [`Snapshot`] of sources and is shared by [`Database`] (a snapshot
//! of its live state per call) and [`ReadOnlyDatabase`] (the snapshot it loaded at open); both
//! get their public read methods from [`read_methods!`].
//!
//! Sources hold disjoint, increasing seq ranges (segments, then sealed memtables, then the
//! active memtable), so concatenating them in order is seq order. A row is live when no newer
//! source holds its id and it is the newest version within its own source; tombstones are
//! never returned.

use crate::{
    db::Database,
    read_only::ReadOnlyDatabase,
    state::{LiveSegment, Snapshot},
    Result,
};
use quiver_core::{codec, Entry, Id, Op, SeqNo};
use quiver_segment::Memtable;
use std::{collections::HashMap, sync::Arc};

/// A frozen copy of the active memtable taken at the start of a scan, so a long scan sees
/// one point in time without holding writers off.
struct ActiveCopy {
    rows: Vec<Vec<u8>>,
    newest: HashMap<Id, SeqNo>,
}

enum Source {
    Segment(Arc<LiveSegment>),
    Frozen(Arc<parking_lot::RwLock<Memtable>>),
    Active(ActiveCopy),
}

impl Source {
    /// Whether this source holds any version of `id`.
    fn holds(&self, id: &Id) -> Result<bool> {
        Ok(match self {
            Source::Segment(s) => s.seg.newest_seq(id)?.is_some(),
            Source::Frozen(m) => m.read().get(id).is_some(),
            Source::Active(a) => a.newest.contains_key(id),
        })
    }
}

/// Statistics of a database, as printed by `quiver stats`. From a [`ReadOnlyDatabase`] the
/// counters of work since open (`wal_groups`, `wal_syncs`, `wal_gathers`) are 0 and
/// `wal_direct_io` is false: it writes nothing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    /// Last committed sequence number.
    pub last_seq: SeqNo,
    /// Every entry up to this seq lives in segments.
    pub flushed_through: SeqNo,
    /// Live segments.
    pub segments: usize,
    /// Rows stored in segments (live versions and tombstones not yet compacted away).
    pub segment_rows: u64,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Entries in memtables (not yet flushed).
    pub memtable_entries: usize,
    /// Bytes of WAL files.
    pub wal_bytes: u64,
    /// WAL commit groups written since open.
    pub wal_groups: u64,
    /// WAL fdatasync calls since open.
    pub wal_syncs: u64,
    /// WAL group leaders that waited for announced writers since open (see `Wal::announce`).
    pub wal_gathers: u64,
    /// The active WAL file is appended with direct I/O (see `WalConfig::direct_io`).
    pub wal_direct_io: bool,
    /// Ledger leaves (0 when the ledger is off).
    pub ledger_size: u64,
}

/// The public read methods of [`Database`] and [`ReadOnlyDatabase`], over the type's
/// `read_snapshot()`.
macro_rules! read_methods {
    () => {
        /// The newest version of `id`, or `None` if it was never written or is deleted.
        pub fn get(&self, id: &Id) -> Result<Option<Entry>> {
            self.read_snapshot().get(id)
        }

        /// Visits every live record in sequence order; `visit` returns `false` to stop early.
        pub fn scan(&self, visit: &mut dyn FnMut(Entry) -> Result<bool>) -> Result<()> {
            self.read_snapshot().scan_filtered(None, visit)
        }

        /// Visits live events whose timestamp lies in `[from_ns, to_ns)`, in sequence order;
        /// `to_ns = i64::MAX` leaves the range open at the top (it includes `i64::MAX`).
        pub fn scan_time_range(
            &self,
            from_ns: i64,
            to_ns: i64,
            visit: &mut dyn FnMut(Entry) -> Result<bool>,
        ) -> Result<()> {
            self.read_snapshot()
                .scan_filtered(Some((from_ns, to_ns)), visit)
        }

        /// Collects [`scan`](Self::scan) into a vector (tests and small databases).
        pub fn scan_all(&self) -> Result<Vec<Entry>> {
            let mut v = Vec::new();
            self.scan(&mut |e| {
                v.push(e);
                Ok(true)
            })?;
            Ok(v)
        }
    };
}

impl Database {
    read_methods!();

    /// The live sources as of now.
    fn read_snapshot(&self) -> Snapshot {
        self.inner.state.read().snapshot()
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<Stats> {
        // Leaves of acknowledged writes are hashed off the writers' path: catch up first, so
        // `ledger_size` agrees with `last_seq` (as `ledger()` does).
        let _caught_up = self.inner.wait_for_leaves(self.inner.wal.last_seq());
        let (counts, flushed_through) = {
            let st = self.inner.state.read();
            (st.snapshot().counts(), st.manifest.flushed_through)
        };
        let wal_stats = self.inner.wal.stats();
        Ok(Stats {
            last_seq: self.inner.wal.last_seq(),
            flushed_through,
            segments: counts.segments,
            segment_rows: counts.segment_rows,
            segment_bytes: counts.segment_bytes,
            memtable_entries: counts.memtable_entries,
            wal_bytes: wal_stats.bytes,
            wal_groups: wal_stats.groups,
            wal_syncs: wal_stats.syncs,
            wal_gathers: wal_stats.gathers,
            wal_direct_io: wal_stats.direct_io,
            ledger_size: self.inner.ledger.as_ref().map_or(0, |l| l.size()),
        })
    }
}

impl ReadOnlyDatabase {
    read_methods!();
}

/// The parts of [`Stats`] that come from the sources themselves.
pub(crate) struct SourceCounts {
    pub(crate) segments: usize,
    pub(crate) segment_rows: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) memtable_entries: usize,
}

impl Snapshot {
    /// The newest version of `id` in these sources (newest source first), unless deleted.
    pub(crate) fn get(&self, id: &Id) -> Result<Option<Entry>> {
        let hit = self.active.read().get(id).map(<[u8]>::to_vec);
        let found = match hit {
            Some(b) => Some(b),
            None => {
                let mut hit = None;
                for m in self.frozen.iter().rev() {
                    if let Some(b) = m.read().get(id) {
                        hit = Some(b.to_vec());
                        break;
                    }
                }
                if hit.is_none() {
                    for s in self.segments.iter().rev() {
                        if let Some(b) = s.seg.get(id)? {
                            hit = Some(b);
                            break;
                        }
                    }
                }
                hit
            }
        };
        let Some(body) = found else { return Ok(None) };
        let e = codec::decode_entry(&body)?;
        Ok(match e.op {
            Op::Delete(_) => None,
            Op::Put(_) => Some(e),
        })
    }

    /// Counts of the sources, for [`Stats`].
    pub(crate) fn counts(&self) -> SourceCounts {
        SourceCounts {
            segments: self.segments.len(),
            segment_rows: self.segments.iter().map(|s| s.seg.meta().rows).sum(),
            segment_bytes: self.segments.iter().map(|s| s.seg.meta().bytes).sum(),
            memtable_entries: self.active.read().len()
                + self.frozen.iter().map(|m| m.read().len()).sum::<usize>(),
        }
    }

    /// The sources oldest first; the active memtable, which writers may still be filling, is
    /// copied so a long scan sees one point in time without holding writers off.
    fn sources(self) -> Result<Vec<Source>> {
        let mut out: Vec<Source> = self.segments.into_iter().map(Source::Segment).collect();
        out.extend(self.frozen.into_iter().map(Source::Frozen));
        let a = self.active.read();
        let mut rows = Vec::with_capacity(a.len());
        let mut newest = HashMap::with_capacity(a.len());
        for b in a.iter() {
            let (seq, id, _) = codec::decode_key(b)?;
            newest.insert(id, seq);
            rows.push(b.to_vec());
        }
        out.push(Source::Active(ActiveCopy { rows, newest }));
        Ok(out)
    }

    /// Visits the live records of these sources (in `[from, to)` by timestamp when `range` is
    /// given) in sequence order until `visit` returns `false`.
    pub(crate) fn scan_filtered(
        self,
        range: Option<(i64, i64)>,
        visit: &mut dyn FnMut(Entry) -> Result<bool>,
    ) -> Result<()> {
        let sources = self.sources()?;
        let in_range = |e: &Entry| match (range, &e.op) {
            (None, _) => true,
            (Some((f, t)), Op::Put(r)) => r
                .timestamp_ns
                .is_some_and(|ts| quiver_core::in_time_range(ts, f, t)),
            (Some(_), Op::Delete(_)) => false,
        };
        for (i, src) in sources.iter().enumerate() {
            let newer = &sources[i + 1..];
            // Visits `body` if it is live: not a tombstone, in range, not overwritten by a
            // newer source. (Within its own source the caller passes only newest versions.)
            let mut emit = |body: &[u8]| -> Result<bool> {
                let e = codec::decode_entry(body)?;
                if matches!(e.op, Op::Delete(_)) || !in_range(&e) {
                    return Ok(true);
                }
                let id = e.op.id()?;
                for n in newer {
                    if n.holds(id)? {
                        return Ok(true);
                    }
                }
                visit(e)
            };
            let go_on = match src {
                Source::Segment(s) => {
                    let mut go = true;
                    let rows: Box<dyn Iterator<Item = _>> = match range {
                        Some((f, t)) => Box::new(s.seg.scan_time_range(f, t)),
                        None => Box::new(s.seg.iter()),
                    };
                    for row in rows {
                        let row = row?;
                        // Segments hold one version per id (flush and compaction keep the newest).
                        if !emit(&row)? {
                            go = false;
                            break;
                        }
                    }
                    go
                }
                Source::Frozen(m) => {
                    let m = m.read();
                    let mut go = true;
                    for b in m.iter() {
                        let (seq, id, _) = codec::decode_key(b)?;
                        if m.get_seq(&id) != Some(seq) {
                            continue;
                        }
                        if !emit(b)? {
                            go = false;
                            break;
                        }
                    }
                    go
                }
                Source::Active(a) => {
                    let mut go = true;
                    for b in &a.rows {
                        let (seq, id, _) = codec::decode_key(b)?;
                        if a.newest.get(&id) != Some(&seq) {
                            continue;
                        }
                        if !emit(b)? {
                            go = false;
                            break;
                        }
                    }
                    go
                }
            };
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}
