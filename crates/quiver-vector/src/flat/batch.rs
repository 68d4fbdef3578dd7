//! Batched exact search: the score matrix of many queries × all rows computed as a blocked
//! matrix product, with the top-k selection fused into the register tile.

use super::heap::TopKLists;
use super::search::check_query;
use super::{FlatParams, TopK};
use crate::distance::{Candidates, Kernels, Tile, TileKernel};
use crate::space::{F32Space, VectorSpace};
use crate::{Metric, Neighbor, Result};
use rayon::prelude::*;
use std::ops::Range;

/// Bytes of rows scored against every query panel before the scan moves on: the block stays
/// in the core's L2 cache while all query panels stream past it.
pub const BATCH_ROW_BLOCK_BYTES: usize = 256 << 10;
/// Candidate pairs a kernel call may report before the thresholds are brought up to date
/// (bounds how stale they get while the top-k lists warm up).
const CANDIDATES: usize = 512;
/// Fewest rows one parallel job scans; with fewer rows, jobs split the queries instead.
const MIN_JOB_ROWS: usize = 1024;

/// Exact top-`k` of many queries (each in stored form) over f32 rows, on all rayon threads.
///
/// The queries are packed once into *panels* of [`TileKernel::lanes`] queries interleaved by
/// component. The panels are cut into parallel jobs (and the rows too when there are fewer
/// panels than threads); a job walks its rows in L2-sized blocks of
/// [`BATCH_ROW_BLOCK_BYTES`] and scores every panel against each block with the
/// register-tiled kernel of [`Kernels::tile`] (AVX-512: 48 queries × 8 rows per register
/// tile, outer-product FMAs, no horizontal sums). Squared L2 comes from
/// `|q|² + |r|² − 2·q·r`, as in FAISS. The kernel compares each distance with its query's
/// top-k threshold in registers and reports only the pairs that pass, so the heaps see little
/// more than the pairs that enter a top-k; rows the filter or the deletion mask reject never
/// enter a block. Jobs over different rows are merged at the end. Results equal
/// [`super::search`]'s up to the rounding of near-ties.
pub fn search_batch(
    space: &F32Space,
    queries: &[Vec<f32>],
    p: &FlatParams<'_>,
) -> Result<Vec<Vec<Neighbor>>> {
    search_batch_with(Kernels::best(), space, queries, p)
}

/// [`search_batch`] with the given kernels (tests run every path the CPU supports).
pub(crate) fn search_batch_with(
    kern: &Kernels,
    space: &F32Space,
    queries: &[Vec<f32>],
    p: &FlatParams<'_>,
) -> Result<Vec<Vec<Neighbor>>> {
    for q in queries {
        check_query(space.dim(), q)?;
    }
    let n = space.len();
    if p.k == 0 || n == 0 || queries.is_empty() {
        return Ok(vec![Vec::new(); queries.len()]);
    }
    let tile = kern.tile;
    let v = space.vectors();
    let l2 = space.metric() == Metric::L2;
    let ctx = Scan {
        kern,
        tile,
        data: v.data(),
        stride: v.stride(),
        dim: v.dim(),
        l2,
        panels: Panels::pack(kern, queries, v.dim(), tile.lanes, l2),
        nq: queries.len(),
        p,
        block: (BATCH_ROW_BLOCK_BYTES / (v.dim().max(1) * 4)).clamp(tile.rows, 1 << 14) / tile.rows
            * tile.rows,
    };
    let groups = ctx.panels.groups;

    // Jobs: ranges of query panels first. A job over fewer rows costs every one of its
    // queries a fresh top-k warm-up (heap pushes) and a merge, which dominates on small sets
    // (bigann10k: 47 K vs 70 K QPS on 2 threads); a job over fewer queries only re-streams
    // the rows, which the row blocks amortise over its panels. Rows are split only when there
    // are too few panels to keep every thread busy. Two jobs per thread let work stealing
    // even out a thread slowed by other load.
    let threads = rayon::current_num_threads().max(1);
    let target = if threads == 1 { 1 } else { 2 * threads };
    let q_parts = target.min(groups).max(1);
    let row_parts = target
        .div_ceil(q_parts)
        .min(n.div_ceil(MIN_JOB_ROWS))
        .max(1);
    let jobs: Vec<(usize, usize)> = (0..q_parts)
        .flat_map(|qp| (0..row_parts).map(move |rp| (qp, rp)))
        .collect();
    let mut parts: Vec<Vec<Vec<Neighbor>>> = jobs
        .par_iter()
        .map(|&(qp, rp)| ctx.scan(split(groups, q_parts, qp), split(n, row_parts, rp)))
        .collect();

    let mut out = Vec::with_capacity(queries.len());
    for chunk in parts.chunks_mut(row_parts) {
        let Some((first, rest)) = chunk.split_first_mut() else {
            continue;
        };
        if rest.is_empty() {
            out.append(first);
            continue;
        }
        for (qi, own) in first.iter_mut().enumerate() {
            let mut top = TopK::new(p.k.min(n));
            for nb in own.iter().chain(rest.iter().flat_map(|r| r[qi].iter())) {
                top.push(nb.id, nb.distance);
            }
            out.push(top.into_sorted());
        }
    }
    Ok(out)
}

