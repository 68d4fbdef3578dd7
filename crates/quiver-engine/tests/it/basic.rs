use quiver_core::config::MAX_PAYLOAD_LIMIT;
use quiver_core::{CoreError, DbConfig, Id, Op, Preset, Record, MAX_ID_BYTES, MAX_VECTOR_DIM};
use quiver_engine::{Database, EngineError};
use std::time::Duration;

fn ev(id: u64, ts: i64) -> Op {
    Op::Put(
        Record::new(id)
            .with_timestamp(ts)
            .with_type("click")
            .with_source("web")
            .with_payload(&serde_json::json!({"n": id, "s": "x".repeat(20)})),
    )
}

fn small(preset: Preset) -> DbConfig {
    DbConfig::new(preset)
        .memtable_bytes(16 << 10)
        .block_bytes(1024)
        .compaction_trigger(4)
}

#[test]
fn write_get_scan_across_flush_compact_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), small(Preset::Throughput)).unwrap();
    let mut last = 0;
    for b in 0..20u64 {
        let ops: Vec<Op> = (0..50)
            .map(|i| ev(b * 50 + i, (b * 50 + i) as i64))
            .collect();
        let r = db.write_batch(&ops).unwrap();
        assert_eq!(r.first, last + 1);
        assert_eq!(r.len(), 50);
        last = r.last;
    }
    // Overwrite and delete some ids.
    db.write_batch(&[ev(5, 5_000_000)]).unwrap();
    db.write_batch(&[Op::Delete(Id::U64(7))]).unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    let check = |db: &Database| {
        let got = db.get(&Id::U64(5)).unwrap().unwrap();
        match got.op {
            Op::Put(r) => assert_eq!(r.timestamp_ns, Some(5_000_000)),
            Op::Delete(_) => panic!("tombstone returned"),
        }
        assert!(db.get(&Id::U64(7)).unwrap().is_none());
        assert!(db.get(&Id::U64(99_999)).unwrap().is_none());
        let all = db.scan_all().unwrap();
        assert_eq!(all.len(), 999);
        assert!(
            all.windows(2).all(|w| w[0].seq < w[1].seq),
            "scan is in seq order"
        );
        let mut in_range = Vec::new();
        db.scan_time_range(100, 200, &mut |e| {
            in_range.push(e);
            Ok(true)
        })
        .unwrap();
        assert_eq!(in_range.len(), 100);
    };
    check(&db);
    db.close().unwrap();
    let db = Database::open(d.path(), small(Preset::Throughput)).unwrap();
    check(&db);
    assert_eq!(db.last_seq(), 1002);
    let r = db.write_batch(&[ev(2000, 1)]).unwrap();
    assert_eq!(r.first, 1003, "sequence numbers continue after reopen");
}

