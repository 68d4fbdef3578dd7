//! Graph construction: INSERT (Alg. 1) with the neighbour-selection heuristic
//! SELECT-NEIGHBORS-HEURISTIC (Alg. 4, without candidate extension and without keeping
//! pruned connections, as in the reference implementation), run in parallel with one lock
//! per node.

use super::graph::{GraphRead, Locked, MemGraph, MAX_LEVEL};
use super::search::{greedy, search_layer, with_ctx, SearchCtx};
use crate::space::{QueryScorer, VectorSpace};
use crate::Neighbor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Scores stored points against stored point `q` (used while inserting `q`), through the
/// space's point scorer when it has one.
pub(crate) struct PairScorer<'a, S: VectorSpace> {
    pub space: &'a S,
    pub q: u32,
    pub direct: Option<S::Scorer<'a>>,
}

impl<'a, S: VectorSpace + 'a> PairScorer<'a, S> {
    pub fn new(space: &'a S, q: u32) -> Self {
        PairScorer {
            space,
            q,
            direct: space.point_scorer(q),
        }
    }
}

impl<'a, S: VectorSpace + 'a> QueryScorer for PairScorer<'a, S> {
    #[inline]
    fn distance(&self, i: u32) -> f32 {
        match &self.direct {
            Some(s) => s.distance(i),
            None => self.space.pair_distance(self.q, i),
        }
    }
    #[inline]
    fn prefetch(&self, i: u32) {
        match &self.direct {
            Some(s) => s.prefetch(i),
            None => self.space.prefetch(i),
        }
    }
    #[inline]
    fn prefetch_all(&self, i: u32) {
        match &self.direct {
            Some(s) => s.prefetch_all(i),
            None => self.space.prefetch(i),
        }
    }
}

/// Levels for nodes `first .. first + count`: `l = ⌊-ln(U) · mL⌋` with `mL = 1 / ln(m)`,
/// drawn from a ChaCha8 stream keyed by `seed` and the node id (so `extend` in pieces
/// draws the same levels as one build).
pub(crate) fn draw_levels(seed: u64, m: usize, first: usize, count: usize) -> Vec<u8> {
    let ml = 1.0 / (m.max(2) as f64).ln();
    (first..first + count)
        .map(|i| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let u: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
            ((-u.ln() * ml).floor() as usize).min(MAX_LEVEL) as u8
        })
        .collect()
}

/// SELECT-NEIGHBORS-HEURISTIC: from `cands` (sorted by distance to `base`), keep a
/// candidate unless it is strictly closer to an already kept one than to the base; at most `m`.
///
/// Exact duplicates need two rules on top of Alg. 4. A tie (a candidate as close to a kept
/// one as to the base) keeps the candidate, as hnswlib does: a kept duplicate of the base is
/// exactly as far from every candidate as the base, so with ties pruning it would prune all
/// of them and leave the list one entry long. And at most a quarter of the list (at least
/// two) may be copies of the base (the same stored point, [`VectorSpace::same_point`]): without the cap a point copied more
/// than `m` times fills its lists with copies of itself and the rest of the graph becomes
/// unreachable from it.
pub(crate) fn select_heuristic<S: VectorSpace>(
    space: &S,
    base: u32,
    cands: &[Neighbor],
    m: usize,
    out: &mut Vec<Neighbor>,
) {
    out.clear();
    if cands.len() <= m {
        out.extend_from_slice(cands);
        return;
    }
    let max_copies = max_copies(m);
    let mut copies = 0;
    for c in cands {
        if out.len() >= m {
            break;
        }
        let copy = space.same_point(base, c.id);
        if copy && copies >= max_copies {
            continue;
        }
        if out
            .iter()
            .all(|r| space.pair_distance(c.id, r.id) >= c.distance)
        {
            copies += usize::from(copy);
            out.push(*c);
        }
    }
}

/// How many copies of a node (points at its own distance from it) one of its lists may hold.
fn max_copies(m: usize) -> usize {
    (m / 4).max(2)
}

