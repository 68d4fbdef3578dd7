//! Shared helpers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use quiver_ledger::{leaf_hash, node_hash, Hash, HashAlg, Ledger, LedgerConfig};

pub fn cfg(alg: HashAlg) -> LedgerConfig {
    LedgerConfig {
        alg,
        origin: "test.quiver/db".to_string(),
        checkpoint_every: 10,
        checkpoint_interval: Duration::from_secs(3600),
    }
}

pub fn dirs(root: &Path) -> (PathBuf, PathBuf) {
    (root.join("ledger"), root.join("keys"))
}

pub fn open(root: &Path, alg: HashAlg) -> Ledger {
    let (l, k) = dirs(root);
    Ledger::open(&l, &k, cfg(alg)).expect("open ledger")
}

pub fn open_ro(root: &Path) -> Ledger {
    let (l, k) = dirs(root);
    Ledger::open_read_only(&l, &k).expect("open ledger read-only")
}

/// Deterministic record body for leaf `i`.
pub fn body(i: u64) -> Vec<u8> {
    let mut b = format!("record-{i}-").into_bytes();
    b.resize(40 + (i % 7) as usize, b'x');
    b
}

/// Appends leaves for seqs `from..=to` with `body`.
pub fn append_range(l: &Ledger, from: u64, to: u64) {
    let bodies: Vec<Vec<u8>> = (from..=to).map(body).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    l.append(from, &refs).expect("append");
}

/// Reference MTH (RFC 9162 §2.1.1), recursive over leaf hashes.
pub fn mth(alg: HashAlg, d: &[Hash]) -> Hash {
    match d.len() {
        0 => alg.empty_root(),
        1 => d[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(alg, &mth(alg, &d[..k]), &mth(alg, &d[k..]))
        }
    }
}

pub fn leaves(alg: HashAlg, n: u64) -> Vec<Hash> {
    (1..=n).map(|i| leaf_hash(alg, &body(i))).collect()
}

pub fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open for flip");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read byte");
    b[0] ^= 0x40;
    f.write_all_at(&b, offset).expect("write byte");
}
