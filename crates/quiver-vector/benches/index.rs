//! HNSW search and flat search on synthetic clustered data (small; the real comparison with
//! peers is `quiver bench search`, see docs/benchmarks/vector.md).
//!
//!     cargo bench -p quiver-vector --bench index

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use quiver_vector::flat::{self, FlatParams};
use quiver_vector::hnsw::{Hnsw, HnswParams, SearchParams};
use quiver_vector::space::F32Space;
use quiver_vector::Metric;
use rand::{Rng, SeedableRng};

fn index(c: &mut Criterion) {
    let (n, dim) = (20_000usize, 128usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let centres: Vec<Vec<f32>> = (0..50)
        .map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect();
    let point = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
        let c = &centres[rng.gen_range(0..centres.len())];
        c.iter().map(|x| x + rng.gen_range(-0.3f32..0.3)).collect()
    };
    let mut space = F32Space::new(Metric::Cosine, dim);
    for _ in 0..n {
        let p = point(&mut rng);
        space.add(&p).expect("valid");
    }
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|_| space.prepare_query(&point(&mut rng)).expect("valid"))
        .collect();
    let h = Hnsw::build(&space, HnswParams::default()).expect("build");
    let mut i = 0;
    c.bench_function("hnsw_search_ef64_k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(
                h.search(&space, &queries[i], &SearchParams::new(10, 64))
                    .expect("search"),
            )
        })
    });
    c.bench_function("flat_search_k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(flat::search(&space, &queries[i], &FlatParams::k(10)).expect("search"))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = index
}
criterion_main!(benches);
