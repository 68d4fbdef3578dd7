//! PQ tests: ADC against reconstructions, recall after re-rank, the rescore knob, errors.

use super::adc;
use super::{PqCodes, ProductQuantizer, KSUB};
use crate::quant::testdata::{clustered, exact_distance, mean_recall};
use crate::space::{QueryScorer, VectorSpace};
use crate::{Metric, VectorError};

#[test]
fn adc_equals_distance_to_reconstruction() {
    let seed = 21;
    println!("seed {seed}");
    let dim = 24;
    let data = clustered(1500, dim, 10, 0.3, true, seed);
    let query = &clustered(1, dim, 1, 0.3, true, seed + 1)[..];
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let pq = ProductQuantizer::train_with(&data, dim, 6, metric, seed, 1500, 4).expect("train");
        assert_eq!((pq.m(), pq.dsub(), pq.dim()), (6, 4, 24));
        let codes = pq.encode_all(&data).expect("encode");
        let scorer = codes.scorer(query);
        let mut scanned = Vec::new();
        let q = super::PqQuery::new(&pq, query);
        adc::scan(q.tables(), codes.codes(), &mut scanned);
        assert_eq!(scanned.len(), 1500);
        for i in 0..1500u32 {
            let rec = pq.decode(codes.code(i).expect("code")).expect("decode");
            let want = exact_distance(metric, query, &rec);
            let got = scorer.distance(i);
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{metric} {i}: {got} vs {want}"
            );
            assert!((scanned[i as usize] - got).abs() <= 1e-5 * got.abs().max(1.0));
        }
        assert_eq!(scorer.distance(1500), f32::INFINITY);
        assert_eq!(codes.pair_distance(3, 1500), f32::INFINITY);
        assert!(codes.pair_distance(3, 4).is_finite());
    }
}

#[test]
fn training_is_deterministic() {
    let seed = 4;
    println!("seed {seed}");
    let data = clustered(600, 16, 5, 0.3, false, seed);
    let a = ProductQuantizer::train_with(&data, 16, 4, Metric::L2, seed, 600, 3).expect("train");
    let b = ProductQuantizer::train_with(&data, 16, 4, Metric::L2, seed, 600, 3).expect("train");
    assert_eq!(a, b);
    assert_eq!(a.centroids().len(), 4 * KSUB * 4);
}

