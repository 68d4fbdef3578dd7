//! Per-level append-only node files: `level-NN.hashes` holds the 32-byte roots of the complete
//! perfect subtrees of height NN, in index order (level 0 = leaf hashes).
//!
//! Header (32 bytes): magic `QVLGNODE` | version u16 = 1 | alg u8 | level u8 |
//! 16 reserved zero bytes | crc32c u32 of bytes 0..28. Node `i` lives at `32 + 32 * i`.
//! Writes are buffered in memory per level and written in level order (leaves first) so that on
//! disk an upper level never runs ahead of the level below; `sync` makes them durable.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{LedgerError, Result};
use crate::hash::{Hash, HashAlg};

const MAGIC: &[u8; 8] = b"QVLGNODE";
const VERSION: u16 = 1;
/// Size of the node-file header in bytes.
pub(crate) const HEADER: u64 = 32;
/// Flush pending writes once this many bytes are buffered.
const FLUSH_BYTES: usize = 256 * 1024;

/// Whether `n` bytes of `file` at `off` are all zero (read in chunks of at most 64 KiB).
fn zeros_at(file: &File, off: u64, n: u64, path: &Path) -> Result<bool> {
    let mut b = vec![0u8; n.min(1 << 16) as usize];
    let mut at = 0;
    while at < n {
        let k = (n - at).min(b.len() as u64) as usize;
        file.read_exact_at(&mut b[..k], off + at)
            .map_err(|e| LedgerError::io(path, e))?;
        if b[..k].iter().any(|&x| x != 0) {
            return Ok(false);
        }
        at += k as u64;
    }
    Ok(true)
}

/// File name of the node file for `level`.
pub(crate) fn level_file_name(level: u32) -> String {
    format!("level-{level:02}.hashes")
}

/// fsyncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LedgerError::io(dir, e))
}

/// How many leaf hashes the ledger in `dir` holds on disk (whole ones in `level-00.hashes`),
/// without opening it: 0 where there is none yet.
pub fn stored_leaf_count(dir: &Path) -> Result<u64> {
    let path = dir.join(level_file_name(0));
    match fs::metadata(&path) {
        Ok(m) => Ok(m.len().saturating_sub(HEADER) / 32),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(LedgerError::io(&path, e)),
    }
}

/// Creates `dir` and any missing parents, durably: the parent of every directory it created
/// is fsynced, so a power loss cannot take back a directory whose files were then synced
/// (POSIX makes a new entry durable only with its directory).
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| LedgerError::io(dir, e))?;
    for created in missing.iter().rev() {
        let parent = created
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

fn header(alg: HashAlg, level: u32) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10] = alg.code();
    h[11] = level as u8;
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_header(path: &Path, h: &[u8], level: u32) -> Result<HashAlg> {
    if h.len() < HEADER as usize {
        return Err(LedgerError::corrupt(
            path,
            0,
            "file shorter than its 32-byte header",
        ));
    }
    if &h[..8] != MAGIC {
        return Err(LedgerError::corrupt(
            path,
            0,
            "bad magic: not a quiver ledger node file",
        ));
    }
    let stored = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    let got = crc32c::crc32c(&h[..28]);
    if stored != got {
        return Err(LedgerError::Checksum {
            file: path.to_path_buf(),
            offset: 0,
            expected: stored,
            got,
        });
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(LedgerError::corrupt(
            path,
            8,
            format!("unsupported version {version}"),
        ));
    }
    if u32::from(h[11]) != level {
        return Err(LedgerError::corrupt(
            path,
            11,
            format!("header says level {}, file name says {level}", h[11]),
        ));
    }
    HashAlg::from_code(h[10]).ok_or_else(|| {
        LedgerError::corrupt(path, 10, format!("unknown hash algorithm code {}", h[10]))
    })
}

struct LevelFile {
    path: PathBuf,
    /// `None` only in read-only mode for a level that has no file yet.
    file: Option<File>,
    on_disk: u64,
    pending: Vec<u8>,
    dirty: bool,
    /// Created since the last directory fsync.
    new_file: bool,
    /// Read-only map of the first `HEADER + 32 * k` bytes (writable ledgers only).
    map: Option<memmap2::Mmap>,
}

