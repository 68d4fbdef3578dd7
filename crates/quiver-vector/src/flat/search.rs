//! Exact top-k scans.

use super::{FlatParams, TopK};
use crate::distance::{self, Kernels};
use crate::space::{F32Space, QueryScorer, VectorSpace};
use crate::{Metric, Neighbor, Result, VectorError};
use rayon::prelude::*;

/// Queries scored together against one block of rows in [`search_batch`].
pub const BATCH_QUERY_BLOCK: usize = 16;
/// Rows per block in [`search_batch`] (~ 200 KiB of 384-d rows, i.e. L2-resident).
pub const BATCH_ROW_BLOCK: usize = 128;

fn check_query(dim: usize, q: &[f32]) -> Result<()> {
    distance::validate(q, dim)
}

/// Exact top-`k` of one query (already in stored form: normalised for cosine) over `space`.
/// Runs on the calling thread. Errors: wrong dimension or non-finite components.
pub fn search<S: VectorSpace>(
    space: &S,
    query: &[f32],
    p: &FlatParams<'_>,
) -> Result<Vec<Neighbor>> {
    check_query(space.dim(), query)?;
    let mut top = TopK::new(p.k);
    let scorer = space.scorer(query);
    let n = space.len() as u32;
    if p.unrestricted() {
        for i in 0..n {
            let d = scorer.distance(i);
            if d <= top.threshold() {
                top.push(i, d);
            }
        }
    } else {
        for i in (0..n).filter(|&i| p.accepts(i)) {
            let d = scorer.distance(i);
            if d <= top.threshold() {
                top.push(i, d);
            }
        }
    }
    Ok(top.into_sorted())
}

/// Exact top-`k` of many queries (each in stored form) over f32 rows, on all rayon threads.
///
/// Queries are cut into blocks of [`BATCH_QUERY_BLOCK`]; each block walks the rows in blocks
/// of [`BATCH_ROW_BLOCK`], scoring every query of the block against a row block while it is
/// cache-resident, so memory traffic is divided by the query block size.
pub fn search_batch(
    space: &F32Space,
    queries: &[Vec<f32>],
    p: &FlatParams<'_>,
) -> Result<Vec<Vec<Neighbor>>> {
    for q in queries {
        check_query(space.dim(), q)?;
    }
    if p.k == 0 {
        return Ok(vec![Vec::new(); queries.len()]);
    }
    let k = Kernels::best();
    let (kernel, negate) = match space.metric() {
        Metric::L2 => (k.l2, false),
        Metric::Dot | Metric::Cosine => (k.dot, true),
    };
    let v = space.vectors();
    let (data, stride, dim, n) = (v.data(), v.stride(), v.dim(), v.len());
    let blocks: Vec<Vec<Vec<Neighbor>>> = queries
        .par_chunks(BATCH_QUERY_BLOCK)
        .map(|qb| {
            let mut tops: Vec<TopK> = qb.iter().map(|_| TopK::new(p.k)).collect();
            let mut start = 0;
            while start < n {
                let end = (start + BATCH_ROW_BLOCK).min(n);
                for (q, top) in qb.iter().zip(tops.iter_mut()) {
                    for i in start..end {
                        let id = i as u32;
                        let row = &data[i * stride..i * stride + dim];
                        let d = kernel(q, row);
                        let d = if negate { -d } else { d };
                        if d <= top.threshold() && (p.unrestricted() || p.accepts(id)) {
                            top.push(id, d);
                        }
                    }
                }
                start = end;
            }
            tops.into_iter().map(TopK::into_sorted).collect()
        })
        .collect();
    let out: Vec<Vec<Neighbor>> = blocks.into_iter().flatten().collect();
    if out.len() != queries.len() {
        return Err(VectorError::InvalidParameter {
            name: "queries",
            reason: "internal batch size mismatch".into(),
        });
    }
    Ok(out)
}
