//! Memtable behaviour, and memtable → segment flush agreeing with the memtable.

use crate::common::{encode, gen_rows, newest, put, ts_of, Rng};
use proptest::prelude::*;
use quiver_core::{Id, Op};
use quiver_segment::{write_segment, ChunkPool, Memtable, Segment, SegmentError, SegmentOptions};

#[test]
fn insert_get_iter_and_order() {
    let mut m = Memtable::new();
    assert!(m.is_empty());
    assert_eq!(
        (m.first_seq(), m.last_seq(), m.approx_bytes()),
        (None, None, 0)
    );
    let rows = vec![
        put(3, Id::U64(1), None, 10),
        put(4, Id::from("a"), Some(50), 10),
        put(7, Id::U64(1), Some(10), 10),
        encode(9, Op::Delete(Id::from("a"))),
    ];
    let mut last_bytes = 0;
    for r in &rows {
        m.insert(r.clone()).unwrap();
        assert!(m.approx_bytes() > last_bytes + r.len() - 1);
        last_bytes = m.approx_bytes();
    }
    assert_eq!(m.len(), 4);
    assert_eq!(m.distinct_ids(), 2);
    assert_eq!((m.first_seq(), m.last_seq()), (Some(3), Some(9)));
    assert_eq!(m.get(&Id::U64(1)), Some(&rows[2][..]));
    assert_eq!(
        m.get(&Id::from("a")),
        Some(&rows[3][..]),
        "tombstone is returned"
    );
    assert_eq!(m.get(&Id::U64(2)), None);
    assert_eq!(m.get_seq(&Id::U64(1)), Some(7));
    let all: Vec<&[u8]> = m.iter().collect();
    assert_eq!(all, rows.iter().map(|r| &r[..]).collect::<Vec<_>>());
    let ev: Vec<&[u8]> = m.scan_time_range(10, 50).collect();
    assert_eq!(ev, vec![&rows[2][..]]);
    let ev: Vec<&[u8]> = m.scan_time_range(0, 51).collect();
    assert_eq!(ev, vec![&rows[1][..], &rows[2][..]]);
}

#[test]
fn pooled_chunks_are_reused_bounded_and_hold_the_new_rows() {
    // 3 MiB of bodies: three standard 1 MiB chunks, plus one oversized body of its own.
    let pool = ChunkPool::new(2 << 20);
    let mut m = Memtable::with_pool(pool.clone(), 100);
    let mut seq = 0;
    let mut put_n = |m: &mut Memtable, n: usize, payload: usize| {
        for _ in 0..n {
            seq += 1;
            m.insert(put(seq, Id::U64(seq), Some(seq as i64), payload))
                .unwrap();
        }
    };
    put_n(&mut m, 3 * 1024, 1000);
    put_n(&mut m, 1, 3 << 20);
    assert!(pool.is_empty());
    drop(m);
    // At most max_bytes worth come back, and never the oversized chunk.
    assert_eq!(pool.len(), 2);

    // The next memtable draws from the pool, and what it returns is its own rows, not stale
    // bytes of the first memtable.
    let mut m2 = Memtable::with_pool(pool.clone(), 100);
    let rows: Vec<Vec<u8>> = (0..1500u64)
        .map(|i| put(10_000 + i, Id::U64(i), None, 700))
        .collect();
    for r in &rows {
        m2.insert(r.clone()).unwrap();
    }
    assert!(pool.len() < 2, "the second memtable took a recycled chunk");
    let all: Vec<&[u8]> = m2.iter().collect();
    assert_eq!(all, rows.iter().map(|r| &r[..]).collect::<Vec<_>>());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(m2.get(&Id::U64(i as u64)), Some(&r[..]));
    }
    drop(m2);
    assert_eq!(pool.len(), 2);
}

