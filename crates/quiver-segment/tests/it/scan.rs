//! Time-range scans: results equal a filter over the oracle, and blocks are skipped.

use crate::common::{encode, gen_rows, put, ts_of, Rng};
use quiver_core::{Compression, Id, Op};
use quiver_segment::{write_segment, Segment, SegmentOptions};

fn write(rows: &[Vec<u8>], opts: SegmentOptions) -> (tempfile::TempDir, Segment) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    write_segment(&path, rows.iter(), &opts).unwrap();
    let seg = Segment::open(&path).unwrap();
    (dir, seg)
}

fn expected(rows: &[Vec<u8>], from: i64, to: i64) -> Vec<Vec<u8>> {
    rows.iter()
        .filter(|r| ts_of(r).is_some_and(|t| t >= from && t < to))
        .cloned()
        .collect()
}

#[test]
fn scan_equals_oracle_filter_for_many_ranges() {
    let rows = gen_rows(5, 4_000, 1, 1_000);
    let max_ts = rows.iter().filter_map(|r| ts_of(r)).max().unwrap();
    for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let (_d, seg) = write(
            &rows,
            SegmentOptions {
                block_bytes: 2048,
                compression: c,
                ..Default::default()
            },
        );
        let mut rng = Rng(77);
        for _ in 0..40 {
            let a = rng.below(max_ts as u64 + 2000) as i64 - 1000;
            let b = a + rng.below(200_000) as i64;
            let got: Vec<Vec<u8>> = seg.scan_time_range(a, b).collect::<Result<_, _>>().unwrap();
            assert_eq!(got, expected(&rows, a, b), "range [{a}, {b})");
        }
        let all: Vec<Vec<u8>> = seg
            .scan_time_range(i64::MIN, i64::MAX)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(all, expected(&rows, i64::MIN, i64::MAX));
    }
}

#[test]
fn narrow_scan_reads_only_overlapping_blocks() {
    // Events with ts = seq * 10: time order is seq order, so blocks have disjoint ranges.
    let rows: Vec<Vec<u8>> = (1..=5_000u64)
        .map(|s| put(s, Id::U64(s), Some(s as i64 * 10), 40))
        .collect();
    let (_d, seg) = write(
        &rows,
        SegmentOptions {
            block_bytes: 1024,
            ..Default::default()
        },
    );
    let blocks = seg.block_count() as u64;
    assert!(blocks > 100, "{blocks} blocks");
    let (from, to) = (20_000, 20_500); // 50 events
    let got: Vec<Vec<u8>> = seg
        .scan_time_range(from, to)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, expected(&rows, from, to));
    assert_eq!(got.len(), 50);
    let read = seg.blocks_read();
    assert!(
        (1..=7).contains(&read) && read * 50 < blocks,
        "read {read} of {blocks} blocks for 50 events"
    );
    // An empty or inverted range reads nothing.
    assert_eq!(seg.scan_time_range(5, 5).count(), 0);
    assert_eq!(seg.scan_time_range(10, 0).count(), 0);
    // A range beyond every timestamp reads nothing.
    assert_eq!(seg.scan_time_range(10_000_000, 20_000_000).count(), 0);
    assert_eq!(seg.blocks_read(), read);
    // A full iteration reads each block once.
    assert_eq!(seg.iter().count(), 5_000);
    assert_eq!(seg.blocks_read(), read + blocks);
}

#[test]
fn records_and_tombstones_are_not_events() {
    let rows = vec![
        put(1, Id::U64(1), None, 1),
        encode(2, Op::Delete(Id::U64(1))),
        put(3, Id::U64(2), Some(100), 1),
        put(4, Id::U64(3), Some(-50), 1),
    ];
    let (_d, seg) = write(&rows, SegmentOptions::default());
    let got: Vec<Vec<u8>> = seg
        .scan_time_range(i64::MIN, i64::MAX)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, vec![rows[2].clone(), rows[3].clone()]);
    assert_eq!(seg.meta().min_ts, Some(-50));
    assert_eq!(seg.meta().max_ts, Some(100));
    // A segment without events skips every block.
    let rows = vec![
        put(1, Id::U64(1), None, 1),
        encode(2, Op::Delete(Id::U64(1))),
    ];
    let (_d, seg) = write(&rows, SegmentOptions::default());
    assert_eq!(seg.scan_time_range(i64::MIN, i64::MAX).count(), 0);
    assert_eq!(seg.blocks_read(), 0);
    assert_eq!(seg.meta().min_ts, None);
}
