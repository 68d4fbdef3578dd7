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

/// Re-rank of candidates already known to be distinct, with a checked query; ids past the
/// end of `rows` are skipped. The rows of the next candidates are prefetched while the
/// current one is scored (they are random reads from a large matrix).
pub(crate) fn rerank_checked(
    candidates: &[u32],
    query: &[f32],
    rows: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> Vec<(u32, f32)> {
    const AHEAD: usize = 4;
    let row = |id: u32| {
        let start = id as usize * dim;
        rows.get(start..start + dim)
    };
    for &id in candidates.iter().take(AHEAD) {
        if let Some(r) = row(id) {
            prefetch(r);
        }
    }
    let mut top = TopK::new(k);
    for (i, &id) in candidates.iter().enumerate() {
        if let Some(r) = candidates.get(i + AHEAD).and_then(|&next| row(next)) {
            prefetch(r);
        }
        if let Some(r) = row(id) {
            top.push(id, distance(metric, query, r));
        }
    }
    top.into_sorted()
}

/// Hints the CPU to load every cache line of `row`.
#[inline]
pub(crate) fn prefetch<T>(row: &[T]) {
    let bytes = std::mem::size_of_val(row);
    let start: *const u8 = row.as_ptr().cast();
    let mut off = 0;
    while off < bytes {
        prefetch_line(start.wrapping_add(off));
        off += 64;
    }
}

/// Prefetch hint for the cache line holding `p` (which must point into a live slice).
#[inline]
#[cfg_attr(
    target_arch = "x86_64",
    expect(unsafe_code, reason = "prefetch intrinsic on a slice pointer")
)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint and never faults; callers pass pointers inside a
        // slice they hold.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
