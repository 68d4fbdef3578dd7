//! PQ: product quantization (Jégou, Douze & Schmid, "Product quantization for nearest
//! neighbor search", TPAMI 2011).
//!
//! A vector of dimension `D` is cut into `m` sub-vectors of `dsub = D / m` components; each
//! sub-space `j` has its own codebook of `ksub = 2^nbits` centroids (`nbits = 8`, so 256) trained
//! by k-means, and a sub-vector is stored as the index of its nearest centroid: `m` bytes per
//! vector. Distances use ADC (asymmetric distance computation): per query, a lookup table
//! `T[j][c]` holds the distance between the query's `j`-th sub-vector and centroid `c` of
//! sub-space `j`, and a code `(c_0 … c_{m−1})` scores `Σ_j T[j][c_j]` ([`adc`]).

pub mod adc;
mod search;
#[cfg(test)]
mod tests;

pub use search::{PqQuery, PqScorer};

use super::kmeans::{nearest_transposed, transpose, KMeans};
use super::validate;
use crate::{Metric, Result, VectorError};
use rayon::prelude::*;

/// Bits per sub-quantizer index (`nbits`).
pub const NBITS: u32 = 8;
/// Centroids per sub-space (`ksub = 2^nbits`).
pub const KSUB: usize = 1 << NBITS;

/// Default number of training rows: 64 per centroid (FAISS warns below 39).
pub const DEFAULT_TRAIN_SAMPLE: usize = 64 * KSUB;

/// A trained product quantizer: `m` codebooks of [`KSUB`] centroids of `dsub` components.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuantizer {
    dim: usize,
    m: usize,
    dsub: usize,
    metric: Metric,
    /// `m × ksub × dsub`, codebook-major.
    centroids: Vec<f32>,
    /// `m × dsub × ksub`, the same values component-major (for tables and encoding).
    centroids_t: Vec<f32>,
}

impl ProductQuantizer {
    /// Trains `m` codebooks of 256 centroids on up to [`DEFAULT_TRAIN_SAMPLE`] rows of `data`
    /// (row-major, `dim` per row) drawn with `seed`; k-means runs 10 Lloyd iterations per
    /// sub-space, the sub-spaces in parallel.
    ///
    /// With fewer than 256 rows, each sub-space gets one centroid per row (padded to 256).
    ///
    /// Errors: `m == 0` or `dim % m != 0`, `data` not whole rows (`InvalidParameter`); no rows
    /// (`NotEnoughTrainingData`); NaN/inf (`NonFinite`); zero rows under cosine.
    pub fn train(data: &[f32], dim: usize, m: usize, metric: Metric, seed: u64) -> Result<Self> {
        Self::train_with(data, dim, m, metric, seed, DEFAULT_TRAIN_SAMPLE, 10)
    }

    /// [`train`](Self::train) with an explicit training sample size and iteration count.
    pub fn train_with(
        data: &[f32],
        dim: usize,
        m: usize,
        metric: Metric,
        seed: u64,
        train_sample: usize,
        iters: usize,
    ) -> Result<Self> {
        let n = validate::matrix(data, dim, metric)?;
        if m == 0 || !dim.is_multiple_of(m) {
            return Err(VectorError::InvalidParameter {
                name: "m",
                reason: format!("the PQ sub-space count m={m} must divide the dimension {dim}"),
            });
        }
        let sample = validate::sample_rows(n, train_sample.max(KSUB), seed);
        if sample.is_empty() {
            return Err(VectorError::NotEnoughTrainingData {
                what: "pq",
                need: 1,
                got: 0,
            });
        }
        // Fewer rows than centroids (a small segment): every row gets a centroid of its own
        // and the codebook is padded with copies of the first, which encoding never prefers.
        let ksub = sample.len().min(KSUB);
        let dsub = dim / m;
        let books: Vec<Result<Vec<f32>>> = (0..m)
            .into_par_iter()
            .map(|j| {
                let mut sub = Vec::with_capacity(sample.len() * dsub);
                for &i in &sample {
                    sub.extend_from_slice(&data[i * dim + j * dsub..i * dim + (j + 1) * dsub]);
                }
                let mut km = KMeans::new(ksub, seed.wrapping_add(j as u64 + 1));
                km.iters = iters;
                let mut book = km.train(&sub, dsub)?;
                for c in ksub..KSUB {
                    book.extend_from_within(c % ksub * dsub..(c % ksub + 1) * dsub);
                }
                Ok(book)
            })
            .collect();
        let mut centroids = Vec::with_capacity(m * KSUB * dsub);
        for book in books {
            centroids.extend_from_slice(&book?);
        }
        Ok(Self::from_centroids(dim, m, metric, centroids))
    }