#[test]
fn pq_rerank_recall_and_rescore_knob() {
    let seed = 1234;
    println!("seed {seed}");
    let (n, dim, m, nq, k) = (12_000, 32, 8, 50, 10);
    for (metric, normalise) in [(Metric::L2, false), (Metric::Cosine, true)] {
        let data = clustered(n, dim, 60, 0.3, normalise, seed);
        let queries = clustered(nq, dim, 60, 0.3, normalise, seed + 1);
        let pq = ProductQuantizer::train_with(&data, dim, m, metric, seed, 8192, 8).expect("train");
        let codes = pq.encode_all(&data).expect("encode");
        let mut recalls = Vec::new();
        for factor in [1usize, 4, 16] {
            let r = mean_recall(&data, &queries, dim, metric, k, |q| {
                codes
                    .search_rerank(q, k, &data, factor)
                    .expect("search")
                    .iter()
                    .map(|x| x.0)
                    .collect()
            });
            println!("{metric}: pq m={m} + rerank x{factor}: recall@10 {r:.4}");
            recalls.push(r);
        }
        assert!(
            recalls[2] >= 0.9,
            "{metric}: pq+rerank recall {}",
            recalls[2]
        );
        assert!(recalls[1] >= recalls[0] && recalls[2] >= recalls[1]);
        assert!(recalls[2] > recalls[0], "the rescore factor had no effect");
        let ratio = codes.memory_bytes() as f64 / (n * dim * 4) as f64;
        println!(
            "{metric}: pq memory {} B = {ratio:.3} of f32",
            codes.memory_bytes()
        );
        assert!(ratio <= 0.3);
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let data = clustered(300, 12, 3, 0.3, false, 2);
    assert!(matches!(
        ProductQuantizer::train(&data, 12, 5, Metric::L2, 1),
        Err(VectorError::InvalidParameter { name: "m", .. })
    ));
    assert!(matches!(
        ProductQuantizer::train(&data, 12, 0, Metric::L2, 1),
        Err(VectorError::InvalidParameter { name: "m", .. })
    ));
    // Fewer rows than 256 centroids: one centroid per row, so every row is coded exactly.
    let small = ProductQuantizer::train(&data[..12 * 100], 12, 3, Metric::L2, 1).expect("small");
    let small_codes = small.encode_all(&data[..12 * 100]).expect("encode");
    for i in [0usize, 50, 99] {
        let top = small_codes
            .search_flat(&data[i * 12..(i + 1) * 12], 1)
            .expect("search");
        assert_eq!(top[0].0, i as u32);
        assert!(top[0].1 <= 1e-6, "row {i} not coded exactly: {}", top[0].1);
    }
    let one = ProductQuantizer::train(&data[..12], 12, 3, Metric::L2, 1).expect("one row");
    assert_eq!(
        one.decode(&one.encode(&data[..12]).expect("encode"))
            .expect("decode"),
        data[..12]
    );
    assert!(matches!(
        ProductQuantizer::train(&[], 12, 3, Metric::L2, 1),
        Err(VectorError::NotEnoughTrainingData { got: 0, .. })
    ));
    let mut nan = data.clone();
    nan[40] = f32::NAN;
    assert!(matches!(
        ProductQuantizer::train(&nan, 12, 3, Metric::L2, 1),
        Err(VectorError::NonFinite { index: 4, .. })
    ));
    let pq = ProductQuantizer::train_with(&data, 12, 3, Metric::L2, 1, 300, 2).expect("train");
    assert!(matches!(
        pq.encode(&data[..11]),
        Err(VectorError::DimensionMismatch {
            expected: 12,
            got: 11
        })
    ));
    assert!(matches!(
        pq.decode(&[1, 2]),
        Err(VectorError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    ));
    let mut codes = PqCodes::new(pq.clone());
    assert_eq!(codes.push(&data[12..24]).expect("push"), 0);
    assert!(matches!(
        codes.search_flat(&[1.0; 13], 1),
        Err(VectorError::DimensionMismatch { .. })
    ));
    let codes = pq.encode_all(&data).expect("encode");
    assert!(matches!(
        codes.search_rerank(&data[..12], 1, &data[..24], 2),
        Err(VectorError::InvalidParameter { name: "rows", .. })
    ));
    // k larger than the collection returns every point; every point finds itself after re-rank.
    assert_eq!(
        codes
            .search_flat(&data[..12], 10_000)
            .expect("search")
            .len(),
        300
    );
    for i in [0usize, 150, 299] {
        let top = codes
            .search_rerank(&data[i * 12..(i + 1) * 12], 1, &data, 20)
            .expect("search");
        assert_eq!(top[0].0, i as u32);
    }
}

#[test]
fn scan_matches_score_for_odd_and_even_m() {
    let seed = 31;
    println!("seed {seed}");
    for (dim, m) in [
        (15usize, 3usize),
        (14, 7),
        (16, 8),
        (5, 1),
        (16, 16),
        (34, 17),
        (96, 48),
    ] {
        let data = clustered(700, dim, 6, 0.3, false, seed);
        let pq =
            ProductQuantizer::train_with(&data, dim, m, Metric::L2, seed, 700, 2).expect("train");
        let codes = pq.encode_all(&data).expect("encode");
        let q = super::PqQuery::new(&pq, &data[..dim]);
        // 700 codes: 175 blocks of four; also a count that leaves a remainder.
        for n in [700usize, 699, 3] {
            let mut out = Vec::new();
            adc::scan(q.tables(), &codes.codes()[..n * m], &mut out);
            assert_eq!(out.len(), n);
            for (i, &d) in out.iter().enumerate() {
                let want = adc::score(q.tables(), &codes.codes()[i * m..(i + 1) * m]);
                assert!(
                    (d - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "m {m} code {i}"
                );
            }
        }
    }
}

#[test]
fn hnsw_traverses_pq_codes_with_rerank() {
    use crate::hnsw::{Hnsw, HnswParams, SearchParams};
    use crate::space::F32Space;
    let seed = 88;
    println!("seed {seed}");
    let (n, dim, m, nq, k) = (4000, 32, 8, 50, 10);
    let data = clustered(n, dim, 30, 0.3, false, seed);
    let queries = clustered(nq, dim, 30, 0.3, false, seed + 1);
    let mut f32s = F32Space::new(Metric::L2, dim);
    for row in data.chunks_exact(dim) {
        f32s.add(row).expect("add");
    }
    let codes = ProductQuantizer::train_with(&data, dim, m, Metric::L2, seed, n, 8)
        .and_then(|pq| pq.encode_all(&data))
        .expect("pq");
    let params = HnswParams::default()
        .with_m(16)
        .with_ef_construction(100)
        .with_seed(seed);
    let graph = Hnsw::build(&f32s, params).expect("build");
    let ids = |v: Vec<crate::space::Neighbor>| v.into_iter().map(|x| x.id).collect::<Vec<u32>>();
    let exact = mean_recall(&data, &queries, dim, Metric::L2, k, |q| {
        ids(graph
            .search(&f32s, q, &SearchParams::new(k, 64))
            .expect("search"))
    });
    let mut recalls = Vec::new();
    for rescore in [1usize, 8] {
        let p = SearchParams::new(k, 64).with_rescore(rescore);
        let r = mean_recall(&data, &queries, dim, Metric::L2, k, |q| {
            ids(graph.search_rescored(&codes, &f32s, q, &p).expect("search"))
        });
        println!("hnsw ef=64 over pq m={m} codes, rerank x{rescore}: {r:.4} (f32 {exact:.4})");
        recalls.push(r);
    }
    assert!(recalls[1] >= 0.9 && recalls[1] >= exact - 0.05);
    assert!(recalls[1] > recalls[0], "the rescore factor had no effect");
}
