//! Structure-aware mutation fuzz of every reader of on-disk data.
//!
//! Each target builds valid seed files, applies 1..=3 structure-aware mutations (header
//! fields set to boundary values, truncation, zeroed / duplicated ranges, bit flips),
//! recomputes the format's checksums (most of the time) so the reader gets past them, and
//! calls the reader inside `catch_unwind`. Panics are classified by location. A watchdog
//! aborts the process when one call takes longer than `FUZZ_HANG_SECS` (default 30), after
//! writing the mutation in progress to `$FUZZ_OUT/current-<target>.txt`.
//!
//! Iterations per target: `FUZZ_ITERS` (default 150, kept short for CI). Seed: `FUZZ_SEED` (default 1).
//! Run: `FUZZ_ITERS=3000 cargo test -p quiver-engine --test fuzz_readers -- --nocapture --test-threads 1`

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use quiver_engine::{Database, DbConfig, Id, Op, Preset, Record};

#[path = "it/copy.rs"]
mod copy;
use copy::copy_dir;

// ---------------------------------------------------------------------------------------------
// Infrastructure
// ---------------------------------------------------------------------------------------------

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();
static BEAT: AtomicU64 = AtomicU64::new(0);
static CURRENT: Mutex<String> = Mutex::new(String::new());

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn out_dir() -> PathBuf {
    // Cargo's scratch directory for integration tests (under target/): reused run after run.
    let p = std::env::var("FUZZ_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_readers"));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn install() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let loc = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                String::new()
            };
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{loc} | {msg}"));
        }));
        let hang: u64 = std::env::var("FUZZ_HANG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        BEAT.store(now_s(), Ordering::SeqCst);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let b = BEAT.load(Ordering::SeqCst);
            if b != 0 && now_s().saturating_sub(b) > hang {
                let cur = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
                eprintln!("HANG (> {hang}s) during: {cur}");
                std::process::exit(99);
            }
        });
    });
}

fn iters() -> usize {
    std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150)
}
fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

#[derive(Default)]
struct Stats {
    name: String,
    runs: usize,
    ok: usize,
    err: usize,
    panics: BTreeMap<String, (usize, String)>,
    wrong: BTreeMap<String, (usize, String)>,
    slow: Vec<(f64, String)>,
}

impl Stats {
    fn new(name: &str) -> Self {
        install();
        Stats {
            name: name.into(),
            ..Default::default()
        }
    }
    /// Runs `f`: Ok(true) = accepted, Ok(false) = typed error, Err(s) = wrong result `s`.
    fn run(&mut self, desc: &str, f: impl FnOnce() -> Result<bool, String>) {
        self.runs += 1;
        *CURRENT.lock().unwrap() = format!("[{}] {desc}", self.name);
        std::fs::write(out_dir().join(format!("current-{}.txt", self.name)), desc).ok();
        BEAT.store(now_s(), Ordering::SeqCst);
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(f));
        let dt = t.elapsed().as_secs_f64();
        if dt > 2.0 {
            self.slow.push((dt, desc.to_string()));
        }
        match r {
            Ok(Ok(true)) => self.ok += 1,
            Ok(Ok(false)) => self.err += 1,
            Ok(Err(w)) => {
                let key: String = w.chars().take(90).collect();
                let e = self
                    .wrong
                    .entry(key)
                    .or_insert((0, format!("{w} <= {desc}")));
                e.0 += 1;
            }
            Err(_) => {
                let p = LAST_PANIC.lock().unwrap().take().unwrap_or_default();
                let key = p.split(" | ").next().unwrap_or("").to_string();
                let e = self
                    .panics
                    .entry(key)
                    .or_insert((0, format!("{p} <= {desc}")));
                e.0 += 1;
            }
        }
    }
    fn report(&self) {
        let mut s = format!(
            "== {}: {} runs, {} accepted, {} typed errors, {} panic sites, {} wrong-result kinds\n",
            self.name,
            self.runs,
            self.ok,
            self.err,
            self.panics.len(),
            self.wrong.len()
        );
        for (k, (n, ex)) in &self.panics {
            s += &format!("  PANIC x{n} at {k}\n    e.g. {ex}\n");
        }
        for (k, (n, ex)) in &self.wrong {
            s += &format!("  WRONG x{n}: {k}\n    e.g. {ex}\n");
        }
        for (dt, d) in self.slow.iter().take(5) {
            s += &format!("  SLOW {dt:.1}s: {d}\n");
        }
        eprintln!("{s}");
        std::fs::write(out_dir().join(format!("report-{}.txt", self.name)), &s).ok();
        assert!(
            self.panics.is_empty() && self.wrong.is_empty(),
            "bad input must give a typed error, never a panic or a wrong result:\n{s}"
        );
        assert!(
            self.runs > 0 && self.err > 0,
            "the mutations reached the readers:\n{s}"
        );
    }
}

fn crc(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}
fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
}
fn get_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put_uint(b: &mut [u8], at: usize, w: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + w) {
        s.copy_from_slice(&v.to_le_bytes()[..w]);
    }
}
fn get_uint(b: &[u8], at: usize, w: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + w) {
        x[..w].copy_from_slice(s);
    }
    u64::from_le_bytes(x)
}

/// A field: (offset, width in bytes).
type Field = (usize, usize);

fn boundary(rng: &mut StdRng, w: usize, old: u64, len: usize) -> u64 {
    let max = if w == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * w)) - 1
    };
    let l = len as u64;
    let c = [
        0,
        1,
        2,
        max,
        max - 1,
        max / 2,
        max / 2 + 1,
        old.wrapping_add(1),
        old.wrapping_sub(1),
        old.wrapping_mul(2),
        old / 2,
        old.wrapping_add(60),
        old.wrapping_sub(60),
        l,
        l.wrapping_sub(1),
        l + 1,
        l.wrapping_sub(136),
        l.wrapping_sub(137),
        16,
        64,
        1 << 31,
        1 << 32,
        1 << 62,
        (1 << 62) + 1,
        i64::MAX as u64,
        i64::MIN as u64,
        rng.gen(),
        rng.gen_range(0..=l.max(1)),
    ];
    c[rng.gen_range(0..c.len())] & max
}

/// Applies one random mutation; returns its description.
fn mutate(rng: &mut StdRng, b: &mut Vec<u8>, fields: &[Field]) -> String {
    let len = b.len();
    let k = rng.gen_range(0..100);
    if (k < 55 && !fields.is_empty()) || len == 0 {
        if fields.is_empty() {
            b.push(rng.gen());
            return "append byte".into();
        }
        let (at, w) = fields[rng.gen_range(0..fields.len())];
        let old = get_uint(b, at, w);
        let v = boundary(rng, w, old, len);
        put_uint(b, at, w, v);
        return format!("set field @{at} w{w}: {old:#x} -> {v:#x}");
    }
    match k {
        55..=64 => {
            let n = rng.gen_range(0..len);
            b.truncate(n);
            format!("truncate to {n} (of {len})")
        }
        65..=72 => {
            let a = rng.gen_range(0..len);
            let cap = if rng.gen_bool(0.5) { 8 } else { 256 };
            let n = rng.gen_range(1..=(len - a).min(cap));
            b[a..a + n].fill(0);
            format!("zero {a}..{}", a + n)
        }
        73..=80 => {
            let at = rng.gen_range(0..len);
            let bit = rng.gen_range(0..8);
            b[at] ^= 1 << bit;
            format!("flip bit {bit} @{at}")
        }
        81..=87 => {
            let a = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - a).min(200));
            let dst = rng.gen_range(0..=len);
            let chunk = b[a..a + n].to_vec();
            b.splice(dst..dst, chunk);
            format!("duplicate {a}..{} at {dst}", a + n)
        }
        88..=93 => {
            let a = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - a).min(200));
            b.drain(a..a + n);
            format!("delete {a}..{}", a + n)
        }
        _ => {
            // Swap two equal-size ranges.
            let n = rng.gen_range(1..=len.min(64));
            let a = rng.gen_range(0..=len - n);
            let c = rng.gen_range(0..=len - n);
            let x = b[a..a + n].to_vec();
            let y = b[c..c + n].to_vec();
            b[a..a + n].copy_from_slice(&y);
            b[c..c + n].copy_from_slice(&x);
            format!("swap {a}..+{n} with {c}..+{n}")
        }
    }
}

