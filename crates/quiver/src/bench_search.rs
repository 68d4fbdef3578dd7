//! `quiver bench search`: recall@k, QPS and latency of the vector indexes on texmex data.
//!
//! Reads `.fvecs`/`.ivecs` (per row a little-endian i32 dimension, then that many f32/i32),
//! builds the chosen index with a progress bar on stderr, and prints one JSON line per query
//! setting on stdout:
//! `{"bench":"search","index":..,"params":{..},"build_seconds":..,"recall_at_k":..,"qps":..,
//!   "p50_us":..,"p99_us":..,"index_bytes":..,"threads":..}`.

use anyhow::{bail, Context};
use quiver_vector::flat::{self, FlatParams};
use quiver_vector::hnsw::{Hnsw, HnswParams, SearchParams};
use quiver_vector::ivf::{IvfPqIndex, IvfPqParams};
use quiver_vector::quant::{PqCodes, ProductQuantizer, Sq8Codes, Sq8Quantizer};
use quiver_vector::rayon::{self, prelude::*};
use quiver_vector::space::{F32Space, QueryScorer, VectorSpace};
use quiver_vector::{Metric, Neighbor};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Index kinds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// Exact scan.
    Flat,
    /// HNSW graph.
    Hnsw,
    /// IVF with PQ-coded residuals.
    #[value(name = "ivf_pq", alias = "ivf-pq")]
    IvfPq,
}

/// In-memory codes used while searching.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// Full-precision f32.
    None,
    /// 8-bit scalar quantization.
    Sq8,
    /// Product quantization.
    Pq,
}

/// A finite, non-negative number of seconds.
fn seconds(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Ok(x) => Err(format!("{x} is not a finite number of seconds ≥ 0")),
        Err(e) => Err(e.to_string()),
    }
}

/// Arguments of `quiver bench search`.
#[derive(clap::Args, Debug)]
pub struct BenchSearchArgs {
    /// Base vectors (.fvecs). Default: DATA/base.fvecs.
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Query vectors (.fvecs). Default: DATA/query.fvecs.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Exact neighbour ids per query (.ivecs). Default: DATA/groundtruth.ivecs.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Metric: l2, dot or cosine. Default: DATA/meta.json's "metric", else l2.
    #[arg(long)]
    pub metric: Option<Metric>,
    /// Index to build.
    #[arg(long, value_enum, default_value = "hnsw")]
    pub index: IndexKind,
    /// HNSW M [default: 16].
    #[arg(long)]
    pub m: Option<usize>,
    /// HNSW efConstruction [default: 200].
    #[arg(long)]
    pub ef_construction: Option<usize>,
    /// HNSW ef values, one JSON line each [default: 16,32,64,128,256].
    #[arg(long, value_delimiter = ',')]
    pub ef: Option<Vec<usize>>,
    /// IVF lists (default: 4·sqrt(n)).
    #[arg(long)]
    pub nlist: Option<usize>,
    /// IVF nprobe values, one JSON line each (at least 1; more than nlist probes every list)
    /// [default: 1,4,16,64].
    #[arg(long, value_delimiter = ',', value_parser = crate::util::at_least_one)]
    pub nprobe: Option<Vec<usize>>,
    /// PQ sub-spaces (default: dim/8).
    #[arg(long)]
    pub pq_m: Option<usize>,
    /// Codes held in memory while searching.
    #[arg(long, value_enum, default_value = "none")]
    pub quantization: Quantization,
    /// Re-rank oversampling factor for quantized searches: the best `k·rescore` candidates
    /// by code distance are re-ranked exactly on the f32 rows (0 = no re-rank).
    #[arg(long, default_value_t = 1)]
    pub rescore: usize,
    /// Neighbours per query (recall@k).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Build the HNSW graph over the quantized codes instead of the f32 rows (faster build,
    /// graph from approximate distances).
    #[arg(long)]
    pub build_on_codes: bool,
    /// Query threads.
    #[arg(long, default_value_t = 1, value_parser = crate::util::at_least_one)]
    pub threads: usize,
    /// Build threads (default: all cores).
    #[arg(long, value_parser = crate::util::at_least_one)]
    pub build_threads: Option<usize>,
    /// Repeat the query set until at least this many seconds passed (stable QPS).
    #[arg(long, default_value_t = 1.0, value_parser = seconds)]
    pub min_seconds: f64,
    /// Only the first N queries.
    #[arg(long, value_parser = crate::util::at_least_one)]
    pub nq: Option<usize>,
    /// HNSW graph file: opened by mmap when it exists (no build), else built and saved there.
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// Dataset folder in the texmex layout (base.fvecs, query.fvecs, groundtruth.ivecs,
    /// meta.json) supplying the defaults above.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// A malformed texmex file.
#[derive(Debug)]
pub enum TexmexError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file ends inside a row.
    Truncated { path: PathBuf, offset: usize },
    /// A row's dimension is not positive or differs from the first row's.
    BadDimension {
        path: PathBuf,
        offset: usize,
        expected: usize,
        got: i64,
    },
    /// The file holds no row.
    Empty { path: PathBuf },
}

