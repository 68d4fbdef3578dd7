//! HNSW: recall floors against exact search (printed seeds), knobs, persistence, damage.

use crate::{clustered, clustered_split, exact, overlap, read_vecs, shared_data, space_of};
use quiver_vector::hnsw::{Hnsw, HnswParams, SearchParams};
use quiver_vector::rayon::ThreadPoolBuilder;
use quiver_vector::space::F32Space;
use quiver_vector::{Filter, Metric, Neighbor, VectorError};
use roaring::RoaringBitmap;

fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(f)
}

fn recall(h: &Hnsw, s: &F32Space, qs: &[Vec<f32>], k: usize, ef: usize) -> f64 {
    let (mut hit, mut all) = (0, 0);
    for q in qs {
        let got = h.search(s, q, &SearchParams::new(k, ef)).expect("search");
        let (a, b) = overlap(&got, &exact(s, q, k, |_| true));
        hit += a;
        all += b;
    }
    hit as f64 / all as f64
}

#[test]
fn recall_floor_on_clustered_vectors() {
    let seed = 20_241_121;
    eprintln!("seed {seed}: 12000 x 32 clustered, m=16 ef_construction=100");
    let (pts, qs) = clustered_split(seed, 12_000, 100, 32, 60);
    let s = space_of(Metric::L2, &pts);
    let h = Hnsw::build(
        &s,
        HnswParams::default()
            .with_ef_construction(100)
            .with_seed(seed),
    )
    .expect("build");
    let r = recall(&h, &s, &qs, 10, 64);
    eprintln!("recall@10 at ef=64: {r:.4}");
    assert!(r >= 0.95, "recall@10 {r} < 0.95 at ef=64 (seed {seed})");
    assert!(h.neighbors(0, 0).len() <= 32);
}

#[test]
fn cosine_and_dot_recall() {
    let seed = 77;
    eprintln!("seed {seed}");
    let (pts, qs) = clustered_split(seed, 3000, 50, 16, 20);
    for metric in [Metric::Cosine, Metric::Dot] {
        let s = space_of(metric, &pts);
        let qs: Vec<Vec<f32>> = qs.iter().map(|q| s.prepare_query(q).expect("q")).collect();
        let h = Hnsw::build(
            &s,
            HnswParams::default()
                .with_ef_construction(64)
                .with_seed(seed),
        )
        .expect("build");
        let r = recall(&h, &s, &qs, 10, 64);
        eprintln!("{metric} recall@10 at ef=64: {r:.4}");
        assert!(
            r >= if metric == Metric::Cosine { 0.95 } else { 0.8 },
            "{metric} recall {r} (seed {seed})"
        );
    }
}

#[test]
fn every_point_finds_itself() {
    let seed = 3;
    eprintln!("seed {seed}");
    let pts = clustered(seed, 2000, 12, 8);
    let s = space_of(Metric::L2, &pts);
    let params = HnswParams::default()
        .with_ef_construction(64)
        .with_seed(seed);
    // One build thread: the graph is a pure function of (data, params, seed).
    let h = one_thread(|| Hnsw::build(&s, params).expect("build"));
    for (i, p) in pts.iter().enumerate() {
        let r = h.search(&s, p, &SearchParams::new(1, 64)).expect("search");
        assert_eq!(r[0].distance, 0.0, "point {i} did not find itself: {r:?}");
    }
    // Parallel builds vary with thread timing; known weakness: very rarely a point is not
    // found from itself at this ef (see docs/benchmarks/vector.md). Floor: 99.5 %.
    let hp = Hnsw::build(&s, params).expect("build");
    let found = pts
        .iter()
        .filter(|p| hp.search(&s, p, &SearchParams::new(1, 64)).expect("search")[0].distance == 0.0)
        .count();
    eprintln!("parallel build: {found}/2000 points find themselves");
    assert!(found * 1000 >= 2000 * 995, "{found}/2000 (seed {seed})");
}