#[test]
fn rejects_out_of_order_and_garbage_without_change() {
    let mut m = Memtable::new();
    m.insert(put(5, Id::U64(1), None, 1)).unwrap();
    let bytes = m.approx_bytes();
    for seq in [5, 4, 0] {
        let e = m.insert(put(seq, Id::U64(2), None, 1)).unwrap_err();
        assert!(
            matches!(e, SegmentError::OutOfOrder { last: 5, got } if got == seq),
            "{e}"
        );
    }
    let e = m.insert(vec![9, 0, 0]).unwrap_err();
    assert!(matches!(e, SegmentError::Core(_)), "{e}");
    let mut bad_flags = put(6, Id::U64(2), None, 1);
    bad_flags[8] = 0x80;
    assert!(m.insert(bad_flags).is_err());
    assert_eq!(
        (m.len(), m.approx_bytes(), m.get(&Id::U64(2))),
        (1, bytes, None)
    );
}

fn flush_and_compare(rows: &[Vec<u8>], block_bytes: usize) {
    let mut m = Memtable::new();
    for r in rows {
        m.insert(r.clone()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let meta = write_segment(
        &path,
        m.iter(),
        &SegmentOptions {
            block_bytes,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (Some(meta.min_seq), Some(meta.max_seq), meta.rows),
        (m.first_seq(), m.last_seq(), m.len() as u64)
    );
    let seg = Segment::open(&path).unwrap();
    for (id, body) in newest(rows) {
        assert_eq!(m.get(&id), Some(&body[..]));
        assert_eq!(seg.get(&id).unwrap().as_deref(), Some(&body[..]));
    }
    let mut rng = Rng(rows.len() as u64 + 1);
    for _ in 0..10 {
        let a = rng.below(4_000_000) as i64;
        let b = a + rng.below(1_000_000) as i64;
        let from_mem: Vec<Vec<u8>> = m.scan_time_range(a, b).map(<[u8]>::to_vec).collect();
        let from_seg: Vec<Vec<u8>> = seg.scan_time_range(a, b).collect::<Result<_, _>>().unwrap();
        assert_eq!(from_mem, from_seg);
        assert!(from_mem
            .iter()
            .all(|r| ts_of(r).is_some_and(|t| t >= a && t < b)));
    }
}

#[test]
fn flush_of_a_memtable_reads_back_the_same() {
    flush_and_compare(&gen_rows(11, 3_000, 1, 800), 1500);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn memtable_and_segment_agree(
        seed in any::<u64>(),
        n in 1usize..500,
        space in 1u64..100,
        bb in 64usize..2000,
    ) {
        flush_and_compare(&gen_rows(seed, n, 1, space), bb);
    }
}

#[test]
fn pooled_row_lists_come_back_empty_and_keep_their_room() {
    let pool = ChunkPool::new(2 << 20);
    let mut m = Memtable::with_pool(pool.clone(), 0);
    let first: Vec<Vec<u8>> = (1..=5000u64)
        .map(|s| put(s, Id::U64(s), Some(s as i64), 40))
        .collect();
    for r in &first {
        m.insert(r.clone()).unwrap();
    }
    drop(m);
    // The next memtable reuses the lists: no entry of the first one is visible in it.
    let mut m2 = Memtable::with_pool(pool.clone(), 0);
    assert!(m2.is_empty());
    assert_eq!(m2.iter().count(), 0);
    assert_eq!(m2.get(&Id::U64(7)), None);
    let rows: Vec<Vec<u8>> = (0..300u64)
        .map(|i| put(9_000 + i, Id::U64(i % 100), Some(i as i64), 40))
        .collect();
    for r in &rows {
        m2.insert(r.clone()).unwrap();
    }
    assert_eq!(m2.len(), 300);
    assert_eq!(
        m2.iter().collect::<Vec<_>>(),
        rows.iter().map(|r| &r[..]).collect::<Vec<_>>()
    );
    // The newest version per id wins, and ids of the first memtable stay absent.
    for i in 0..100u64 {
        assert_eq!(m2.get(&Id::U64(i)), Some(&rows[200 + i as usize][..]));
    }
    assert_eq!(m2.get(&Id::U64(4000)), None);
    assert_eq!(m2.scan_time_range(0, 1000).count(), 300);
}
