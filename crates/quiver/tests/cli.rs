//! End-to-end tests of the `quiver` binary: crash recovery under SIGKILL, bad input to
//! `quiver ingest`, and the exactness of `quiver scan`.

use quiver_core::{DbConfig, Id, Op};
use quiver_engine::Database;
use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_quiver");

fn line(i: u64) -> String {
    format!(
        "{{\"id\":{i},\"timestamp\":{},\"type\":\"t{}\",\"source\":\"s\",\"payload\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n",
        1_700_000_000_000_000_000i64 + i as i64,
        i % 7,
        "p".repeat((i % 50) as usize)
    )
}

/// Splitmix64: a tiny deterministic generator for kill delays (seed printed on failure).
fn next(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn crash_once(preset: &str, seed: u64) -> u64 {
    let d = tempfile::tempdir().unwrap();
    let mut rng = seed;
    let mut child = Command::new(BIN)
        .args(["ingest", "--data"])
        .arg(d.path())
        .args(["--preset", preset, "--batch", "37"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut sent = 0u64;
        for i in 0..2_000_000u64 {
            if stdin.write_all(line(i).as_bytes()).is_err() {
                break;
            }
            sent = i + 1;
        }
        sent
    });
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = 0u64;
        let mut through = 0u64;
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            acked += v["count"].as_u64().unwrap();
            through = v["acked_through"].as_u64().unwrap();
        }
        (acked, through)
    });
    std::thread::sleep(Duration::from_millis(30 + next(&mut rng) % 400));
    // SIGKILL: no destructor, no flush, no clean shutdown.
    child.kill().unwrap();
    child.wait().unwrap();
    let (acked, through) = reader.join().unwrap();
    let sent = feeder.join().unwrap();
    assert_eq!(
        acked, through,
        "seed {seed}: one record per seq in a fresh database"
    );

    let db = Database::open(d.path(), DbConfig::default()).unwrap();
    let all = db.scan_all().unwrap();
    assert!(
        all.len() as u64 >= acked,
        "seed {seed} preset {preset}: {} records recovered but {acked} were acknowledged",
        all.len()
    );
    for (k, e) in all.iter().enumerate() {
        let Op::Put(r) = &e.op else {
            panic!("tombstone")
        };
        let Id::U64(id) = r.id().unwrap() else {
            panic!("string id")
        };
        assert_eq!(e.seq, k as u64 + 1, "seed {seed}: gap-free seqs");
        assert_eq!(*id + 1, e.seq, "seed {seed}: record order");
        assert!(*id < sent, "seed {seed}: record {id} was never written");
        let want: serde_json::Value = serde_json::from_str(line(*id).trim()).unwrap();
        assert_eq!(
            r.payload_value().unwrap().unwrap(),
            want["payload"],
            "seed {seed}: payload of {id}"
        );
    }
    for id in [0, acked / 2, acked.saturating_sub(1)] {
        if acked > 0 {
            assert!(
                db.get(&Id::U64(id)).unwrap().is_some(),
                "seed {seed}: acked id {id} lost"
            );
        }
    }
    let recovered = all.len();
    db.close().unwrap();
    // The ledger (hashed off the commit path, so possibly behind the WAL at the kill) must
    // cover every recovered record and verify end to end.
    let v: serde_json::Value = serde_json::from_str(run_ok(&["verify"], d.path()).trim()).unwrap();
    assert_eq!(v["ok"], true, "seed {seed} preset {preset}: {v}");
    assert_eq!(
        v["tree_size"].as_u64(),
        Some(recovered as u64),
        "seed {seed} preset {preset}: ledger covers every recovered record"
    );
    acked
}

