//! Concurrency / restart stress of the embedded API with the ledger on, checked against an
//! oracle: leaf i == H(0x00 ‖ record seq i+1 as written), receipts, checkpoints, proofs,
//! reads during flush/compaction, close+reopen in the middle.
//!
//! Knobs (env): STRESS_SECS (default 1), STRESS_SEEDS (default 2), STRESS_WRITERS (default 6),
//! STRESS_ROUNDS (crash rounds per preset, default 3). Longer runs: e.g. `STRESS_SECS=4
//! STRESS_SEEDS=3 STRESS_ROUNDS=10`.

use parking_lot::{Mutex, RwLock};
use quiver_core::{codec, DbConfig, Id, Op, Preset, Record};
use quiver_engine::Database;
use quiver_ledger::{leaf_hash, verify, Hash, HashAlg, Receipt};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

struct Acked {
    first: u64,
    last: u64,
    ops: Vec<Op>,
    receipt: Option<Receipt>,
}

struct Scan {
    /// last_seq before the scan started: everything up to it was applied.
    floor: u64,
    rows: Vec<(Id, u64)>,
}

struct Shared {
    dir: PathBuf,
    cfg: DbConfig,
    db: RwLock<Option<Database>>,
    acked: Mutex<Vec<Acked>>,
    scans: Mutex<Vec<Scan>>,
    incl_seen: Mutex<Vec<(u64, Hash)>>,
    cps_seen: Mutex<Vec<(u64, Hash)>>,
    stop: AtomicBool,
    errors: Mutex<Vec<String>>,
    reopens: AtomicU64,
    proofs: AtomicU64,
    receipts_checked: AtomicU64,
    /// Last seq made durable by a close (WAL synced): a checkpoint may cover it.
    sealed: AtomicU64,
}

impl Shared {
    fn err(&self, s: String) {
        let mut e = self.errors.lock();
        if e.len() < 50 {
            eprintln!("ERROR: {s}");
            e.push(s);
        }
    }
}

fn env(name: &str, d: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn body(op: &Op, seq: u64) -> Vec<u8> {
    let mut b = codec::encode_op(op).unwrap();
    codec::stamp_seq(&mut b, seq);
    b
}

fn rand_op(rng: &mut StdRng, w: u64, n: u64) -> Op {
    let id = match rng.gen_range(0..10) {
        0..=5 => Id::U64((w + 1) * 1_000_000 + rng.gen_range(0..40)),
        6..=8 => Id::U64(rng.gen_range(0..16)),
        _ => Id::Str(format!("s-{}", rng.gen_range(0..8))),
    };
    if rng.gen_range(0..8) == 0 {
        return Op::Delete(id);
    }
    let mut r = Record::new(id).with_payload(
        &serde_json::json!({"w": w, "n": n, "pad": "x".repeat(rng.gen_range(0..200))}),
    );
    if rng.gen_bool(0.6) {
        r = r
            .with_timestamp(rng.gen_range(0..1_000_000i64))
            .with_type("ev");
    }
    r.into_op()
}

trait IntoOp {
    fn into_op(self) -> Op;
}
impl IntoOp for Record {
    fn into_op(self) -> Op {
        Op::Put(self)
    }
}

fn op_id(op: &Op) -> Id {
    op.id().unwrap().clone()
}

fn writer(sh: &Shared, w: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed * 1000 + w);
    let mut n = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        let size = match rng.gen_range(0..10) {
            0..=3 => 1,
            4..=8 => rng.gen_range(2..20),
            _ => rng.gen_range(50..300),
        };
        let ops: Vec<Op> = (0..size)
            .map(|_| {
                n += 1;
                rand_op(&mut rng, w, n)
            })
            .collect();
        let want_receipt = rng.gen_bool(0.3);
        let g = sh.db.read();
        let Some(db) = g.as_ref() else { continue };
        let res = if want_receipt {
            db.write_batch_with_receipt(&ops)
                .map(|(r, rc)| (r, Some(rc)))
        } else {
            db.write_batch(&ops).map(|r| (r, None))
        };
        let (range, receipt) = match res {
            Ok(v) => v,
            Err(e) => {
                sh.err(format!("writer {w}: write failed: {e}"));
                return;
            }
        };
        if range.last - range.first + 1 != ops.len() as u64 {
            sh.err(format!("writer {w}: range {range:?} for {} ops", ops.len()));
        }
        if let Some(rc) = &receipt {
            if (rc.first_seq, rc.last_seq) != (range.first, range.last) {
                sh.err(format!(
                    "receipt range {}..{} != {range:?}",
                    rc.first_seq, rc.last_seq
                ));
            }
        }
        // Read-your-writes on an id only this writer touches.
        let owned: Vec<(usize, &Op)> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(op_id(o), Id::U64(x) if x / 1_000_000 == w + 1))
            .collect();
        if let Some(&(_, o)) = owned.last() {
            let id = op_id(o);
            let (idx, newest) = ops
                .iter()
                .enumerate()
                .rfind(|(_, x)| op_id(x) == id)
                .unwrap();
            let want_seq = range.first + idx as u64;
            match (db.get(&id), newest) {
                (Ok(Some(e)), Op::Put(_)) if e.seq == want_seq && &e.op == newest => {}
                (Ok(None), Op::Delete(_)) => {}
                (got, _) => sh.err(format!(
                    "writer {w}: get({id:?}) after ack gave {:?}, want seq {want_seq} {}",
                    got.map(|o| o.map(|e| e.seq)),
                    if matches!(newest, Op::Delete(_)) {
                        "deleted"
                    } else {
                        "put"
                    }
                )),
            }
        }
        drop(g);
        sh.acked.lock().push(Acked {
            first: range.first,
            last: range.last,
            ops,
            receipt,
        });
    }
}

