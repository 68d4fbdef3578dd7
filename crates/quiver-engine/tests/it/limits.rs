//! Records and batches at, just below and just above every size limit of the write path and
//! the readers: at or below a limit everything round-trips byte for byte across flush,
//! compaction, reopen and `verify`, with an inclusion proof for every seq; above it the error
//! is typed and nothing of the batch is written (no seq, no WAL bytes, no ledger leaf).

use crate::wal_files;
use quiver_core::{
    codec, Compression, CoreError, DbConfig, Entry, Id, Op, Preset, Record, SeqNo, MAX_ID_BYTES,
    MAX_VECTOR_DIM,
};
use quiver_engine::{verify::verify_dir, Database, EngineError};
use quiver_ledger::{leaf_hash, verify};
use std::path::Path;

/// A small configuration that reaches block, file and memtable limits cheaply.
fn tiny(preset: Preset) -> DbConfig {
    DbConfig::new(preset)
        .block_bytes(512)
        .wal_file_size(4096)
        .memtable_bytes(1 << 20)
        .compaction_trigger(64)
        .wal_direct_io(false)
}

/// A JSON string payload whose text is exactly `n` bytes (n >= 2).
fn payload_of(n: usize) -> String {
    format!("\"{}\"", "p".repeat(n - 2))
}

/// What a database must hold: every (seq, op) written, each id written once.
#[derive(Default)]
struct Model {
    entries: Vec<Entry>,
}

impl Model {
    fn add(&mut self, first: SeqNo, ops: &[Op]) {
        for (i, op) in ops.iter().enumerate() {
            self.entries.push(Entry {
                seq: first + i as u64,
                op: op.clone(),
            });
        }
    }
}

/// State that must not move when a batch is refused.
fn footprint(db: &Database) -> (SeqNo, u64, u64, u64) {
    let s = db.stats().unwrap();
    (
        s.last_seq,
        s.wal_bytes,
        s.ledger_size,
        wal_disk_bytes(db.path()),
    )
}

