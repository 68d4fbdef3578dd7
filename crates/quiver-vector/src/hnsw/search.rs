//! Graph search: greedy descent through the upper layers, then the best-first beam search
//! of width `ef` (the paper's SEARCH-LAYER, Alg. 2) on the target layer.
//!
//! No allocation per query: the visited set (a generation-stamped array) and both heaps
//! live in a per-thread [`SearchCtx`] that is reused.

use super::graph::GraphRead;
use crate::space::QueryScorer;
use crate::Neighbor;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Visited marks stamped with a generation: clearing is one increment.
#[derive(Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    #[inline]
    pub fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `i`; true if it was not marked before.
    #[inline]
    pub fn insert(&mut self, i: u32) -> bool {
        match self.marks.get_mut(i as usize) {
            Some(m) if *m != self.generation => {
                *m = self.generation;
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
