//! Point lookups: present, absent, newest version, tombstones, bloom false-positive rate.

use crate::common::{encode, gen_rows, newest, put};
use quiver_core::{Id, Op};
use quiver_segment::{write_segment, Segment, SegmentOptions};

fn write(rows: &[Vec<u8>], opts: SegmentOptions) -> (tempfile::TempDir, Segment) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    write_segment(&path, rows.iter(), &opts).unwrap();
    let seg = Segment::open(&path).unwrap();
    (dir, seg)
}

#[test]
fn newest_version_wins_and_tombstones_are_rows() {
    let rows = vec![
        put(10, Id::U64(1), None, 1),
        put(11, Id::from("a"), None, 2),
        put(12, Id::U64(1), Some(5), 3),
        encode(13, Op::Delete(Id::from("a"))),
        put(14, Id::U64(2), None, 4),
        put(15, Id::U64(1), None, 5),
    ];
    let (_d, seg) = write(
        &rows,
        SegmentOptions {
            block_bytes: 64,
            ..Default::default()
        },
    );
    assert_eq!(seg.get(&Id::U64(1)).unwrap().unwrap(), rows[5]);
    assert_eq!(seg.get(&Id::from("a")).unwrap().unwrap(), rows[3]);
    assert_eq!(seg.get(&Id::U64(2)).unwrap().unwrap(), rows[4]);
    // All versions stay in the file for the ledger verifier.
    assert_eq!(seg.iter().count(), 6);
}

#[test]
fn absent_ids_before_between_and_after_present_ones() {
    // u64 ids sort before string ids; present ids are even numbers and "s" + even.
    let rows: Vec<Vec<u8>> = (0..2_000u64)
        .map(|i| {
            let id = if i % 2 == 0 {
                Id::U64(i * 2 + 10)
            } else {
                Id::Str(format!("s{:05}", i * 2))
            };
            put(i + 1, id, None, 20)
        })
        .collect();
    let (_d, seg) = write(
        &rows,
        SegmentOptions {
            block_bytes: 1024,
            ..Default::default()
        },
    );
    for (id, body) in newest(&rows) {
        assert_eq!(seg.get(&id).unwrap().unwrap(), body);
    }
    let absent = [
        Id::U64(0),
        Id::U64(11),
        Id::U64(u64::MAX),
        Id::from(""),
        Id::from("a"),
        Id::from("s00001"),
        Id::from("zzz"),
    ];
    for id in absent {
        assert_eq!(seg.get(&id).unwrap(), None, "{id:?}");
    }
    // Mixed-type space where u64 and string ids share digits.
    assert_eq!(seg.get(&Id::from("10")).unwrap(), None);
}

#[test]
fn bloom_false_positive_rate_matches_bits_per_key() {
    let n = 20_000u64;
    let rows: Vec<Vec<u8>> = (0..n)
        .map(|i| put(i + 1, Id::U64(i * 2), None, 8))
        .collect();
    for (bits, max_rate) in [(10u32, 0.03f64), (4, 0.25)] {
        let (_d, seg) = write(
            &rows,
            SegmentOptions {
                bloom_bits_per_key: bits,
                ..Default::default()
            },
        );
        let before = seg.index_blocks_read();
        // Absent odd ids interleaved with present even ones: each passes the directory
        // lookup, so an index-block read happens exactly when the bloom filter says "maybe".
        for i in 0..n {
            assert_eq!(seg.get(&Id::U64(i * 2 + 1)).unwrap(), None);
        }
        let rate = (seg.index_blocks_read() - before) as f64 / n as f64;
        eprintln!("bloom {bits} bits/key: false-positive rate {rate:.4}");
        assert!(rate < max_rate, "{bits} bits/key: rate {rate}");
        assert!(
            rate > 0.0 || bits >= 10,
            "{bits} bits/key gave no false positives: filter suspicious"
        );
        assert_eq!(seg.blocks_read(), 0, "absent ids must not read data blocks");
    }
    // No filter: every absent lookup reads an index block.
    let (_d, seg) = write(
        &rows,
        SegmentOptions {
            bloom_bits_per_key: 0,
            ..Default::default()
        },
    );
    for i in 0..1_000 {
        assert_eq!(seg.get(&Id::U64(i * 2 + 1)).unwrap(), None);
    }
    assert_eq!(seg.index_blocks_read(), 1_000);
}

#[test]
fn get_reads_one_index_block_and_one_data_block() {
    let rows = gen_rows(9, 5_000, 1, 3_000);
    let (_d, seg) = write(
        &rows,
        SegmentOptions {
            block_bytes: 4096,
            ..Default::default()
        },
    );
    let oracle = newest(&rows);
    for (id, body) in &oracle {
        assert_eq!(seg.get(id).unwrap().as_ref(), Some(body));
    }
    assert_eq!(seg.index_blocks_read(), oracle.len() as u64);
    assert_eq!(seg.blocks_read(), oracle.len() as u64);
}

