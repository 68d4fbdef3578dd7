//! [`Storage`] over a real directory.

use super::{Storage, WalFile};
use crate::error::{Result, WalError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A WAL directory on a real file system (`<data>/wal/`).
#[derive(Debug, Clone)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Uses `dir` as the WAL directory, creating it (and its parents) if missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| WalError::io("create directory", &dir.display().to_string(), e))?;
        Ok(FsStorage { dir })
    }

    /// Uses `dir` as the WAL directory as it is, creating nothing (for readers such as
    /// [`read_log`](crate::read_log); a missing directory fails when it is listed).
    pub fn existing(dir: impl AsRef<Path>) -> Self {
        FsStorage {
            dir: dir.as_ref().to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Storage for FsStorage {
    fn list(&self) -> Result<Vec<String>> {
        let err = |e| WalError::io("list directory", "", e);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            let Some(n) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Anything named like a log file is listed whatever it is (a symlink is read
            // through; a directory then fails to open, naming it), never skipped: skipping
            // one would lose its records and hand their seqs out again.
            if entry.file_type().map_err(err)?.is_file()
                || crate::format::parse_file_name(&n).is_some()
            {
                out.push(n);
            }
        }
        Ok(out)
    }

    fn open_append(&self, name: &str) -> Result<Box<dyn WalFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(name))
            .map_err(|e| WalError::io("open", name, e))?;
        Ok(Box::new(FsFile { file }))
    }

    fn open_dsync(&self, name: &str) -> Result<Option<Box<dyn WalFile>>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .open(self.path(name))
            .map_err(|e| WalError::io("open (O_DSYNC)", name, e))?;
        Ok(Some(Box::new(FsFile { file })))
    }

    fn open_direct(&self, name: &str) -> Result<Option<Box<dyn WalFile>>> {
        let direct = DirectFile::open(&self.path(name))
            .map_err(|e| WalError::io("open (O_DIRECT)", name, e))?;
        Ok(direct.map(|d| Box::new(d) as Box<dyn WalFile>))
    }

    fn read_all(&self, name: &str) -> Result<Vec<u8>> {
        std::fs::read(self.path(name)).map_err(|e| WalError::io("read", name, e))
    }

    fn remove(&self, name: &str) -> Result<()> {
        std::fs::remove_file(self.path(name)).map_err(|e| WalError::io("remove", name, e))
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io("fsync directory", "", e))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        std::fs::rename(self.path(from), self.path(to)).map_err(|e| WalError::io("rename", from, e))
    }

    fn truncate(&self, name: &str, len: u64) -> Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.path(name))
            .map_err(|e| WalError::io("open", name, e))?;
        f.set_len(len)
            .map_err(|e| WalError::io("truncate", name, e))?;
        f.sync_all().map_err(|e| WalError::io("fsync", name, e))
    }
}

struct FsFile {
    file: File,
}