#[test]
fn bad_input_is_typed_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::new(Preset::Durable)).unwrap();
    let nan = Op::Put(Record::new(1u64).with_vector(vec![1.0, f32::NAN]));
    let err = db.write_batch(&[ev(0, 0), nan]).unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    let big = Op::Put(Record {
        payload: Some(format!("\"{}\"", "a".repeat(2 << 20))),
        ..Record::new(2u64)
    });
    assert!(matches!(
        db.write_batch(&[big]),
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        db.write_batch(&[Op::Delete(Id::Str(String::new()))]),
        Err(EngineError::Invalid(_))
    ));
    for (v, what) in [
        (vec![], "empty vector"),
        (
            vec![0.5; MAX_VECTOR_DIM + 1],
            "vector over the dimension limit",
        ),
    ] {
        let op = Op::Put(Record::new(3u64).with_vector(v));
        match db.write_batch(&[ev(0, 0), op]) {
            Err(EngineError::Invalid(CoreError::EmptyVector | CoreError::VectorTooLong { .. })) => {
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(db.last_seq(), 0, "nothing of a rejected batch was written");
    assert!(db.scan_all().unwrap().is_empty());
}

/// The largest record the write path accepts (every field at its limit) is acknowledged,
/// flushed into a segment and read back whole: no record is acknowledged that the storage
/// below cannot hold (a 100 M-component vector once was, and wedged every later flush).
#[test]
fn the_largest_accepted_record_survives_flush_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    let cfg = DbConfig::new(Preset::Throughput).max_payload_bytes(MAX_PAYLOAD_LIMIT);
    let payload = format!("\"{}\"", "p".repeat(MAX_PAYLOAD_LIMIT - 2));
    let rec = Record {
        payload: Some(payload),
        ..Record::new(Id::Str("i".repeat(MAX_ID_BYTES)))
            .with_timestamp(-1)
            .with_type("t".repeat(u16::MAX as usize))
            .with_source("s".repeat(u16::MAX as usize))
            .with_vector(vec![0.25; MAX_VECTOR_DIM])
    };
    let id = rec.id.clone().unwrap();
    {
        let db = Database::open(d.path(), cfg.clone()).unwrap();
        let range = db.write_batch(&[Op::Put(rec.clone())]).unwrap();
        assert_eq!((range.first, range.last), (1, 1));
        db.flush().unwrap();
        db.close().unwrap();
    }
    let db = Database::open(d.path(), cfg).unwrap();
    let got = db.get(&id).unwrap().expect("the record is stored");
    assert_eq!(got.op, Op::Put(rec));
    // One payload byte more is refused, and so is a limit above the cap.
    let over = Record {
        payload: Some(format!("\"{}\"", "p".repeat(MAX_PAYLOAD_LIMIT - 1))),
        ..Record::new(9u64)
    };
    assert!(matches!(
        db.write_batch(&[Op::Put(over)]),
        Err(EngineError::Invalid(CoreError::TooLarge { .. }))
    ));
    drop(db);
    let too_big = DbConfig::new(Preset::Throughput).max_payload_bytes(MAX_PAYLOAD_LIMIT + 1);
    assert!(matches!(
        Database::open(d.path(), too_big),
        Err(EngineError::Invalid(CoreError::InvalidConfig {
            key: "max_payload_bytes",
            ..
        }))
    ));
}

#[test]
fn concurrent_writers_get_disjoint_ranges() {
    let d = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Database::open(d.path(), small(Preset::Balanced)).unwrap());
    let hs: Vec<_> = (0..4u64)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                (0..25u64)
                    .map(|i| {
                        db.write_batch(&[ev(w * 1000 + i, 0), ev(w * 1000 + 500 + i, 0)])
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ranges: Vec<_> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    ranges.sort_by_key(|r| r.first);
    for w in ranges.windows(2) {
        assert_eq!(w[0].last + 1, w[1].first, "gap-free, disjoint");
    }
    assert_eq!(db.scan_all().unwrap().len(), 200);
}

/// Every preset's sync policy takes effect: no fdatasync under `throughput`, at least one per
/// commit group under `balanced`, one per (sequential) write under `durable`.
#[test]
fn presets_change_the_sync_policy() {
    let syncs = |preset: Preset| {
        let d = tempfile::tempdir().unwrap();
        let db = Database::open(d.path(), DbConfig::new(preset).ledger(false)).unwrap();
        let at_open = db.stats().unwrap().wal_syncs; // creating the first file syncs it
        for i in 0..20u64 {
            db.write_batch(&[ev(i, 0)]).unwrap();
        }
        let s = db.stats().unwrap();
        (s.wal_syncs - at_open, s.wal_groups)
    };
    let (t, _) = syncs(Preset::Throughput);
    // Only the WAL file created by the first commit has its header synced, once.
    assert!(
        t <= 1,
        "throughput never fsyncs per write ({t} syncs for 20 writes)"
    );
    let (b, bg) = syncs(Preset::Balanced);
    assert!(
        b >= bg && bg >= 1,
        "balanced: one fdatasync per group ({b} syncs, {bg} groups)"
    );
    let (du, _) = syncs(Preset::Durable);
    assert!(du >= 20, "durable: an fdatasync before every ack ({du})");
}

/// A lone writer is never held back by the gather delay (a fixed delay once capped one writer
/// of single events at 1 / delay: ~100 events/s under `balanced`), and concurrent writers
/// still share groups. That a leader does wait for a writer announced while encoding, and not
/// with no delay, is tested deterministically in quiver-wal (`gather_waits_only_for_announced_writers`).
#[test]
fn gather_delay_never_holds_back_a_lone_writer() {
    let run = |writers: u64, gather: Duration| {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Balanced)
            .ledger(false)
            .gather_delay(gather);
        let db = Database::open(d.path(), cfg).unwrap();
        std::thread::scope(|sc| {
            for w in 0..writers {
                let db = &db;
                sc.spawn(move || {
                    for b in 0..20 {
                        let first = (w * 20 + b) * 10;
                        db.write_batch(
                            &(first..first + 10)
                                .map(|i| ev(i, i as i64))
                                .collect::<Vec<_>>(),
                        )
                        .unwrap();
                    }
                });
            }
        });
        let s = db.stats().unwrap();
        assert_eq!(s.last_seq, writers * 200);
        (s.wal_gathers, s.wal_groups)
    };
    // Two seconds: a lone writer that wrongly waited would take 40 s and fail, not hang.
    assert_eq!(run(1, Duration::from_secs(2)), (0, 20));
    // Two writers still share groups (one queues while the other's group is written).
    let (_, groups) = run(2, Duration::from_secs(2));
    assert!(groups < 40, "{groups} groups for 40 batches");
    assert_eq!(run(2, Duration::ZERO).0, 0);
}

/// Block compression takes effect: the same rows make a smaller segment with zstd.
#[test]
fn compression_knob_takes_effect() {
    let size = |c: quiver_core::Compression| {
        let d = tempfile::tempdir().unwrap();
        let db =
            Database::open(d.path(), DbConfig::new(Preset::Throughput).compression(c)).unwrap();
        db.write_batch(&(0..2000).map(|i| ev(i, i as i64)).collect::<Vec<_>>())
            .unwrap();
        db.flush().unwrap();
        let s = db.stats().unwrap();
        assert_eq!(s.segment_rows, 2000);
        s.segment_bytes
    };
    let none = size(quiver_core::Compression::None);
    let zstd = size(quiver_core::Compression::Zstd);
    let lz4 = size(quiver_core::Compression::Lz4);
    assert!(
        zstd < none / 2 && lz4 < none,
        "none {none}, lz4 {lz4}, zstd {zstd}"
    );
}

/// The segment and ledger knobs take effect: smaller blocks make more of them, more bloom bits
/// a larger filter, and the ledger hashes leaves with the configured algorithm.
#[test]
fn block_bloom_and_ledger_hash_knobs_take_effect() {
    use quiver_core::{codec, LedgerHash};
    use quiver_ledger::{leaf_hash, HashAlg};
    use quiver_segment::Segment;
    // (blocks, bloom and index bytes in memory, the ledger's algorithm and its first leaf)
    let build = |block_bytes: usize, bloom_bits: u32, hash: LedgerHash| {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Throughput)
            .block_bytes(block_bytes)
            .bloom_bits_per_key(bloom_bits)
            .ledger_hash(hash);
        let db = Database::open(d.path(), cfg).unwrap();
        let ops: Vec<Op> = (0..2000).map(|i| ev(i, i as i64)).collect();
        db.write_batch(&ops).unwrap();
        db.flush().unwrap();
        let ledger = db.ledger().unwrap();
        let (alg, leaf0) = (ledger.alg(), ledger.leaf_hash_at(0).unwrap());
        let mut body = codec::encode_op(&ops[0]).unwrap();
        codec::stamp_seq(&mut body, 1);
        assert_eq!(leaf0, leaf_hash(alg, &body), "leaf 0 is H(0x00 ‖ record 1)");
        db.close().unwrap();
        let seg = std::fs::read_dir(d.path().join("segments"))
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .unwrap()
            .path();
        let seg = Segment::open(&seg).unwrap();
        (seg.block_count(), seg.heap_bytes(), alg, leaf0)
    };
    let (blocks_small, _, alg_sha, leaf_sha) = build(2048, 2, LedgerHash::Sha256);
    let (blocks_large, heap_2, alg_b3, leaf_b3) = build(64 << 10, 2, LedgerHash::Blake3);
    let (_, heap_20, _, _) = build(64 << 10, 20, LedgerHash::Blake3);
    assert!(
        blocks_small > 4 * blocks_large,
        "2 KiB blocks: {blocks_small}, 64 KiB blocks: {blocks_large}"
    );
    // 2000 ids at 20 bits per key instead of 2: 4,500 more bytes of filter.
    assert!(heap_20 >= heap_2 + 4000, "{heap_2} -> {heap_20}");
    assert_eq!((alg_sha, alg_b3), (HashAlg::Sha256, HashAlg::Blake3));
    assert_ne!(leaf_sha, leaf_b3);
}

