//! SQ8 tests: kernels against the scalar reference, recall after re-rank, memory, errors.

use super::kernel::{self, scalar, Isa};
use super::{Sq8Codes, Sq8Quantizer};
use crate::quant::testdata::{clustered, exact_distance, mean_recall};
use crate::space::{QueryScorer, VectorSpace};
use crate::{Metric, VectorError};
use proptest::prelude::*;

const AWKWARD_DIMS: [usize; 6] = [1, 3, 15, 17, 383, 1536];

/// Relative error against the sum of the terms' magnitudes (the scale the rounding error of a
/// reordered f32 sum is bounded by; for the L2 kernel every term is non-negative, so this is
/// the plain relative error).
fn rel_err(got: f32, want: f32, magnitude: f32) -> f32 {
    (got - want).abs() / magnitude.max(f32::MIN_POSITIVE)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn simd_kernels_equal_scalar(
        dim_idx in 0usize..AWKWARD_DIMS.len(),
        seed in any::<u64>(),
    ) {
        use rand::{Rng, SeedableRng};
        let dim = AWKWARD_DIMS[dim_idx];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let q: Vec<f32> = (0..dim).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let w: Vec<f32> = (0..dim).map(|_| rng.gen_range(0.0..0.01)).collect();
        let c: Vec<u8> = (0..dim).map(|_| rng.gen()).collect();
        let want_dot = scalar::dot_u8(&q, &c);
        let mag_dot: f32 = q.iter().zip(&c).map(|(&x, &y)| (x * f32::from(y)).abs()).sum();
        let want_l2 = scalar::l2_u8(&q, &w, &c);
        for isa in Isa::available() {
            let d = kernel::dot_u8(isa, &q, &c);
            prop_assert!(rel_err(d, want_dot, mag_dot) <= 1e-5,
                "dot {isa:?} dim {dim}: {d} vs {want_dot}");
            let l = kernel::l2_u8(isa, &q, &w, &c);
            prop_assert!(rel_err(l, want_l2, want_l2) <= 1e-5,
                "l2 {isa:?} dim {dim}: {l} vs {want_l2}");
        }
    }
}

#[test]
fn every_awkward_dim_runs_on_every_isa() {
    println!("isas on this machine: {:?}", Isa::available());
    for dim in AWKWARD_DIMS {
        let q: Vec<f32> = (0..dim).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
        let w = vec![0.5f32; dim];
        let c: Vec<u8> = (0..dim).map(|i| (i * 37 % 256) as u8).collect();
        for isa in Isa::available() {
            let want = scalar::l2_u8(&q, &w, &c);
            let got = kernel::l2_u8(isa, &q, &w, &c);
            assert!(rel_err(got, want, want) <= 1e-5, "{isa:?} dim {dim}");
        }
    }
}

#[test]
fn encode_decode_error_is_half_a_step() {
    let seed = 5;
    println!("seed {seed}");
    let dim = 20;
    let data = clustered(1000, dim, 4, 0.5, false, seed);
    let q = Sq8Quantizer::train(&data, dim, Metric::L2, 1000, seed).expect("train");
    for row in data.chunks_exact(dim) {
        let back = q.decode(&q.encode(row).expect("encode")).expect("decode");
        for ((&x, &y), &s) in row.iter().zip(&back).zip(q.scales()) {
            assert!((x - y).abs() <= s * 0.5 + 1e-5, "{x} vs {y}, step {s}");
        }
    }
}

#[test]
fn scorer_matches_distance_to_reconstruction() {
    let seed = 9;
    println!("seed {seed}");
    let dim = 33;
    let mut data = clustered(300, dim, 4, 0.4, true, seed);
    // A constant dimension (zero range) exercises the folded bias term.
    for row in data.chunks_exact_mut(dim) {
        row[5] = 0.25;
    }
    let query = &clustered(1, dim, 1, 0.4, true, seed + 1)[..];
    // Cosine takes unit rows: renormalised, the constant dimension varies a little.
    let mut unit = data.clone();
    for row in unit.chunks_exact_mut(dim) {
        crate::distance::normalize(row).expect("non-zero row");
    }
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let data = if metric == Metric::Cosine {
            &unit
        } else {
            &data
        };
        let q = Sq8Quantizer::train(data, dim, metric, 300, seed).expect("train");
        let codes = q.encode_all(data).expect("encode");
        assert_eq!(codes.len(), 300);
        assert_eq!(codes.dim(), dim);
        let scorer = codes.scorer(query);
        for i in 0..300u32 {
            let rec = q.decode(codes.code(i).expect("code")).expect("decode");
            let want = exact_distance(metric, query, &rec);
            let got = scorer.distance(i);
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{metric} {i}: {got} vs {want}"
            );
        }
        assert_eq!(scorer.distance(300), f32::INFINITY);
        assert!(codes.pair_distance(0, 0).abs() <= 1e-3 || metric != Metric::L2);
        assert_eq!(codes.pair_distance(0, 999), f32::INFINITY);
    }
}

