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

/// SELECT-NEIGHBORS-HEURISTIC: from `cands` (sorted by distance to the base point), keep a
/// candidate only if it is closer to the base than to every already kept one; at most `m`.
pub(crate) fn select_heuristic<S: VectorSpace>(
    space: &S,
    cands: &[Neighbor],
    m: usize,
    out: &mut Vec<Neighbor>,
) {
    out.clear();
    if cands.len() <= m {
        out.extend_from_slice(cands);
        return;
    }
    for c in cands {
        if out.len() >= m {
            break;
        }
        if out
            .iter()
            .all(|r| space.pair_distance(c.id, r.id) > c.distance)
        {
            out.push(*c);
        }
    }
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
    if g.try_append(level, e, q) {
        return;
    }
    let mut ids = std::mem::take(&mut ctx.buf);
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
    select_heuristic(space, scratch, mmax, &mut ctx.selected);
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
            select_heuristic(space, scratch, mmax, selected);
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
        select_heuristic(space, &sorted, g.m, &mut selected);
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
    link_orphans(g, space);
    progress(n - from);
}

/// Gives every node that no other node links to on layer 0 an in-link: heuristic pruning
/// (Alg. 4) can drop a node from all its neighbours' lists, which makes it unreachable. The
/// orphan is appended to the closest of its own neighbours that has room, else it replaces
/// the farthest entry of its closest neighbour's list (a few passes, as that can orphan the
/// replaced node in turn).
fn link_orphans<S: VectorSpace>(g: &MemGraph, space: &S) {
    let n = g.len();
    if n < 2 {
        return;
    }
    let mut buf = Vec::new();
    for _pass in 0..4 {
        let mut linked = vec![false; n];
        for i in 0..n as u32 {
            buf.clear();
            g.neighbors(0, i, &mut buf);
            for &x in &buf {
                if let Some(l) = linked.get_mut(x as usize) {
                    *l = true;
                }
            }
        }
        if let Some(l) = g.entry().and_then(|(e, _)| linked.get_mut(e as usize)) {
            *l = true;
        }
        let orphans: Vec<u32> = (0..n).filter(|&i| !linked[i]).map(|i| i as u32).collect();
        if orphans.is_empty() {
            return;
        }
        for q in orphans {
            buf.clear();
            g.neighbors(0, q, &mut buf);
            let mut own: Vec<Neighbor> = buf
                .iter()
                .map(|&x| Neighbor {
                    id: x,
                    distance: space.pair_distance(q, x),
                })
                .collect();
            own.sort_unstable();
            if own.iter().any(|e| g.try_append(0, e.id, q)) {
                continue;
            }
            let Some(closest) = own.first().map(|e| e.id) else {
                continue;
            };
            let mut list = Vec::new();
            g.neighbors(0, closest, &mut list);
            if let Some((far, _)) = list
                .iter()
                .enumerate()
                .map(|(j, &x)| (j, space.pair_distance(closest, x)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
            {
                list[far] = q;
                g.write(0, closest, &list);
            }
        }
    }
}