impl LevelFile {
    /// Re-maps the on-disk prefix; without a map, reads fall back to `pread`.
    fn remap(&mut self, read_only: bool) {
        self.map = None;
        if read_only || self.on_disk == 0 {
            return;
        }
        if let Some(f) = &self.file {
            self.map = crate::mmap::map_prefix(f, HEADER + self.on_disk * 32).ok();
        }
    }

    /// Nodes the current map covers.
    fn mapped_nodes(&self) -> u64 {
        self.map
            .as_ref()
            .map_or(0, |m| (m.len() as u64).saturating_sub(HEADER) / 32)
    }

    /// Re-maps when nodes were written past the current map.
    fn refresh_map(&mut self) {
        if self.mapped_nodes() < self.on_disk {
            self.remap(false);
        }
    }

    /// Bytes of nodes `[index, index + n)` from the map, when mapped.
    fn mapped(&self, index: u64, n: usize) -> Option<&[u8]> {
        let m = self.map.as_ref()?;
        let off = usize::try_from(HEADER + index * 32).ok()?;
        m.get(off..off.checked_add(n * 32)?)
    }
}

/// The node files of one ledger.
pub(crate) struct TreeStore {
    dir: PathBuf,
    alg: HashAlg,
    read_only: bool,
    levels: Vec<LevelFile>,
    pending_bytes: usize,
}

impl TreeStore {
    /// Opens every existing `level-NN.hashes` in `dir`. `create_alg` creates level 0 if absent.
    /// `unsigned`: no checkpoint or receipt was ever signed, so a leaf file that reads as
    /// zeros only may be a creation cut short. Returns the store; the caller reconciles level
    /// counts.
    pub(crate) fn open(
        dir: &Path,
        create_alg: Option<HashAlg>,
        read_only: bool,
        unsigned: bool,
    ) -> Result<TreeStore> {
        let mut levels = Vec::new();
        let mut alg = None;
        // Level 0 exists but holds no nodes (a creation cut short, see below).
        let mut leaves_restarted = false;
        for level in 0..64u32 {
            let path = dir.join(level_file_name(level));
            if !path.exists() {
                break;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(!read_only)
                .open(&path)
                .map_err(|e| LedgerError::io(&path, e))?;
            let len = file
                .metadata()
                .map_err(|e| LedgerError::io(&path, e))?
                .len();
            // Created but never given its header (a crash at creation): too short for one, or,
            // for a level above the leaves, a header that reads as zeros (its size reached the
            // disk, its first sector did not). Such a level holds no nodes; they are all
            // recomputed from the level below. The leaves are guessed away only where nothing
            // could have been lost: a leaf file of zeros only, header and all, before anything
            // was signed (the header is written at creation, before any leaf; leaves that never
            // landed are hashed again from the WAL, and the engine refuses if a flush had
            // synced them). Any other level-0 header of zeros is damage.
            let header_lost = len < HEADER
                || (level > 0 && zeros_at(&file, 0, HEADER, &path)?)
                || (level == 0 && unsigned && zeros_at(&file, 0, len, &path)?);
            if header_lost {
                leaves_restarted |= level == 0;
                if let (false, Some(a)) = (read_only, create_alg) {
                    file.set_len(0)
                        .and_then(|()| file.write_all_at(&header(a, level), 0))
                        .map_err(|e| LedgerError::io(&path, e))?;
                    levels.push(LevelFile {
                        path,
                        file: Some(file),
                        on_disk: 0,
                        pending: Vec::new(),
                        dirty: true,
                        new_file: true,
                        map: None,
                    });
                    continue;
                }
                if read_only {
                    // The same state seen by an audit: a level that holds no nodes, whose
                    // nodes the read-only reconcile recomputes in memory; nothing is written.
                    levels.push(LevelFile {
                        path,
                        file: Some(file),
                        on_disk: 0,
                        pending: Vec::new(),
                        dirty: false,
                        new_file: false,
                        map: None,
                    });
                    continue;
                }
            }
            let mut h = vec![0u8; HEADER.min(len) as usize];
            file.read_exact_at(&mut h, 0)
                .map_err(|e| LedgerError::io(&path, e))?;
            let a = check_header(&path, &h, level)?;
            if let Some(prev) = alg {
                if prev != a {
                    return Err(LedgerError::corrupt(
                        &path,
                        10,
                        format!("algorithm {a} differs from level 0's {prev}"),
                    ));
                }
            }
            alg = Some(a);
            let whole = (len - HEADER) / 32;
            if !read_only && (len - HEADER) & 31 != 0 {
                // A torn final hash from a crash mid-write: drop it.
                file.set_len(HEADER + whole * 32)
                    .map_err(|e| LedgerError::io(&path, e))?;
            }
            levels.push(LevelFile {
                path,
                file: Some(file),
                on_disk: whole,
                pending: Vec::new(),
                dirty: false,
                new_file: false,
                map: None,
            });
        }
        let alg = match (alg, create_alg) {
            (Some(a), _) => a,
            (None, Some(a)) if !read_only || leaves_restarted => a,
            _ => {
                return Err(LedgerError::corrupt(
                    dir.join(level_file_name(0)),
                    0,
                    "missing leaf-hash file",
                ));
            }
        };
        for l in &mut levels {
            l.remap(read_only);
        }
        let mut store = TreeStore {
            dir: dir.to_path_buf(),
            alg,
            read_only,
            levels,
            pending_bytes: 0,
        };
        if store.levels.is_empty() {
            store.add_level()?;
        }
        Ok(store)
    }

    pub(crate) fn alg(&self) -> HashAlg {
        self.alg
    }

    pub(crate) fn path(&self, level: u32) -> PathBuf {
        self.dir.join(level_file_name(level))
    }

    fn add_level(&mut self) -> Result<()> {
        let level = self.levels.len() as u32;
        let path = self.path(level);
        let file = if self.read_only {
            None
        } else {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| LedgerError::io(&path, e))?;
            f.write_all_at(&header(self.alg, level), 0)
                .map_err(|e| LedgerError::io(&path, e))?;
            Some(f)
        };
        self.levels.push(LevelFile {
            path,
            file,
            on_disk: 0,
            pending: Vec::new(),
            dirty: true,
            new_file: true,
            map: None,
        });
        Ok(())
    }