#[test]
fn sigkill_loses_no_acknowledged_record() {
    let base = std::env::var("QUIVER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xc0ffee);
    eprintln!("crash test seed base {base} (set QUIVER_CRASH_SEED to replay)");
    // Twenty kills per preset: each preset has its own write path (page cache, direct I/O
    // with an fdatasync-free group write, preallocated files).
    const PER_PRESET: u64 = 20;
    for (p, preset) in ["throughput", "balanced", "durable"]
        .into_iter()
        .enumerate()
    {
        let mut runs_with_acks = 0;
        for i in 0..PER_PRESET {
            if crash_once(preset, base + p as u64 * PER_PRESET + i) > 0 {
                runs_with_acks += 1;
            }
        }
        // The test means something only if the kills land after acknowledgements.
        assert!(
            runs_with_acks >= PER_PRESET / 2,
            "{preset}: only {runs_with_acks} of {PER_PRESET} runs were killed after an ack"
        );
    }
}

fn ingest(dir: &std::path::Path, input: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(["ingest", "--batch", "2", "--data"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may stop reading at a bad line and exit: a broken pipe here is expected.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scan(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["scan", "--data"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn bad_lines_name_the_line_and_keep_what_came_before() {
    // (line, what it tests, words the error must contain)
    let cases: &[(&str, &str, &str)] = &[
        (
            "{\"id\": 3, \"payload\": {\"a\": }\n",
            "malformed JSON",
            "expected value",
        ),
        (
            "{\"id\": \"x\", \"vector\": [1, \"two\"]}\n",
            "wrong type",
            "expected f32",
        ),
        (
            "{\"id\": -4}\n",
            "negative id",
            "integer `-4`, expected an id",
        ),
        ("{\"id\": 2.5}\n", "fractional id", "`2.5`, expected an id"),
        ("{\"payload\": 1}\n", "missing id", "missing field `id`"),
        (
            "{\"id\": 9, \"colour\": \"red\"}\n",
            "unknown field",
            "unknown field `colour`",
        ),
        (
            "{\"id\": 9, \"timestamp\": \"yesterday\"}\n",
            "bad timestamp",
            "expected RFC 3339 or integer ns",
        ),
        (
            "{\"id\": 9, \"timestamp\": true}\n",
            "timestamp of the wrong type",
            "expected a timestamp",
        ),
        (
            "{\"id\": 9, \"vector\": [1e39]}\n",
            "non-finite vector",
            "not finite",
        ),
        (
            "{\"id\": 9, \"vector\": []}\n",
            "empty vector",
            "vector has no components",
        ),
    ];
    for (bad, what, words) in cases {
        let d = tempfile::tempdir().unwrap();
        let good =
            "{\"id\":1,\"payload\":{\"k\":[1,2,{\"z\":null}]}}\n{\"id\":\"b\"}\n{\"id\":2}\n";
        let (ok, stdout, stderr) = ingest(d.path(), &format!("{good}{bad}{{\"id\":77}}\n"));
        assert!(!ok, "{what}: must fail");
        assert!(
            stderr.contains("line 4"),
            "{what}: error names line 4: {stderr}"
        );
        assert!(
            stdout.contains("\"line\":4"),
            "{what}: JSON error on stdout: {stdout}"
        );
        assert!(
            stdout.contains(words) && stderr.contains(words),
            "{what}: the error says {words:?}: {stdout} / {stderr}"
        );
        let rows = scan(d.path());
        let ids: Vec<String> = rows.iter().map(|r| r["id"].to_string()).collect();
        assert_eq!(
            ids,
            ["1", "\"b\"", "2"],
            "{what}: lines before the bad one are kept, nothing after"
        );
    }
    // Oversized record.
    let d = tempfile::tempdir().unwrap();
    let huge = format!(
        "{{\"id\":1}}\n{{\"id\":2,\"payload\":\"{}\"}}\n",
        "a".repeat(5 << 20)
    );
    let (ok, _, stderr) = ingest(d.path(), &huge);
    assert!(!ok && stderr.contains("line 2"), "{stderr}");
    assert_eq!(scan(d.path()).len(), 1);
}

#[test]
fn scan_gives_back_fields_as_ingested() {
    let d = tempfile::tempdir().unwrap();
    let input = concat!(
        "{\"id\":10,\"timestamp\":1700000000123456789,\"type\":\"click\",\"source\":\"web\",\"payload\":{\"b\":2,\"a\":[1,2.5,\"x\"]},\"vector\":[0.5,-1.25]}\n",
        "{\"id\":\"uuid-1\",\"timestamp\":\"2024-05-06T07:08:09.123456789Z\",\"payload\":\"plain\"}\n",
        "{\"id\":11,\"timestamp\":5}\n"
    );
    let (ok, stdout, stderr) = ingest(d.path(), input);
    assert!(ok, "{stderr}");
    let acks: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(acks[0]["acked_through"], 2);
    assert_eq!(acks[0]["count"], 2);
    assert_eq!(acks[1]["acked_through"], 3);
    let rows = scan(d.path());
    for (row, inp) in rows.iter().zip(input.lines()) {
        let mut want: serde_json::Value = serde_json::from_str(inp).unwrap();
        let seq = row["seq"].clone();
        let mut got = row.clone();
        got.as_object_mut().unwrap().remove("seq");
        want.as_object_mut().unwrap();
        assert_eq!(got, want);
        assert!(seq.as_u64().unwrap() >= 1);
    }
    // Time-range scan.
    let out = Command::new(BIN)
        .args(["scan", "--from-ts", "0", "--to-ts", "100", "--data"])
        .arg(d.path())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(s.lines().count(), 1);
    assert!(s.contains("\"id\":11"));
    // A reversed range is an error, not a silently empty answer.
    let out = Command::new(BIN)
        .args(["scan", "--from-ts", "100", "--to-ts", "0", "--data"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is after --to-ts"));
}

fn run_ok(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn verify_and_proofs_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let input: String = (0..300).map(line).collect();
    let (ok, _, stderr) = ingest(d.path(), &input);
    assert!(ok, "{stderr}");
    // A second session extends the log (and its close signs a newer checkpoint).
    let (ok, _, stderr) = ingest(d.path(), &(300..450).map(line).collect::<String>());
    assert!(ok, "{stderr}");

    let v: serde_json::Value = serde_json::from_str(run_ok(&["verify"], d.path()).trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"], 450);
    assert!(v["checkpoints"].as_u64().unwrap() >= 2);

    let key: serde_json::Value =
        serde_json::from_str(run_ok(&["key", "show"], d.path()).trim()).unwrap();
    let pubkey = key["vkey"]
        .as_str()
        .unwrap_or_else(|| panic!("no vkey in {key}"))
        .to_owned();
    let trust = d.path().join("trusted.json");

    let check = |bundle: &str| {
        let p = d.path().join("bundle.json");
        std::fs::write(&p, bundle).unwrap();
        Command::new(BIN)
            .args(["proof", "check", "--pubkey", &pubkey, "--trust-file"])
            .arg(&trust)
            .arg(&p)
            .output()
            .unwrap()
    };
    // Inclusion of seq 5 against the first checkpoint (size 300), then consistency 300 -> 450.
    let inc = run_ok(
        &["proof", "inclusion", "--seq", "5", "--tree-size", "300"],
        d.path(),
    );
    let out = check(&inc);
    assert!(
        out.status.success(),
        "inclusion: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let cons = run_ok(
        &["proof", "consistency", "--from", "300", "--to", "450"],
        d.path(),
    );
    let out = check(&cons);
    assert!(
        out.status.success(),
        "consistency: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Rolling back to the older checkpoint is refused now that 450 is trusted.
    let out = check(&inc);
    assert!(
        !out.status.success(),
        "rollback accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A forged inclusion bundle (leaf hash altered) is refused.
    let mut forged: serde_json::Value = serde_json::from_str(inc.trim()).unwrap();
    let s = forged.to_string();
    let leaf = forged["leaf_hash"]
        .as_str()
        .expect("bundle has a leaf_hash")
        .to_owned();
    let bad = format!(
        "{}{}",
        if leaf.starts_with('0') { "1" } else { "0" },
        &leaf[1..]
    );
    forged = serde_json::from_str(&s.replace(&leaf, &bad)).unwrap();
    let out = check(&forged.to_string());
    assert!(!out.status.success(), "forged leaf accepted");
}

/// Runs `quiver ingest` with extra arguments; returns (success, stdout).
fn ingest_with(dir: &std::path::Path, args: &[&str], input: &[u8]) -> (bool, String) {
    let mut child = Command::new(BIN)
        .arg("ingest")
        .args(args)
        .arg("--data")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn edges_of_ingest_and_scan() {
    let d = tempfile::tempdir().unwrap();
    // A null payload is a payload; negative and extreme timestamps are timestamps.
    let (ok, _) = ingest_with(
        d.path(),
        &[],
        b"{\"id\":1,\"timestamp\":-7,\"payload\":null}\n\
          {\"id\":2,\"timestamp\":9223372036854775807}\n\
          {\"id\":3,\"timestamp\":5}\n",
    );
    assert!(ok);
    let all = scan(d.path());
    assert_eq!(all[0]["payload"], serde_json::Value::Null);
    assert!(all[0].as_object().unwrap().contains_key("payload"));
    assert!(!all[2].as_object().unwrap().contains_key("payload"));
    let ids = |args: &[&str]| -> Vec<u64> {
        run_ok(&[&["scan"], args].concat(), d.path())
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(ids(&["--from-ts", "-10", "--to-ts", "-5"]), vec![1]);
    assert_eq!(
        ids(&["--from-ts", "0"]),
        vec![2, 3],
        "no --to-ts: no upper end"
    );
    assert_eq!(ids(&["--from-ts", "9223372036854775807"]), vec![2]);
    assert_eq!(ids(&["--to-ts", "0"]), vec![1]);

    // --max-line-bytes counts the line's own bytes: not its newline, nor a CRLF's '\r'.
    let d = tempfile::tempdir().unwrap();
    let max = ["--max-line-bytes", "8"];
    assert!(
        ingest_with(d.path(), &max, b"{\"id\":1}\r\n").0,
        "8 bytes + CRLF"
    );
    assert!(
        ingest_with(d.path(), &max, b"{\"id\":2}").0,
        "8 bytes, no newline"
    );
    assert!(
        !ingest_with(d.path(), &max, b"{\"id\":12}").0,
        "9 bytes, no newline"
    );
    assert!(!ingest_with(d.path(), &max, b"{\"id\":12}\n").0, "9 bytes");
    assert_eq!(scan(d.path()).len(), 2);
    // A byte order mark is skipped, and not counted either.
    assert!(
        ingest_with(d.path(), &max, b"\xEF\xBB\xBF{\"id\":3}\n").0,
        "BOM + 8 bytes"
    );
    // The largest limit: no overflow when a read ends on a CRLF's '\r'.
    let huge = ["--max-line-bytes", "18446744073709551615"];
    let mut long = vec![b' '; 8191 - 8];
    long.extend_from_slice(b"{\"id\":4}\r\n{\"id\":5}\n");
    let (ok, out) = ingest_with(d.path(), &huge, &long);
    assert!(ok, "{out}");
    assert_eq!(scan(d.path()).len(), 5);

    // Only JSON whitespace makes a blank line: a form feed or U+00A0 line is refused.
    for blank in ["\x0c", "\u{a0}", "\u{2028}"] {
        let d = tempfile::tempdir().unwrap();
        let input = format!("{{\"id\":1}}\n{blank}\n{{\"id\":2}}\n");
        let (ok, out) = ingest_with(d.path(), &[], input.as_bytes());
        assert!(!ok, "{blank:?}: {out}");
        assert!(out.contains("\"line\":2"), "{blank:?}: {out}");
        assert_eq!(scan(d.path()).len(), 1, "{blank:?}");
    }
    // RFC 3339 puts "T" (or "t", or a space) between date and time, nothing else.
    let d = tempfile::tempdir().unwrap();
    let (ok, out) = ingest_with(
        d.path(),
        &[],
        b"{\"id\":1,\"timestamp\":\"2026-11-21 10:00:00Z\"}\n{\"id\":2,\"timestamp\":\"2026-11-21X10:00:00Z\"}\n",
    );
    assert!(!ok && out.contains("\"line\":2"), "{out}");
    assert_eq!(scan(d.path()).len(), 1);
}

#[test]
fn commands_follow_a_database_made_without_a_ledger() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::default().ledger(false)).unwrap();
    db.write_batch(&[Op::Delete(Id::U64(9))]).unwrap();
    db.close().unwrap();
    let (ok, out) = ingest_with(d.path(), &[], b"{\"id\":1}\n");
    assert!(ok, "{out}");
    assert!(out.contains("\"acked_through\":2"), "{out}");
    assert_eq!(scan(d.path()).len(), 1);
    let stats: serde_json::Value =
        serde_json::from_str(run_ok(&["stats"], d.path()).trim()).unwrap();
    assert_eq!(stats["last_seq"], 2);
    // It stays without one: the engine still refuses to open it with a ledger.
    assert!(Database::open(d.path(), DbConfig::default()).is_err());
    let out = Command::new(BIN)
        .args(["verify", "--data"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ledger is disabled"));
}

/// `../shared/data/bigann10k`, or `None` when it is absent (the caller skips, loudly).
fn bigann10k() -> Option<std::path::PathBuf> {
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/bigann10k");
    if data.join("base.fvecs").exists() {
        Some(data)
    } else {
        eprintln!("SKIPPED: {} is absent", data.display());
        None
    }
}

/// `quiver bench search --min-seconds 0 --data DATA` (10 queries unless `extra` sets `--nq`).
fn bench_search(data: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let nq: &[&str] = if extra.contains(&"--nq") {
        &[]
    } else {
        &["--nq", "10"]
    };
    Command::new(BIN)
        .args(["bench", "search", "--min-seconds", "0", "--data"])
        .arg(data)
        .args(nq)
        .args(extra)
        .output()
        .unwrap()
}

/// The first JSON line of a run that must have succeeded, and its stderr.
fn first_line(out: std::process::Output) -> (serde_json::Value, String) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    (serde_json::from_str(&line).unwrap(), err)
}

#[test]
fn bench_search_reports_the_graph_it_searched_and_takes_any_k() {
    let Some(data) = bigann10k() else { return };
    let d = tempfile::tempdir().unwrap();
    let graph = d.path().join("g.hnsw");
    let g = graph.to_str().unwrap();
    let hnsw = ["--index", "hnsw", "--ef", "32", "--graph", g];
    let run = |extra: &[&str]| first_line(bench_search(&data, &[&hnsw[..], extra].concat()));
    let (built, _) = run(&["--m", "4", "--ef-construction", "20"]);
    assert_eq!(built["params"]["m"], 4);
    // The saved graph is opened, not rebuilt: its own parameters are reported.
    let (opened, err) = run(&["--m", "48", "--ef-construction", "400"]);
    assert_eq!(opened["params"]["m"], 4, "{opened}");
    assert_eq!(opened["params"]["ef_construction"], 20, "{opened}");
    assert!(err.contains("was built with m=4"), "{err}");
    // A k beyond the ground truth is a clear error, not an abort on an allocation (the
    // library returns every point for such a k: tests/it/edges.rs in quiver-vector).
    let out = bench_search(&data, &["--index", "flat", "--k", "1099511627776"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neighbours per query"));
}

#[test]
fn ingest_skips_a_byte_order_mark_and_refuses_batch_zero() {
    let d = tempfile::tempdir().unwrap();
    let (ok, out) = ingest_with(d.path(), &[], b"\xEF\xBB\xBF{\"id\":1}\n{\"id\":2}\n");
    assert!(ok, "{out}");
    assert_eq!(scan(d.path()).len(), 2);
    let (ok, _) = ingest_with(d.path(), &["--batch", "0"], b"{\"id\":3}\n");
    assert!(!ok, "--batch 0 is refused, not turned into 1");
    // A huge batch is a limit, not an allocation.
    let (ok, _) = ingest_with(d.path(), &["--batch", "1000000000000"], b"{\"id\":4}\n");
    assert!(ok);
    assert_eq!(scan(d.path()).len(), 3);
}

/// The rows `quiver scan` must print for `lines` ingested in order from seq 1: each line's
/// fields plus its seq, the newest version of each id only.
fn expected_rows(lines: &[String]) -> Vec<serde_json::Value> {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        rows.retain(|r| r["id"] != v["id"]);
        v["seq"] = (i as u64 + 1).into();
        rows.push(v);
    }
    rows
}

fn stats_of(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(run_ok(&["stats"], dir).trim()).unwrap()
}

/// Every path below `dir` with the contents of its files (`None` for directories).
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Option<Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A `quiver ingest` whose stdin stays open, so it holds the data directory open for writing.
struct LiveIngest {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    acks: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl LiveIngest {
    fn start(dir: &std::path::Path, batch: usize) -> LiveIngest {
        let mut child = Command::new(BIN)
            .args(["ingest", "--data"])
            .arg(dir)
            .args(["--batch", &batch.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let acks = BufReader::new(child.stdout.take().unwrap()).lines();
        LiveIngest { child, stdin, acks }
    }

    fn send(&mut self, lines: &[String]) {
        let stdin = self.stdin.as_mut().unwrap();
        for l in lines {
            stdin.write_all(l.as_bytes()).unwrap();
        }
        stdin.flush().unwrap();
    }

    /// Waits for the next acknowledgement; returns its `acked_through`.
    fn ack(&mut self) -> u64 {
        let l = self.acks.next().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        v["acked_through"].as_u64().unwrap()
    }
}

#[test]
fn scan_and_stats_read_beside_a_running_ingest() {
    let d = tempfile::tempdir().unwrap();
    let mut ing = LiveIngest::start(d.path(), 10);
    let mut sent: Vec<String> = (0..10).map(line).collect();
    ing.send(&sent);
    assert_eq!(ing.ack(), 10);
    // The ingest holds the directory's lock: a writer is refused...
    assert!(matches!(
        Database::open(d.path(), DbConfig::default()),
        Err(quiver_engine::EngineError::Locked { .. })
    ));
    // ...the read-only commands are not, and see exactly the acknowledged records.
    assert_eq!(scan(d.path()), expected_rows(&sent));
    let st = stats_of(d.path());
    assert_eq!(
        (
            &st["last_seq"],
            &st["live_records"],
            &st["memtable_entries"]
        ),
        (&10.into(), &10.into(), &10.into()),
        "{st}"
    );

    // Five lines the ingest holds until its batch is full: not acknowledged, not there.
    let more: Vec<String> = (10..15).map(line).collect();
    ing.send(&more);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(scan(d.path()), expected_rows(&sent));
    // Five more, one of them a new version of id 3: acknowledged through seq 20.
    let mut rest: Vec<String> = (15..19).map(line).collect();
    rest.push(line(3).replace("\"i\":3", "\"i\":333"));
    ing.send(&rest);
    assert_eq!(ing.ack(), 20);
    sent.extend(more);
    sent.extend(rest);
    let want = expected_rows(&sent);
    assert_eq!(want.len(), 19);
    assert_eq!(scan(d.path()), want);
    let from = 1_700_000_000_000_000_005i64.to_string();
    let ranged = run_ok(&["scan", "--from-ts", &from], d.path());
    let ranged: Vec<serde_json::Value> = ranged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want_ranged: Vec<serde_json::Value> = want
        .iter()
        .filter(|r| r["timestamp"].as_i64().unwrap() >= from.parse::<i64>().unwrap())
        .cloned()
        .collect();
    assert_eq!(ranged, want_ranged);
    let st = stats_of(d.path());
    assert_eq!(
        (&st["last_seq"], &st["live_records"]),
        (&20.into(), &19.into()),
        "{st}"
    );

    // The ingest ends cleanly (flushing to a segment); the same records read back.
    drop(ing.stdin.take());
    assert!(ing.child.wait().unwrap().success());
    assert_eq!(scan(d.path()), want);
    let st = stats_of(d.path());
    assert_eq!(
        (&st["live_records"], &st["segments"]),
        (&19.into(), &1.into()),
        "{st}"
    );
}

fn set_modes(dir: &std::path::Path, dir_mode: u32, file_mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            set_modes(&p, dir_mode, file_mode);
        } else {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file_mode)).unwrap();
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
}

#[test]
fn scan_and_stats_read_a_read_only_directory_without_writing() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    // An ingest killed after its acknowledgements: the records live only in the WAL, which a
    // writer's open would recover (and rewrite).
    let mut ing = LiveIngest::start(&data, 10);
    let sent: Vec<String> = (0..30).map(line).collect();
    ing.send(&sent);
    assert_eq!((ing.ack(), ing.ack(), ing.ack()), (10, 20, 30));
    ing.child.kill().unwrap();
    ing.child.wait().unwrap();
    set_modes(&data, 0o555, 0o444);
    // As root, permission bits do not stop writes; the tree comparison shows none happened.
    let probe = data.join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        eprintln!("permission bits are not enforced here (root?): checking via file contents");
    }
    let before = tree(&data);
    assert_eq!(scan(&data), expected_rows(&sent));
    let st = stats_of(&data);
    assert_eq!(
        (&st["last_seq"], &st["live_records"], &st["segments"]),
        (&30.into(), &30.into(), &0.into()),
        "{st}"
    );
    let after = tree(&data);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no file created or removed"
    );
    assert!(before == after, "a file changed");
    set_modes(&data, 0o755, 0o644);
}

#[test]
fn bench_ingest_reports_what_it_ran_and_cleans_up_after_a_failure() {
    let d = tempfile::tempdir().unwrap();
    let bench = |extra: &[&str]| {
        Command::new(BIN)
            .args(["bench", "ingest", "--events", "10", "--data"])
            .arg(d.path())
            .args(extra)
            .output()
            .unwrap()
    };
    // A batch far beyond the events is a limit, not an allocation; a payload below the
    // generator's smallest is reported as what was written.
    let out = bench(&["--batch", "1000000000000", "--payload-bytes", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["payload_bytes"], 8, "{v}");
    assert_eq!(v["kept"], serde_json::Value::Null);
    // A run that fails leaves no run directory behind.
    let out = bench(&["--dim", "100000"]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        0,
        "run directory left behind"
    );
    // --keep says where it kept the data.
    let out = bench(&["--keep"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        std::path::Path::new(v["kept"].as_str().unwrap())
            .join("CURRENT")
            .exists(),
        "{v}"
    );
}

#[test]
fn bench_search_refuses_flags_it_would_ignore_and_reports_what_it_used() {
    let Some(data) = bigann10k() else { return };
    for (bad, says) in [
        (&["--min-seconds=inf"][..], "seconds"),
        (&["--nq", "0"][..], "at least 1"),
        (&["--threads", "0"][..], "at least 1"),
        (
            &["--index", "flat", "--k", "200"][..],
            "neighbours per query",
        ),
        (
            &["--index", "ivf_pq", "--quantization", "sq8"][..],
            "ivf_pq",
        ),
        (
            &["--index", "hnsw", "--build-on-codes"][..],
            "--build-on-codes",
        ),
        (
            &["--index", "flat", "--nlist", "5", "--m", "4"][..],
            "--m, --nlist do(es) not apply",
        ),
        (
            &["--index", "hnsw", "--nprobe", "3"][..],
            "--nprobe do(es) not apply",
        ),
        (
            &["--index", "hnsw", "--pq-m", "16"][..],
            "--pq-m do(es) not apply",
        ),
    ] {
        let out = bench_search(&data, bad);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{bad:?}: {err}");
    }
    let hnsw = [
        "--index",
        "hnsw",
        "--m",
        "8",
        "--ef-construction",
        "40",
        "--ef",
        "4",
    ];
    let (v, _) = first_line(bench_search(&data, &hnsw));
    assert_eq!(
        v["params"]["ef"], 10,
        "ef below k is raised to k and reported so: {v}"
    );
    let ivf = ["--index", "ivf_pq", "--nlist", "16", "--nprobe", "1000"];
    let (v, _) = first_line(bench_search(&data, &ivf));
    assert_eq!(v["params"]["nprobe"], 16, "{v}");
    // Nothing is re-ranked without quantization: no factor is reported.
    let (v, _) = first_line(bench_search(&data, &["--index", "flat", "--rescore", "50"]));
    assert_eq!(v["params"]["rescore"], serde_json::Value::Null, "{v}");
}

#[test]
fn scan_into_a_closed_pipe_is_no_error() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::default()).unwrap();
    let ops: Vec<Op> = (0..20_000u64)
        .map(|i| Op::Put(quiver_core::Record::new(i).with_payload(&serde_json::json!({"i": i}))))
        .collect();
    db.write_batch(&ops).unwrap();
    db.close().unwrap();
    let mut child = Command::new(BIN)
        .args(["scan", "--data"])
        .arg(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"seq\":1"), "{first}");
    // The reader is gone (like `quiver scan | head -1`): the scan stops quietly.
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every field at its limit goes in through `quiver ingest` and comes back byte for byte from
/// `quiver scan`, and `quiver verify` accepts it; one byte (or component) more is a bad line
/// that names its line and the limit, with every line before it kept.
#[test]
fn ingest_fields_at_and_over_their_limits() {
    use quiver_core::{MAX_ID_BYTES, MAX_VECTOR_DIM};
    let max_payload = DbConfig::default().max_payload_bytes;
    let u16max = u16::MAX as usize;
    let payload = |n: usize| format!("\"{}\"", "p".repeat(n - 2));
    let vector = |n: usize| format!("[{}]", vec!["0.5"; n].join(","));
    let at_limit = [
        format!("{{\"id\":\"{}\",\"timestamp\":1}}", "i".repeat(MAX_ID_BYTES)),
        format!(
            "{{\"id\":2,\"timestamp\":2,\"type\":\"{}\",\"source\":\"{}\"}}",
            "t".repeat(u16max),
            "s".repeat(u16max)
        ),
        format!(
            "{{\"id\":3,\"timestamp\":3,\"payload\":{}}}",
            payload(max_payload)
        ),
        format!(
            "{{\"id\":4,\"timestamp\":4,\"vector\":{}}}",
            vector(MAX_VECTOR_DIM)
        ),
        format!(
            "{{\"id\":\"{}\",\"timestamp\":5,\"type\":\"{}\",\"source\":\"{}\",\"payload\":{},\"vector\":{}}}",
            "j".repeat(MAX_ID_BYTES),
            "t".repeat(u16max),
            "s".repeat(u16max),
            payload(max_payload),
            vector(MAX_VECTOR_DIM)
        ),
    ];
    let over = [
        (
            format!("{{\"id\":\"{}\"}}", "i".repeat(MAX_ID_BYTES + 1)),
            format!(
                "string id is {} bytes, over the maximum of {MAX_ID_BYTES}",
                MAX_ID_BYTES + 1
            ),
        ),
        (
            format!("{{\"id\":9,\"type\":\"{}\"}}", "t".repeat(u16max + 1)),
            format!(
                "event type is {} bytes, over the maximum of {u16max}",
                u16max + 1
            ),
        ),
        (
            format!("{{\"id\":9,\"source\":\"{}\"}}", "s".repeat(u16max + 1)),
            format!(
                "event source is {} bytes, over the maximum of {u16max}",
                u16max + 1
            ),
        ),
        (
            format!("{{\"id\":9,\"payload\":{}}}", payload(max_payload + 1)),
            format!(
                "payload is {} bytes, over the maximum of {max_payload}",
                max_payload + 1
            ),
        ),
        (
            format!("{{\"id\":9,\"vector\":{}}}", vector(MAX_VECTOR_DIM + 1)),
            format!(
                "{} components, over the maximum of {MAX_VECTOR_DIM}",
                MAX_VECTOR_DIM + 1
            ),
        ),
    ];
    let d = tempfile::tempdir().unwrap();
    let input: String = at_limit.iter().map(|l| format!("{l}\n")).collect();
    let (ok, out, err) = ingest(d.path(), &input);
    assert!(ok, "{out} {err}");
    let want = expected_rows(&at_limit);
    assert_eq!(
        scan(d.path()),
        want,
        "every field at its limit comes back whole"
    );
    let v: serde_json::Value = serde_json::from_str(run_ok(&["verify"], d.path()).trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"], at_limit.len() as u64, "{v}");
    for (bad, words) in &over {
        let d = tempfile::tempdir().unwrap();
        let input = format!("{}\n{}\n{bad}\n{{\"id\":77}}\n", at_limit[0], at_limit[1]);
        let (ok, stdout, stderr) = ingest(d.path(), &input);
        assert!(!ok, "{words}: must fail");
        assert!(stderr.contains("line 3"), "{words}: {stderr}");
        assert!(stdout.contains("\"line\":3"), "{words}: {stdout}");
        assert!(stderr.contains(words.as_str()), "{words}: {stderr}");
        assert_eq!(scan(d.path()), expected_rows(&at_limit[..2]), "{words}");
    }
}

/// `--batch-bytes` cuts a batch once its lines add up to that many bytes, before `--batch`
/// records: 10 lines of ~1 KB with a 2500-byte budget are acknowledged three at a time.
#[test]
fn ingest_batch_bytes_bounds_each_batch() {
    let d = tempfile::tempdir().unwrap();
    let input: String = (0..10u64)
        .map(|i| format!("{{\"id\":{i},\"payload\":\"{}\"}}\n", "x".repeat(1000)))
        .collect();
    let (ok, out) = ingest_with(
        d.path(),
        &["--batch", "1000", "--batch-bytes", "2500"],
        input.as_bytes(),
    );
    assert!(ok, "{out}");
    let counts: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(counts, vec![3, 3, 3, 1], "{out}");
    // Without the budget the same input is one batch.
    let d = tempfile::tempdir().unwrap();
    let (ok, out) = ingest_with(d.path(), &["--batch", "1000"], input.as_bytes());
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (ok, _) = ingest_with(d.path(), &["--batch-bytes", "0"], b"");
    assert!(!ok, "--batch-bytes 0 is refused");
}

/// A failing command prints one `error: ...` line with its causes and exits 1 — no Rust
/// backtrace, even with `RUST_BACKTRACE` set.
#[test]
fn errors_are_one_line_without_a_backtrace() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["proof", "inclusion", "--seq", "1", "--data"])
        .arg(d.path().join("missing"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert_eq!(
        stderr.matches("os error").count(),
        1,
        "each cause once: {stderr}"
    );
}
