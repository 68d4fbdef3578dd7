//! quiver-vector: distance kernels, vector files and the vector indexes (flat, HNSW, IVF-PQ)
//! with scalar (SQ8) and product (PQ) quantization. Knows nothing of the WAL or payloads.
//!
//! Convention: every index ranks by a *distance* where smaller is closer. For `l2` it is the
//! squared Euclidean distance; for `dot` and `cosine` it is the negated inner product
//! (cosine vectors are normalised before they are stored or queried).
//!
//! - [`distance`]: runtime-dispatched SIMD kernels (AVX-512, AVX2+FMA, NEON, scalar).
//! - [`vecfile`]: aligned, memory-mapped vector files (`docs/format/vectors.md`).
//! - [`space`]: the [`space::VectorSpace`] seam indexes traverse through; [`space::F32Space`].
//! - [`flat`]: exact top-k, parallel and blocked for batches.
//! - [`hnsw`]: the HNSW graph (Malkov & Yashunin), mmap-able (`docs/format/hnsw.md`).
//! - [`quant`], [`ivf`]: SQ8/PQ codes and IVF-PQ.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

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
/// The thread pool crate the parallel builds and batch searches run on (re-exported so
/// callers can size a pool with `rayon::ThreadPoolBuilder` and `install` work into it).
pub use rayon;
pub use space::{Filter, Neighbor};