fn reader(sh: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xabc);
    while !sh.stop.load(Ordering::Relaxed) {
        let g = sh.db.read();
        let Some(db) = g.as_ref() else { continue };
        if rng.gen_bool(0.5) {
            let floor = db.last_seq();
            match db.scan_all() {
                Ok(v) => {
                    let mut prev = 0;
                    let mut ids = std::collections::HashSet::new();
                    for e in &v {
                        if e.seq <= prev {
                            sh.err(format!("scan not in seq order: {} after {prev}", e.seq));
                        }
                        prev = e.seq;
                        if matches!(e.op, Op::Delete(_)) {
                            sh.err(format!("scan returned a tombstone at {}", e.seq));
                        }
                        if !ids.insert(op_id(&e.op)) {
                            sh.err(format!("scan returned id {:?} twice", op_id(&e.op)));
                        }
                    }
                    let rows = v.iter().map(|e| (op_id(&e.op), e.seq)).collect();
                    let mut s = sh.scans.lock();
                    if s.len() < 400 {
                        s.push(Scan { floor, rows });
                    }
                }
                Err(e) => sh.err(format!("scan failed: {e}")),
            }
        } else {
            let mut n = 0;
            let r = db.scan_time_range(100_000, 600_000, &mut |e| {
                n += 1;
                match &e.op {
                    Op::Put(r)
                        if r.timestamp_ns
                            .is_some_and(|t| (100_000..600_000).contains(&t)) => {}
                    _ => {
                        return Err(quiver_engine::EngineError::Closed {
                            reason: format!("bad time scan row {}", e.seq),
                        })
                    }
                }
                Ok(true)
            });
            if let Err(e) = r {
                sh.err(format!("time scan: {e}"));
            }
        }
        drop(g);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..5)));
    }
}

fn maint(sh: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x77);
    while !sh.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..60)));
        let g = sh.db.read();
        let Some(db) = g.as_ref() else { continue };
        let r = match rng.gen_range(0..3) {
            0 => db.flush().map(|_| "flush"),
            1 => db.compact().map(|_| "compact"),
            // Under throughput an explicit checkpoint syncs the WAL and may legitimately go
            // past flushed_through, which the prover's durability check would flag.
            _ if sh.cfg.wal.sync == quiver_core::SyncMode::None => Ok("skip"),
            _ => db.checkpoint().map(|_| "checkpoint"),
        };
        if let Err(e) = r {
            sh.err(format!("maintenance failed: {e}"));
        }
    }
}