#[test]
fn sq8_rerank_recall_within_001_of_exact_and_memory() {
    let seed = 42;
    println!("seed {seed}");
    let (n, dim, nq, k) = (8000, 48, 60, 10);
    for (metric, normalise) in [(Metric::L2, false), (Metric::Cosine, true)] {
        let data = clustered(n, dim, 40, 0.25, normalise, seed);
        let queries = clustered(nq, dim, 40, 0.25, normalise, seed + 1);
        let q = Sq8Quantizer::train(&data, dim, metric, 2000, seed).expect("train");
        let codes = q.encode_all(&data).expect("encode");
        let exact = 1.0; // brute force against itself
        let r = mean_recall(&data, &queries, dim, metric, k, |qv| {
            codes
                .search_rerank(qv, k, &data, 4)
                .expect("search")
                .iter()
                .map(|x| x.0)
                .collect()
        });
        let raw = mean_recall(&data, &queries, dim, metric, k, |qv| {
            codes
                .search_flat(qv, k)
                .expect("search")
                .iter()
                .map(|x| x.0)
                .collect()
        });
        println!("{metric}: sq8 flat recall@10 {raw:.4}, sq8 + rerank x4 {r:.4}");
        assert!(r >= exact - 0.01, "{metric}: sq8+rerank recall {r}");
        assert!(r >= raw);
        let f32_bytes = n * dim * 4;
        let ratio = codes.memory_bytes() as f64 / f32_bytes as f64;
        println!(
            "{metric}: codes memory {} B = {ratio:.3} of f32",
            codes.memory_bytes()
        );
        assert!(ratio <= 0.3);
    }
}

#[test]
fn clipping_narrows_the_range() {
    let dim = 2;
    let mut data: Vec<f32> = (0..1000).flat_map(|i| [i as f32 / 1000.0, 0.5]).collect();
    data[0] = -100.0; // an outlier
    let plain = Sq8Quantizer::train(&data, dim, Metric::L2, 1000, 1).expect("train");
    let clipped =
        Sq8Quantizer::train_clipped(&data, dim, Metric::L2, 1000, 1, 0.01).expect("train");
    assert!(plain.mins()[0] == -100.0);
    assert!(clipped.mins()[0] > -1.0 && clipped.scales()[0] < plain.scales()[0] / 10.0);
    // Outliers saturate instead of failing.
    assert_eq!(clipped.encode(&[-100.0, 0.5]).expect("encode")[0], 0);
    assert_eq!(clipped.encode(&[1e6, 0.5]).expect("encode")[0], 255);
}

