//! Every tamper case is caught by `verify_dir` with the right first bad sequence number.

use crate::wal_files;
use quiver_core::{codec, DbConfig, Op, Preset, Record};
use quiver_engine::{verify::verify_dir, Database};
use quiver_segment::SegmentOptions;
use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

const HEADER: usize = 40;

fn ev(i: u64) -> Op {
    Op::Put(
        Record::new(i)
            .with_timestamp(i as i64)
            .with_type("t")
            .with_payload(&serde_json::json!({"i": i, "pad": "abcdefghijklmnop"})),
    )
}

/// Seqs 1..=200 flushed to segments, 201..=300 only in the WAL; ledger synced and signed.
fn setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let cfg = DbConfig::new(Preset::Throughput)
        .memtable_bytes(1 << 20)
        .flush_interval(Duration::from_secs(3600))
        .block_bytes(1024);
    let db = Database::open(d.path(), cfg).unwrap();
    for b in 0..20 {
        db.write_batch(&(b * 10..b * 10 + 10).map(ev).collect::<Vec<_>>())
            .unwrap();
    }
    db.flush().unwrap();
    for b in 20..30 {
        db.write_batch(&(b * 10..b * 10 + 10).map(ev).collect::<Vec<_>>())
            .unwrap();
    }
    db.close_without_flush().unwrap();
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "clean database verifies: {:?}", r.failure);
    assert_eq!(r.tree_size, 300);
    assert!(r.checkpoints >= 1);
    d
}

fn bad_seq(d: &Path) -> u64 {
    let r = verify_dir(d, &mut |_| {}).unwrap();
    r.failure
        .unwrap_or_else(|| panic!("tampering went unnoticed"))
        .first_bad_seq
}