fn prover(sh: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x99);
    while !sh.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..4)));
        let g = sh.db.read();
        let Some(db) = g.as_ref() else { continue };
        let l = db.ledger().unwrap().clone();
        let pk = l.public_key();
        let alg = l.alg();
        // Durability: a checkpoint covers only durable data.
        if let Some(cp) = l.latest_checkpoint() {
            let c = match verify::verify_checkpoint(&pk, &cp.note) {
                Ok(c) => c,
                Err(e) => {
                    sh.err(format!("latest checkpoint does not verify: {e}"));
                    continue;
                }
            };
            sh.cps_seen.lock().push((c.size, c.root));
            if sh.cfg.wal.sync == quiver_core::SyncMode::None {
                let ft = db.stats().unwrap().flushed_through;
                if c.size > ft.max(sh.sealed.load(Ordering::SeqCst)) {
                    sh.err(format!(
                        "throughput: checkpoint size {} > flushed_through {ft}",
                        c.size
                    ));
                }
            } else if c.size > db.last_seq() {
                sh.err(format!(
                    "checkpoint size {} > last_seq {}",
                    c.size,
                    db.last_seq()
                ));
            }
            if c.size > 0 {
                let seq = rng.gen_range(1..=c.size);
                match l.inclusion_bundle(seq, None) {
                    Ok(b) => {
                        if let Err(e) = b.verify(&pk) {
                            sh.err(format!("inclusion bundle seq {seq} fails: {e}"));
                        }
                        sh.incl_seen.lock().push((seq, b.leaf_hash));
                    }
                    Err(e) => sh.err(format!("inclusion_bundle({seq}): {e}")),
                }
            }
        }
        // Arbitrary sizes, against root_at.
        let size = l.size();
        if size > 0 {
            let t = rng.gen_range(1..=size);
            let idx = rng.gen_range(0..t);
            let r = (|| -> quiver_ledger::Result<()> {
                let p = l.inclusion_proof(idx, t)?;
                let root = l.root_at(t)?;
                let lh = l.leaf_hash_at(idx)?;
                verify::verify_inclusion(alg, &lh, idx, t, &p.path, &root)?;
                let a = rng.gen_range(0..=t);
                let c = l.consistency_proof(a, t)?;
                let ra = l.root_at(a)?;
                verify::verify_consistency(alg, a, t, &c.path, &ra, &root)?;
                Ok(())
            })();
            if let Err(e) = r {
                sh.err(format!("proof at size {t}: {e}"));
            }
        }
        if rng.gen_range(0..10) == 0 {
            match l.checkpoints() {
                Ok(cps) if cps.len() >= 2 => {
                    let i = rng.gen_range(0..cps.len() - 1);
                    let j = rng.gen_range(i + 1..cps.len());
                    let (a, b) = (&cps[i].checkpoint, &cps[j].checkpoint);
                    match l.consistency_bundle(a.size, Some(b.size)) {
                        Ok(bun) => {
                            if let Err(e) = bun.verify(&pk) {
                                sh.err(format!("consistency bundle {}->{}: {e}", a.size, b.size));
                            }
                        }
                        Err(e) => sh.err(format!("consistency_bundle {}->{}: {e}", a.size, b.size)),
                    }
                }
                Ok(_) => {}
                Err(e) => sh.err(format!("checkpoints(): {e}")),
            }
        }
        // Receipts of acked batches.
        let pick = {
            let a = sh.acked.lock();
            let with: Vec<&Acked> = a.iter().filter(|x| x.receipt.is_some()).collect();
            if with.is_empty() {
                None
            } else {
                let x = with[rng.gen_range(0..with.len())];
                Some((x.receipt.clone().unwrap(), rng.gen_range(x.first..=x.last)))
            }
        };
        if let Some((rc, seq)) = pick {
            sh.receipts_checked.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = verify::verify_receipt(&pk, &rc) {
                sh.err(format!("receipt {} does not verify: {e}", rc.id));
            }
            match l.receipt_by_id(rc.id) {
                Ok(Some(r)) if r == rc => {}
                other => sh.err(format!("receipt_by_id({}) = {other:?}, want {rc:?}", rc.id)),
            }
            match l.receipt_for_seq(seq) {
                Ok(Some(r)) if r == rc => {}
                other => sh.err(format!("receipt_for_seq({seq}) = {other:?}, want {rc:?}")),
            }
            match l.root_at(rc.tree_size) {
                Ok(root) if root == rc.root => {}
                other => sh.err(format!(
                    "receipt {} root != root_at({}): {other:?}",
                    rc.id, rc.tree_size
                )),
            }
        }
        sh.proofs.fetch_add(1, Ordering::Relaxed);
    }
}

