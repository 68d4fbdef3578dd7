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
            .spawn(move || flush_loop(&i))
            .map_err(|e| EngineError::io(&inner.dir, e))?,
    );
    let i = inner.clone();
    v.push(
        std::thread::Builder::new()
            .name("quiver-compact".into())
            .spawn(move || compact_loop(&i))
            .map_err(|e| EngineError::io(&inner.dir, e))?,
    );
    Ok(v)
}

fn record_failure(inner: &Inner, what: &str, e: &EngineError) {
    let mut g = inner.bg_error.lock();
    if g.is_none() {
        *g = Some(format!("{what}: {e}"));
    }
}

fn flush_loop(inner: &Inner) {
    let mut last_flush = Instant::now();
    let tick = inner.config.flush_interval.min(Duration::from_millis(100));
    while !inner.shutdown.load(Ordering::Acquire) {
        inner.flush_signal.wait(tick);
        if inner.shutdown.load(Ordering::Acquire) {
            break;
        }
        let (size, frozen) = {
            let st = inner.state.read();
            let n = st.active.read().approx_bytes();
            (n, st.frozen.len())
        };
        let due = size >= inner.config.memtable_bytes
            || (size > 0 && last_flush.elapsed() >= inner.config.flush_interval)
            || frozen > 0;
        if due {
            if let Err(e) = flush_all(inner) {
                record_failure(inner, "flush", &e);
                return;
            }
            last_flush = Instant::now();
            inner.compact_signal.notify();
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
        let Some(mt) = next else { return Ok(()) };
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
    for body in mt_r.iter() {
        if !all_distinct {
            let (seq, id, _) = codec::decode_key(body)?;
            if mt_r.get_seq(&id) != Some(seq) {
                continue; // overwritten inside this memtable
            }
        }
        if is_tombstone(body) && !older_data_exists {
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
    // The ledger's leaves must be durable before the WAL records they were hashed from go.
    if let Some(l) = &inner.ledger {
        inner.wait_for_leaves(last_seq)?;
        l.sync()?;
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

/// The tombstone bit of an encoded entry's flags byte (see `docs/format/entry.md`).
fn is_tombstone(body: &[u8]) -> bool {
    body.get(codec::SEQ_PREFIX).is_some_and(|f| f & 1 == 1)
}

fn seg_options(inner: &Inner) -> SegmentOptions {
    SegmentOptions {
        block_bytes: inner.config.block_bytes,
        bloom_bits_per_key: inner.config.bloom_bits_per_key,
        compression: inner.config.compression,
    }
}

/// Picks the run of adjacent segments to merge: `force` merges everything (at least two),
/// otherwise once `compaction_trigger` segments are live, the cheapest run of half that many.
fn pick_window(sizes: &[u64], trigger: usize, force: bool) -> Option<(usize, usize)> {
    let n = sizes.len();
    if force {
        return (n >= 2).then_some((0, n));
    }
    if n < trigger {
        return None;
    }
    let w = (trigger / 2).max(2);
    (0..=n - w)
        .min_by_key(|&s| sizes[s..s + w].iter().sum::<u64>())
        .map(|s| (s, s + w))
}

/// One compaction round: merges a window of adjacent segments into one, dropping rows that a
/// newer row in the window overwrites, and tombstones (with what they shadow) when the window
/// starts at the oldest segment.
pub(crate) fn compact(inner: &Inner, force: bool) -> Result<()> {
    let _one = inner.compaction_lock.lock();
    let segs = inner.state.read().segments.clone();
    let sizes: Vec<u64> = segs.iter().map(|s| s.seg.meta().bytes).collect();
    let Some((lo, hi)) = pick_window(&sizes, inner.config.compaction_trigger, force) else {
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
                // so only the newer segments of the window can overwrite this row.
                if overwritten(&id, seq, &window[i + 1..])? {
                    return Ok(None);
                }
                if drop_tombstones && tombstone {
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

/// Whether a newer version of `id` than `seq` exists in `segs`, answered from the bloom
/// filters and id indexes without reading data blocks.
fn overwritten(id: &Id, seq: u64, segs: &[Arc<LiveSegment>]) -> Result<bool> {
    for s in segs {
        if s.seg.newest_seq(id)?.is_some_and(|n| n > seq) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::pick_window;

    #[test]
    fn window_choice() {
        assert_eq!(pick_window(&[1, 2, 3], 8, false), None);
        assert_eq!(pick_window(&[1, 2], 8, true), Some((0, 2)));
        assert_eq!(pick_window(&[5], 8, true), None);
        // Eight segments: the cheapest run of four.
        assert_eq!(
            pick_window(&[100, 90, 1, 1, 1, 1, 50, 60], 8, false),
            Some((2, 6))
        );
    }
}
