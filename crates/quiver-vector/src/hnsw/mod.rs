//! Hierarchical Navigable Small World graphs (Malkov & Yashunin, "Efficient and robust
//! approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
//! TPAMI 2018).
//!
//! Symbols follow the paper: every node gets a level `l = ⌊-ln(U)·mL⌋` (`mL = 1/ln(m)`);
//! it is linked to at most `m` neighbours on layers above 0 and `m0 = 2·m` (`Mmax0`) on
//! layer 0, chosen by the neighbour-selection heuristic (Alg. 4) among the
//! `ef_construction` closest found by INSERT (Alg. 1); a query descends greedily to layer 0
//! and runs a beam search of width `ef` (K-NN-SEARCH, Alg. 5).
//!
//! The graph holds only ids: every operation takes the [`VectorSpace`] the ids index, so
//! the same graph is searched over f32 rows, SQ8 or PQ codes, optionally followed by an
//! exact re-rank ([`Hnsw::search_rescored`]). Deleted points (a bitmap) and the planner's
//! [`Filter`] are honoured during traversal: such points are walked through but never
//! returned. [`Hnsw::save`] writes `docs/format/hnsw.md`; [`Hnsw::open`] maps it back.

mod builder;
mod graph;
mod search;
mod storage;

use crate::distance;
use crate::space::{Filter, QueryScorer, VectorSpace};
use crate::{Neighbor, Result, VectorError};
use graph::{GraphRead, MemGraph};
use search::{greedy, search_layer, with_ctx};
use std::path::Path;
use storage::MappedGraph;

pub use storage::{MAGIC, VERSION};

/// Build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// `M`: neighbours per node on layers ≥ 1; layer 0 keeps `Mmax0 = 2·M`. Default 16.
    pub m: usize,
    /// `efConstruction`: beam width while inserting. Default 200.
    pub ef_construction: usize,
    /// Seed of the level draws. Default `0x5EED`. With one build thread the graph is a pure
    /// function of (data, parameters, seed); parallel builds vary with thread timing.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: 0x5EED,
        }
    }
}