fn reopener(sh: &Shared, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x55);
    while !sh.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..900)));
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let mut g = sh.db.write();
        let db = g.take().unwrap();
        let last = db.last_seq();
        let r = if rng.gen_bool(0.5) {
            db.close()
        } else {
            db.close_without_flush()
        };
        if let Err(e) = r {
            sh.err(format!("close: {e}"));
        }
        sh.sealed.store(last, Ordering::SeqCst);
        match Database::open(&sh.dir, sh.cfg.clone()) {
            Ok(db) => {
                if db.last_seq() != last {
                    sh.err(format!("reopen: last_seq {} != {last}", db.last_seq()));
                }
                let ls = db.ledger().unwrap().size();
                if ls != last {
                    sh.err(format!("reopen: ledger size {ls} != last_seq {last}"));
                }
                *g = Some(db);
            }
            Err(e) => {
                sh.err(format!("reopen failed: {e}"));
                sh.stop.store(true, Ordering::Relaxed);
                return;
            }
        }
        sh.reopens.fetch_add(1, Ordering::Relaxed);
    }
}

fn run_one(seed: u64, cfg: DbConfig, label: &str) {
    let secs = env("STRESS_SECS", 1);
    let writers = env("STRESS_WRITERS", 6);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let db = Database::open(&dir, cfg.clone()).unwrap();
    let sh = Arc::new(Shared {
        dir: dir.clone(),
        cfg: cfg.clone(),
        db: RwLock::new(Some(db)),
        acked: Mutex::new(Vec::new()),
        scans: Mutex::new(Vec::new()),
        incl_seen: Mutex::new(Vec::new()),
        cps_seen: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        errors: Mutex::new(Vec::new()),
        reopens: AtomicU64::new(0),
        proofs: AtomicU64::new(0),
        receipts_checked: AtomicU64::new(0),
        sealed: AtomicU64::new(0),
    });
    let mut hs = Vec::new();
    for w in 0..writers {
        let s = sh.clone();
        hs.push(std::thread::spawn(move || writer(&s, w, seed)));
    }
    for k in 0..2 {
        let s = sh.clone();
        hs.push(std::thread::spawn(move || reader(&s, seed + k)));
    }
    {
        let s = sh.clone();
        hs.push(std::thread::spawn(move || maint(&s, seed)));
        let s = sh.clone();
        hs.push(std::thread::spawn(move || prover(&s, seed)));
        let s = sh.clone();
        hs.push(std::thread::spawn(move || reopener(&s, seed)));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) && !sh.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    sh.stop.store(true, Ordering::Relaxed);
    for h in hs {
        if h.join().is_err() {
            sh.err("a thread panicked".into());
        }
    }
    let db = sh.db.write().take().unwrap();
    final_checks(&sh, &db, label);
    db.close().unwrap();
    // And once more after a clean reopen.
    let db = Database::open(&dir, cfg.clone()).unwrap();
    final_checks(&sh, &db, label);
    db.close().unwrap();
    let rep = quiver_engine::verify::verify_dir(&dir, &mut |_| {}).unwrap();
    if !rep.ok() {
        sh.err(format!("verify_dir: {:?}", rep.failure));
    }
    let acked = sh.acked.lock();
    let nrec: usize = acked.iter().map(|a| a.ops.len()).sum();
    eprintln!(
        "[{label} seed {seed}] batches {} records {nrec} receipts {} reopens {} proofs {} receipts_checked {} scans {}",
        acked.len(),
        acked.iter().filter(|a| a.receipt.is_some()).count(),
        sh.reopens.load(Ordering::Relaxed),
        sh.proofs.load(Ordering::Relaxed),
        sh.receipts_checked.load(Ordering::Relaxed),
        sh.scans.lock().len(),
    );
    let errs = sh.errors.lock();
    assert!(
        errs.is_empty(),
        "[{label} seed {seed}] {} errors, first: {:#?}",
        errs.len(),
        &errs[..errs.len().min(10)]
    );
}