fn wal_disk_bytes(dir: &Path) -> u64 {
    wal_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// Writes `ops`, expecting them refused with an error `check` accepts, and nothing written.
fn refused(db: &Database, ops: &[Op], check: impl Fn(&EngineError) -> bool) {
    let before = footprint(db);
    let err = db
        .write_batch(ops)
        .expect_err("batch over a limit is refused");
    assert!(check(&err), "unexpected error: {err:?}");
    assert_eq!(
        footprint(db),
        before,
        "nothing of a refused batch is written"
    );
}

/// Every entry of the model is there, byte for byte: by id, in a full scan, in a time-range
/// scan (events), and provable in the ledger from its encoding.
fn check_model(db: &Database, m: &Model) {
    let live: Vec<&Entry> = m
        .entries
        .iter()
        .filter(|e| matches!(e.op, Op::Put(_)))
        .collect();
    let all = db.scan_all().unwrap();
    assert_eq!(all.len(), live.len(), "scan returns every record");
    for (got, want) in all.iter().zip(&live) {
        assert_eq!(got, *want, "scan entry seq {}", want.seq);
    }
    for want in &m.entries {
        let id = want.op.id().unwrap();
        let expect = matches!(want.op, Op::Put(_)).then_some(want);
        assert_eq!(db.get(id).unwrap().as_ref(), expect, "get {id}");
    }
    let events: Vec<&Entry> = m
        .entries
        .iter()
        .filter(|e| matches!(&e.op, Op::Put(r) if r.is_event()))
        .collect();
    let mut seen = Vec::new();
    db.scan_time_range(i64::MIN, i64::MAX, &mut |e| {
        seen.push(e);
        Ok(true)
    })
    .unwrap();
    assert_eq!(seen.len(), events.len());
    for (got, want) in seen.iter().zip(events) {
        assert_eq!(got, want);
    }
    let ledger = db.ledger().unwrap();
    let size = ledger.size();
    assert_eq!(size, db.last_seq());
    let root = ledger.root_at(size).unwrap();
    for e in &m.entries {
        let body = codec::encode_entry(e).unwrap();
        let leaf = leaf_hash(ledger.alg(), &body);
        assert_eq!(
            ledger.leaf_hash_at(e.seq - 1).unwrap(),
            leaf,
            "leaf {}",
            e.seq
        );
        let p = ledger.inclusion_proof(e.seq - 1, size).unwrap();
        verify::verify_inclusion(ledger.alg(), &leaf, e.seq - 1, size, &p.path, &root)
            .unwrap_or_else(|err| panic!("inclusion proof of seq {}: {err}", e.seq));
    }
}

fn verify_ok(dir: &Path, records_at_least: u64) {
    let r = verify_dir(dir, &mut |_| {}).unwrap();
    assert!(r.ok(), "verify: {:?}", r.failure);
    assert!(r.records >= records_at_least, "{} records", r.records);
}

/// Checks the model now, after a flush, after a compaction, after a close and reopen, and
/// with `verify`; also after a reopen of records that lived only in the WAL.
fn round_trip(dir: &Path, cfg: &DbConfig, db: Database, m: &Model) {
    check_model(&db, m);
    let live = db.scan_all().unwrap();
    db.close_without_flush().unwrap();
    verify_ok(dir, m.entries.len() as u64);
    // A read-only open replays the records that live only in the WAL.
    assert_eq!(
        Database::open_read_only(dir).unwrap().scan_all().unwrap(),
        live
    );
    let db = Database::open(dir, cfg.clone()).unwrap();
    check_model(&db, m);
    db.flush().unwrap();
    check_model(&db, m);
    db.compact().unwrap();
    check_model(&db, m);
    db.close().unwrap();
    let puts = m
        .entries
        .iter()
        .filter(|e| matches!(e.op, Op::Put(_)))
        .count();
    verify_ok(dir, puts as u64);
    let db = Database::open(dir, cfg.clone()).unwrap();
    check_model(&db, m);
    let ro = Database::open_read_only(dir).unwrap();
    assert_eq!(ro.scan_all().unwrap(), live);
    db.close().unwrap();
    // Limits apply to writes: a reopen with the smallest payload limit still reads, flushes
    // and compacts every stored record.
    let db = Database::open(dir, cfg.clone().max_payload_bytes(0)).unwrap();
    check_model(&db, m);
    db.compact().unwrap();
    db.close().unwrap();
    verify_ok(dir, puts as u64);
}

fn invalid_id(e: &EngineError) -> bool {
    matches!(e, EngineError::Invalid(CoreError::InvalidId { .. }))
}

#[test]
fn string_ids_at_and_around_their_length_limits() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny(Preset::Throughput);
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    let ok_ids = [
        "a".to_string(),
        "b".repeat(MAX_ID_BYTES - 1),
        "c".repeat(MAX_ID_BYTES),
        // 512 two-byte characters: 1024 bytes.
        "é".repeat(MAX_ID_BYTES / 2),
    ];
    for (i, id) in ok_ids.iter().enumerate() {
        let ops = [Op::Put(
            Record::new(id.as_str())
                .with_timestamp(i as i64)
                .with_payload(&serde_json::json!(i)),
        )];
        let r = db.write_batch(&ops).unwrap();
        m.add(r.first, &ops);
    }
    // A delete of an id at the limit is accepted too.
    let del = [Op::Delete(Id::Str("d".repeat(MAX_ID_BYTES)))];
    let r = db.write_batch(&del).unwrap();
    m.add(r.first, &del);
    let good = Op::Put(Record::new(77u64));
    for bad in [
        String::new(),
        "x".repeat(MAX_ID_BYTES + 1),
        // 1025 bytes of which the last character is multi-byte.
        format!("{}é", "y".repeat(MAX_ID_BYTES - 1)),
    ] {
        // Empty: invalid; too long: the field, its size and the maximum.
        let len = bad.len();
        let check = |e: &EngineError| match len {
            0 => invalid_id(e),
            _ => {
                matches!(e, EngineError::Invalid(CoreError::TooLarge { field: "string id", size, max })
                    if *size == len && *max == MAX_ID_BYTES)
            }
        };
        refused(
            &db,
            &[good.clone(), Op::Put(Record::new(bad.as_str()))],
            check,
        );
        refused(&db, &[good.clone(), Op::Delete(Id::Str(bad))], check);
    }
    round_trip(d.path(), &cfg, db, &m);
}

