//! In-memory [`Storage`] that models what survives a power failure.

use super::{Storage, WalFile};
use crate::error::{Result, WalError};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// What a reader sees now (the page cache).
    data: Vec<u8>,
    /// What survives a power failure: the contents as of the last `sync_data`.
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    files: BTreeMap<String, MemFile>,
    /// Names whose existence is durable (as of the last `sync_dir`).
    durable_names: BTreeSet<String>,
    /// Durable contents of files removed since the last `sync_dir` (they come back in a crash).
    removed: BTreeMap<String, Vec<u8>>,
}

/// An in-memory WAL directory. Clones share the same files, so a test can drop a `Wal`
/// ("crash" the process; the page cache survives) and reopen the same image, or take a
/// [`MemStorage::crash_image`] to model a power failure.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<Inner>>,
}

impl MemStorage {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, independent storage holding only what a power failure now would leave: files whose
    /// creation was followed by `sync_dir`, each with the contents of its last `sync_data`;
    /// files removed without a later `sync_dir` come back.
    pub fn crash_image(&self) -> MemStorage {
        let g = self.inner.lock();
        let mut files = BTreeMap::new();
        for name in &g.durable_names {
            let durable = match g.files.get(name) {
                Some(f) => f.durable.clone(),
                None => g.removed.get(name).cloned().unwrap_or_default(),
            };
            files.insert(
                name.clone(),
                MemFile {
                    data: durable.clone(),
                    durable,
                },
            );
        }
        let inner = Inner {
            files,
            durable_names: g.durable_names.clone(),
            removed: BTreeMap::new(),
        };
        MemStorage {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// Current contents of a file (for tests that inspect or damage it).
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.inner.lock().files.get(name).map(|f| f.data.clone())
    }

    /// Models an fdatasync of `name` that never happened: its durable contents become its
    /// first `keep` bytes (what a power failure would leave), while readers still see all of it.
    pub fn forget_sync(&self, name: &str, keep: usize) {
        if let Some(f) = self.inner.lock().files.get_mut(name) {
            f.durable = f.data[..keep.min(f.data.len())].to_vec();
        }
    }

    /// Replaces the contents of a file, creating it (durably) if missing. For tests that
    /// damage files; the new contents count as durable.
    pub fn put_file(&self, name: &str, data: Vec<u8>) {
        let mut g = self.inner.lock();
        g.durable_names.insert(name.to_string());
        g.files.insert(
            name.to_string(),
            MemFile {
                durable: data.clone(),
                data,
            },
        );
    }
}

impl Storage for MemStorage {
    fn list(&self) -> Result<Vec<String>> {
        Ok(self.inner.lock().files.keys().cloned().collect())
    }

    fn open_append(&self, name: &str) -> Result<Box<dyn WalFile>> {
        self.inner.lock().files.entry(name.to_string()).or_default();
        Ok(Box::new(MemHandle {
            inner: self.inner.clone(),
            name: name.to_string(),
        }))
    }

    fn read_all(&self, name: &str) -> Result<Vec<u8>> {
        self.file(name).ok_or_else(|| {
            WalError::io(
                "read",
                name,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut g = self.inner.lock();
        let f = g.files.remove(name).ok_or_else(|| {
            WalError::io(
                "remove",
                name,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        g.removed.insert(name.to_string(), f.durable);
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        let mut g = self.inner.lock();
        g.durable_names = g.files.keys().cloned().collect();
        g.removed.clear();
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut g = self.inner.lock();
        let f = g.files.remove(from).ok_or_else(|| {
            WalError::io(
                "rename",
                from,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        // Until the next sync_dir a crash image still has the old name and not the new one.
        g.removed.insert(from.to_string(), f.durable.clone());
        g.files.insert(to.to_string(), f);
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> Result<()> {
        let mut g = self.inner.lock();
        let f = g.files.get_mut(name).ok_or_else(|| {
            WalError::io(
                "truncate",
                name,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let len = len as usize;
        f.data.resize(len, 0);
        f.durable.resize(len, 0);
        Ok(())
    }
}

struct MemHandle {
    inner: Arc<Mutex<Inner>>,
    name: String,
}

impl MemHandle {
    fn with<R>(&self, f: impl FnOnce(&mut MemFile) -> R) -> std::io::Result<R> {
        let mut g = self.inner.lock();
        match g.files.get_mut(&self.name) {
            Some(file) => Ok(f(file)),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }
}

impl WalFile for MemHandle {
    fn write_all_at(&mut self, off: u64, buf: &[u8]) -> std::io::Result<()> {
        self.with(|f| {
            let off = off as usize;
            if f.data.len() < off + buf.len() {
                f.data.resize(off + buf.len(), 0);
            }
            f.data[off..off + buf.len()].copy_from_slice(buf);
        })
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        self.with(|f| {
            // Only the bytes that differ need copying; appends touch the tail.
            let common = f.durable.len().min(f.data.len());
            let first_diff = f.durable[..common]
                .iter()
                .zip(&f.data[..common])
                .position(|(a, b)| a != b);
            let from = first_diff.unwrap_or(common);
            f.durable.truncate(from);
            let tail = f.data[from..].to_vec();
            f.durable.extend_from_slice(&tail);
        })
    }

    fn preallocate(&mut self, len: u64) -> std::io::Result<()> {
        self.with(|f| {
            if (f.data.len() as u64) < len {
                f.data.resize(len as usize, 0);
            }
        })
    }
}
