//! quiver-vector: distance kernels, vector files and the vector indexes (flat, HNSW, IVF-PQ)
//! with scalar (SQ8) and product (PQ) quantization. Knows nothing of the WAL or payloads.
//!
//! Convention: every index ranks by a *distance* where smaller is closer. For `l2` it is the
//! squared Euclidean distance; for `dot` and `cosine` it is the negated inner product
//! (cosine vectors are normalised before they are stored or queried).

pub mod distance;
mod error;
pub mod flat;
pub mod hnsw;
pub mod ivf;
pub mod quant;
pub mod space;
pub mod vecfile;

pub use error::{Result, VectorError};
pub use quiver_core::Metric;
