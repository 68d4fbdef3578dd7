//! The crate's one error type.
//!
//! Variants fall in three groups: user errors (a wrong argument: a sequence gap, an index out of
//! range, a mismatched hash algorithm), corruption (a stored file that does not parse or does not
//! match its checksum or signature) and verification failures (a proof, checkpoint or receipt that
//! does not check out, a rollback or a fork seen by a [`crate::TrustStore`]).

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Everything that can go wrong in the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// An operating-system I/O call failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A stored ledger file is damaged: wrong magic or version, bad length, bad record.
    #[error("corrupt ledger file {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A checksum stored in a ledger file does not match its contents.
    #[error("checksum mismatch in {file} at offset {offset}: expected {expected:#010x}, got {got:#010x}")]
    Checksum {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the checksummed record.
        offset: u64,
        /// Checksum stored in the file.
        expected: u32,
        /// Checksum computed from the contents.
        got: u32,
    },

    /// The ledger was created with another hash algorithm than the one requested.
    #[error("ledger uses hash algorithm {stored} but {requested} was requested; the algorithm is fixed when the ledger is created")]
    AlgMismatch {
        /// Algorithm stored in the ledger.
        stored: crate::HashAlg,
        /// Algorithm in the configuration.
        requested: crate::HashAlg,
    },

    /// `append` was called with a first sequence number that does not follow the last leaf.
    #[error("sequence gap: the next leaf must have seq {expected}, got {got}")]
    SeqGap {
        /// `size() + 1`.
        expected: u64,
        /// The `first_seq` passed in.
        got: u64,
    },

    /// A leaf index, sequence number or tree size lies outside the tree.
    #[error("{what} {value} is out of range for a tree of size {size}")]
    OutOfRange {
        /// What was out of range ("leaf index", "tree size", "seq").
        what: &'static str,
        /// The value given.
        value: u64,
        /// The current tree size.
        size: u64,
    },

    /// `truncate` was asked to drop leaves that a signed statement already covers.
    #[error("cannot truncate to size {requested}: a signed {kind} covers size {signed}")]
    BelowSigned {
        /// The requested size.
        requested: u64,
        /// The size covered by the newest signed statement.
        signed: u64,
        /// "checkpoint" or "receipt".
        kind: &'static str,
    },

    /// The stored leaf count fell below the newest signed checkpoint: leaves were lost or removed.
    #[error("ledger {file} holds {size} leaves but the signed checkpoint covers {signed}: leaf hashes were lost or removed")]
    BehindCheckpoint {
        /// The leaf-hash file.
        file: PathBuf,
        /// Leaves found.
        size: u64,
        /// Size of the newest signed checkpoint.
        signed: u64,
    },

    /// A write was attempted on a ledger opened with [`crate::Ledger::open_read_only`].
    #[error("the ledger was opened read-only")]
    ReadOnly,

    /// An earlier write or fsync failed; the ledger refuses writes until it is reopened.
    #[error("the ledger is poisoned by an earlier failed write or fsync; reopen it")]
    Poisoned,

    /// The node key file is missing, damaged or unreadable.
    #[error("node key {file}: {reason}")]
    Key {
        /// The key file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A proof did not verify.
    #[error("proof does not verify: {reason}")]
    InvalidProof {
        /// Why.
        reason: String,
    },

    /// A signed note (checkpoint) does not parse.
    #[error("malformed checkpoint note: {reason}")]
    MalformedNote {
        /// Why.
        reason: String,
    },

    /// A signature does not verify against the trusted key.
    #[error("bad signature on {what}: {reason}")]
    BadSignature {
        /// What was signed ("checkpoint", "receipt").
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// A newly presented checkpoint is older than the trusted one.
    #[error(
        "rollback: trusted checkpoint has size {trusted_size}, presented one has size {got_size}"
    )]
    Rollback {
        /// Size of the trusted checkpoint.
        trusted_size: u64,
        /// Size of the presented checkpoint.
        got_size: u64,
    },

    /// Two signed checkpoints disagree: same size, different roots, or a failed consistency proof.
    #[error("fork at size {size}: trusted root {trusted_root}, presented root {got_root}")]
    Fork {
        /// Tree size where the histories disagree.
        size: u64,
        /// Root the trust store holds.
        trusted_root: String,
        /// Root presented.
        got_root: String,
    },

    /// A newer checkpoint was presented without a consistency proof from the trusted one.
    #[error("checkpoint of size {got_size} is not proven consistent with the trusted checkpoint of size {trusted_size}; check a consistency proof from {trusted_size} to {got_size} first")]
    Unproven {
        /// Size of the trusted checkpoint.
        trusted_size: u64,
        /// Size of the presented checkpoint.
        got_size: u64,
    },

    /// No signed checkpoint fits the request.
    #[error("no signed checkpoint: {reason}")]
    NoCheckpoint {
        /// What was looked for.
        reason: String,
    },

    /// A proof bundle or trust file does not parse.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl LedgerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        LedgerError::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn proof(reason: impl Into<String>) -> Self {
        LedgerError::InvalidProof {
            reason: reason.into(),
        }
    }

    pub(crate) fn note(reason: impl Into<String>) -> Self {
        LedgerError::MalformedNote {
            reason: reason.into(),
        }
    }

    /// True for errors that mean stored data is damaged or tampered with (as opposed to a bad
    /// argument or an I/O failure).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            LedgerError::Corrupt { .. }
                | LedgerError::Checksum { .. }
                | LedgerError::BehindCheckpoint { .. }
                | LedgerError::Key { .. }
                | LedgerError::BadSignature { .. }
        )
    }
}