/// 1..=3 mutations, then (usually) the checksum fix-up; returns the description.
fn mutate_many(
    rng: &mut StdRng,
    b: &mut Vec<u8>,
    fields: &[Field],
    fix: &dyn Fn(&mut [u8]),
) -> String {
    let n = rng.gen_range(1..=3);
    let mut d = Vec::new();
    for _ in 0..n {
        d.push(mutate(rng, b, fields));
    }
    if rng.gen_bool(0.85) {
        fix(b);
        d.push("crc fixed".into());
    }
    d.join("; ")
}

/// A fresh directory for `name`, unique per call: the tests run in parallel.
fn tmp(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let p = out_dir().join("work").join(format!("{name}-{n}"));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Seed database
// ---------------------------------------------------------------------------------------------

fn record(i: u64) -> Record {
    let id: Id = if i.is_multiple_of(3) {
        Id::from(format!("user-{}", i % 40).as_str())
    } else {
        Id::U64(i % 50)
    };
    let mut r = Record::new(id);
    if i.is_multiple_of(2) {
        r = r
            .with_timestamp(1_700_000_000_000_000_000 + (i as i64 * 7919 % 1000) * 1_000_000)
            .with_type("click")
            .with_source("web");
    }
    if i.is_multiple_of(5) {
        r = r.with_vector(vec![i as f32, 1.0, 2.0]);
    }
    r.with_payload(&serde_json::json!({"i": i, "pad": "x".repeat((i % 30) as usize)}))
}

/// A closed database with several segments, a drop log, checkpoints and receipts.
fn seed_db(compression: quiver_core::config::Compression) -> PathBuf {
    let dir = tmp(&format!("seed-db-{compression:?}"));
    let cfg = DbConfig::new(Preset::Balanced)
        .block_bytes(512)
        .compression(compression)
        .compaction_trigger(100)
        .checkpoint_every(50);
    let db = Database::open(&dir, cfg).unwrap();
    let mut i = 0u64;
    for round in 0..4 {
        let mut ops = Vec::new();
        for _ in 0..60 {
            i += 1;
            ops.push(Op::Put(record(i)));
        }
        ops.push(Op::Delete(Id::U64(7)));
        db.write_batch(&ops).unwrap();
        db.write_batch_with_receipt(&[Op::Put(record(1000 + round))])
            .unwrap();
        db.checkpoint().unwrap();
        db.flush().unwrap();
    }
    db.close().unwrap();
    dir
}

/// A database left open without flush: the WAL holds records (several files).
fn seed_wal() -> PathBuf {
    let dir = tmp("seed-wal");
    let cfg = DbConfig::new(Preset::Durable).wal_file_size(4096);
    let db = Database::open(&dir, cfg).unwrap();
    for b in 0..12u64 {
        let ops: Vec<Op> = (0..5).map(|j| Op::Put(record(b * 5 + j))).collect();
        db.write_batch(&ops).unwrap();
    }
    db.close_without_flush().unwrap();
    dir.join("wal")
}

// ---------------------------------------------------------------------------------------------
// Segment
// ---------------------------------------------------------------------------------------------

fn seg_key_len(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        0 => Some(9),
        1 => Some(5 + get_u32(b, at + 1)? as usize),
        _ => None,
    }
}

/// Field offsets of a segment file (header, footer, block index, dir, bloom, id index, rows).
fn seg_fields(b: &[u8]) -> Vec<Field> {
    let n = b.len();
    let mut f = vec![(8, 4), (12, 4)];
    if n < 152 {
        return f;
    }
    let foff = n - 136;
    for o in (0..56).step_by(8) {
        f.push((foff + o, 8));
    }
    for o in [56, 60, 64, 68, 120] {
        f.push((foff + o, 4));
    }
    for o in (72..120).step_by(8) {
        f.push((foff + o, 8));
    }
    let g = |i| get_u64(b, foff + i).unwrap() as usize;
    let (dir_off, dir_len, bi_off, bi_len, bloom_off) = (g(8), g(16), g(24), g(32), g(40));
    let mut p = bi_off;
    while p + 60 <= (bi_off + bi_len).min(foff) {
        for (o, w) in [
            (0, 8),
            (8, 4),
            (12, 4),
            (16, 4),
            (20, 1),
            (21, 1),
            (22, 2),
            (24, 4),
            (28, 8),
            (36, 8),
            (44, 8),
            (52, 8),
        ] {
            f.push((p + o, w));
        }
        // Rows of uncompressed blocks.
        if b.get(p + 20) == Some(&0) {
            let (off, len) = (
                get_u64(b, p).unwrap() as usize,
                get_u32(b, p + 8).unwrap() as usize,
            );
            let mut r = off;
            while r + 4 <= (off + len).min(n) {
                f.push((r, 4));
                f.push((r + 4, 8));
                f.push((r + 12, 1));
                f.push((r + 13, 1));
                f.push((r + 14, 4));
                let l = get_u32(b, r).unwrap() as usize;
                r += 4 + l;
            }
        }
        p += 60;
    }
    // Id directory and id-index entries.
    let mut p = dir_off;
    while p + 21 <= (dir_off + dir_len).min(foff) {
        for (o, w) in [(0, 8), (8, 4), (12, 4), (16, 4), (20, 1), (21, 4)] {
            f.push((p + o, w));
        }
        let (ioff, count) = (
            get_u64(b, p).unwrap() as usize,
            get_u32(b, p + 16).unwrap() as usize,
        );
        let mut q = ioff;
        for _ in 0..count.min(400) {
            let Some(kl) = seg_key_len(b, q) else { break };
            f.push((q, 1));
            f.push((q + 1, 4));
            f.push((q + kl, 8));
            f.push((q + kl + 8, 4));
            f.push((q + kl + 12, 4));
            q += kl + 16;
        }
        let Some(kl) = seg_key_len(b, p + 20) else {
            break;
        };
        p += 20 + kl;
    }
    for (o, w) in [(0, 4), (4, 4), (8, 8)] {
        f.push((bloom_off + o, w));
    }
    f.retain(|&(a, w)| a + w <= n);
    f
}

