//! Writing then reading back: iteration, gets and metadata against an oracle.

use crate::common::{gen_rows, newest, put, ts_of};
use proptest::prelude::*;
use quiver_core::{Compression, Id};
use quiver_segment::{write_segment, Segment, SegmentError, SegmentOptions};

const ALL: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Zstd];

/// Writes `rows`, checks everything against the oracle, returns the open segment (and the
/// temporary directory that must outlive it).
fn check(rows: &[Vec<u8>], opts: SegmentOptions) -> (tempfile::TempDir, Segment) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let meta = write_segment(&path, rows.iter(), &opts).unwrap();
    let seg = Segment::open(&path).unwrap();
    assert_eq!(seg.meta(), &meta);
    assert_eq!(meta.rows, rows.len() as u64);
    assert_eq!(meta.bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(
        meta.min_seq,
        quiver_core::codec::peek_seq(&rows[0]).unwrap()
    );
    assert_eq!(
        meta.max_seq,
        quiver_core::codec::peek_seq(rows.last().unwrap()).unwrap()
    );
    let ts: Vec<i64> = rows.iter().filter_map(|r| ts_of(r)).collect();
    assert_eq!(meta.min_ts, ts.iter().min().copied());
    assert_eq!(meta.max_ts, ts.iter().max().copied());
    let back: Vec<Vec<u8>> = seg.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(back, rows, "iteration differs from the input");
    for (id, body) in newest(rows) {
        assert_eq!(
            seg.get(&id).unwrap().as_deref(),
            Some(&body[..]),
            "get({id})"
        );
    }
    seg.verify().unwrap();
    (dir, seg)
}

#[test]
fn every_compression_default_blocks() {
    let rows = gen_rows(1, 5_000, 1, 2_000);
    for c in ALL {
        let (_d, seg) = check(
            &rows,
            SegmentOptions {
                compression: c,
                ..Default::default()
            },
        );
        assert!(seg.block_count() >= 1);
    }
}

#[test]
fn every_compression_tiny_blocks() {
    let rows = gen_rows(2, 3_000, 100, 700);
    for c in ALL {
        for block_bytes in [64, 700, 4096] {
            let (_d, seg) = check(
                &rows,
                SegmentOptions {
                    compression: c,
                    block_bytes,
                    ..Default::default()
                },
            );
            assert!(
                seg.block_count() > 20,
                "{c:?} {block_bytes}: {} blocks",
                seg.block_count()
            );
        }
    }
}

#[test]
fn compression_shrinks_compressible_rows() {
    let rows: Vec<Vec<u8>> = (1..=2_000u64)
        .map(|s| put(s, Id::U64(s), Some(s as i64), 200))
        .collect();
    let mut sizes = Vec::new();
    for c in ALL {
        sizes.push(
            check(
                &rows,
                SegmentOptions {
                    compression: c,
                    ..Default::default()
                },
            )
            .1
            .meta()
            .bytes,
        );
    }
    assert!(
        sizes[1] < sizes[0] / 3 && sizes[2] < sizes[0] / 3,
        "sizes {sizes:?}"
    );
}

#[test]
fn row_larger_than_a_block_gets_its_own_block() {
    let rows = vec![
        put(1, Id::U64(1), None, 10),
        put(2, Id::U64(2), None, 5_000),
        put(3, Id::U64(3), None, 10),
    ];
    let (_d, seg) = check(
        &rows,
        SegmentOptions {
            block_bytes: 1024,
            ..Default::default()
        },
    );
    assert_eq!(seg.block_count(), 3);
}

#[test]
fn string_ids_of_every_length_and_extreme_u64s() {
    let mut rows = Vec::new();
    let mut seq = 1;
    for len in [1usize, 2, 17, 255, 1024] {
        rows.push(put(seq, Id::Str("k".repeat(len)), None, 3));
        seq += 1;
    }
    for v in [0u64, 1, u64::MAX - 1, u64::MAX] {
        rows.push(put(seq, Id::U64(v), Some(-(seq as i64)), 3));
        seq += 1;
    }
    for c in ALL {
        check(
            &rows,
            SegmentOptions {
                compression: c,
                block_bytes: 64,
                ..Default::default()
            },
        );
    }
}

