//! Searching an IVF-PQ index: probe the `nprobe` closest cells, ADC over their codes, and an
//! optional exact re-rank.

use super::IvfPqIndex;
use crate::distance::dot;
use crate::quant::pq::adc;
use crate::quant::rerank::rerank_checked;
use crate::quant::topk::TopK;
use crate::quant::validate;
use crate::{Metric, Result, VectorError};

impl IvfPqIndex {
    /// The `k` nearest indexed vectors to `query`, closest first, as `(id, distance)`.
    ///
    /// `nprobe` cells are scanned (clamped to `nlist`). Without `rescore` the distances are the
    /// ADC approximations. With `rescore = Some((rows, oversample))` the `k · oversample` best
    /// candidates are re-ranked exactly against `rows` (the f32 vectors, row-major, row `i` =
    /// id `i`) and the distances are exact.
    ///
    /// Errors: `query` of the wrong dimension, non-finite, or zero under cosine; `nprobe == 0`;
    /// `rows` not holding every indexed id; `oversample == 0`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        nprobe: usize,
        rescore: Option<(&[f32], usize)>,
    ) -> Result<Vec<(u32, f32)>> {
        validate::vector(query, self.dim, self.metric)?;
        if nprobe == 0 {
            return Err(VectorError::InvalidParameter {
                name: "nprobe",
                reason: "nprobe must be at least 1".into(),
            });
        }
        if let Some((rows, oversample)) = rescore {
            validate::rescore_args(rows, self.dim, self.len(), oversample)?;
        }
        let shortlist = match rescore {
            Some((_, oversample)) => k.saturating_mul(oversample),
            None => k,
        };
        let candidates = self.scan(query, shortlist, nprobe);
        match rescore {
            Some((rows, _)) => {
                let ids: Vec<u32> = candidates.iter().map(|c| c.0).collect();
                Ok(rerank_checked(&ids, query, rows, self.dim, self.metric, k))
            }
            None => Ok(candidates),
        }
    }

    /// The `nprobe` cells closest to a checked query, as `(cell, coarse distance)` where the
    /// coarse distance is `‖q − c‖²` for l2 and `−⟨q, c⟩` otherwise.
    pub(crate) fn probe(&self, query: &[f32], nprobe: usize) -> Vec<(u32, f32)> {
        let mut dots = Vec::with_capacity(self.coarse.rows() + 16);
        self.coarse.dots(query, &mut dots);
        let mut cells: Vec<(u32, f32)> = match self.metric {
            Metric::L2 => {
                let qq = dot(query, query);
                dots.iter()
                    .zip(&self.centroid_norms)
                    .enumerate()
                    .map(|(c, (&qc, &cc))| (c as u32, (qq - 2.0 * qc + cc).max(0.0)))
                    .collect()
            }
            Metric::Dot | Metric::Cosine => dots
                .iter()
                .enumerate()
                .map(|(c, &qc)| (c as u32, -qc))
                .collect(),
        };
        let nprobe = nprobe.min(cells.len());
        let by_dist = |a: &(u32, f32), b: &(u32, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        if nprobe < cells.len() {
            cells.select_nth_unstable_by(nprobe, by_dist);
            cells.truncate(nprobe);
        }
        cells.sort_unstable_by(by_dist);
        cells
    }

    /// ADC scan of the probed cells: the `n` best `(id, approximate distance)`.
    fn scan(&self, query: &[f32], n: usize, nprobe: usize) -> Vec<(u32, f32)> {
        let m = self.pq.m();
        // One table for every list: ⟨q_j, centroid_{j,c}⟩, scaled so that the table sum is
        // the residual's share of the distance (−2⟨q, r̂⟩ for l2, −⟨q, r̂⟩ otherwise).
        let scale = if self.metric == Metric::L2 {
            -2.0
        } else {
            -1.0
        };
        // The tables are linear in the query: scale it instead of the 256·m entries.
        let scaled: Vec<f32> = query.iter().map(|&x| x * scale).collect();
        let tables = self.pq.inner_product_tables(&scaled);
        let mut top = TopK::new(n);
        let mut dists = Vec::new();
        for (cell, base) in self.probe(query, nprobe) {
            let l = cell as usize;
            let (Some(&start), Some(&end)) = (self.offsets.get(l), self.offsets.get(l + 1)) else {
                continue;
            };
            let (start, end) = (start as usize, end as usize);
            let (Some(ids), Some(codes)) =
                (self.ids.get(start..end), self.codes.get(start * m..end * m))
            else {
                continue;
            };
            adc::scan(&tables, codes, &mut dists);
            if self.metric == Metric::L2 {
                let Some(terms) = self.l2_terms.get(start..end) else {
                    continue;
                };
                for ((&id, &d), &t) in ids.iter().zip(&dists).zip(terms) {
                    let d = base + t + d;
                    if d < top.threshold() {
                        top.push(id, d);
                    }
                }
            } else {
                for (&id, &d) in ids.iter().zip(&dists) {
                    let d = base + d;
                    if d < top.threshold() {
                        top.push(id, d);
                    }
                }
            }
        }
        top.into_sorted()
    }
}
