//! [`ReadOnlyDatabase`]: a data directory opened for reading only, like RocksDB's
//! `OpenForReadOnly`.

use crate::{
    db::{segment_path, wal_dir},
    manifest::{self, Manifest},
    read::Stats,
    state::{LiveSegment, SharedMemtable, Snapshot},
    Database, EngineError, Result,
};
use parking_lot::RwLock;
use quiver_core::SeqNo;
use quiver_ledger::Ledger;
use quiver_segment::{Memtable, Segment, SegmentError};
use quiver_wal::{FsStorage, LogView, WalError};
use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

/// Attempts at loading a consistent snapshot before a directory that keeps changing under
/// the reader is reported as [`EngineError::ConcurrentChange`].
pub const READ_ONLY_OPEN_ATTEMPTS: u32 = 8;

/// A data directory opened for reading only: a consistent snapshot of what was committed
/// when it was opened, like RocksDB's `OpenForReadOnly`.
///
/// [`ReadOnlyDatabase::open`] (or [`Database::open_read_only`]) takes no lock and writes
/// nothing: no file or directory is created, renamed, truncated or deleted, no file is
/// opened for writing, no thread is started. It loads the manifest, opens the segments it
/// names and replays the WAL records after the manifest's `flushed_through` into a private
/// memtable; a torn final group is skipped in memory, not cut off. So it works beside a
/// [`Database`] (this process or another) that has the directory open and is writing, and on
/// a directory it may not write to.
///
/// Reads ([`get`](Self::get), [`scan`](Self::scan), [`scan_time_range`](Self::scan_time_range),
/// [`scan_all`](Self::scan_all)) run the same code as [`Database`]'s: the newest version of an
/// id wins and deleted ids are not returned. They see the records committed before the open
/// and nothing committed after it (open again to see more). Segments stay open (by file
/// handle) for the handle's lifetime, so a writer's compaction may delete their files
/// meanwhile.
///
/// A writer may flush or compact between the reader loading the manifest and opening the
/// files it names, and remove a WAL or segment file, or a manifest, the reader was about to
/// open. Such a race (a file not found, or WAL records missing after the flushed seq)
/// reloads the manifest and starts over, up to [`READ_ONLY_OPEN_ATTEMPTS`] times with a short
/// pause, then fails with [`EngineError::ConcurrentChange`]. WAL corruption is retried the
/// same way (a record the writer is appending can, rarely, read as a damaged one followed by
/// an intact one) and returned as it is if it persists.
pub struct ReadOnlyDatabase {
    dir: PathBuf,
    manifest: Manifest,
    /// No active memtable (empty); the replayed WAL records as the one sealed memtable.
    snapshot: Snapshot,
    last_seq: SeqNo,
    wal: LogView,
}

impl std::fmt::Debug for ReadOnlyDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyDatabase")
            .field("dir", &self.dir)
            .field("manifest", &self.manifest)
            .field("last_seq", &self.last_seq)
            .field("wal", &self.wal)
            .finish()
    }
}

/// Why one attempt at opening failed.
enum Failure {
    /// Not worth retrying.
    Fatal(EngineError),
    /// A concurrent writer changed the directory under the reader (reason given).
    Raced(String),
    /// WAL corruption: real, or a record of the final file caught half-written. Retried;
    /// returned as it is if it persists.
    Corrupt(EngineError),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        if is_not_found(&e) {
            Failure::Raced(e.to_string())
        } else if matches!(e, EngineError::Wal(WalError::Corruption { .. })) {
            Failure::Corrupt(e)
        } else {
            Failure::Fatal(e)
        }
    }
}

/// Whether `e` is a file not found (one a concurrent flush or compaction may have removed).
fn is_not_found(e: &EngineError) -> bool {
    let source = match e {
        EngineError::Io { source, .. } => source,
        EngineError::Wal(WalError::Io { source, .. }) => source,
        EngineError::Segment(SegmentError::Io { source, .. }) => source,
        _ => return false,
    };
    source.kind() == ErrorKind::NotFound
}

impl Database {
    /// Opens the data directory `dir` for reading only, without the lock and without writing
    /// anything, even while another `Database` has it open: see [`ReadOnlyDatabase`].
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<ReadOnlyDatabase> {
        ReadOnlyDatabase::open(dir)
    }
}