#[test]
fn bad_input_is_a_typed_error() {
    let data = clustered(100, 8, 2, 0.3, true, 1);
    assert!(matches!(
        Sq8Quantizer::train(&[], 8, Metric::L2, 10, 1),
        Err(VectorError::NotEnoughTrainingData { .. })
    ));
    assert!(matches!(
        Sq8Quantizer::train(&data, 0, Metric::L2, 10, 1),
        Err(VectorError::InvalidParameter { name: "dim", .. })
    ));
    assert!(matches!(
        Sq8Quantizer::train(&data[..15], 8, Metric::L2, 10, 1),
        Err(VectorError::InvalidParameter { name: "data", .. })
    ));
    assert!(matches!(
        Sq8Quantizer::train_clipped(&data, 8, Metric::L2, 10, 1, 0.7),
        Err(VectorError::InvalidParameter { name: "clip", .. })
    ));
    let mut bad = data.clone();
    bad[13] = f32::INFINITY;
    assert!(matches!(
        Sq8Quantizer::train(&bad, 8, Metric::L2, 10, 1),
        Err(VectorError::NonFinite { index: 5, .. })
    ));
    let mut zero = data.clone();
    zero[8..16].fill(0.0);
    assert!(matches!(
        Sq8Quantizer::train(&zero, 8, Metric::Cosine, 10, 1),
        Err(VectorError::ZeroVector)
    ));
    let q = Sq8Quantizer::train(&data, 8, Metric::Cosine, 100, 1).expect("train");
    let mut codes = Sq8Codes::new(q.clone());
    assert_eq!(codes.push(&data[..8]).expect("push"), 0);
    assert!(matches!(
        codes.push(&data[..7]),
        Err(VectorError::DimensionMismatch {
            expected: 8,
            got: 7
        })
    ));
    assert!(matches!(
        codes.search_flat(&[f32::NAN; 8], 1),
        Err(VectorError::NonFinite { .. })
    ));
    assert!(matches!(
        codes.search_flat(&[0.0; 8], 1),
        Err(VectorError::ZeroVector)
    ));
    assert!(matches!(
        q.decode(&[0; 3]),
        Err(VectorError::DimensionMismatch {
            expected: 8,
            got: 3
        })
    ));
    // Re-rank rows that do not cover the codes, or a zero oversampling factor.
    let codes = q.encode_all(&data).expect("encode");
    assert!(matches!(
        codes.search_rerank(&data[..8], 1, &data[..80], 2),
        Err(VectorError::InvalidParameter { name: "rows", .. })
    ));
    assert!(matches!(
        codes.search_rerank(&data[..8], 1, &data, 0),
        Err(VectorError::InvalidParameter {
            name: "oversample",
            ..
        })
    ));
    // k larger than the collection returns every point; every point finds itself.
    assert_eq!(
        codes.search_flat(&data[..8], 1000).expect("search").len(),
        100
    );
    for i in [0usize, 17, 99] {
        let top = codes
            .search_rerank(&data[i * 8..(i + 1) * 8], 1, &data, 10)
            .expect("search");
        assert_eq!(top[0].0, i as u32);
    }
}

#[test]
fn hnsw_over_sq8_codes_with_rerank_within_001_of_f32() {
    use crate::hnsw::{Hnsw, HnswParams, SearchParams};
    use crate::space::F32Space;
    let seed = 77;
    println!("seed {seed}");
    let (n, dim, nq, k, ef) = (4000, 32, 60, 10, 64);
    let data = clustered(n, dim, 30, 0.3, true, seed);
    let queries = clustered(nq, dim, 30, 0.3, true, seed + 1);
    let metric = Metric::Cosine;
    let mut f32s = F32Space::new(metric, dim);
    for row in data.chunks_exact(dim) {
        f32s.add(row).expect("add");
    }
    let codes = Sq8Quantizer::train(&data, dim, metric, n, seed)
        .and_then(|q| q.encode_all(&data))
        .expect("sq8");
    let params = HnswParams::default()
        .with_m(16)
        .with_ef_construction(100)
        .with_seed(seed);
    // The same ef over a graph built on f32 rows, and over one built on SQ8 codes.
    let graph_f32 = Hnsw::build(&f32s, params).expect("build f32");
    let graph_sq8 = Hnsw::build(&codes, params).expect("build sq8");
    let p = SearchParams::new(k, ef).with_rescore(2);
    let ids = |v: Vec<crate::space::Neighbor>| v.into_iter().map(|x| x.id).collect::<Vec<u32>>();
    let exact = mean_recall(&data, &queries, dim, metric, k, |q| {
        ids(graph_f32.search(&f32s, q, &p).expect("search"))
    });
    let sq8_same_graph = mean_recall(&data, &queries, dim, metric, k, |q| {
        ids(graph_f32
            .search_rescored(&codes, &f32s, q, &p)
            .expect("search"))
    });
    let sq8_graph = mean_recall(&data, &queries, dim, metric, k, |q| {
        ids(graph_sq8
            .search_rescored(&codes, &f32s, q, &p)
            .expect("search"))
    });
    println!(
        "hnsw ef={ef}: f32 {exact:.4}, sq8 codes + rerank x2 on the f32 graph {sq8_same_graph:.4}, on an sq8-built graph {sq8_graph:.4}"
    );
    // Traversal over SQ8 codes (same graph, same ef) + re-rank: within 0.01 of f32.
    assert!(sq8_same_graph >= exact - 0.01);
    // A graph whose edges were chosen from SQ8 distances can be a little worse (one run:
    // 0.950 vs 0.963; parallel builds also vary run to run): a looser floor.
    assert!(sq8_graph >= exact - 0.03);
}