#[test]
fn type_and_source_at_and_around_u16_max() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny(Preset::Throughput);
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    let max = u16::MAX as usize;
    let mut id = 0u64;
    for n in [0, 1, max - 1, max] {
        id += 1;
        let ops = [Op::Put(
            Record::new(id)
                .with_timestamp(id as i64)
                .with_type("t".repeat(n))
                .with_source("s".repeat(n)),
        )];
        let r = db.write_batch(&ops).unwrap();
        m.add(r.first, &ops);
    }
    // A multi-byte string of exactly u16::MAX bytes (21845 three-byte characters).
    id += 1;
    let ops = [Op::Put(
        Record::new(id)
            .with_timestamp(0)
            .with_type("€".repeat(max / 3)),
    )];
    let r = db.write_batch(&ops).unwrap();
    m.add(r.first, &ops);
    let good = Op::Put(Record::new(999u64));
    for (field, rec) in [
        (
            "event type",
            Record::new(1000u64)
                .with_timestamp(0)
                .with_type("t".repeat(max + 1)),
        ),
        (
            "event source",
            Record::new(1000u64)
                .with_timestamp(0)
                .with_source("s".repeat(max + 1)),
        ),
    ] {
        refused(&db, &[good.clone(), Op::Put(rec)], |e| {
            matches!(e, EngineError::Invalid(CoreError::TooLarge { field: f, size, max: mx })
                if *f == field && *size == max + 1 && *mx == max)
        });
    }
    round_trip(d.path(), &cfg, db, &m);
}

#[test]
fn payloads_at_and_around_max_payload_bytes() {
    let d = tempfile::tempdir().unwrap();
    let max = 3000;
    let cfg = tiny(Preset::Throughput).max_payload_bytes(max);
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    for (id, n) in [(1u64, 2), (2, max - 1), (3, max)] {
        let ops = [Op::Put(Record {
            payload: Some(payload_of(n)),
            ..Record::new(id).with_timestamp(id as i64)
        })];
        let r = db.write_batch(&ops).unwrap();
        m.add(r.first, &ops);
    }
    let good = Op::Put(Record::new(999u64));
    refused(
        &db,
        &[
            good,
            Op::Put(Record {
                payload: Some(payload_of(max + 1)),
                ..Record::new(4u64)
            }),
        ],
        |e| {
            matches!(e, EngineError::Invalid(CoreError::TooLarge { field: "payload", size, max: mx })
                if *size == max + 1 && *mx == max)
        },
    );
    round_trip(d.path(), &cfg, db, &m);
}

#[test]
fn vectors_at_and_around_max_dimension() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny(Preset::Throughput);
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    for (id, dim) in [(1u64, 1), (2, MAX_VECTOR_DIM - 1), (3, MAX_VECTOR_DIM)] {
        let v: Vec<f32> = (0..dim).map(|i| i as f32 * 0.5 - 7.25).collect();
        let ops = [Op::Put(Record::new(id).with_vector(v))];
        let r = db.write_batch(&ops).unwrap();
        m.add(r.first, &ops);
    }
    let good = Op::Put(Record::new(999u64));
    refused(
        &db,
        &[
            good.clone(),
            Op::Put(Record::new(4u64).with_vector(vec![1.0; MAX_VECTOR_DIM + 1])),
        ],
        |e| {
            matches!(e, EngineError::Invalid(CoreError::VectorTooLong { dim, max })
                if *dim == MAX_VECTOR_DIM + 1 && *max == MAX_VECTOR_DIM)
        },
    );
    refused(
        &db,
        &[good, Op::Put(Record::new(4u64).with_vector(vec![]))],
        |e| matches!(e, EngineError::Invalid(CoreError::EmptyVector)),
    );
    round_trip(d.path(), &cfg, db, &m);
}

