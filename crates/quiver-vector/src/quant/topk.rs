//! Bounded selection of the `k` smallest distances (a max-heap of size `k`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy)]
struct Entry {
    dist: f32,
    id: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

/// Keeps the `k` candidates with the smallest distance (ties broken by the lower id).
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    /// The distance a candidate must beat to enter (infinite until `k` are held).
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |e| e.dist)
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, id: u32, dist: f32) {
        if self.k == 0 {
            return;
        }
        let e = Entry { dist, id };
        if self.heap.len() < self.k {
            self.heap.push(e);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if e < *top {
                *top = e;
            }
        }
    }

    /// The held candidates, closest first.
    pub(crate) fn into_sorted(self) -> Vec<(u32, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| (e.id, e.dist))
            .collect()
    }
}
