//! Flat (exact) search: every stored point is scored, the `k` closest kept in a bounded heap.
//!
//! - [`search`]: one query over any [`VectorSpace`](crate::space::VectorSpace), optionally
//!   restricted by a [`Filter`] and a deletion mask.
//! - [`search_batch`]: many queries over f32 rows, spread over all rayon threads: a blocked
//!   matrix product (register-tiled kernel, cache-sized row blocks) with the top-k selection
//!   fused into the tile.

mod batch;
mod heap;
mod search;

pub use batch::{search_batch, BATCH_ROW_BLOCK_BYTES};
pub use heap::TopK;
pub use search::search;

#[cfg(test)]
mod tests;

use crate::space::Filter;

/// What a flat search may return besides the `k` bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatParams<'a> {
    /// Number of neighbours to return (fewer when fewer points qualify).
    pub k: usize,
    /// Ids that must not be returned (deleted points).
    pub deleted: Option<&'a roaring::RoaringBitmap>,
    /// Only ids this filter allows are returned.
    pub filter: Option<Filter<'a>>,
}

impl<'a> FlatParams<'a> {
    /// Plain top-`k`.
    pub fn k(k: usize) -> Self {
        FlatParams {
            k,
            deleted: None,
            filter: None,
        }
    }

    #[inline]
    pub(crate) fn accepts(&self, id: u32) -> bool {
        self.deleted.is_none_or(|d| !d.contains(id)) && self.filter.is_none_or(|f| f.allows(id))
    }

    pub(crate) fn unrestricted(&self) -> bool {
        self.deleted.is_none() && self.filter.is_none()
    }
}