/// The largest record (string id, type, source, vector and payload all at their limits)
/// in blocks far smaller than it, with each compression, across flush, compaction, reopen and
/// verify; one byte more anywhere is refused.
#[test]
fn the_largest_record_in_tiny_compressed_blocks() {
    let max_payload = 1 << 20;
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let d = tempfile::tempdir().unwrap();
        let cfg = tiny(Preset::Throughput)
            .compression(compression)
            .max_payload_bytes(max_payload)
            .compaction_trigger(2);
        let db = Database::open(d.path(), cfg.clone()).unwrap();
        let mut m = Model::default();
        let big = |tag: char, seed: u32| {
            let mut x = seed.wrapping_mul(2_654_435_761) | 1;
            let v: Vec<f32> = (0..MAX_VECTOR_DIM)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 100_000) as f32 / 1000.0
                })
                .collect();
            Record {
                payload: Some(payload_of(max_payload)),
                ..Record::new(Id::Str(tag.to_string().repeat(MAX_ID_BYTES)))
                    .with_timestamp(i64::MAX - i64::from(seed))
                    .with_type("t".repeat(u16::MAX as usize))
                    .with_source("s".repeat(u16::MAX as usize))
                    .with_vector(v)
            }
        };
        // Two segments of two records each, then a compaction merges them.
        for pair in [['a', 'b'], ['c', 'd']] {
            let ops: Vec<Op> = pair.iter().map(|&c| Op::Put(big(c, c as u32))).collect();
            let r = db.write_batch(&ops).unwrap();
            m.add(r.first, &ops);
            db.flush().unwrap();
        }
        let over = [
            Record {
                payload: Some(payload_of(max_payload + 1)),
                ..big('e', 1)
            },
            Record {
                id: Some(Id::Str("e".repeat(MAX_ID_BYTES + 1))),
                ..big('e', 1)
            },
            Record {
                vector: Some(vec![0.0; MAX_VECTOR_DIM + 1]),
                ..big('e', 1)
            },
            Record {
                event_type: Some("t".repeat(u16::MAX as usize + 1)),
                ..big('e', 1)
            },
        ];
        for r in over {
            refused(&db, &[Op::Put(big('f', 2)), Op::Put(r)], |e| {
                matches!(e, EngineError::Invalid(_))
            });
        }
        round_trip(d.path(), &cfg, db, &m);
        assert_eq!(
            std::fs::read_dir(d.path().join("segments"))
                .unwrap()
                .count(),
            1,
            "{compression:?}: compacted into one segment"
        );
    }
}

/// A record larger than a WAL file, a batch larger than a WAL file, and a batch that fills
/// the active file exactly (no rotation) or by one byte more (rotation): each batch lands
/// whole in one file, and the log replays after a reopen.
#[test]
fn wal_file_size_exceeded_by_one_record_or_one_batch() {
    for preset in [Preset::Throughput, Preset::Durable] {
        for direct in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let cfg = tiny(preset).wal_direct_io(direct);
            let file_size = cfg.wal.file_size as usize;
            let db = Database::open(d.path(), cfg.clone()).unwrap();
            let mut m = Model::default();
            let rec = |id: u64, payload: usize| {
                Op::Put(Record {
                    payload: Some(payload_of(payload)),
                    ..Record::new(id).with_timestamp(id as i64)
                })
            };
            let frame = |op: &Op| 8 + codec::encode_op(op).unwrap().len();
            // Each batch is a commit group of its own, behind a group header.
            let group = quiver_wal::format::GROUP_HEADER_LEN;
            let mut write = |db: &Database, ops: &[Op]| {
                let r = db.write_batch(ops).unwrap();
                m.add(r.first, ops);
            };
            // One record three times the file size.
            write(&db, &[rec(1, 3 * file_size)]);
            let files = wal_files(d.path()).len();
            // A batch of three records, together twice the file size: one new file.
            write(&db, &[rec(2, 2000), rec(3, 3000), rec(4, 3000)]);
            assert_eq!(wal_files(d.path()).len(), files + 1, "{preset:?}");
            // A fresh file, then a batch that fills it exactly: no rotation.
            write(&db, &[rec(5, 10)]);
            let files = wal_files(d.path()).len();
            let used = 40 + group + frame(&rec(5, 10));
            let filler = rec(6, 100);
            let rest = file_size - used - group - frame(&filler);
            let exact = rec(7, rest - (frame(&rec(7, 100)) - 100));
            assert_eq!(used + group + frame(&filler) + frame(&exact), file_size);
            write(&db, &[filler, exact]);
            assert_eq!(
                wal_files(d.path()).len(),
                files,
                "exactly full: no rotation"
            );
            // One byte more than the room left: a new file.
            write(&db, &[rec(8, 10)]);
            let files = wal_files(d.path()).len();
            let used = 40 + group + frame(&rec(8, 10));
            let one_over = rec(
                9,
                file_size - used - group - (frame(&rec(9, 100)) - 100) + 1,
            );
            assert_eq!(used + group + frame(&one_over), file_size + 1);
            write(&db, &[one_over]);
            assert_eq!(
                wal_files(d.path()).len(),
                files + 1,
                "one byte over: rotation"
            );
            round_trip(d.path(), &cfg, db, &m);
        }
    }
}

