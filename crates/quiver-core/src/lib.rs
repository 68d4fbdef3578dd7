//! quiver-core: the vocabulary every other quiver crate speaks.
//!
//! - [`Id`], [`SeqNo`], [`SeqRange`]: identity and order of writes.
//! - [`Record`] and [`Op`]: what a write carries (records, events, tombstones).
//! - [`codec`]: the one binary encoding of a committed entry. The WAL frames it, the
//!   ledger hashes it (leaf = H(0x00 ‖ body)), segments store it row by row, so a leaf can
//!   always be recomputed from whatever copy of the entry survives.
//! - [`config`]: database configuration and the three durability presets.
//! - [`Metric`]: vector distance metrics.
//! - [`json_syntax`]: the allocation-free JSON syntax check behind payload validation.
//!
//! This crate knows nothing of files or threads.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod codec;
pub mod config;
mod error;
mod id;
pub mod json_syntax;
mod metric;
mod record;

pub use config::{Compression, DbConfig, LedgerHash, Preset, SyncMode, WalConfig};
pub use error::CoreError;
pub use id::{Id, MAX_ID_BYTES};
pub use metric::Metric;
pub use record::{
    in_time_range, Entry, Op, Record, SeqNo, SeqRange, TimestampFormat, MAX_VECTOR_DIM,
};

/// Result alias for this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