impl ReadOnlyDatabase {
    /// Opens `dir` for reading only (see the type's docs). A missing `dir` is an
    /// [`EngineError::Io`]; a directory without a `CURRENT` file is
    /// [`EngineError::NotADatabase`]; a damaged manifest, segment or WAL is the same typed
    /// error [`Database::open`] gives.
    pub fn open(dir: impl AsRef<Path>) -> Result<ReadOnlyDatabase> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::metadata(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let mut last = Failure::Raced(String::new());
        // Whether every attempt raced for the very same reason: then nothing was changing.
        let mut same_every_time = true;
        for attempt in 0..READ_ONLY_OPEN_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis((1u64 << attempt).min(50)));
            }
            match Self::try_open(&dir) {
                Ok(db) => return Ok(db),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(f) => {
                    same_every_time &= match (&last, &f) {
                        (Failure::Raced(a), Failure::Raced(b)) => attempt == 0 || a == b,
                        _ => false,
                    };
                    last = f;
                }
            }
        }
        Err(match last {
            Failure::Fatal(e) | Failure::Corrupt(e) => e,
            Failure::Raced(reason) if same_every_time => EngineError::Inconsistent {
                path: dir,
                attempts: READ_ONLY_OPEN_ATTEMPTS,
                reason,
            },
            Failure::Raced(reason) => EngineError::ConcurrentChange {
                path: dir,
                attempts: READ_ONLY_OPEN_ATTEMPTS,
                reason,
            },
        })
    }

    /// One attempt: manifest, then the segments it names, then the WAL after its flushed seq.
    fn try_open(dir: &Path) -> Result<ReadOnlyDatabase, Failure> {
        let manifest = manifest::load(dir)?.ok_or_else(|| {
            Failure::Fatal(EngineError::NotADatabase {
                path: dir.to_path_buf(),
            })
        })?;
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for e in &manifest.segments {
            let seg = Segment::open(&segment_path(dir, e.id)).map_err(EngineError::from)?;
            segments.push(Arc::new(LiveSegment { id: e.id, seg }));
        }
        let flushed = manifest.flushed_through;
        let mut memtable = Memtable::new();
        let wdir = wal_dir(dir);
        // `Database::open` creates `wal/`; without one there is nothing to replay.
        let wal =
            if std::fs::symlink_metadata(&wdir).is_err_and(|e| e.kind() == ErrorKind::NotFound) {
                LogView::default()
            } else {
                // Every record after the flushed seq must be in the log, in order; a gap means
                // a flush newer than our manifest removed WAL files.
                let mut next = flushed + 1;
                let mut gap: Option<(SeqNo, SeqNo)> = None;
                let mut insert_err: Option<SegmentError> = None;
                let storage = FsStorage::existing(&wdir);
                let read = quiver_wal::read_log(&storage, flushed + 1, &mut |seq, body| {
                    if seq != next {
                        gap = Some((next, seq));
                        return Err("gap".into());
                    }
                    next += 1;
                    memtable.insert_slice(body).map_err(|e| {
                        let msg = e.to_string();
                        insert_err = Some(e);
                        msg
                    })
                });
                let view = match read {
                    Ok(v) => v,
                    Err(e) => {
                        if let Some((want, got)) = gap {
                            return Err(Failure::Raced(format!(
                                "the log holds seq {got} where seq {want} was expected"
                            )));
                        }
                        return Err(match insert_err {
                            Some(e) => EngineError::Segment(e),
                            None => EngineError::Wal(e),
                        }
                        .into());
                    }
                };
                if view.last_seq > flushed && view.last_seq != next - 1 {
                    return Err(Failure::Raced(format!(
                        "the log ends at seq {} but holds records only up to seq {}",
                        view.last_seq,
                        next - 1
                    )));
                }
                view
            };
        let last_seq = wal.last_seq.max(flushed);
        let snapshot = Snapshot {
            active: Arc::new(RwLock::new(Memtable::new())),
            frozen: vec![SharedMemtable::new(RwLock::new(memtable))],
            segments,
        };
        Ok(ReadOnlyDatabase {
            dir: dir.to_path_buf(),
            manifest,
            snapshot,
            last_seq,
            wal,
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Last sequence number committed when this was opened (0 for an empty database).
    pub fn last_seq(&self) -> SeqNo {
        self.last_seq
    }

    /// The manifest this snapshot was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the final WAL file ended in a torn record (a write cut short by a crash, or
    /// under way in a live writer), which was skipped and left on disk.
    pub fn wal_torn_tail(&self) -> bool {
        self.wal.torn_tail
    }

    /// The snapshot loaded at open.
    pub(crate) fn read_snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }

    /// Counts and sizes, as [`Database::stats`] gives them, of this snapshot. The WAL
    /// counters that count work since open (`wal_groups`, `wal_syncs`, `wal_gathers`) are 0
    /// and `wal_direct_io` is false: a read-only handle writes nothing. `ledger_size` is the
    /// leaves stored on disk when this is called ([`Ledger::stored_size`]), capped at
    /// [`last_seq`](Self::last_seq); 0 when the database keeps no ledger.
    pub fn stats(&self) -> Result<Stats> {
        let counts = self.snapshot.counts();
        Ok(Stats {
            last_seq: self.last_seq,
            flushed_through: self.manifest.flushed_through,
            segments: counts.segments,
            segment_rows: counts.segment_rows,
            segment_bytes: counts.segment_bytes,
            memtable_entries: counts.memtable_entries,
            wal_bytes: self.wal.bytes,
            wal_groups: 0,
            wal_syncs: 0,
            wal_gathers: 0,
            wal_direct_io: false,
            ledger_size: self.ledger_size()?,
        })
    }

    fn ledger_size(&self) -> Result<u64> {
        if self.manifest.ledger_alg.is_none() {
            return Ok(0);
        }
        let size = Ledger::stored_size(&self.dir.join("ledger"))?;
        Ok(size.min(self.last_seq))
    }
}