/// A batch larger than `max_group_entries` commits whole, in one group, with consecutive
/// seqs; so do batches of exactly the maximum and one below it.
#[test]
fn batches_around_max_group_entries() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Preset::Balanced);
    cfg.wal.max_group_entries = 4;
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    let mut next = 0u64;
    for n in [3usize, 4, 5, 40] {
        let groups = db.stats().unwrap().wal_groups;
        let ops: Vec<Op> = (0..n)
            .map(|_| {
                next += 1;
                Op::Put(Record::new(next).with_timestamp(next as i64))
            })
            .collect();
        let r = db.write_batch(&ops).unwrap();
        assert_eq!(r.len(), n as u64);
        assert_eq!(db.stats().unwrap().wal_groups, groups + 1, "one group");
        m.add(r.first, &ops);
    }
    round_trip(d.path(), &cfg, db, &m);
}

/// Records larger than the whole memtable budget (and than an arena chunk) are flushed by
/// the background thread one after another and all stay readable.
#[test]
fn records_larger_than_the_memtable_and_an_arena_chunk() {
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny(Preset::Throughput)
        .memtable_bytes(4096)
        .max_payload_bytes(3 << 20)
        .flush_interval(std::time::Duration::from_millis(20));
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    // Around the 1 MiB arena chunk: a body of exactly one chunk, one below, one above.
    let chunk = 1 << 20;
    let head = codec::encode_op(&Op::Put(Record {
        payload: Some(payload_of(100)),
        ..Record::new(1u64)
    }))
    .unwrap()
    .len()
        - 100;
    let mut id = 0;
    for body in [chunk - 1, chunk, chunk + 1, 3 * chunk, 5000, 100] {
        id += 1;
        let op = Op::Put(Record {
            payload: Some(payload_of(body - head)),
            ..Record::new(id)
        });
        assert_eq!(codec::encode_op(&op).unwrap().len(), body);
        let r = db.write_batch(std::slice::from_ref(&op)).unwrap();
        m.add(r.first, &[op]);
        check_model(&db, &m);
    }
    // Background flushes took the memtable over its budget to segments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.stats().unwrap().segments == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(db.stats().unwrap().segments > 0, "a background flush ran");
    round_trip(d.path(), &cfg, db, &m);
}