#[test]
fn writer_rejects_bad_input_and_removes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let opts = SegmentOptions::default();
    let empty: Vec<Vec<u8>> = Vec::new();
    assert!(matches!(
        write_segment(&path, empty.iter(), &opts),
        Err(SegmentError::Empty { .. })
    ));
    assert!(!path.exists());

    let rows = [put(5, Id::U64(1), None, 1), put(5, Id::U64(2), None, 1)];
    let e = write_segment(&path, rows.iter(), &opts).unwrap_err();
    assert!(
        matches!(e, SegmentError::OutOfOrder { last: 5, got: 5 }),
        "{e}"
    );
    assert!(!path.exists());

    let rows = [put(1, Id::U64(1), None, 1), vec![1, 2, 3]];
    let e = write_segment(&path, rows.iter(), &opts).unwrap_err();
    assert!(
        matches!(e, SegmentError::InvalidRow { index: 1, .. }),
        "{e}"
    );
    assert!(!path.exists());

    for bad in [
        SegmentOptions {
            block_bytes: 10,
            ..opts
        },
        SegmentOptions {
            bloom_bits_per_key: 65,
            ..opts
        },
    ] {
        let e = write_segment(&path, rows[..1].iter(), &bad).unwrap_err();
        assert!(matches!(e, SegmentError::InvalidOptions { .. }), "{e}");
    }
}

#[test]
fn open_missing_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Segment::open(&dir.path().join("nope")).unwrap_err();
    assert!(
        matches!(e, SegmentError::Io { .. }) && !e.is_corruption(),
        "{e}"
    );
}

#[test]
fn segment_is_send_sync_and_reads_concurrently() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Segment>();
    let rows = gen_rows(3, 2_000, 1, 500);
    let (_d, seg) = check(
        &rows,
        SegmentOptions {
            block_bytes: 2048,
            ..Default::default()
        },
    );
    let oracle = newest(&rows);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (seg, oracle) = (&seg, &oracle);
            s.spawn(move || {
                for (id, body) in oracle.iter().skip(t).step_by(4) {
                    assert_eq!(seg.get(id).unwrap().as_deref(), Some(&body[..]));
                }
            });
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_segments_roundtrip(
        seed in any::<u64>(),
        n in 1usize..400,
        first in 1u64..1_000_000,
        space in 1u64..200,
        block_bytes in 64usize..3000,
        c in 0usize..3,
        bits in 0u32..16,
    ) {
        let rows = gen_rows(seed, n, first, space);
        check(&rows, SegmentOptions { compression: ALL[c], block_bytes, bloom_bits_per_key: bits });
    }
}

#[test]
fn tamper_rewrite_produces_a_valid_file_with_the_edit() {
    let rows = gen_rows(31, 500, 1, 100);
    let (dir, seg) = check(
        &rows,
        SegmentOptions {
            block_bytes: 1024,
            ..Default::default()
        },
    );
    let path = seg.path().to_path_buf();
    drop(seg);
    let victim = quiver_core::codec::peek_seq(&rows[250]).unwrap();
    // Change one byte at the end of the victim row (payload or id: still decodable, length
    // unchanged) and drop the row after it.
    let edit = |r: &mut Vec<u8>| {
        let seq = quiver_core::codec::peek_seq(r).unwrap();
        if seq == victim {
            let last = r.len() - 3;
            r[last] ^= 0x01;
        }
        seq != victim + 1
    };
    let mut expected = rows.clone();
    expected.retain_mut(edit);
    let meta =
        quiver_segment::tamper::rewrite_rows(&path, &SegmentOptions::default(), edit).unwrap();
    assert_eq!(meta.rows, 499);
    let seg = Segment::open(&path).unwrap();
    seg.verify().unwrap();
    let back: Vec<Vec<u8>> = seg.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(back, expected);
    assert_ne!(back[250], rows[250]);
    drop(dir);
}

/// A segment of many write-behind chunks (each handed to write-back while the segment is
/// written) reads back whole: the chunking changes when bytes reach the disk, not which.
#[test]
fn a_segment_of_many_write_behind_chunks_reads_back() {
    let rows = gen_rows(7, 90_000, 1, 50_000);
    let (_d, seg) = check(&rows, SegmentOptions::default());
    assert!(
        seg.meta().bytes > 4 * quiver_segment::WRITE_BEHIND_BYTES,
        "{} bytes: too few chunks to test",
        seg.meta().bytes
    );
}