/// Adds `q` as a neighbour of `e` at `level`; shrinks `e`'s list by the heuristic when full.
fn connect<S: VectorSpace>(
    g: &MemGraph,
    space: &S,
    level: usize,
    e: u32,
    q: u32,
    d_eq: f32,
    ctx: &mut SearchCtx,
) {
    let mmax = if level == 0 { g.m0 } else { g.m };
    let Some(lock) = g.locks.get(e as usize) else {
        return;
    };
    let _guard = lock.lock();
    let mut ids = std::mem::take(&mut ctx.buf);
    // A copy of `e` joins its list only while the list holds fewer copies than the cap:
    // appended freely, copies of a point copied many times would fill it and cut it off
    // from everything else (the build links any node this leaves unreachable at the end).
    if space.same_point(e, q) {
        ids.clear();
        g.neighbors(level, e, &mut ids);
        let copies = ids.iter().filter(|&&x| space.same_point(e, x)).count();
        if copies >= max_copies(mmax) {
            ctx.buf = ids;
            return;
        }
    }
    if g.try_append(level, e, q) {
        ctx.buf = ids;
        return;
    }
    ids.clear();
    g.neighbors(level, e, &mut ids);
    if ids.contains(&q) {
        ctx.buf = ids;
        return;
    }
    // e's neighbours are usually cold: request all their rows before scoring them.
    for &x in &ids {
        space.prefetch(x);
    }
    let scratch = &mut ctx.scratch;
    scratch.clear();
    scratch.extend(ids.iter().map(|&x| Neighbor {
        id: x,
        distance: space.pair_distance(e, x),
    }));
    scratch.push(Neighbor {
        id: q,
        distance: d_eq,
    });
    scratch.sort_unstable();
    select_heuristic(space, e, scratch, mmax, &mut ctx.selected);
    ids.clear();
    ids.extend(ctx.selected.iter().map(|n| n.id));
    g.write(level, e, &ids);
    ctx.buf = ids;
}

/// Writes `q`'s own list at `level`. Another thread may already have linked itself into
/// `q`'s list (it found `q` on a higher layer); those links are merged with `selected`, and
/// the heuristic trims the union if it exceeds the level's capacity.
fn set_own_links<S: VectorSpace>(
    g: &MemGraph,
    space: &S,
    level: usize,
    q: u32,
    selected: &mut Vec<Neighbor>,
    ctx: &mut SearchCtx,
) {
    let Some(lock) = g.locks.get(q as usize) else {
        return;
    };
    let mmax = if level == 0 { g.m0 } else { g.m };
    let _l = lock.lock();
    let mut ids = std::mem::take(&mut ctx.buf);
    ids.clear();
    g.neighbors(level, q, &mut ids);
    if !ids.is_empty() {
        for &x in &ids {
            if !selected.iter().any(|n| n.id == x) {
                selected.push(Neighbor {
                    id: x,
                    distance: space.pair_distance(q, x),
                });
            }
        }
        if selected.len() > mmax {
            let scratch = &mut ctx.scratch;
            scratch.clear();
            scratch.extend_from_slice(selected);
            scratch.sort_unstable();
            select_heuristic(space, q, scratch, mmax, selected);
        }
    }
    ids.clear();
    ids.extend(selected.iter().map(|n| n.id));
    g.write(level, q, &ids);
    ctx.buf = ids;
}

/// INSERT (Alg. 1) of node `q`, whose vector is already in `space`.
pub(crate) fn insert<S: VectorSpace>(
    g: &MemGraph,
    space: &S,
    q: u32,
    ef_construction: usize,
    ctx: &mut SearchCtx,
) {
    let lq = g.level(q);
    let scorer = PairScorer::new(space, q);
    let mut snapshot = g.entry();
    let _grow = match snapshot {
        Some((_, top)) if lq <= top => None,
        _ => {
            let guard = g.grow.lock();
            snapshot = g.entry();
            if snapshot.is_none() {
                *g.entry.write() = Some((q, lq));
                return;
            }
            Some(guard)
        }
    };
    let Some((ep, top)) = snapshot else { return };
    let locked = Locked(g);
    let mut buf = std::mem::take(&mut ctx.buf);
    let mut cur = Neighbor {
        id: ep,
        distance: scorer.distance(ep),
    };
    if top > lq {
        cur = greedy(&locked, &scorer, cur, top, lq, &mut buf);
    }
    ctx.buf = buf;
    let mut eps = vec![cur];
    for level in (0..=lq.min(top)).rev() {
        search_layer(&locked, &scorer, level, &eps, ef_construction, ctx, |i| {
            i != q
        });
        let mut sorted = std::mem::take(&mut ctx.sorted);
        sorted.clear();
        sorted.extend(ctx.results.drain());
        sorted.sort_unstable();
        let mut selected = std::mem::take(&mut ctx.selected);
        select_heuristic(space, q, &sorted, g.m, &mut selected);
        set_own_links(g, space, level, q, &mut selected, ctx);
        for n in &selected {
            connect(g, space, level, n.id, q, n.distance, ctx);
        }
        if !sorted.is_empty() {
            eps.clear();
            eps.extend_from_slice(&sorted[..sorted.len().min(g.m)]);
        }
        ctx.sorted = sorted;
        ctx.selected = selected;
    }
    if lq > top {
        *g.entry.write() = Some((q, lq));
    }
}