    /// Builds a quantizer from `m × 256 × dsub` codebook-major centroids (already checked).
    pub(crate) fn from_centroids(
        dim: usize,
        m: usize,
        metric: Metric,
        centroids: Vec<f32>,
    ) -> Self {
        let dsub = dim / m;
        let mut centroids_t = Vec::with_capacity(centroids.len());
        for book in centroids.chunks_exact(KSUB * dsub) {
            centroids_t.extend_from_slice(&transpose(book, KSUB, dsub));
        }
        ProductQuantizer {
            dim,
            m,
            dsub,
            metric,
            centroids,
            centroids_t,
        }
    }

    /// Dimension `D` of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of sub-spaces `m` (= bytes per code).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Components per sub-space `dsub = D / m`.
    pub fn dsub(&self) -> usize {
        self.dsub
    }

    /// Metric the codes are scored under.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The codebooks, `m × 256 × dsub` row-major.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Encodes one vector into `m` bytes.
    pub fn encode(&self, v: &[f32]) -> Result<Vec<u8>> {
        validate::vector(v, self.dim, self.metric)?;
        let mut out = vec![0u8; self.m];
        self.encode_into(v, &mut out, &mut vec![0.0; KSUB]);
        Ok(out)
    }

    /// Encodes a checked vector into `out` (`m` bytes); `scratch` holds 256 values.
    pub(crate) fn encode_into(&self, v: &[f32], out: &mut [u8], scratch: &mut [f32]) {
        let book = KSUB * self.dsub;
        for ((o, x), ct) in out
            .iter_mut()
            .zip(v.chunks_exact(self.dsub))
            .zip(self.centroids_t.chunks_exact(book))
        {
            // `nearest_transposed` returns an index below KSUB = 256.
            *o = nearest_transposed(x, ct, KSUB, scratch) as u8;
        }
    }

    /// Reconstructs a vector from its `m`-byte code.
    pub fn decode(&self, code: &[u8]) -> Result<Vec<f32>> {
        if code.len() != self.m {
            return Err(VectorError::DimensionMismatch {
                expected: self.m,
                got: code.len(),
            });
        }
        let mut out = Vec::with_capacity(self.dim);
        for (j, &c) in code.iter().enumerate() {
            let start = (j * KSUB + c as usize) * self.dsub;
            out.extend_from_slice(&self.centroids[start..start + self.dsub]);
        }
        Ok(out)
    }

    /// Encodes every row of `data` (in parallel) into a code store.
    pub fn encode_all(&self, data: &[f32]) -> Result<PqCodes> {
        let codes = self.encode_rows(data)?;
        Ok(PqCodes {
            pq: self.clone(),
            codes,
        })
    }

    /// Encodes every row of `data` into `n × m` bytes.
    pub(crate) fn encode_rows(&self, data: &[f32]) -> Result<Vec<u8>> {
        let n = validate::matrix(data, self.dim, self.metric)?;
        if n > u32::MAX as usize {
            return Err(VectorError::InvalidParameter {
                name: "data",
                reason: format!("{n} rows exceed the u32 id space"),
            });
        }
        let mut codes = vec![0u8; n * self.m];
        codes
            .par_chunks_mut(self.m * 64)
            .zip(data.par_chunks(self.dim * 64))
            .for_each(|(out, rows)| {
                let mut scratch = vec![0.0f32; KSUB];
                for (o, v) in out
                    .chunks_exact_mut(self.m)
                    .zip(rows.chunks_exact(self.dim))
                {
                    self.encode_into(v, o, &mut scratch);
                }
            });
        Ok(codes)
    }
}

/// PQ codes of `n` vectors (`n × m` bytes, row-major) with their quantizer.
///
/// Implements [`VectorSpace`](crate::space::VectorSpace) (ADC scoring), so HNSW can traverse
/// over the codes; [`search_flat`](PqCodes::search_flat) scans them all.
#[derive(Debug, Clone)]
pub struct PqCodes {
    pq: ProductQuantizer,
    codes: Vec<u8>,
}

impl PqCodes {
    /// An empty store for `pq`.
    pub fn new(pq: ProductQuantizer) -> Self {
        PqCodes {
            pq,
            codes: Vec::new(),
        }
    }

    /// Appends one vector, returning its id.
    pub fn push(&mut self, v: &[f32]) -> Result<u32> {
        let code = self.pq.encode(v)?;
        let id = u32::try_from(self.codes.len() / self.pq.m).map_err(|_| {
            VectorError::InvalidParameter {
                name: "data",
                reason: "the u32 id space is full".into(),
            }
        })?;
        self.codes.extend_from_slice(&code);
        Ok(id)
    }

    /// The quantizer.
    pub fn quantizer(&self) -> &ProductQuantizer {
        &self.pq
    }

    /// The code of point `i` (`m` bytes), if it exists.
    pub fn code(&self, i: u32) -> Option<&[u8]> {
        let start = (i as usize).checked_mul(self.pq.m)?;
        self.codes.get(start..start + self.pq.m)
    }

    /// All codes, row-major.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Bytes held in RAM by the codes and the codebooks (`n·m + 256·D·4`).
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() + self.pq.centroids.len() * 4
    }
}
