//! Exact top-k scans.

use super::{FlatParams, TopK};
use crate::distance::{self, Kernels};
use crate::space::{F32Space, QueryScorer, VectorSpace};
use crate::{Metric, Neighbor, Result, VectorError};
use rayon::prelude::*;

/// Queries scored together against one block of rows in [`search_batch`].
pub const BATCH_QUERY_BLOCK: usize = 64;
/// Rows per block in [`search_batch`] (~ 200 KiB of 384-d rows, i.e. L2-resident)./
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
/// cache-resident. Where the kernels offer a register-blocked 4×4 inner-product kernel
/// (AVX-512), 4 queries × 4 rows are scored per call (squared L2 then comes from
/// `|q|² + |r|² − 2·q·r`, as in FAISS), so each row chunk is loaded once for four queries.
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
    let kern = Kernels::best();
    let metric = space.metric();
    let (kernel, negate) = match metric {
        Metric::L2 => (kern.l2, false),
        Metric::Dot | Metric::Cosine => (kern.dot, true),
    };
    let v = space.vectors();
    let (data, stride, dim, n) = (v.data(), v.stride(), v.dim(), v.len());
    let row = |i: usize| &data[i * stride..i * stride + dim];
    let l2 = metric == Metric::L2;
    let row_norms: Vec<f32> = if l2 && kern.dot_4x4.is_some() {
        (0..n)
            .into_par_iter()
            .map(|i| (kern.dot)(row(i), row(i)))
            .collect()
    } else {
        Vec::new()
    };
    let offer = |top: &mut TopK, id: usize, d: f32| {
        let id = id as u32;
        if d <= top.threshold() && (p.unrestricted() || p.accepts(id)) {
            top.push(id, d);
        }
    };
    let blocks: Vec<Vec<Vec<Neighbor>>> = queries
        .par_chunks(BATCH_QUERY_BLOCK)
        .map(|qb| {
            let mut tops: Vec<TopK> = qb.iter().map(|_| TopK::new(p.k)).collect();
            let qnorms: Vec<f32> = qb.iter().map(|q| (kern.dot)(q, q)).collect();
            let pair = |qi: usize, top: &mut TopK, rows: std::ops::Range<usize>| {
                for i in rows {
                    let d = kernel(&qb[qi], row(i));
                    offer(top, i, if negate { -d } else { d });
                }
            };
            let mut start = 0;
            while start < n {
                let end = (start + BATCH_ROW_BLOCK).min(n);
                let mut q0 = 0;
                if let Some(k4) = kern.dot_4x4 {
                    let mut out = [0.0f32; 16];
                    while q0 + 4 <= qb.len() {
                        let qs = [
                            &qb[q0][..],
                            &qb[q0 + 1][..],
                            &qb[q0 + 2][..],
                            &qb[q0 + 3][..],
                        ];
                        let mut r0 = start;
                        while r0 + 4 <= end {
                            k4(
                                &qs,
                                &[row(r0), row(r0 + 1), row(r0 + 2), row(r0 + 3)],
                                &mut out,
                            );
                            for (qi, top) in tops[q0..q0 + 4].iter_mut().enumerate() {
                                for ri in 0..4 {
                                    let dot = out[4 * qi + ri];
                                    let d = if l2 {
                                        (qnorms[q0 + qi] + row_norms[r0 + ri] - 2.0 * dot).max(0.0)
                                    } else {
                                        -dot
                                    };
                                    offer(top, r0 + ri, d);
                                }
                            }
                            r0 += 4;
                        }
                        for (qi, top) in tops[q0..q0 + 4].iter_mut().enumerate() {
                            pair(q0 + qi, top, r0..end);
                        }
                        q0 += 4;
                    }
                }
                for (qi, top) in tops.iter_mut().enumerate().skip(q0) {
                    pair(qi, top, start..end);
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
