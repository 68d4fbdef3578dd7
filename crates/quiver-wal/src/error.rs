//! The one error type of the WAL.

use quiver_core::SeqNo;
use thiserror::Error;

/// Everything that can go wrong in the WAL.
///
/// User errors (a malformed batch), corruption (bytes on disk that do not check out) and
/// environment faults (I/O errors, a poisoned log) are separate variants.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WalError {
    /// An I/O call failed. `file` is empty for directory-level operations.
    #[error("WAL I/O error during {op} on {file:?}: {source}")]
    Io {
        /// The operation that failed (`"write"`, `"fdatasync"`, `"read"`, ...).
        op: &'static str,
        /// The WAL file name (relative to the WAL directory), empty for the directory.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record or header does not check out and cannot be explained as a torn final write.
    #[error(
        "WAL corruption in {file} at byte {offset}: {reason}; restore the file from a backup \
         or move it aside (records from this point on are lost)"
    )]
    Corruption {
        /// The WAL file name.
        file: String,
        /// Byte offset of the frame (or header field) that failed.
        offset: u64,
        /// What did not match.
        reason: String,
    },
    /// A file in the WAL directory does not start with the WAL magic.
    #[error("{file} is not a quiver WAL file (magic {got:02x?}, expected {expected:02x?})")]
    BadMagic {
        /// The file name.
        file: String,
        /// The magic that was expected.
        expected: [u8; 8],
        /// The bytes found instead.
        got: [u8; 8],
    },
    /// A WAL file was written by an unknown format version.
    #[error("{file} has WAL format version {got}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file name.
        file: String,
        /// Version found in the header.
        got: u32,
        /// Version this build understands.
        supported: u32,
    },
    /// A previous write or fdatasync failed; the log refuses writes until it is reopened.
    #[error("WAL is poisoned after an earlier failure ({reason}); reopen the database to recover")]
    Poisoned {
        /// The failure that poisoned the log.
        reason: String,
    },
    /// `commit` was called with no records.
    #[error("empty batch: a commit needs at least one record")]
    EmptyBatch,
    /// A record body is shorter than its 8-byte sequence-number prefix.
    #[error("record {index} of the batch is {len} bytes; every body starts with an 8-byte sequence prefix")]
    BodyTooShort {
        /// Position in the batch.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A record body does not fit the 32-bit length field.
    #[error("record {index} of the batch is {len} bytes, over the maximum of {max}")]
    BodyTooLarge {
        /// Position in the batch.
        index: usize,
        /// Its length.
        len: usize,
        /// The largest accepted body.
        max: usize,
    },
    /// The commit observer rejected a durable group; the log is poisoned.
    #[error("commit observer failed for the group starting at seq {first_seq}: {reason}")]
    Observer {
        /// First sequence number of the group.
        first_seq: SeqNo,
        /// The observer's message.
        reason: String,
    },
    /// The replay callback returned an error.
    #[error("replay callback failed at seq {seq}: {reason}")]
    Replay {
        /// Sequence number being replayed.
        seq: SeqNo,
        /// The callback's message.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = WalError> = std::result::Result<T, E>;

impl WalError {
    pub(crate) fn io(op: &'static str, file: &str, source: std::io::Error) -> Self {
        WalError::Io {
            op,
            file: file.to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        WalError::Corruption {
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for errors that mean bytes on disk are damaged (as opposed to I/O or user errors).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            WalError::Corruption { .. }
                | WalError::BadMagic { .. }
                | WalError::UnsupportedVersion { .. }
        )
    }
}