#[test]
fn k_larger_than_n_empty_single_duplicates() {
    let pts = clustered(9, 50, 4, 3);
    let s = space_of(Metric::L2, &pts);
    let h = Hnsw::build(&s, HnswParams::default()).expect("build");
    let r = h
        .search(&s, &pts[0], &SearchParams::new(100, 10))
        .expect("search");
    assert_eq!(r.len(), 50, "k > n returns every point");
    assert!(r.windows(2).all(|w| w[0].distance <= w[1].distance));

    let empty = F32Space::new(Metric::L2, 4);
    let he = Hnsw::build(&empty, HnswParams::default()).expect("empty build");
    assert!(he.is_empty());
    assert!(he
        .search(&empty, &[0.0; 4], &SearchParams::new(5, 10))
        .expect("empty search")
        .is_empty());

    let one = space_of(Metric::L2, &[vec![1.0, 2.0]]);
    let h1 = Hnsw::build(&one, HnswParams::default()).expect("single");
    assert_eq!(
        h1.search(&one, &[0.0, 0.0], &SearchParams::new(3, 10))
            .expect("s"),
        vec![Neighbor {
            id: 0,
            distance: 5.0
        }]
    );

    let mut dup = vec![vec![1.0f32, 1.0, 1.0]; 200];
    dup.extend(clustered(10, 300, 3, 5));
    let sd = space_of(Metric::L2, &dup);
    let hd = Hnsw::build(&sd, HnswParams::default().with_m(8)).expect("dups");
    let r = hd
        .search(&sd, &[1.0, 1.0, 1.0], &SearchParams::new(10, 50))
        .expect("s");
    assert_eq!(r.len(), 10);
    assert!(r.iter().all(|n| n.distance == 0.0 && n.id < 200), "{r:?}");
    // 200 exact duplicates made parts of the graph hard to reach: hnswlib misses 0-86 of
    // these 300 self-queries on the same data (M=8, ef=50), and quiver missed up to 43 while
    // a tie pruned and copies could fill a list (see `copies_of_one_point_...` below).
    let found = (200..500)
        .filter(|&i| {
            hd.search(&sd, &dup[i], &SearchParams::new(1, 50))
                .expect("s")[0]
                .distance
                == 0.0
        })
        .count();
    eprintln!("with 200 duplicates: {found}/300 other points find themselves at ef=50");
    assert!(found >= 295, "{found}/300");
}

/// Nodes reachable on layer 0 from the entry point.
fn reachable(h: &Hnsw, n: usize) -> usize {
    let Some((entry, _)) = h.entry_point() else {
        return 0;
    };
    let mut seen = vec![false; n];
    seen[entry as usize] = true;
    let mut stack = vec![entry];
    let mut count = 1;
    while let Some(x) = stack.pop() {
        for y in h.neighbors(0, x) {
            if !seen[y as usize] {
                seen[y as usize] = true;
                count += 1;
                stack.push(y);
            }
        }
    }
    count
}

#[test]
fn copies_of_one_point_leave_the_graph_connected() {
    // 2000 copies of one point inserted before 200 other points: with ties pruning and no
    // cap on copies per list, 25 of the 2200 nodes were reachable and recall@10 of random
    // queries was 0.03 (0.005 at ef=10 through the CLI).
    let dim = 8;
    let mut pts = vec![vec![0.5f32; dim]; 2000];
    pts.extend(clustered(21, 200, dim, 4));
    let s = space_of(Metric::L2, &pts);
    let queries = clustered(22, 50, dim, 4);
    for m in [8, 16] {
        let h = Hnsw::build(&s, HnswParams::default().with_m(m)).expect("build");
        assert_eq!(
            reachable(&h, pts.len()),
            pts.len(),
            "m={m}: every node reachable"
        );
        for v in (0..pts.len()).step_by(97) {
            assert!(
                h.neighbors(0, v as u32).len() <= 2 * m,
                "m={m}: list of {v}"
            );
        }
        // Ties make ids arbitrary: a result counts if it is no farther than the k-th exact one.
        let mut hits = 0;
        for q in &queries {
            let kth = exact(&s, q, 10, |_| true).last().expect("k-th").distance;
            let r = h.search(&s, q, &SearchParams::new(10, 64)).expect("search");
            assert_eq!(r.len(), 10);
            hits += r
                .iter()
                .filter(|n| n.distance <= kth * (1.0 + 1e-5))
                .count();
        }
        let recall = hits as f64 / (10 * queries.len()) as f64;
        eprintln!("m={m}: recall@10 at ef=64 with 2000 copies of one point: {recall:.3}");
        assert!(recall >= 0.8, "m={m}: recall {recall}");
    }
}

