//! The [`Wal`] handle: open/recovery, replay, truncation of redundant files, stats.

use crate::error::{Result, WalError};
use crate::format::{file_name, Header, HEADER_LEN};
use crate::scan::{is_torn_creation, scan_file, ScanOutcome};
use crate::storage::{Storage, WalFile};
use parking_lot::{Condvar, Mutex};
use quiver_core::{SeqNo, SyncMode, WalConfig};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Under `SyncMode::None` the active file's pages are handed to the device for write-back
/// every this many bytes ([`WalFile::start_writeback`]), so that the synchronous seal at
/// rotation ([`Wal::rotate`]) finds only the last few MiB still to write. (With the kernel's
/// own write-back a whole 64 MiB file could still be dirty at rotation.)
pub const WRITE_BEHIND_BYTES: u64 = 4 << 20;

/// Called by the group-commit leader inside the critical section that fixes on-disk order,
/// after the group is durable per the sync mode and before any writer of the group is acked.
pub trait CommitObserver: Send + Sync {
    /// `bodies` are the group's stamped record bodies, with seqs `first_seq..`. An error poisons
    /// the WAL (the records are in the log and come back on replay after reopen).
    fn on_commit(&self, first_seq: SeqNo, bodies: &[&[u8]]) -> Result<(), String>;
}

/// The callback of [`Wal::replay`]: `(seq, body)`; an error stops the replay.
pub type ReplayVisitor<'a> = dyn FnMut(SeqNo, &[u8]) -> Result<(), String> + 'a;

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// WAL files in the directory (the active one included).
    pub files: usize,
    /// Bytes of data (headers and frames, not preallocated zeros) in those files.
    pub bytes: u64,
    /// Commit groups written since open.
    pub groups: u64,
    /// Group leaders that waited for announced writers (see [`Wal::announce`]).
    pub gathers: u64,
    /// `fdatasync` calls since open (group syncs, rotations and [`Wal::sync`]).
    pub syncs: u64,
    /// Records committed since open.
    pub records: u64,
    /// Seq of the last committed record (0: none).
    pub last_seq: SeqNo,
    /// Rotations that used a spare file preallocated in the background.
    pub spares_used: u64,
    /// The active file is written with direct I/O (`O_DIRECT | O_DSYNC`).
    pub direct_io: bool,
}

/// One WAL file as recovery or rotation left it.
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    pub name: String,
    pub first_seq: SeqNo,
    pub prev_seq: SeqNo,
    pub last_seq: Option<SeqNo>,
    /// End of data: where the next group goes.
    pub len: u64,
    /// The file is known durable up to here (the `durable` field of the next group header).
    pub synced: u64,
}

impl FileMeta {
    /// The seq the next record of this file must carry.
    pub fn next_seq(&self) -> SeqNo {
        self.last_seq.map_or(self.first_seq, |s| s + 1)
    }
    /// The last seq of the log up to and including this file.
    pub fn log_end(&self) -> SeqNo {
        self.last_seq.unwrap_or(self.prev_seq)
    }
}

/// State touched only by the group-commit leader (and by maintenance calls between groups).
pub(crate) struct Io {
    pub files: Vec<FileMeta>,
    /// Handle on `files.last()`.
    pub active: Option<Box<dyn WalFile>>,
    /// `active` was opened `O_DSYNC`: every write is durable when it returns.
    pub active_dsync: bool,
    /// `active` was opened `O_DIRECT` (see [`WalConfig::direct_io`]).
    pub active_direct: bool,
    /// Reused frame buffer of a group.
    pub buf: Vec<u8>,
    /// The seq the next written record gets, unless `Wal::next_seq` is higher. Runs ahead of
    /// `next_seq` while written groups wait to be applied.
    pub next_assign: SeqNo,
    /// Ticket of the next group written (see `apply_turn`).
    pub next_ticket: u64,
}

