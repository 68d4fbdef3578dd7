//! Integration tests of quiver-vector: one binary, one module per suite.

mod edges;
mod flat;
mod hnsw;
mod kernels;
mod vecfile;

use quiver_vector::space::F32Space;
use quiver_vector::{Metric, Neighbor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n` points in `dim` dimensions around `clusters` Gaussian-ish centres (seeded).
pub fn clustered(seed: u64, n: usize, dim: usize, clusters: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.gen_range(-10.0..10.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.gen_range(0..clusters)];
            c.iter()
                .map(|x| {
                    // sum of uniforms: cheap, roughly normal noise
                    let e: f32 = (0..4).map(|_| rng.gen_range(-1.0f32..1.0)).sum();
                    x + 1.5 * e
                })
                .collect()
        })
        .collect()
}

/// `n` base points and `nq` held-out queries drawn around the same centres.
pub fn clustered_split(
    seed: u64,
    n: usize,
    nq: usize,
    dim: usize,
    clusters: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut all = clustered(seed, n + nq, dim, clusters);
    let qs = all.split_off(n);
    (all, qs)
}

/// A space holding `points` under `metric`.
pub fn space_of(metric: Metric, points: &[Vec<f32>]) -> F32Space {
    let mut s = F32Space::new(metric, points[0].len());
    for p in points {
        s.add(p).expect("valid test vector");
    }
    s
}

/// Exact top-k by the scalar reference kernels (ties to the lower id), over allowed ids.
pub fn exact(
    space: &F32Space,
    q: &[f32],
    k: usize,
    allowed: impl Fn(u32) -> bool,
) -> Vec<Neighbor> {
    let v = space.vectors();
    let mut all: Vec<Neighbor> = (0..v.len() as u32)
        .filter(|&i| allowed(i))
        .map(|i| {
            let r = v.row(i);
            let d = match space.metric() {
                Metric::L2 => quiver_vector::distance::scalar::l2(q, r),
                _ => -quiver_vector::distance::scalar::dot(q, r),
            };
            Neighbor { id: i, distance: d }
        })
        .collect();
    all.sort();
    all.truncate(k);
    all
}

/// |got ∩ want| / |want| (by id).
pub fn overlap(got: &[Neighbor], want: &[Neighbor]) -> (usize, usize) {
    let hits = got
        .iter()
        .filter(|g| want.iter().any(|w| w.id == g.id))
        .count();
    (hits, want.len())
}

/// `<repo>/../shared/data/<name>` when it exists.
pub fn shared_data(name: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: shared data set {} not found; this test needs ../shared/data next to the repo", p.display());
        None
    }
}

/// Reads a texmex .fvecs/.ivecs file into rows (test helper; panics on malformed input).
pub fn read_vecs(path: &std::path::Path) -> Vec<Vec<u32>> {
    let b = std::fs::read(path).expect("readable texmex file");
    let mut out = Vec::new();
    let mut o = 0;
    while o < b.len() {
        let d = u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes")) as usize;
        out.push(
            b[o + 4..o + 4 + 4 * d]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        );
        o += 4 + 4 * d;
    }
    out
}
