//! quiver-engine: the embedded database over quiver's durable write path.
//!
//! # Architecture
//!
//! A data directory holds one write-ahead log (`wal/`), immutable segments (`segments/`),
//! the Merkle ledger (`ledger/`, `keys/`) and a manifest (`MANIFEST-n`, named by `CURRENT`).
//!
//! Write flow:
//! 1. [`Database::write_batch`] validates every operation (ids, finite vectors, payload size)
//!    and encodes it once with `quiver_core::codec`; nothing of an invalid batch is written.
//! 2. The WAL's group commit queues the batch; one leader writes the whole group with one
//!    `write(2)` and, per the preset, one `fdatasync`, stamping sequence numbers in order.
//! 3. Still inside the WAL's critical section (so in seq order), the group's bodies are
//!    inserted into the active memtable.
//! 4. The writer hands its batch (seqs now fixed and stamped) to the `quiver-leaves` thread,
//!    which hashes the leaves off every writer's path and appends them to the ledger strictly
//!    in seq order.
//! 5. The writer is acknowledged with its sequence range (and, if asked, a signed receipt).
//!
//! Background:
//! - flush seals the active memtable (a pointer swap), writes it as a segment (newest version
//!   per id), fsyncs file and directory, syncs the ledger, swaps the manifest, trims the WAL;
//! - compaction merges a run of adjacent segments, dropping overwritten rows and, when the run
//!   starts at the oldest segment, tombstones;
//! - checkpoints are signed every N records / T seconds over durable data only.
//!
//! Read flow: [`Database::get`] looks at the active memtable, sealed memtables, then segments
//! newest first (bloom filter, id index, one block); scans walk a snapshot of all sources in
//! seq order and return live versions only.
//!
//! Read-only: [`Database::open_read_only`] gives a [`ReadOnlyDatabase`], a snapshot of the
//! directory as of the open that takes no lock, writes nothing and starts no thread, so it
//! reads beside a live writer (another process's or this one's) and on read-only storage.
//!
//! Recovery: the manifest names live segments and the last flushed seq; the WAL after it is
//! replayed into the memtable; the ledger is caught up from the same records.
//!
//! # Example
//!
//! ```
//! use quiver_engine::{Database, DbConfig, Id, Op, Preset, Record};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path(), DbConfig::new(Preset::Balanced))?;
//! let event = Record::new(7u64)
//!     .with_timestamp(1_700_000_000_000_000_000)
//!     .with_type("click")
//!     .with_payload(&serde_json::json!({"page": "/"}));
//! // Acknowledged once durable per the preset; one signed receipt for the whole batch.
//! let (range, receipt) = db.write_batch_with_receipt(&[Op::Put(event)])?;
//! assert_eq!((range.first, range.last), (1, 1));
//! quiver_ledger::verify::verify_receipt(&db.ledger().unwrap().public_key(), &receipt)?;
//! assert!(db.get(&Id::U64(7))?.is_some());
//! db.write_batch(&[Op::Delete(Id::U64(7))])?;
//! assert!(db.get(&Id::U64(7))?.is_none());
//! // A read-only snapshot: no lock, nothing written, so it opens beside the live writer.
//! let snap = Database::open_read_only(dir.path())?;
//! assert_eq!((snap.last_seq(), snap.scan_all()?.len()), (2, 0));
//! db.close()?; // flushes, syncs, signs a final checkpoint
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod background;
mod db;
pub mod dropped;
mod error;
mod leaves;
pub mod manifest;
mod read;
mod read_only;
mod state;
pub mod verify;

pub use db::Database;
pub use error::{EngineError, Result};
pub use quiver_core::{DbConfig, Entry, Id, Op, Preset, Record, SeqRange};
pub use read::Stats;
pub use read_only::{ReadOnlyDatabase, READ_ONLY_OPEN_ATTEMPTS};

/// The message of a caught panic (`&str` or `String` payloads; anything else unnamed).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