/// Inserts nodes `from .. space.len()` (already grown in `g`) on the current rayon pool.
/// `progress` is called with the number of nodes inserted so far, every 1024 nodes.
pub(crate) fn insert_range<S: VectorSpace>(
    g: &MemGraph,
    space: &S,
    from: usize,
    ef_construction: usize,
    progress: &(dyn Fn(usize) + Sync),
) {
    let n = space.len();
    let mut start = from;
    // The first node and a small sequential prefix seed the graph, so parallel inserts
    // start from a connected structure.
    let seq_end = n.min(from + if g.entry().is_none() { 1 } else { 0 });
    with_ctx(|ctx| {
        for q in start..seq_end {
            insert(g, space, q as u32, ef_construction, ctx);
        }
    });
    start = seq_end;
    let done = AtomicUsize::new(start - from);
    (start..n).into_par_iter().with_min_len(64).for_each(|q| {
        with_ctx(|ctx| insert(g, space, q as u32, ef_construction, ctx));
        let c = done.fetch_add(1, Ordering::Relaxed) + 1;
        if c & 1023 == 0 {
            progress(c);
        }
    });
    link_unreachable(g, space);
    progress(n - from);
}

/// Makes every node reachable on layer 0 from the entry point. Heuristic pruning (Alg. 4)
/// can drop a node from all its neighbours' lists, and a group of nodes can end up linked
/// only among themselves (copies of one point, say), so a search never finds them. A
/// breadth-first walk from the entry point marks what is reachable; each node it missed is
/// linked from the closest of its own neighbours that is reachable and has room, else it
/// replaces the farthest entry of the closest reachable one, which then hangs off the new
/// node where it has room (a node none of whose neighbours is
/// reachable is placed by a search from the entry point), and what it reaches in turn is
/// marked at once. A few passes, as a replaced entry can be cut off in turn.
fn link_unreachable<S: VectorSpace>(g: &MemGraph, space: &S) {
    let n = g.len();
    let Some((entry, _)) = g.entry() else { return };
    if n < 2 {
        return;
    }
    let mut buf = Vec::new();
    let mut stack = Vec::new();
    // Marks everything reachable from `from` that is not marked yet.
    let mut walk = |from: u32, reached: &mut [bool], buf: &mut Vec<u32>| {
        stack.clear();
        if let Some(r) = reached.get_mut(from as usize) {
            if *r {
                return;
            }
            *r = true;
            stack.push(from);
        }
        while let Some(x) = stack.pop() {
            buf.clear();
            g.neighbors(0, x, buf);
            for &y in buf.iter() {
                if let Some(r) = reached.get_mut(y as usize) {
                    if !*r {
                        *r = true;
                        stack.push(y);
                    }
                }
            }
        }
    };
    for _pass in 0..4 {
        let mut reached = vec![false; n];
        walk(entry, &mut reached, &mut buf);
        if reached.iter().all(|&r| r) {
            return;
        }
        for q in 0..n as u32 {
            if reached[q as usize] {
                continue;
            }
            buf.clear();
            g.neighbors(0, q, &mut buf);
            let mut own: Vec<Neighbor> = buf
                .iter()
                .filter(|&&x| reached.get(x as usize) == Some(&true))
                .map(|&x| Neighbor {
                    id: x,
                    distance: space.pair_distance(q, x),
                })
                .collect();
            if own.is_empty() {
                // None of its own neighbours is reachable: search from the entry point for
                // the reachable nodes closest to it, as an insert would.
                let scorer = PairScorer::new(space, q);
                let start = Neighbor {
                    id: entry,
                    distance: scorer.distance(entry),
                };
                let reached = &reached;
                with_ctx(|ctx| {
                    search_layer(g, &scorer, 0, &[start], g.m0, ctx, |i| {
                        reached.get(i as usize) == Some(&true)
                    });
                    own.extend(ctx.results.drain());
                });
                if own.is_empty() {
                    continue;
                }
            }
            own.sort_unstable();
            if !own.iter().any(|e| g.try_append(0, e.id, q)) {
                let closest = own[0].id;
                let mut list = Vec::new();
                g.neighbors(0, closest, &mut list);
                let Some((far, _)) = list
                    .iter()
                    .enumerate()
                    .map(|(j, &x)| (j, space.pair_distance(closest, x)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                else {
                    continue;
                };
                // The evicted node hangs off `q` instead when `q` has room, so it stays
                // reachable through the node that took its place.
                let evicted = std::mem::replace(&mut list[far], q);
                g.write(0, closest, &list);
                buf.clear();
                g.neighbors(0, q, &mut buf);
                if evicted != q && !buf.contains(&evicted) {
                    g.try_append(0, q, evicted);
                }
            }
            walk(q, &mut reached, &mut buf);
        }
    }
}
