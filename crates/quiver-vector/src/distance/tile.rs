//! Register-tiled scoring of many queries against a block of rows: the micro-kernel of
//! batched flat search ([`crate::flat::search_batch`]).
//!
//! A *query panel* holds `lanes` queries interleaved by component (component `d` of query `j`
//! at `d · lanes + j`), so one SIMD load fetches the same component of many queries. Each row
//! component is broadcast and multiplied into every lane: an outer-product (rank-1) update,
//! as in the BLIS/OpenBLAS GEMM micro-kernels. After the last component every accumulator
//! holds finished inner products (no horizontal sums); they are turned into distances and
//! compared with each query's top-k threshold while still in registers, and only the pairs
//! that pass (rare once the top-k lists are warm) are written out as [`Candidates`].

/// Inputs of one kernel call: a query panel against a block of rows.
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
    /// The rows, each at least `dim` long (fewer than 2²⁶).
    pub rows: &'a [&'a [f32]],
    /// Per row, added to its distances (at least `rows.len()` entries).
    pub row_bias: &'a [f32],
    /// Factor of the inner product.
    pub scale: f32,
}

/// Where a kernel writes the (row, query) pairs whose distance passed the threshold.
#[derive(Debug, Clone)]
pub struct Candidates {
    /// Distances, `len` of them valid.
    pub dist: Vec<f32>,
    /// Per distance: `row << 6 | lane` (row index within [`Tile::rows`]).
    pub code: Vec<u32>,
    /// Valid entries.
    pub len: usize,
}

impl Candidates {
    /// Room for `capacity` candidates. A kernel call stops early when a further tile might
    /// not fit, so a call always makes progress when `capacity` ≥ [`TileKernel::min_capacity`].
    pub fn with_capacity(capacity: usize) -> Self {
        Candidates {
            dist: vec![0.0; capacity],
            code: vec![0; capacity],
            len: 0,
        }
    }

    /// The valid `(row, lane, distance)` triples, in row order, lanes ascending per row.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, f32)> + '_ {
        self.code[..self.len]
            .iter()
            .zip(&self.dist[..self.len])
            .map(|(&c, &d)| ((c >> 6) as usize, (c & 63) as usize, d))
    }
}

/// Scores the rows of a [`Tile`] in order, a register tile of up to [`TileKernel::rows`] rows
/// at a time, and appends to `out` (after clearing it) every `(row, lane)` whose distance is
/// `<= threshold[lane]`. Stops before a tile whose candidates might overflow `out`; returns
/// how many rows were scored (all of them unless `out` filled up). Panics when the slices
/// are shorter than [`Tile`] requires or `out` is below [`TileKernel::min_capacity`].
pub type TileFn = fn(&Tile<'_>, &mut Candidates) -> usize;

/// A tile kernel and its shape.
#[derive(Debug, Clone, Copy)]
pub struct TileKernel {
    /// Queries per panel (at most 64).
    pub lanes: usize,
    /// Most rows per register tile.
    pub rows: usize,
    /// The kernel.
    pub run: TileFn,
}

impl TileKernel {
    /// Smallest [`Candidates`] capacity the kernel accepts: one full tile plus one vector of
    /// slack for whole-register stores.
    pub fn min_capacity(&self) -> usize {
        self.rows * self.lanes + 16
    }
}

impl Tile<'_> {
    /// Checks the slice lengths a kernel of this shape relies on (panics otherwise).
    #[inline]
    pub(crate) fn check(&self, lanes: usize, max_rows: usize, out: &Candidates) {
        let m = self.rows.len();
        assert!(m < 1 << 26, "too many rows in one call");
        assert!(self.queries.len() >= self.dim * lanes, "short query panel");
        assert!(self.query_bias.len() >= lanes && self.threshold.len() >= lanes);
        assert!(self.row_bias.len() >= m, "short row bias");
        assert!(self.rows.iter().all(|r| r.len() >= self.dim), "short row");
        let cap = out.dist.len().min(out.code.len());
        assert!(
            cap >= max_rows * lanes + 16,
            "candidate buffer below min_capacity"
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

fn tile_portable(t: &Tile<'_>, out: &mut Candidates) -> usize {
    const L: usize = PORTABLE_LANES;
    t.check(L, PORTABLE_ROWS, out);
    out.len = 0;
    let cap = out.dist.len().min(out.code.len());
    let mut r0 = 0;
    while r0 < t.rows.len() && out.len + PORTABLE_ROWS * L <= cap {
        let m = (t.rows.len() - r0).min(PORTABLE_ROWS);
        let acc = match m {
            1 => widen(portable_dots::<1>(t, r0)),
            2 => widen(portable_dots::<2>(t, r0)),
            3 => widen(portable_dots::<3>(t, r0)),
            _ => widen(portable_dots::<4>(t, r0)),
        };
        for (i, a) in acc.iter().enumerate().take(m) {
            let rb = t.row_bias[r0 + i];
            for (j, &s) in a.iter().enumerate() {
                let d = s * t.scale + (t.query_bias[j] + rb);
                if d <= t.threshold[j] {
                    out.dist[out.len] = d;
                    out.code[out.len] = ((r0 + i) << 6 | j) as u32;
                    out.len += 1;
                }
            }
        }
        r0 += m;
    }
    r0
}

fn widen<const M: usize>(a: [[f32; PORTABLE_LANES]; M]) -> [[f32; PORTABLE_LANES]; PORTABLE_ROWS] {
    let mut w = [[0.0; PORTABLE_LANES]; PORTABLE_ROWS];
    w[..M].copy_from_slice(&a);
    w
}

fn portable_dots<const M: usize>(t: &Tile<'_>, r0: usize) -> [[f32; PORTABLE_LANES]; M] {
    const L: usize = PORTABLE_LANES;
    let dim = t.dim;
    let rows: [&[f32]; M] = std::array::from_fn(|i| &t.rows[r0 + i][..dim]);
    let mut acc = [[0.0f32; L]; M];
    for (d, qv) in t.queries[..dim * L].chunks_exact(L).enumerate() {
        for (a, r) in acc.iter_mut().zip(&rows) {
            let x = r[d];
            for (s, &q) in a.iter_mut().zip(qv) {
                *s += q * x;
            }
        }
    }
    acc
}
