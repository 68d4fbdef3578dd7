//! Bounded top-k selection.

use crate::Neighbor;
use std::collections::BinaryHeap;

/// Keeps the `k` smallest-distance neighbours seen so far (ties: lower id wins).
///
/// A max-heap of at most `k` entries: a candidate is compared with the current worst and
/// rejected in O(1) when it cannot enter, so a scan of n points costs O(n + k log k) in
/// the common case.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Neighbor>,
    /// Cached [`TopK::threshold`]: the hot rejection test is one compare.
    worst: f32,
}

impl TopK {
    /// An empty selection of capacity `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            worst: f32::INFINITY,
        }
    }

    /// Empties the selection, keeping its allocation.
    pub fn clear(&mut self) {
        self.heap.clear();
        self.worst = f32::INFINITY;
    }

    /// The distance a new candidate must beat to enter (infinite until `k` are held).
    #[inline]
    pub fn threshold(&self) -> f32 {
        self.worst
    }

    /// Offers a candidate.
    #[inline]
    pub fn push(&mut self, id: u32, distance: f32) {
        if self.k == 0 {
            return;
        }
        let n = Neighbor { id, distance };
        if self.heap.len() < self.k {
            self.heap.push(n);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if n < *top {
                *top = n;
            }
        }
        if self.heap.len() >= self.k {
            self.worst = self.heap.peek().map_or(f32::INFINITY, |w| w.distance);
        }
    }

    /// Number held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The held neighbours, closest first.
    pub fn into_sorted(self) -> Vec<Neighbor> {
        self.heap.into_sorted_vec()
    }

    /// The held neighbours, closest first, leaving the selection empty.
    pub fn drain_sorted(&mut self) -> Vec<Neighbor> {
        self.worst = f32::INFINITY;
        let mut v: Vec<Neighbor> = self.heap.drain().collect();
        v.sort_unstable();
        v
    }
}
