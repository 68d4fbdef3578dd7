//! Criterion benchmarks: leaf-hash throughput (BLAKE3 vs SHA-256 on 200-byte records), and
//! proof generation on a 10,000,000-leaf tree built once with `append_hashes`.
//!
//! `cargo bench -p quiver-ledger --bench proof -- --warm-up-time 1 --measurement-time 3`
//! (`QUIVER_BENCH_LEAVES` overrides the tree size.)

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_ledger::{leaf_hash, leaf_hashes, Hash, HashAlg, Ledger, LedgerConfig};

fn leaf_hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("leaf_hash_200B");
    let record = [0x5au8; 200];
    g.throughput(Throughput::Bytes(200));
    for alg in [HashAlg::Blake3, HashAlg::Sha256] {
        g.bench_with_input(BenchmarkId::from_parameter(alg.name()), &alg, |b, &alg| {
            b.iter(|| leaf_hash(alg, black_box(&record)))
        });
    }
    g.finish();

    let bodies: Vec<[u8; 200]> = (0..2000u32)
        .map(|i| {
            let mut r = [0u8; 200];
            r[..4].copy_from_slice(&i.to_le_bytes());
            r
        })
        .collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();

    // A batch's leaves at once (`leaf_hashes`: BLAKE3 sixteen per AVX-512 pass).
    let mut g = c.benchmark_group("leaf_hashes_2000x200B");
    g.throughput(Throughput::Elements(2000));
    for alg in [HashAlg::Blake3, HashAlg::Sha256] {
        g.bench_with_input(BenchmarkId::from_parameter(alg.name()), &alg, |b, &alg| {
            b.iter(|| leaf_hashes(alg, black_box(&refs)))
        });
    }
    g.finish();

    // Whole batches through `Ledger::append` (hashing + frontier + buffered node writes).
    let mut g = c.benchmark_group("append_2000x200B");
    g.throughput(Throughput::Elements(2000));
    for alg in [HashAlg::Blake3, HashAlg::Sha256] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LedgerConfig {
            alg,
            ..LedgerConfig::default()
        };
        let l = Ledger::open(&dir.path().join("l"), &dir.path().join("k"), cfg).expect("open");
        g.bench_with_input(BenchmarkId::from_parameter(alg.name()), &alg, |b, _| {
            b.iter(|| l.append(l.size() + 1, &refs).expect("append"))
        });
    }
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let n: u64 = std::env::var("QUIVER_BENCH_LEAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Ledger::open(
        &dir.path().join("ledger"),
        &dir.path().join("keys"),
        LedgerConfig::default(),
    )
    .expect("open");
    let t = Instant::now();
    let chunk = 65_536u64;
    let mut buf = Vec::with_capacity(chunk as usize);
    let mut next = 1u64;
    while next <= n {
        buf.clear();
        let end = (next + chunk - 1).min(n);
        for i in next..=end {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            h[8..16].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            buf.push(Hash(h));
        }
        l.append_hashes(next, &buf).expect("append");
        next = end + 1;
    }
    l.sync().expect("sync");
    eprintln!("built {n}-leaf tree ({}) in {:.2?}", l.alg(), t.elapsed());

    // One-shot audit timing (too slow for criterion's sampling at this size).
    let t = Instant::now();
    let report = l.verify_tree(&mut |_| ()).expect("verify_tree");
    assert!(report.ok());
    eprintln!(
        "verify_tree over {n} leaves ({} interior nodes rehashed) in {:.2?}",
        report.nodes_checked,
        t.elapsed()
    );

    let mut g = c.benchmark_group(format!("proofs_{n}_leaves"));
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut rnd = move || {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    g.bench_function("inclusion_proof_random_leaf", |b| {
        b.iter(|| {
            let i = rnd() % n;
            black_box(l.inclusion_proof(i, n).expect("proof"))
        })
    });
    g.bench_function("inclusion_proof_older_tree_size", |b| {
        b.iter(|| {
            let size = n / 2 + rnd() % (n / 2);
            let i = rnd() % size;
            black_box(l.inclusion_proof(i, size).expect("proof"))
        })
    });
    g.bench_function("consistency_proof", |b| {
        b.iter(|| {
            let from = 1 + rnd() % (n - 1);
            black_box(l.consistency_proof(from, n).expect("proof"))
        })
    });
    g.bench_function("root_at_random_size", |b| {
        b.iter(|| black_box(l.root_at(1 + rnd() % n).expect("root")))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = leaf_hashing, proofs
}
criterion_main!(benches);
