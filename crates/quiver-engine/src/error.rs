use std::path::PathBuf;
use thiserror::Error;

/// Errors of the embedded database.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Invalid user input (dimension, NaN, ids, payload size, config).
    #[error(transparent)]
    Invalid(#[from] quiver_core::CoreError),
    /// The write-ahead log failed or is corrupted.
    #[error("write-ahead log: {0}")]
    Wal(#[from] quiver_wal::WalError),
    /// A segment file failed or is corrupted.
    #[error("segment: {0}")]
    Segment(#[from] quiver_segment::SegmentError),
    /// The ledger failed or is corrupted.
    #[error("ledger: {0}")]
    Ledger(#[from] quiver_ledger::LedgerError),
    /// An I/O error outside the WAL, segments and ledger (manifest, directories).
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The manifest does not parse or its checksum fails.
    #[error("corrupted manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// The ledger and the log disagree in a way recovery must not paper over.
    #[error("ledger holds {ledger_size} leaves but the log ends at seq {log_last}; a signed checkpoint or receipt covers seq {checkpoint_size}: records below a signed statement are missing")]
    LedgerAhead {
        ledger_size: u64,
        log_last: u64,
        checkpoint_size: u64,
    },
    /// The database was closed or a background thread failed.
    #[error("database is closed or failed: {reason}")]
    Closed { reason: String },
    /// Another process (or another `Database` in this one) has the data directory open.
    #[error("{path} is locked: another quiver process has this data directory open")]
    Locked { path: PathBuf },
    /// A read-only open found a directory without a `CURRENT` file: not a quiver data
    /// directory (or one whose first open never got as far as its manifest).
    #[error("{path} is not a quiver data directory (no CURRENT file)")]
    NotADatabase { path: PathBuf },
    /// A read-only open kept finding the directory changed under it: a writer flushed or
    /// compacted (removing a manifest, segment or WAL file it was about to read) on every one
    /// of `attempts` tries. See [`ReadOnlyDatabase`](crate::ReadOnlyDatabase).
    #[error("{path} kept changing while it was being opened read-only ({attempts} attempts; last: {reason}); try again")]
    ConcurrentChange {
        path: PathBuf,
        attempts: u32,
        /// What the last attempt found missing.
        reason: String,
    },
    /// A read-only open found the same inconsistency on every try, so no writer was changing
    /// the directory: a file the manifest or the log needs is missing, cut short or out of
    /// place (e.g. a WAL file removed or damaged by hand).
    #[error("{path} is inconsistent: {reason} (the same on all {attempts} reads, so not a concurrent flush)")]
    Inconsistent {
        path: PathBuf,
        attempts: u32,
        /// What every attempt found.
        reason: String,
    },
    /// The ledger is disabled in this database's configuration.
    #[error("the ledger is disabled for this database")]
    LedgerDisabled,
    /// The database's creation was cut short (a crash or power cut during the first open)
    /// before any record was written: part of its files are missing. Nothing was lost;
    /// opening it for writing completes it.
    #[error(
        "{path}: its creation was cut short before any record was written ({reason}); \
         nothing was lost, and opening it for writing (e.g. `quiver ingest`) completes it"
    )]
    IncompleteCreation { path: PathBuf, reason: String },
    /// The configuration asks for the ledger on a database that holds records without one,
    /// or for none on a database that keeps one. Whether a database keeps a ledger is fixed
    /// when it is created: leaves cannot be added for records written without them, and
    /// records written without leaves would leave a gap no proof can cross.
    #[error("{path}: the database was created {created}, but it was opened with the ledger {requested}; open it with the ledger {}", if *requested == "on" { "off" } else { "on" })]
    LedgerSetting {
        path: PathBuf,
        /// "with a ledger" or "without a ledger".
        created: &'static str,
        /// "on" or "off".
        requested: &'static str,
    },
}

impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
