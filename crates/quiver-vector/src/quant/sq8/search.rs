//! Query preparation, the [`VectorSpace`] implementation and flat scans over SQ8 codes.

use super::kernel::{self, Isa};
use super::{Sq8Codes, Sq8Quantizer};
use crate::distance::distance;
use crate::quant::rerank::{prefetch, rerank_checked};
use crate::quant::topk::TopK;
use crate::quant::validate;
use crate::space::{QueryScorer, VectorSpace};
use crate::{Metric, Result};

/// A query prepared against an [`Sq8Quantizer`]: the per-dimension scale is folded in so that
/// one code costs one u8→f32 conversion and one FMA per component.
///
/// * dot / cosine: `⟨q, x̂⟩ = Σ q_d·min_d + Σ (q_d·scale_d)·c_d`, distance = its negation.
/// * l2: `‖q − x̂‖² = Σ scale_d²·((q_d − min_d)/scale_d − c_d)²` (+ the exact term of every
///   dimension whose range is a single value).
#[derive(Debug, Clone)]
pub struct Sq8Query {
    isa: Isa,
    metric: Metric,
    q: Vec<f32>,
    w: Vec<f32>,
    bias: f32,
}

impl Sq8Query {
    /// Prepares `query` (length `dim`, already normalised for cosine).
    pub fn new(quantizer: &Sq8Quantizer, query: &[f32], isa: Isa) -> Self {
        let (mins, scales) = (&quantizer.mins, &quantizer.scales);
        match quantizer.metric {
            Metric::L2 => {
                let mut bias = 0.0f32;
                let mut q = Vec::with_capacity(mins.len());
                let mut w = Vec::with_capacity(mins.len());
                for ((&x, &lo), &s) in query.iter().zip(mins).zip(scales) {
                    if s > 0.0 {
                        q.push((x - lo) / s);
                        w.push(s * s);
                    } else {
                        bias += (x - lo) * (x - lo);
                        q.push(0.0);
                        w.push(0.0);
                    }
                }
                Sq8Query {
                    isa,
                    metric: Metric::L2,
                    q,
                    w,
                    bias,
                }
            }
            metric @ (Metric::Dot | Metric::Cosine) => {
                let bias: f32 = query.iter().zip(mins).map(|(&x, &lo)| x * lo).sum();
                let q = query.iter().zip(scales).map(|(&x, &s)| x * s).collect();
                Sq8Query {
                    isa,
                    metric,
                    q,
                    w: Vec::new(),
                    bias,
                }
            }
        }
    }

    /// Approximate distance (smaller is closer) from the query to one code.
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        match self.metric {
            Metric::L2 => self.bias + kernel::l2_u8(self.isa, &self.q, &self.w, code),
            Metric::Dot | Metric::Cosine => -(self.bias + kernel::dot_u8(self.isa, &self.q, code)),
        }
    }
}

/// Scores SQ8 codes against one prepared query.
pub struct Sq8Scorer<'a> {
    codes: &'a Sq8Codes,
    query: Sq8Query,
}

impl QueryScorer for Sq8Scorer<'_> {
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

impl VectorSpace for Sq8Codes {
    fn same_point(&self, i: u32, j: u32) -> bool {
        matches!((self.code(i), self.code(j)), (Some(a), Some(b)) if a == b)
    }

    type Scorer<'a> = Sq8Scorer<'a>;

    fn len(&self) -> usize {
        self.codes.len() / self.quantizer.dim
    }

    fn dim(&self) -> usize {
        self.quantizer.dim
    }

    fn scorer<'a>(&'a self, query: &'a [f32]) -> Sq8Scorer<'a> {
        Sq8Scorer {
            codes: self,
            query: Sq8Query::new(&self.quantizer, query, self.isa),
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
        match (self.code(i), self.code(j)) {
            (Some(a), Some(b)) => {
                let (Ok(a), Ok(b)) = (self.quantizer.decode(a), self.quantizer.decode(b)) else {
                    return f32::INFINITY;
                };
                distance(self.quantizer.metric, &a, &b)
            }
            _ => f32::INFINITY,
        }
    }
}

impl Sq8Codes {
    /// Scans every code and returns the `n` closest points by approximate distance,
    /// closest first.
    ///
    /// Errors: `query` of the wrong dimension, non-finite, or zero under cosine.
    pub fn search_flat(&self, query: &[f32], n: usize) -> Result<Vec<(u32, f32)>> {
        let q = &self.quantizer;
        validate::vector(query, q.dim, q.metric)?;
        let prepared = Sq8Query::new(q, query, self.isa);
        let mut top = TopK::new(n);
        for (i, code) in self.codes.chunks_exact(q.dim).enumerate() {
            let d = prepared.distance(code);
            if d < top.threshold() {
                top.push(i as u32, d);
            }
        }
        Ok(top.into_sorted())
    }

    /// Flat scan for the `k · oversample` closest codes, then an exact re-rank of those on the
    /// f32 `rows` (row-major, same ids): the `k` closest by exact distance.
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
        let q = &self.quantizer;
        validate::rescore_args(rows, q.dim, self.len(), oversample)?;
        let candidates = self.search_flat(query, k.saturating_mul(oversample))?;
        let ids: Vec<u32> = candidates.iter().map(|c| c.0).collect();
        Ok(rerank_checked(&ids, query, rows, q.dim, q.metric, k))
    }
}