/// A batch waiting in the commit queue.
pub(crate) struct Pending {
    pub batch: crate::batch::Batch,
    pub waiter: Arc<crate::commit::Waiter>,
}

/// The commit queue, guarded by one mutex.
#[derive(Default)]
pub(crate) struct Queue {
    pub pending: VecDeque<Pending>,
    pub queued_entries: usize,
    /// Someone leads (or leadership is being handed to the front writer).
    pub leader: bool,
    pub poisoned: Option<String>,
}

/// The write-ahead log. See the crate docs for the protocol.
pub struct Wal {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: WalConfig,
    pub(crate) observer: Option<Arc<dyn CommitObserver>>,
    pub(crate) queue: Mutex<Queue>,
    /// A gathering leader waits here for its group to fill.
    pub(crate) gather_cv: Condvar,
    /// Writers announced ([`Wal::announce`]) that have not queued their batch yet. Raised
    /// without the queue lock; lowered under it (so a gathering leader misses no wakeup).
    pub(crate) arriving: std::sync::atomic::AtomicUsize,
    pub(crate) gathers: AtomicU64,
    pub(crate) io: Mutex<Io>,
    /// One past the last applied seq: every record below it is written and applied.
    pub(crate) next_seq: AtomicU64,
    /// Ticket of the next group to apply; groups are applied in the order they were written.
    pub(crate) apply_turn: Mutex<u64>,
    pub(crate) apply_cv: Condvar,
    /// An apply failed: no later group may be applied (the observer would see a gap).
    pub(crate) apply_failed: std::sync::atomic::AtomicBool,
    pub(crate) groups: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) spares_used: AtomicU64,
    /// Background preparation of the next preallocated file (see `spare.rs`).
    pub(crate) spare: crate::spare::SpareSlot,
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.spare.join();
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Wal {
    /// Opens (or creates) the log. Scans existing files: validates headers, groups and frames,
    /// cuts only a torn final write of the final file (whole groups), and returns a typed error
    /// (file name + byte offset) for any other mismatch. Files whose names are not
    /// `<20 digits>.log` are ignored. A last file of format version 1 is read but not appended
    /// to: the first commit starts a new file.
    pub fn open(
        storage: Arc<dyn Storage>,
        config: WalConfig,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Wal> {
        let mut names = crate::scan::log_files(storage.as_ref())?;
        // Files at the end whose creation was cut short hold no records: drop them, so the torn
        // tail rule applies to the file that really was being appended to.
        let mut dropped = false;
        while let Some((_, name)) = names.last() {
            if !is_torn_creation(&storage.read_all(name)?) {
                break;
            }
            storage.remove(name)?;
            names.pop();
            dropped = true;
        }
        if dropped {
            storage.sync_dir()?;
        }
        let count = names.len();
        let mut files: Vec<FileMeta> = Vec::with_capacity(count);
        let mut torn_active = false;
        // Format of the last file: one an earlier build wrote is read, never appended to.
        let mut last_version = crate::format::VERSION;
        for (i, (name_seq, name)) in names.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let data = storage.read_all(&name)?;
            let s = match scan_file(&name, name_seq, &data, is_last, &mut |_, _| Ok(()))? {
                ScanOutcome::File(s) => s,
                ScanOutcome::TornCreation => {
                    storage.remove(&name)?;
                    storage.sync_dir()?;
                    continue;
                }
            };
            if let Some(prev) = files.last() {
                let end = prev.log_end();
                if s.header.prev_seq != end || s.header.first_seq <= end {
                    return Err(WalError::corrupt(
                        &name,
                        24,
                        format!(
                            "header says the previous file ended at seq {} (first seq {}), but {} \
                             ends at seq {end}: a WAL file is missing or out of place",
                            s.header.prev_seq, s.header.first_seq, prev.name
                        ),
                    ));
                }
            }
            if s.torn {
                storage.truncate(&name, s.end)?;
                torn_active = true;
            }
            last_version = s.header.version;
            files.push(FileMeta {
                name,
                first_seq: s.header.first_seq,
                prev_seq: s.header.prev_seq,
                last_seq: s.last_seq,
                len: s.end,
                // Set again below for the active file, which may stay unsynced.
                synced: s.end,
            });
        }
        let next_seq = files.last().map_or(1, |f| f.next_seq()).max(1);
        // What a previous run wrote without syncs may still sit in the page cache (the active
        // file of a `throughput` session; sealed files too, from versions that sealed on a
        // background thread), and neither a direct append nor the fdatasync of a later group
        // covers another file (or, with direct I/O, another part of this one). So every file
        // but the active one is made durable here, whatever the mode: [`Wal::sync`] (what a
        // signed checkpoint or receipt relies on under `throughput`) syncs only the active
        // file. On files already synced, each fdatasync finds nothing to write.
        let append_to_last = last_version == crate::format::VERSION;
        let sealed = if append_to_last {
            files.len().saturating_sub(1)
        } else {
            files.len()
        };
        for f in files.iter().take(sealed) {
            storage
                .open_append(&f.name)?
                .sync_data()
                .map_err(|e| WalError::io("fdatasync", &f.name, e))?;
        }
        let mut mode = AppendMode::default();
        let mut active_unsynced = false;
        let active = match files.last().filter(|_| append_to_last) {
            // No file, or one of an earlier format: the first commit starts a new file.
            None => None,
            Some(last) => {
                let mut h = storage.open_append(&last.name)?;
                if config.preallocate {
                    h.preallocate(config.file_size)
                        .map_err(|e| WalError::io("preallocate", &last.name, e))?;
                }
                if config.preallocate || torn_active || config.sync != SyncMode::None {
                    h.sync_data()
                        .map_err(|e| WalError::io("fdatasync", &last.name, e))?;
                } else {
                    // Synced at its creation, and perhaps later; only the header is certain.
                    active_unsynced = true;
                }
                let (h, m) = append_handle(&*storage, &config, &last.name, h)?;
                mode = m;
                Some(h)
            }
        };
        if let (true, Some(f)) = (active_unsynced, files.last_mut()) {
            f.synced = HEADER_LEN as u64;
        }
        Ok(Wal {
            storage,
            config,
            observer,
            queue: Mutex::new(Queue::default()),
            gather_cv: Condvar::new(),
            arriving: std::sync::atomic::AtomicUsize::new(0),
            gathers: AtomicU64::new(0),
            io: Mutex::new(Io {
                files,
                active,
                active_dsync: mode.dsync,
                active_direct: mode.direct,
                buf: Vec::new(),
                next_assign: next_seq,
                next_ticket: 0,
            }),
            next_seq: AtomicU64::new(next_seq),
            apply_turn: Mutex::new(0),
            apply_cv: Condvar::new(),
            apply_failed: std::sync::atomic::AtomicBool::new(false),
            groups: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            spares_used: AtomicU64::new(0),
            spare: crate::spare::SpareSlot::default(),
        })
        .inspect(Wal::start_spare)
    }

    /// Calls `f` for every intact record with seq >= `from`, in seq order. `body` is the full
    /// record body, whose first 8 bytes are the seq. Re-reads and re-checks every frame; any
    /// mismatch is [`WalError::Corruption`]. Records committed while replay runs may be missed.
    pub fn replay(&self, from: SeqNo, f: &mut ReplayVisitor<'_>) -> Result<()> {
        let files: Vec<FileMeta> = self.io.lock().files.clone();
        for meta in files {
            if meta.last_seq.is_none_or(|l| l < from) {
                continue;
            }
            let data = self.storage.read_all(&meta.name)?;
            let data = data.get(..meta.len as usize).ok_or_else(|| {
                WalError::corrupt(
                    &meta.name,
                    data.len() as u64,
                    format!(
                        "file is {} bytes, shorter than its {} bytes of records",
                        data.len(),
                        meta.len
                    ),
                )
            })?;
            let mut visit = |seq: SeqNo, body: &[u8]| {
                if seq >= from {
                    f(seq, body).map_err(|reason| WalError::Replay { seq, reason })?;
                }
                Ok(())
            };
            scan_file(&meta.name, meta.first_seq, data, false, &mut visit)?;
        }
        Ok(())
    }

    /// Seq of the last committed record — written, and applied by the observer, as are all
    /// before it (a group already written but still being applied is not counted yet) — or
    /// the floor set by [`Wal::set_next_seq_at_least`] minus one; 0 when the log is empty.
    /// Seqs start at 1.
    pub fn last_seq(&self) -> SeqNo {
        self.next_seq.load(Ordering::SeqCst) - 1
    }

    /// Makes the next committed record get a seq of at least `seq`, so seqs continue after
    /// data that lives only in segments once every WAL file was removed. Never lowers it.
    /// A jump starts a new WAL file (seqs inside a file are contiguous). Values above
    /// [`format::MAX_SEQ`](crate::format::MAX_SEQ) are clamped to it.
    pub fn set_next_seq_at_least(&self, seq: SeqNo) {
        self.next_seq
            .fetch_max(seq.clamp(1, crate::format::MAX_SEQ), Ordering::SeqCst);
    }

    /// Deletes whole WAL files all of whose records have seq < `seq` (after a flush made them
    /// redundant), oldest first, stopping at the first file that must stay. Never deletes the
    /// active file. The removals are made durable (directory fsync).
    pub fn remove_before(&self, seq: SeqNo) -> Result<()> {
        let doomed: Vec<String> = {
            let mut io = self.io.lock();
            let keep_from = io
                .files
                .iter()
                .take(io.files.len().saturating_sub(1))
                .position(|f| f.last_seq.is_some_and(|l| l >= seq))
                .unwrap_or(io.files.len().saturating_sub(1));
            io.files.drain(..keep_from).map(|f| f.name).collect()
        };
        if doomed.is_empty() {
            return Ok(());
        }
        // Outside the I/O lock, which every group write takes: unlinking a 64 MiB file frees
        // its blocks, and on a file system mounted with `discard` that took ~17 ms here, the
        // whole of it a stall for every writer while the lock was held. The files are sealed
        // and older than the active one, so nothing else touches them; one that a failure or
        // a crash leaves behind holds only flushed records, and the next open lists it again.
        for name in &doomed {
            self.storage.remove(name)?;
        }
        self.storage.sync_dir()
    }

    /// `fdatasync`s the active file now, so everything committed so far is durable (every
    /// other file of this session was synced when it was sealed, and every file found at open
    /// was synced then). A failure poisons the log.
    pub fn sync(&self) -> Result<()> {
        self.check_poisoned()?;
        let mut io = self.io.lock();
        let Io { files, active, .. } = &mut *io;
        if let (Some(h), Some(meta)) = (active.as_mut(), files.last_mut()) {
            self.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = h.sync_data() {
                let err = WalError::io("fdatasync", &meta.name, e);
                self.poison(&err);
                return Err(err);
            }
            meta.synced = meta.len;
        }
        Ok(())
    }

    /// Counters for tests and benchmarks.
    pub fn stats(&self) -> WalStats {
        let io = self.io.lock();
        WalStats {
            files: io.files.len(),
            bytes: io.files.iter().map(|f| f.len).sum(),
            groups: self.groups.load(Ordering::Relaxed),
            gathers: self.gathers.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            last_seq: self.last_seq(),
            spares_used: self.spares_used.load(Ordering::Relaxed),
            direct_io: io.active.is_some() && io.active_direct,
        }
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &self.queue.lock().poisoned {
            Some(reason) => Err(WalError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn poison(&self, err: &WalError) {
        let mut q = self.queue.lock();
        q.poisoned.get_or_insert_with(|| err.to_string());
    }

    /// Seals the active file (fdatasync) and starts a new one whose first record is `first_seq`.
    ///
    /// The seal completes before the new file exists, in every mode: a new file's header is
    /// synced at once, so were the old file still syncing, a power cut could leave the new
    /// file durable and the old one short — a log with a hole, which recovery must refuse
    /// (it is also what a syncing preset's lost acknowledged data looks like). Under
    /// `SyncMode::None` the active file's pages are already being written back every
    /// [`WRITE_BEHIND_BYTES`] (see `write_buf`), so the seal waits for little more than that.
    pub(crate) fn rotate(&self, io: &mut Io, first_seq: SeqNo) -> Result<()> {
        if let (Some(mut old), Some(meta)) = (io.active.take(), io.files.last()) {
            self.syncs.fetch_add(1, Ordering::Relaxed);
            old.sync_data()
                .map_err(|e| WalError::io("fdatasync", &meta.name, e))?;
        }
        let prev_seq = io.files.last().map_or(0, FileMeta::log_end);
        let name = file_name(first_seq);
        // A zero-filled spare prepared in the background saves writing `file_size` zeros here.
        if self.config.preallocate && self.take_spare(&name) {
            self.spares_used.fetch_add(1, Ordering::Relaxed);
        }
        let mut h = self.storage.open_append(&name)?;
        let header = Header {
            version: crate::format::VERSION,
            first_seq,
            prev_seq,
        }
        .encode();
        h.write_all_at(0, &header)
            .map_err(|e| WalError::io("write", &name, e))?;
        if self.config.preallocate {
            h.preallocate(self.config.file_size)
                .map_err(|e| WalError::io("preallocate", &name, e))?;
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        h.sync_data()
            .map_err(|e| WalError::io("fdatasync", &name, e))?;
        self.storage.sync_dir()?;
        let (h, mode) = append_handle(&*self.storage, &self.config, &name, h)?;
        io.files.push(FileMeta {
            name,
            first_seq,
            prev_seq,
            last_seq: None,
            len: HEADER_LEN as u64,
            synced: HEADER_LEN as u64,
        });
        io.active = Some(h);
        io.active_dsync = mode.dsync;
        io.active_direct = mode.direct;
        self.start_spare();
        Ok(())
    }
}

/// How the active file's handle appends.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AppendMode {
    /// Every write is durable when it returns (`O_DSYNC`): no fdatasync per group.
    pub dsync: bool,
    /// Writes bypass the page cache (`O_DIRECT`).
    pub direct: bool,
}

/// The handle the active file `name` is appended through, given the buffered one `h` that
/// created, preallocated or recovered it (its data synced). A syncing log prefers direct,
/// synchronous writes ([`WalConfig::direct_io`]); failing that, per-write durability on a
/// preallocated file uses an `O_DSYNC` handle, so each group is one write that is durable when
/// it returns (no fdatasync round trip); otherwise `h` with an fdatasync per group.
fn append_handle(
    storage: &dyn Storage,
    config: &WalConfig,
    name: &str,
    h: Box<dyn WalFile>,
) -> Result<(Box<dyn WalFile>, AppendMode)> {
    if config.sync == SyncMode::None {
        return Ok((h, AppendMode::default()));
    }
    if config.direct_io {
        if let Some(d) = storage.open_direct(name)? {
            let mode = AppendMode {
                dsync: true,
                direct: true,
            };
            return Ok((d, mode));
        }
    }
    if config.sync == SyncMode::PerWrite && config.preallocate {
        if let Some(d) = storage.open_dsync(name)? {
            let mode = AppendMode {
                dsync: true,
                direct: false,
            };
            return Ok((d, mode));
        }
    }
    Ok((h, AppendMode::default()))
}
