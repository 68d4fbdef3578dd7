//! Graph search: greedy descent through the upper layers, then the best-first beam search
//! of width `ef` (the paper's SEARCH-LAYER, Alg. 2) on the target layer.
//!
//! No allocation per query: the visited set (a bitset) and both heaps
//! live in a per-thread [`SearchCtx`] that is reused.

use super::graph::GraphRead;
use crate::space::QueryScorer;
use crate::Neighbor;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The visited set: one bit per node, plus the words set since the last reset, so a reset
/// clears only what the last search touched. At one bit per node it stays in L1/L2 for
/// graphs far larger than a 2-byte stamp array would (7.8 KB for 62,666 nodes).
#[derive(Default)]
pub(crate) struct Visited {
    bits: Vec<u64>,
    touched: Vec<u32>,
}

impl Visited {
    /// Empties the set and sizes it for node ids `0..n`.
    #[inline]
    pub fn reset(&mut self, n: usize) {
        for &w in &self.touched {
            if let Some(b) = self.bits.get_mut(w as usize) {
                *b = 0;
            }
        }
        self.touched.clear();
        let words = n.div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }

    /// Marks `i`; true if it was not marked before (false for ids past the sized range).
    #[inline]
    pub fn insert(&mut self, i: u32) -> bool {
        let w = (i >> 6) as usize;
        let m = 1u64 << (i & 63);
        match self.bits.get_mut(w) {
            Some(b) if *b & m == 0 => {
                if *b == 0 {
                    self.touched.push(w as u32);
                }
                *b |= m;
                true
            }
            _ => false,
        }
    }
}

/// Per-thread scratch space of a search.
#[derive(Default)]
pub(crate) struct SearchCtx {
    pub visited: Visited,
    pub candidates: BinaryHeap<Reverse<Neighbor>>,
    pub results: BinaryHeap<Neighbor>,
    pub buf: Vec<u32>,
    pub unvisited: Vec<u32>,
    pub dists: Vec<f32>,
    pub sorted: Vec<Neighbor>,
    pub selected: Vec<Neighbor>,
    pub scratch: Vec<Neighbor>,
}

thread_local! {
    static CTX: RefCell<SearchCtx> = RefCell::new(SearchCtx::default());
}

/// Runs `f` with this thread's context (a fresh one if it is already in use).
pub(crate) fn with_ctx<R>(f: impl FnOnce(&mut SearchCtx) -> R) -> R {
    CTX.with(|c| match c.try_borrow_mut() {
        Ok(mut g) => f(&mut g),
        Err(_) => f(&mut SearchCtx::default()),
    })
}

/// Greedy descent (ef = 1) from `start` through levels `top ..= bottom + 1`... down to
/// `bottom` exclusive; returns the closest node found and its distance.
pub(crate) fn greedy<G: GraphRead, Q: QueryScorer>(
    g: &G,
    scorer: &Q,
    mut cur: Neighbor,
    top: usize,
    bottom: usize,
    buf: &mut Vec<u32>,
) -> Neighbor {
    for level in (bottom + 1..=top).rev() {
        loop {
            let mut changed = false;
            buf.clear();
            g.neighbors(level, cur.id, buf);
            for &nb in buf.iter() {
                scorer.prefetch_all(nb);
            }
            for &nb in buf.iter() {
                let d = scorer.distance(nb);
                if d < cur.distance {
                    cur = Neighbor {
                        id: nb,
                        distance: d,
                    };
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
    cur
}

/// SEARCH-LAYER (Alg. 2) with beam width `ef` on `level`, starting from `eps`. Leaves the
/// (at most `ef`) closest *accepted* nodes in `ctx.results`; rejected nodes (deleted or
/// filtered out) are traversed but never enter the results.
pub(crate) fn search_layer<G: GraphRead, Q: QueryScorer, A: Fn(u32) -> bool>(
    g: &G,
    scorer: &Q,
    level: usize,
    eps: &[Neighbor],
    ef: usize,
    ctx: &mut SearchCtx,
    accept: A,
) {
    let SearchCtx {
        visited,
        candidates,
        results,
        buf,
        unvisited,
        dists,
        ..
    } = ctx;
    visited.reset(g.len());
    candidates.clear();
    results.clear();
    let ef = ef.max(1);
    for &e in eps {
        if visited.insert(e.id) {
            candidates.push(Reverse(e));
            if accept(e.id) {
                results.push(e);
                if results.len() > ef {
                    results.pop();
                }
            }
        }
    }
    let mut bound = match results.peek() {
        Some(w) if results.len() >= ef => w.distance,
        _ => f32::INFINITY,
    };
    while let Some(Reverse(c)) = candidates.pop() {
        if c.distance > bound {
            break;
        }
        buf.clear();
        g.neighbors(level, c.id, buf);
        if let Some(Reverse(next)) = candidates.peek() {
            g.prefetch_links(next.id);
        }
        // Request every unvisited neighbour's whole row first, so their cache misses overlap,
        // then score them all before touching the heaps: no data-dependent branch between
        // two kernel calls holds back the loads of the next row.
        unvisited.clear();
        for &nb in buf.iter() {
            if visited.insert(nb) {
                scorer.prefetch_all(nb);
                unvisited.push(nb);
            }
        }
        dists.clear();
        dists.extend(unvisited.iter().map(|&nb| scorer.distance(nb)));
        for (&nb, &d) in unvisited.iter().zip(dists.iter()) {
            if d < bound {
                let n = Neighbor {
                    id: nb,
                    distance: d,
                };
                candidates.push(Reverse(n));
                if accept(nb) {
                    results.push(n);
                    if results.len() > ef {
                        results.pop();
                    }
                    if results.len() >= ef {
                        bound = results.peek().map_or(f32::INFINITY, |w| w.distance);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Visited;

    #[test]
    fn visited_marks_once_and_reset_clears_exactly_the_last_search() {
        let mut v = Visited::default();
        v.reset(200);
        for i in [0u32, 63, 64, 65, 127, 199] {
            assert!(v.insert(i), "first insert of {i}");
            assert!(!v.insert(i), "second insert of {i}");
        }
        assert!(!v.insert(256), "ids past the sized range are never new");
        v.reset(200);
        for i in 0..200u32 {
            assert!(v.insert(i), "{i} still marked after reset");
        }
        // A larger graph after a smaller one: old words cleared, new words empty.
        v.reset(1000);
        for i in (0..1000u32).step_by(7) {
            assert!(v.insert(i), "{i} marked in a fresh search");
        }
        v.reset(10);
        assert!(v.insert(7));
    }
}