/// Recomputes every checksum of a segment file from its (possibly mutated) structure.
fn seg_fix(b: &mut [u8]) {
    let n = b.len();
    if n >= 16 {
        let c = crc(&b[..12]);
        put_u32(b, 12, c);
    }
    if n < 152 {
        return;
    }
    let foff = n - 136;
    let g = |b: &[u8], i| get_u64(b, foff + i).unwrap() as usize;
    let (dir_off, dir_len, bi_off, bi_len, bloom_off, bloom_len) =
        (g(b, 8), g(b, 16), g(b, 24), g(b, 32), g(b, 40), g(b, 48));
    let inb = |a: usize, l: usize| a.checked_add(l).is_some_and(|e| e <= foff);
    if inb(bi_off, bi_len) {
        let mut p = bi_off;
        while p + 60 <= bi_off + bi_len {
            let (off, len) = (
                get_u64(b, p).unwrap() as usize,
                get_u32(b, p + 8).unwrap() as usize,
            );
            if off.checked_add(len).is_some_and(|e| e <= n) {
                let c = crc(&b[off..off + len]);
                put_u32(b, p + 16, c);
            }
            p += 60;
        }
    }
    if inb(dir_off, dir_len) {
        let mut p = dir_off;
        while p + 21 <= dir_off + dir_len {
            let (off, len) = (
                get_u64(b, p).unwrap() as usize,
                get_u32(b, p + 8).unwrap() as usize,
            );
            if off.checked_add(len).is_some_and(|e| e <= n) {
                let c = crc(&b[off..off + len]);
                put_u32(b, p + 12, c);
            }
            let Some(kl) = seg_key_len(b, p + 20) else {
                break;
            };
            p += 20 + kl;
        }
    }
    for (o, a, l) in [
        (56, dir_off, dir_len),
        (60, bi_off, bi_len),
        (64, bloom_off, bloom_len),
    ] {
        if inb(a, l) {
            let c = crc(&b[a..a + l]);
            put_u32(b, foff + o, c);
        }
    }
    let c = crc(&b[foff..foff + 124]);
    put_u32(b, foff + 124, c);
}

/// Opens a (mutated) segment and exercises every read path; checks they agree when
/// `Segment::verify` accepts the file.
fn seg_exercise(p: &Path) -> Result<bool, String> {
    use quiver_segment::Segment;
    let Ok(seg) = Segment::open(p) else {
        return Ok(false);
    };
    let idx_ok = seg.check_id_index().is_ok();
    let verified = seg.verify().is_ok();
    let mut rows = Vec::new();
    let mut iter_err = false;
    for r in seg.iter() {
        match r {
            Ok(b) => rows.push(b),
            Err(_) => {
                iter_err = true;
                break;
            }
        }
    }
    let mut ts_rows = 0usize;
    let mut ts_err = false;
    for r in seg.scan_time_range(i64::MIN, i64::MAX) {
        match r {
            Ok(_) => ts_rows += 1,
            Err(_) => {
                ts_err = true;
                break;
            }
        }
    }
    let _ = seg
        .scan_time_range(1_700_000_000_100_000_000, 1_700_000_000_500_000_000)
        .count();
    let _ = seg.id_range();
    let _ = seg.shares_id_with(&seg, 10);
    // Decode every row; newest seq per id.
    let mut newest: BTreeMap<Id, (u64, Vec<u8>)> = BTreeMap::new();
    let mut want_ts = 0usize;
    let mut decode_err = false;
    for body in &rows {
        match quiver_core::codec::decode_entry(body) {
            Ok(e) => {
                if let Op::Put(r) = &e.op {
                    if r.timestamp_ns.is_some() {
                        want_ts += 1;
                    }
                }
                let id = e.op.id().unwrap().clone();
                let ent = newest.entry(id).or_insert((0, Vec::new()));
                if e.seq >= ent.0 {
                    *ent = (e.seq, body.clone());
                }
            }
            Err(_) => decode_err = true,
        }
    }
    let mut lookup_mismatch = None;
    for (id, (seq, body)) in &newest {
        let ns = seg.newest_seq(id);
        let g = seg.get(id);
        match (ns, g) {
            (Ok(Some(s)), Ok(Some(gb))) if s == *seq && gb == *body => {}
            (ns, g) => {
                lookup_mismatch = Some(format!(
                    "id {id}: newest_seq={:?} get={:?}, rows say seq {seq}",
                    ns.map_err(|e| e.to_string()),
                    g.map(|x| x.map(|b| b.len())).map_err(|e| e.to_string())
                ));
                break;
            }
        }
    }
    // Probe ids that are not there.
    for id in [
        Id::U64(999_999),
        Id::from("zz-not-there"),
        Id::U64(0),
        Id::U64(u64::MAX),
    ] {
        if let Ok(Some(_)) = seg.get(&id) {
            if verified && !newest.contains_key(&id) {
                return Err(format!(
                    "get({id}) found a row that iteration does not hold"
                ));
            }
        }
    }
    if verified {
        if iter_err {
            return Err("verify() ok but iter() errs".into());
        }
        if rows.len() as u64 != seg.meta().rows {
            return Err(format!(
                "verify() ok but iter gave {} rows, meta says {}",
                rows.len(),
                seg.meta().rows
            ));
        }
        if decode_err {
            return Err("verify() ok but a row does not decode".into());
        }
        if ts_err || ts_rows != want_ts {
            return Err(format!("verify() ok but time scan gave {ts_rows} rows (err {ts_err}), {want_ts} rows have timestamps"));
        }
        if let Some(m) = lookup_mismatch {
            return Err(format!("verify() ok but lookup disagrees: {m}"));
        }
    }
    let _ = idx_ok;
    Ok(verified)
}

