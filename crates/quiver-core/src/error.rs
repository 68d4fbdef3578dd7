use thiserror::Error;

/// Errors of the shared model: invalid user input and undecodable entries.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A vector's length differs from the collection's dimension.
    #[error("wrong vector dimension: expected {expected}, got {got}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A vector component is NaN or infinite.
    #[error(
        "vector component {index} is not finite ({value}); every component must be a finite f32"
    )]
    NonFiniteComponent { index: usize, value: f32 },
    /// A vector has no components (omit the vector instead).
    #[error("vector has no components; leave `vector` out for a record without one")]
    EmptyVector,
    /// A vector has more components than any collection accepts.
    #[error("vector has {dim} components, over the maximum of {max}")]
    VectorTooLong { dim: usize, max: usize },
    /// A string id is empty, or a record has no id. (One too long is [`CoreError::TooLarge`].)
    #[error("invalid id: {reason}")]
    InvalidId { reason: String },
    /// A write batch holds no operation (it would have no sequence range to acknowledge).
    #[error("a write batch needs at least one operation")]
    EmptyBatch,
    /// A field is larger than the configured maximum.
    #[error("{field} is {size} bytes, over the maximum of {max} bytes")]
    TooLarge {
        field: &'static str,
        size: usize,
        max: usize,
    },
    /// A payload is not valid JSON.
    #[error("payload is not valid JSON: {reason}")]
    InvalidJson { reason: String },
    /// A timestamp could not be parsed.
    #[error("invalid timestamp {value:?}: expected an RFC 3339 string or integer nanoseconds")]
    InvalidTimestamp { value: String },
    /// A configuration value is out of range.
    #[error("invalid configuration {key}: {reason}")]
    InvalidConfig { key: &'static str, reason: String },
    /// An encoded entry could not be decoded.
    #[error("cannot decode entry at byte {offset}: {reason}")]
    Decode { offset: usize, reason: &'static str },
}
