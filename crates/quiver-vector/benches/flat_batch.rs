//! Batched exact search (`flat::search_batch`) on the texmex data sets, timed like FAISS's
//! `IndexFlat.search` in `../shared/bench/peers.py`: the whole query set per call, repeated,
//! on 1 and 2 rayon threads. `quiver bench search` times a single call, which on bigann10k
//! (~25 ms) is at the mercy of one scheduler time slice on a shared machine.
//!
//!     cargo bench -p quiver-vector --bench flat_batch
//!
//! Data: `$QUIVER_DATA/{debian-minilm,bigann10k}` (default `../shared/data` from the
//! workspace root); a missing set is skipped. Throughput is reported in queries per second.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use quiver_vector::flat::{self, FlatParams};
use quiver_vector::space::F32Space;
use quiver_vector::Metric;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn read_fvecs(p: &Path) -> Option<Vec<Vec<f32>>> {
    let b = std::fs::read(p).ok()?;
    let mut out = Vec::new();
    let mut o = 0;
    while o + 4 <= b.len() {
        let d = u32::from_le_bytes(b[o..o + 4].try_into().ok()?) as usize;
        o += 4;
        let row = b.get(o..o + 4 * d)?;
        out.push(
            row.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
        o += 4 * d;
    }
    Some(out)
}

fn flat_batch(c: &mut Criterion) {
    let root = std::env::var_os("QUIVER_DATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
        PathBuf::from,
    );
    for (set, metric) in [("debian-minilm", Metric::Cosine), ("bigann10k", Metric::L2)] {
        let (Some(base), Some(qs)) = (
            read_fvecs(&root.join(set).join("base.fvecs")),
            read_fvecs(&root.join(set).join("query.fvecs")),
        ) else {
            eprintln!("skipping {set}: no data under {}", root.display());
            continue;
        };
        let Some(dim) = base.first().map(Vec::len) else {
            continue;
        };
        let mut space = F32Space::new(metric, dim);
        space.reserve(base.len());
        for v in &base {
            space.add(v).expect("valid row");
        }
        let queries: Vec<Vec<f32>> = qs
            .iter()
            .map(|q| space.prepare_query(q).expect("valid query"))
            .collect();
        let mut g = c.benchmark_group(format!("flat_batch_{set}"));
        g.throughput(Throughput::Elements(queries.len() as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            g.bench_function(format!("threads_{threads}"), |b| {
                b.iter(|| {
                    black_box(
                        pool.install(|| flat::search_batch(&space, &queries, &FlatParams::k(10)))
                            .expect("search"),
                    )
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, flat_batch);
criterion_main!(benches);
