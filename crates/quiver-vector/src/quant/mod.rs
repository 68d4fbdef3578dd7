//! Scalar (SQ8) and product (PQ) quantization, the k-means they share with IVF, and the exact
//! re-rank that always follows an approximate scan.
//!
//! * [`sq8`]: per-dimension 8-bit scalar quantization (one byte per component, ranges trained
//!   on a sample), scored asymmetrically (f32 query against u8 codes) with SIMD kernels.
//! * [`pq`]: product quantization (Jégou, Douze & Schmid, 2011): the vector is cut into `m`
//!   sub-vectors of `dsub = dim / m` components, each replaced by the index of its nearest of
//!   `ksub = 2^nbits = 256` sub-space centroids; distances are computed by asymmetric distance
//!   computation (ADC) from per-query lookup tables.
//! * [`kmeans`]: seeded Lloyd k-means, used by PQ (sub-space codebooks) and IVF (coarse lists).
//! * [`rerank()`]: exact re-scoring of candidate ids against the full-precision f32 rows.
//!
//! Distances follow the crate convention: smaller is closer (squared L2, or the negated inner
//! product for `dot` and `cosine`).

pub(crate) mod gemv;
pub mod kmeans;
pub mod pq;
pub(crate) mod rerank;
pub mod sq8;
pub(crate) mod topk;
pub(crate) mod validate;

#[cfg(test)]
pub(crate) mod testdata;
#[cfg(test)]
mod tests;

pub use pq::{PqCodes, ProductQuantizer};
pub use rerank::rerank;
pub use sq8::{Sq8Codes, Sq8Quantizer};