fn final_checks(sh: &Shared, db: &Database, label: &str) {
    let l = db.ledger().unwrap().clone();
    let alg: HashAlg = l.alg();
    let pk = l.public_key();
    let mut acked = sh.acked.lock();
    acked.sort_by_key(|a| a.first);
    // Disjoint, contiguous, all seqs.
    let mut next = 1;
    let mut by_seq: Vec<&Op> = Vec::new();
    for a in acked.iter() {
        if a.first != next {
            sh.err(format!(
                "{label}: acked ranges not contiguous: expected {next}, got {}..{}",
                a.first, a.last
            ));
        }
        next = a.last + 1;
        by_seq.extend(a.ops.iter());
    }
    let last = next - 1;
    if db.last_seq() != last {
        sh.err(format!(
            "{label}: last_seq {} != acked through {last}",
            db.last_seq()
        ));
    }
    if l.size() != last {
        sh.err(format!("{label}: ledger size {} != {last}", l.size()));
    }
    // Leaf i == H(record seq i+1).
    let mut bad = 0;
    for (i, op) in by_seq.iter().enumerate() {
        let seq = i as u64 + 1;
        let want = leaf_hash(alg, &body(op, seq));
        match l.leaf_hash_at(i as u64) {
            Ok(h) if h == want => {}
            other => {
                bad += 1;
                if bad < 5 {
                    sh.err(format!(
                        "{label}: leaf {i} = {other:?}, want H(seq {seq}) {want:?}"
                    ));
                }
            }
        }
    }
    if bad > 0 {
        sh.err(format!("{label}: {bad} bad leaves"));
    }
    for (seq, h) in sh.incl_seen.lock().iter() {
        let want = leaf_hash(alg, &body(by_seq[*seq as usize - 1], *seq));
        if *h != want {
            sh.err(format!(
                "{label}: inclusion bundle for seq {seq} served a wrong leaf hash"
            ));
        }
    }
    // Receipts.
    let mut ids = std::collections::HashSet::new();
    for a in acked.iter() {
        let Some(rc) = &a.receipt else { continue };
        if !ids.insert(rc.id) {
            sh.err(format!("{label}: receipt id {} issued twice", rc.id));
        }
        if rc.tree_size < rc.last_seq {
            sh.err(format!(
                "{label}: receipt {} tree {} < last {}",
                rc.id, rc.tree_size, rc.last_seq
            ));
        }
        if let Err(e) = verify::verify_receipt(&pk, rc) {
            sh.err(format!("{label}: receipt {}: {e}", rc.id));
        }
        match l.root_at(rc.tree_size) {
            Ok(r) if r == rc.root => {}
            other => sh.err(format!(
                "{label}: receipt {} root mismatch at {}: {other:?}",
                rc.id, rc.tree_size
            )),
        }
        match l.receipt_by_id(rc.id) {
            Ok(Some(r)) if &r == rc => {}
            other => sh.err(format!("{label}: receipt_by_id({}) = {other:?}", rc.id)),
        }
        for s in [a.first, a.last] {
            match l.receipt_for_seq(s) {
                Ok(Some(r)) if &r == rc => {}
                other => sh.err(format!(
                    "{label}: receipt_for_seq({s}) = {other:?}, want id {}",
                    rc.id
                )),
            }
        }
    }
    if l.receipt_count() != ids.len() as u64 {
        sh.err(format!(
            "{label}: receipt_count {} != issued {}",
            l.receipt_count(),
            ids.len()
        ));
    }
    // Checkpoints: monotone, consistent, roots match the tree.
    let cps = l.checkpoints().unwrap();
    let mut by_size: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut prev: Option<(u64, Hash, u64)> = None;
    for cp in &cps {
        let c = &cp.checkpoint;
        if let Some((ps, pr, pt)) = prev {
            if c.size < ps {
                sh.err(format!(
                    "{label}: checkpoint size went back {ps} -> {}",
                    c.size
                ));
            }
            if c.size == ps && c.root != pr {
                sh.err(format!(
                    "{label}: two checkpoints of size {ps} with different roots"
                ));
            }
            if c.timestamp_ms < pt {
                sh.err(format!("{label}: checkpoint timestamp went back"));
            }
            if c.size > ps {
                let p = l.consistency_proof(ps, c.size).unwrap();
                if let Err(e) = verify::verify_consistency(alg, ps, c.size, &p.path, &pr, &c.root) {
                    sh.err(format!(
                        "{label}: checkpoints {ps} -> {} inconsistent: {e}",
                        c.size
                    ));
                }
            }
        }
        match l.root_at(c.size) {
            Ok(r) if r == c.root => {}
            other => sh.err(format!(
                "{label}: checkpoint {} root mismatch: {other:?}",
                c.size
            )),
        }
        by_size.insert(c.size, c.root);
        prev = Some((c.size, c.root, c.timestamp_ms));
    }
    for (s, r) in sh.cps_seen.lock().iter() {
        match by_size.get(s) {
            Some(x) if x == r => {}
            other => sh.err(format!(
                "{label}: observed checkpoint ({s}) not in the log as seen: {other:?}"
            )),
        }
    }
    // Newest acked version per id.
    let mut newest: HashMap<Id, (u64, &Op)> = HashMap::new();
    for (i, op) in by_seq.iter().enumerate() {
        newest.insert(op_id(op), (i as u64 + 1, op));
    }
    for (id, (seq, op)) in &newest {
        match (db.get(id), op) {
            (Ok(Some(e)), Op::Put(_)) if e.seq == *seq && &&e.op == op => {}
            (Ok(None), Op::Delete(_)) => {}
            (got, _) => sh.err(format!(
                "{label}: final get({id:?}) = {:?}, want seq {seq} ({})",
                got.map(|o| o.map(|e| e.seq)),
                matches!(op, Op::Delete(_))
            )),
        }
    }
    // Full scan == live set.
    let live: BTreeMap<u64, Id> = newest
        .iter()
        .filter(|(_, (_, op))| matches!(op, Op::Put(_)))
        .map(|(id, (s, _))| (*s, id.clone()))
        .collect();
    let got: BTreeMap<u64, Id> = db
        .scan_all()
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, op_id(&e.op)))
        .collect();
    if got != live {
        sh.err(format!(
            "{label}: final scan differs from the oracle ({} vs {} rows)",
            got.len(),
            live.len()
        ));
    }
    // Scans taken during the run.
    let mut per_id: HashMap<Id, Vec<(u64, bool)>> = HashMap::new();
    for (i, op) in by_seq.iter().enumerate() {
        per_id
            .entry(op_id(op))
            .or_default()
            .push((i as u64 + 1, matches!(op, Op::Put(_))));
    }
    for sc in sh.scans.lock().iter() {
        let seen: HashMap<&Id, u64> = sc.rows.iter().map(|(i, s)| (i, *s)).collect();
        for (id, s) in &sc.rows {
            let v = &per_id[id];
            if !v.iter().any(|&(q, put)| q == *s && put) {
                sh.err(format!(
                    "{label}: scan row {id:?}@{s} is not a put of that id"
                ));
            }
            if let Some(&(q, _)) = v.iter().find(|&&(q, _)| q > *s && q <= sc.floor) {
                sh.err(format!(
                    "{label}: scan (floor {}) returned stale {id:?}@{s}, superseded at {q}",
                    sc.floor
                ));
            }
        }
        for (id, v) in &per_id {
            let Some(&(q, put)) = v.iter().rfind(|&&(q, _)| q <= sc.floor) else {
                continue;
            };
            if put && !seen.contains_key(id) {
                // It may be deleted by a later op beyond the floor.
                let later_delete = v.iter().any(|&(q2, p2)| q2 > sc.floor && !p2);
                if !later_delete {
                    sh.err(format!(
                        "{label}: scan (floor {}) lost {id:?}@{q}",
                        sc.floor
                    ));
                }
            }
        }
    }
}