#[test]
fn deleted_and_filtered_are_traversed_but_never_returned() {
    let seed = 42;
    eprintln!("seed {seed}");
    let (pts, qs) = clustered_split(seed, 4000, 40, 16, 20);
    let s = space_of(Metric::L2, &pts);
    let h = Hnsw::build(
        &s,
        HnswParams::default()
            .with_ef_construction(64)
            .with_seed(seed),
    )
    .expect("build");
    let deleted: RoaringBitmap = (0..4000u32).filter(|i| i % 3 == 0).collect();
    let allow: RoaringBitmap = (0..4000u32).filter(|i| i % 4 != 1).collect();
    let pred = |i: u32| i & 1 == 0;
    let (mut hit, mut all) = (0, 0);
    for q in &qs {
        let p = SearchParams::new(10, 64)
            .with_deleted(&deleted)
            .with_filter(Filter::Allow(&allow));
        let r = h.search(&s, q, &p).expect("search");
        assert!(r
            .iter()
            .all(|n| !deleted.contains(n.id) && allow.contains(n.id)));
        let (a, b) = overlap(
            &r,
            &exact(&s, q, 10, |i| !deleted.contains(i) && allow.contains(i)),
        );
        hit += a;
        all += b;
        let r = h
            .search(
                &s,
                q,
                &SearchParams::new(10, 64).with_filter(Filter::Predicate(&pred)),
            )
            .expect("search");
        assert_eq!(r.len(), 10);
        assert!(r.iter().all(|n| n.id % 2 == 0));
    }
    let rec = hit as f64 / all as f64;
    eprintln!("masked recall {rec:.4}");
    assert!(rec >= 0.9, "masked recall {rec} (seed {seed})");
    let everything: RoaringBitmap = (0..4000u32).collect();
    assert!(h
        .search(
            &s,
            &qs[0],
            &SearchParams::new(10, 64).with_deleted(&everything)
        )
        .expect("s")
        .is_empty());
}

#[test]
fn knobs_take_effect() {
    let seed = 1234;
    eprintln!("seed {seed}");
    let (pts, qs) = clustered_split(seed, 3000, 60, 16, 30);
    let s = space_of(Metric::L2, &pts);
    let base = HnswParams::default()
        .with_m(8)
        .with_ef_construction(40)
        .with_seed(seed);
    let (h, h_again, h_m, h_efc) = one_thread(|| {
        (
            Hnsw::build(&s, base).expect("b"),
            Hnsw::build(&s, base).expect("b"),
            Hnsw::build(&s, base.with_m(16)).expect("b"),
            Hnsw::build(&s, base.with_ef_construction(200)).expect("b"),
        )
    });
    let lists = |h: &Hnsw| (0..3000u32).map(|i| h.neighbors(0, i)).collect::<Vec<_>>();
    assert_eq!(
        lists(&h),
        lists(&h_again),
        "same seed, one thread: identical graph"
    );
    assert_ne!(lists(&h), lists(&h_m), "m changes the graph");
    assert_ne!(
        lists(&h),
        lists(&h_efc),
        "ef_construction changes the graph"
    );
    assert!(lists(&h).iter().all(|l| l.len() <= 16));
    assert!(
        lists(&h_m).iter().any(|l| l.len() > 16),
        "m=16 allows up to 32 layer-0 links"
    );
    let mut last = 0.0;
    for ef in [10, 20, 40, 80, 160] {
        let r = recall(&h, &s, &qs, 10, ef);
        eprintln!("ef={ef} recall@10={r:.4}");
        assert!(
            r >= last,
            "raising ef to {ef} lowered recall {last} -> {r} (seed {seed})"
        );
        last = r;
    }
}

#[test]
fn incremental_insert_matches_floor() {
    let seed = 99;
    eprintln!("seed {seed}");
    let (pts, qs) = clustered_split(seed, 4000, 50, 16, 20);
    let mut s = space_of(Metric::L2, &pts[..1000]);
    let mut h = Hnsw::build(&s, HnswParams::default().with_ef_construction(64)).expect("build");
    for chunk in pts[1000..].chunks(1000) {
        for p in chunk {
            s.add(p).expect("add");
        }
        h.extend(&s).expect("extend");
    }
    assert_eq!(h.len(), 4000);
    let r = recall(&h, &s, &qs, 10, 64);
    eprintln!("recall after incremental inserts {r:.4}");
    assert!(r >= 0.95, "recall {r} (seed {seed})");
}