    /// Number of levels with a file (or buffer).
    pub(crate) fn level_count(&self) -> u32 {
        self.levels.len() as u32
    }

    /// Number of nodes stored at `level` (on disk + pending).
    pub(crate) fn count(&self, level: u32) -> u64 {
        self.levels
            .get(level as usize)
            .map_or(0, |l| l.on_disk + (l.pending.len() / 32) as u64)
    }

    /// Node `index` of `level`.
    pub(crate) fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let l = self.levels.get(level as usize).ok_or_else(|| {
            LedgerError::corrupt(
                self.path(level),
                0,
                format!("level {level} missing (node {index})"),
            )
        })?;
        if let Some(b) = l.mapped(index, 1) {
            return Hash::from_slice(b);
        }
        if index < l.on_disk {
            let mut b = [0u8; 32];
            let off = HEADER + index * 32;
            let f = l
                .file
                .as_ref()
                .ok_or_else(|| LedgerError::corrupt(&l.path, off, "file missing"))?;
            f.read_exact_at(&mut b, off)
                .map_err(|e| LedgerError::io(&l.path, e))?;
            return Ok(Hash(b));
        }
        let at = ((index - l.on_disk) * 32) as usize;
        match l.pending.get(at..at + 32) {
            Some(s) => Hash::from_slice(s),
            None => Err(LedgerError::corrupt(
                &l.path,
                HEADER + index * 32,
                format!(
                    "node {index} of level {level} is beyond the {} stored",
                    self.count(level)
                ),
            )),
        }
    }

    /// Reads nodes `[start, start + out.len())` of `level` (must all exist).
    pub(crate) fn read_range(&self, level: u32, start: u64, out: &mut [Hash]) -> Result<()> {
        let Some(l) = self.levels.get(level as usize) else {
            return Err(LedgerError::corrupt(self.path(level), 0, "level missing"));
        };
        let disk_n = l.on_disk.saturating_sub(start).min(out.len() as u64) as usize;
        if let Some(b) = l.mapped(start, disk_n).filter(|_| disk_n > 0) {
            for (o, c) in out.iter_mut().zip(b.chunks_exact(32)) {
                o.0.copy_from_slice(c);
            }
        } else if disk_n > 0 {
            let mut buf = vec![0u8; disk_n * 32];
            let off = HEADER + start * 32;
            let f = l
                .file
                .as_ref()
                .ok_or_else(|| LedgerError::corrupt(&l.path, off, "file missing"))?;
            f.read_exact_at(&mut buf, off)
                .map_err(|e| LedgerError::io(&l.path, e))?;
            for (o, c) in out.iter_mut().zip(buf.chunks_exact(32)) {
                o.0.copy_from_slice(c);
            }
        }
        for (i, o) in out.iter_mut().enumerate().skip(disk_n) {
            *o = self.node(level, start + i as u64)?;
        }
        Ok(())
    }

    /// Appends a node to `level`, creating the level's file when needed.
    pub(crate) fn push(&mut self, level: u32, h: &Hash) -> Result<()> {
        self.push_many(level, std::slice::from_ref(h))
    }

    /// Appends consecutive nodes to `level`, creating the level's file when needed; writes
    /// the pending nodes out once [`FLUSH_BYTES`] have accumulated.
    pub(crate) fn push_many(&mut self, level: u32, hs: &[Hash]) -> Result<()> {
        while self.levels.len() <= level as usize {
            self.add_level()?;
        }
        let l = &mut self.levels[level as usize];
        for h in hs {
            l.pending.extend_from_slice(&h.0);
        }
        l.dirty = true;
        self.pending_bytes += 32 * hs.len();
        if self.pending_bytes >= FLUSH_BYTES && !self.read_only {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every pending node, lowest level first.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        for l in &mut self.levels {
            if l.pending.is_empty() {
                continue;
            }
            let off = HEADER + l.on_disk * 32;
            let f = l
                .file
                .as_ref()
                .ok_or_else(|| LedgerError::corrupt(&l.path, off, "file missing"))?;
            f.write_all_at(&l.pending, off)
                .map_err(|e| LedgerError::io(&l.path, e))?;
            l.on_disk += (l.pending.len() / 32) as u64;
            l.pending.clear();
            // Re-mapping is an munmap + mmap per level: do it when the file has doubled since
            // the last map (and at every sync); nodes past the map are read with `pread`.
            if l.on_disk >= 2 * l.mapped_nodes() {
                l.remap(false);
            }
        }
        self.pending_bytes = 0;
        Ok(())
    }

    /// Flushes pending nodes and returns duplicated handles of the levels written since the
    /// last sync, marked clean, so the caller can fdatasync them without holding the ledger
    /// lock (appends go on meanwhile). The caller must poison the ledger if the sync fails.
    pub(crate) fn begin_sync(&mut self) -> Result<SyncBatch> {
        self.flush()?;
        if !self.read_only {
            self.levels.iter_mut().for_each(LevelFile::refresh_map);
        }
        let mut batch = SyncBatch::default();
        for l in &mut self.levels {
            if !l.dirty {
                continue;
            }
            if let Some(f) = &l.file {
                let dup = f.try_clone().map_err(|e| LedgerError::io(&l.path, e))?;
                batch.files.push((dup, l.path.clone()));
            }
            if l.new_file {
                batch.dir = Some(self.dir.clone());
            }
            l.new_file = false;
            l.dirty = false;
        }
        Ok(batch)
    }

    /// Flushes and fdatasyncs every level written since the last sync (in place; see
    /// [`TreeStore::begin_sync`] for syncing outside the ledger lock).
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.begin_sync()?.run()
    }

    /// Keeps only the first `count` nodes of `level` (on disk and pending).
    pub(crate) fn truncate_level(&mut self, level: u32, count: u64) -> Result<()> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        self.flush()?;
        let Some(l) = self.levels.get_mut(level as usize) else {
            return Ok(());
        };
        if count < l.on_disk {
            // Never shrink a file under a live map.
            l.map = None;
            if let Some(f) = &l.file {
                f.set_len(HEADER + count * 32)
                    .map_err(|e| LedgerError::io(&l.path, e))?;
            }
            l.on_disk = count;
            l.dirty = true;
            l.remap(false);
        }
        Ok(())
    }

    /// Nodes of `level` at or past `from` that never landed: the index of the first stored
    /// node there that reads as 32 zero bytes, if any. Only called at open, before anything
    /// is pending.
    ///
    /// A file system may make an append's new size durable before its data (XFS, ext4 with
    /// `data=writeback`; see `docs/format/ledger.md`), so after a power cut the unsynced tail
    /// of a node file can read as zeros, whole pages of it, possibly with later pages intact.
    /// No hash function yields 32 zero bytes in practice (a 2⁻²⁵⁶ chance), so a zero node is
    /// one whose write never landed. The caller passes as `from` the nodes a signed
    /// checkpoint or receipt covers (synced before signing): a zero node among those is
    /// damage, left for the root check and `quiver verify` to report, never cut away.
    pub(crate) fn first_unlanded(&self, level: u32, from: u64) -> Result<Option<u64>> {
        const CHUNK: u64 = 2048;
        let stored = self.levels.get(level as usize).map_or(0, |l| l.on_disk);
        let mut nodes = Vec::new();
        let mut at = from;
        while at < stored {
            nodes.resize((stored - at).min(CHUNK) as usize, Hash::default());
            self.read_range(level, at, &mut nodes)?;
            if let Some(i) = nodes.iter().position(|h| h.0 == [0u8; 32]) {
                return Ok(Some(at + i as u64));
            }
            at += nodes.len() as u64;
        }
        Ok(None)
    }

    /// Treats the nodes of `level` from `count` on as never stored: a writable store cuts its
    /// file there (see [`truncate_level`](Self::truncate_level)); a read-only one only stops
    /// reading there, so an audit sees what a writable open would keep, and writes nothing.
    pub(crate) fn forget_from(&mut self, level: u32, count: u64) -> Result<()> {
        if !self.read_only {
            return self.truncate_level(level, count);
        }
        if let Some(l) = self.levels.get_mut(level as usize) {
            l.on_disk = l.on_disk.min(count);
        }
        Ok(())
    }

    /// Removes the file of the top level when it is empty (after a truncate).
    pub(crate) fn drop_empty_top_levels(&mut self) -> Result<()> {
        while self.levels.len() > 1 && self.count(self.levels.len() as u32 - 1) == 0 {
            if let Some(l) = self.levels.pop() {
                drop(l.file);
                fs::remove_file(&l.path).map_err(|e| LedgerError::io(&l.path, e))?;
            }
        }
        Ok(())
    }
}

