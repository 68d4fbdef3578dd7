//! Seeded Lloyd k-means, shared by PQ (one codebook of `ksub = 256` centroids per sub-space)
//! and IVF (the `nlist` coarse centroids).
//!
//! Initialisation is k-means++ (Arthur & Vassilvitskii, 2007): each next centroid is a training
//! point drawn with probability proportional to its squared distance to the nearest centroid
//! chosen so far (the distance update is rayon-parallel; the whole seeding costs about one
//! Lloyd iteration). Above `n·k·dim = 2^31` (e.g. IVF with `nlist = 1024` on 50K × 384) the
//! seeding is `k` distinct random points instead, as FAISS does. Each iteration assigns every
//! point to its nearest centroid (rayon-parallel), moves each centroid to the mean of its
//! points, and re-seeds an empty centroid by splitting the largest cluster. With
//! [`KMeans::spherical`] the centroids are renormalised to unit length after each update
//! (for cosine data).

use super::gemv::{BlockedRows, LANES};
use super::validate;
use crate::distance::{dot, l2};
use crate::{Result, VectorError};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Largest `n·k·dim` seeded with k-means++ (above it, random distinct points).
const KMEANS_PP_MAX_WORK: u64 = 1 << 31;

/// k-means parameters.
#[derive(Debug, Clone, Copy)]
pub struct KMeans {
    /// Number of centroids `k`.
    pub k: usize,
    /// Lloyd iterations after initialisation.
    pub iters: usize,
    /// Seed of the initialisation and of empty-cluster splits.
    pub seed: u64,
    /// Renormalise centroids to unit length after every update.
    pub spherical: bool,
}

impl KMeans {
    /// `k` centroids, 10 iterations, not spherical.
    pub fn new(k: usize, seed: u64) -> Self {
        KMeans {
            k,
            iters: 10,
            seed,
            spherical: false,
        }
    }

