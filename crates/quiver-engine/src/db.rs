//! `Database`: open, write, close.

use crate::{
    background,
    leaves::LeafSequencer,
    manifest::{self, Manifest},
    state::{Applier, LiveSegment, Signal, State},
    EngineError, Result,
};
use parking_lot::{Mutex, RwLock};
use quiver_core::{codec, DbConfig, Op, SeqNo, SeqRange, SyncMode};
use quiver_ledger::{HashAlg, Ledger, LedgerConfig, Receipt};
use quiver_segment::{ChunkPool, Memtable, Segment};
use quiver_wal::{Batch, FsStorage, Wal};
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

/// Memtables sealed but not yet flushed before writers are stalled.
const MAX_FROZEN: usize = 2;

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) config: DbConfig,
    pub(crate) wal: Wal,
    pub(crate) ledger: Option<Arc<Ledger>>,
    /// Hashes committed batches on its own thread and appends the leaves in seq order (when
    /// the ledger is on).
    pub(crate) leaves: Option<LeafSequencer>,
    pub(crate) state: Arc<RwLock<State>>,
    /// Arena chunks of flushed memtables, reused by the next ones (see [`ChunkPool`]).
    pub(crate) chunks: Arc<ChunkPool>,
    pub(crate) applier: Arc<Applier>,
    pub(crate) flush_signal: Arc<Signal>,
    pub(crate) compact_signal: Signal,
    /// Serialises manifest edits (flush and compaction).
    pub(crate) manifest_lock: Mutex<()>,
    /// When the last flush (background or `Database::flush`) ended: the flush interval runs
    /// from there.
    pub(crate) last_flush: Mutex<std::time::Instant>,
    pub(crate) checkpoint_lock: Mutex<()>,
    /// One compaction at a time (background or asked for).
    pub(crate) compaction_lock: Mutex<()>,
    pub(crate) shutdown: AtomicBool,
    pub(crate) bg_error: Mutex<Option<String>>,
    /// Exclusive lock on `<data>/LOCK`, held while open.
    _lock: std::fs::File,
}