/// Most fdatasyncs one [`SyncBatch::run`] has in flight at once.
const SYNC_PARALLELISM: usize = 8;

/// Files to fdatasync (and a directory to fsync) outside the ledger lock.
#[derive(Default)]
pub(crate) struct SyncBatch {
    pub(crate) files: Vec<(File, PathBuf)>,
    pub(crate) dir: Option<PathBuf>,
}

impl SyncBatch {
    /// Runs the syncs, up to [`SYNC_PARALLELISM`] at a time: a flush dirties one file per tree
    /// level (~20 at a million leaves), and fdatasyncs issued together share the file system's
    /// journal commit and the device's cache flush instead of paying for one each in turn.
    pub(crate) fn run(self) -> Result<()> {
        let files = &self.files;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let worker = || -> Result<()> {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((f, path)) = files.get(i) else {
                    return Ok(());
                };
                f.sync_data().map_err(|e| LedgerError::io(path, e))?;
            }
        };
        let threads = files.len().min(SYNC_PARALLELISM);
        std::thread::scope(|s| {
            // A helper thread that cannot start (a thread limit) leaves its share to the
            // others: this thread alone syncs every file if need be.
            let handles: Vec<_> = (1..threads)
                .map_while(|_| std::thread::Builder::new().spawn_scoped(s, worker).ok())
                .collect();
            let mut result = worker();
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(LedgerError::io(
                        &files[0].1,
                        std::io::Error::other("an fdatasync thread panicked"),
                    ))
                });
                result = result.and(r);
            }
            result
        })?;
        if let Some(d) = &self.dir {
            sync_dir(d)?;
        }
        Ok(())
    }
}
