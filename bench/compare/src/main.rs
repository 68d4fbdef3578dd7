//! quiver-compare: runs quiver's ingest workload through peer storage engines (redb, fjall,
//! RocksDB, sled) with matching durability and prints one JSON line per run in the shape of
//! `quiver bench ingest`, plus an `engine` field.
//!
//! Kept out of the root workspace and out of the default build/CI (see README.md).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::{AtomicU64, Ordering};


type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const ENGINES: &[&str] = &[
    "redb",
    "fjall",
    #[cfg(feature = "rocksdb")]
    "rocksdb",
    #[cfg(feature = "sled")]
    "sled",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// No fsync on the write path (data handed to the OS); one durable sync at the very end.
    NoSync,
    /// One fsync (fdatasync) per batch.
    SyncBatch,
    /// Every writer writes single events and each is fsynced before the next.
    SyncWrite,
}

impl Mode {
    fn parse(s: &str) -> Res<Mode> {
        Ok(match s {
            "nosync" | "throughput" => Mode::NoSync,
            "sync-batch" | "balanced" => Mode::SyncBatch,
            "sync-write" | "durable" => Mode::SyncWrite,
            other => return Err(format!("unknown --mode {other:?} (nosync|sync-batch|sync-write)").into()),
        })
    }
    fn flag(self) -> &'static str {
        match self {
            Mode::NoSync => "nosync",
            Mode::SyncBatch => "sync-batch",
            Mode::SyncWrite => "sync-write",
        }
    }
    /// The quiver preset this mode is compared against.
    fn preset(self) -> &'static str {
        match self {
            Mode::NoSync => "throughput",
            Mode::SyncBatch => "balanced",
            Mode::SyncWrite => "durable",
        }
    }
    fn sync_each_write(self) -> bool {
        !matches!(self, Mode::NoSync)
    }
}

#[derive(Clone, Debug)]
struct Args {
    engine: String,
    events: u64,
    batch: usize,
    writers: usize,
    payload_bytes: usize,
    mode: Mode,
    data: PathBuf,
    keep: bool,
    verify: bool,
}

const USAGE: &str = "usage: quiver-compare [--engine redb|fjall|rocksdb|sled|all] [--events N] [--batch B] \
[--writers W] [--payload-bytes P] [--mode nosync|sync-batch|sync-write] [--data DIR] [--keep] [--verify]";

