//! Register-tiled scoring of many queries against a few rows: the micro-kernel of batched
//! flat search ([`crate::flat::search_batch`]).
//!
//! A *query panel* holds `lanes` queries interleaved by component (component `d` of query `j`
//! at `d · lanes + j`), so one SIMD load fetches the same component of many queries. Each row
//! component is broadcast and multiplied into every lane: an outer-product (rank-1) update,
//! as in the BLIS/OpenBLAS GEMM micro-kernels. After the last component every accumulator
//! holds finished inner products (no horizontal sums); they are turned into distances and
//! compared with each query's top-k threshold while still in registers, so the caller only
//! looks at the (rare, after warm-up) lanes that can enter a top-k.

/// Inputs of one tile: a query panel against up to [`TileKernel::rows`] rows.
///
/// Distances are `scale · (q · r) + (query_bias[j] + row_bias[i])`, evaluated with one
/// fused multiply-add where the path has FMA: for squared L2 `scale = −2` and the biases are
/// `|q|²` and `|r|²` (the `|q|² + |r|² − 2 q·r` form FAISS uses); for dot and cosine
/// `scale = −1` and both biases are 0.
#[derive(Debug, Clone, Copy)]
pub struct Tile<'a> {
    /// Components per vector.
    pub dim: usize,
    /// The query panel: at least `dim · lanes` floats, component `d` of query `j` at
    /// `d · lanes + j`.
    pub queries: &'a [f32],
    /// Per query lane, added to its distances (at least `lanes` entries).
    pub query_bias: &'a [f32],
    /// Per query lane, the distance a row must not exceed to be reported (at least `lanes`
    /// entries; NaN never reports, +∞ always does).
    pub threshold: &'a [f32],
    /// The rows, each at least `dim` long; 1 to [`TileKernel::rows`] of them.
    pub rows: &'a [&'a [f32]],
    /// Per row, added to its distances (at least `rows.len()` entries).
    pub row_bias: &'a [f32],
    /// Factor of the inner product.
    pub scale: f32,
}

/// Scores a [`Tile`]: writes the distance of row `i` to query lane `j` to
/// `dist[i · lanes + j]` and sets bit `j` of `hits[i]` when it is `<= threshold[j]`; returns
/// whether any bit is set. Panics when the slices are shorter than [`Tile`] requires, when
/// `dist` has fewer than `rows.len() · lanes` or `hits` fewer than `rows.len()` entries.
pub type TileFn = fn(&Tile<'_>, &mut [f32], &mut [u64]) -> bool;

/// A tile kernel and its shape.
#[derive(Debug, Clone, Copy)]
pub struct TileKernel {
    /// Queries per panel (at most 64: one bit of a `u64` hit mask each).
    pub lanes: usize,
    /// Most rows per call.
    pub rows: usize,
    /// The kernel.
    pub run: TileFn,
}

impl Tile<'_> {
    /// Checks the slice lengths a kernel of this shape relies on (panics otherwise).
    #[inline]
    pub(crate) fn check(&self, lanes: usize, max_rows: usize, dist: &[f32], hits: &[u64]) {
        let m = self.rows.len();
        assert!((1..=max_rows).contains(&m), "tile of {m} rows");
        assert!(self.queries.len() >= self.dim * lanes, "short query panel");
        assert!(self.query_bias.len() >= lanes && self.threshold.len() >= lanes);
        assert!(self.row_bias.len() >= m, "short row bias");
        assert!(self.rows.iter().all(|r| r.len() >= self.dim), "short row");
        assert!(
            dist.len() >= m * lanes && hits.len() >= m,
            "short tile output"
        );
    }
}

/// Query lanes of the portable tile.
const PORTABLE_LANES: usize = 8;
/// Rows of the portable tile (4 × 8 accumulators: eight 128-bit registers).
const PORTABLE_ROWS: usize = 4;

/// The portable tile (8 query lanes × up to 4 rows), written so the compiler vectorises it
/// with the baseline instruction set.
pub fn portable_kernel() -> TileKernel {
    TileKernel {
        lanes: PORTABLE_LANES,
        rows: PORTABLE_ROWS,
        run: tile_portable,
    }
}

fn tile_portable(t: &Tile<'_>, dist: &mut [f32], hits: &mut [u64]) -> bool {
    t.check(PORTABLE_LANES, PORTABLE_ROWS, dist, hits);
    match t.rows.len() {
        1 => portable_m::<1>(t, dist, hits),
        2 => portable_m::<2>(t, dist, hits),
        3 => portable_m::<3>(t, dist, hits),
        _ => portable_m::<4>(t, dist, hits),
    }
}

fn portable_m<const M: usize>(t: &Tile<'_>, dist: &mut [f32], hits: &mut [u64]) -> bool {
    const L: usize = PORTABLE_LANES;
    let dim = t.dim;
    let rows: [&[f32]; M] = std::array::from_fn(|i| &t.rows[i][..dim]);
    let mut acc = [[0.0f32; L]; M];
    for (d, qv) in t.queries[..dim * L].chunks_exact(L).enumerate() {
        for (a, r) in acc.iter_mut().zip(&rows) {
            let x = r[d];
            for (s, &q) in a.iter_mut().zip(qv) {
                *s += q * x;
            }
        }
    }
    let mut any = 0u64;
    for (i, a) in acc.iter().enumerate() {
        let mut h = 0u64;
        for (j, &s) in a.iter().enumerate() {
            let d = s * t.scale + (t.query_bias[j] + t.row_bias[i]);
            dist[i * L + j] = d;
            h |= u64::from(d <= t.threshold[j]) << j;
        }
        hits[i] = h;
        any |= h;
    }
    any != 0
}
