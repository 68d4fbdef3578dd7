//! `quiver verify`: re-derive every leaf of the ledger from the records still held and check
//! the whole tree, every checkpoint and its signature. Read-only: it opens nothing for
//! writing and runs no recovery, so what it reports is what is on disk.
//!
//! What is checked, in sequence order:
//! 1. every row of every live segment (rows carry their seq): seqs strictly increase, and the
//!    row's leaf hash `H(0x00 ‖ row)` equals the stored leaf hash;
//! 2. every WAL record: its frame CRC, its seq (contiguous within the log, no gap after the
//!    last flushed seq), and its leaf hash against the stored one;
//! 3. no stored leaf above the last flushed seq lacks its WAL record (a truncated or removed
//!    WAL file), and the ledger holds a leaf for every flushed seq (a flush syncs them first;
//!    zero leaves past the last signature count as never stored, see `Ledger::open`);
//! 4. the ledger itself ([`Ledger::verify_tree`]): every stored interior node, every
//!    checkpoint's root and signature, every receipt;
//! 5. each segment's id index and bloom filter, which are not record data but what lookups
//!    by id read ([`Segment::check_id_index`]: checksums, order, every entry pointing inside
//!    the data, the filter holding every indexed id), and each row's timestamp against its
//!    block's summary, which time-range scans skip blocks by;
//! 6. every seq up to the last flushed one that no segment holds is listed by a signed
//!    record of the drop log ([`crate::dropped`]).
//!
//! Segment rows that compaction or flush dropped (overwritten versions, tombstones with
//! nothing left to shadow) leave gaps below the last flushed seq; their leaves stay provable
//! from the stored leaf hashes. A gap is accepted only where the signed drop log
//! ([`crate::dropped`]) lists every seq in it: the manifest, which says what is flushed and
//! which segments are live, is only checksummed, so it cannot vouch for a gap itself.
//! Memory use is independent of the database size: rows and records are streamed, leaf
//! hashes read in chunks.

use crate::{
    db::{segment_path, wal_dir},
    manifest, EngineError, Result,
};
use quiver_core::{codec, SeqNo};
use quiver_ledger::{leaf_hashes, Hash, Ledger};
use quiver_segment::Segment;
use quiver_wal::format::{self as walfmt, Header};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The first thing that did not check out.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// Lowest sequence number affected.
    pub first_bad_seq: SeqNo,
    /// File holding the bad data.
    pub file: PathBuf,
    /// What does not match.
    pub reason: String,
}

/// Result of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Records re-hashed and compared (segment rows + WAL records).
    pub records: u64,
    /// Bytes of records re-hashed.
    pub bytes: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Leaves in the ledger.
    pub tree_size: u64,
    /// Root recomputed from the leaf hashes (hex).
    pub root: String,
    /// WAL records past the ledger's durable end (written, never hashed before a crash;
    /// the next open hashes them).
    pub unhashed_tail: u64,
    /// Leaves past the log's end that no signed checkpoint or receipt covers: hashed records
    /// a crash under `throughput` took from the WAL before they were synced (the next
    /// writable open drops them). Leaves a signed statement covers never count here: their
    /// records missing is a failure.
    pub leaves_past_log: u64,
    /// The first failure (lowest seq), if any.
    pub failure: Option<Failure>,
}

impl Report {
    /// True when everything checked out.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Records are hashed in batches of at most this many, in parallel; comparisons stay in seq
/// order.
const BATCH: usize = 16384;
/// ... and of at most about this many bytes of records (one more record may pass it), so that
/// the batches in flight (the one being read, those queued and the one being hashed) hold a
/// bounded amount of memory however large the records are.
const BATCH_BYTES: usize = 8 << 20;
/// Records per hashing task: up to 256, fewer when they are large, so that a batch of a few
/// large records is still hashed on every thread.
fn records_per_task(records: usize, bytes: usize) -> usize {
    const TASK_BYTES: usize = 1 << 20;
    (TASK_BYTES.saturating_mul(records) / bytes.max(1)).clamp(1, 256)
}

struct Queued {
    seq: SeqNo,
    file: usize,
    offset: u64,
    start: usize,
    end: usize,
}

/// A batch of records handed from the reader to the hasher.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    queue: Vec<Queued>,
    files: Vec<PathBuf>,
}