fn parse_args() -> Res<Args> {
    let mut a = Args {
        engine: "all".into(),
        events: 1_000_000,
        batch: 2000,
        writers: 2,
        payload_bytes: 200,
        mode: Mode::NoSync,
        data: PathBuf::from("quiver-compare-data"),
        keep: false,
        verify: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--engine" => a.engine = val()?,
            "--events" => a.events = val()?.parse()?,
            "--batch" => a.batch = val()?.parse()?,
            "--writers" => a.writers = val()?.parse()?,
            "--payload-bytes" => a.payload_bytes = val()?.parse()?,
            "--mode" | "--preset" => a.mode = Mode::parse(&val()?)?,
            "--data" => a.data = PathBuf::from(val()?),
            "--keep" => a.keep = true,
            "--verify" => a.verify = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if a.writers == 0 || a.batch == 0 || a.events == 0 {
        return Err("--events, --batch and --writers must be > 0".into());
    }
    if a.mode == Mode::SyncWrite {
        // durable = each writer writes single events, fsync each.
        a.batch = 1;
    }
    if a.engine != "all" && !ENGINES.contains(&a.engine.as_str()) {
        return Err(format!("unknown or not compiled-in engine {:?}; available: {ENGINES:?}", a.engine).into());
    }
    Ok(a)
}

/// One storage engine under test. Shared by all writer threads.
trait Engine: Send + Sync {
    /// Writes one batch atomically; durable before returning iff the mode says so.
    fn write_batch(&self, batch: &[([u8; 8], Vec<u8>)]) -> Res<()>;
    /// Makes everything written so far durable (one sync at the end of a no-sync run).
    fn sync(&self) -> Res<()>;
}

// ---------------------------------------------------------------- redb

struct Redb {
    db: redb::Database,
    durability: redb::Durability,
}

const REDB_TABLE: redb::TableDefinition<'static, &[u8], &[u8]> = redb::TableDefinition::new("events");

impl Redb {
    fn open(dir: &Path, mode: Mode) -> Res<Self> {
        let db = redb::Database::create(dir.join("events.redb"))?;
        let durability = if mode.sync_each_write() { redb::Durability::Immediate } else { redb::Durability::None };
        Ok(Redb { db, durability })
    }
}

impl Engine for Redb {
    fn write_batch(&self, batch: &[([u8; 8], Vec<u8>)]) -> Res<()> {
        // redb serialises write transactions: concurrent writers contend on its writer lock.
        let mut tx = self.db.begin_write()?;
        tx.set_durability(self.durability)?;
        {
            let mut t = tx.open_table(REDB_TABLE)?;
            for (k, v) in batch {
                t.insert(&k[..], v.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    fn sync(&self) -> Res<()> {
        // One durable commit persists all earlier Durability::None commits.
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::Immediate)?;
        tx.commit()?;
        Ok(())
    }
}

// ---------------------------------------------------------------- fjall

struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
    persist: fjall::PersistMode,
}

impl Fjall {
    fn open(dir: &Path, mode: Mode) -> Res<Self> {
        let db = fjall::Database::builder(dir).open()?;
        let ks = db.keyspace("events", fjall::KeyspaceCreateOptions::default)?;
        // nosync: journal written to OS buffers (fjall's default, like RocksDB sync=false);
        // sync modes: fdatasync of the journal after each batch (same syscall RocksDB uses).
        let persist = if mode.sync_each_write() { fjall::PersistMode::SyncData } else { fjall::PersistMode::Buffer };
        Ok(Fjall { db, ks, persist })
    }
}

impl Engine for Fjall {
    fn write_batch(&self, batch: &[([u8; 8], Vec<u8>)]) -> Res<()> {
        let mut b = self.db.batch().durability(Some(self.persist));
        for (k, v) in batch {
            b.insert(&self.ks, &k[..], v.as_slice());
        }
        b.commit()?;
        Ok(())
    }
    fn sync(&self) -> Res<()> {
        self.db.persist(fjall::PersistMode::SyncData)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- RocksDB

#[cfg(feature = "rocksdb")]
struct Rocks {
    db: rocksdb::DB,
    sync: bool,
}

#[cfg(feature = "rocksdb")]
impl Rocks {
    fn open(dir: &Path, mode: Mode) -> Res<Self> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        // Otherwise RocksDB defaults (64 MiB memtable, WAL on, 2 background jobs).
        let db = rocksdb::DB::open(&opts, dir)?;
        Ok(Rocks { db, sync: mode.sync_each_write() })
    }
}

#[cfg(feature = "rocksdb")]
impl Engine for Rocks {
    fn write_batch(&self, batch: &[([u8; 8], Vec<u8>)]) -> Res<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for (k, v) in batch {
            wb.put(k, v);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync); // WAL stays on in every mode
        self.db.write_opt(wb, &wo)?;
        Ok(())
    }
    fn sync(&self) -> Res<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- sled

#[cfg(feature = "sled")]
struct Sled {
    db: sled::Db,
    sync: bool,
}

#[cfg(feature = "sled")]
impl Sled {
    fn open(dir: &Path, mode: Mode) -> Res<Self> {
        // Defaults (1 GiB cache, background flush every 500 ms).
        let db = sled::Config::new().path(dir).open()?;
        Ok(Sled { db, sync: mode.sync_each_write() })
    }
}

#[cfg(feature = "sled")]
impl Engine for Sled {
    fn write_batch(&self, batch: &[([u8; 8], Vec<u8>)]) -> Res<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            b.insert(&k[..], v.as_slice());
        }
        self.db.apply_batch(b)?;
        if self.sync {
            self.db.flush()?;
        }
        Ok(())
    }
    fn sync(&self) -> Res<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// Reopens a closed data directory and counts the stored keys (for `--verify`; not timed).
fn count_keys(name: &str, dir: &Path) -> Res<u64> {
    Ok(match name {
        "redb" => {
            use redb::{ReadableDatabase, ReadableTableMetadata};
            let db = redb::Database::create(dir.join("events.redb"))?;
            let tx = db.begin_read()?;
            let t = tx.open_table(REDB_TABLE)?;
            t.len()?
        }
        "fjall" => {
            let db = fjall::Database::builder(dir).open()?;
            let ks = db.keyspace("events", fjall::KeyspaceCreateOptions::default)?;
            ks.len()? as u64
        }
        #[cfg(feature = "rocksdb")]
        "rocksdb" => {
            let db = rocksdb::DB::open_default(dir)?;
            let mut n = 0u64;
            for kv in db.iterator(rocksdb::IteratorMode::Start) {
                kv?;
                n += 1;
            }
            n
        }
        #[cfg(feature = "sled")]
        "sled" => sled::Config::new().path(dir).open()?.len() as u64,
        other => return Err(format!("engine {other:?} not available").into()),
    })
}

fn open_engine(name: &str, dir: &Path, mode: Mode) -> Res<Arc<dyn Engine>> {
    Ok(match name {
        "redb" => Arc::new(Redb::open(dir, mode)?),
        "fjall" => Arc::new(Fjall::open(dir, mode)?),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Arc::new(Rocks::open(dir, mode)?),
        #[cfg(feature = "sled")]
        "sled" => Arc::new(Sled::open(dir, mode)?),
        other => return Err(format!("engine {other:?} not available").into()),
    })
}

// ---------------------------------------------------------------- workload
//
// The events come from quiver's own generator (crates/quiver/src/bench_gen.rs, compiled in
// below), so both sides do the same work: the same event types and sources, a JSON payload
// `{"d":"<random alphanumerics>"}` of exactly `--payload-bytes` bytes, ids claimed in runs of
// `batch` from one shared counter, the same percentile rule and timing boundary.

#[path = "../../../crates/quiver/src/bench_gen.rs"]
mod bench_gen;
use bench_gen::Gen;

/// Encodes one event as a row value: timestamp (ns, BE), type, source (`svc-NN`, 16 kinds),
/// then the JSON payload (~240 bytes in total with a 200-byte payload).
fn encode_event(g: &mut Gen, ts: i64, payload_bytes: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&ts.to_be_bytes());
    let (ty, src) = g.kind();
    out.push(ty.len() as u8);
    out.extend_from_slice(ty.as_bytes());
    out.push(src.len() as u8);
    out.extend_from_slice(src.as_bytes());
    out.extend_from_slice(&(payload_bytes.max(bench_gen::PAYLOAD_FIXED) as u32).to_be_bytes());
    g.payload(payload_bytes, out);
}

struct RunResult {
    /// Wall time of the writers (first write to last acknowledged batch).
    seconds: f64,
    /// Time of the final sync that makes a no-sync run durable (not in `seconds`).
    final_sync_seconds: f64,
    latencies_ms: Vec<f64>,
}

fn run_workload(engine: Arc<dyn Engine>, a: &Args) -> Res<RunResult> {
    let t0: i64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..a.writers {
        let engine = Arc::clone(&engine);
        let next = Arc::clone(&next);
        let (events, batch, payload_bytes) = (a.events, a.batch as u64, a.payload_bytes);
        handles.push(std::thread::spawn(move || -> Res<Vec<f64>> {
            let mut rng = Gen(0x5eed_0000_0000 + w as u64 * 0x9e37_79b9 + 1);
            let mut lat = Vec::new();
            let mut buf: Vec<([u8; 8], Vec<u8>)> = Vec::with_capacity(batch as usize);
            loop {
                // Unique ids, writers interleaved batch by batch (as in quiver's bench).
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= events {
                    break;
                }
                let last = (first + batch).min(events);
                // Value buffers are reused batch to batch, as quiver's bench reuses its records.
                let n = (last - first) as usize;
                buf.resize_with(n, || ([0u8; 8], Vec::with_capacity(payload_bytes + 64)));
                buf.truncate(n);
                for ((k, v), id) in buf.iter_mut().zip(first..last) {
                    *k = id.to_be_bytes();
                    encode_event(&mut rng, t0 + id as i64 * 1000, payload_bytes, v);
                }
                let t = Instant::now();
                engine.write_batch(&buf)?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok(lat)
        }));
    }
    let mut latencies_ms = Vec::new();
    for h in handles {
        let lat = h.join().map_err(|_| "writer thread panicked")??;
        latencies_ms.extend(lat);
    }
    let seconds = start.elapsed().as_secs_f64();
    // Like quiver's bench, `seconds` stops when the last batch is acknowledged; making a no-sync
    // run durable (and closing) comes after and is reported on stderr.
    let t_sync = Instant::now();
    engine.sync()?;
    let final_sync_seconds = t_sync.elapsed().as_secs_f64();
    Ok(RunResult { seconds, final_sync_seconds, latencies_ms })
}

/// Same rule as quiver's bench: element round((n-1)·q) of the sorted latencies.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Total size (apparent length) of the files below `dir` — the same rule as quiver's bench
/// (`util::dir_bytes`), so the two `bytes_on_disk` figures mean the same thing. Sparse
/// preallocated files (e.g. fjall's journal) count at their full length.
fn bytes_on_disk(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    for e in rd.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += bytes_on_disk(&e.path());
        } else {
            total += md.len();
        }
    }
    total
}

fn peak_rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn run_one(a: &Args) -> Res<()> {
    let dir = a.data.join(format!("{}-{}", a.engine, a.mode.flag()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!(
        "[{}] {} events, {} writers, batch {}, payload {} B, mode {} -> {}",
        a.engine, a.events, a.writers, a.batch, a.payload_bytes, a.mode.flag(), dir.display()
    );
    let engine = open_engine(&a.engine, &dir, a.mode)?;
    let mut r = run_workload(Arc::clone(&engine), a)?;
    let t_close = Instant::now();
    drop(engine); // close (not part of `seconds`)
    let close_s = t_close.elapsed().as_secs_f64();
    r.latencies_ms.sort_by(|x, y| x.total_cmp(y));
    let bytes = bytes_on_disk(&dir);
    let rss = peak_rss_bytes(); // before --verify, which would add its own memory
    println!(
        "{{\"bench\":\"ingest\",\"engine\":\"{}\",\"preset\":\"{}\",\"events\":{},\"writers\":{},\"batch\":{},\
\"seconds\":{:.3},\"events_per_sec\":{:.0},\"batch_p50_ms\":{:.3},\"batch_p99_ms\":{:.3},\"bytes_on_disk\":{},\"peak_rss_bytes\":{}}}",
        a.engine,
        a.mode.preset(),
        a.events,
        a.writers,
        a.batch,
        r.seconds,
        a.events as f64 / r.seconds,
        percentile(&r.latencies_ms, 0.5),
        percentile(&r.latencies_ms, 0.99),
        bytes,
        rss
    );
    eprintln!(
        "[{}] done in {:.3} s (+ final sync {:.3} s, close {:.3} s)",
        a.engine, r.seconds, r.final_sync_seconds, close_s
    );
    if a.verify {
        let n = count_keys(&a.engine, &dir)?;
        if n != a.events {
            return Err(format!("[{}] verify: reopened store holds {n} keys, expected {}", a.engine, a.events).into());
        }
        eprintln!("[{}] verify: reopened, {n} keys present", a.engine);
    }
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--device-ceiling") {
        if let Err(e) = device_ceiling() {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let result = if a.engine == "all" {
        // One child process per engine so each run's peak RSS (VmHWM) is its own.
        run_all(&a)
    } else {
        run_one(&a)
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run_all(a: &Args) -> Res<()> {
    let exe = std::env::current_exe()?;
    let mut failed = Vec::new();
    for engine in ENGINES {
        let mut cmd = Command::new(&exe);
        cmd.args(["--engine", engine])
            .args(["--events", &a.events.to_string()])
            .args(["--batch", &a.batch.to_string()])
            .args(["--writers", &a.writers.to_string()])
            .args(["--payload-bytes", &a.payload_bytes.to_string()])
            .args(["--mode", a.mode.flag()])
            .arg("--data")
            .arg(&a.data);
        if a.keep {
            cmd.arg("--keep");
        }
        if a.verify {
            cmd.arg("--verify");
        }
        let status = cmd.status()?; // stdout/stderr inherited: the child prints its JSON line
        if !status.success() {
            eprintln!("[{engine}] failed: {status}");
            failed.push(*engine);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("engines failed: {failed:?}").into())
    }
}

/// `quiver-compare --device-ceiling [--writes N] [--writers W] [--data DIR]`: how fast this disk
/// makes one write durable, and what that allows W closed-loop writers that each wait for
/// their own event to be durable.
///
/// One thread appends N aligned 4 KiB blocks to a preallocated file with `O_DIRECT | O_DSYNC`
/// (each `pwrite` returns once its block is on stable storage: the cheapest durable write this
/// disk offers, and what quiver's `durable` WAL issues per group). A writer that waits for its
/// own event can finish at most one event per such write, however many writers share it, so
/// W / (mean write latency) bounds any engine's fsync-per-write rate with W writers. Issuing
/// writes concurrently does not lift the bound: each one then takes longer (the second line,
/// W threads at once, shows by how much).
fn device_ceiling() -> Res<()> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let mut writes = 4000usize;
    let mut writers = 8usize;
    let mut data = PathBuf::from("quiver-compare-data");
    let mut it = std::env::args().skip(2);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--writes" => writes = val()?.parse()?,
            "--writers" => writers = val()?.parse()?,
            "--data" => data = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if writes == 0 || writers == 0 {
        return Err("--writes and --writers must be > 0".into());
    }
    std::fs::create_dir_all(&data)?;
    const BLOCK: usize = 4096;
    let run = |threads: usize| -> Res<(f64, Vec<f64>)> {
        let path = data.join(format!("device-ceiling-{threads}.bin"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(&path)?;
        // Preallocated and synced first, so the timed writes change no file metadata.
        file.set_len((threads * writes * BLOCK) as u64)?;
        let zeros = vec![0u8; 1 << 20];
        let plain = std::fs::OpenOptions::new().write(true).open(&path)?;
        for off in (0..threads * writes * BLOCK).step_by(zeros.len()) {
            let n = zeros.len().min(threads * writes * BLOCK - off);
            plain.write_all_at(&zeros[..n], off as u64)?;
        }
        plain.sync_all()?;
        let file = Arc::new(file);
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let file = Arc::clone(&file);
                std::thread::spawn(move || -> Res<Vec<f64>> {
                    let mut raw = vec![0x5au8; 2 * BLOCK];
                    let at = raw.as_ptr().align_offset(BLOCK);
                    let buf = &mut raw[at..at + BLOCK];
                    let mut lat = Vec::with_capacity(writes);
                    for i in 0..writes {
                        buf[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        let t0 = Instant::now();
                        file.write_all_at(buf, ((i * threads + t) * BLOCK) as u64)?;
                        lat.push(t0.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(lat)
                })
            })
            .collect();
        let mut lat = Vec::new();
        for h in handles {
            lat.extend(h.join().map_err(|_| "probe thread panicked")??);
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = std::fs::remove_file(&path);
        lat.sort_by(|x, y| x.total_cmp(y));
        Ok(((threads * writes) as f64 / secs, lat))
    };
    eprintln!("[device] {writes} O_DIRECT|O_DSYNC 4 KiB writes, 1 thread, then {writers} threads -> {}", data.display());
    let (one, lat1) = run(1)?;
    let (many, latn) = run(writers)?;
    let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
    println!(
        "{{\"bench\":\"device\",\"writes\":{writes},\"writers\":{writers},\"sync_writes_per_sec\":{one:.0},\
\"write_mean_us\":{:.1},\"write_p50_us\":{:.1},\"write_p99_us\":{:.1},\"ceiling_events_per_sec\":{:.0},\
\"concurrent_sync_writes_per_sec\":{many:.0},\"concurrent_write_mean_us\":{:.1}}}",
        mean(&lat1),
        percentile(&lat1, 0.5),
        percentile(&lat1, 0.99),
        writers as f64 * 1e6 / mean(&lat1),
        mean(&latn),
    );
    Ok(())
}