#[test]
fn newest_seq_reads_only_the_index() {
    let rows = gen_rows(12, 2_000, 50, 400);
    let (_d, seg) = write(
        &rows,
        SegmentOptions {
            block_bytes: 2048,
            ..Default::default()
        },
    );
    for (id, body) in newest(&rows) {
        let seq = quiver_core::codec::peek_seq(&body).unwrap();
        assert_eq!(seg.newest_seq(&id).unwrap(), Some(seq));
    }
    assert_eq!(seg.newest_seq(&Id::from("nobody")).unwrap(), None);
    assert_eq!(seg.blocks_read(), 0);
}

#[test]
fn open_keeps_only_index_and_bloom_in_memory() {
    // 50k rows of ~250 bytes: the open segment's heap is a small fraction of the file.
    let rows: Vec<Vec<u8>> = (1..=50_000u64)
        .map(|s| put(s, Id::U64(s * 7), Some(s as i64), 200))
        .collect();
    let (_d, seg) = write(&rows, SegmentOptions::default());
    assert_eq!(
        seg.blocks_read() + seg.index_blocks_read(),
        0,
        "open read rows"
    );
    let heap = seg.heap_bytes() as u64;
    let per_id = heap as f64 / 50_000.0;
    eprintln!(
        "open segment: {heap} heap bytes for {} file bytes ({per_id:.2} B/id)",
        seg.meta().bytes
    );
    // Bloom (10 bits = 1.25 B/id) + sparse directory + block index: well under 3 B per id.
    assert!(per_id < 3.0, "{per_id} B/id");
}

#[test]
fn id_range_shared_ids_and_the_tombstone_flag() {
    let opts = || SegmentOptions {
        block_bytes: 256,
        ..Default::default()
    };
    // Ids 0..3000 step 3, then 3000..6000 step 3 shifted by one: interleaved ranges, no
    // common id; a third segment repeats one id of the first; a fourth mixes in strings.
    let a: Vec<Vec<u8>> = (0..1000u64)
        .map(|i| put(i + 1, Id::U64(i * 3), None, 4))
        .collect();
    let b: Vec<Vec<u8>> = (0..1000u64)
        .map(|i| put(5000 + i, Id::U64(i * 3 + 1 + 1500), None, 4))
        .collect();
    let c = vec![
        put(9000, Id::U64(2997), None, 4),
        put(9001, Id::U64(7000), None, 4),
    ];
    let s = vec![
        put(9100, Id::U64(5), None, 4),
        encode(9101, Op::Delete(Id::from("zz"))),
        put(9102, Id::from("ab"), None, 4),
    ];
    let (_da, sa) = write(&a, opts());
    let (_db, sb) = write(&b, opts());
    let (_dc, sc) = write(&c, opts());
    let (_ds, ss) = write(&s, opts());
    assert_eq!(sa.id_range().unwrap(), &(Id::U64(0), Id::U64(2997)));
    assert_eq!(sb.id_range().unwrap(), &(Id::U64(1501), Id::U64(4498)));
    assert_eq!(ss.id_range().unwrap(), &(Id::U64(5), Id::from("zz")));
    // Overlapping ranges, no common id: every id in the overlap is probed and none matches.
    assert_eq!(sb.shares_id_with(&sa, 10_000).unwrap(), Some(false));
    assert_eq!(sa.shares_id_with(&sb, 10_000).unwrap(), Some(false));
    // Too many ids to probe: unknown.
    assert_eq!(sb.shares_id_with(&sa, 10).unwrap(), None);
    // A common id, found from either side; disjoint ranges answer at once.
    assert_eq!(sc.shares_id_with(&sa, 10_000).unwrap(), Some(true));
    assert_eq!(sa.shares_id_with(&sc, 10_000).unwrap(), Some(true));
    assert_eq!(sc.shares_id_with(&sb, 10_000).unwrap(), Some(false));
    let d: Vec<Vec<u8>> = (0..50u64)
        .map(|i| put(9200 + i, Id::U64(10_000 + i), None, 4))
        .collect();
    let (_dd, sd) = write(&d, opts());
    assert_eq!(sd.shares_id_with(&sa, 0).unwrap(), Some(false));
    assert_eq!(sa.shares_id_with(&sd, 0).unwrap(), Some(false));
    assert_eq!(ss.shares_id_with(&sa, 10_000).unwrap(), Some(false));
    // The footer records whether any row is a tombstone.
    assert!(!sa.meta().may_hold_tombstones);
    assert!(ss.meta().may_hold_tombstones);
}
