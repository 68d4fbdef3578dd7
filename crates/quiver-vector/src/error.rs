use std::path::PathBuf;
use thiserror::Error;

/// Errors of the vector engine.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VectorError {
    /// A vector's length differs from the index dimension.
    #[error("wrong vector dimension: expected {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A component is NaN or infinite.
    #[error("vector component {index} is not finite ({value})")]
    NonFinite { index: usize, value: f32 },
    /// A zero vector cannot be normalised for the cosine metric.
    #[error("zero vector cannot be used with the cosine metric")]
    ZeroVector,
    /// Training needs data and got none (or too little).
    #[error("cannot train {what}: need at least {need} vectors, got {got}")]
    NotEnoughTrainingData {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// Under cosine, quantizers and IVF take vectors in stored form: unit length.
    #[error("under the cosine metric vectors must be unit length (normalise them first, e.g. with distance::prepare); this one has norm {norm}")]
    NotUnitLength { norm: f32 },
    /// Training data whose range in one dimension SQ8 cannot encode.
    #[error("dimension {dimension} spans [{lo}, {hi}]: too wide for 8-bit codes scored in f32 (their squared step overflows)")]
    RangeTooWide { dimension: usize, lo: f32, hi: f32 },
    /// A parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// An I/O error on a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's bytes do not match its format.
    #[error("corrupted {file} at byte {offset}: {reason}")]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = VectorError> = std::result::Result<T, E>;