impl WalFile for FsFile {
    fn write_all_at(&mut self, off: u64, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(buf, off)
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self, off: u64, len: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(len)) = (i64::try_from(off), i64::try_from(len)) else {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        };
        // SAFETY: `sync_file_range` takes a file descriptor and plain integers and touches no
        // memory of ours; the descriptor is owned by `self.file`, open for this whole call.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn preallocate(&mut self, len: u64) -> std::io::Result<()> {
        // Writing real zeros (rather than fallocate, which leaves "unwritten" extents whose
        // conversion is a metadata change) makes later fdatasyncs data-only.
        const CHUNK: usize = 1 << 20;
        let zeros = vec![0u8; CHUNK];
        let mut at = self.file.metadata()?.len();
        while at < len {
            let n = (len - at).min(CHUNK as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
}

/// Alignment of `O_DIRECT` offsets, lengths and memory: 4 KiB suits devices with 512-byte and
/// with 4 KiB logical blocks.
const DIRECT_ALIGN: usize = 4096;

/// An append handle opened `O_DIRECT | O_DSYNC`: a group's frames go from our buffer to the
/// device, durable when `pwrite` returns, with no copy into the page cache, no write-back and
/// no separate `fdatasync` call.
///
/// Direct I/O moves whole aligned blocks, while a group is anything from a few hundred bytes
/// up, so each append rewrites the file's partial final block: the bytes already there (kept
/// from the previous append, or read back once after open), then the new frames, then zeros
/// up to the block boundary. The rewritten prefix is byte-for-byte what the block already
/// held, so a torn block write cannot damage acknowledged records; the zero padding reads as
/// the end-of-data marker (`docs/format/wal.md`), and the next append overwrites it.
pub(crate) struct DirectFile {
    file: File,
    /// Scratch memory, over-allocated so that an aligned window of the needed size fits.
    mem: Vec<u8>,
    /// File offset of the partial final block as last written (a multiple of DIRECT_ALIGN).
    tail_at: u64,
    /// That block's bytes up to the end of data (fewer than DIRECT_ALIGN); valid when
    /// `tail_known`.
    tail: Vec<u8>,
    tail_known: bool,
}

impl DirectFile {
    /// Opens `path` for direct, synchronous writes; `Ok(None)` where the file system refuses
    /// `O_DIRECT` (at open, or on an aligned probe read).
    pub(crate) fn open(path: &Path) -> std::io::Result<Option<DirectFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(path);
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut f = DirectFile {
            file,
            mem: Vec::new(),
            tail_at: 0,
            tail: Vec::with_capacity(DIRECT_ALIGN),
            tail_known: false,
        };
        // Some file systems accept the flag and refuse the I/O; probe with one aligned read.
        let probe = aligned_window(&mut f.mem, DIRECT_ALIGN);
        match f.file.read_at(probe, 0) {
            Ok(_) => Ok(Some(f)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An aligned window of `len` bytes inside `mem` (grown as needed).
fn aligned_window(mem: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if mem.len() < len + DIRECT_ALIGN {
        mem.resize(len + DIRECT_ALIGN, 0);
    }
    let at = mem.as_ptr().align_offset(DIRECT_ALIGN);
    &mut mem[at..at + len]
}

impl WalFile for DirectFile {
    fn write_all_at(&mut self, off: u64, buf: &[u8]) -> std::io::Result<()> {
        let align = DIRECT_ALIGN as u64;
        let start = off - off % align;
        let head = (off - start) as usize;
        let end = head + buf.len();
        let total = end.next_multiple_of(DIRECT_ALIGN);
        let cached = self.tail_known && self.tail_at == start && self.tail.len() == head;
        let window = aligned_window(&mut self.mem, total);
        if head > 0 {
            if cached {
                window[..head].copy_from_slice(&self.tail);
            } else {
                // First append after open (or after a non-sequential write): read the block.
                let block = &mut window[..DIRECT_ALIGN];
                let mut got = 0;
                while got < head {
                    match self.file.read_at(&mut block[got..], start + got as u64) {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                format!("WAL file ends before its data end {off}"),
                            ))
                        }
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        window[head..end].copy_from_slice(buf);
        window[end..].fill(0);
        self.tail_known = false;
        self.file.write_all_at(window, start)?;
        let keep = end % DIRECT_ALIGN;
        self.tail_at = start + (end - keep) as u64;
        self.tail.clear();
        self.tail.extend_from_slice(&window[end - keep..end]);
        self.tail_known = true;
        if self.mem.len() > 64 << 20 {
            // One huge group should not pin its size in memory for the file's lifetime.
            self.mem = Vec::new();
        }
        Ok(())
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn preallocate(&mut self, len: u64) -> std::io::Result<()> {
        // Zeros in aligned writes of up to 1 MiB from the first block boundary at or past the
        // end (bytes between the end and that boundary are zero or data already).
        const CHUNK: usize = 1 << 20;
        let align = DIRECT_ALIGN as u64;
        let mut at = self.file.metadata()?.len().next_multiple_of(align);
        let zeros = aligned_window(&mut self.mem, CHUNK);
        zeros.fill(0);
        while at < len {
            let n = (len - at).next_multiple_of(align).min(CHUNK as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.tail_known = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Write-behind is a real call on Linux (a wrong flag or argument would be `EINVAL`), and
    /// it changes nothing a reader sees.
    #[test]
    fn start_writeback_succeeds_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        let mut h = storage.open_append("wal").unwrap();
        let data: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i % 251) as u8).collect();
        h.write_all_at(0, &data).unwrap();
        h.start_writeback(0, 2 * 4096).unwrap();
        h.start_writeback(4096, data.len() as u64).unwrap();
        assert_eq!(storage.read_all("wal").unwrap(), data);
        assert!(h.start_writeback(u64::MAX, 1).is_err(), "offset beyond i64");
    }

    /// Appends of random sizes through the direct handle, with reopens in between, leave the
    /// file byte-for-byte equal to the same appends made in memory.
    #[test]
    fn direct_appends_match_a_plain_model() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        let mut h = storage.open_append("wal").unwrap();
        h.preallocate(1 << 20).unwrap();
        h.sync_data().unwrap();
        drop(h);
        let path = dir.path().join("wal");
        let Some(mut d) = DirectFile::open(&path).unwrap() else {
            eprintln!(
                "SKIPPED direct_appends_match_a_plain_model: {} does not support O_DIRECT",
                dir.path().display()
            );
            return;
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut model = vec![0u8; 1 << 20];
        let mut at = 0usize;
        for i in 0..400 {
            let n = match i % 4 {
                0 => rng.gen_range(1..64),
                1 => rng.gen_range(1..5000),
                2 => DIRECT_ALIGN - at % DIRECT_ALIGN,
                _ => rng.gen_range(1..300),
            };
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen_range(1..=255)).collect();
            d.write_all_at(at as u64, &bytes).unwrap();
            model[at..at + n].copy_from_slice(&bytes);
            at += n;
            if i % 37 == 0 {
                d = DirectFile::open(&path).unwrap().unwrap();
            }
        }
        drop(d);
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), model.len());
        assert!(on_disk == model, "file differs from the model");
    }

    /// `preallocate` through a direct handle extends the file with zeros, keeps the data and
    /// leaves appends continuing where the data ends.
    #[test]
    fn direct_preallocate_keeps_data_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        storage.open_append("wal").unwrap();
        let Some(mut d) = storage.open_direct("wal").unwrap() else {
            eprintln!("SKIPPED direct_preallocate_keeps_data_and_appends_continue: no O_DIRECT");
            return;
        };
        d.write_all_at(0, b"abc").unwrap();
        d.preallocate(3 * DIRECT_ALIGN as u64 + 100).unwrap();
        d.write_all_at(3, b"defg").unwrap();
        drop(d);
        let data = std::fs::read(dir.path().join("wal")).unwrap();
        assert!(
            data.len() as u64 >= 3 * DIRECT_ALIGN as u64 + 100,
            "{}",
            data.len()
        );
        assert_eq!(&data[..7], b"abcdefg");
        assert!(data[7..].iter().all(|&b| b == 0));
    }

    /// Through [`Storage::open_direct`], a file that ends in the middle of a block (as
    /// recovery leaves it) is continued without touching its earlier bytes.
    #[test]
    fn open_direct_continues_a_partial_block() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        let mut h = storage.open_append("wal").unwrap();
        h.write_all_at(0, b"header-and-first-frames").unwrap();
        h.preallocate(3 * DIRECT_ALIGN as u64 + 100).unwrap();
        h.sync_data().unwrap();
        drop(h);
        let Some(mut d) = storage.open_direct("wal").unwrap() else {
            eprintln!("SKIPPED open_direct_continues_a_partial_block: no O_DIRECT");
            return;
        };
        d.write_all_at(23, b"+second").unwrap();
        d.write_all_at(30, &[9u8; DIRECT_ALIGN]).unwrap();
        drop(d);
        let data = std::fs::read(dir.path().join("wal")).unwrap();
        assert_eq!(&data[..30], b"header-and-first-frames+second");
        assert!(data[30..30 + DIRECT_ALIGN].iter().all(|&b| b == 9));
        assert!(data[30 + DIRECT_ALIGN..].iter().all(|&b| b == 0));
    }
}
