//! IVF-PQ, SQ8 and PQ (flat scan) with exact re-rank on a texmex-style dataset folder.
//!
//! ```text
//! cargo run --release -p quiver-vector --example ivf_bench -- \
//!     --data /work/shared/data/debian-minilm [--metric cosine] [--nlist 1024] [--pq-m 48]
//!     [--nprobe 1,4,8,16,32,64] [--rescore 0,4,8,16] [--k 10] [--nq 1000]
//!     [--flat-nq 200] [--skip-flat] [--index FILE] [--repeat 1]
//! ```
//!
//! Reads `base.fvecs`, `query.fvecs`, `groundtruth.ivecs` (per row: little-endian i32 dim,
//! then dim f32 / i32). Queries run one at a time on one thread. Prints one JSON line per
//! setting: recall@k against the ground truth, QPS, p50/p99 latency. With `--index FILE` the
//! IVF-PQ index is loaded from FILE when it exists, else built and saved there. `--repeat R`
//! runs the IVF-PQ query set R times per setting (longer, steadier timings).

use quiver_vector::ivf::{IvfPqIndex, IvfPqParams};
use quiver_vector::quant::{ProductQuantizer, Sq8Quantizer};
use quiver_vector::Metric;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

fn read_vecs(path: &Path) -> Result<(usize, Vec<u32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 4 {
        return Err(format!("{}: empty", path.display()));
    }
    let dim = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let row = 4 * (dim + 1);
    if dim == 0 || bytes.len() % row != 0 {
        return Err(format!("{}: ragged rows", path.display()));
    }
    let mut out = Vec::with_capacity(bytes.len() / row * dim);
    for r in bytes.chunks_exact(row) {
        if u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize != dim {
            return Err(format!("{}: ragged rows", path.display()));
        }
        out.extend(
            r[4..]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok((dim, out))
}

fn fvecs(path: &Path) -> Result<(usize, Vec<f32>), String> {
    let (dim, raw) = read_vecs(path)?;
    Ok((dim, raw.into_iter().map(f32::from_bits).collect()))
}

fn list(args: &HashMap<String, String>, key: &str, default: &str) -> Vec<usize> {
    args.get(key)
        .map_or(default, String::as_str)
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

fn one(args: &HashMap<String, String>, key: &str, default: usize) -> usize {
    args.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Run {
    recall: f64,
    qps: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs `search` over the queries one at a time (after a warm-up pass over up to 100).
fn run(
    repeat: usize,
    queries: &[f32],
    dim: usize,
    truth: &[u32],
    gt_dim: usize,
    k: usize,
    mut search: impl FnMut(&[f32]) -> Vec<(u32, f32)>,
) -> Run {
    for q in queries.chunks_exact(dim).take(100) {
        std::hint::black_box(search(q));
    }
    let mut lat = Vec::with_capacity(queries.len() / dim * repeat);
    let mut hits = 0usize;
    let start = Instant::now();
    for (i, q) in queries
        .chunks_exact(dim)
        .enumerate()
        .cycle()
        .take(queries.len() / dim * repeat)
    {
        let t = Instant::now();
        let res = search(q);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        let gt = &truth[i * gt_dim..i * gt_dim + k];
        hits += res.iter().take(k).filter(|r| gt.contains(&r.0)).count();
    }
    let secs = start.elapsed().as_secs_f64();
    let nq = lat.len();
    lat.sort_by(f64::total_cmp);
    Run {
        recall: hits as f64 / (nq * k) as f64, // every pass scores the same hits
        qps: nq as f64 / secs,
        p50_us: lat[nq / 2],
        p99_us: lat[(nq * 99 / 100).min(nq - 1)],
    }
}

fn main() -> Result<(), String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut args = HashMap::new();
    let mut i = 0;
    while i < argv.len() {
        let key = argv[i].trim_start_matches("--").to_string();
        if key == "skip-flat" {
            args.insert(key, "1".into());
            i += 1;
        } else {
            let v = argv
                .get(i + 1)
                .cloned()
                .ok_or(format!("--{key} needs a value"))?;
            args.insert(key, v);
            i += 2;
        }
    }
    let dir = Path::new(
        args.get("data")
            .map_or("/work/shared/data/debian-minilm", String::as_str),
    )
    .to_path_buf();
    let metric: Metric = args
        .get("metric")
        .map_or("cosine", String::as_str)
        .parse()
        .map_err(|e| format!("{e:?}"))?;
    let k = one(&args, "k", 10);
    let repeat = one(&args, "repeat", 1).max(1);
    let (dim, mut base) = fvecs(&dir.join("base.fvecs"))?;
    let (qdim, mut queries) = fvecs(&dir.join("query.fvecs"))?;
    let (gt_dim, truth) = read_vecs(&dir.join("groundtruth.ivecs"))?;
    if qdim != dim || gt_dim < k {
        return Err("query dimension or ground-truth depth does not fit".into());
    }
    let nq = one(&args, "nq", usize::MAX).min(queries.len() / dim);
    queries.truncate(nq * dim);
    if metric == Metric::Cosine {
        for row in base
            .chunks_exact_mut(dim)
            .chain(queries.chunks_exact_mut(dim))
        {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    let n = base.len() / dim;
    let f32_bytes = n * dim * 4;
    eprintln!(
        "# {}: {n} x {dim}, {nq} queries, metric {metric}, k={k}",
        dir.display()
    );

    // IVF-PQ.
    let nlist = one(&args, "nlist", 1024);
    let pq_m = one(&args, "pq-m", dim / 8);
    let mut params = IvfPqParams::new(nlist, pq_m);
    params.seed = one(&args, "seed", 0) as u64;
    let t = Instant::now();
    let cache = args.get("index").map(Path::new);
    let index = match cache {
        Some(p) if p.exists() => IvfPqIndex::load(p).map_err(|e| e.to_string())?,
        _ => {
            let index = IvfPqIndex::build(&base, dim, metric, params).map_err(|e| e.to_string())?;
            if let Some(p) = cache {
                index.save(p).map_err(|e| e.to_string())?;
            }
            index
        }
    };
    if index.dim() != dim || index.len() != n || index.nlist() != nlist || index.pq_m() != pq_m {
        return Err("the cached --index file does not match the data or parameters".into());
    }
    let build = t.elapsed().as_secs_f64();
    if cache.is_some_and(|p| p.exists()) {
        eprintln!(
            "# index file {} (build_seconds is load time when it already existed)",
            cache.map_or(String::new(), |p| p.display().to_string())
        );
    }
    println!(
        "{{\"bench\":\"ivf_pq_build\",\"nlist\":{nlist},\"pq_m\":{pq_m},\"train_sample\":{},\"build_seconds\":{build:.2},\"index_bytes\":{},\"f32_bytes\":{f32_bytes},\"threads\":{}}}",
        params.train_sample,
        index.index_bytes(),
        rayon::current_num_threads()
    );
    for &rescore in &list(&args, "rescore", "0,4,8,16") {
        for &nprobe in &list(&args, "nprobe", "1,4,8,16,32,64") {
            let rs = (rescore > 0).then_some((&base[..], rescore));
            let r = run(repeat, &queries, dim, &truth, gt_dim, k, |q| {
                index.search(q, k, nprobe, rs).unwrap_or_default()
            });
            println!(
                "{{\"bench\":\"search\",\"index\":\"ivf_pq\",\"params\":{{\"nlist\":{nlist},\"pq_m\":{pq_m},\"nprobe\":{nprobe},\"rescore\":{rescore}}},\"recall_at_k\":{:.4},\"qps\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"threads\":1}}",
                r.recall, r.qps, r.p50_us, r.p99_us
            );
        }
    }
    if args.contains_key("skip-flat") {
        return Ok(());
    }
    let fq = one(&args, "flat-nq", 200).min(nq);
    let flat_queries = &queries[..fq * dim];

    // SQ8 flat scan + re-rank.
    let t = Instant::now();
    let sq8 = Sq8Quantizer::train(&base, dim, metric, 20_000, 0)
        .and_then(|q| q.encode_all(&base))
        .map_err(|e| e.to_string())?;
    let build = t.elapsed().as_secs_f64();
    for rescore in [1usize, 2, 4] {
        let r = run(1, flat_queries, dim, &truth, gt_dim, k, |q| {
            sq8.search_rerank(q, k, &base, rescore).unwrap_or_default()
        });
        println!(
            "{{\"bench\":\"search\",\"index\":\"flat\",\"params\":{{\"quantization\":\"sq8\",\"rescore\":{rescore}}},\"build_seconds\":{build:.2},\"recall_at_k\":{:.4},\"qps\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"index_bytes\":{},\"threads\":1}}",
            r.recall, r.qps, r.p50_us, r.p99_us, sq8.memory_bytes()
        );
    }

    // PQ flat scan + re-rank.
    let t = Instant::now();
    let pq = ProductQuantizer::train(&base, dim, pq_m, metric, 0)
        .and_then(|q| q.encode_all(&base))
        .map_err(|e| e.to_string())?;
    let build = t.elapsed().as_secs_f64();
    for rescore in [4usize, 16, 64] {
        let r = run(1, flat_queries, dim, &truth, gt_dim, k, |q| {
            pq.search_rerank(q, k, &base, rescore).unwrap_or_default()
        });
        println!(
            "{{\"bench\":\"search\",\"index\":\"flat\",\"params\":{{\"quantization\":\"pq\",\"pq_m\":{pq_m},\"rescore\":{rescore}}},\"build_seconds\":{build:.2},\"recall_at_k\":{:.4},\"qps\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"index_bytes\":{},\"threads\":1}}",
            r.recall, r.qps, r.p50_us, r.p99_us, pq.memory_bytes()
        );
    }
    Ok(())
}
