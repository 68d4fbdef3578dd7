//! Background flush and compaction. Each runs on its own thread; writers are held up only
//! for the memtable swap (a pointer exchange under the state lock).

use crate::{
    db::{checkpoint_due, checkpoint_now, segment_path, segments_dir, Inner},
    manifest::{self, SegmentEntry},
    state::{LiveSegment, SharedMemtable},
    EngineError, Result,
};
use parking_lot::RwLock;
use quiver_core::{codec, Id};
use quiver_segment::{write_segment, Memtable, Segment, SegmentOptions};
use std::{
    sync::{atomic::Ordering, Arc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub(crate) fn spawn(inner: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>> {
    let mut v = Vec::new();
    let i = inner.clone();
    v.push(
        std::thread::Builder::new()
            .name("quiver-flush".into())
            .spawn(move || guarded(&i, "flush thread", flush_loop))
            .map_err(|e| EngineError::io(&inner.dir, e))?,
    );
    let i = inner.clone();
    v.push(
        std::thread::Builder::new()
            .name("quiver-compact".into())
            .spawn(move || guarded(&i, "compaction thread", compact_loop))
            .map_err(|e| EngineError::io(&inner.dir, e))?,
    );
    Ok(v)
}

/// Runs a background loop; a panic in it becomes the database's background failure, so
/// writers are refused instead of going on with nothing flushing behind them.
fn guarded(inner: &Inner, what: &str, body: fn(&Inner)) {
    let run = std::panic::AssertUnwindSafe(|| body(inner));
    if let Err(panic) = std::panic::catch_unwind(run) {
        let reason = format!("{what} panicked: {}", crate::panic_message(&*panic));
        inner.bg_error.lock().get_or_insert(reason);
    }
}

fn record_failure(inner: &Inner, what: &str, e: &EngineError) {
    let mut g = inner.bg_error.lock();
    if g.is_none() {
        *g = Some(format!("{what}: {e}"));
    }
}

fn flush_loop(inner: &Inner) {
    let tick = inner.config.flush_interval.min(Duration::from_millis(100));
    while !inner.shutdown.load(Ordering::Acquire) {
        inner.flush_signal.wait(tick);
        if inner.shutdown.load(Ordering::Acquire) {
            break;
        }
        let due = || {
            let st = inner.state.read();
            let size = st.active.read().approx_bytes();
            size >= inner.config.memtable_bytes
                || (size > 0 && inner.last_flush.lock().elapsed() >= inner.config.flush_interval)
                || !st.frozen.is_empty()
        };
        if due() {
            // Decided again under the manifest lock: a foreground `Database::flush` may have
            // flushed everything while this thread waited for the lock, and flushing the
            // records written since then would cut a segment nobody asked for.
            let flushed = {
                let _m = inner.manifest_lock.lock();
                if due() {
                    Some(flush_all_locked(inner))
                } else {
                    None
                }
            };
            match flushed {
                Some(Err(e)) => {
                    record_failure(inner, "flush", &e);
                    return;
                }
                Some(Ok(())) => inner.compact_signal.notify(),
                None => {}
            }
        }
        if checkpoint_due(inner) {
            if let Some(_g) = inner.checkpoint_lock.try_lock() {
                if let Err(e) = checkpoint_now(inner) {
                    record_failure(inner, "checkpoint", &e);
                    return;
                }
            }
        }
    }
}

fn compact_loop(inner: &Inner) {
    while !inner.shutdown.load(Ordering::Acquire) {
        inner.compact_signal.wait(Duration::from_millis(500));
        if inner.shutdown.load(Ordering::Acquire) {
            break;
        }
        if let Err(e) = compact(inner, false) {
            record_failure(inner, "compaction", &e);
            return;
        }
    }
}

/// Seals the active memtable (if not empty) and flushes every sealed memtable, oldest first.
pub(crate) fn flush_all(inner: &Inner) -> Result<()> {
    let _m = inner.manifest_lock.lock();
    flush_all_locked(inner)
}

/// [`flush_all`], for a caller that holds the manifest lock.
fn flush_all_locked(inner: &Inner) -> Result<()> {
    {
        // Sized like the memtable it replaces; built before the state lock that writers wait on.
        let rows = inner.state.read().active.read().len();
        let fresh = Arc::new(RwLock::new(Memtable::with_pool(inner.chunks.clone(), rows)));
        let mut st = inner.state.write();
        if !st.active.read().is_empty() {
            let old = std::mem::replace(&mut st.active, fresh);
            st.frozen.push(old);
        }
    }
    loop {
        let next = inner.state.read().frozen.first().cloned();
        let Some(mt) = next else {
            *inner.last_flush.lock() = Instant::now();
            return Ok(());
        };
        flush_one(inner, &mt)?;
    }
}

/// Writes one sealed memtable as a segment (newest version per id; tombstones kept only when
/// older data could still hold the id), then swaps the manifest and trims the WAL.
fn flush_one(inner: &Inner, mt: &SharedMemtable) -> Result<()> {
    let mt_r = mt.read();
    let Some(last_seq) = mt_r.last_seq() else {
        inner.state.write().frozen.retain(|m| !Arc::ptr_eq(m, mt));
        return Ok(());
    };
    let older_data_exists = !inner.state.read().segments.is_empty();
    // With no id written twice (the common case for event streams) every row is the newest
    // version and no entry needs decoding.
    let all_distinct = mt_r.distinct_ids() == mt_r.len();
    let mut rows: Vec<&[u8]> = Vec::with_capacity(mt_r.len());
    // Seqs whose rows this flush leaves out, for the drop log (`dropped.rs`).
    let mut dropped: Vec<u64> = Vec::new();
    for body in mt_r.iter() {
        if !all_distinct {
            let (seq, id, _) = codec::decode_key(body)?;
            if mt_r.get_seq(&id) != Some(seq) {
                dropped.push(seq);
                continue; // overwritten inside this memtable
            }
        }
        if codec::is_tombstone(body) && !older_data_exists {
            dropped.push(codec::peek_seq(body)?);
            continue; // a tombstone with nothing older to shadow
        }
        rows.push(body);
    }
    let dir = &inner.dir;
    let mut m = inner.state.read().manifest.clone();
    let mut new_seg = None;
    if !rows.is_empty() {
        let id = m.next_segment_id;
        m.next_segment_id += 1;
        let path = segment_path(dir, id);
        let meta = write_segment(&path, rows.iter(), &seg_options(inner))?;
        manifest::sync_dir(&segments_dir(dir))?;
        m.segments.push(SegmentEntry {
            id,
            rows: meta.rows,
            min_seq: meta.min_seq,
            max_seq: meta.max_seq,
            bytes: meta.bytes,
            oldest: m.segments.is_empty(),
        });
        new_seg = Some(Arc::new(LiveSegment {
            id,
            seg: Segment::open(&path)?,
        }));
    }
    drop(rows);
    drop(mt_r);
    // The ledger's leaves must be durable before the WAL records they were hashed from go,
    // and what this flush dropped must be on record before the manifest stops naming it.
    if let Some(l) = &inner.ledger {
        let r = (|| {
            inner.wait_for_leaves(last_seq)?;
            l.sync()?;
            dropped.sort_unstable();
            crate::dropped::append(dir, l, &dropped)
        })();
        if let Err(e) = r {
            // No manifest names the new segment yet: it would only leak.
            if let Some(s) = &new_seg {
                let _ = std::fs::remove_file(segment_path(dir, s.id));
            }
            return Err(e);
        }
    }
    m.flushed_through = last_seq;
    m.number += 1;
    manifest::store(dir, &m)?;
    {
        let mut st = inner.state.write();
        if let Some(s) = new_seg {
            st.segments.push(s);
        }
        st.frozen.retain(|x| !Arc::ptr_eq(x, mt));
        st.manifest = m;
    }
    inner.wal.remove_before(last_seq + 1)?;
    Ok(())
}

fn seg_options(inner: &Inner) -> SegmentOptions {
    SegmentOptions {
        block_bytes: inner.config.block_bytes,
        bloom_bits_per_key: inner.config.bloom_bits_per_key,
        compression: inner.config.compression,
    }
}

/// Live segments beyond which windows are merged whether or not merging reclaims anything,
/// as a multiple of `compaction_trigger`: bounds open files and per-read probes.
const MAX_LIVE_PER_TRIGGER: usize = 4;
/// Ids probed per pair of segments when deciding whether they share ids (see
/// [`Segment::shares_id_with`]); past this the pair counts as sharing.
const MAX_PROBES: usize = 16 << 10;

/// Picks the run of adjacent segments to merge. `force` merges everything (at least two).
/// Otherwise, once `compaction_trigger` segments are live, runs of half that many are tried
/// cheapest first and the first one that `worth` says merging would pay for is taken; when
/// none would, nothing is merged, unless `MAX_LIVE_PER_TRIGGER × trigger` segments are live,
/// when the cheapest run is merged regardless.
fn pick_window(
    sizes: &[u64],
    trigger: usize,
    force: bool,
    mut worth: impl FnMut(usize, usize) -> Result<bool>,
) -> Result<Option<(usize, usize)>> {
    let n = sizes.len();
    if force {
        return Ok((n >= 2).then_some((0, n)));
    }
    if n < trigger {
        return Ok(None);
    }
    let w = (trigger / 2).max(2);
    let mut starts: Vec<usize> = (0..=n - w).collect();
    // Stable: among equal costs the oldest run comes first.
    starts.sort_by_key(|&s| sizes[s..s + w].iter().sum::<u64>());
    if n >= MAX_LIVE_PER_TRIGGER * trigger {
        return Ok(starts.first().map(|&s| (s, s + w)));
    }
    for s in starts {
        if worth(s, s + w)? {
            return Ok(Some((s, s + w)));
        }
    }
    Ok(None)
}

/// Whether merging `segs[lo..hi]` would reclaim anything or make the segment set simpler: a
/// small segment in it (an early or interval flush), tombstones that the merge may drop (the
/// window starts at the oldest segment), or an id that a segment of the window shares with a
/// newer segment (inside the window or after it: the older version is dropped). Segments of
/// an append-only stream — ids rising with time, nothing overwritten — satisfy none of these
/// and are left as they are instead of being rewritten again and again (as RocksDB moves
/// non-overlapping files down a level without rewriting them).
fn worth_merging(segs: &[Arc<LiveSegment>], lo: usize, hi: usize, small: u64) -> Result<bool> {
    let window = &segs[lo..hi];
    if window.iter().any(|s| s.seg.meta().bytes < small) {
        return Ok(true);
    }
    if lo == 0 && window.iter().any(|s| s.seg.meta().may_hold_tombstones) {
        return Ok(true);
    }
    for (i, older) in window.iter().enumerate() {
        for newer in &segs[lo + i + 1..] {
            if newer.seg.shares_id_with(&older.seg, MAX_PROBES)? != Some(false) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// One compaction round: merges a window of adjacent segments into one, dropping rows that a
/// newer row overwrites (in the window or in any newer segment), and tombstones (with what
/// they shadow) when the window starts at the oldest segment.
pub(crate) fn compact(inner: &Inner, force: bool) -> Result<()> {
    let _one = inner.compaction_lock.lock();
    let segs = inner.state.read().segments.clone();
    let sizes: Vec<u64> = segs.iter().map(|s| s.seg.meta().bytes).collect();
    let small = inner.config.memtable_bytes as u64 / 4;
    let picked = pick_window(&sizes, inner.config.compaction_trigger, force, |lo, hi| {
        worth_merging(&segs, lo, hi, small)
    })?;
    let Some((lo, hi)) = picked else {
        return Ok(());
    };
    let window = &segs[lo..hi];
    let drop_tombstones = lo == 0;
    let id = {
        let _m = inner.manifest_lock.lock();
        let mut st = inner.state.write();
        let id = st.manifest.next_segment_id;
        st.manifest.next_segment_id += 1;
        id
    };
    let path = segment_path(&inner.dir, id);
    // Stream the window's rows into the new segment; the first error stops the stream and is
    // reported after the writer returns (the half-written file is then removed).
    let mut failure: Option<EngineError> = None;
    let mut any = false;
    // Seqs of the rows the merge leaves out, for the drop log (`dropped.rs`).
    let mut dropped: Vec<u64> = Vec::new();
    let rows = window
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.seg.iter().map(move |r| (i, r)));
    let kept = rows
        .map_while(|(i, row)| {
            if failure.is_some() {
                return None;
            }
            let keep = (|| -> Result<Option<Vec<u8>>> {
                let row = row?;
                let (seq, id, tombstone) = codec::decode_key(&row)?;
                // A segment holds one version per id (flush and compaction keep the newest),
                // so only newer segments can overwrite this row.
                if overwritten(&id, seq, &segs[lo + i + 1..])? || (drop_tombstones && tombstone) {
                    dropped.push(seq);
                    return Ok(None);
                }
                Ok(Some(row))
            })();
            match keep {
                Ok(v) => Some(v),
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        })
        .flatten()
        .inspect(|_| any = true);
    let written = write_segment(&path, kept, &seg_options(inner));
    if let Some(e) = failure {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    // Every row of the window may be dropped: then there is no new segment at all.
    let new_seg = if !any {
        let _ = std::fs::remove_file(&path);
        None
    } else {
        let meta = written?;
        manifest::sync_dir(&segments_dir(&inner.dir))?;
        Some((
            meta,
            Arc::new(LiveSegment {
                id,
                seg: Segment::open(&path)?,
            }),
        ))
    };
    if let Some(l) = &inner.ledger {
        dropped.sort_unstable();
        if let Err(e) = crate::dropped::append(&inner.dir, l, &dropped) {
            // No manifest names the new segment yet: it would only leak.
            if new_seg.is_some() {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
    }
    let _m = inner.manifest_lock.lock();
    let removed: Vec<u64> = window.iter().map(|s| s.id).collect();
    let mut m = inner.state.read().manifest.clone();
    let pos = m
        .segments
        .iter()
        .position(|e| e.id == removed[0])
        .ok_or_else(|| EngineError::Closed {
            reason: "compaction window vanished from the manifest".into(),
        })?;
    let oldest = m.segments[pos].oldest;
    let replacement: Vec<SegmentEntry> = new_seg
        .iter()
        .map(|(meta, s)| SegmentEntry {
            id: s.id,
            rows: meta.rows,
            min_seq: meta.min_seq,
            max_seq: meta.max_seq,
            bytes: meta.bytes,
            oldest,
        })
        .collect();
    m.segments.splice(pos..pos + removed.len(), replacement);
    if let Some(first) = m.segments.first_mut() {
        first.oldest = true;
    }
    m.number += 1;
    manifest::store(&inner.dir, &m)?;
    {
        let mut st = inner.state.write();
        let spos = st
            .segments
            .iter()
            .position(|s| s.id == removed[0])
            .unwrap_or(0);
        let repl: Vec<Arc<LiveSegment>> = new_seg.map(|(_, s)| s).into_iter().collect();
        st.segments.splice(spos..spos + removed.len(), repl);
        st.manifest = m;
    }
    for id in removed {
        let _ = std::fs::remove_file(segment_path(&inner.dir, id));
    }
    Ok(())
}

/// Whether a newer version of `id` than `seq` exists in `segs`, answered from the id ranges,
/// bloom filters and id indexes without reading data blocks.
fn overwritten(id: &Id, seq: u64, segs: &[Arc<LiveSegment>]) -> Result<bool> {
    for s in segs {
        let (lo, hi) = s.seg.id_range()?;
        if id < lo || id > hi {
            continue;
        }
        if s.seg.newest_seq(id)?.is_some_and(|n| n > seq) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::pick_window;

    fn pick(sizes: &[u64], trigger: usize, force: bool, worth: &[usize]) -> Option<(usize, usize)> {
        pick_window(sizes, trigger, force, |lo, _| Ok(worth.contains(&lo))).unwrap()
    }

    #[test]
    fn window_choice() {
        let all: Vec<usize> = (0..64).collect();
        assert_eq!(pick(&[1, 2, 3], 8, false, &all), None);
        assert_eq!(pick(&[1, 2], 8, true, &[]), Some((0, 2)));
        assert_eq!(pick(&[5], 8, true, &all), None);
        // Eight segments: the cheapest run of four.
        let eight = [100, 90, 1, 1, 1, 1, 50, 60];
        assert_eq!(pick(&eight, 8, false, &all), Some((2, 6)));
        // Only runs worth merging are taken, cheapest first; none worth it: no merge.
        assert_eq!(pick(&eight, 8, false, &[0, 4]), Some((4, 8)));
        assert_eq!(pick(&eight, 8, false, &[]), None);
        // Past 4 × trigger live segments the cheapest run is merged regardless.
        let many: Vec<u64> = (0..32).map(|i| 100 + (i as u64 % 5)).collect();
        assert_eq!(pick(&many, 8, false, &[]), Some((0, 4)));
        assert_eq!(pick(&many[..31], 8, false, &[]), None);
    }
}

#[cfg(test)]
mod policy_tests {
    use crate::Database;
    use quiver_core::{DbConfig, Id, Op, Preset, Record};

    fn batch(ids: std::ops::Range<u64>, tag: &str) -> Vec<Op> {
        ids.map(|i| {
            Op::Put(
                Record::new(i)
                    .with_timestamp(i as i64)
                    .with_payload(&serde_json::json!({ "tag": tag, "pad": "p".repeat(80) })),
            )
        })
        .collect()
    }

    fn segments(db: &Database) -> usize {
        db.stats().unwrap().segments
    }

    #[test]
    fn append_only_segments_are_not_rewritten_and_overlapping_ones_are() {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Throughput)
            .memtable_bytes(64 << 10)
            .compaction_trigger(4);
        let db = Database::open(d.path(), cfg).unwrap();
        // Eight segments of rising, disjoint ids (~25 KiB each, above the "small" quarter of
        // the memtable), with two batches whose id ranges interleave at one boundary, as
        // concurrent writers' batches do.
        for s in 0..8u64 {
            let base = s * 200;
            if s == 3 {
                db.write_batch(&batch(base + 100..base + 200, "a")).unwrap();
                db.write_batch(&batch(base..base + 100, "a")).unwrap();
            } else {
                db.write_batch(&batch(base..base + 200, "a")).unwrap();
            }
            db.flush().unwrap();
        }
        assert_eq!(segments(&db), 8);
        super::compact(&db.inner, false).unwrap();
        assert_eq!(segments(&db), 8, "nothing to reclaim: no segment rewritten");

        // Rewrite every id of the oldest segment: a window holding it is now worth merging
        // (though the newer versions sit in a segment outside every window with it), and
        // the merge drops the 200 old versions.
        db.write_batch(&batch(0..200, "b")).unwrap();
        db.flush().unwrap();
        let before = db.stats().unwrap();
        assert_eq!((before.segments, before.segment_rows), (9, 1800));
        super::compact(&db.inner, false).unwrap();
        let after = db.stats().unwrap();
        assert_eq!((after.segments, after.segment_rows), (8, 1600));
        let got = db.get(&Id::U64(5)).unwrap().unwrap();
        match got.op {
            Op::Put(r) => assert!(r.payload.unwrap().contains("\"b\"")),
            Op::Delete(_) => panic!("tombstone"),
        }
        assert_eq!(db.scan_all().unwrap().len(), 1600);
        super::compact(&db.inner, false).unwrap();
        assert_eq!(db.stats().unwrap().segments, 8, "nothing left to reclaim");
    }
}