/// The flush interval takes effect: with a memtable far from full, an interval flush moves
/// the records into a segment on its own; with an hour's interval nothing is flushed.
#[test]
fn flush_interval_takes_effect() {
    let run = |interval: Duration, wait: Duration| {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Throughput).flush_interval(interval);
        let db = Database::open(d.path(), cfg).unwrap();
        db.write_batch(&(0..100).map(|i| ev(i, i as i64)).collect::<Vec<_>>())
            .unwrap();
        let s = poll_stats(&db, wait, |s| s.segments > 0);
        (s.segments, s.flushed_through)
    };
    assert_eq!(
        run(Duration::from_secs(3600), Duration::from_millis(600)),
        (0, 0)
    );
    assert_eq!(
        run(Duration::from_millis(100), Duration::from_secs(20)),
        (1, 100)
    );
}

/// Polls `stats` until `done` holds or `wait` has passed; returns the last stats.
fn poll_stats(
    db: &Database,
    wait: Duration,
    done: impl Fn(&quiver_engine::Stats) -> bool,
) -> quiver_engine::Stats {
    let start = std::time::Instant::now();
    loop {
        let s = db.stats().unwrap();
        if done(&s) || start.elapsed() >= wait {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The memtable size takes effect: past it, the background flush writes a segment without
/// being asked; under the default 64 MiB the same writes stay in the memtable.
#[test]
fn memtable_size_takes_effect() {
    let run = |memtable: usize, wait: Duration| {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Throughput)
            .memtable_bytes(memtable)
            .flush_interval(Duration::from_secs(3600));
        let db = Database::open(d.path(), cfg).unwrap();
        for b in 0..20u64 {
            db.write_batch(
                &(b * 50..b * 50 + 50)
                    .map(|i| ev(i, i as i64))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        }
        poll_stats(&db, wait, |s| s.segments > 0).segments
    };
    assert_eq!(run(64 << 20, Duration::from_millis(600)), 0);
    assert!(run(16 << 10, Duration::from_secs(20)) > 0);
}

/// The compaction trigger takes effect: six flushed segments that overwrite the same ids are
/// merged in the background once the trigger (3) is reached, and left alone under 100.
#[test]
fn compaction_trigger_takes_effect() {
    let run = |trigger: usize, wait: Duration| {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Throughput)
            .compaction_trigger(trigger)
            .flush_interval(Duration::from_secs(3600));
        let db = Database::open(d.path(), cfg).unwrap();
        for round in 0..6i64 {
            db.write_batch(&(0..50).map(|i| ev(i, round)).collect::<Vec<_>>())
                .unwrap();
            db.flush().unwrap();
        }
        let s = poll_stats(&db, wait, |s| s.segments < trigger);
        assert_eq!(
            db.get(&Id::U64(7)).unwrap().map(|e| e.seq),
            Some(5 * 50 + 8)
        );
        s.segments
    };
    assert_eq!(run(100, Duration::from_millis(600)), 6);
    assert!(run(3, Duration::from_secs(20)) < 3);
}

#[test]
fn a_data_directory_has_one_writer() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::default()).unwrap();
    let second = Database::open(d.path(), DbConfig::default());
    assert!(
        matches!(second, Err(EngineError::Locked { .. })),
        "second open must be refused"
    );
    db.close().unwrap();
    Database::open(d.path(), DbConfig::default())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn invalid_payload_json_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::default()).unwrap();
    let mut r = Record::new(1u64);
    r.payload = Some("{\"a\": ".into());
    assert!(matches!(
        db.write_batch(&[Op::Put(r)]),
        Err(EngineError::Invalid(_))
    ));
    let mut two = Record::new(2u64);
    two.payload = Some("1 2".into());
    assert!(matches!(
        db.write_batch(&[Op::Put(two)]),
        Err(EngineError::Invalid(_))
    ));
    assert_eq!(db.last_seq(), 0);
}