/// An open quiver data directory: the embedded API of the durable write path.
///
/// Writes go through the WAL's group commit; each committed group is appended to the ledger
/// and to the active memtable in seq order; background threads flush memtables to segments
/// and compact segments. Reads see a consistent snapshot.
pub struct Database {
    pub(crate) inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

/// Subdirectories of a data directory.
pub(crate) fn wal_dir(d: &Path) -> PathBuf {
    d.join("wal")
}
pub(crate) fn segments_dir(d: &Path) -> PathBuf {
    d.join("segments")
}
pub(crate) fn segment_path(d: &Path, id: u64) -> PathBuf {
    segments_dir(d).join(format!("{id:012}.seg"))
}

/// Takes the exclusive advisory lock on `<data>/LOCK` (released when the file closes, also
/// when the process dies), so two writers never share a data directory.
/// With no `CURRENT`, `open` creates a database; it must not create one over an existing
/// database whose `CURRENT` was lost (its next flush would overwrite segment 1). Creation
/// itself writes `LOCK` and a first `MANIFEST-*` before `CURRENT`, and everything else after
/// it: segment, WAL or ledger files or a drop log mean data is there.
fn refuse_to_recreate(dir: &Path) -> Result<()> {
    let found = data_found(dir)?;
    if found.is_empty() {
        return Ok(());
    }
    Err(EngineError::Manifest {
        path: dir.join("CURRENT"),
        reason: format!(
            "missing, but the directory holds {}: refusing to create a new database over \
             them (restore CURRENT, naming the newest MANIFEST-* file)",
            found.join(", ")
        ),
    })
}

/// What in `dir` shows a database was created there beyond its first manifest: segment, WAL
/// or ledger files, or a drop log (see [`refuse_to_recreate`]).
pub(crate) fn data_found(dir: &Path) -> Result<Vec<&'static str>> {
    let holds_files = |d: PathBuf| -> Result<bool> {
        match std::fs::read_dir(&d) {
            Ok(mut it) => Ok(it.next().is_some()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(EngineError::io(&d, e)),
        }
    };
    let found = [
        (segments_dir(dir), "segment files"),
        (wal_dir(dir), "WAL files"),
        (dir.join("ledger"), "ledger files"),
    ]
    .into_iter()
    .map(|(d, what)| holds_files(d).map(|has| has.then_some(what)))
    .collect::<Result<Vec<_>>>()?
    .into_iter()
    .flatten()
    .chain(crate::dropped::path(dir).exists().then_some("a drop log"))
    .collect::<Vec<_>>();
    Ok(found)
}

/// The WAL files of `dir` with the first seq their names give, oldest first.
pub(crate) fn wal_files(dir: &Path) -> Result<Vec<(SeqNo, PathBuf)>> {
    let wdir = wal_dir(dir);
    let mut files: Vec<(SeqNo, PathBuf)> = std::fs::read_dir(&wdir)
        .map_err(|e| EngineError::io(&wdir, e))?
        .flatten()
        .filter_map(|e| {
            let seq = quiver_wal::format::parse_file_name(e.file_name().to_str()?)?;
            Some((seq, e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// WAL recovery (rule 0) removes files at the end that hold nothing but zeros or part of a
/// header: creations a crash cut short, which never held records, as a file's header is
/// synced before its first record goes in. This drops those from `files` (sorted) the same
/// way, but stops at one whose seqs the ledger's `leaves` cover: records did go in and it was
/// emptied since. That file is returned, as damage.
pub(crate) fn drop_torn_creations(
    files: &mut Vec<(SeqNo, PathBuf)>,
    leaves: u64,
) -> Result<Option<(SeqNo, PathBuf)>> {
    while let Some((first, path)) = files.last() {
        if !quiver_wal::file_is_torn_creation(path).map_err(|e| EngineError::io(path, e))? {
            break;
        }
        if *first <= leaves {
            return Ok(Some((*first, path.clone())));
        }
        files.pop();
    }
    Ok(None)
}

/// Refuses to open over an emptied final WAL file whose records the ledger hashed (see
/// [`drop_torn_creations`]), which WAL recovery would otherwise remove with them.
fn refuse_emptied_wal_files(dir: &Path) -> Result<()> {
    let leaves = quiver_ledger::stored_leaf_count(&dir.join("ledger"))?;
    match drop_torn_creations(&mut wal_files(dir)?, leaves)? {
        None => Ok(()),
        Some((first, path)) => Err(EngineError::Wal(quiver_wal::WalError::Corruption {
            file: path.display().to_string(),
            offset: 0,
            reason: format!(
                "holds no records (empty, zeros or part of a header), but the ledger holds \
                 {leaves} leaves, from seq {first} on hashed from this file: its records \
                 are missing"
            ),
        })),
    }
}

/// Removes segment files the manifest does not name: left by a flush or compaction that failed
/// (or crashed) before its manifest swap, they are never read and would otherwise leak.
fn remove_unreferenced_segments(dir: &Path, m: &Manifest) -> Result<()> {
    let sdir = segments_dir(dir);
    let named: std::collections::HashSet<u64> = m.segments.iter().map(|e| e.id).collect();
    let mut removed = false;
    for entry in std::fs::read_dir(&sdir).map_err(|e| EngineError::io(&sdir, e))? {
        let entry = entry.map_err(|e| EngineError::io(&sdir, e))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .filter(|n| n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if !named.contains(&id) {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| EngineError::io(&p, e))?;
            removed = true;
        }
    }
    if removed {
        manifest::sync_dir(&sdir)?;
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(EngineError::io(&path, e)),
    }
}

fn alg_name(a: HashAlg) -> &'static str {
    match a {
        HashAlg::Blake3 => "blake3",
        HashAlg::Sha256 => "sha256",
    }
}

/// The ledger hash a new database gets from its configuration.
fn configured_alg(config: &DbConfig) -> HashAlg {
    match config.ledger_hash {
        quiver_core::LedgerHash::Sha256 => HashAlg::Sha256,
        quiver_core::LedgerHash::Blake3 => HashAlg::Blake3,
    }
}

impl Database {
    /// Opens (creating if needed) the data directory `dir`, recovering from the WAL.
    pub fn open(dir: impl AsRef<Path>, config: DbConfig) -> Result<Database> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        for d in [dir.clone(), wal_dir(&dir), segments_dir(&dir)] {
            quiver_ledger::create_dir_durable(&d).map_err(|e| match e {
                quiver_ledger::LedgerError::Io { path, source } => EngineError::Io { path, source },
                other => other.into(),
            })?;
        }
        let lock = lock_dir(&dir)?;
        let m = match manifest::load(&dir)? {
            Some(m) => m,
            None => {
                refuse_to_recreate(&dir)?;
                // The ledger's hash and origin are in the first manifest already, so that a
                // creation cut short before the ledger's files exist still says it has one.
                let m = Manifest {
                    version: 1,
                    next_segment_id: 1,
                    ledger_alg: config
                        .ledger
                        .then(|| alg_name(configured_alg(&config)).to_owned()),
                    db_id: config
                        .ledger
                        .then(|| format!("{:016x}", rand::random::<u64>())),
                    ..Default::default()
                };
                manifest::store(&dir, &m)?;
                m
            }
        };
        remove_unreferenced_segments(&dir, &m)?;
        let mut segments = Vec::with_capacity(m.segments.len());
        for e in &m.segments {
            let seg = Segment::open(&segment_path(&dir, e.id))?;
            segments.push(Arc::new(LiveSegment { id: e.id, seg }));
        }
        let flushed_through = m.flushed_through;
        let chunks = ChunkPool::new(config.memtable_bytes);
        let state = Arc::new(RwLock::new(State {
            active: Arc::new(RwLock::new(Memtable::with_pool(chunks.clone(), 0))),
            frozen: Vec::new(),
            segments,
            manifest: m,
        }));
        let flush_signal = Arc::new(Signal::default());
        let applier = Arc::new(Applier {
            state: state.clone(),
            memtable_bytes: config.memtable_bytes,
            flush: flush_signal.clone(),
            failed: AtomicBool::new(false),
        });
        if state.read().manifest.ledger_alg.is_some() {
            refuse_emptied_wal_files(&dir)?;
        }
        let storage = Arc::new(FsStorage::new(wal_dir(&dir))?);
        let wal = Wal::open(storage, config.wal.clone(), Some(applier.clone()))?;
        wal.set_next_seq_at_least(flushed_through + 1);
        // Leaves on disk before the open, which may forget a tail of zero leaves.
        let stored = Ledger::stored_size(&dir.join("ledger"))?;
        let ledger = open_ledger(&dir, &config, &state, wal.last_seq())?;
        if let Some(l) = &ledger {
            // A flush syncs the leaves of what it flushed before its manifest is stored.
            if l.size() < flushed_through && stored > l.size() {
                // The open forgot a tail of zero leaves as writes that never landed (see
                // `quiver_ledger::Ledger::open`), but the flush had synced them: damage.
                let leaves = dir.join("ledger").join("level-00.hashes");
                return Err(quiver_ledger::LedgerError::Corrupt {
                    file: leaves,
                    offset: 32 + 32 * l.size(),
                    reason: format!(
                        "leaf {} of {stored} reads as zeros, but the manifest's flushed_through \
                         {flushed_through} says a flush synced it: run `quiver verify`",
                        l.size() + 1
                    ),
                }
                .into());
            }
            if l.size() < flushed_through {
                return Err(EngineError::Manifest {
                    path: dir.join("CURRENT"),
                    reason: format!(
                        "flushed_through {flushed_through} is beyond the ledger's {} leaves: \
                         the manifest claims records that were never hashed",
                        l.size()
                    ),
                });
            }
        }
        if ledger.is_some() {
            crate::dropped::repair(&dir)?;
        }
        recover(&wal, &state, ledger.as_deref(), flushed_through)?;

        let poll = if config.wal.sync == SyncMode::None {
            crate::leaves::POLL_BEFORE_SLEEP
        } else {
            Duration::ZERO
        };
        let leaves = ledger
            .clone()
            .map(|l| LeafSequencer::new(l, poll))
            .transpose()?;
        let inner = Arc::new(Inner {
            dir,
            config,
            wal,
            ledger,
            leaves,
            state,
            chunks,
            applier,
            flush_signal,
            compact_signal: Signal::default(),
            manifest_lock: Mutex::new(()),
            last_flush: Mutex::new(std::time::Instant::now()),
            checkpoint_lock: Mutex::new(()),
            compaction_lock: Mutex::new(()),
            shutdown: AtomicBool::new(false),
            bg_error: Mutex::new(None),
            _lock: lock,
        });
        let threads = background::spawn(&inner)?;
        Ok(Database {
            inner,
            threads: Mutex::new(threads),
            closed: AtomicBool::new(false),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &DbConfig {
        &self.inner.config
    }

    /// The ledger, when enabled, once it holds the leaf of every write acknowledged so far
    /// (leaves are hashed just after the commit, see the crate docs; this waits for them).
    /// If appending leaves failed, the ledger is returned as it is and the failure surfaces
    /// on the next write, receipt or checkpoint.
    pub fn ledger(&self) -> Option<&Arc<Ledger>> {
        let ledger = self.inner.ledger.as_ref()?;
        let _caught_up = self.inner.wait_for_leaves(self.inner.wal.last_seq());
        Some(ledger)
    }

    /// Last committed sequence number (0 for an empty database).
    pub fn last_seq(&self) -> SeqNo {
        self.inner.wal.last_seq()
    }

    /// Validates, encodes and commits `ops` as one batch. Returns the acknowledged sequence
    /// range once the batch is durable per the preset. Nothing of an invalid batch is written.
    pub fn write_batch(&self, ops: &[Op]) -> Result<SeqRange> {
        if ops.is_empty() {
            return Err(quiver_core::CoreError::EmptyBatch.into());
        }
        let max = self.inner.config.max_payload_bytes;
        // A group leader may wait (up to the gather delay) for this writer while it encodes;
        // returning early withdraws it.
        let arrival = self.inner.wal.announce();
        // Encoded straight into the batch's frame buffer: one allocation per batch.
        let bytes = ops.iter().map(codec::encoded_len_hint).sum();
        let mut bodies = Batch::with_capacity(ops.len(), bytes);
        for op in ops {
            match op {
                Op::Put(r) => r.validate(None, max)?,
                Op::Delete(id) => id.validate()?,
            }
            bodies.push_with(|buf| codec::encode_op_into(op, buf))?;
        }
        self.check_healthy()?;
        self.stall_if_behind()?;
        let range = match &self.inner.leaves {
            Some(seqr) => {
                // The WAL hands the bodies back with their seqs stamped; the leaf thread
                // hashes them (see `leaves.rs`).
                let done = arrival.commit_returning(bodies)?;
                seqr.hash_later(done.range.first, done.batch)?;
                done.range
            }
            None => arrival.commit(bodies)?,
        };
        // Signed by the flush thread, off the writers' path. Without WAL syncs what may be
        // signed only grows when a flush lands, and the flush thread checks after each one.
        if self.inner.config.wal.sync != SyncMode::None && checkpoint_due(&self.inner) {
            self.inner.flush_signal.notify();
        }
        Ok(range)
    }

    /// Like [`write_batch`](Self::write_batch), and returns a receipt: the batch's range, the
    /// tree size and root that cover it and one Ed25519 signature for the whole batch.
    ///
    /// A receipt is a signed statement, so it covers only durable records whatever the
    /// preset: under `throughput` the WAL is synced first (as for a checkpoint), and the
    /// ledger's nodes and the receipt itself are synced before it is returned
    /// ([`Ledger::receipt_at`]).
    pub fn write_batch_with_receipt(&self, ops: &[Op]) -> Result<(SeqRange, Receipt)> {
        let ledger = self
            .inner
            .ledger
            .clone()
            .ok_or(EngineError::LedgerDisabled)?;
        let range = self.write_batch(ops)?;
        self.inner.wait_for_leaves(range.last)?;
        // Leaves are appended after their records were written, so once the WAL is synced
        // every leaf counted here is durable (the syncing presets append only durable ones).
        let size = ledger.size();
        if self.inner.config.wal.sync == SyncMode::None {
            self.inner.wal.sync()?;
        }
        let receipt = ledger.receipt_at(range.first, range.last, size)?;
        Ok((range, receipt))
    }

    fn check_healthy(&self) -> Result<()> {
        if self.inner.shutdown.load(Ordering::Acquire) {
            return Err(EngineError::Closed {
                reason: "database closed".into(),
            });
        }
        if let Some(e) = self.inner.bg_error.lock().as_ref() {
            return Err(EngineError::Closed {
                reason: format!("background task failed: {e}"),
            });
        }
        if self.inner.applier.failed.load(Ordering::Acquire) {
            return Err(EngineError::Closed {
                reason: "applying a committed group failed; reopen to recover from the WAL".into(),
            });
        }
        if let Some(leaves) = &self.inner.leaves {
            leaves.check()?;
        }
        Ok(())
    }

    /// Write stall: wait while too many sealed memtables await their flush.
    fn stall_if_behind(&self) -> Result<()> {
        loop {
            if self.inner.state.read().frozen.len() < MAX_FROZEN {
                return Ok(());
            }
            self.inner.flush_signal.notify();
            self.check_healthy()?;
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Flushes the active memtable to a segment now (and waits for it).
    pub fn flush(&self) -> Result<()> {
        self.check_healthy()?;
        background::flush_all(&self.inner)
    }

    /// Runs a compaction round now, merging segments when there are at least two.
    pub fn compact(&self) -> Result<()> {
        self.check_healthy()?;
        background::compact(&self.inner, true)
    }

    /// Signs a checkpoint over everything committed so far (syncing the WAL first under the
    /// `throughput` preset, so only durable data is covered).
    pub fn checkpoint(&self) -> Result<()> {
        self.check_healthy()?;
        let Some(ledger) = &self.inner.ledger else {
            return Err(EngineError::LedgerDisabled);
        };
        let _one = self.inner.checkpoint_lock.lock();
        // Leaves are appended after their records were written, so once the WAL is synced
        // every leaf counted here is durable.
        self.inner.wait_for_leaves(self.inner.wal.last_seq())?;
        let size = ledger.size();
        if self.inner.config.wal.sync == SyncMode::None {
            self.inner.wal.sync()?;
        }
        if size > 0 {
            ledger.checkpoint_at(size)?;
        }
        Ok(())
    }

    /// Stops background work and syncs the WAL and ledger with a final checkpoint, but leaves
    /// the memtable unflushed: the state a process crash right after a checkpoint leaves
    /// behind. For tests and tools that need records that live only in the WAL.
    pub fn close_without_flush(self) -> Result<()> {
        self.shutdown(false)?;
        self.seal_ledger()
    }

    /// Clean shutdown: stops background work, flushes the memtable, syncs the WAL, signs a
    /// final checkpoint and syncs the ledger.
    pub fn close(self) -> Result<()> {
        self.shutdown(true)
    }

    /// Syncs the WAL, waits for every leaf, signs a checkpoint over everything (all of it is
    /// durable once the WAL is synced) and syncs the ledger.
    fn seal_ledger(&self) -> Result<()> {
        self.inner.wal.sync()?;
        self.inner.wait_for_leaves(self.inner.wal.last_seq())?;
        if let Some(l) = &self.inner.ledger {
            let covered = l.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
            if l.size() > covered {
                l.checkpoint_at(l.size())?;
            }
            l.sync()?;
        }
        Ok(())
    }

    fn shutdown(&self, clean: bool) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.flush_signal.notify();
        self.inner.compact_signal.notify();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        if !clean {
            return Ok(());
        }
        if let Some(e) = self.inner.bg_error.lock().clone() {
            return Err(EngineError::Closed {
                reason: format!("background task failed: {e}"),
            });
        }
        background::flush_all(&self.inner)?;
        self.seal_ledger()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Best effort: a dropped database behaves like a clean close; errors are lost here,
        // call `close` to see them.
        let _ = self.shutdown(true);
    }
}

/// Signs a checkpoint over what is durable, without holding writers off: under `balanced`
/// and `durable` every appended leaf is (the commit observer runs after the group's fsync);
/// under `throughput` only what has been flushed to segments is.
impl Inner {
    /// Waits until the ledger holds every leaf up to `seq` (hashed after the commit, see
    /// `leaves.rs`).
    pub(crate) fn wait_for_leaves(&self, seq: SeqNo) -> Result<()> {
        match &self.leaves {
            Some(l) => l.wait_for(seq),
            None => Ok(()),
        }
    }
}

/// The most leaves a checkpoint may cover now: only durable records may be signed, and
/// without WAL syncs (`throughput`) records are durable once flushed to a segment.
fn checkpointable(inner: &Inner, ledger: &Ledger) -> SeqNo {
    match inner.config.wal.sync {
        SyncMode::None => inner
            .state
            .read()
            .manifest
            .flushed_through
            .min(ledger.size()),
        SyncMode::PerGroup | SyncMode::PerWrite => ledger.size(),
    }
}

/// Whether a checkpoint is due over what may be signed now (see [`checkpointable`]).
pub(crate) fn checkpoint_due(inner: &Inner) -> bool {
    inner
        .ledger
        .as_ref()
        .is_some_and(|l| l.checkpoint_due_at(checkpointable(inner, l)))
}

pub(crate) fn checkpoint_now(inner: &Inner) -> Result<()> {
    let Some(ledger) = &inner.ledger else {
        return Ok(());
    };
    let size = checkpointable(inner, ledger);
    let signed = ledger.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
    if size > signed {
        ledger.checkpoint_at(size)?;
    }
    Ok(())
}

/// Replays the WAL after the last flushed seq into the memtable, catching the ledger up on
/// records it has not hashed yet, and trimming ledger leaves the log no longer holds.
fn recover(
    wal: &Wal,
    state: &RwLock<State>,
    ledger: Option<&Ledger>,
    flushed: SeqNo,
) -> Result<()> {
    let st = state.read();
    let mut mt = st.active.write();
    let mut err: Option<EngineError> = None;
    wal.replay(flushed + 1, &mut |seq, body| {
        if let Some(l) = ledger {
            if seq > l.size() {
                if let Err(e) = l.append(seq, &[body]) {
                    let msg = e.to_string();
                    err = Some(e.into());
                    return Err(msg);
                }
            }
        }
        mt.insert_slice(body).map_err(|e| e.to_string())
    })
    .map_err(|e| err.take().unwrap_or(EngineError::Wal(e)))?;
    if let Some(l) = ledger {
        let last = wal.last_seq().max(flushed);
        if l.size() > last {
            // Leaves a signed checkpoint or receipt covers were durable when signed.
            let signed = l.signed_size();
            if signed > last {
                return Err(EngineError::LedgerAhead {
                    ledger_size: l.size(),
                    log_last: last,
                    checkpoint_size: signed,
                });
            }
            l.truncate(last)?;
        }
    }
    Ok(())
}

/// Opens the ledger if this database keeps one. A new database keeps one if `config` asks
/// for it; an existing one (one that has committed a record) keeps what it was created with,
/// and a `config` that disagrees is refused rather than followed: see
/// [`EngineError::LedgerSetting`].
fn open_ledger(
    dir: &Path,
    config: &DbConfig,
    state: &RwLock<State>,
    last_seq: SeqNo,
) -> Result<Option<Arc<Ledger>>> {
    let mut st = state.write();
    let m = &mut st.manifest;
    let created_with = m.ledger_alg.is_some();
    if last_seq > 0 && created_with != config.ledger {
        return Err(EngineError::LedgerSetting {
            path: dir.to_path_buf(),
            created: if created_with {
                "with a ledger"
            } else {
                "without a ledger"
            },
            requested: if config.ledger { "on" } else { "off" },
        });
    }
    if !config.ledger {
        if m.ledger_alg.take().is_some() {
            // Created with a ledger but still empty: from now on it keeps none.
            m.number += 1;
            manifest::store(dir, m)?;
        }
        return Ok(None);
    }
    let alg = match m.ledger_alg.as_deref() {
        Some("blake3") => HashAlg::Blake3,
        Some("sha256") => HashAlg::Sha256,
        Some(other) => {
            return Err(EngineError::Manifest {
                path: dir.join("CURRENT"),
                reason: format!("unknown ledger hash {other:?}"),
            })
        }
        None => configured_alg(config),
    };
    if m.ledger_alg.is_none() || m.db_id.is_none() {
        m.ledger_alg = Some(alg_name(alg).to_owned());
        m.db_id
            .get_or_insert_with(|| format!("{:016x}", rand::random::<u64>()));
        m.number += 1;
        manifest::store(dir, m)?;
    }
    let cfg = LedgerConfig {
        alg,
        origin: format!("quiver.local/{}", m.db_id.as_deref().unwrap_or("db")),
        checkpoint_every: config.checkpoint_every,
        checkpoint_interval: config.checkpoint_interval,
    };
    Ok(Some(Arc::new(Ledger::open(
        &dir.join("ledger"),
        &dir.join("keys"),
        cfg,
    )?)))
}