#[test]
fn save_then_mmap_open_gives_identical_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pts, qs) = clustered_split(8, 3000, 50, 16, 20);
    let s = space_of(Metric::Cosine, &pts);
    let h = Hnsw::build(&s, HnswParams::default().with_ef_construction(64)).expect("build");
    let gp = dir.path().join("g.hnsw");
    let vp = dir.path().join("v.vec");
    h.save(&gp).expect("save");
    s.vectors().write(&vp).expect("write vectors");
    let h2 = Hnsw::open(&gp).expect("open");
    let s2 = F32Space::from_vectors(
        Metric::Cosine,
        quiver_vector::space::F32Vectors::open(&vp).expect("open vectors"),
    );
    assert!(h2.is_mapped() && s2.vectors().is_mapped());
    assert_eq!(h2.params(), h.params());
    assert_eq!(h2.entry_point(), h.entry_point());
    for q in &qs {
        let q = s.prepare_query(q).expect("q");
        let p = SearchParams::new(10, 40);
        assert_eq!(
            h.search(&s, &q, &p).expect("a"),
            h2.search(&s2, &q, &p).expect("b")
        );
    }
    // A mapped graph can still grow (it is copied into memory first) and be saved again.
    let mut h3 = Hnsw::open(&gp).expect("open");
    let mut s3 = F32Space::from_vectors(
        Metric::Cosine,
        quiver_vector::space::F32Vectors::open(&vp).expect("open"),
    );
    s3.add(&[1.0; 16]).expect("add");
    h3.extend(&s3).expect("extend");
    assert!(!h3.is_mapped());
    let r = h3
        .search(
            &s3,
            &s3.prepare_query(&[1.0; 16]).expect("q"),
            &SearchParams::new(1, 40),
        )
        .expect("s");
    assert_eq!(r[0].id, 3000);
    h3.save(dir.path().join("g2.hnsw")).expect("save again");
    // The empty graph round-trips too.
    let e = F32Space::new(Metric::L2, 3);
    Hnsw::build(&e, HnswParams::default())
        .expect("b")
        .save(dir.path().join("e.hnsw"))
        .expect("save");
    assert!(Hnsw::open(dir.path().join("e.hnsw"))
        .expect("open")
        .is_empty());
}

#[test]
fn damaged_graph_file_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pts = clustered(4, 500, 8, 5);
    let s = space_of(Metric::L2, &pts);
    let p = dir.path().join("g.hnsw");
    Hnsw::build(&s, HnswParams::default())
        .expect("build")
        .save(&p)
        .expect("save");
    let good = std::fs::read(&p).expect("read");
    let check = |bytes: &[u8], what: &str| {
        std::fs::write(&p, bytes).expect("write");
        match Hnsw::open(&p) {
            Err(VectorError::Corruption { reason, .. }) => eprintln!("{what}: {reason}"),
            other => panic!("{what}: expected Corruption, got {other:?}"),
        }
    };
    check(&good[..good.len() - 1], "truncated by one byte");
    check(&good[..good.len() / 2], "truncated by half");
    check(&good[..10], "truncated inside the header");
    check(b"", "empty");
    check(&[0xAB; 4096], "garbage");
    for off in [
        0usize,
        9,
        13,
        25,
        33,
        64,
        200,
        good.len() / 2,
        good.len() - 1,
    ] {
        let mut b = good.clone();
        b[off] ^= 0x10;
        check(&b, &format!("bit flip at {off}"));
    }
    assert!(matches!(
        Hnsw::open(dir.path().join("missing")),
        Err(VectorError::Io { .. })
    ));
}

#[test]
fn bad_input_is_typed() {
    let pts = clustered(1, 100, 4, 2);
    let s = space_of(Metric::L2, &pts);
    let h = Hnsw::build(&s, HnswParams::default()).expect("build");
    assert!(matches!(
        h.search(&s, &[0.0; 3], &SearchParams::new(1, 10)),
        Err(VectorError::DimensionMismatch {
            expected: 4,
            got: 3
        })
    ));
    assert!(matches!(
        h.search(&s, &[0.0, f32::NAN, 0.0, 0.0], &SearchParams::new(1, 10)),
        Err(VectorError::NonFinite { index: 1, .. })
    ));
    let other = space_of(Metric::L2, &pts[..50]);
    assert!(matches!(
        h.search(&other, &[0.0; 4], &SearchParams::new(1, 10)),
        Err(VectorError::InvalidParameter { .. })
    ));
    assert!(matches!(
        Hnsw::build(&s, HnswParams::default().with_m(1)),
        Err(VectorError::InvalidParameter { name: "m", .. })
    ));
    assert!(matches!(
        Hnsw::build(&s, HnswParams::default().with_ef_construction(0)),
        Err(VectorError::InvalidParameter { .. })
    ));
    let mut h2 = Hnsw::build(&s, HnswParams::default()).expect("build");
    assert!(matches!(
        h2.extend(&other),
        Err(VectorError::InvalidParameter { .. })
    ));
}

