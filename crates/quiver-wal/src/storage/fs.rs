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
            if entry.file_type().map_err(err)?.is_file() {
                if let Some(n) = entry.file_name().to_str() {
                    out.push(n.to_string());
                }
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