impl HnswParams {
    /// Sets `m` (see the field).
    pub fn with_m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }
    /// Sets `ef_construction` (see the field).
    pub fn with_ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }
    /// Sets the seed (see the field).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<()> {
        if !(2..=1024).contains(&self.m) {
            return Err(VectorError::InvalidParameter {
                name: "m",
                reason: format!("{} is not in 2..=1024", self.m),
            });
        }
        if self.ef_construction == 0 {
            return Err(VectorError::InvalidParameter {
                name: "ef_construction",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Query knobs.
#[derive(Debug, Clone, Copy)]
pub struct SearchParams<'a> {
    /// Neighbours to return.
    pub k: usize,
    /// `ef`: beam width on layer 0 (raised to `k`, or `k·rescore` when re-ranking).
    pub ef: usize,
    /// Oversampling of [`Hnsw::search_rescored`]: `k·rescore` candidates are re-ranked
    /// exactly. 1 = no oversampling.
    pub rescore: usize,
    /// Deleted ids: traversed, never returned.
    pub deleted: Option<&'a roaring::RoaringBitmap>,
    /// Allowed ids: others are traversed, never returned.
    pub filter: Option<Filter<'a>>,
}

impl<'a> SearchParams<'a> {
    /// Top-`k` with beam width `ef`, no mask, no filter, no oversampling.
    pub fn new(k: usize, ef: usize) -> Self {
        SearchParams {
            k,
            ef,
            rescore: 1,
            deleted: None,
            filter: None,
        }
    }
    /// Sets the deletion mask.
    pub fn with_deleted(mut self, d: &'a roaring::RoaringBitmap) -> Self {
        self.deleted = Some(d);
        self
    }
    /// Sets the filter hook.
    pub fn with_filter(mut self, f: Filter<'a>) -> Self {
        self.filter = Some(f);
        self
    }
    /// Sets the re-rank oversampling factor.
    pub fn with_rescore(mut self, r: usize) -> Self {
        self.rescore = r.max(1);
        self
    }
}

enum Store {
    Mem(MemGraph),
    Mapped(MappedGraph),
}

/// An HNSW graph over the points of a [`VectorSpace`] (ids `0..len`).
pub struct Hnsw {
    params: HnswParams,
    store: Store,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("params", &self.params)
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

macro_rules! with_graph {
    ($self:expr, $g:ident => $body:expr) => {
        match &$self.store {
            Store::Mem($g) => $body,
            Store::Mapped($g) => $body,
        }
    };
}

impl Hnsw {
    /// An empty graph.
    pub fn new(params: HnswParams) -> Result<Hnsw> {
        params.validate()?;
        Ok(Hnsw {
            params,
            store: Store::Mem(MemGraph::new(params.m, 2 * params.m)),
        })
    }

    /// Builds the graph over every point of `space`, in parallel on the current rayon pool.
    pub fn build<S: VectorSpace>(space: &S, params: HnswParams) -> Result<Hnsw> {
        Self::build_with_progress(space, params, &|_| {})
    }

    /// [`Hnsw::build`], calling `progress(inserted)` every 1024 insertions.
    pub fn build_with_progress<S: VectorSpace>(
        space: &S,
        params: HnswParams,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Hnsw> {
        let mut h = Hnsw::new(params)?;
        h.extend_with_progress(space, progress)?;
        Ok(h)
    }

    /// Incremental insert: links points `self.len() .. space.len()` (appended to `space`
    /// since the last build or extend) into the graph, in parallel.
    pub fn extend<S: VectorSpace>(&mut self, space: &S) -> Result<()> {
        self.extend_with_progress(space, &|_| {})
    }

    /// [`Hnsw::extend`] with a progress callback (see [`Hnsw::build_with_progress`]).
    pub fn extend_with_progress<S: VectorSpace>(
        &mut self,
        space: &S,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let from = self.len();
        if space.len() < from {
            return Err(VectorError::InvalidParameter {
                name: "space",
                reason: format!(
                    "space has {} points but the graph already has {from}",
                    space.len()
                ),
            });
        }
        if space.len() > u32::MAX as usize {
            return Err(VectorError::InvalidParameter {
                name: "space",
                reason: "more than 2^32 - 1 points".into(),
            });
        }
        if let Store::Mapped(m) = &self.store {
            self.store = Store::Mem(m.to_mem());
        }
        let Store::Mem(g) = &mut self.store else {
            return Err(VectorError::InvalidParameter {
                name: "graph",
                reason: "graph is not writable".into(),
            });
        };
        let levels =
            builder::draw_levels(self.params.seed, self.params.m, from, space.len() - from);
        g.grow_nodes(&levels);
        builder::insert_range(g, space, from, self.params.ef_construction, progress);
        Ok(())
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        with_graph!(self, g => g.len())
    }
    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Build parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }
    /// Whether the graph is memory-mapped from a file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.store, Store::Mapped(_))
    }
    /// Entry point and top level.
    pub fn entry_point(&self) -> Option<(u32, usize)> {
        with_graph!(self, g => g.entry())
    }
    /// Level of node `id`.
    pub fn level(&self, id: u32) -> usize {
        with_graph!(self, g => g.level(id))
    }
    /// Neighbours of `id` on `level` (empty if it has no such level).
    pub fn neighbors(&self, level: usize, id: u32) -> Vec<u32> {
        let mut v = Vec::new();
        with_graph!(self, g => g.neighbors(level, id, &mut v));
        v
    }
    /// Bytes of the graph (links, levels, locks; the file size when mapped).
    pub fn bytes(&self) -> usize {
        match &self.store {
            Store::Mem(g) => g.bytes(),
            Store::Mapped(g) => g.bytes(),
        }
    }

    /// Writes the graph to `path` (`docs/format/hnsw.md`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let (m, m0) = (self.params.m, 2 * self.params.m);
        with_graph!(self, g => storage::save(g, m, m0, &self.params, path.as_ref()))
    }

    /// Maps a graph file written by [`Hnsw::save`]; no rebuild. Every count and id is
    /// validated; a truncated or corrupted file is [`VectorError::Corruption`].
    pub fn open(path: impl AsRef<Path>) -> Result<Hnsw> {
        let g = MappedGraph::open(path.as_ref())?;
        if g.m0 != 2 * g.m {
            return Err(VectorError::Corruption {
                file: g.path.clone(),
                offset: 16,
                reason: format!("m0 {} is not 2·m {}", g.m0, g.m),
            });
        }
        Ok(Hnsw {
            params: g.params,
            store: Store::Mapped(g),
        })
    }

    fn check<S: VectorSpace>(&self, space: &S, query: &[f32]) -> Result<()> {
        if space.len() != self.len() {
            return Err(VectorError::InvalidParameter {
                name: "space",
                reason: format!("space has {} points, graph has {}", space.len(), self.len()),
            });
        }
        distance::validate(query, space.dim())
    }

    /// K-NN-SEARCH (Alg. 5): the `k` closest non-deleted, allowed points to `query` (in stored
    /// form: normalised for cosine), closest first, distances from `space`'s scorer.
    pub fn search<S: VectorSpace>(
        &self,
        space: &S,
        query: &[f32],
        p: &SearchParams<'_>,
    ) -> Result<Vec<Neighbor>> {
        self.check(space, query)?;
        let mut out = with_graph!(self, g => knn(g, space, query, p.k, p.ef.max(p.k), p));
        out.truncate(p.k);
        Ok(out)
    }

    /// Searches over `space` (e.g. SQ8/PQ codes) for `k·rescore` candidates with beam
    /// `max(ef, k·rescore)`, then re-ranks them exactly with `exact` (e.g. the f32 rows) and
    /// returns the best `k` with exact distances.
    pub fn search_rescored<S: VectorSpace, R: VectorSpace>(
        &self,
        space: &S,
        exact: &R,
        query: &[f32],
        p: &SearchParams<'_>,
    ) -> Result<Vec<Neighbor>> {
        self.check(space, query)?;
        if exact.len() != space.len() || exact.dim() != space.dim() {
            return Err(VectorError::InvalidParameter {
                name: "exact",
                reason: "re-rank space does not match the search space".into(),
            });
        }
        let want = p.k.saturating_mul(p.rescore.max(1));
        let mut cands = with_graph!(self, g => knn(g, space, query, want, p.ef.max(want), p));
        let scorer = exact.scorer(query);
        for c in &mut cands {
            c.distance = scorer.distance(c.id);
        }
        cands.sort_unstable();
        cands.truncate(p.k);
        Ok(cands)
    }
}

fn knn<G: GraphRead, S: VectorSpace>(
    g: &G,
    space: &S,
    query: &[f32],
    k: usize,
    ef: usize,
    p: &SearchParams<'_>,
) -> Vec<Neighbor> {
    let Some((ep, top)) = g.entry() else {
        return Vec::new();
    };
    if k == 0 {
        return Vec::new();
    }
    let scorer = space.scorer(query);
    with_ctx(|ctx| {
        let start = Neighbor {
            id: ep,
            distance: scorer.distance(ep),
        };
        let cur = greedy(g, &scorer, start, top, 0, &mut ctx.buf);
        match (p.deleted, p.filter) {
            (None, None) => search_layer(g, &scorer, 0, &[cur], ef, ctx, |_| true),
            (d, f) => search_layer(g, &scorer, 0, &[cur], ef, ctx, |i| {
                d.is_none_or(|d| !d.contains(i)) && f.is_none_or(|f| f.allows(i))
            }),
        }
        let mut out: Vec<Neighbor> = ctx.results.drain().collect();
        out.sort_unstable();
        out.truncate(k);
        out
    })
}
