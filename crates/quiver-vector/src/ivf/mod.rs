//! IVF-PQ: an inverted-file index with product-quantized residuals (Jégou, Douze & Schmid,
//! "Product quantization for nearest neighbor search", TPAMI 2011, §IV "IVFADC").
//!
//! * A coarse quantizer of `nlist` centroids (k-means; spherical for cosine) splits the space
//!   into cells. Every vector `x` goes to the inverted list of its nearest centroid `c`.
//! * The residual `r = x − c` is product-quantized (`m` sub-spaces × 256 centroids, one byte
//!   each); a list holds `(id, code)` pairs, stored contiguously (CSR).
//! * A query probes the `nprobe` closest cells and scores their codes by ADC with one lookup
//!   table per query, `T[j][c] = ⟨q_j, centroid_{j,c}⟩`, valid for every list because
//!   - dot / cosine: `⟨q, x̂⟩ = ⟨q, c⟩ + ⟨q, r̂⟩`;
//!   - l2: `‖q − c − r̂‖² = ‖q − c‖² + (‖r̂‖² + 2⟨c, r̂⟩) − 2⟨q, r̂⟩`, where the bracket is
//!     computed once per vector at build time and stored next to its code (4 bytes).
//! * Optionally the best `k · oversample` candidates are re-ranked exactly on the f32 rows.

mod builder;
mod crc32;
mod search;
mod storage;
#[cfg(test)]
mod tests;

use crate::distance::dot;
use crate::quant::gemv::BlockedRows;
use crate::quant::ProductQuantizer;
use crate::Metric;

/// Build parameters of an [`IvfPqIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfPqParams {
    /// Number of coarse cells / inverted lists (`nlist`); at most the number of vectors.
    /// FAISS's rule of thumb is `4·√n` to `16·√n`.
    pub nlist: usize,
    /// PQ sub-spaces `m` (bytes per code); must divide the dimension. `dim / 8` (8 components
    /// per sub-quantizer) is the usual trade-off.
    pub pq_m: usize,
    /// Seed of sampling and k-means.
    pub seed: u64,
    /// Rows drawn to train the coarse and the residual quantizers (at least `nlist` and 256
    /// are used). FAISS draws `50 · nlist`.
    pub train_sample: usize,
}

impl IvfPqParams {
    /// `nlist` cells, `pq_m` sub-spaces, seed 0, and `50 · nlist` training rows.
    pub fn new(nlist: usize, pq_m: usize) -> Self {
        IvfPqParams {
            nlist,
            pq_m,
            seed: 0,
            train_sample: nlist.saturating_mul(50),
        }
    }
}

/// An IVF-PQ index over `n` vectors with ids `0..n` (the row numbers of the build data).
#[derive(Debug, Clone, PartialEq)]
pub struct IvfPqIndex {
    dim: usize,
    metric: Metric,
    /// `nlist × dim` coarse centroids, row-major.
    centroids: Vec<f32>,
    /// The residual quantizer (trained and scored under squared L2 on residuals).
    pq: ProductQuantizer,
    /// List `l` holds entries `offsets[l]..offsets[l + 1]`.
    offsets: Vec<u64>,
    /// Row id of each entry.
    ids: Vec<u32>,
    /// `m` bytes per entry.
    codes: Vec<u8>,
    /// l2 only: `‖r̂‖² + 2⟨c, r̂⟩` per entry (empty for dot / cosine).
    l2_terms: Vec<f32>,
    /// The centroids again in the blocked layout of the one-to-many dot kernel (probing).
    coarse: BlockedRows,
    /// `‖c‖²` per centroid (l2 probing).
    centroid_norms: Vec<f32>,
}

impl IvfPqIndex {
    /// Assembles an index from its stored parts, deriving the probing structures.
    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        dim: usize,
        metric: Metric,
        centroids: Vec<f32>,
        pq: ProductQuantizer,
        offsets: Vec<u64>,
        ids: Vec<u32>,
        codes: Vec<u8>,
        l2_terms: Vec<f32>,
    ) -> Self {
        let coarse = BlockedRows::new(&centroids, dim);
        let centroid_norms = centroids.chunks_exact(dim).map(|c| dot(c, c)).collect();
        IvfPqIndex {
            dim,
            metric,
            centroids,
            pq,
            offsets,
            ids,
            codes,
            l2_terms,
            coarse,
            centroid_norms,
        }
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of inverted lists (`nlist`).
    pub fn nlist(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// PQ sub-spaces (`m`, bytes per code).
    pub fn pq_m(&self) -> usize {
        self.pq.m()
    }

    /// Number of indexed vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Sizes of the inverted lists.
    pub fn list_sizes(&self) -> Vec<usize> {
        self.offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .collect()
    }

    /// Bytes held in RAM: coarse centroids, PQ codebooks, list offsets, ids, codes and the
    /// l2 terms (the f32 rows used for re-rank are not counted).
    pub fn index_bytes(&self) -> usize {
        self.centroids.len() * 4
            + self.pq.centroids().len() * 4
            + self.offsets.len() * 8
            + self.ids.len() * 4
            + self.codes.len()
            + self.l2_terms.len() * 4
            + self.centroid_norms.len() * 4
            + self.coarse.bytes()
    }
}
