//! Exact re-rank of approximate candidates against the full-precision rows.

use super::topk::TopK;
use super::validate;
use crate::distance::distance;
use crate::{Metric, Result, VectorError};

/// Re-scores `candidates` (row ids into `rows`, a row-major f32 matrix of dimension `dim`)
/// exactly against `query` under `metric` and returns the `k` closest, closest first, as
/// `(id, exact distance)`. Duplicate candidate ids are scored once.
///
/// Errors: `query` of the wrong dimension or non-finite; `rows` not a whole number of rows;
/// a candidate id past the last row (`InvalidParameter`).
pub fn rerank(
    candidates: &[u32],
    query: &[f32],
    rows: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> Result<Vec<(u32, f32)>> {
    let n = validate::rows(rows, dim)?;
    validate::vector(query, dim, metric)?;
    let mut top = TopK::new(k.min(candidates.len()));
    let mut seen = std::collections::HashSet::with_capacity(candidates.len());
    for &id in candidates {
        let i = id as usize;
        if i >= n {
            return Err(VectorError::InvalidParameter {
                name: "candidates",
                reason: format!("candidate id {id} is past the last of {n} rows"),
            });
        }
        if !seen.insert(id) {
            continue;
        }
        let row = &rows[i * dim..(i + 1) * dim];
        top.push(id, distance(metric, query, row));
    }
    Ok(top.into_sorted())
}

/// Re-rank of candidates already known to be distinct, in range, and a checked query.
pub(crate) fn rerank_checked(
    candidates: &[u32],
    query: &[f32],
    rows: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    for &id in candidates {
        let start = id as usize * dim;
        if let Some(row) = rows.get(start..start + dim) {
            top.push(id, distance(metric, query, row));
        }
    }
    top.into_sorted()
}