/// Part `i` of `0..n` cut into `parts` near-equal ranges.
fn split(n: usize, parts: usize, i: usize) -> Range<usize> {
    (n * i / parts)..(n * (i + 1) / parts)
}

/// The queries packed into panels for [`Tile::queries`], with their biases.
struct Panels {
    /// `groups` panels of `dim · lanes` floats, starting at `offset` (64-byte aligned).
    buf: Vec<f32>,
    offset: usize,
    groups: usize,
    lanes: usize,
    /// Per lane of every panel: `|q|²` under l2, else 0 (0 for padding lanes).
    bias: Vec<f32>,
}

impl Panels {
    fn pack(kern: &Kernels, queries: &[Vec<f32>], dim: usize, lanes: usize, l2: bool) -> Self {
        let groups = queries.len().div_ceil(lanes);
        let mut buf = vec![0.0f32; groups * dim * lanes + 16];
        let offset = match buf.as_ptr().align_offset(64) {
            o if o < 16 => o,
            _ => 0,
        };
        let mut bias = vec![0.0f32; groups * lanes];
        for (g, qs) in queries.chunks(lanes).enumerate() {
            let panel = &mut buf[offset + g * dim * lanes..offset + (g + 1) * dim * lanes];
            for (j, q) in qs.iter().enumerate() {
                for (d, &x) in q.iter().enumerate() {
                    panel[d * lanes + j] = x;
                }
                if l2 {
                    bias[g * lanes + j] = (kern.dot)(q, q);
                }
            }
        }
        Panels {
            buf,
            offset,
            groups,
            lanes,
            bias,
        }
    }

    fn panel(&self, g: usize, dim: usize) -> &[f32] {
        let len = dim * self.lanes;
        &self.buf[self.offset + g * len..self.offset + (g + 1) * len]
    }

    fn bias(&self, g: usize) -> &[f32] {
        &self.bias[g * self.lanes..(g + 1) * self.lanes]
    }
}

/// Everything a job needs (shared, read-only).
struct Scan<'a> {
    kern: &'a Kernels,
    tile: TileKernel,
    data: &'a [f32],
    stride: usize,
    dim: usize,
    l2: bool,
    panels: Panels,
    nq: usize,
    p: &'a FlatParams<'a>,
    /// Rows per block (a multiple of `tile.rows`).
    block: usize,
}

impl Scan<'_> {
    fn row(&self, i: u32) -> &[f32] {
        let o = i as usize * self.stride;
        &self.data[o..o + self.dim]
    }

    /// Top-k of the queries of panels `groups` over rows `rows` (sorted, one list per query).
    fn scan(&self, groups: Range<usize>, rows: Range<usize>) -> Vec<Vec<Neighbor>> {
        // No list can hold more than the job's rows (k may be far above n).
        let k = self.p.k.min(rows.len());
        let (lanes, dim) = (self.tile.lanes, self.dim);
        let q0 = groups.start * lanes;
        let q1 = (groups.end * lanes).min(self.nq);
        let mut tops = TopKLists::new(q1 - q0, k);
        // Padding lanes get a NaN threshold: no distance compares <= NaN.
        let mut thr: Vec<f32> = (q0..groups.end * lanes)
            .map(|q| if q < q1 { f32::INFINITY } else { f32::NAN })
            .collect();
        let mut cands = Candidates::with_capacity(CANDIDATES.max(self.tile.min_capacity()));
        let mut ids: Vec<u32> = Vec::with_capacity(self.block);
        let mut bias: Vec<f32> = Vec::with_capacity(self.block);
        let unrestricted = self.p.unrestricted();
        let scale = if self.l2 { -2.0 } else { -1.0 };
        let mut next = rows.start;
        while next < rows.end {
            ids.clear();
            while next < rows.end && ids.len() < self.block {
                let id = next as u32;
                if unrestricted || self.p.accepts(id) {
                    ids.push(id);
                }
                next += 1;
            }
            if ids.is_empty() {
                continue;
            }
            let block: Vec<&[f32]> = ids.iter().map(|&i| self.row(i)).collect();
            bias.clear();
            if self.l2 {
                bias.extend(block.iter().map(|r| (self.kern.dot)(r, r)));
            } else {
                bias.resize(block.len(), 0.0);
            }
            for g in groups.clone() {
                let lt = (g - groups.start) * lanes;
                let panel = self.panels.panel(g, dim);
                let qbias = self.panels.bias(g);
                let mut c = 0;
                while c < block.len() {
                    let t = Tile {
                        dim,
                        queries: panel,
                        query_bias: qbias,
                        threshold: &thr[lt..lt + lanes],
                        rows: &block[c..],
                        row_bias: &bias[c..],
                        scale,
                    };
                    let done = (self.tile.run)(&t, &mut cands);
                    for (i, j, d) in cands.iter() {
                        let q = lt + j;
                        if d <= tops.threshold(q) {
                            tops.push(q, ids[c + i], if self.l2 { d.max(0.0) } else { d });
                            thr[q] = tops.threshold(q);
                        }
                    }
                    c += done;
                }
            }
        }
        (0..q1 - q0).map(|q| tops.sorted(q)).collect()
    }
}
