//! A [`Storage`] wrapper that fails chosen writes and syncs.

use super::{Storage, WalFile};
use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which calls fail. Counting is 1-based over every [`WalFile`] of the storage, in call order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Fail the Nth `write_all_at` call (header writes included).
    pub fail_write: Option<u64>,
    /// Fail the Nth `sync_data` call.
    pub fail_sync: Option<u64>,
    /// When the failing write happens, first write this many bytes of its buffer (a torn
    /// write), then report the error.
    pub torn_write_bytes: usize,
}

#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    syncs: AtomicU64,
}

/// Wraps another storage and injects I/O errors according to a [`FaultPlan`].
#[derive(Clone)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    plan: FaultPlan,
    counters: Arc<Counters>,
}

impl FaultyStorage {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Storage>, plan: FaultPlan) -> Self {
        FaultyStorage {
            inner,
            plan,
            counters: Arc::default(),
        }
    }

    /// `write_all_at` calls so far (failed ones included).
    pub fn writes(&self) -> u64 {
        self.counters.writes.load(Ordering::SeqCst)
    }

    /// `sync_data` calls so far (failed ones included).
    pub fn syncs(&self) -> u64 {
        self.counters.syncs.load(Ordering::SeqCst)
    }
}

impl Storage for FaultyStorage {
    fn list(&self) -> Result<Vec<String>> {
        self.inner.list()
    }
    fn open_append(&self, name: &str) -> Result<Box<dyn WalFile>> {
        let file = self.inner.open_append(name)?;
        Ok(Box::new(FaultyFile {
            file,
            plan: self.plan,
            counters: self.counters.clone(),
        }))
    }
    fn read_all(&self, name: &str) -> Result<Vec<u8>> {
        self.inner.read_all(name)
    }
    fn remove(&self, name: &str) -> Result<()> {
        self.inner.remove(name)
    }
    fn sync_dir(&self) -> Result<()> {
        self.inner.sync_dir()
    }
    fn truncate(&self, name: &str, len: u64) -> Result<()> {
        self.inner.truncate(name, len)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.inner.rename(from, to)
    }
}

struct FaultyFile {
    file: Box<dyn WalFile>,
    plan: FaultPlan,
    counters: Arc<Counters>,
}

fn injected(what: &str) -> std::io::Error {
    std::io::Error::other(format!("injected {what} failure"))
}

impl WalFile for FaultyFile {
    fn write_all_at(&mut self, off: u64, buf: &[u8]) -> std::io::Result<()> {
        let n = self.counters.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.plan.fail_write {
            let torn = self.plan.torn_write_bytes.min(buf.len());
            if torn > 0 {
                self.file.write_all_at(off, &buf[..torn])?;
            }
            return Err(injected("write"));
        }
        self.file.write_all_at(off, buf)
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        let n = self.counters.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.plan.fail_sync {
            return Err(injected("fdatasync"));
        }
        self.file.sync_data()
    }

    fn preallocate(&mut self, len: u64) -> std::io::Result<()> {
        self.file.preallocate(len)
    }
}