impl std::fmt::Display for TexmexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TexmexError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            TexmexError::Truncated { path, offset } => {
                write!(f, "{} is truncated: a row starting at byte {offset} runs past the end", path.display())
            }
            TexmexError::BadDimension { path, offset, expected, got } => write!(
                f,
                "{}: row at byte {offset} has dimension {got}, expected {expected} (not a texmex file?)",
                path.display()
            ),
            TexmexError::Empty { path } => write!(f, "{} holds no rows", path.display()),
        }
    }
}

impl std::error::Error for TexmexError {}

/// Reads a texmex file of 4-byte elements: (dim, rows flattened).
fn read_vecs<T>(path: &Path, conv: fn([u8; 4]) -> T) -> Result<(usize, Vec<T>), TexmexError> {
    let bytes = std::fs::read(path).map_err(|source| TexmexError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut dim = 0usize;
    let mut off = 0usize;
    while off < bytes.len() {
        let Some(h) = bytes.get(off..off + 4) else {
            return Err(TexmexError::Truncated {
                path: path.to_path_buf(),
                offset: off,
            });
        };
        let d = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if d <= 0 || (dim != 0 && d as usize != dim) {
            return Err(TexmexError::BadDimension {
                path: path.to_path_buf(),
                offset: off,
                expected: dim,
                got: d.into(),
            });
        }
        dim = d as usize;
        let Some(row) = bytes.get(off + 4..off + 4 + 4 * dim) else {
            return Err(TexmexError::Truncated {
                path: path.to_path_buf(),
                offset: off,
            });
        };
        out.extend(row.chunks_exact(4).map(|c| conv([c[0], c[1], c[2], c[3]])));
        off += 4 + 4 * dim;
    }
    if dim == 0 {
        return Err(TexmexError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((dim, out))
}

/// Reads an `.fvecs` file.
pub fn read_fvecs(path: &Path) -> Result<(usize, Vec<f32>), TexmexError> {
    read_vecs(path, f32::from_le_bytes)
}

/// Reads an `.ivecs` file.
pub fn read_ivecs(path: &Path) -> Result<(usize, Vec<i32>), TexmexError> {
    read_vecs(path, i32::from_le_bytes)
}

fn metric_from_meta(dir: &Path) -> Option<Metric> {
    let s = std::fs::read_to_string(dir.join("meta.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    v.get("metric")?.as_str()?.parse().ok()
}

fn pick(
    explicit: &Option<PathBuf>,
    data: &Option<PathBuf>,
    name: &str,
    flag: &str,
) -> anyhow::Result<PathBuf> {
    match (explicit, data) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(d)) => Ok(d.join(name)),
        (None, None) => bail!("--{flag} is required (or --data DIR holding {name})"),
    }
}

struct Timing {
    qps: f64,
    /// Queries per second of *CPU* time of the querying thread (1 thread only, Linux): less
    /// sensitive than `qps` to other processes competing for the cores.
    cpu_qps: Option<f64>,
    p50_us: f64,
    p99_us: f64,
    results: Vec<Vec<Neighbor>>,
}

/// Runs `search` over every query (one at a time, on `threads` threads) until `min_seconds`
/// passed; the results of the first pass are kept for recall.
fn time_queries<F>(
    queries: &[Vec<f32>],
    threads: usize,
    min_seconds: f64,
    search: F,
) -> anyhow::Result<Timing>
where
    F: Fn(&[f32]) -> anyhow::Result<Vec<Neighbor>> + Sync,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    pool.install(|| {
        let mut lat: Vec<Duration> = Vec::new();
        let mut results = Vec::new();
        let mut total = Duration::ZERO;
        let mut passes = 0usize;
        let cpu0 = thread_cpu_ns();
        while passes == 0 || total.as_secs_f64() < min_seconds {
            let t0 = Instant::now();
            let r: Vec<(Vec<Neighbor>, Duration)> = if threads <= 1 {
                queries
                    .iter()
                    .map(|q| {
                        let t = Instant::now();
                        search(q).map(|r| (r, t.elapsed()))
                    })
                    .collect::<anyhow::Result<_>>()?
            } else {
                queries
                    .par_iter()
                    .map(|q| {
                        let t = Instant::now();
                        search(q).map(|r| (r, t.elapsed()))
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            total += t0.elapsed();
            passes += 1;
            lat.extend(r.iter().map(|x| x.1));
            if results.is_empty() {
                results = r.into_iter().map(|x| x.0).collect();
            }
        }
        let cpu_qps = match (threads <= 1, cpu0, thread_cpu_ns()) {
            (true, Some(a), Some(b)) if b > a => {
                Some((passes * queries.len()) as f64 / ((b - a) as f64 * 1e-9))
            }
            _ => None,
        };
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() - 1) as f64 * p).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        Ok(Timing {
            qps: (passes * queries.len()) as f64 / total.as_secs_f64(),
            cpu_qps,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            results,
        })
    })
}

/// CPU time of the calling thread in ns (Linux `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn recall(results: &[Vec<Neighbor>], truth: &[i32], tdim: usize, k: usize) -> f64 {
    let kk = k.min(tdim);
    let mut hits = 0usize;
    for (i, r) in results.iter().enumerate() {
        let t = &truth[i * tdim..i * tdim + kk];
        hits += r
            .iter()
            .take(k)
            .filter(|n| t.contains(&(n.id as i32)))
            .count();
    }
    hits as f64 / (results.len() * kk).max(1) as f64
}

fn progress_bar(n: usize, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(n as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta})",
    ) {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb
}

/// Runs the benchmark.
pub fn run(a: BenchSearchArgs) -> anyhow::Result<()> {
    let base_p = pick(&a.base, &a.data, "base.fvecs", "base")?;
    let query_p = pick(&a.queries, &a.data, "query.fvecs", "queries")?;
    let truth_p = pick(&a.truth, &a.data, "groundtruth.ivecs", "truth")?;
    let metric = a
        .metric
        .or_else(|| a.data.as_deref().and_then(metric_from_meta))
        .unwrap_or(Metric::L2);
    if a.k == 0 {
        bail!("--k must be at least 1");
    }
    // Flags of another index kind would be accepted and silently unused.
    let given = [
        ("--m", a.m.is_some(), a.index == IndexKind::Hnsw),
        (
            "--ef-construction",
            a.ef_construction.is_some(),
            a.index == IndexKind::Hnsw,
        ),
        ("--ef", a.ef.is_some(), a.index == IndexKind::Hnsw),
        ("--graph", a.graph.is_some(), a.index == IndexKind::Hnsw),
        ("--nlist", a.nlist.is_some(), a.index == IndexKind::IvfPq),
        ("--nprobe", a.nprobe.is_some(), a.index == IndexKind::IvfPq),
        (
            "--pq-m",
            a.pq_m.is_some(),
            a.index == IndexKind::IvfPq || a.quantization == Quantization::Pq,
        ),
    ];
    let misplaced: Vec<&str> = given
        .iter()
        .filter(|&&(_, set, applies)| set && !applies)
        .map(|&(name, _, _)| name)
        .collect();
    if !misplaced.is_empty() {
        use clap::ValueEnum;
        let name = |v: Option<clap::builder::PossibleValue>| {
            v.map_or_else(String::new, |v| v.get_name().to_owned())
        };
        bail!(
            "{} do(es) not apply to --index {} with --quantization {}",
            misplaced.join(", "),
            name(a.index.to_possible_value()),
            name(a.quantization.to_possible_value())
        );
    }
    let (dim, base) = read_fvecs(&base_p)?;
    let (qdim, qflat) = read_fvecs(&query_p)?;
    let (tdim, truth) = read_ivecs(&truth_p)?;
    if qdim != dim {
        bail!("queries have dimension {qdim}, base has {dim}");
    }
    let n = base.len() / dim;
    let mut nq = qflat.len() / qdim;
    if let Some(lim) = a.nq {
        nq = nq.min(lim);
    }
    let (m, ef_construction) = (a.m.unwrap_or(16), a.ef_construction.unwrap_or(200));
    let efs = a.ef.clone().unwrap_or_else(|| vec![16, 32, 64, 128, 256]);
    let nprobes = a.nprobe.clone().unwrap_or_else(|| vec![1, 4, 16, 64]);
    if a.k > tdim {
        bail!(
            "--k {} exceeds the {tdim} neighbours per query that {} holds: recall@{} cannot be measured",
            a.k,
            truth_p.display(),
            a.k
        );
    }
    if a.index == IndexKind::IvfPq && a.quantization != Quantization::None {
        bail!("--quantization applies to --index flat and hnsw; ivf_pq searches its own PQ codes (--pq-m)");
    }
    if a.build_on_codes && (a.index != IndexKind::Hnsw || a.quantization == Quantization::None) {
        bail!("--build-on-codes needs --index hnsw and --quantization sq8 or pq");
    }
    if truth.len() / tdim < nq {
        bail!(
            "{} has {} rows, fewer than the {nq} queries",
            truth_p.display(),
            truth.len() / tdim
        );
    }

    let mut space = F32Space::new(metric, dim);
    space.reserve(n);
    for (i, row) in base.chunks_exact(dim).enumerate() {
        space.add(row).with_context(|| format!("base row {i}"))?;
    }
    drop(base);
    let queries: Vec<Vec<f32>> = qflat
        .chunks_exact(qdim)
        .take(nq)
        .enumerate()
        .map(|(i, q)| space.prepare_query(q).with_context(|| format!("query {i}")))
        .collect::<anyhow::Result<_>>()?;
    let build_threads = a
        .build_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let kernels = quiver_vector::distance::Kernels::best().isa.name();

    let emit = |index: &str, params: serde_json::Value, build_s: f64, t: &Timing, bytes: usize| {
        let line = serde_json::json!({
            "bench": "search",
            "index": index,
            "params": params,
            "build_seconds": if build_s.is_nan() { serde_json::Value::Null } else { build_s.into() },
            "recall_at_k": recall(&t.results, &truth, tdim, a.k),
            "qps": t.qps,
            "cpu_qps": t.cpu_qps,
            "p50_us": t.p50_us,
            "p99_us": t.p99_us,
            "index_bytes": bytes,
            "threads": a.threads,
            "n": n,
            "nq": nq,
            "dim": dim,
            "metric": metric.to_string(),
            "kernels": kernels,
        });
        println!("{line}");
    };

    // Row-major f32 rows in stored form (normalised for cosine) for training and re-rank.
    let compact: Vec<f32> = (0..n as u32)
        .flat_map(|i| space.vectors().row(i).iter().copied())
        .collect();
    let t0 = Instant::now();
    let codes = match a.quantization {
        Quantization::None => Codes::None,
        Quantization::Sq8 => Codes::Sq8(
            Sq8Quantizer::train(&compact, dim, metric, n.min(100_000), 7)?.encode_all(&compact)?,
        ),
        Quantization::Pq => {
            let m = a.pq_m.unwrap_or(dim / 8);
            Codes::Pq(ProductQuantizer::train(&compact, dim, m, metric, 7)?.encode_all(&compact)?)
        }
    };
    let quant_s = t0.elapsed().as_secs_f64();
    let (codes_bytes, quant_name) = match &codes {
        Codes::None => (space.vectors().bytes(), "none"),
        Codes::Sq8(c) => (c.memory_bytes(), "sq8"),
        Codes::Pq(c) => (c.memory_bytes(), "pq"),
    };
    let rescore = a.rescore;
    // Full-precision flat and HNSW searches have nothing to re-rank: report no factor.
    let reported_rescore = (a.quantization != Quantization::None).then_some(rescore);

    match a.index {
        IndexKind::Flat => {
            let k = a.k;
            let t = time_queries(&queries, a.threads, a.min_seconds, |q| {
                Ok(match &codes {
                    Codes::None => flat::search(&space, q, &FlatParams::k(k))?,
                    Codes::Sq8(c) => flat_rescored(c, &space, q, k, rescore)?,
                    Codes::Pq(c) => flat_rescored(c, &space, q, k, rescore)?,
                })
            })?;
            let mut params = serde_json::json!({"k": k, "quantization": quant_name, "rescore": reported_rescore});
            if let Codes::None = codes {
                // Whole query set in one call (blocked, on `threads` threads).
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(a.threads.max(1))
                    .build()?;
                let p = FlatParams::k(k);
                // Repeated for at least `min_seconds` (1 s by default), as peers.py times
                // FAISS: one call on a small set lasts a few ms, which one lost time slice
                // could halve.
                let min_s = a.min_seconds;
                let t0 = Instant::now();
                let batch = pool.install(|| flat::search_batch(&space, &queries, &p))?;
                let mut calls = 1u64;
                while t0.elapsed().as_secs_f64() < min_s {
                    pool.install(|| flat::search_batch(&space, &queries, &p))?;
                    calls += 1;
                }
                let batch_s = t0.elapsed().as_secs_f64();
                params["batch_qps"] = (nq as f64 * calls as f64 / batch_s).into();
                params["batch_calls"] = calls.into();
                params["batch_recall"] = recall(&batch, &truth, tdim, k).into();
            }
            emit("flat", params, quant_s, &t, codes_bytes);
        }
        IndexKind::Hnsw => {
            let params = HnswParams::default()
                .with_m(m)
                .with_ef_construction(ef_construction);
            let (h, build_s) = match &a.graph {
                Some(g) if g.exists() => {
                    let t0 = Instant::now();
                    let h =
                        Hnsw::open(g).with_context(|| format!("opening graph {}", g.display()))?;
                    let s = t0.elapsed().as_secs_f64();
                    eprintln!("opened hnsw graph {} (mmap) in {s:.3} s", g.display());
                    let built = h.params();
                    if (built.m, built.ef_construction) != (m, ef_construction) {
                        eprintln!(
                            "warning: {} was built with m={} ef_construction={}, not the m={} ef_construction={} asked for; \
                             reporting and using the graph's (remove the file to rebuild)",
                            g.display(), built.m, built.ef_construction, m, ef_construction
                        );
                    }
                    (h, f64::NAN)
                }
                _ => {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(build_threads)
                        .build()?;
                    let pb = progress_bar(space.len(), "building hnsw");
                    let t0 = Instant::now();
                    let progress = |c: usize| pb.set_position(c as u64);
                    let h = pool.install(|| match (&codes, a.build_on_codes) {
                        (Codes::Sq8(c), true) => Hnsw::build_with_progress(c, params, &progress),
                        (Codes::Pq(c), true) => Hnsw::build_with_progress(c, params, &progress),
                        _ => Hnsw::build_with_progress(&space, params, &progress),
                    })?;
                    let build_s = t0.elapsed().as_secs_f64();
                    pb.finish_and_clear();
                    eprintln!("built hnsw over {n} x {dim} in {build_s:.2} s with {build_threads} threads");
                    if let Some(g) = &a.graph {
                        h.save(g)?;
                    }
                    (h, build_s)
                }
            };
            let bytes = h.bytes() + codes_bytes;
            for &asked in &efs {
                // The search never uses an ef below k; report the ef it used.
                let ef = asked.max(a.k);
                if ef != asked {
                    eprintln!(
                        "note: --ef {asked} is below --k {}: searching with ef = {ef}",
                        a.k
                    );
                }
                let sp = SearchParams::new(a.k, ef).with_rescore(rescore);
                let t = time_queries(&queries, a.threads, a.min_seconds, |q| {
                    Ok(match &codes {
                        Codes::None => h.search(&space, q, &sp)?,
                        Codes::Sq8(c) => hnsw_codes(&h, c, &space, q, &sp, rescore)?,
                        Codes::Pq(c) => hnsw_codes(&h, c, &space, q, &sp, rescore)?,
                    })
                })?;
                emit(
                    "hnsw",
                    // A graph opened from --graph was not built here: its build settings are
                    // unknown (null), not the flags of this run.
                    serde_json::json!({"m": h.params().m, "ef_construction": h.params().ef_construction, "ef": ef, "k": a.k,
                        "quantization": quant_name, "rescore": reported_rescore,
                        "build_threads": (!build_s.is_nan()).then_some(build_threads),
                        "build_on_codes": (!build_s.is_nan()).then_some(a.build_on_codes),
                        "quantize_seconds": quant_s}),
                    if build_s.is_nan() {
                        f64::NAN
                    } else {
                        build_s + quant_s
                    },
                    &t,
                    bytes,
                );
            }
        }
        IndexKind::IvfPq => {
            let nlist = a
                .nlist
                .unwrap_or_else(|| ((4.0 * (n as f64).sqrt()) as usize).clamp(1, n.max(1)));
            let pq_m = a.pq_m.unwrap_or(dim / 8);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(build_threads)
                .build()?;
            let t0 = Instant::now();
            let idx = pool.install(|| {
                IvfPqIndex::build(&compact, dim, metric, IvfPqParams::new(nlist, pq_m))
            })?;
            let build_s = t0.elapsed().as_secs_f64();
            eprintln!("built ivf_pq (nlist {nlist}, pq_m {pq_m}) in {build_s:.2} s");
            for &asked in &nprobes {
                // More probes than lists probe every list; report what was probed.
                let nprobe = asked.min(nlist);
                if nprobe != asked {
                    eprintln!(
                        "note: --nprobe {asked} exceeds nlist {nlist}: probing all {nlist} lists"
                    );
                }
                let k = a.k;
                let t = time_queries(&queries, a.threads, a.min_seconds, |q| {
                    let rows = (rescore > 0).then_some((&compact[..], rescore));
                    Ok(idx
                        .search(q, k, nprobe, rows)?
                        .into_iter()
                        .map(|(id, distance)| Neighbor { id, distance })
                        .collect())
                })?;
                emit(
                    "ivf_pq",
                    serde_json::json!({"nlist": nlist, "nprobe": nprobe, "pq_m": pq_m, "k": k, "rescore": rescore}),
                    build_s,
                    &t,
                    idx.index_bytes(),
                );
            }
        }
    }
    Ok(())
}

enum Codes {
    None,
    Sq8(Sq8Codes),
    Pq(PqCodes),
}

/// HNSW over quantized codes, re-ranked exactly on the f32 rows unless `rescore == 0`.
fn hnsw_codes<S: VectorSpace>(
    h: &Hnsw,
    codes: &S,
    space: &F32Space,
    q: &[f32],
    sp: &SearchParams<'_>,
    rescore: usize,
) -> anyhow::Result<Vec<Neighbor>> {
    Ok(if rescore == 0 {
        h.search(codes, q, sp)?
    } else {
        h.search_rescored(codes, space, q, sp)?
    })
}

/// Flat scan of the codes for `k·rescore` candidates, re-ranked exactly on the f32 rows.
fn flat_rescored<S: VectorSpace>(
    codes: &S,
    space: &F32Space,
    q: &[f32],
    k: usize,
    rescore: usize,
) -> anyhow::Result<Vec<Neighbor>> {
    let mut c = flat::search(codes, q, &FlatParams::k(k.saturating_mul(rescore.max(1))))?;
    if rescore > 0 {
        let scorer = space.scorer(q);
        for n in &mut c {
            n.distance = scorer.distance(n.id);
        }
        c.sort_unstable();
    }
    c.truncate(k);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn row(dim: i32, vals: &[f32]) -> Vec<u8> {
        let mut b = dim.to_le_bytes().to_vec();
        vals.iter()
            .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        b
    }

    #[test]
    fn texmex_reader_reads_rows_and_types_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut good = row(2, &[1.0, 2.0]);
        good.extend(row(2, &[3.0, 4.0]));
        let p = write(dir.path(), "good.fvecs", &good);
        assert_eq!(read_fvecs(&p).expect("good"), (2, vec![1.0, 2.0, 3.0, 4.0]));

        let p = write(dir.path(), "trunc.fvecs", &good[..good.len() - 2]);
        assert!(matches!(
            read_fvecs(&p),
            Err(TexmexError::Truncated { offset: 12, .. })
        ));
        let mut ragged = row(2, &[1.0, 2.0]);
        ragged.extend(row(3, &[1.0, 2.0, 3.0]));
        let p = write(dir.path(), "ragged.fvecs", &ragged);
        assert!(matches!(
            read_fvecs(&p),
            Err(TexmexError::BadDimension {
                expected: 2,
                got: 3,
                ..
            })
        ));
        let p = write(dir.path(), "neg.fvecs", &row(-1, &[]));
        assert!(matches!(
            read_fvecs(&p),
            Err(TexmexError::BadDimension { got: -1, .. })
        ));
        let p = write(dir.path(), "empty.ivecs", b"");
        assert!(matches!(read_ivecs(&p), Err(TexmexError::Empty { .. })));
        assert!(matches!(
            read_ivecs(&dir.path().join("missing.ivecs")),
            Err(TexmexError::Io { .. })
        ));
    }

    #[test]
    fn recall_counts_hits_in_the_first_k_truth_ids() {
        let res = vec![vec![
            Neighbor {
                id: 1,
                distance: 0.0,
            },
            Neighbor {
                id: 9,
                distance: 1.0,
            },
        ]];
        assert_eq!(recall(&res, &[1, 2, 3], 3, 2), 0.5);
    }
}