fn base(p: Preset) -> DbConfig {
    DbConfig::new(p)
        .memtable_bytes(24 << 10)
        .wal_file_size(8192)
        .compaction_trigger(3)
        .flush_interval(Duration::from_millis(30))
        .checkpoint_every(7)
        .checkpoint_interval(Duration::from_millis(20))
}

#[test]
fn stress_ledger_balanced() {
    for seed in 0..env("STRESS_SEEDS", 2) {
        run_one(seed, base(Preset::Balanced), "balanced");
    }
}

#[test]
fn stress_ledger_durable() {
    for seed in 0..env("STRESS_SEEDS", 2) {
        run_one(100 + seed, base(Preset::Durable), "durable");
    }
}

#[test]
fn stress_ledger_throughput() {
    for seed in 0..env("STRESS_SEEDS", 2) {
        run_one(200 + seed, base(Preset::Throughput), "throughput");
    }
}

#[test]
fn stress_ledger_sha256_big_interval() {
    for seed in 0..env("STRESS_SEEDS", 2) {
        let cfg = base(Preset::Balanced)
            .ledger_hash(quiver_core::LedgerHash::Sha256)
            .checkpoint_every(1)
            .checkpoint_interval(Duration::from_secs(3600));
        run_one(300 + seed, cfg, "sha256-every1");
    }
}

// ---------------------------------------------------------------------------------------
// kill -9 in the middle of a concurrent run (child process = this test binary), then reopen.