#[test]
fn rescored_search_reranks_exactly() {
    let (pts, qs) = clustered_split(21, 2000, 40, 16, 10);
    let s = space_of(Metric::L2, &pts);
    // A coarse space: the same points rounded to integers stands in for quantized codes.
    let coarse = space_of(
        Metric::L2,
        &pts.iter()
            .map(|p| p.iter().map(|x| x.round()).collect())
            .collect::<Vec<Vec<f32>>>(),
    );
    let h = Hnsw::build(&coarse, HnswParams::default().with_ef_construction(64)).expect("build");
    let (mut plain, mut rescored, mut all) = (0, 0, 0);
    for q in qs {
        let want = exact(&s, &q, 10, |_| true);
        let a = h
            .search(&coarse, &q, &SearchParams::new(10, 64))
            .expect("a");
        let b = h
            .search_rescored(&coarse, &s, &q, &SearchParams::new(10, 64).with_rescore(4))
            .expect("b");
        assert!(b.windows(2).all(|w| w[0].distance <= w[1].distance));
        for n in &b {
            assert_eq!(
                n.distance,
                quiver_vector::distance::l2(&q, s.vectors().row(n.id))
            );
        }
        plain += overlap(&a, &want).0;
        rescored += overlap(&b, &want).0;
        all += want.len();
    }
    eprintln!(
        "coarse recall {:.3}, rescored {:.3}",
        plain as f64 / all as f64,
        rescored as f64 / all as f64
    );
    assert!(rescored >= plain);
    assert!(rescored as f64 / all as f64 >= 0.95);
}

#[test]
fn real_data_bigann10k_recall() {
    let Some(dir) = shared_data("bigann10k") else {
        return;
    };
    let base = read_vecs(&dir.join("base.fvecs"));
    let queries = read_vecs(&dir.join("query.fvecs"));
    let truth = read_vecs(&dir.join("groundtruth.ivecs"));
    let f = |r: &Vec<u32>| r.iter().map(|&b| f32::from_bits(b)).collect::<Vec<f32>>();
    let s = space_of(Metric::L2, &base.iter().map(f).collect::<Vec<_>>());
    let h = Hnsw::build(&s, HnswParams::default().with_ef_construction(100)).expect("build");
    let nq = 200;
    let mut hit = 0;
    for (q, t) in queries.iter().zip(&truth).take(nq) {
        let r = h
            .search(&s, &f(q), &SearchParams::new(10, 64))
            .expect("search");
        hit += r.iter().filter(|n| t[..10].contains(&n.id)).count();
    }
    let rec = hit as f64 / (nq * 10) as f64;
    eprintln!("bigann10k recall@10 at ef=64 over {nq} queries: {rec:.4}");
    assert!(rec >= 0.95, "bigann10k recall {rec}");
}

#[test]
fn tightly_packed_points_are_not_copies() {
    // The same points at a scale where squared distances fall near 1e-9: L2 ranking does
    // not depend on scale, so neither may the graph. (A tolerance-based copy test once took
    // every such point for a copy of its neighbours, and recall fell from 0.95 to 0.12.)
    let pts = clustered(31, 3000, 16, 8);
    let queries = clustered(32, 60, 16, 8);
    let recall_at = |scale: f32| {
        let scaled = |v: &Vec<f32>| v.iter().map(|x| x * scale).collect::<Vec<f32>>();
        let p: Vec<Vec<f32>> = pts.iter().map(scaled).collect();
        let s = space_of(Metric::L2, &p);
        let h = one_thread(|| Hnsw::build(&s, HnswParams::default().with_m(8)).expect("build"));
        let q: Vec<Vec<f32>> = queries.iter().map(scaled).collect();
        recall(&h, &s, &q, 10, 64)
    };
    let (unit, tiny) = (recall_at(1.0), recall_at(1e-4));
    eprintln!("recall@10 at ef=64: scale 1 {unit:.3}, scale 1e-4 {tiny:.3}");
    assert!(unit >= 0.9, "{unit}");
    assert!(
        (unit - tiny).abs() <= 0.02,
        "scale 1: {unit}, scale 1e-4: {tiny}"
    );
}