fn fuzz_segments_with(compression: quiver_core::config::Compression, name: &str) {
    let db = seed_db(compression);
    let segs: Vec<PathBuf> = files_under(&db.join("segments"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert!(!segs.is_empty());
    let mut st = Stats::new(name);
    let mut rng = StdRng::seed_from_u64(seed());
    let work = tmp(name);
    // Sanity: the seeds verify and pass the oracle.
    for s in &segs {
        assert_eq!(seg_exercise(s), Ok(true), "seed {}", s.display());
    }
    let n = iters();
    for i in 0..n {
        let src = &segs[i % segs.len()];
        let mut b = std::fs::read(src).unwrap();
        let fields = seg_fields(&b);
        let d = mutate_many(&mut rng, &mut b, &fields, &seg_fix);
        let p = work.join("m.seg");
        std::fs::write(&p, &b).unwrap();
        let desc = format!(
            "iter {i} seg {}: {d}",
            src.file_name().unwrap().to_string_lossy()
        );
        st.run(&desc, || seg_exercise(&p));
    }
    // Truncation at every length of one segment (checksums not fixed).
    let b = std::fs::read(&segs[0]).unwrap();
    for l in 0..b.len() {
        let p = work.join("t.seg");
        std::fs::write(&p, &b[..l]).unwrap();
        st.run(&format!("truncate to {l}"), || seg_exercise(&p));
    }
    st.report();
}

#[test]
fn fuzz_segment() {
    fuzz_segments_with(quiver_core::config::Compression::None, "segment");
}

#[test]
fn fuzz_segment_lz4_zstd() {
    let n = iters() / 2;
    std::env::set_var("FUZZ_ITERS", n.to_string());
    fuzz_segments_with(quiver_core::config::Compression::Lz4, "segment-lz4");
    fuzz_segments_with(quiver_core::config::Compression::Zstd, "segment-zstd");
}

// ---------------------------------------------------------------------------------------------
// WAL
// ---------------------------------------------------------------------------------------------

fn wal_fields(b: &[u8]) -> Vec<Field> {
    let mut f = vec![(8, 4), (12, 4), (16, 8), (24, 8), (32, 4), (36, 4)];
    let mut p = 40;
    while p + 8 <= b.len() {
        let len = get_u32(b, p).unwrap() as usize;
        f.extend([(p, 4), (p + 4, 4), (p + 8, 8), (p + 16, 1), (p + 17, 1)]);
        if len == 0 {
            break;
        }
        p += 8 + len;
    }
    f.retain(|&(a, w)| a + w <= b.len());
    f
}

/// Recomputes the checksums of a file of `[len u32][crc32c u32][body]` frames after a
/// `header_len`-byte header whose own checksum covers its first `crc_over` bytes and sits
/// right after them (the WAL and the ledger's framed logs).
fn fix_frames(b: &mut [u8], crc_over: usize, header_len: usize) {
    if b.len() >= header_len {
        let c = crc(&b[..crc_over]);
        put_u32(b, crc_over, c);
    }
    let mut p = header_len;
    while p + 8 <= b.len() {
        let len = get_u32(b, p).unwrap() as usize;
        if len == 0 {
            break;
        }
        if p + 8 + len <= b.len() {
            let c = crc(&b[p + 8..p + 8 + len]);
            put_u32(b, p + 4, c);
        }
        p += 8 + len;
    }
}

fn wal_fix(b: &mut [u8]) {
    fix_frames(b, 32, 40);
}

fn wal_exercise(files: &[(String, Vec<u8>)]) -> Result<bool, String> {
    use quiver_wal::{MemStorage, Storage, Wal};
    let mk = || {
        let s = MemStorage::new();
        for (n, d) in files {
            s.put_file(n, d.clone());
        }
        s
    };
    let check = |recs: &[(u64, Vec<u8>)]| -> Result<(), String> {
        for w in recs.windows(2) {
            if w[1].0 != w[0].0 + 1 {
                return Err(format!(
                    "replayed seqs not contiguous: {} then {}",
                    w[0].0, w[1].0
                ));
            }
        }
        for (s, b) in recs {
            if b.len() < 8 || u64::from_le_bytes(b[..8].try_into().unwrap()) != *s {
                return Err("replayed body does not start with its seq".into());
            }
        }
        Ok(())
    };
    let s1 = mk();
    let mut ro = Vec::new();
    let r1 = quiver_wal::read_log(&s1 as &dyn Storage, 1, &mut |s, b| {
        ro.push((s, b.to_vec()));
        Ok(())
    });
    let s2: Arc<dyn Storage> = Arc::new(mk());
    let mut rw = Vec::new();
    let r2 = Wal::open(
        s2.clone(),
        quiver_core::config::WalConfig::for_preset(Preset::Balanced),
        None,
    )
    .and_then(|w| {
        w.replay(1, &mut |s, b| {
            rw.push((s, b.to_vec()));
            Ok(())
        })?;
        // Append after recovery and reopen: what was recovered must still be there.
        drop(w);
        Ok(())
    });
    if r1.is_ok() {
        check(&ro)?;
    }
    if r2.is_ok() {
        check(&rw)?;
        // Reopen the recovered storage: same records.
        let mut again = Vec::new();
        let r3 = Wal::open(
            s2.clone(),
            quiver_core::config::WalConfig::for_preset(Preset::Balanced),
            None,
        )
        .and_then(|w| {
            w.replay(1, &mut |s, b| {
                again.push((s, b.to_vec()));
                Ok(())
            })
        });
        match r3 {
            Ok(()) if again != rw => {
                return Err("second open replays other records than the first".into())
            }
            Err(e) => return Err(format!("second open of a recovered log fails: {e}")),
            _ => {}
        }
    }
    match (&r1, &r2) {
        (Ok(_), Ok(())) if ro != rw => Err(format!(
            "read_log gave {} records, Wal::open+replay {}",
            ro.len(),
            rw.len()
        )),
        (Ok(_), Err(e)) => Err(format!("read_log accepts, Wal::open rejects: {e}")),
        (Err(e), Ok(())) => Err(format!("read_log rejects ({e}), Wal::open accepts")),
        (Ok(_), Ok(())) => Ok(true),
        _ => Ok(false),
    }
}

#[test]
fn fuzz_wal() {
    let wal = seed_wal();
    let mut files: Vec<(String, Vec<u8>)> = files_under(&wal)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "want several WAL files, got {}",
        files.len()
    );
    let mut st = Stats::new("wal");
    assert_eq!(wal_exercise(&files), Ok(true));
    let mut rng = StdRng::seed_from_u64(seed());
    for i in 0..iters() {
        let mut fs = files.clone();
        let k = rng.gen_range(0..fs.len());
        let d = match rng.gen_range(0..20) {
            0 => {
                fs.remove(k);
                format!("remove file {k}")
            }
            1 => {
                let (n, d) = fs[k].clone();
                fs[k].1 = fs[(k + 1) % fs.len()].1.clone();
                let nx = (k + 1) % fs.len();
                fs[nx].1 = d;
                format!("swap contents of {n} and next")
            }
            _ => {
                let fields = wal_fields(&fs[k].1);
                let d = mutate_many(&mut rng, &mut fs[k].1, &fields, &wal_fix);
                format!("file {k}: {d}")
            }
        };
        st.run(&format!("iter {i} {d}"), || wal_exercise(&fs));
    }
    // Truncate the final file at every length.
    let last = files.len() - 1;
    for l in 0..files[last].1.len() {
        let mut fs = files.clone();
        fs[last].1.truncate(l);
        st.run(&format!("truncate final to {l}"), || wal_exercise(&fs));
    }
    st.report();
}

// ---------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------

fn framed_fields(b: &[u8]) -> Vec<Field> {
    let mut f = vec![(8, 2), (10, 2), (12, 4)];
    let mut p = 16;
    while p + 8 <= b.len() {
        let len = get_u32(b, p).unwrap() as usize;
        f.extend([
            (p, 4),
            (p + 4, 4),
            (p + 8, 8),
            (p + 16, 8),
            (p + 24, 8),
            (p + 32, 8),
        ]);
        if len == 0 {
            break;
        }
        p += 8 + len;
    }
    f.retain(|&(a, w)| a + w <= b.len());
    f
}

fn framed_fix(b: &mut [u8]) {
    fix_frames(b, 12, 16);
}

fn node_fix(b: &mut [u8]) {
    if b.len() >= 32 {
        let c = crc(&b[..28]);
        put_u32(b, 28, c);
    }
}
fn key_fix(b: &mut [u8]) {
    if b.len() >= 80 {
        let c = crc(&b[..76]);
        put_u32(b, 76, c);
    }
}

fn signing_key(data: &Path) -> ed25519_dalek::SigningKey {
    let k = std::fs::read(data.join("keys/node.ed25519")).unwrap();
    ed25519_dalek::SigningKey::from_bytes(&k[12..44].try_into().unwrap())
}

/// (offset, body length) of each whole frame after a `header_len`-byte header.
fn whole_frames(b: &[u8], header_len: usize) -> Vec<(usize, usize)> {
    let mut recs = Vec::new();
    let mut p = header_len;
    while p + 8 <= b.len() {
        let len = get_u32(b, p).unwrap() as usize;
        if len == 0 || p + 8 + len > b.len() {
            break;
        }
        recs.push((p, len));
        p += 8 + len;
    }
    recs
}

/// Rewrites the body of checkpoint records: mutates a line of the signed body and re-signs.
fn resign_checkpoints(
    rng: &mut StdRng,
    b: &mut Vec<u8>,
    key: &ed25519_dalek::SigningKey,
) -> String {
    let recs = whole_frames(b, 16);
    if recs.is_empty() {
        return "no records".into();
    }
    let (p, len) = recs[rng.gen_range(0..recs.len())];
    let note = String::from_utf8_lossy(&b[p + 8..p + 8 + len]).into_owned();
    let (body, _) = note.split_once("\n\n").unwrap_or((&note, ""));
    let mut lines: Vec<String> = body.lines().map(String::from).collect();
    let origin = lines[0].clone();
    let d = mutate_note_lines(rng, &mut lines);
    let text = lines.join("\n") + "\n";
    let new = quiver_ledger::sign_note(key, &origin, &text);
    let mut out = b[..p].to_vec();
    out.extend_from_slice(&(new.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(new.as_bytes()).to_le_bytes());
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&b[p + 8 + len..]);
    *b = out;
    format!("re-signed checkpoint @{p}: {d}")
}

fn mutate_note_lines(rng: &mut StdRng, lines: &mut Vec<String>) -> String {
    let nums = [
        "0",
        "1",
        "2",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "4611686018427387904",
        "01",
        "-1",
        "",
        " 1",
        "1 ",
        "+1",
        "99999999999999999999999",
    ];
    let i = rng.gen_range(0..lines.len().max(1));
    match rng.gen_range(0..6) {
        0 if lines.len() > 1 => {
            lines[1] = nums[rng.gen_range(0..nums.len())].into();
            format!("size line = {:?}", lines[1])
        }
        1 if lines.len() > 4 => {
            lines[4] = format!("timestamp {}", nums[rng.gen_range(0..nums.len())]);
            format!("ts line = {:?}", lines[4])
        }
        2 if lines.len() > 2 => {
            let roots = [
                "",
                "AAAA",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "=",
                "////////////////////////////////////////////8=",
            ];
            lines[2] = roots[rng.gen_range(0..roots.len())].into();
            format!("root line = {:?}", lines[2])
        }
        3 if lines.len() > 3 => {
            let h = [
                "hash sha256",
                "hash blake3",
                "hash md5",
                "hash",
                "hash  sha256",
            ];
            lines[3] = h[rng.gen_range(0..h.len())].into();
            format!("hash line = {:?}", lines[3])
        }
        4 => {
            lines.remove(i);
            format!("remove line {i}")
        }
        _ => {
            let l = lines[i].clone();
            lines.insert(i, l);
            format!("duplicate line {i}")
        }
    }
}

fn ledger_exercise(data: &Path) -> Result<bool, String> {
    use quiver_ledger::{Ledger, LedgerConfig};
    let (ld, kd) = (data.join("ledger"), data.join("keys"));
    let mut good = false;
    if let Ok(l) = Ledger::open_read_only(&ld, &kd) {
        if let Ok(rep) = l.verify_tree(&mut |_| {}) {
            good = rep.failure.is_none();
        }
        let size = l.size();
        for s in [
            0,
            1,
            size / 2,
            size.saturating_sub(1),
            size,
            size + 1,
            u64::MAX,
        ] {
            let _ = l.root_at(s);
            let _ = l.leaf_hash_at(s);
            let _ = l.inclusion_bundle(s, None);
            let _ = l.inclusion_bundle(s.max(1), Some(size));
            let _ = l.consistency_bundle(s, None);
            let _ = l.inclusion_proof(s, size);
            let _ = l.consistency_proof(s, size);
        }
        let _ = l.leaf_hashes(0).take(10_000).count();
    }
    let cfg = LedgerConfig {
        origin: origin_of(data),
        ..LedgerConfig::default()
    };
    if let Ok(l) = Ledger::open(&ld, &kd, cfg) {
        let _ = l.append(l.size() + 1, &[b"xxxxxxxxxbody"]);
        let _ = l.sync();
        let _ = l.checkpoint();
    }
    Ok(good)
}

fn origin_of(data: &Path) -> String {
    let m = std::fs::read(data.join("ledger/ledger.meta")).unwrap_or_default();
    String::from_utf8_lossy(m.get(25..).unwrap_or_default()).into_owned()
}

#[test]
fn fuzz_ledger() {
    let db = seed_db(quiver_core::config::Compression::None);
    let key = signing_key(&db);
    let mut st = Stats::new("ledger");
    let mut rng = StdRng::seed_from_u64(seed());
    let names: Vec<PathBuf> = files_under(&db.join("ledger"))
        .into_iter()
        .chain([db.join("keys/node.ed25519")])
        .collect();
    eprintln!("ledger files: {names:?}");
    let work = out_dir().join("work/ledger-m");
    for i in 0..iters() {
        let _ = std::fs::remove_dir_all(&work);
        copy_dir(&db, &work);
        let src = &names[rng.gen_range(0..names.len())];
        let rel = src.strip_prefix(&db).unwrap();
        let p = work.join(rel);
        let mut b = std::fs::read(&p).unwrap();
        let fname = rel.file_name().unwrap().to_string_lossy().into_owned();
        let d = if fname == "checkpoints.log" && rng.gen_bool(0.5) {
            resign_checkpoints(&mut rng, &mut b, &key)
        } else if fname.ends_with(".hashes") {
            let mut f = vec![(8, 2), (10, 1), (11, 1), (12, 8), (20, 8), (28, 4)];
            f.extend((32..b.len().min(32 * 40)).step_by(32).map(|o| (o, 8)));
            mutate_many(&mut rng, &mut b, &f, &node_fix)
        } else if fname == "node.ed25519" {
            let f = vec![(8, 2), (10, 2), (12, 8), (44, 8), (76, 4)];
            mutate_many(&mut rng, &mut b, &f, &key_fix)
        } else {
            let f = framed_fields(&b);
            mutate_many(&mut rng, &mut b, &f, &framed_fix)
        };
        std::fs::write(&p, &b).unwrap();
        let desc = format!("iter {i} {}: {d}", rel.display());
        st.run(&desc, || ledger_exercise(&work));
    }
    st.report();
}

// ---------------------------------------------------------------------------------------------
// Whole data directory: manifest, CURRENT, DROPPED, segments, ledger through verify_dir and
// the read-only and writable opens.
// ---------------------------------------------------------------------------------------------

fn manifest_mutate(rng: &mut StdRng, b: &mut Vec<u8>) -> String {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(b) else {
        return "unparsable".into();
    };
    let vals = [
        serde_json::json!(0),
        serde_json::json!(1),
        serde_json::json!(u64::MAX),
        serde_json::json!(i64::MAX),
        serde_json::json!(-1),
        serde_json::json!(1u64 << 62),
        serde_json::json!(999999),
        serde_json::json!(null),
        serde_json::json!("x"),
        serde_json::json!(1.5),
        serde_json::json!([]),
    ];
    let m = &mut v["manifest"];
    let keys = [
        "version",
        "number",
        "flushed_through",
        "next_segment_id",
        "ledger_alg",
    ];
    let d = match rng.gen_range(0..4) {
        0 => {
            let k = keys[rng.gen_range(0..keys.len())];
            let nv = vals[rng.gen_range(0..vals.len())].clone();
            m[k] = nv.clone();
            format!("manifest.{k} = {nv}")
        }
        1 => {
            let segs = m["segments"].as_array_mut().unwrap();
            if segs.is_empty() {
                return "no segments".into();
            }
            let i = rng.gen_range(0..segs.len());
            let ks = ["id", "rows", "min_seq", "max_seq", "bytes", "oldest"];
            let k = ks[rng.gen_range(0..ks.len())];
            let nv = vals[rng.gen_range(0..vals.len())].clone();
            segs[i][k] = nv.clone();
            format!("segments[{i}].{k} = {nv}")
        }
        2 => {
            let segs = m["segments"].as_array_mut().unwrap();
            if segs.is_empty() {
                return "no segments".into();
            }
            let i = rng.gen_range(0..segs.len());
            if rng.gen_bool(0.5) {
                let s = segs[i].clone();
                segs.insert(i, s);
                format!("duplicate segments[{i}]")
            } else {
                segs.remove(i);
                format!("remove segments[{i}]")
            }
        }
        _ => {
            let segs = m["segments"].as_array_mut().unwrap();
            if segs.len() < 2 {
                return "few segments".into();
            }
            let i = rng.gen_range(0..segs.len() - 1);
            segs.swap(i, i + 1);
            format!("swap segments[{i}] and next")
        }
    };
    let c = crc(serde_json::to_string(&v["manifest"]).unwrap().as_bytes());
    v["crc32c"] = serde_json::json!(c);
    *b = serde_json::to_vec(&v).unwrap();
    d
}

fn dropped_fix(b: &mut [u8]) {
    framed_fix(b); // same header (crc of 0..12 at 12) and record layout
}

/// Rewrites one drop-log record with mutated seqs, re-signed with the node key.
fn dropped_resign(
    rng: &mut StdRng,
    b: &mut Vec<u8>,
    key: &ed25519_dalek::SigningKey,
    origin: &str,
) -> String {
    use ed25519_dalek::Signer;
    let recs = whole_frames(b, 16);
    if recs.is_empty() {
        return "no records".into();
    }
    let (p, len) = recs[rng.gen_range(0..recs.len())];
    let body = &b[p + 8..p + 8 + len];
    let count = get_u64(body, 0).unwrap_or(0) as usize;
    let mut seqs: Vec<u64> = (0..count)
        .filter_map(|i| get_u64(body, 8 + 8 * i))
        .collect();
    let d = match rng.gen_range(0..5) {
        0 => {
            seqs.push(u64::MAX);
            "append seq u64::MAX".to_string()
        }
        1 if !seqs.is_empty() => {
            let i = rng.gen_range(0..seqs.len());
            seqs[i] = [0, 1, u64::MAX, 1 << 62, seqs[i] + 1000][rng.gen_range(0..5)];
            format!("seqs[{i}] = {}", seqs[i])
        }
        2 => {
            let hi = seqs.last().copied().unwrap_or(0);
            seqs.extend(hi + 1..hi + 50);
            "vouch 49 extra seqs".into()
        }
        3 => {
            seqs.clear();
            "empty".into()
        }
        _ => {
            seqs.reverse();
            "reverse".into()
        }
    };
    let mut msg = (seqs.len() as u64).to_le_bytes().to_vec();
    for s in &seqs {
        msg.extend_from_slice(&s.to_le_bytes());
    }
    let mut m = b"quiver signed record v1\n".to_vec();
    m.extend_from_slice(b"dropped seqs\n");
    m.extend_from_slice(origin.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(&msg);
    let sig = key.sign(&m).to_bytes();
    msg.extend_from_slice(&sig);
    let mut out = b[..p].to_vec();
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(&msg).to_le_bytes());
    out.extend_from_slice(&msg);
    out.extend_from_slice(&b[p + 8 + len..]);
    *b = out;
    format!("re-signed drop record @{p}: {d}")
}

fn dir_exercise(data: &Path) -> Result<bool, String> {
    let ok = match quiver_engine::verify::verify_dir(data, &mut |_| {}) {
        Ok(r) => r.ok(),
        Err(_) => false,
    };
    if let Ok(ro) = Database::open_read_only(data) {
        let _ = ro.scan_all();
        let _ = ro.get(&Id::U64(7));
        let _ = ro.get(&Id::from("user-3"));
        let _ = ro.stats();
    }
    let _ = quiver_engine::manifest::load(data);
    if let Ok(db) = Database::open(
        data,
        DbConfig::new(Preset::Balanced).compaction_trigger(100),
    ) {
        let _ = db.scan_all();
        let _ = db.write_batch(&[Op::Put(record(5))]);
        let _ = db.compact();
        let _ = db.close();
    }
    Ok(ok)
}

#[test]
fn fuzz_data_dir() {
    let db = seed_db(quiver_core::config::Compression::None);
    let key = signing_key(&db);
    let origin = origin_of(&db);
    assert!(dir_exercise(&db.clone()).is_ok());
    let mut st = Stats::new("datadir");
    let mut rng = StdRng::seed_from_u64(seed());
    let work = out_dir().join("work/dir-m");
    let all: Vec<PathBuf> = files_under(&db)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/wal/"))
        .collect();
    let mut weighted: Vec<PathBuf> = Vec::new();
    for p in &all {
        let n = p.file_name().unwrap().to_string_lossy();
        let w = if n.starts_with("MANIFEST") || n == "CURRENT" || n == "DROPPED" {
            6
        } else {
            1
        };
        for _ in 0..w {
            weighted.push(p.clone());
        }
    }
    eprintln!("data dir files: {all:?}");
    // Baseline: the pristine copy verifies.
    let _ = std::fs::remove_dir_all(&work);
    copy_dir(&db, &work);
    assert_eq!(dir_exercise(&work), Ok(true), "pristine copy must verify");
    for i in 0..iters() {
        let _ = std::fs::remove_dir_all(&work);
        copy_dir(&db, &work);
        let src = &weighted[rng.gen_range(0..weighted.len())];
        let rel = src.strip_prefix(&db).unwrap().to_path_buf();
        let p = work.join(&rel);
        let mut b = std::fs::read(&p).unwrap();
        let n = rel.file_name().unwrap().to_string_lossy().into_owned();
        let d = if n.starts_with("MANIFEST") && rng.gen_bool(0.7) {
            manifest_mutate(&mut rng, &mut b)
        } else if n == "CURRENT" {
            let opts = [
                "",
                "MANIFEST-",
                "MANIFEST-999999\n",
                "MANIFEST-000001",
                "../CURRENT\n",
                "MANIFEST-18446744073709551615\n",
                "manifest\n",
                "MANIFEST-00000a\n",
                "\n\n",
            ];
            let s = opts[rng.gen_range(0..opts.len())];
            b = s.as_bytes().to_vec();
            format!("CURRENT = {s:?}")
        } else if n == "DROPPED" && rng.gen_bool(0.5) {
            dropped_resign(&mut rng, &mut b, &key, &origin)
        } else if n == "DROPPED" {
            let f = framed_fields(&b);
            mutate_many(&mut rng, &mut b, &f, &dropped_fix)
        } else if n.ends_with(".seg") {
            let f = seg_fields(&b);
            mutate_many(&mut rng, &mut b, &f, &seg_fix)
        } else if n == "checkpoints.log" && rng.gen_bool(0.5) {
            resign_checkpoints(&mut rng, &mut b, &key)
        } else if n.ends_with(".log") || n == "ledger.meta" {
            let f = framed_fields(&b);
            mutate_many(&mut rng, &mut b, &f, &framed_fix)
        } else if n.ends_with(".hashes") {
            mutate_many(
                &mut rng,
                &mut b,
                &[(8, 2), (10, 1), (11, 1), (28, 4), (32, 8)],
                &node_fix,
            )
        } else if n == "node.ed25519" {
            mutate_many(
                &mut rng,
                &mut b,
                &[(8, 2), (10, 2), (12, 8), (44, 8)],
                &key_fix,
            )
        } else {
            mutate_many(&mut rng, &mut b, &[], &|_| {})
        };
        std::fs::write(&p, &b).unwrap();
        let desc = format!("iter {i} {}: {d}", rel.display());
        st.run(&desc, || dir_exercise(&work));
    }
    st.report();
}

// ---------------------------------------------------------------------------------------------
// Proof bundles, notes, vkeys, trust file
// ---------------------------------------------------------------------------------------------

#[test]
fn fuzz_proofs() {
    use quiver_ledger::{Ledger, ProofBundle, TrustStore};
    let db = seed_db(quiver_core::config::Compression::None);
    let key = signing_key(&db);
    let vk = key.verifying_key();
    let origin = origin_of(&db);
    let l = Ledger::open_read_only(&db.join("ledger"), &db.join("keys")).unwrap();
    let size = l.size();
    let inc =
        serde_json::to_value(ProofBundle::Inclusion(l.inclusion_bundle(3, None).unwrap())).unwrap();
    let cps: Vec<u64> = (1..=size)
        .filter(|&s| l.consistency_bundle(s, None).is_ok())
        .collect();
    let cons = serde_json::to_value(ProofBundle::Consistency(
        l.consistency_bundle(cps[0], None).unwrap(),
    ))
    .unwrap();
    eprintln!("tree size {size}, checkpoint sizes {cps:?}");
    let mut st = Stats::new("proofs");
    let mut rng = StdRng::seed_from_u64(seed());
    let work = tmp("proofs");
    let nums = [
        0u64,
        1,
        2,
        3,
        4,
        size - 1,
        size,
        size + 1,
        u64::MAX,
        u64::MAX - 1,
        1 << 63,
        1 << 32,
    ];
    for i in 0..iters() {
        let mut v = if rng.gen_bool(0.5) {
            inc.clone()
        } else {
            cons.clone()
        };
        let mut ds = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            let k = keys[rng.gen_range(0..keys.len())].clone();
            let d = match k.as_str() {
                "seq" | "leaf_index" | "tree_size" | "from" | "to" => {
                    let n = nums[rng.gen_range(0..nums.len())];
                    v[&k] = serde_json::json!(n);
                    format!("{k} = {n}")
                }
                "proof" if v[&k].is_array() => {
                    let a = v[&k].as_array_mut().unwrap();
                    match rng.gen_range(0..5) {
                        0 => {
                            a.clear();
                            "proof = []".into()
                        }
                        1 if !a.is_empty() => {
                            a.pop();
                            "proof.pop".into()
                        }
                        2 if !a.is_empty() => {
                            let x = a[0].clone();
                            for _ in 0..70 {
                                a.push(x.clone());
                            }
                            "proof += 70 hashes".into()
                        }
                        3 if !a.is_empty() => {
                            a.insert(0, a[0].clone());
                            "proof dup first".into()
                        }
                        _ => {
                            a.push(serde_json::json!("00"));
                            "proof push short hash".into()
                        }
                    }
                }
                "checkpoint" | "old_checkpoint" | "new_checkpoint" => {
                    let note = v[&k].as_str().unwrap().to_string();
                    if rng.gen_bool(0.6) && note.contains("\n\n") {
                        let (body, _) = note.split_once("\n\n").unwrap();
                        let mut lines: Vec<String> = body.lines().map(String::from).collect();
                        let d = mutate_note_lines(&mut rng, &mut lines);
                        let text = lines.join("\n") + "\n";
                        v[&k] = serde_json::json!(quiver_ledger::sign_note(&key, &origin, &text));
                        format!("{k}: re-signed, {d}")
                    } else {
                        let mut b = note.into_bytes();
                        let d = mutate(&mut rng, &mut b, &[]);
                        v[&k] = serde_json::json!(String::from_utf8_lossy(&b));
                        format!("{k}: bytes {d}")
                    }
                }
                "type" => {
                    v[&k] = serde_json::json!(if rng.gen_bool(0.5) {
                        "inclusion"
                    } else {
                        "consistency"
                    });
                    "type swapped".into()
                }
                "alg" => {
                    v[&k] = serde_json::json!(["sha256", "blake3", "md5", ""][rng.gen_range(0..4)]);
                    "alg".into()
                }
                _ => {
                    v[&k] = serde_json::json!("00");
                    format!("{k} = \"00\"")
                }
            };
            ds.push(d);
        }
        let desc = format!("iter {i}: {}", ds.join("; "));
        let text = serde_json::to_string(&v).unwrap();
        let trust = work.join(format!("trust-{}.json", i % 3));
        st.run(&desc, || {
            let Ok(b) = serde_json::from_str::<ProofBundle>(&text) else {
                return Ok(false);
            };
            let mut ts = match TrustStore::open(&trust) {
                Ok(t) => t,
                Err(_) => return Ok(false),
            };
            let r = match &b {
                ProofBundle::Inclusion(x) => {
                    let ok = x.verify(&vk).is_ok();
                    if ok && x.seq > x.tree_size {
                        return Err("inclusion bundle accepted with seq > tree_size".into());
                    }
                    ts.check_inclusion(&vk, x).is_ok()
                }
                ProofBundle::Consistency(x) => {
                    let _ = x.verify(&vk);
                    ts.check_consistency(&vk, x).is_ok()
                }
            };
            Ok(r)
        });
    }
    // Notes directly, byte mutations; vkeys; trust file contents.
    let note = inc["checkpoint"].as_str().unwrap().to_string();
    let vkey = quiver_ledger::vkey(&origin, &vk);
    for i in 0..iters() {
        let mut b = note.clone().into_bytes();
        let d = mutate_many(&mut rng, &mut b, &[], &|_| {});
        let s = String::from_utf8_lossy(&b).into_owned();
        st.run(&format!("note iter {i}: {d}"), || {
            Ok(quiver_ledger::verify::verify_checkpoint(&vk, &s).is_ok())
        });
        let mut k = vkey.clone().into_bytes();
        let d = mutate_many(&mut rng, &mut k, &[], &|_| {});
        let s = String::from_utf8_lossy(&k).into_owned();
        st.run(&format!("vkey iter {i}: {d}"), || {
            let _ = quiver_ledger::KeyInfo::from_vkey(&s);
            Ok(quiver_ledger::parse_public_key(&s).is_ok())
        });
    }
    // Trust file: a valid one, then mutated.
    let tf = work.join("trust-base.json");
    let _ = std::fs::remove_file(&tf);
    let b: ProofBundle = serde_json::from_value(inc.clone()).unwrap();
    if let ProofBundle::Inclusion(x) = &b {
        TrustStore::open(&tf)
            .unwrap()
            .check_inclusion(&vk, x)
            .unwrap();
    }
    let base = std::fs::read(&tf).unwrap();
    for i in 0..iters() {
        let mut b2 = base.clone();
        let d = if rng.gen_bool(0.5) {
            let mut v: serde_json::Value = serde_json::from_slice(&base).unwrap();
            let cp = v["checkpoint"].as_str().unwrap_or("").to_string();
            if let Some((body, _)) = cp.split_once("\n\n") {
                let mut lines: Vec<String> = body.lines().map(String::from).collect();
                let d = mutate_note_lines(&mut rng, &mut lines);
                v["checkpoint"] = serde_json::json!(quiver_ledger::sign_note(
                    &key,
                    &origin,
                    &(lines.join("\n") + "\n")
                ));
                b2 = serde_json::to_vec(&v).unwrap();
                d
            } else {
                "?".into()
            }
        } else {
            mutate_many(&mut rng, &mut b2, &[], &|_| {})
        };
        let p = work.join("trust-m.json");
        std::fs::write(&p, &b2).unwrap();
        let bb = b.clone();
        st.run(&format!("trust iter {i}: {d}"), || {
            let Ok(mut t) = TrustStore::open(&p) else {
                return Ok(false);
            };
            let _ = t.trusted();
            if let ProofBundle::Inclusion(x) = &bb {
                return Ok(t.check_inclusion(&vk, x).is_ok());
            }
            Ok(true)
        });
    }
    st.report();
}

