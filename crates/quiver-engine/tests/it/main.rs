//! Integration tests of the embedded database.

mod basic;
mod copy;
mod ledger;
mod limits;
mod model;
mod read_only;
mod stress_ledger;
mod tamper;

/// The WAL files of the database in `dir`, sorted (oldest first).
pub fn wal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

pub use copy::copy_dir;
