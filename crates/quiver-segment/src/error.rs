use quiver_core::{CoreError, SeqNo};
use std::{io, path::PathBuf};
use thiserror::Error;

/// Errors of the segment layer.
///
/// Corruption of a file ([`SegmentError::Corruption`], [`SegmentError::UnsupportedVersion`])
/// is kept apart from caller mistakes ([`SegmentError::OutOfOrder`],
/// [`SegmentError::InvalidRow`], [`SegmentError::Empty`], [`SegmentError::InvalidOptions`],
/// [`SegmentError::RowTooLarge`]) and from the operating system's faults ([`SegmentError::Io`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A read, write or fsync failed.
    #[error("I/O error while trying to {op} {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done (`open`, `read`, `write`, `fsync`, ...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file's bytes do not match what was written: a checksum mismatch, a truncated
    /// file, an out-of-range offset or a malformed structure.
    #[error("corrupted segment file {file} at byte {offset}: {reason}; restore it from a replica or rebuild it from the WAL")]
    Corruption {
        /// Path of the segment file.
        file: String,
        /// Byte offset in the file of the structure that failed its check.
        offset: u64,
        /// What failed (checksum expected/got, bounds, ...).
        reason: String,
    },
    /// The file is a segment of a format version this build cannot read.
    #[error("segment file {file} has format version {found}, this build reads version {supported}; upgrade quiver")]
    UnsupportedVersion {
        /// Path of the segment file.
        file: String,
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Entries were given out of sequence order.
    #[error(
        "entries must arrive in strictly increasing sequence order: got seq {got} after seq {last}"
    )]
    OutOfOrder {
        /// The sequence number of the previous entry.
        last: SeqNo,
        /// The offending sequence number.
        got: SeqNo,
    },
    /// A row handed to the writer does not decode as an entry.
    #[error("row {index} given to the segment writer is not a valid entry: {source}")]
    InvalidRow {
        /// Position of the row in the input (0-based).
        index: u64,
        /// The decoding error.
        #[source]
        source: quiver_core::CoreError,
    },
    /// A single row is larger than a block may be.
    #[error("row of {size} bytes exceeds the largest block a segment can hold ({max} bytes)")]
    RowTooLarge {
        /// Row size in bytes.
        size: usize,
        /// Maximum block size in bytes.
        max: usize,
    },
    /// `write_segment` was given no rows; a segment holds at least one row.
    #[error("refusing to write an empty segment to {path}: a segment holds at least one row")]
    Empty {
        /// Path that would have been written.
        path: PathBuf,
    },
    /// A [`crate::SegmentOptions`] value is out of range.
    #[error("invalid segment option {key}: {reason}")]
    InvalidOptions {
        /// Option name.
        key: &'static str,
        /// What is wrong and the accepted range.
        reason: String,
    },
    /// An entry given to the memtable does not decode.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl SegmentError {
    /// Whether this error reports damaged file contents (as opposed to I/O or caller errors).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            SegmentError::Corruption { .. } | SegmentError::UnsupportedVersion { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        SegmentError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}
