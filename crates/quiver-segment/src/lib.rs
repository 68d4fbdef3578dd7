//! quiver-segment: the growing in-memory segment ([`Memtable`]) and immutable on-disk
//! segment files ([`write_segment`], [`Segment`]).
//!
//! A segment file (spec: `docs/format/segment.md`) holds rows — entries encoded by
//! `quiver_core::codec`, whose first 8 bytes are the sequence number — in sequence order,
//! packed into blocks of about [`SegmentOptions::block_bytes`] (uncompressed), each block
//! CRC32C-checked and optionally LZ4- or zstd-compressed. A block index records each
//! block's offset, length, row count and min/max sequence number and timestamp, so
//! time-range scans skip blocks. A sorted id index maps every id to its newest row
//! (block + position); a sparse directory of it (first id of every ~4 KiB index block) and
//! a bloom filter on ids are all that [`Segment::open`] keeps in memory besides the block
//! index.
//!
//! Reading by id: bloom filter → directory (binary search) → one id-index block → one data
//! block. Every read checks a checksum; damage is a [`SegmentError::Corruption`] naming the
//! file and offset, never a panic and never silently skipped data.
//!
//! Flow:
//! 1. The engine inserts each committed entry into the [`Memtable`] (sequence order).
//! 2. Flush: [`write_segment`] of [`Memtable::iter`] writes and fsyncs the file; the engine
//!    fsyncs the directory and swaps its manifest.
//! 3. Reads: [`Segment::open`] (index and bloom only), then [`Segment::get`],
//!    [`Segment::scan_time_range`] or [`Segment::iter`]; [`Segment::verify`] reads it all.
//! 4. Compaction: iterate old segments, keep the rows wanted, [`write_segment`] again.
//!
//! [`tamper`] rewrites a file with valid checksums, for the ledger's tamper tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bloom;
mod checks;
mod compress;
#[cfg(test)]
mod consistency_tests;
mod error;
mod format;
mod iter;
mod keys;
mod memtable;
mod reader;
mod rowkey;
pub mod tamper;
mod verify;
mod writer;

pub use error::SegmentError;
pub use iter::SegmentIter;
pub use memtable::{ChunkPool, Memtable};
pub use reader::Segment;
pub use writer::{write_segment, WRITE_BEHIND_BYTES};

use quiver_core::{Compression, DbConfig, SeqNo};

/// Result alias for this crate.
pub type Result<T, E = SegmentError> = std::result::Result<T, E>;

/// How [`write_segment`] lays out a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentOptions {
    /// Target uncompressed size of a data block; a block is cut before the row that would
    /// overflow it (a single larger row gets a block of its own). Default 128 KiB;
    /// accepted 64 B ..= 256 MiB.
    pub block_bytes: usize,
    /// Bloom filter bits per distinct id. Default 10 (about 1 % false positives);
    /// 0 disables the filter; at most 64.
    pub bloom_bits_per_key: u32,
    /// Per-block compression. Default none.
    pub compression: Compression,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            block_bytes: 128 << 10,
            bloom_bits_per_key: 10,
            compression: Compression::None,
        }
    }
}

impl SegmentOptions {
    /// The segment settings of a database configuration.
    pub fn from_config(c: &DbConfig) -> Self {
        SegmentOptions {
            block_bytes: c.block_bytes,
            bloom_bits_per_key: c.bloom_bits_per_key,
            compression: c.compression,
        }
    }

    /// Checks the values are in range.
    pub fn validate(&self) -> Result<()> {
        if !(64..=format::MAX_BLOCK_RAW).contains(&self.block_bytes) {
            return Err(SegmentError::InvalidOptions {
                key: "block_bytes",
                reason: format!(
                    "{} is outside 64 ..= {}",
                    self.block_bytes,
                    format::MAX_BLOCK_RAW
                ),
            });
        }
        if self.bloom_bits_per_key > quiver_core::config::MAX_BLOOM_BITS_PER_KEY {
            return Err(SegmentError::InvalidOptions {
                key: "bloom_bits_per_key",
                reason: format!("{} is over the maximum of 64", self.bloom_bits_per_key),
            });
        }
        Ok(())
    }
}

/// Facts about a segment file, returned by [`write_segment`] and [`Segment::meta`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Number of rows (every version of every id, tombstones included).
    pub rows: u64,
    /// Sequence number of the first row.
    pub min_seq: SeqNo,
    /// Sequence number of the last row.
    pub max_seq: SeqNo,
    /// File size in bytes.
    pub bytes: u64,
    /// Smallest event timestamp, if any row is an event.
    pub min_ts: Option<i64>,
    /// Largest event timestamp, if any row is an event.
    pub max_ts: Option<i64>,
    /// Whether some row may be a tombstone (false only when the writer recorded none).
    pub may_hold_tombstones: bool,
}

/// The sequence number in the first 8 bytes of an encoded entry.
pub(crate) fn codec_seq(body: &[u8]) -> Option<SeqNo> {
    quiver_core::codec::peek_seq(body).ok()
}