    /// Trains on `data` (row-major, `dim` components per row, already checked to be finite)
    /// and returns `k × dim` centroids, row-major.
    ///
    /// Errors: `k == 0` (`InvalidParameter`); fewer than `k` rows (`NotEnoughTrainingData`).
    pub fn train(&self, data: &[f32], dim: usize) -> Result<Vec<f32>> {
        let n = validate::rows(data, dim)?;
        if self.k == 0 {
            return Err(VectorError::InvalidParameter {
                name: "k",
                reason: "k-means needs at least one centroid".into(),
            });
        }
        if n < self.k {
            return Err(VectorError::NotEnoughTrainingData {
                what: "k-means",
                need: self.k,
                got: n,
            });
        }
        let k = self.k;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        let mut centroids = if (n as u64) * (k as u64) * (dim as u64) <= KMEANS_PP_MAX_WORK {
            kmeans_pp(data, dim, k, &mut rng)
        } else {
            let init = rand::seq::index::sample(&mut rng, n, k).into_vec();
            validate::gather(data, dim, &init)
        };
        if self.spherical {
            normalise_rows(&mut centroids, dim);
        }
        let mut assign = vec![0u32; n];
        for _ in 0..self.iters {
            assign_into(data, dim, &centroids, &mut assign);
            let mut sums = vec![0.0f64; k * dim];
            let mut counts = vec![0usize; k];
            for (row, &a) in data.chunks_exact(dim).zip(&assign) {
                let a = a as usize;
                counts[a] += 1;
                for (s, &x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(row) {
                    *s += f64::from(x);
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    let inv = 1.0 / counts[c] as f64;
                    for (dst, &s) in centroids[c * dim..(c + 1) * dim]
                        .iter_mut()
                        .zip(&sums[c * dim..(c + 1) * dim])
                    {
                        *dst = (s * inv) as f32;
                    }
                }
            }
            split_empty(&mut centroids, &mut counts, dim, &mut rng);
            if self.spherical {
                normalise_rows(&mut centroids, dim);
            }
        }
        Ok(centroids)
    }
}

/// k-means++ seeding: `k` rows of `data` (n >= k), each drawn with probability proportional
/// to its squared distance to the nearest row already chosen.
fn kmeans_pp(data: &[f32], dim: usize, k: usize, rng: &mut impl Rng) -> Vec<f32> {
    let n = data.len() / dim;
    let mut centroids = Vec::with_capacity(k * dim);
    let first = rng.gen_range(0..n);
    centroids.extend_from_slice(&data[first * dim..(first + 1) * dim]);
    let mut d2 = vec![f32::INFINITY; n];
    for c in 1..k {
        let last = &centroids[(c - 1) * dim..c * dim];
        d2.par_chunks_mut(1024)
            .zip(data.par_chunks(1024 * dim))
            .for_each(|(d2, rows)| {
                for (d, x) in d2.iter_mut().zip(rows.chunks_exact(dim)) {
                    *d = d.min(l2(x, last));
                }
            });
        let total: f64 = d2.iter().map(|&d| f64::from(d)).sum();
        let pick = if total > 0.0 && total.is_finite() {
            let mut r = rng.gen_range(0.0..total);
            let mut pick = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                r -= f64::from(d);
                if r < 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            // Every point coincides with a chosen centroid: any row will do.
            rng.gen_range(0..n)
        };
        centroids.extend_from_slice(&data[pick * dim..(pick + 1) * dim]);
    }
    centroids
}

/// Re-seeds each empty cluster from a large one (chosen with probability proportional to its
/// size), splitting that centroid into two slightly perturbed copies.
fn split_empty(centroids: &mut [f32], counts: &mut [usize], dim: usize, rng: &mut impl Rng) {
    const EPS: f32 = 1.0 / 1024.0;
    let k = counts.len();
    let total: usize = counts.iter().sum();
    for empty in 0..k {
        if counts[empty] > 0 || total == 0 {
            continue;
        }
        // Pick a donor with probability proportional to its size.
        let mut r = rng.gen_range(0..total);
        let mut donor = 0;
        for (c, &cnt) in counts.iter().enumerate() {
            if r < cnt {
                donor = c;
                break;
            }
            r -= cnt;
        }
        for d in 0..dim {
            let v = centroids[donor * dim + d];
            let sign = if d % 2 == 0 { 1.0 } else { -1.0 };
            centroids[empty * dim + d] = v * (1.0 + sign * EPS);
            centroids[donor * dim + d] = v * (1.0 - sign * EPS);
        }
        let half = counts[donor] / 2;
        counts[empty] = half;
        counts[donor] -= half;
    }
}

fn normalise_rows(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = dot(row, row).sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// Index and squared L2 distance of the centroid nearest to `v`.
pub fn nearest(v: &[f32], centroids: &[f32], dim: usize) -> (u32, f32) {
    let mut best = (0u32, f32::INFINITY);
    for (c, row) in centroids.chunks_exact(dim).enumerate() {
        let d = l2(v, row);
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best
}

/// Assigns every row of `data` to its nearest centroid (squared L2), in parallel.
pub fn assign(data: &[f32], dim: usize, centroids: &[f32]) -> Vec<u32> {
    let mut out = vec![0u32; data.len() / dim.max(1)];
    assign_into(data, dim, centroids, &mut out);
    out
}

/// Up to this dimension, assignment uses the transposed (component-major) scan.
const SMALL_DIM: usize = 32;

fn assign_into(data: &[f32], dim: usize, centroids: &[f32], out: &mut [u32]) {
    if dim == 0 {
        return;
    }
    let k = centroids.len() / dim;
    if dim <= SMALL_DIM {
        // Short vectors (PQ sub-spaces): component-major scan over all centroids.
        let ct = transpose(centroids, k, dim);
        out.par_chunks_mut(256)
            .zip(data.par_chunks(256 * dim))
            .for_each(|(out, rows)| {
                let mut scratch = vec![0.0f32; k];
                for (o, x) in out.iter_mut().zip(rows.chunks_exact(dim)) {
                    *o = nearest_transposed(x, &ct, k, &mut scratch);
                }
            });
        return;
    }
    // Nearest by ‖c‖² − 2⟨x, c⟩, the dot products from the blocked one-to-many kernel.
    let norms: Vec<f32> = centroids.chunks_exact(dim).map(|c| dot(c, c)).collect();
    let blocked = BlockedRows::new(centroids, dim);
    out.par_chunks_mut(256)
        .zip(data.par_chunks(256 * dim))
        .for_each(|(out, rows)| {
            let mut dots = Vec::with_capacity(k + LANES);
            for (o, x) in out.iter_mut().zip(rows.chunks_exact(dim)) {
                blocked.dots(x, &mut dots);
                let mut best = (0u32, f32::INFINITY);
                for (c, (&nc, &xc)) in norms.iter().zip(&dots).enumerate() {
                    let d = nc - 2.0 * xc;
                    if d < best.1 {
                        best = (c as u32, d);
                    }
                }
                *o = best.0;
            }
        });
}

/// Centroids transposed to `dim × k` (component-major), for [`nearest_transposed`].
pub(crate) fn transpose(centroids: &[f32], k: usize, dim: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; k * dim];
    for (c, row) in centroids.chunks_exact(dim).enumerate().take(k) {
        for (d, &x) in row.iter().enumerate() {
            t[d * k + c] = x;
        }
    }
    t
}

/// Nearest centroid (squared L2) of a short vector `x` against transposed centroids `ct`
/// (`x.len() × k`): the inner loop runs over the `k` centroids and vectorises. `scratch`
/// must hold `k` values.
pub(crate) fn nearest_transposed(x: &[f32], ct: &[f32], k: usize, scratch: &mut [f32]) -> u32 {
    let scratch = &mut scratch[..k];
    scratch.fill(0.0);
    for (&xd, col) in x.iter().zip(ct.chunks_exact(k)) {
        for (acc, &c) in scratch.iter_mut().zip(col) {
            let t = xd - c;
            *acc += t * t;
        }
    }
    let mut best = (0u32, f32::INFINITY);
    for (c, &d) in scratch.iter().enumerate() {
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best.0
}