// ---------------------------------------------------------------------------------------------
// Vector files: .vec, .hnsw, .ivfpq
// ---------------------------------------------------------------------------------------------

fn crc32_ieee(b: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn fuzz_vectors() {
    use quiver_vector::hnsw::{Hnsw, HnswParams, SearchParams};
    use quiver_vector::ivf::{IvfPqIndex, IvfPqParams};
    use quiver_vector::space::{F32Space, F32Vectors};
    use quiver_vector::vecfile::{ElemType, VecFile, VecFileWriter};
    let work = tmp("vectors");
    let dim = 8;
    let n = 300;
    let mut rng = StdRng::seed_from_u64(seed());
    let data: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let vp = work.join("base.vec");
    let mut w = VecFileWriter::create(&vp, dim, ElemType::F32).unwrap();
    for r in data.chunks(dim) {
        w.append_f32(r).unwrap();
    }
    w.finish().unwrap();
    let space = F32Space::from_vectors(quiver_core::Metric::L2, F32Vectors::open(&vp).unwrap());
    let h = Hnsw::build(&space, HnswParams::default()).unwrap();
    let hp = work.join("g.hnsw");
    h.save(&hp).unwrap();
    let ivf =
        IvfPqIndex::build(&data, dim, quiver_core::Metric::L2, IvfPqParams::new(4, 4)).unwrap();
    let ip = work.join("i.ivfpq");
    ivf.save(&ip).unwrap();
    let q: Vec<f32> = data[..dim].to_vec();

    let mut st = Stats::new("vectors");
    let vec_fix = |b: &mut [u8]| {
        if b.len() >= 64 {
            let c = crc(&b[64..]);
            put_u32(b, 32, c);
            let c = crc(&b[..36]);
            put_u32(b, 36, c);
        }
    };
    let hnsw_fix = |b: &mut [u8]| {
        if b.len() >= 64 {
            let c = crc(&b[64..]);
            put_u32(b, 56, c);
            let c = crc(&b[..60]);
            put_u32(b, 60, c);
        }
    };
    let ivf_fix = |b: &mut [u8]| {
        if b.len() >= 8 {
            let e = b.len() - 8;
            let c = crc32_ieee(&b[..e]);
            put_u32(b, e, c);
        }
    };
    let vbase = std::fs::read(&vp).unwrap();
    let hbase = std::fs::read(&hp).unwrap();
    let ibase = std::fs::read(&ip).unwrap();
    let mut hfields: Vec<Field> = vec![
        (8, 4),
        (12, 4),
        (16, 4),
        (20, 4),
        (24, 8),
        (32, 4),
        (36, 4),
        (40, 8),
        (48, 8),
    ];
    // levels section, some layer-0 counts and ids, some upper offsets.
    let sec = |x: usize| x.div_ceil(64) * 64;
    let m0 = get_u32(&hbase, 16).unwrap() as usize;
    let l0 = 64 + sec(n);
    let uo = l0 + sec(n * (m0 + 1) * 4);
    for i in 0..n {
        hfields.push((64 + i, 1));
        hfields.push((l0 + i * (m0 + 1) * 4, 4));
        hfields.push((l0 + i * (m0 + 1) * 4 + 4, 4));
        hfields.push((uo + i * 8, 8));
    }
    let mut ifields: Vec<Field> = vec![
        (8, 4),
        (12, 1),
        (13, 1),
        (14, 2),
        (16, 4),
        (20, 4),
        (24, 4),
        (28, 4),
        (32, 8),
    ];
    let off_at = 40 + 4 * 4 * dim + 1024 * dim;
    for l in 0..=4 {
        ifields.push((off_at + 8 * l, 8));
    }
    let ids_at = off_at + 8 * 5;
    for j in 0..40 {
        ifields.push((ids_at + 4 * j, 4));
        ifields.push((40 + 4 * j, 4));
    }
    for i in 0..iters() {
        // .vec
        let mut b = vbase.clone();
        let d = mutate_many(
            &mut rng,
            &mut b,
            &[
                (8, 4),
                (12, 4),
                (16, 4),
                (20, 4),
                (24, 8),
                (32, 4),
                (36, 4),
                (40, 8),
            ],
            &vec_fix,
        );
        let p = work.join("m.vec");
        std::fs::write(&p, &b).unwrap();
        st.run(&format!("vec iter {i}: {d}"), || {
            let Ok(f) = VecFile::open(&p) else {
                return Ok(false);
            };
            let _ = f.f32_data();
            let _ = f.data_bytes().len();
            let Ok(v) = F32Vectors::open(&p) else {
                return Ok(false);
            };
            let s = F32Space::from_vectors(quiver_core::Metric::L2, v);
            let _ = quiver_vector::flat::search(&s, &q, &quiver_vector::flat::FlatParams::k(5));
            Ok(true)
        });
        // .hnsw
        let mut b = hbase.clone();
        let d = mutate_many(&mut rng, &mut b, &hfields, &hnsw_fix);
        let p = work.join("m.hnsw");
        std::fs::write(&p, &b).unwrap();
        st.run(&format!("hnsw iter {i}: {d}"), || {
            let Ok(g) = Hnsw::open(&p) else {
                return Ok(false);
            };
            for ef in [1, 10, 64] {
                let _ = g.search(&space, &q, &SearchParams::new(10, ef));
            }
            Ok(true)
        });
        // .ivfpq
        let mut b = ibase.clone();
        let d = mutate_many(&mut rng, &mut b, &ifields, &ivf_fix);
        st.run(&format!("ivf iter {i}: {d}"), || {
            let Ok(x) = IvfPqIndex::from_bytes(&b, Path::new("m.ivfpq")) else {
                return Ok(false);
            };
            for np in [1, 4, 100] {
                let _ = x.search(&q, 10, np, None);
                let _ = x.search(&q, 10, np, Some((&data, 5)));
            }
            Ok(true)
        });
    }
    st.report();
}

// ---------------------------------------------------------------------------------------------
// Confirmations of single findings
// ---------------------------------------------------------------------------------------------

/// Sets the `len` of the first record of a framed log (ledger logs, DROPPED) to run past the
/// end of the file (no checksum touched: `len` is not covered by one) and opens the database
/// for writing. Reports what happened to the records after it.
#[test]
fn confirm_forged_len_cuts_later_records() {
    let db = seed_db(quiver_core::config::Compression::None);
    for rel in ["ledger/receipts.log", "ledger/checkpoints.log", "DROPPED"] {
        let work = out_dir().join(format!("work/confirm-{}", rel.replace('/', "-")));
        let _ = std::fs::remove_dir_all(&work);
        copy_dir(&db, &work);
        let p = work.join(rel);
        let mut b = std::fs::read(&p).unwrap();
        let before = b.len();
        let n_recs = {
            let mut c = 0;
            let mut q = 16;
            while q + 8 <= b.len() {
                q += 8 + get_u32(&b, q).unwrap() as usize;
                c += 1;
            }
            c
        };
        let forged = (b.len() - 16) as u32; // runs past EOF by 8 bytes, well under 1 MiB
        put_u32(&mut b, 16, forged);
        std::fs::write(&p, &b).unwrap();
        let v1 = quiver_engine::verify::verify_dir(&work, &mut |_| {})
            .map(|r| format!("ok={} {:?}", r.ok(), r))
            .unwrap_or_else(|e| format!("Err({e})"));
        let open = Database::open(
            &work,
            DbConfig::new(Preset::Balanced).compaction_trigger(100),
        );
        let opened = open.is_ok();
        let mut receipt = String::new();
        if let Ok(db2) = open {
            if rel.ends_with("receipts.log") {
                let (_, r) = db2
                    .write_batch_with_receipt(&[Op::Put(record(77))])
                    .unwrap();
                receipt = format!("new receipt id {}", r.id);
            }
            db2.close().unwrap();
        }
        let after = std::fs::read(&p).unwrap().len();
        let v2 = quiver_engine::verify::verify_dir(&work, &mut |_| {})
            .map(|r| format!("ok={}", r.ok()))
            .unwrap_or_else(|e| format!("Err({e})"));
        let what = format!("{rel}: {n_recs} records, {before} bytes; first len forged to {forged}\n  verify before open: {}\n  Database::open ok={opened}; file now {after} bytes; {receipt}\n  verify after: {v2}", &v1[..v1.len().min(400)]);
        // A damaged length is damage, not a torn tail: reported, and nothing is cut. The
        // ledger refuses to open over it; a damaged drop log is left for verify to report.
        assert!(v1.starts_with("ok=false"), "{what}");
        assert_eq!(opened, rel == "DROPPED", "{what}");
        assert_eq!(after, before, "{what}");
        assert_eq!(v2, "ok=false", "{what}");
    }
}
