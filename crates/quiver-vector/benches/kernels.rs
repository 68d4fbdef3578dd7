//! Distance kernels per dispatch path (and the `simsimd` crate with `--features simsimd`).
//!
//!     cargo bench -p quiver-vector --bench kernels [--features simsimd]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_vector::distance::Kernels;

fn data(dim: usize) -> (Vec<f32>, Vec<f32>, Vec<u8>, Vec<u8>) {
    let a: Vec<f32> = (0..dim)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let b: Vec<f32> = (0..dim)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
        .collect();
    let ua: Vec<u8> = (0..dim).map(|i| (i * 37 % 251) as u8).collect();
    let ub: Vec<u8> = (0..dim).map(|i| (i * 53 % 241) as u8).collect();
    (a, b, ua, ub)
}

fn kernels(c: &mut Criterion) {
    for dim in [128usize, 384, 1536] {
        let (a, b, ua, ub) = data(dim);
        let mut g = c.benchmark_group(format!("dim{dim}"));
        g.throughput(Throughput::Elements(dim as u64));
        for k in Kernels::available() {
            let name = k.isa.name();
            g.bench_function(BenchmarkId::new("l2", name), |bn| {
                bn.iter(|| (k.l2)(black_box(&a), black_box(&b)))
            });
            g.bench_function(BenchmarkId::new("dot", name), |bn| {
                bn.iter(|| (k.dot)(black_box(&a), black_box(&b)))
            });
            if k.isa != quiver_vector::distance::Isa::SimSimd {
                g.bench_function(BenchmarkId::new("l2_u8", name), |bn| {
                    bn.iter(|| (k.l2_u8)(black_box(&ua), black_box(&ub)))
                });
                g.bench_function(BenchmarkId::new("dot_u8", name), |bn| {
                    bn.iter(|| (k.dot_u8)(black_box(&ua), black_box(&ub)))
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = kernels
}
criterion_main!(benches);