#[test]
fn the_ledger_setting_is_fixed_when_the_database_is_created() {
    let setting = |r: Result<Database, EngineError>| match r {
        Err(EngineError::LedgerSetting { requested, .. }) => requested,
        Err(e) => panic!("expected LedgerSetting, got {e}"),
        Ok(_) => panic!("expected LedgerSetting, the database opened"),
    };
    // Created without a ledger: opening it with one is refused, and nothing is written.
    let d = tempfile::tempdir().unwrap();
    let off = || DbConfig::new(Preset::Balanced).ledger(false);
    let db = Database::open(d.path(), off()).unwrap();
    db.write_batch(&[ev(1, 1), ev(2, 2)]).unwrap();
    db.close().unwrap();
    assert_eq!(setting(Database::open(d.path(), DbConfig::default())), "on");
    let db = Database::open(d.path(), off()).unwrap();
    assert_eq!(db.last_seq(), 2);
    assert!(db.ledger().is_none());
    db.write_batch(&[ev(3, 3)]).unwrap();
    db.close().unwrap();
    assert!(matches!(
        quiver_engine::verify::verify_dir(d.path(), &mut |_| {}),
        Err(EngineError::LedgerDisabled)
    ));

    // Created with a ledger: writing without one would leave a gap no proof crosses.
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::default()).unwrap();
    db.write_batch(&[ev(1, 1)]).unwrap();
    db.close().unwrap();
    assert_eq!(setting(Database::open(d.path(), off())), "off");
    let db = Database::open(d.path(), DbConfig::default()).unwrap();
    db.write_batch(&[ev(2, 2)]).unwrap();
    assert_eq!(db.ledger().map(|l| l.size()), Some(2));
    db.close().unwrap();

    // Still empty: the setting may change, and the next open follows the new one.
    let d = tempfile::tempdir().unwrap();
    Database::open(d.path(), DbConfig::default())
        .unwrap()
        .close()
        .unwrap();
    let db = Database::open(d.path(), off()).unwrap();
    db.write_batch(&[ev(1, 1)]).unwrap();
    db.close().unwrap();
    assert_eq!(setting(Database::open(d.path(), DbConfig::default())), "on");
}

