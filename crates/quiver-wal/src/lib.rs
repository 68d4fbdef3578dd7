//! quiver-wal: the write-ahead log.
//!
//! Every write of the database goes through here before it is acknowledged.
//!
//! - **Files**: `<data>/wal/<first seq, 20 digits>.log`, each with a 40-byte header (magic,
//!   version, first seq, the previous file's last seq, header CRC32C) followed by commit
//!   groups: a 40-byte group header (frame count, first seq, byte length, the offset the file
//!   was durable to when the group was written, CRC32C) and the group's frames
//!   `[len u32][crc32c u32][body]`; the CRC covers the whole body, whose first 8 bytes are the
//!   record's seq. A new file starts once the active one would exceed `file_size`; a commit
//!   group never straddles two files. Byte layout: `docs/format/wal.md`.
//! - **Group commit** ([`Wal::commit`]): concurrent writers queue; one leader writes a whole
//!   group with one `pwrite` and at most one `fdatasync`, then wakes exactly that group's
//!   writers. A leader waits up to the gather delay only for writers that announced
//!   themselves ([`Wal::announce`]) and have not queued yet, never for writers nobody
//!   announced. [`quiver_core::SyncMode`]: `None` acks after `write(2)`, `PerGroup` after one
//!   fdatasync per group, `PerWrite` the same with no gather delay. Nothing acknowledged ever
//!   sits only in a user-space buffer. When syncing, the active file is appended with direct
//!   I/O where the file system allows (`O_DIRECT | O_DSYNC`: one durable write per group,
//!   whole 4 KiB blocks; `WalConfig::direct_io`).
//!   With `preallocate`, the next file is zero-filled in the background (`next.spare`) so
//!   appends + fdatasync never change file metadata and rotations do not stall writers.
//!   A sealed file is fdatasynced at rotation, before the next file exists, in every mode (so
//!   a power cut never leaves a durable new file after a short old one). In `SyncMode::None`
//!   the active file's pages are handed to write-back every [`WRITE_BEHIND_BYTES`], so that
//!   seal finds little left to write.
//! - **Poisoning**: after a failed write or fdatasync every commit fails with
//!   [`WalError::Poisoned`] until the log is reopened.
//! - **Recovery** ([`Wal::open`]): a torn final write of the final file is cut off, whole
//!   groups at a time (a batch is all or nothing after a crash) — including a write whose
//!   blocks reached the disk out of order, told from damage to acknowledged data by the group
//!   headers ([`torn_verdict`]); anything else that does not check out is
//!   [`WalError::Corruption`] naming the file and byte offset.
//!   [`read_log`] reads the log by the same rules without changing anything (a read-only
//!   open beside a live writer).
//! - **Storage** ([`Storage`]): [`FsStorage`] on disk, [`MemStorage`] in memory with crash
//!   images, [`FaultyStorage`] for fault injection.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod batch;
mod commit;
mod error;
pub mod format;
mod read_only;
mod scan;
mod spare;
mod storage;
mod wal;

pub use batch::Batch;
pub use commit::{Arrival, Committed, HANDOFF_ENTRIES};
pub use error::{Result, WalError};
pub use read_only::{read_log, LogView};
pub use scan::{
    file_is_torn_creation, is_torn_creation, torn_verdict, walk_groups, Damage, Walked,
};
pub use spare::SPARE;
pub use storage::{FaultPlan, FaultyStorage, FsStorage, MemStorage, Storage, WalFile};
pub use wal::{CommitObserver, ReplayVisitor, Wal, WalStats, WRITE_BEHIND_BYTES};

#[cfg(test)]
mod tests {
    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Wal>();
        check::<crate::FsStorage>();
        check::<crate::MemStorage>();
        check::<crate::FaultyStorage>();
        check::<crate::WalError>();
    }
}
