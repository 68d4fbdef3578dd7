//! Exact top-k scans.

use super::{FlatParams, TopK};
use crate::distance;
use crate::space::{QueryScorer, VectorSpace};
use crate::{Neighbor, Result};

pub(super) fn check_query(dim: usize, q: &[f32]) -> Result<()> {
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
    let n = space.len() as u32;
    let mut top = TopK::new(p.k.min(n as usize));
    let scorer = space.scorer(query);
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