fn preset_from(s: &str) -> Preset {
    match s {
        "durable" => Preset::Durable,
        "throughput" => Preset::Throughput,
        _ => Preset::Balanced,
    }
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("QV_CRASH_DIR") else {
        return;
    };
    let preset = preset_from(&std::env::var("QV_CRASH_PRESET").unwrap());
    let seed: u64 = std::env::var("QV_CRASH_SEED").unwrap().parse().unwrap();
    let db = Arc::new(Database::open(&dir, base(preset)).unwrap());
    let out = Arc::new(Mutex::new(()));
    let say = |o: &Mutex<()>, s: String| {
        use std::io::Write;
        let _g = o.lock();
        let mut so = std::io::stdout().lock();
        let _ = writeln!(so, "@@ {s}");
        let _ = so.flush();
    };
    let mut hs = Vec::new();
    for w in 0..6u64 {
        let (db, out) = (db.clone(), out.clone());
        hs.push(std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed * 77 + w);
            let mut n = 0;
            loop {
                let size = if rng.gen_bool(0.4) {
                    1
                } else {
                    rng.gen_range(2..60)
                };
                let ops: Vec<Op> = (0..size)
                    .map(|_| {
                        n += 1;
                        rand_op(&mut rng, w, n)
                    })
                    .collect();
                if rng.gen_bool(0.3) {
                    let (r, rc) = db.write_batch_with_receipt(&ops).unwrap();
                    say(&out, format!("ack {} {}", r.first, r.last));
                    say(
                        &out,
                        format!(
                            "rc {} {} {} {} {}",
                            rc.id, rc.first_seq, rc.last_seq, rc.tree_size, rc.root
                        ),
                    );
                } else {
                    let r = db.write_batch(&ops).unwrap();
                    say(&out, format!("ack {} {}", r.first, r.last));
                }
            }
        }));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1..20)));
        match rng.gen_range(0..4) {
            0 => db.flush().unwrap(),
            1 => db.compact().unwrap(),
            2 if preset != Preset::Throughput => db.checkpoint().unwrap(),
            _ => {}
        }
        if let Some(cp) = db.ledger().unwrap().latest_checkpoint() {
            say(
                &out,
                format!("cp {} {}", cp.checkpoint.size, cp.checkpoint.root),
            );
        }
    }
}

