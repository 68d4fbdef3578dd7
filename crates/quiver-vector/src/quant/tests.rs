//! Tests of the shared pieces: k-means, top-k selection and exact re-rank.

use super::gemv::BlockedRows;
use super::kmeans::{self, KMeans};
use super::rerank;
use super::sq8::kernel::Isa;
use super::testdata::{brute_force, clustered, exact_distance};
use super::topk::TopK;
use crate::{Metric, VectorError};

#[test]
fn kmeans_recovers_separated_clusters() {
    let seed = 7;
    println!("seed {seed}");
    // 8 tight clusters: every point must share its centroid with its cluster mates.
    let dim = 16;
    let data = clustered(2000, dim, 8, 0.01, false, seed);
    let centroids = KMeans::new(8, seed).train(&data, dim).expect("train");
    assert_eq!(centroids.len(), 8 * dim);
    let assign = kmeans::assign(&data, dim, &centroids);
    // Mean squared distance to the assigned centroid is close to the noise (dim · σ²).
    let mse: f32 = data
        .chunks_exact(dim)
        .zip(&assign)
        .map(|(x, &a)| exact_distance(Metric::L2, x, &centroids[a as usize * dim..][..dim]))
        .sum::<f32>()
        / 2000.0;
    assert!(mse < 0.05, "k-means did not converge: mse {mse}");
    // Deterministic for a fixed seed.
    assert_eq!(
        centroids,
        KMeans::new(8, seed).train(&data, dim).expect("train")
    );
    // nearest() agrees with assign().
    for (x, &a) in data.chunks_exact(dim).zip(&assign).take(50) {
        assert_eq!(kmeans::nearest(x, &centroids, dim).0, a);
    }
}

#[test]
fn kmeans_small_dim_path_matches_dot_path() {
    let seed = 11;
    println!("seed {seed}");
    for dim in [4usize, 40] {
        let data = clustered(600, dim, 5, 0.2, false, seed);
        let centroids = KMeans::new(32, seed).train(&data, dim).expect("train");
        let assign = kmeans::assign(&data, dim, &centroids);
        for (x, &a) in data.chunks_exact(dim).zip(&assign) {
            let (best, d) = kmeans::nearest(x, &centroids, dim);
            let got = exact_distance(Metric::L2, x, &centroids[a as usize * dim..][..dim]);
            assert!(
                best == a || (got - d).abs() <= 1e-4 * d.max(1.0),
                "dim {dim}"
            );
        }
    }
}

#[test]
fn kmeans_errors() {
    assert!(matches!(
        KMeans::new(10, 1).train(&[0.0; 5 * 4], 4),
        Err(VectorError::NotEnoughTrainingData {
            need: 10,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        KMeans::new(0, 1).train(&[0.0; 8], 4),
        Err(VectorError::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(
        KMeans::new(1, 1).train(&[0.0; 7], 4),
        Err(VectorError::InvalidParameter { name: "data", .. })
    ));
    // Identical points (every cluster but one empty after assignment) do not panic.
    let same = vec![1.0f32; 100 * 3];
    let c = KMeans::new(4, 1).train(&same, 3).expect("train");
    assert!(c.iter().all(|x| x.is_finite()));
}

#[test]
fn topk_keeps_smallest_sorted() {
    let mut t = TopK::new(3);
    for (i, d) in [5.0, 1.0, 4.0, 2.0, 3.0, 1.0].into_iter().enumerate() {
        t.push(i as u32, d);
    }
    assert_eq!(t.into_sorted(), vec![(1, 1.0), (5, 1.0), (3, 2.0)]);
    let mut empty = TopK::new(0);
    empty.push(1, 1.0);
    assert!(empty.into_sorted().is_empty());
}

#[test]
fn rerank_is_exact_and_checked() {
    let seed = 3;
    println!("seed {seed}");
    let dim = 24;
    let data = clustered(500, dim, 10, 0.3, true, seed);
    let query = &clustered(1, dim, 1, 0.3, true, seed + 1)[..];
    let all: Vec<u32> = (0..500).rev().collect();
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let got = rerank(&all, query, &data, dim, metric, 10).expect("rerank");
        let ids: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(ids, brute_force(&data, dim, metric, query, 10), "{metric}");
        for (id, d) in got {
            let row = &data[id as usize * dim..][..dim];
            assert!((d - exact_distance(metric, query, row)).abs() <= 1e-4);
        }
    }
    // Duplicates are scored once; k beyond the candidates returns them all.
    let got = rerank(&[4, 4, 9], query, &data, dim, Metric::L2, 10).expect("rerank");
    assert_eq!(got.len(), 2);
    assert!(matches!(
        rerank(&[500], query, &data, dim, Metric::L2, 1),
        Err(VectorError::InvalidParameter {
            name: "candidates",
            ..
        })
    ));
    assert!(matches!(
        rerank(&[0], &query[..3], &data, dim, Metric::L2, 1),
        Err(VectorError::DimensionMismatch {
            expected: 24,
            got: 3
        })
    ));
    let mut nan = query.to_vec();
    nan[2] = f32::NAN;
    assert!(matches!(
        rerank(&[0], &nan, &data, dim, Metric::L2, 1),
        Err(VectorError::NonFinite { index: 2, .. })
    ));
}

#[test]
fn blocked_dots_equal_scalar_reference_on_every_isa() {
    use rand::{Rng, SeedableRng};
    let seed = 17;
    println!("seed {seed}, isas {:?}", Isa::available());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for dim in [1usize, 3, 15, 17, 383] {
        for rows in [1usize, 15, 16, 17, 64, 70, 130] {
            let data: Vec<f32> = (0..rows * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let q: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut blocked = BlockedRows::new(&data, dim);
            for isa in Isa::available() {
                blocked.set_isa(isa);
                let mut out = Vec::new();
                blocked.dots(&q, &mut out);
                assert_eq!(out.len(), rows);
                for (i, &got) in out.iter().enumerate() {
                    let row = &data[i * dim..(i + 1) * dim];
                    let want = crate::distance::scalar::dot(&q, row);
                    let mag: f32 = q.iter().zip(row).map(|(a, b)| (a * b).abs()).sum();
                    assert!(
                        (got - want).abs() <= 1e-5 * mag.max(f32::MIN_POSITIVE),
                        "{isa:?} dim {dim} rows {rows} row {i}: {got} vs {want}"
                    );
                }
            }
            // A query of the wrong length yields zeros, never a panic.
            let mut out = Vec::new();
            blocked.dots(&q[..dim - 1], &mut out);
            assert!(out.iter().all(|&x| x == 0.0));
        }
    }
}
