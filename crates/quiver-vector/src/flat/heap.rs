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
    /// An empty selection of capacity `k` (any `k`: the heap grows with what it holds, and
    /// only a modest first allocation is made up front).
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
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

/// The bounded top-k lists of many queries in flat arrays (`k` slots per query, one
/// allocation), each a max-heap on `(distance, id)`: the same selection as one [`TopK`] per
/// query, with plain float compares and no per-query allocation. Distances must not be NaN.
#[derive(Debug, Clone)]
pub(crate) struct TopKLists {
    k: usize,
    dist: Vec<f32>,
    id: Vec<u32>,
    len: Vec<usize>,
}

/// Whether `(da, ia)` ranks after `(db, ib)` (farther, or as far with a higher id).
#[inline]
fn after(da: f32, ia: u32, db: f32, ib: u32) -> bool {
    da > db || (da == db && ia > ib)
}

impl TopKLists {
    /// `n` empty lists of capacity `k`.
    pub(crate) fn new(n: usize, k: usize) -> Self {
        TopKLists {
            k,
            dist: vec![0.0; n * k],
            id: vec![0; n * k],
            len: vec![0; n],
        }
    }

    /// The distance a candidate for list `q` must not exceed (infinite until `k` are held).
    #[inline]
    pub(crate) fn threshold(&self, q: usize) -> f32 {
        if self.len[q] < self.k || self.k == 0 {
            f32::INFINITY
        } else {
            self.dist[q * self.k]
        }
    }

    /// Offers `(id, d)` to list `q`.
    #[inline]
    pub(crate) fn push(&mut self, q: usize, id: u32, d: f32) {
        let k = self.k;
        if k == 0 {
            return;
        }
        let dist = &mut self.dist[q * k..(q + 1) * k];
        let ids = &mut self.id[q * k..(q + 1) * k];
        let len = &mut self.len[q];
        if *len < k {
            // Sift up from the new leaf.
            let mut i = *len;
            *len += 1;
            while i > 0 {
                let parent = (i - 1) / 2;
                if !after(d, id, dist[parent], ids[parent]) {
                    break;
                }
                dist[i] = dist[parent];
                ids[i] = ids[parent];
                i = parent;
            }
            dist[i] = d;
            ids[i] = id;
        } else if after(dist[0], ids[0], d, id) {
            // Replace the root and sift down.
            let mut i = 0;
            loop {
                let l = 2 * i + 1;
                if l >= k {
                    break;
                }
                let r = l + 1;
                let c = if r < k && after(dist[r], ids[r], dist[l], ids[l]) {
                    r
                } else {
                    l
                };
                if !after(dist[c], ids[c], d, id) {
                    break;
                }
                dist[i] = dist[c];
                ids[i] = ids[c];
                i = c;
            }
            dist[i] = d;
            ids[i] = id;
        }
    }

    /// List `q`, closest first.
    pub(crate) fn sorted(&self, q: usize) -> Vec<Neighbor> {
        let at = q * self.k;
        let mut v: Vec<Neighbor> = (at..at + self.len[q])
            .map(|i| Neighbor {
                id: self.id[i],
                distance: self.dist[i],
            })
            .collect();
        v.sort_unstable();
        v
    }
}