fn crash_rounds(preset: &str, rounds: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cps: BTreeMap<u64, String> = BTreeMap::new();
    let mut rcs: BTreeMap<u64, String> = BTreeMap::new();
    let mut max_acked = 0u64;
    let mut errors = Vec::new();
    for round in 0..rounds {
        let mut child = std::process::Command::new(&exe)
            .args([
                "stress_ledger::crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("QV_CRASH_DIR", tmp.path())
            .env("QV_CRASH_PRESET", preset)
            .env("QV_CRASH_SEED", round.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ms = 300 + (round * 397) % 1200;
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap();
        let o = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let mut acks = Vec::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("@@ ")) {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "ack" => acks.push((f[1].parse::<u64>().unwrap(), f[2].parse::<u64>().unwrap())),
                "cp" => {
                    let s: u64 = f[1].parse().unwrap();
                    if let Some(prev) = cps.insert(s, f[2].to_string()) {
                        if prev != f[2] {
                            errors.push(format!(
                                "round {round}: two checkpoints of size {s}: {prev} vs {}",
                                f[2]
                            ));
                        }
                    }
                }
                "rc" => {
                    let id: u64 = f[1].parse().unwrap();
                    let v = f[2..].join(" ");
                    if let Some(prev) = rcs.insert(id, v.clone()) {
                        if prev != v {
                            errors.push(format!(
                                "round {round}: receipt id {id} reissued: {prev} vs {v}"
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        acks.sort();
        for w in acks.windows(2) {
            if w[1].0 <= w[0].1 {
                errors.push(format!(
                    "round {round}: overlapping acks {:?} {:?}",
                    w[0], w[1]
                ));
            }
        }
        if let Some(&(f, _)) = acks.first() {
            if f != max_acked + 1 && round > 0 && f <= max_acked {
                errors.push(format!(
                    "round {round}: seq {f} reused (had acked through {max_acked})"
                ));
            }
        }
        max_acked = max_acked.max(acks.last().map_or(0, |a| a.1));
        // Read-only audit of what the crash left, then a writable reopen.
        match quiver_engine::verify::verify_dir(tmp.path(), &mut |_| {}) {
            Ok(r) if r.ok() => {}
            Ok(r) => errors.push(format!(
                "round {round}: verify after crash: {:?}",
                r.failure
            )),
            Err(e) => errors.push(format!("round {round}: verify after crash errored: {e}")),
        }
        let db = match Database::open(tmp.path(), base(preset_from(preset))) {
            Ok(db) => db,
            Err(e) => {
                errors.push(format!("round {round}: reopen after kill failed: {e}"));
                break;
            }
        };
        if db.last_seq() < max_acked {
            errors.push(format!(
                "round {round}: last_seq {} < acked {max_acked}",
                db.last_seq()
            ));
        }
        let l = db.ledger().unwrap().clone();
        if l.size() != db.last_seq() {
            errors.push(format!(
                "round {round}: ledger {} != last_seq {}",
                l.size(),
                db.last_seq()
            ));
        }
        for (s, root) in &cps {
            match l.root_at(*s) {
                Ok(r) if r.to_string() == *root => {}
                other => errors.push(format!(
                    "round {round}: checkpoint {s} root {root} vs tree {other:?}"
                )),
            }
        }
        for (id, v) in &rcs {
            match l.receipt_by_id(*id) {
                Ok(Some(r)) => {
                    let got = format!("{} {} {} {}", r.first_seq, r.last_seq, r.tree_size, r.root);
                    if &got != v {
                        errors.push(format!("round {round}: receipt {id} now {got}, was {v}"));
                    }
                    if l.root_at(r.tree_size).ok() != Some(r.root) {
                        errors.push(format!("round {round}: receipt {id} root not in tree"));
                    }
                }
                other => errors.push(format!("round {round}: receipt {id} lost: {other:?}")),
            }
        }
        db.close().unwrap();
        match quiver_engine::verify::verify_dir(tmp.path(), &mut |_| {}) {
            Ok(r) if r.ok() => {}
            Ok(r) => errors.push(format!(
                "round {round}: verify after reopen: {:?}",
                r.failure
            )),
            Err(e) => errors.push(format!("round {round}: verify after reopen errored: {e}")),
        }
        eprintln!(
            "[{preset}] round {round}: acked through {max_acked}, {} cps, {} receipts",
            cps.len(),
            rcs.len()
        );
    }
    assert!(
        errors.is_empty(),
        "{preset}: {:#?}",
        &errors[..errors.len().min(10)]
    );
}

#[test]
fn crash_rounds_balanced() {
    crash_rounds("balanced", env("STRESS_ROUNDS", 3));
}

#[test]
fn crash_rounds_throughput() {
    crash_rounds("throughput", env("STRESS_ROUNDS", 3));
}

#[test]
fn crash_rounds_durable() {
    crash_rounds("durable", env("STRESS_ROUNDS", 3));
}

/// A receipt used to reach receipts.log at once (write(2)) while the leaves it covers sat in
/// the ledger's user-space node buffer: a process crash right after the ack left a directory
/// that `verify` (read-only, before any reopen) reported as tampered.
#[test]
fn receipt_then_crash_child() {
    let Ok(dir) = std::env::var("QV_RC_DIR") else {
        return;
    };
    let db = Database::open(&dir, DbConfig::new(Preset::Durable)).unwrap();
    let ops: Vec<Op> = (0..10u64)
        .map(|i| Op::Put(Record::new(i).with_timestamp(i as i64)))
        .collect();
    let (_, rc) = db.write_batch_with_receipt(&ops).unwrap();
    println!("@@ receipt {} tree {}", rc.id, rc.tree_size);
    std::process::exit(0); // a crash: no Drop, no close
}

#[test]
fn verify_after_crash_with_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "stress_ledger::receipt_then_crash_child",
            "--exact",
            "--nocapture",
        ])
        .env("QV_RC_DIR", tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    let rep = quiver_engine::verify::verify_dir(tmp.path(), &mut |_| {}).unwrap();
    eprintln!(
        "verify after crash: ok={} tree_size={} unhashed_tail={} failure={:?}",
        rep.ok(),
        rep.tree_size,
        rep.unhashed_tail,
        rep.failure
    );
    // Reopening repairs it (leaves re-appended from the WAL).
    Database::open(tmp.path(), DbConfig::new(Preset::Durable))
        .unwrap()
        .close()
        .unwrap();
    let rep2 = quiver_engine::verify::verify_dir(tmp.path(), &mut |_| {}).unwrap();
    eprintln!(
        "verify after reopen: ok={} failure={:?}",
        rep2.ok(),
        rep2.failure
    );
    assert!(
        rep.ok(),
        "verify reports tampering on a merely crashed directory: {:?}",
        rep.failure
    );
}
