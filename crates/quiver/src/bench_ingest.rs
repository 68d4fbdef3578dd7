//! `quiver bench ingest`: realistic events through the full write path.

use crate::bench_gen::Gen;
use crate::util;
use anyhow::Context;
use quiver_core::{DbConfig, Id, Op, Preset, Record};
use quiver_engine::Database;
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

/// Arguments of `quiver bench ingest`.
#[derive(clap::Args, Debug)]
pub struct BenchIngestArgs {
    /// Events to write in total.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Events per write batch.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Concurrent writer threads.
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Random payload bytes per event.
    #[arg(long, default_value_t = 200)]
    pub payload_bytes: usize,
    /// Vector dimension (0 = no vector).
    #[arg(long, default_value_t = 0)]
    pub dim: usize,
    /// Durability preset.
    #[arg(long, default_value = "throughput")]
    pub preset: Preset,
    /// Maintain the Merkle ledger (on) or not (off), to measure its cost.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub ledger: String,
    /// Override the preset's group-commit gather delay, in microseconds.
    #[arg(long)]
    pub gather_us: Option<u64>,
    /// Override the preset's largest commit group, in entries.
    #[arg(long)]
    pub max_group: Option<usize>,
    /// Override the preset's WAL preallocation (true/false).
    #[arg(long)]
    pub preallocate: Option<bool>,
    /// Override direct I/O for a syncing WAL (true/false; default true).
    #[arg(long)]
    pub direct_io: Option<bool>,
    /// Segment block compression (none, lz4, zstd); default: the configuration's (none).
    #[arg(long)]
    pub compression: Option<quiver_core::Compression>,
    /// Ledger hash: blake3 or sha256.
    #[arg(long, default_value = "blake3")]
    pub hash: quiver_core::LedgerHash,
    /// Parent directory; the run uses a fresh subdirectory that is removed afterwards.
    #[arg(long, default_value = "./quiver-data")]
    pub data: PathBuf,
    /// Keep the run's directory instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// Fills `rec` with a fresh event, reusing its buffers (a client that builds records in a
/// loop would do the same; the peers' harness reuses its value buffer likewise).
fn fill_event(g: &mut Gen, rec: &mut Record, id: u64, ts: i64, payload_bytes: usize, dim: usize) {
    rec.id = Some(Id::U64(id));
    rec.timestamp_ns = Some(ts);
    let (ty, src) = g.kind();
    for (field, v) in [(&mut rec.event_type, ty), (&mut rec.source, src)] {
        let f = field.get_or_insert_with(String::new);
        f.clear();
        f.push_str(v);
    }
    let mut bytes = rec.payload.take().unwrap_or_default().into_bytes();
    bytes.clear();
    g.payload(payload_bytes, &mut bytes);
    // Alphanumerics and JSON punctuation are ASCII: valid UTF-8 (checked once per payload).
    rec.payload = Some(String::from_utf8(bytes).unwrap_or_default());
    if dim > 0 {
        let v = rec.vector.get_or_insert_with(Vec::new);
        v.clear();
        v.extend((0..dim).map(|_| (g.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0));
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The database configuration of a run: the preset's, with every override given applied.
fn db_config(a: &BenchIngestArgs) -> DbConfig {
    let mut cfg = DbConfig::new(a.preset)
        .ledger(a.ledger == "on")
        .ledger_hash(a.hash);
    if let Some(us) = a.gather_us {
        cfg = cfg.gather_delay(std::time::Duration::from_micros(us));
    }
    if let Some(n) = a.max_group {
        cfg.wal.max_group_entries = n;
    }
    if let Some(p) = a.preallocate {
        cfg.wal.preallocate = p;
    }
    if let Some(d) = a.direct_io {
        cfg = cfg.wal_direct_io(d);
    }
    if let Some(c) = a.compression {
        cfg = cfg.compression(c);
    }
    cfg
}

/// Runs the benchmark and prints one JSON line.
pub fn run(a: BenchIngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.writers > 0 && a.batch > 0 && a.events > 0,
        "events, batch and writers must be positive"
    );
    let dir = a.data.join(format!(
        "bench-ingest-{}-{}",
        std::process::id(),
        util::now_ns()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ran = run_in(&a, &dir);
    // The run directory goes unless asked to keep it, also when the run failed.
    if !a.keep {
        let removed =
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()));
        removed?;
    }
    let line = ran?;
    println!("{line}");
    Ok(())
}

/// The benchmark proper, in the fresh run directory `dir`: the JSON line to print.
fn run_in(a: &BenchIngestArgs, dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let db = Arc::new(Database::open(dir, db_config(a))?);
    let pb = indicatif::ProgressBar::new(a.events);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let t0 = util::now_ns();
    let mut handles = Vec::new();
    for w in 0..a.writers {
        let db = db.clone();
        let next = next.clone();
        let pb = pb.clone();
        let (events, batch, pbytes, dim) = (a.events, a.batch as u64, a.payload_bytes, a.dim);
        let spawned = std::thread::Builder::new().spawn(move || -> anyhow::Result<Vec<f64>> {
            let mut g = Gen(0x5eed_0000_0000 + w as u64 * 0x9e37_79b9 + 1);
            let mut lat = Vec::new();
            let mut ops = Vec::with_capacity(batch.min(events).min(1 << 16) as usize);
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= events {
                    break;
                }
                let last = (first + batch).min(events);
                let n = (last - first) as usize;
                ops.resize_with(n, || Op::Put(Record::default()));
                ops.truncate(n);
                for (op, id) in ops.iter_mut().zip(first..last) {
                    if let Op::Put(rec) = op {
                        fill_event(&mut g, rec, id, t0 + id as i64 * 1000, pbytes, dim);
                    }
                }
                let t = Instant::now();
                db.write_batch(&ops)?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                pb.inc(last - first);
            }
            Ok(lat)
        });
        // A thread limit (ulimit -u) is an error to report, not a panic.
        handles.push(spawned.context("starting a writer thread")?);
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("writer thread panicked"))??,
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    // Commit groups written during the run: events ÷ groups is how many writes shared each
    // WAL write (and, when syncing, each fdatasync).
    let stats = db.stats()?;
    let (wal_groups, wal_gathers, wal_direct_io) =
        (stats.wal_groups, stats.wal_gathers, stats.wal_direct_io);
    let db = Arc::try_unwrap(db).map_err(|_| anyhow::anyhow!("database still shared"))?;
    db.close()?;
    lat.sort_by(|x, y| x.total_cmp(y));
    let line = serde_json::json!({
        "bench": "ingest",
        "preset": a.preset.to_string(),
        "ledger": a.ledger,
        "hash": format!("{:?}", a.hash).to_lowercase(),
        "events": a.events,
        "writers": a.writers,
        "batch": a.batch,
        // The generator's smallest payload is `{"d":""}`: report the size it produced.
        "payload_bytes": a.payload_bytes.max(crate::bench_gen::PAYLOAD_FIXED),
        "dim": a.dim,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "events_per_sec": (a.events as f64 / seconds).round(),
        "batch_p50_ms": (percentile(&lat, 0.5) * 1000.0).round() / 1000.0,
        "batch_p99_ms": (percentile(&lat, 0.99) * 1000.0).round() / 1000.0,
        "wal_groups": wal_groups,
        "wal_gathers": wal_gathers,
        "wal_direct_io": wal_direct_io,
        "bytes_on_disk": util::dir_bytes(dir),
        "peak_rss_bytes": util::peak_rss_bytes(),
        "kept": a.keep.then(|| dir.display().to_string()),
    });
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: BenchIngestArgs,
    }

    #[test]
    fn every_override_reaches_the_configuration() {
        let parse = |args: &[&str]| {
            let mut v = vec!["bench"];
            v.extend_from_slice(args);
            db_config(&Cli::try_parse_from(v).unwrap().a)
        };
        let base = parse(&["--preset", "balanced"]);
        assert_eq!(
            base.wal,
            quiver_core::WalConfig::for_preset(Preset::Balanced)
        );
        assert_eq!(base.compression, quiver_core::Compression::None);
        assert!(base.ledger);
        let c = parse(&[
            "--preset",
            "balanced",
            "--gather-us",
            "250",
            "--max-group",
            "8000",
            "--preallocate",
            "true",
            "--direct-io",
            "false",
            "--compression",
            "zstd",
            "--ledger",
            "off",
            "--hash",
            "sha256",
        ]);
        assert_eq!(c.wal.gather_delay, std::time::Duration::from_micros(250));
        assert_eq!(c.wal.max_group_entries, 8000);
        assert!(c.wal.preallocate);
        assert!(base.wal.direct_io && !c.wal.direct_io);
        assert_eq!(c.compression, quiver_core::Compression::Zstd);
        assert!(!c.ledger);
        assert_eq!(c.ledger_hash, quiver_core::LedgerHash::Sha256);
    }

    #[test]
    fn generator_keeps_the_alphabet_and_sources_and_the_payload_size() {
        use crate::bench_gen::{alnum_of, SOURCES};
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for b in 0..=255u8 {
            assert_eq!(
                alnum_of(b),
                ALNUM[(b as usize * ALNUM.len()) >> 8],
                "byte {b}"
            );
        }
        for (i, s) in SOURCES.iter().enumerate() {
            assert_eq!(*s, format!("svc-{i:02}"));
        }
        let mut g = Gen(7);
        let mut rec = Record::default();
        for size in [0, 8, 9, 13, 200, 201] {
            fill_event(&mut g, &mut rec, 1, 2, size, 0);
            let p = rec.payload.as_deref().unwrap();
            assert_eq!(p.len(), size.max(8), "payload of {size} bytes: {p}");
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            assert!(v["d"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