/// Rows around the block size: a row that fills a block exactly, one byte more (a block of
/// its own), two rows that fill one exactly, and rows many times the block size.
#[test]
fn rows_around_and_over_the_block_size() {
    use quiver_segment::Segment;
    let d = tempfile::tempdir().unwrap();
    let cfg = tiny(Preset::Throughput).block_bytes(512);
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let head = codec::encode_op(&Op::Put(Record {
        payload: Some(payload_of(100)),
        ..Record::new(1u64)
    }))
    .unwrap()
    .len()
        - 100;
    // A row in a block takes 4 + its body.
    let row = |id: u64, body: usize| {
        Op::Put(Record {
            payload: Some(payload_of(body - head)),
            ..Record::new(id)
        })
    };
    let blocks_of = |db: &Database, ops: &[Op]| {
        let r = db.write_batch(ops).unwrap();
        db.flush().unwrap();
        let seg = std::fs::read_dir(d.path().join("segments"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .max()
            .unwrap();
        (r, Segment::open(&seg).unwrap().block_count())
    };
    let mut m = Model::default();
    for (ops, want_blocks) in [
        (vec![row(1, 508), row(2, 508)], 2),
        (vec![row(3, 252), row(4, 252)], 1),
        (vec![row(5, 253), row(6, 252)], 2),
        (vec![row(7, 5000), row(8, 100), row(9, 5000)], 3),
    ] {
        let (r, blocks) = blocks_of(&db, &ops);
        assert_eq!(blocks, want_blocks, "rows of {:?}", r);
        m.add(r.first, &ops);
    }
    round_trip(d.path(), &cfg, db, &m);
}

/// Segments with a single id, with the bloom filter off and at its maximum density: the
/// id is found, others are not, and verify checks the filter.
#[test]
fn single_key_segments_with_bloom_off_and_at_maximum() {
    for bits in [0, 1, 64] {
        let d = tempfile::tempdir().unwrap();
        let cfg = tiny(Preset::Throughput).bloom_bits_per_key(bits);
        let db = Database::open(d.path(), cfg.clone()).unwrap();
        let mut m = Model::default();
        let ops = [Op::Put(Record::new("only").with_timestamp(1))];
        let r = db.write_batch(&ops).unwrap();
        m.add(r.first, &ops);
        db.flush().unwrap();
        for other in [Id::from("other"), Id::U64(0), Id::from("onl")] {
            assert_eq!(db.get(&other).unwrap(), None, "bits {bits}");
        }
        round_trip(d.path(), &cfg, db, &m);
    }
}

/// A batch of no records is refused with a typed error and writes nothing, with or without a
/// receipt.
#[test]
fn an_empty_batch_is_refused_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), tiny(Preset::Durable)).unwrap();
    let empty = |e: &EngineError| matches!(e, EngineError::Invalid(CoreError::EmptyBatch));
    refused(&db, &[], empty);
    db.write_batch(&[Op::Put(Record::new(1u64))]).unwrap();
    refused(&db, &[], empty);
    let before = footprint(&db);
    let err = db.write_batch_with_receipt(&[]).unwrap_err();
    assert!(empty(&err), "{err:?}");
    assert_eq!(footprint(&db), before);
    assert_eq!(
        db.write_batch(&[Op::Put(Record::new(2u64))]).unwrap().first,
        2
    );
    db.close().unwrap();
    verify_ok(d.path(), 2);
}

/// Receipts for a batch of one record and for a batch of thousands: the signed range is the
/// batch's, and every seq in it is provable against the receipt's root.
#[test]
fn receipts_for_a_batch_of_one_and_a_huge_batch() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = tiny(Preset::Balanced);
    cfg.wal.max_group_entries = 100;
    let db = Database::open(d.path(), cfg.clone()).unwrap();
    let mut m = Model::default();
    let key = db.ledger().unwrap().public_key();
    let mut next = 0u64;
    for n in [1usize, 5000, 1] {
        let ops: Vec<Op> = (0..n)
            .map(|_| {
                next += 1;
                Op::Put(Record::new(next).with_timestamp(next as i64))
            })
            .collect();
        let (range, receipt) = db.write_batch_with_receipt(&ops).unwrap();
        assert_eq!(
            (receipt.first_seq, receipt.last_seq),
            (range.first, range.last)
        );
        assert_eq!(range.len(), n as u64);
        assert!(receipt.tree_size >= range.last);
        verify::verify_receipt(&key, &receipt).unwrap();
        let ledger = db.ledger().unwrap();
        for (i, op) in ops.iter().enumerate() {
            let seq = range.first + i as u64;
            let body = codec::encode_entry(&Entry {
                seq,
                op: op.clone(),
            })
            .unwrap();
            let leaf = leaf_hash(ledger.alg(), &body);
            let p = ledger.inclusion_proof(seq - 1, receipt.tree_size).unwrap();
            verify::verify_inclusion(
                ledger.alg(),
                &leaf,
                seq - 1,
                receipt.tree_size,
                &p.path,
                &receipt.root,
            )
            .unwrap();
        }
        m.add(range.first, &ops);
    }
    round_trip(d.path(), &cfg, db, &m);
}