/// A segment file of the database in `d` (`setup` flushes seqs 1..=200 into one).
fn first_segment(d: &Path) -> PathBuf {
    fs::read_dir(d.join("segments"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
}

fn frames(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    quiver_wal::walk_groups("wal", buf, false, &mut |_, body| {
        out.push(body.to_vec());
        Ok(())
    })
    .unwrap();
    out
}

/// Rewrites the WAL file holding `seq` through `edit` on its record bodies, each record its
/// own group, all checksums valid: a forger who knows the format.
fn edit_wal(d: &Path, seq: u64, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    for f in wal_files(d) {
        let buf = fs::read(&f).unwrap();
        let mut fr = frames(&buf);
        if !fr.iter().any(|b| codec::peek_seq(b).unwrap() == seq) {
            continue;
        }
        edit(&mut fr);
        let mut out = buf[..HEADER].to_vec();
        for b in &fr {
            let at = out.len() as u64;
            quiver_wal::format::push_group(&mut out, &[b], at, false);
        }
        fs::write(&f, out).unwrap();
        return;
    }
    panic!("seq {seq} not in the WAL");
}

fn pos(fr: &[Vec<u8>], seq: u64) -> usize {
    fr.iter()
        .position(|b| codec::peek_seq(b).unwrap() == seq)
        .unwrap()
}

fn flip_payload(body: &mut [u8]) {
    let i = body.iter().rposition(|&c| c == b'p').unwrap();
    body[i] = b'q';
}

#[test]
fn wal_payload_flip_with_crc_recomputed() {
    let d = setup();
    edit_wal(d.path(), 250, |fr| {
        let i = pos(fr, 250);
        flip_payload(&mut fr[i]);
    });
    assert_eq!(bad_seq(d.path()), 250);
}

/// The WAL still holds seqs 1..=200 after their flush: those copies are checked too (in
/// batches, after the file's walk), and the lowest bad seq wins over a later WAL-only one.
#[test]
fn wal_copy_of_a_flushed_record_flipped() {
    let d = setup();
    edit_wal(d.path(), 150, |fr| {
        let i = pos(fr, 150);
        flip_payload(&mut fr[i]);
    });
    assert_eq!(bad_seq(d.path()), 150);
    edit_wal(d.path(), 250, |fr| {
        let i = pos(fr, 250);
        flip_payload(&mut fr[i]);
        let i = pos(fr, 120);
        flip_payload(&mut fr[i]);
    });
    assert_eq!(bad_seq(d.path()), 120);
}

#[test]
fn segment_row_flip_with_block_checksum_recomputed() {
    let d = setup();
    let seg = first_segment(d.path());
    let opts = SegmentOptions {
        block_bytes: 1024,
        bloom_bits_per_key: 10,
        compression: Default::default(),
    };
    quiver_segment::tamper::rewrite_rows(&seg, &opts, |row| {
        if codec::peek_seq(row).unwrap() == 120 {
            flip_payload(row);
        }
        true
    })
    .unwrap();
    assert_eq!(bad_seq(d.path()), 120);
}

/// The id index is not record data, but `get` reads it: bit rot there fails verification,
/// naming the segment, at the segment's lowest seq.
#[test]
fn segment_id_index_flip() {
    let d = setup();
    let seg = first_segment(d.path());
    let mut b = fs::read(&seg).unwrap();
    let foot = b.len() - 136;
    let index_at = u64::from_le_bytes(b[foot..foot + 8].try_into().unwrap()) as usize;
    b[index_at + 3] ^= 0x10;
    fs::write(&seg, &b).unwrap();
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    let f = r.failure.expect("a damaged id index fails verification");
    assert_eq!(f.first_bad_seq, 1);
    assert_eq!(f.file, seg);
    assert!(f.reason.contains("id index"), "{}", f.reason);
}

/// Rewrites a region of a segment and the CRCs that cover it: `field_at` is the footer
/// offset of the region's `(offset, len)` pair, `crc_at` that of the region's CRC32C.
fn edit_segment_region(seg: &Path, field_at: usize, crc_at: usize, edit: impl FnOnce(&mut [u8])) {
    let mut b = fs::read(seg).unwrap();
    let foot = b.len() - 136;
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) as usize;
    let (off, len) = (u64_at(&b, foot + field_at), u64_at(&b, foot + field_at + 8));
    edit(&mut b[off..off + len]);
    let crc = crc32c::crc32c(&b[off..off + len]);
    b[foot + crc_at..foot + crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32c::crc32c(&b[foot..foot + 124]);
    b[foot + 124..foot + 128].copy_from_slice(&crc.to_le_bytes());
    fs::write(seg, &b).unwrap();
}

/// Metadata that reads trust, forged with every checksum recomputed: a block's timestamp
/// summary (time-range scans skip the block) and the bloom filter (`get` skips the
/// segment). Both fail verification, naming the segment.
#[test]
fn segment_summaries_forged_with_checksums_recomputed() {
    // Block 0's entry: flags at byte 21 (bit 0: holds events), min/max ts at 44 and 52.
    let d = setup();
    let seg = first_segment(d.path());
    edit_segment_region(&seg, 24, 60, |index| {
        index[21] &= !1;
        index[44..60].fill(0);
    });
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    let f = r
        .failure
        .expect("a forged timestamp summary fails verification");
    assert_eq!(f.first_bad_seq, 1);
    assert_eq!(f.file, seg);
    assert!(f.reason.contains("timestamp summary"), "{}", f.reason);

    // Every bloom bit cleared: every lookup would say "not here".
    let d = setup();
    let seg = first_segment(d.path());
    edit_segment_region(&seg, 40, 64, |bloom| bloom[16..].fill(0));
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    let f = r
        .failure
        .expect("an emptied bloom filter fails verification");
    assert_eq!(f.file, seg);
    assert!(f.reason.contains("bloom"), "{}", f.reason);
}

#[test]
fn wal_record_deleted_swapped_or_inserted() {
    let d = setup();
    edit_wal(d.path(), 250, |fr| {
        let i = pos(fr, 250);
        fr.remove(i);
    });
    assert_eq!(bad_seq(d.path()), 250, "deleted");

    let d = setup();
    edit_wal(d.path(), 250, |fr| {
        let i = pos(fr, 250);
        fr.swap(i, i + 1);
    });
    assert_eq!(bad_seq(d.path()), 250, "swapped");

    let d = setup();
    edit_wal(d.path(), 250, |fr| {
        let i = pos(fr, 250);
        let mut forged = fr[i].clone();
        flip_payload(&mut forged);
        fr.insert(i + 1, forged);
    });
    assert_eq!(bad_seq(d.path()), 250, "inserted");
}

#[test]
fn stored_leaf_hash_altered() {
    // Even and odd leaves, in segments and in the WAL: the node above an odd leaf names its
    // even sibling first, and only the record check can tell which of the two was altered.
    for index in [76u64, 77, 250, 251] {
        let d = setup();
        let p = d.path().join("ledger").join("level-00.hashes");
        let mut b = fs::read(&p).unwrap();
        b[32 + 32 * index as usize + 5] ^= 0x40;
        fs::write(&p, b).unwrap();
        assert_eq!(bad_seq(d.path()), index + 1, "leaf index {index}");
    }
}

#[test]
fn wal_truncated_or_removed_below_the_checkpoint() {
    let d = setup();
    edit_wal(d.path(), 260, |fr| {
        let i = pos(fr, 260);
        fr.truncate(i + 1);
    });
    assert_eq!(bad_seq(d.path()), 261, "truncated after 260");

    let d = setup();
    for f in wal_files(d.path()) {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(bad_seq(d.path()), 201, "WAL removed");
}

#[test]
fn checkpoint_or_key_replaced() {
    // Key file swapped: every checkpoint signature fails.
    let d = setup();
    let other = tempfile::tempdir().unwrap();
    let db = Database::open(other.path(), DbConfig::default()).unwrap();
    db.close().unwrap();
    fs::copy(
        other.path().join("keys/node.ed25519"),
        d.path().join("keys/node.ed25519"),
    )
    .unwrap();
    assert!(
        verify_dir(d.path(), &mut |_| {}).unwrap().failure.is_some(),
        "swapped key"
    );

    // A checkpoint's root replaced (frame CRC recomputed): its root no longer matches.
    let d = setup();
    let p = d.path().join("ledger/checkpoints.log");
    let mut b = fs::read(&p).unwrap();
    let body_start = 16 + 8;
    let len = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
    let text = String::from_utf8(b[body_start..body_start + len].to_vec()).unwrap();
    let root_line = text.lines().nth(2).unwrap().to_owned();
    let mut forged = root_line.clone().into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let text2 = text.replacen(&root_line, std::str::from_utf8(&forged).unwrap(), 1);
    b[body_start..body_start + len].copy_from_slice(text2.as_bytes());
    let crc = crc32c::crc32c(&b[body_start..body_start + len]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    fs::write(&p, b).unwrap();
    assert!(
        verify_dir(d.path(), &mut |_| {}).unwrap().failure.is_some(),
        "checkpoint root replaced"
    );
}

/// Seqs 1..=300 flushed into three segments of 100 (ids 0..300); the database stays open.
fn three_segments(d: &Path) -> Database {
    let cfg = DbConfig::new(Preset::Throughput)
        .memtable_bytes(1 << 20)
        .flush_interval(Duration::from_secs(3600))
        .compaction_trigger(100);
    let db = Database::open(d, cfg).unwrap();
    for b in 0..3u64 {
        db.write_batch(&(b * 100..b * 100 + 100).map(ev).collect::<Vec<_>>())
            .unwrap();
        db.flush().unwrap();
    }
    db
}

/// [`three_segments`], then ids 0..50 overwritten (seqs 301..=350) and ids 50..60 deleted
/// (seqs 351..=360), flushed and compacted: the compaction drops the 60 overwritten and
/// deleted versions.
fn setup_compacted() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let db = three_segments(d.path());
    db.write_batch(&(0..50).map(ev).collect::<Vec<_>>())
        .unwrap();
    db.write_batch(
        &(50..60)
            .map(|i| Op::Delete(quiver_core::Id::U64(i)))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    db.flush().unwrap();
    db.compact().unwrap();
    db.close().unwrap();
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "compacted database verifies: {:?}", r.failure);
    assert_eq!(r.tree_size, 360);
    d
}

/// Rewrites the manifest through `edit` (its checksum recomputed: the manifest is not signed).
fn edit_manifest(d: &Path, edit: impl FnOnce(&mut quiver_engine::manifest::Manifest)) {
    let mut m = quiver_engine::manifest::load(d).unwrap().unwrap();
    edit(&mut m);
    m.number += 1;
    quiver_engine::manifest::store(d, &m).unwrap();
}

#[test]
fn records_removed_with_a_matching_manifest() {
    // The newest segment (seqs 201..=300) and its manifest entry removed, the WAL too.
    let d = tempfile::tempdir().unwrap();
    three_segments(d.path()).close().unwrap();
    assert!(verify_dir(d.path(), &mut |_| {}).unwrap().ok());
    let mut gone = None;
    edit_manifest(d.path(), |m| gone = m.segments.pop());
    let gone = gone.unwrap();
    fs::remove_file(
        d.path()
            .join("segments")
            .join(format!("{:012}.seg", gone.id)),
    )
    .unwrap();
    for f in wal_files(d.path()) {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(bad_seq(d.path()), 201, "newest segment removed");

    // A middle segment and its entry removed: the WAL is gone already.
    let d = setup_compacted();
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    assert!(r.ok());
    edit_manifest(d.path(), |m| {
        m.segments.clear();
    });
    // Seqs 1..=60 were dropped (overwritten or deleted) and are on record; 61 is not.
    assert_eq!(
        bad_seq(d.path()),
        61,
        "every segment dropped from the manifest"
    );

    // WAL records hidden by raising the flushed seq past them.
    let d = setup();
    edit_manifest(d.path(), |m| m.flushed_through = 300);
    assert_eq!(
        bad_seq(d.path()),
        201,
        "flushed seq raised over WAL-only records"
    );
}

#[test]
fn the_drop_log_vouches_only_for_what_was_dropped() {
    let d = setup_compacted();
    let log = d.path().join(quiver_engine::dropped::FILE);
    let signed = fs::read(&log).unwrap();
    assert!(signed.len() > 16, "the compaction's drops are on record");

    // Removed: the 60 dropped versions (seqs 1..=50 overwritten, 51..=60 deleted, and their
    // tombstones 351..=360) become unexplained gaps.
    fs::remove_file(&log).unwrap();
    assert_eq!(bad_seq(d.path()), 1, "drop log removed");

    // The record's signature altered, its checksum recomputed: refused.
    let d = setup_compacted();
    let log = d.path().join(quiver_engine::dropped::FILE);
    let mut b = fs::read(&log).unwrap();
    let n = b.len();
    b[n - 1] ^= 1; // the last record's signature
    let body_len = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c(&b[24..24 + body_len]);
    if 24 + body_len == n {
        b[20..24].copy_from_slice(&crc.to_le_bytes());
    }
    fs::write(&log, &b).unwrap();
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    let f = r
        .failure
        .expect("a forged drop-log signature fails verification");
    assert!(f.reason.contains("drop log"), "{}", f.reason);
}

#[test]
fn a_torn_drop_log_record_is_cut_off_not_buried() {
    let cfg = || {
        DbConfig::new(Preset::Throughput)
            .memtable_bytes(1 << 20)
            .flush_interval(Duration::from_secs(3600))
    };
    let three_times = |db: &Database, n: usize| {
        for _ in 0..n {
            db.write_batch(&(1..=100).map(ev).collect::<Vec<_>>())
                .unwrap();
        }
    };
    // What a crash left in DROPPED: bytes appended to it (`true`) or the whole file.
    let mut cut = 872u32.to_le_bytes().to_vec(); // 100 seqs + signature
    cut.extend_from_slice(&0u32.to_le_bytes());
    cut.extend_from_slice(&100u64.to_le_bytes());
    cut.extend_from_slice(&201u64.to_le_bytes());
    // Its first bytes arrived, the rest from a sector boundary on reads as zeros (the non-zero
    // part is sized to the log's length below).
    let mut zero_body = 872u32.to_le_bytes().to_vec();
    zero_body.extend_from_slice(&0x1234u32.to_le_bytes());
    zero_body.extend_from_slice(&[0u8; 872]);
    let tails: [(&str, bool, Vec<u8>); 6] = [
        ("torn record", true, cut),
        // What a power loss leaves where the size reached the disk but the data did not.
        ("zero-filled tail", true, vec![0u8; 24]),
        ("record whose body reads as zeros", true, zero_body),
        ("empty file", false, Vec::new()),
        ("torn header", false, b"QVDRO".to_vec()),
        ("zeros only", false, vec![0u8; 40]),
    ];
    for (what, append, bytes) in tails {
        let d = tempfile::tempdir().unwrap();
        let db = Database::open(d.path(), cfg()).unwrap();
        if append {
            three_times(&db, 3);
            db.flush().unwrap(); // drops the 200 overwritten versions
        }
        three_times(&db, 2);
        db.close_without_flush().unwrap();
        let log = d.path().join(quiver_engine::dropped::FILE);
        if append {
            let mut b = fs::read(&log).unwrap();
            let at = b.len();
            b.extend_from_slice(&bytes);
            if what == "record whose body reads as zeros" {
                let sector = (at + 8).next_multiple_of(512);
                b[at + 8..sector].fill(0xab);
            }
            fs::write(&log, b).unwrap();
        } else {
            fs::write(&log, &bytes).unwrap();
        }
        let r = verify_dir(d.path(), &mut |_| {}).unwrap();
        assert!(r.ok(), "{what}: a torn tail is no damage: {:?}", r.failure);
        // The next open cuts it off, so the next record lands after whole ones.
        let db = Database::open(d.path(), cfg()).unwrap();
        db.flush().unwrap(); // drops 100 more
        db.close().unwrap();
        let r = verify_dir(d.path(), &mut |_| {}).unwrap();
        assert!(r.ok(), "{what}: {:?}", r.failure);
    }
}

/// A crash while a WAL file is being created leaves it empty, zero-filled or with part of its
/// header: recovery removes it (WAL rule 0), so `verify` of the crashed directory must not
/// call it damage. The same file before the end of the log is damage.
#[test]
fn a_wal_file_whose_creation_was_cut_short_is_no_damage() {
    for contents in [Vec::new(), vec![0u8; 4096], b"QVRW".to_vec()] {
        let d = setup();
        let next = d
            .path()
            .join("wal")
            .join(quiver_wal::format::file_name(301));
        fs::write(&next, &contents).unwrap();
        let r = verify_dir(d.path(), &mut |_| {}).unwrap();
        assert!(r.ok(), "{contents:?}: {:?}", r.failure);
        assert_eq!(r.records, 300);
        // Followed by a real file it is a hole in the log.
        let after = d
            .path()
            .join("wal")
            .join(quiver_wal::format::file_name(302));
        fs::write(&after, b"QVWAL\0\0\0 not a header, but not torn either....").unwrap();
        assert!(!verify_dir(d.path(), &mut |_| {}).unwrap().ok());
    }
}

/// A manifest whose `flushed_through` (checksum recomputed) runs past every leaf the ledger
/// holds claims records that were never hashed: open refuses it instead of acknowledging
/// writes at seq 1,000,000 and stalling on leaves that never come.
#[test]
fn a_flushed_seq_beyond_the_ledger_is_refused_at_open() {
    let d = setup();
    edit_manifest(d.path(), |m| m.flushed_through = 999_999);
    match Database::open(d.path(), DbConfig::new(Preset::Throughput)) {
        Err(quiver_engine::EngineError::Manifest { reason, .. }) => {
            assert!(reason.contains("beyond the ledger"), "{reason}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(!verify_dir(d.path(), &mut |_| {}).unwrap().ok());
}

/// Under `throughput` a power cut can keep hashed leaves whose WAL records never reached the
/// disk. Recovery drops such leaves unless a signed checkpoint or receipt covers them, and
/// `verify` follows the same rule: above the newest signed size they are a crash's tail
/// (reported, not a failure); at or below it, missing records are a failure.
#[test]
fn leaves_past_the_log_are_a_crash_tail_unless_signed() {
    for with_receipt in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let cfg = DbConfig::new(Preset::Throughput)
            .memtable_bytes(1 << 20)
            .flush_interval(Duration::from_secs(3600))
            .checkpoint_every(1_000_000)
            .checkpoint_interval(Duration::from_secs(3600));
        let db = Database::open(d.path(), cfg).unwrap();
        db.write_batch(&(0..100).map(ev).collect::<Vec<_>>())
            .unwrap();
        db.checkpoint().unwrap(); // signs size 100 (and syncs the WAL)
        db.write_batch(&(100..140).map(ev).collect::<Vec<_>>())
            .unwrap();
        if with_receipt {
            db.write_batch_with_receipt(&(140..150).map(ev).collect::<Vec<_>>())
                .unwrap(); // signs size 150
        } else {
            db.write_batch(&(140..150).map(ev).collect::<Vec<_>>())
                .unwrap();
        }
        db.stats().unwrap(); // every leaf is in the ledger
        db.ledger().unwrap().sync().unwrap();
        // The power cut: the process never closes, and the WAL loses seqs 121..=150.
        std::mem::forget(db);
        edit_wal(d.path(), 121, |fr| {
            let i = pos(fr, 121);
            fr.truncate(i);
        });
        let r = verify_dir(d.path(), &mut |_| {}).unwrap();
        if with_receipt {
            let f = r.failure.expect("a receipt covers seqs 121..=150");
            assert_eq!(f.first_bad_seq, 121);
            assert!(
                f.reason.contains("signed checkpoint or receipt"),
                "{}",
                f.reason
            );
        } else {
            assert!(r.ok(), "{:?}", r.failure);
            assert_eq!((r.records, r.leaves_past_log), (120, 30));
        }
    }
}

/// A final WAL file emptied (or zeroed) after records went into it looks like a creation cut
/// short, which recovery would remove; but the ledger holds leaves of its seqs, and a file's
/// header is synced before its first record goes in. verify reports it, open refuses it.
#[test]
fn an_emptied_final_wal_file_with_hashed_records_is_damage() {
    for contents in [Vec::new(), vec![0u8; 4096]] {
        let d = tempfile::tempdir().unwrap();
        let cfg = || {
            DbConfig::new(Preset::Balanced)
                .wal_file_size(4096)
                .memtable_bytes(1 << 20)
                .flush_interval(Duration::from_secs(3600))
        };
        let db = Database::open(d.path(), cfg()).unwrap();
        for b in 0..30 {
            db.write_batch(&(b * 10..b * 10 + 10).map(ev).collect::<Vec<_>>())
                .unwrap();
        }
        db.close_without_flush().unwrap();
        let files = wal_files(d.path());
        assert!(files.len() > 2, "rotated");
        let last = files.last().unwrap();
        let first_seq =
            quiver_wal::format::parse_file_name(last.file_name().unwrap().to_str().unwrap())
                .unwrap();
        assert!(first_seq <= 300);
        fs::write(last, &contents).unwrap();
        assert_eq!(bad_seq(d.path()), first_seq, "{} bytes", contents.len());
        match Database::open(d.path(), cfg()) {
            Err(quiver_engine::EngineError::Wal(e)) => {
                assert!(e.to_string().contains("holds no records"), "{e}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(fs::read(last).unwrap(), contents, "left in place");
    }
}