#[test]
fn a_time_range_open_at_the_top_includes_the_last_timestamp() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), small(Preset::Throughput)).unwrap();
    db.write_batch(&[
        ev(1, i64::MIN),
        ev(2, 0),
        ev(3, i64::MAX - 1),
        ev(4, i64::MAX),
    ])
    .unwrap();
    let ids = |db: &Database, from: i64, to: i64| {
        let mut v = Vec::new();
        db.scan_time_range(from, to, &mut |e| {
            v.push(e.op.id().expect("stored records have ids").clone());
            Ok(true)
        })
        .unwrap();
        v
    };
    for round in ["memtable", "segment"] {
        assert_eq!(ids(&db, i64::MIN, i64::MAX).len(), 4, "{round}");
        assert_eq!(ids(&db, i64::MAX, i64::MAX), vec![Id::U64(4)], "{round}");
        assert_eq!(ids(&db, 1, i64::MAX - 1), Vec::<Id>::new(), "{round}");
        assert_eq!(ids(&db, 0, 1), vec![Id::U64(2)], "{round}");
        assert_eq!(ids(&db, 5, 5), Vec::<Id>::new(), "{round}");
        db.flush().unwrap();
    }
}

#[test]
fn values_the_layers_below_cannot_take_are_refused_at_open() {
    // Each once passed `open` and then failed every flush, hung writers or spun a core.
    let cases: [(DbConfig, &str); 6] = [
        (
            DbConfig::default().bloom_bits_per_key(65),
            "bloom_bits_per_key",
        ),
        (DbConfig::default().block_bytes(512 << 20), "block_bytes"),
        (
            DbConfig::new(Preset::Balanced).gather_delay(Duration::MAX),
            "wal.gather_delay",
        ),
        (
            DbConfig::default().flush_interval(Duration::ZERO),
            "flush_interval",
        ),
        (DbConfig::default().block_bytes(100), "block_bytes"),
        // A WAL file is read whole at open: a 64 GiB one would not fit in memory.
        (DbConfig::default().wal_file_size(64 << 30), "wal.file_size"),
    ];
    for (cfg, key) in cases {
        let d = tempfile::tempdir().unwrap();
        match Database::open(d.path(), cfg) {
            Err(EngineError::Invalid(CoreError::InvalidConfig { key: k, .. })) => {
                assert_eq!(k, key)
            }
            Err(e) => panic!("{key}: expected InvalidConfig, got {e}"),
            Ok(_) => panic!("{key}: accepted"),
        }
    }
    // The largest accepted values work end to end.
    let d = tempfile::tempdir().unwrap();
    let cfg = DbConfig::new(Preset::Balanced)
        .bloom_bits_per_key(64)
        .gather_delay(Duration::from_secs(1))
        .wal_file_size(quiver_core::config::MAX_WAL_FILE_SIZE);
    let db = Database::open(d.path(), cfg).unwrap();
    db.write_batch(&[ev(1, 1)]).unwrap();
    db.flush().unwrap();
    db.close().unwrap();
}