fn min_failure(a: Option<Failure>, b: Option<Failure>) -> Option<Failure> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.first_bad_seq < x.first_bad_seq {
            y
        } else {
            x
        }),
        (x, y) => x.or(y),
    }
}

/// The reader side: walks records in seq order, checks their order, queues them.
struct Checker<'a> {
    ledger: &'a Ledger,
    /// Seqs that flushes and compactions dropped, from the signed drop log.
    dropped: &'a roaring::RoaringTreemap,
    last_seq: SeqNo,
    records: u64,
    bytes: u64,
    /// See [`Report::leaves_past_log`].
    leaves_past_log: u64,
    failure: Option<Failure>,
    batch: Batch,
    to_hasher: std::sync::mpsc::SyncSender<Batch>,
    recycled: std::sync::mpsc::Receiver<Batch>,
}

impl Checker<'_> {
    fn fail(&mut self, seq: SeqNo, file: &Path, reason: String) {
        let f = Failure {
            first_bad_seq: seq,
            file: file.to_path_buf(),
            reason,
        };
        self.failure = min_failure(self.failure.take(), Some(f));
    }

    /// Checks one record's place in the sequence and queues it for hashing; returns false to
    /// stop (a failure makes later seqs moot).
    fn record(&mut self, body: &[u8], file: &Path, offset: u64) -> Result<bool> {
        let seq = match codec::peek_seq(body) {
            Ok(s) if s > 0 => s,
            _ => {
                let s = self.last_seq + 1;
                self.fail(
                    s,
                    file,
                    format!("record at byte {offset} has no valid sequence number"),
                );
                return Ok(false);
            }
        };
        if seq <= self.last_seq {
            self.fail(
                seq,
                file,
                format!(
                    "record at byte {offset} has seq {seq} after seq {}: out of order or duplicated",
                    self.last_seq
                ),
            );
            return Ok(false);
        }
        if !self.gap_dropped(self.last_seq + 1, seq - 1, file) {
            return Ok(false);
        }
        self.records += 1;
        self.bytes += body.len() as u64;
        self.last_seq = seq;
        let b = &mut self.batch;
        if b.files.last().map(PathBuf::as_path) != Some(file) {
            b.files.push(file.to_path_buf());
        }
        let start = b.buf.len();
        b.buf.extend_from_slice(body);
        b.queue.push(Queued {
            seq,
            file: b.files.len() - 1,
            offset,
            start,
            end: b.buf.len(),
        });
        if b.queue.len() >= BATCH || b.buf.len() >= BATCH_BYTES {
            self.drain();
        }
        Ok(self.failure.is_none())
    }

    /// Whether every seq of `a..=b`, which no segment or WAL record holds, is one a flush or
    /// compaction dropped (a signed drop-log record lists it); a failure otherwise.
    fn gap_dropped(&mut self, a: SeqNo, b: SeqNo, file: &Path) -> bool {
        match crate::dropped::first_not_dropped(self.dropped, a, b) {
            None => true,
            Some(s) => {
                self.fail(
                    s,
                    file,
                    format!(
                        "seq {s} is missing: no segment or WAL record holds it and no signed \
                         drop-log record says a flush or compaction dropped it"
                    ),
                );
                false
            }
        }
    }

    /// Hands the queued records to the hasher and continues reading meanwhile.
    fn drain(&mut self) {
        if self.batch.queue.is_empty() {
            return;
        }
        let mut next = self.recycled.try_recv().unwrap_or_default();
        next.buf.clear();
        next.queue.clear();
        next.files.clear();
        let full = std::mem::replace(&mut self.batch, next);
        // The hasher only stops early by dropping its receiver after returning.
        let _ = self.to_hasher.send(full);
    }
}

