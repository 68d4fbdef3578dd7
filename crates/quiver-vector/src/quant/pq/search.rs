//! Query preparation, the [`VectorSpace`] implementation and flat scans over PQ codes.

use super::adc::{self, Table};
use super::{PqCodes, ProductQuantizer};
use crate::distance::distance;
use crate::quant::rerank::{prefetch, rerank_checked};
use crate::quant::topk::TopK;
use crate::quant::validate;
use crate::space::{QueryScorer, VectorSpace};
use crate::{Metric, Result};

/// A query prepared for ADC: the lookup tables, signed so that the table sum is a distance
/// (squared L2 partials, or negated inner-product partials for dot / cosine).
#[derive(Debug, Clone)]
pub struct PqQuery {
    tables: Vec<Table>,
}

impl PqQuery {
    /// Builds the `m × 256` tables for `query` (length `D`, normalised for cosine).
    pub fn new(pq: &ProductQuantizer, query: &[f32]) -> Self {
        let tables = match pq.metric {
            Metric::L2 => pq.l2_tables(query),
            Metric::Dot | Metric::Cosine => {
                let mut t = pq.inner_product_tables(query);
                t.iter_mut().flatten().for_each(|x| *x = -*x);
                t
            }
        };
        PqQuery { tables }
    }

    /// Approximate distance to one code.
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        adc::score(&self.tables, code)
    }

    /// The tables.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }
}

/// Scores PQ codes against one prepared query.
pub struct PqScorer<'a> {
    codes: &'a PqCodes,
    query: PqQuery,
}

impl QueryScorer for PqScorer<'_> {
    #[inline]
    fn distance(&self, i: u32) -> f32 {
        self.codes
            .code(i)
            .map_or(f32::INFINITY, |c| self.query.distance(c))
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        self.codes.prefetch(i);
    }
}

impl VectorSpace for PqCodes {
    fn same_point(&self, i: u32, j: u32) -> bool {
        matches!((self.code(i), self.code(j)), (Some(a), Some(b)) if a == b)
    }

    type Scorer<'a> = PqScorer<'a>;

    fn len(&self) -> usize {
        self.codes.len() / self.pq.m
    }

    fn dim(&self) -> usize {
        self.pq.dim
    }

    fn scorer<'a>(&'a self, query: &'a [f32]) -> PqScorer<'a> {
        PqScorer {
            codes: self,
            query: PqQuery::new(&self.pq, query),
        }
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        if let Some(c) = self.code(i) {
            prefetch(c);
        }
    }

    /// Distance between the reconstructions of two stored points (infinite if either id is
    /// out of range).
    fn pair_distance(&self, i: u32, j: u32) -> f32 {
        let (Some(a), Some(b)) = (self.code(i), self.code(j)) else {
            return f32::INFINITY;
        };
        match (self.pq.decode(a), self.pq.decode(b)) {
            (Ok(a), Ok(b)) => distance(self.pq.metric, &a, &b),
            _ => f32::INFINITY,
        }
    }
}

impl PqCodes {
    /// Scans every code with ADC and returns the `n` closest points by approximate distance,
    /// closest first.
    ///
    /// Errors: `query` of the wrong dimension, non-finite, or zero under cosine.
    pub fn search_flat(&self, query: &[f32], n: usize) -> Result<Vec<(u32, f32)>> {
        validate::vector(query, self.pq.dim, self.pq.metric)?;
        let q = PqQuery::new(&self.pq, query);
        let mut top = TopK::new(n);
        let mut dists = Vec::with_capacity(1024);
        let block = 1024 * self.pq.m;
        for (b, codes) in self.codes.chunks(block).enumerate() {
            adc::scan(&q.tables, codes, &mut dists);
            let base = (b * 1024) as u32;
            for (i, &d) in dists.iter().enumerate() {
                if d < top.threshold() {
                    top.push(base + i as u32, d);
                }
            }
        }
        Ok(top.into_sorted())
    }

    /// ADC scan for the `k · oversample` closest codes, then an exact re-rank on the f32
    /// `rows` (row-major, same ids): the `k` closest by exact distance.
    ///
    /// Errors: as [`search_flat`](Self::search_flat); `rows` not holding every coded point;
    /// `oversample == 0`.
    pub fn search_rerank(
        &self,
        query: &[f32],
        k: usize,
        rows: &[f32],
        oversample: usize,
    ) -> Result<Vec<(u32, f32)>> {
        let dim = self.pq.dim;
        validate::rescore_args(rows, dim, self.len(), oversample)?;
        let candidates = self.search_flat(query, k.saturating_mul(oversample))?;
        let ids: Vec<u32> = candidates.iter().map(|c| c.0).collect();
        Ok(rerank_checked(&ids, query, rows, dim, self.pq.metric, k))
    }
}