#[test]
fn stats_count_the_leaves_of_every_acknowledged_write() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::new(Preset::Throughput)).unwrap();
    for i in 0..300 {
        db.write_batch(&[ev(i, i as i64)]).unwrap();
        let s = db.stats().unwrap();
        assert_eq!(s.ledger_size, s.last_seq, "after write {i}");
    }
    db.close().unwrap();
}

/// A closed database of 50 events, all flushed to one segment.
fn fifty_flushed() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), small(Preset::Balanced)).unwrap();
    db.write_batch(&(0..50).map(|i| ev(i, i as i64)).collect::<Vec<_>>())
        .unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    d
}

/// A lost `CURRENT` must not turn an existing database into a new, empty one (whose first
/// flush would overwrite segment 1); a creation cut short before `CURRENT` still opens.
#[test]
fn a_missing_current_over_existing_data_is_refused() {
    let d = fifty_flushed();
    let seg = std::fs::read_dir(d.path().join("segments"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let before = std::fs::read(&seg).unwrap();
    std::fs::remove_file(d.path().join("CURRENT")).unwrap();
    match Database::open(d.path(), small(Preset::Balanced)) {
        Err(EngineError::Manifest { path, reason }) => {
            assert!(path.ends_with("CURRENT"), "{path:?}");
            assert!(reason.contains("segment files"), "{reason}");
        }
        other => panic!("expected a manifest error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read(&seg).unwrap(), before, "segment untouched");
    assert!(!d.path().join("CURRENT").exists(), "nothing created");

    // LOCK and a first MANIFEST but no CURRENT: a creation that crashed. It opens as new.
    let fresh = tempfile::tempdir().unwrap();
    Database::open(fresh.path(), small(Preset::Balanced))
        .unwrap()
        .close()
        .unwrap();
    for e in std::fs::read_dir(fresh.path()).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else if p.file_name().unwrap() == "CURRENT" {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let db = Database::open(fresh.path(), small(Preset::Balanced)).unwrap();
    assert_eq!(db.write_batch(&[ev(1, 1)]).unwrap().first, 1);
    db.close().unwrap();
}

/// A segment file no manifest names (a flush or compaction that failed before its manifest
/// swap) is removed at open instead of leaking for good.
#[test]
fn unreferenced_segment_files_are_removed_at_open() {
    let d = fifty_flushed();
    let segs = d.path().join("segments");
    let orphan = segs.join("000000000099.seg");
    std::fs::write(&orphan, b"half-written").unwrap();
    let other = segs.join("notes.txt");
    std::fs::write(&other, b"not ours").unwrap();
    let db = Database::open(d.path(), small(Preset::Balanced)).unwrap();
    assert!(!orphan.exists(), "orphan removed");
    assert!(other.exists(), "files that are not segments are left alone");
    let mut n = 0;
    db.scan(&mut |_| {
        n += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(n, 50);
    db.close().unwrap();
}

/// A foreground flush is not followed by a background one that cuts the records written
/// just after it into a segment of their own. (The flush thread saw the foreground flush's
/// frozen memtable, waited for the manifest lock, and then flushed whatever was new.)
#[test]
fn a_foreground_flush_leaves_later_records_in_the_memtable() {
    let d = tempfile::tempdir().unwrap();
    let cfg = DbConfig::new(Preset::Throughput)
        .memtable_bytes(64 << 20)
        .flush_interval(Duration::from_secs(3600))
        .compaction_trigger(1 << 20);
    let db = Database::open(d.path(), cfg).unwrap();
    let rounds = 150u64;
    for r in 0..rounds {
        db.write_batch(&[ev(2 * r, 0)]).unwrap();
        db.flush().unwrap();
        // Nothing but this record until the next round's flush: it belongs in that segment.
        db.write_batch(&[ev(2 * r + 1, 0)]).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(
        db.stats().unwrap().segments as u64,
        rounds,
        "one segment per foreground flush, none from the background"
    );
}

/// The flush interval runs from the last flush, foreground ones included: a record written
/// just after `Database::flush` is not flushed on the background thread's older clock, and
/// is flushed once an interval has passed since.
#[test]
fn the_flush_interval_runs_from_a_foreground_flush() {
    let d = tempfile::tempdir().unwrap();
    let interval = Duration::from_secs(2);
    let cfg = DbConfig::new(Preset::Throughput)
        .memtable_bytes(64 << 20)
        .flush_interval(interval)
        .compaction_trigger(1 << 20);
    let db = Database::open(d.path(), cfg).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    db.write_batch(&[ev(1, 0)]).unwrap();
    db.flush().unwrap();
    let flushed_at = std::time::Instant::now();
    db.write_batch(&[ev(2, 0)]).unwrap();
    // Past the interval since open, well within it since the foreground flush.
    std::thread::sleep(Duration::from_millis(800));
    let segments = db.stats().unwrap().segments;
    if flushed_at.elapsed() < interval {
        assert_eq!(segments, 1, "flushed on the clock of the flush before");
    }
    // And the interval still takes effect.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.stats().unwrap().segments < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "never flushed by interval"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        flushed_at.elapsed() >= interval,
        "flushed before its interval"
    );
}
