//! Synthetic clustered data, brute-force ground truth and recall for the quantizer and IVF
//! tests.

use crate::distance::scalar;
use crate::Metric;
use rand::{Rng, SeedableRng};

/// A standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `n` rows of dimension `dim` around `clusters` random centres (uniform in `[-1, 1]^dim`)
/// with Gaussian noise of standard deviation `sigma`; unit length when `normalise`.
pub(crate) fn clustered(
    n: usize,
    dim: usize,
    clusters: usize,
    sigma: f32,
    normalise: bool,
    seed: u64,
) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.gen_range(0..clusters);
        let start = out.len();
        for d in 0..dim {
            out.push(centres[c * dim + d] + sigma * normal(&mut rng));
        }
        if normalise {
            let row = &mut out[start..];
            let norm = scalar::dot(row, row).sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    out
}

/// Exact distance under the crate convention, from the scalar reference kernels.
pub(crate) fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => scalar::l2(a, b),
        Metric::Dot | Metric::Cosine => -scalar::dot(a, b),
    }
}

/// Exact top-`k` ids of `query` in `data` by brute force (ties to the lower id).
pub(crate) fn brute_force(
    data: &[f32],
    dim: usize,
    metric: Metric,
    query: &[f32],
    k: usize,
) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, row)| (exact_distance(metric, query, row), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.into_iter().map(|(_, i)| i).collect()
}

/// `|got ∩ truth| / |truth|`.
pub(crate) fn recall(got: &[u32], truth: &[u32]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth.iter().filter(|t| got.contains(t)).count();
    hits as f64 / truth.len() as f64
}

/// Mean recall@k of `search` over `queries` against brute force on `data`.
pub(crate) fn mean_recall(
    data: &[f32],
    queries: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
    mut search: impl FnMut(&[f32]) -> Vec<u32>,
) -> f64 {
    let mut total = 0.0;
    let nq = queries.len() / dim;
    for q in queries.chunks_exact(dim) {
        let truth = brute_force(data, dim, metric, q, k);
        total += recall(&search(q), &truth);
    }
    total / nq as f64
}
