//! Integration tests of quiver-wal, one module per suite.

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