/// The hasher side: leaf hashes of each batch in parallel, compared in seq order with the
/// stored leaves (streamed forward).
struct Hasher<'a> {
    ledger: &'a Ledger,
    leaves: quiver_ledger::LeafHashes<'a>,
    next_leaf: u64,
    unhashed: u64,
    failure: Option<Failure>,
    /// Threads that hash chunks of a batch in parallel; `None` where none could be started
    /// (a thread limit): then this thread hashes every chunk.
    pool: Option<rayon::ThreadPool>,
}

impl Hasher<'_> {
    fn stored_leaf(&mut self, index: u64) -> Result<Option<Hash>> {
        if index < self.next_leaf {
            return Ok(Some(self.ledger.leaf_hash_at(index)?));
        }
        while self.next_leaf < index {
            if self.leaves.next().transpose()?.is_none() {
                return Ok(None);
            }
            self.next_leaf += 1;
        }
        let h = self.leaves.next().transpose()?;
        if h.is_some() {
            self.next_leaf += 1;
        }
        Ok(h)
    }

    fn check(&mut self, b: &Batch) -> Result<()> {
        use rayon::prelude::*;
        let alg = self.ledger.alg();
        // Chunks of up to 256 records per rayon task; inside one, BLAKE3 hashes 16 at a time.
        let chunk = |qs: &[Queued]| {
            let bodies: Vec<&[u8]> = qs.iter().map(|q| &b.buf[q.start..q.end]).collect();
            leaf_hashes(alg, &bodies)
        };
        let per_task = records_per_task(b.queue.len(), b.buf.len());
        let hashes: Vec<Hash> = match &self.pool {
            Some(pool) => {
                pool.install(|| b.queue.par_chunks(per_task).flat_map_iter(chunk).collect())
            }
            None => b.queue.chunks(per_task).flat_map(chunk).collect(),
        };
        for (q, got) in b.queue.iter().zip(hashes) {
            match self.stored_leaf(q.seq - 1)? {
                None => self.unhashed += 1,
                Some(stored) if stored != got => {
                    let f = Failure {
                        first_bad_seq: q.seq,
                        file: b.files[q.file].clone(),
                        reason: format!(
                            "record at byte {}: leaf hash {} differs from the stored leaf {}",
                            q.offset,
                            got.to_hex(),
                            stored.to_hex()
                        ),
                    };
                    self.failure = min_failure(self.failure.take(), Some(f));
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Whether the directory holds no record anywhere: no segment, nothing flushed, no drop log,
/// no WAL file with anything but its header (and zeros), and no ledger file (leaf hashes,
/// checkpoints, receipts) with anything past its header. Only then can missing ledger files
/// be a creation cut short rather than damage: a creation cut short never hashed or signed
/// anything.
fn holds_no_records(dir: &Path, m: &manifest::Manifest) -> Result<bool> {
    if !m.segments.is_empty() || m.flushed_through > 0 || crate::dropped::path(dir).exists() {
        return Ok(false);
    }
    // Bytes past `skip` that are not zero, in `path`.
    // (Read in pieces: a leaf-hash file can be large, and verify's memory does not grow with
    // the database.)
    let data_past = |path: &Path, skip: usize| -> Result<bool> {
        use std::io::Read;
        let io = |e| EngineError::io(path, e);
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0usize;
        loop {
            let n = f.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Ok(false);
            }
            let from = skip.saturating_sub(at).min(n);
            if buf[from..n].iter().any(|&b| b != 0) {
                return Ok(true);
            }
            at += n;
        }
    };
    let files = match crate::db::wal_files(dir) {
        Ok(f) => f,
        Err(EngineError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    for (_, path) in files {
        if data_past(&path, walfmt::HEADER_LEN)? {
            return Ok(false);
        }
    }
    // Every ledger file's header is at most 32 bytes, and its first record (a leaf hash, a
    // checkpoint or a receipt) reaches past that. `ledger.meta` (and its temporary file) is
    // written at creation.
    let ledger = dir.join("ledger");
    if let Ok(entries) = std::fs::read_dir(&ledger) {
        for e in entries.flatten() {
            let path = e.path();
            let meta = e.file_name().to_string_lossy().starts_with("ledger.meta");
            if !meta && path.is_file() && data_past(&path, 32)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Verifies the data directory `dir`. `progress` receives the records checked so far, then
/// the ledger's own progress.
pub fn verify_dir(dir: &Path, progress: &mut dyn FnMut(u64)) -> Result<Report> {
    // A missing directory is an I/O error on it, not a damaged manifest inside it.
    std::fs::metadata(dir).map_err(|e| EngineError::io(dir, e))?;
    let Some(m) = manifest::load(dir)? else {
        // `open` takes `LOCK` before it writes the first manifest and `CURRENT`, and creates
        // everything else after: with `LOCK` there and nothing else, the first open was cut
        // short, and the next one completes it (the same rule as `Database::open` applies).
        if dir.join("LOCK").exists() && crate::db::data_found(dir)?.is_empty() {
            return Err(EngineError::IncompleteCreation {
                path: dir.to_path_buf(),
                reason: "no CURRENT".into(),
            });
        }
        return Err(EngineError::Manifest {
            path: dir.join("CURRENT"),
            reason: "not a quiver data directory (no CURRENT)".into(),
        });
    };
    // A database created without a ledger has nothing to prove its records against.
    if m.ledger_alg.is_none() {
        return Err(EngineError::LedgerDisabled);
    }
    let ledger = match Ledger::open_read_only(&dir.join("ledger"), &dir.join("keys")) {
        Ok(l) => l,
        Err(e) if holds_no_records(dir, &m)? => {
            return Err(EngineError::IncompleteCreation {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let (dropped, drop_damage) =
        match crate::dropped::read(dir, &ledger.public_key(), ledger.origin())? {
            Ok(set) => (set, None),
            Err(d) => (roaring::RoaringTreemap::new(), Some(d)),
        };
    // The ledger's own audit (every interior node, checkpoint and signature) is independent
    // of the record check: run them side by side.
    let tree_ledger = Ledger::open_read_only(&dir.join("ledger"), &dir.join("keys"))?;
    // Where no thread can be started (a thread limit), each part runs here in turn instead.
    let tree_thread = std::thread::Builder::new()
        .name("quiver-verify-tree".into())
        .spawn(move || tree_ledger.verify_tree(&mut |_| {}))
        .ok();
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("quiver-verify-{i}"))
        .build()
        .ok();
    let (to_hasher, batches) = std::sync::mpsc::sync_channel::<Batch>(4);
    let (recycle, recycled) = std::sync::mpsc::channel::<Batch>();
    let hasher_ledger = &ledger;
    std::thread::scope(|scope| -> Result<Report> {
        let hasher = std::thread::Builder::new()
            .name("quiver-verify-hash".into())
            .spawn_scoped(scope, move || -> Result<Hasher<'_>> {
                let mut h = Hasher {
                    ledger: hasher_ledger,
                    leaves: hasher_ledger.leaf_hashes(0),
                    next_leaf: 0,
                    unhashed: 0,
                    failure: None,
                    pool,
                };
                for b in batches {
                    if h.failure.is_none() {
                        h.check(&b)?;
                    }
                    let _ = recycle.send(b);
                }
                Ok(h)
            })
            .map_err(|e| EngineError::Closed {
                reason: format!("cannot start the leaf hashing thread: {e}"),
            })?;
        let mut c = Checker {
            ledger: &ledger,
            dropped: &dropped,
            last_seq: 0,
            records: 0,
            bytes: 0,
            leaves_past_log: 0,
            failure: None,
            batch: Batch::default(),
            to_hasher,
            recycled,
        };
        // A damaged drop log vouches for nothing: said first, as the reason gaps fail.
        if let Some(d) = &drop_damage {
            c.fail(
                1,
                &crate::dropped::path(dir),
                format!("drop log at byte {}: {}", d.offset, d.reason),
            );
        }
        'segments: for e in &m.segments {
            let path = segment_path(dir, e.id);
            let seg = match Segment::open(&path) {
                Ok(s) => s,
                Err(err) => {
                    let s = c.last_seq + 1;
                    c.fail(
                        s.max(e.min_seq),
                        &path,
                        format!("segment does not open: {err}"),
                    );
                    break 'segments;
                }
            };
            let mut rows = seg.iter();
            let mut i = 0u64;
            while let Some(row) = rows.next_ref() {
                let row = match row {
                    Ok(r) => r,
                    Err(err) => {
                        let s = c.last_seq + 1;
                        c.fail(s, &path, format!("segment row {i}: {err}"));
                        break 'segments;
                    }
                };
                if !c.record(row, &path, i)? {
                    break 'segments;
                }
                i += 1;
                if c.records.is_multiple_of(65536) {
                    progress(c.records);
                }
            }
            // Not record data, but what `get` reads: a damaged id index would fail lookups
            // of this segment's ids, so it fails verification (at the segment's lowest seq).
            if let Err(err) = seg.check_id_index() {
                c.fail(
                    seg.meta().min_seq,
                    &path,
                    format!("segment id index: {err}"),
                );
                break 'segments;
            }
        }
        c.drain();
        if c.failure.is_none() {
            check_wal(dir, m.flushed_through, &mut c, progress)?;
            c.drain();
        }
        // A flush syncs the leaves of what it flushed before its manifest names it, so fewer
        // leaves than that are damage: leaves lost, or read as zeros (which the ledger's open
        // forgets past its last signature, as writes that never landed).
        if c.ledger.size() < m.flushed_through {
            let size = c.ledger.size();
            c.fail(
                size + 1,
                &dir.join("ledger").join("level-00.hashes"),
                format!(
                    "the ledger holds {size} leaves (the rest missing or zeros), but the \
                     manifest's flushed_through {} says a flush synced them",
                    m.flushed_through
                ),
            );
        }
        // Everything up to the flushed seq is in a segment or was dropped, WAL or not.
        if c.failure.is_none() && c.last_seq < m.flushed_through {
            let (from, to) = (c.last_seq + 1, m.flushed_through);
            c.gap_dropped(from, to, &dir.join("CURRENT"));
        }
        progress(c.records);
        let Checker {
            to_hasher,
            failure,
            records,
            bytes,
            leaves_past_log,
            ..
        } = c;
        drop(to_hasher);
        let h = hasher.join().map_err(|_| EngineError::Closed {
            reason: "leaf hasher panicked".into(),
        })??;
        let mut failure = min_failure(failure, h.failure);
        let tree = match tree_thread {
            Some(t) => t.join().map_err(|_| EngineError::Closed {
                reason: "tree audit panicked".into(),
            })??,
            None => ledger.verify_tree(&mut |_| {})?,
        };
        if let Some(f) = tree.failure {
            // A bad interior node implicates every leaf below it; when the records pinned
            // down a bad leaf among them, that leaf is the precise answer.
            let first = f.first_bad_index + 1;
            let last = f.first_bad_index.saturating_add(f.span.max(1));
            let pinned = failure
                .as_ref()
                .is_some_and(|r| (first..=last).contains(&r.first_bad_seq));
            if !pinned {
                let f = Failure {
                    first_bad_seq: first,
                    file: f.file,
                    reason: f.reason,
                };
                failure = min_failure(failure, Some(f));
            }
        }
        Ok(Report {
            records,
            bytes,
            checkpoints: tree.checkpoints,
            tree_size: tree.size,
            root: tree.root.to_hex(),
            unhashed_tail: h.unhashed,
            leaves_past_log,
            failure,
        })
    })
}

/// Reads the file at `path` into `buf`, replacing what it held and keeping its capacity.
fn read_whole(path: &Path, buf: &mut Vec<u8>) -> Result<()> {
    use std::io::Read;
    buf.clear();
    let mut f = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let len = f.metadata().map_err(|e| EngineError::io(path, e))?.len();
    buf.reserve(usize::try_from(len).unwrap_or(0));
    f.read_to_end(buf).map_err(|e| EngineError::io(path, e))?;
    Ok(())
}

fn check_wal(
    dir: &Path,
    flushed: SeqNo,
    c: &mut Checker<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let wdir = wal_dir(dir);
    let mut files = crate::db::wal_files(dir)?;
    // Files at the end whose creation a crash cut short hold no records; recovery removes
    // them, so they are no damage here either, unless the ledger hashed records from one
    // (refused at open too).
    if let Some((first, path)) = crate::db::drop_torn_creations(&mut files, c.ledger.size())? {
        c.fail(
            first,
            &path,
            "holds no records (empty, zeros or part of a header), but the ledger holds leaves \
             of its seqs: the records hashed from it are missing"
                .into(),
        );
        return Ok(());
    }
    // WAL records are consecutive across files. Records at or below the flushed seq may
    // linger in the oldest file; they are checked against their stored leaves too.
    let mut prev: Option<SeqNo> = None;
    let nfiles = files.len();
    // One buffer for every file: a fresh one per file (up to `wal.file_size` each) would be
    // paged in again from scratch, which cost ~15 % of a WAL-only verify.
    let mut buf = Vec::new();
    for (fi, (_, path)) in files.iter().enumerate() {
        read_whole(path, &mut buf)?;
        let buf = &buf[..];
        let name = path.display().to_string();
        let expect = |prev: Option<SeqNo>| prev.map_or(flushed + 1, |p| p + 1);
        let mut copies: Vec<FlushedCopy> = Vec::new();
        let stopped = 'file: {
            if let Err(e) = Header::decode(&name, buf) {
                c.fail(expect(prev), path, format!("bad WAL header: {e}"));
                break 'file true;
            }
            // Frames of intact groups, seqs unchecked by the walk: checked here, to name the
            // first bad one.
            let mut stopped = false;
            let mut failure: Option<EngineError> = None;
            let mut visit = |off: usize, body: &[u8]| -> quiver_wal::Result<()> {
                let halt = || quiver_wal::WalError::Replay {
                    seq: 0,
                    reason: "stopped".into(),
                };
                let start = off + walfmt::FRAME_HEADER_LEN;
                let seq = codec::peek_seq(body).unwrap_or(0);
                match prev {
                    Some(p) if seq != p + 1 => {
                        c.fail((p + 1).min(seq.max(1)), path, format!("frame at byte {off} holds seq {seq} after seq {p}: records missing, reordered or inserted"));
                        stopped = true;
                        return Err(halt());
                    }
                    None if seq > flushed + 1 => {
                        c.fail(flushed + 1, path, format!("the log starts at seq {seq} but only seqs up to {flushed} are flushed: records missing"));
                        stopped = true;
                        return Err(halt());
                    }
                    _ => {}
                }
                prev = Some(seq);
                if seq <= flushed {
                    // Already covered by segments (or dropped as an overwritten version): this
                    // copy is checked against its stored leaf too, in batches after the walk.
                    copies.push(FlushedCopy {
                        seq,
                        offset: off,
                        body: start..start + body.len(),
                    });
                } else {
                    match c.record(body, path, off as u64) {
                        Ok(true) => {}
                        Ok(false) => {
                            stopped = true;
                            return Err(halt());
                        }
                        Err(e) => {
                            failure = Some(e);
                            return Err(halt());
                        }
                    }
                }
                if c.records.is_multiple_of(65536) {
                    progress(c.records);
                }
                Ok(())
            };
            let walked = quiver_wal::walk_groups(&name, buf, false, &mut visit);
            if let Some(e) = failure {
                return Err(e);
            }
            if stopped {
                break 'file true;
            }
            let damage = match walked {
                Ok(w) => w.damage.map(|d| {
                    let verdict = quiver_wal::torn_verdict(buf, &d);
                    (d.at, d.reason, verdict)
                }),
                Err(quiver_wal::WalError::Corruption { offset, reason, .. }) => {
                    Some((offset as usize, reason, Err(String::new())))
                }
                Err(e) => return Err(e.into()),
            };
            if let Some((at, reason, verdict)) = damage {
                // A torn final group was never acknowledged: recovery cuts it, and so it is no
                // damage here.
                if fi + 1 != nfiles || verdict.is_err() {
                    let why = verdict.err().filter(|w| !w.is_empty());
                    let reason = match why {
                        Some(w) => format!("{reason}, {w}"),
                        None => reason,
                    };
                    c.fail(
                        expect(prev),
                        path,
                        format!("WAL damaged at byte {at}: {reason}"),
                    );
                    break 'file true;
                }
            }
            false
        };
        let copies_ok = check_flushed_copies(c, path, buf, &copies)?;
        if stopped || !copies_ok {
            return Ok(());
        }
    }
    let expect = prev.map_or(flushed + 1, |p| p + 1);
    let size = c.ledger.size();
    if expect <= size && expect > flushed {
        // Recovery's rule: leaves were durable when a checkpoint or receipt signed them, so
        // their records cannot have been lost to a crash; unsigned ones can (`throughput`).
        let signed = c.ledger.signed_size();
        if expect <= signed {
            c.fail(
                expect,
                &wdir,
                format!(
                    "the ledger holds {size} leaves but the log ends at seq {}: records a \
                     signed checkpoint or receipt covers (up to seq {signed}) are missing",
                    expect - 1
                ),
            );
        } else {
            c.leaves_past_log = size - (expect - 1);
        }
    }
    Ok(())
}

/// A WAL copy of a record at or below the manifest's flushed seq, found by the WAL walk.
struct FlushedCopy {
    seq: SeqNo,
    /// The frame's byte offset in its file.
    offset: usize,
    /// The record body's byte range in the file.
    body: std::ops::Range<usize>,
}

/// Checks WAL copies of already flushed records (consecutive seqs, in order) against their
/// stored leaves, hashed in batches; false after a mismatch (recorded as a failure). Copies
/// beyond the ledger's size have no stored leaf to compare with.
fn check_flushed_copies(
    c: &mut Checker<'_>,
    path: &Path,
    buf: &[u8],
    copies: &[FlushedCopy],
) -> Result<bool> {
    const CHUNK: usize = 4096;
    let alg = c.ledger.alg();
    let size = c.ledger.size();
    let within = copies.partition_point(|q| q.seq <= size);
    for run in copies[..within].chunks(CHUNK) {
        let bodies: Vec<&[u8]> = run.iter().map(|q| &buf[q.body.clone()]).collect();
        let got = leaf_hashes(alg, &bodies);
        let stored = c.ledger.leaf_hashes(run[0].seq - 1).take(run.len());
        for ((q, got), stored) in run.iter().zip(got).zip(stored) {
            if got != stored? {
                c.fail(
                    q.seq,
                    path,
                    format!(
                        "record at byte {}: leaf hash differs from the stored leaf",
                        q.offset
                    ),
                );
                return Ok(false);
            }
        }
    }
    Ok(true)
}
