//! Integration tests of quiver-wal, one module per suite.

mod compat;
mod concurrent;
mod corruption;
mod crash;
mod faults;
mod model;
mod observer;
mod roundtrip;
mod torn;

use quiver_core::{codec::stamp_seq, SeqNo, SyncMode, WalConfig};
use quiver_wal::{MemStorage, Storage, Wal};
use std::sync::Arc;
use std::time::Duration;

/// Expected or replayed records, in seq order.
pub type Records = Vec<(SeqNo, Vec<u8>)>;
/// Records by seq.
pub type RecordMap = std::collections::BTreeMap<SeqNo, Vec<u8>>;

/// A config with small files so tests rotate often.
pub fn cfg(sync: SyncMode, file_size: u64, preallocate: bool) -> WalConfig {
    WalConfig {
        sync,
        gather_delay: Duration::ZERO,
        max_group_entries: 2000,
        file_size,
        preallocate,
        direct_io: true,
    }
}

/// A record body: 8 reserved bytes then `len` bytes derived from `tag`.
pub fn body(tag: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; 8 + len];
    let mut x = tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for v in &mut b[8..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *v = x as u8;
    }
    if len >= 8 {
        b[8..16].copy_from_slice(&tag.to_le_bytes());
    }
    b
}

/// `body(tag, len)` as it reads back once committed with `seq`.
pub fn stamped(seq: SeqNo, mut b: Vec<u8>) -> Vec<u8> {
    stamp_seq(&mut b, seq);
    b
}

/// Every record with seq >= `from`.
pub fn replay_all(wal: &Wal, from: SeqNo) -> Vec<(SeqNo, Vec<u8>)> {
    let mut out = Vec::new();
    wal.replay(from, &mut |s, b| {
        out.push((s, b.to_vec()));
        Ok(())
    })
    .expect("replay");
    out
}

/// A fresh in-memory storage and the same as a trait object.
pub fn mem() -> (MemStorage, Arc<dyn Storage>) {
    let m = MemStorage::new();
    let s: Arc<dyn Storage> = Arc::new(m.clone());
    (m, s)
}

/// Names of the WAL files, sorted.
pub fn wal_files(s: &dyn Storage) -> Vec<String> {
    let mut v: Vec<String> = s
        .list()
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

/// What a [`Hooked`] storage does around file operations; every hook defaults to nothing.
pub trait Hooks: Send + Sync + 'static {
    /// Before `len` bytes are written at `off` in `name`.
    fn write(&self, _name: &str, _off: u64, _len: usize) {}
    /// Before an fdatasync of `name` through a handle that has written up to `extent` bytes
    /// (so a header-only file has `extent` = the header length); an error fails the sync.
    fn sync(&self, _name: &str, _extent: u64) -> std::io::Result<()> {
        Ok(())
    }
    /// A write-back hint (`WalFile::start_writeback`).
    fn writeback(&self, _name: &str, _off: u64, _len: u64) {}
    /// After each directory sync.
    fn synced_dir(&self, _m: &MemStorage) {}
}

/// A [`MemStorage`] whose file operations pass through `hooks`: for tests that slow down,
/// fail or watch them.
pub struct Hooked<H> {
    pub m: MemStorage,
    pub hooks: Arc<H>,
}

impl<H: Hooks> Hooked<H> {
    pub fn new(m: MemStorage, hooks: H) -> Arc<Self> {
        Arc::new(Hooked {
            m,
            hooks: Arc::new(hooks),
        })
    }
}

struct HookedFile<H> {
    inner: Box<dyn quiver_wal::WalFile>,
    name: String,
    extent: u64,
    hooks: Arc<H>,
}

impl<H: Hooks> quiver_wal::WalFile for HookedFile<H> {
    fn write_all_at(&mut self, off: u64, buf: &[u8]) -> std::io::Result<()> {
        self.hooks.write(&self.name, off, buf.len());
        self.extent = self.extent.max(off + buf.len() as u64);
        self.inner.write_all_at(off, buf)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        self.hooks.sync(&self.name, self.extent)?;
        self.inner.sync_data()
    }
    fn preallocate(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.preallocate(len)
    }
    fn start_writeback(&mut self, off: u64, len: u64) -> std::io::Result<()> {
        self.hooks.writeback(&self.name, off, len);
        self.inner.start_writeback(off, len)
    }
}

impl<H: Hooks> Storage for Hooked<H> {
    fn list(&self) -> quiver_wal::Result<Vec<String>> {
        self.m.list()
    }
    fn open_append(&self, name: &str) -> quiver_wal::Result<Box<dyn quiver_wal::WalFile>> {
        Ok(Box::new(HookedFile {
            inner: self.m.open_append(name)?,
            name: name.to_string(),
            extent: 0,
            hooks: self.hooks.clone(),
        }))
    }
    fn read_all(&self, name: &str) -> quiver_wal::Result<Vec<u8>> {
        self.m.read_all(name)
    }
    fn remove(&self, name: &str) -> quiver_wal::Result<()> {
        self.m.remove(name)
    }
    fn sync_dir(&self) -> quiver_wal::Result<()> {
        self.m.sync_dir()?;
        self.hooks.synced_dir(&self.m);
        Ok(())
    }
    fn truncate(&self, name: &str, len: u64) -> quiver_wal::Result<()> {
        self.m.truncate(name, len)
    }
}
