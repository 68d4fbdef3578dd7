use super::batch::search_batch_with;
use super::*;
use crate::space::F32Space;
use crate::{Filter, Metric, Neighbor};

#[test]
fn topk_keeps_smallest_with_low_id_ties() {
    let mut t = TopK::new(3);
    for (i, d) in [5.0, 1.0, 3.0, 1.0, 0.5, 9.0].into_iter().enumerate() {
        t.push(i as u32, d);
    }
    let ids: Vec<u32> = t.into_sorted().iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![4, 1, 3]);
}

#[test]
fn batch_equals_single() {
    let mut s = F32Space::new(Metric::L2, 5);
    for i in 0..300 {
        let v: Vec<f32> = (0..5).map(|j| ((i * 7 + j * 13) % 17) as f32).collect();
        s.add(&v).unwrap();
    }
    let qs: Vec<Vec<f32>> = (0..40)
        .map(|i| (0..5).map(|j| ((i * 3 + j) % 11) as f32).collect())
        .collect();
    let b = search_batch(&s, &qs, &FlatParams::k(7)).unwrap();
    for (q, r) in qs.iter().zip(&b) {
        assert_eq!(&search(&s, q, &FlatParams::k(7)).unwrap(), r);
    }
}

/// Exact f64 distances of every accepted row, sorted (distance, id).
fn oracle(s: &F32Space, q: &[f32], accept: &dyn Fn(u32) -> bool) -> Vec<(f64, u32)> {
    let v = s.vectors();
    let mut all: Vec<(f64, u32)> = (0..v.len() as u32)
        .filter(|&i| accept(i))
        .map(|i| {
            let r = v.row(i);
            let d = match s.metric() {
                Metric::L2 => r
                    .iter()
                    .zip(q)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum(),
                Metric::Dot | Metric::Cosine => -r
                    .iter()
                    .zip(q)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>(),
            };
            (d, i)
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all
}

/// Checks one batched result against the oracle: the right count, accepted and distinct
/// ids, sorted, each reported distance right, and the i-th true distance equal to the
/// oracle's i-th (so it is an exact top-k up to near-ties within `eps`).
fn check_exact(got: &[Neighbor], want: &[(f64, u32)], k: usize, eps: f64, what: &str) {
    use std::collections::HashMap;
    let truth: HashMap<u32, f64> = want.iter().map(|&(d, i)| (i, d)).collect();
    assert_eq!(got.len(), k.min(want.len()), "{what}: count");
    let mut seen = std::collections::HashSet::new();
    for (pos, nb) in got.iter().enumerate() {
        assert!(seen.insert(nb.id), "{what}: duplicate id {}", nb.id);
        let Some(&d) = truth.get(&nb.id) else {
            panic!("{what}: id {} not accepted", nb.id);
        };
        let reported = f64::from(nb.distance);
        assert!(
            (reported - d).abs() <= eps || (d < 0.0 && reported == 0.0 && d > -eps),
            "{what}: id {} reported {reported}, true {d}",
            nb.id
        );
        assert!(
            (d - want[pos].0).abs() <= eps,
            "{what}: rank {pos} holds id {} at {d}, exact top-k has {} at {}",
            nb.id,
            want[pos].1,
            want[pos].0
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].distance <= w[1].distance),
        "{what}: unsorted"
    );
}

#[test]
fn batch_is_exact_on_every_kernel_path() {
    use crate::distance::Kernels;
    use rand::{Rng, SeedableRng};
    let seed = 20_240_611u64;
    eprintln!("seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let deleted: roaring::RoaringBitmap = (0..3000u32).filter(|i| i % 7 == 3).collect();
    let pred = |i: u32| i % 3 != 1;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for &(dim, n, nq) in &[
        (1, 40, 5),
        (3, 7, 33),
        (15, 300, 70),
        (16, 1, 1),
        (17, 2100, 31),
        (33, 13, 65),
        (383, 1100, 35),
    ] {
        for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
            let mut s = F32Space::new(metric, dim);
            let mut rows: Vec<Vec<f32>> = Vec::new();
            for i in 0..n {
                // A few exact duplicates make ties.
                let v = if i % 10 == 9 {
                    rows[i - 3].clone()
                } else {
                    (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
                };
                s.add(&v).unwrap();
                rows.push(v);
            }
            let qs: Vec<Vec<f32>> = (0..nq)
                .map(|_| {
                    let q: Vec<f32> = (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
                    s.prepare_query(&q).unwrap()
                })
                .collect();
            let eps = 2e-5 * (dim as f64 + 1.0);
            for kern in Kernels::available() {
                for k in [1, 10, n + 5] {
                    let what =
                        format!("{} dim {dim} n {n} nq {nq} k {k} {metric}", kern.isa.name());
                    let p = FlatParams::k(k);
                    let got = pool
                        .install(|| search_batch_with(&kern, &s, &qs, &p))
                        .unwrap();
                    assert_eq!(got.len(), nq, "{what}");
                    for (q, g) in qs.iter().zip(&got) {
                        check_exact(g, &oracle(&s, q, &|_| true), k, eps, &what);
                    }
                    let p = FlatParams {
                        k,
                        deleted: Some(&deleted),
                        filter: Some(Filter::Predicate(&pred)),
                    };
                    let got = search_batch_with(&kern, &s, &qs, &p).unwrap();
                    let accept = |i: u32| !deleted.contains(i) && pred(i);
                    for (q, g) in qs.iter().zip(&got) {
                        check_exact(
                            g,
                            &oracle(&s, q, &accept),
                            k,
                            eps,
                            &format!("{what} filtered"),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn batch_edge_cases() {
    let mut s = F32Space::new(Metric::L2, 3);
    assert_eq!(
        search_batch(&s, &[vec![1.0, 2.0, 3.0]], &FlatParams::k(4)).unwrap(),
        vec![Vec::<Neighbor>::new()]
    );
    assert!(search_batch(&s, &[], &FlatParams::k(4)).unwrap().is_empty());
    s.add(&[1.0, 2.0, 3.0]).unwrap();
    s.add(&[1.0, 2.0, 3.0]).unwrap();
    let r = search_batch(&s, &vec![vec![1.0, 2.0, 3.0]; 2], &FlatParams::k(0)).unwrap();
    assert_eq!(r, vec![Vec::<Neighbor>::new(); 2]);
    let r = search_batch(&s, &[vec![1.0, 2.0, 3.0]], &FlatParams::k(5)).unwrap();
    assert_eq!(
        r[0],
        vec![
            Neighbor {
                id: 0,
                distance: 0.0
            },
            Neighbor {
                id: 1,
                distance: 0.0
            }
        ]
    );
    let none = |_: u32| false;
    let p = FlatParams {
        k: 3,
        deleted: None,
        filter: Some(Filter::Predicate(&none)),
    };
    assert!(search_batch(&s, &[vec![0.0; 3]], &p).unwrap()[0].is_empty());
}

#[test]
fn topk_lists_equal_topk() {
    use super::heap::TopKLists;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for k in [0, 1, 2, 3, 7, 10, 16] {
        let mut lists = TopKLists::new(3, k);
        let mut tops: Vec<TopK> = (0..3).map(|_| TopK::new(k)).collect();
        for id in 0..400u32 {
            let q = rng.gen_range(0..3usize);
            // Few distinct values: many ties, broken by id.
            let d = f32::from(rng.gen_range(0u8..20));
            lists.push(q, id, d);
            tops[q].push(id, d);
            assert_eq!(lists.threshold(q), tops[q].threshold(), "k {k}");
        }
        for (q, t) in tops.into_iter().enumerate() {
            assert_eq!(lists.sorted(q), t.into_sorted(), "k {k} list {q}");
        }
    }
}
