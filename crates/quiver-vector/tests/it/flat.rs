//! Flat search equals exact search, with every edge case.

use crate::{clustered, exact, space_of};
use quiver_vector::flat::{self, FlatParams};
use quiver_vector::space::F32Space;
use quiver_vector::{Filter, Metric, VectorError};
use roaring::RoaringBitmap;

#[test]
fn flat_equals_reference_for_every_metric() {
    let seed = 11;
    eprintln!("seed {seed}");
    let (pts, qs) = crate::clustered_split(seed, 2000, 30, 24, 10);
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let s = space_of(metric, &pts);
        let queries: Vec<Vec<f32>> = qs
            .iter()
            .map(|q| s.prepare_query(q).expect("query"))
            .collect();
        let batch = flat::search_batch(&s, &queries, &FlatParams::k(10)).expect("batch");
        for (q, b) in queries.iter().zip(&batch) {
            let got = flat::search(&s, q, &FlatParams::k(10)).expect("search");
            let want = exact(&s, q, 10, |_| true);
            let ids = |v: &[quiver_vector::Neighbor]| v.iter().map(|n| n.id).collect::<Vec<_>>();
            assert_eq!(ids(&got), ids(&want), "{metric}");
            assert_eq!(ids(b), ids(&want), "{metric} batch");
            for (g, w) in got.iter().zip(&want) {
                assert!((g.distance - w.distance).abs() <= 1e-3 * w.distance.abs().max(1.0));
            }
        }
    }
}

#[test]
fn k_larger_than_n_empty_single_duplicates() {
    let s = space_of(
        Metric::L2,
        &[
            vec![0.0, 0.0],
            vec![1.0, 0.0],
            vec![1.0, 0.0],
            vec![5.0, 5.0],
        ],
    );
    let all = flat::search(&s, &[1.0, 0.0], &FlatParams::k(100)).expect("search");
    assert_eq!(
        all.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![1, 2, 0, 3]
    );
    assert!(all.windows(2).all(|w| w[0].distance <= w[1].distance));
    assert!(flat::search(&s, &[1.0, 0.0], &FlatParams::k(0))
        .expect("k=0")
        .is_empty());

    let empty = F32Space::new(Metric::L2, 2);
    assert!(flat::search(&empty, &[1.0, 0.0], &FlatParams::k(5))
        .expect("empty")
        .is_empty());
    assert_eq!(
        flat::search_batch(&empty, &[vec![1.0, 0.0]], &FlatParams::k(5)).expect("empty batch"),
        vec![vec![]]
    );

    let one = space_of(Metric::Cosine, &[vec![3.0, 4.0]]);
    let r = flat::search(
        &one,
        &one.prepare_query(&[3.0, 4.0]).expect("q"),
        &FlatParams::k(3),
    )
    .expect("single");
    assert_eq!(r.len(), 1);
    assert!((r[0].distance + 1.0).abs() < 1e-6);
}

#[test]
fn deleted_and_filtered_never_returned() {
    let pts = clustered(5, 1000, 8, 4);
    let s = space_of(Metric::L2, &pts);
    let deleted: RoaringBitmap = (0..1000u32).filter(|i| i % 3 == 0).collect();
    let allow: RoaringBitmap = (0..1000u32).filter(|i| i % 5 != 0).collect();
    let pred = |i: u32| i & 1 == 0;
    for q in clustered(6, 10, 8, 4) {
        let p = FlatParams {
            k: 20,
            deleted: Some(&deleted),
            filter: Some(Filter::Allow(&allow)),
        };
        let r = flat::search(&s, &q, &p).expect("search");
        let want = exact(&s, &q, 20, |i| !deleted.contains(i) && allow.contains(i));
        assert_eq!(
            r.iter().map(|n| n.id).collect::<Vec<_>>(),
            want.iter().map(|n| n.id).collect::<Vec<_>>()
        );
        let p = FlatParams {
            k: 20,
            deleted: None,
            filter: Some(Filter::Predicate(&pred)),
        };
        assert!(flat::search(&s, &q, &p)
            .expect("search")
            .iter()
            .all(|n| n.id % 2 == 0));
        let b = flat::search_batch(
            &s,
            std::slice::from_ref(&q),
            &FlatParams {
                k: 20,
                deleted: Some(&deleted),
                filter: None,
            },
        )
        .expect("batch");
        assert!(b[0].iter().all(|n| !deleted.contains(n.id)));
        assert_eq!(b[0].len(), 20);
    }
}

#[test]
fn bad_input_is_typed() {
    let mut s = space_of(Metric::Cosine, &[vec![1.0, 0.0, 0.0]]);
    assert!(matches!(
        flat::search(&s, &[1.0, 0.0], &FlatParams::k(1)),
        Err(VectorError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        flat::search(&s, &[f32::NAN, 0.0, 0.0], &FlatParams::k(1)),
        Err(VectorError::NonFinite { .. })
    ));
    assert!(matches!(
        flat::search_batch(&s, &[vec![1.0]], &FlatParams::k(1)),
        Err(VectorError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        s.add(&[0.0, 0.0, 0.0]),
        Err(VectorError::ZeroVector)
    ));
    assert!(matches!(
        s.add(&[1.0, f32::INFINITY, 0.0]),
        Err(VectorError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        s.add(&[1.0]),
        Err(VectorError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        s.prepare_query(&[0.0, 0.0, 0.0]),
        Err(VectorError::ZeroVector)
    ));
    assert_eq!(s.vectors().len(), 1, "failed adds leave nothing behind");
}
