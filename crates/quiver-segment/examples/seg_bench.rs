//! Segment micro-benchmark: memtable insert, segment write throughput per compression,
//! open cost, get latency (present and absent ids), full and time-range scans.
//!
//! `cargo run --release -p quiver-segment --example seg_bench [ROWS] [PAYLOAD_BYTES] [BLOCK_BYTES]`
//! (defaults: 200000 rows, 180-byte payloads — about 250 bytes per encoded row — and
//! 128 KiB blocks).
//! Prints one JSON object per line.

use quiver_core::{codec, Compression, Entry, Id, Op, Record};
use quiver_segment::{write_segment, Memtable, Segment, SegmentOptions};
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let payload: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(180);
    let block_bytes: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(128 << 10);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let words = [
        "alpha", "beta", "gamma", "delta", "login", "click", "view", "error",
    ];
    let rows: Vec<Vec<u8>> = (1..=n)
        .map(|seq| {
            let mut p = String::from("{\"msg\":\"");
            while p.len() < payload - 2 {
                p.push_str(words[(rng.next() % 8) as usize]);
                p.push_str(&format!(" {} ", rng.next() % 10_000));
            }
            p.truncate(payload - 2);
            p.push_str("\"}");
            let r = Record::new(Id::U64(rng.next() >> 1))
                .with_timestamp(1_700_000_000_000_000_000 + seq as i64 * 1_000)
                .with_type(words[(seq % 8) as usize])
                .with_source("bench");
            let r = Record {
                payload: Some(p),
                ..r
            };
            codec::encode_entry(&Entry {
                seq,
                op: Op::Put(r),
            })
            .unwrap()
        })
        .collect();
    let raw_bytes: usize = rows.iter().map(Vec::len).sum();
    println!(
        "{{\"rows\":{n},\"avg_row_bytes\":{:.1},\"raw_mb\":{:.1}}}",
        raw_bytes as f64 / n as f64,
        raw_bytes as f64 / 1e6
    );

    let t = Instant::now();
    let mut mem = Memtable::new();
    for r in &rows {
        mem.insert(r.clone()).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"memtable_insert\",\"rows_per_sec\":{:.0},\"approx_bytes\":{}}}",
        n as f64 / s,
        mem.approx_bytes()
    );

    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<Id> = rows
        .iter()
        .map(|r| codec::decode_entry(r).unwrap().op.id().unwrap().clone())
        .collect();
    for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let path = dir.path().join(format!("{c:?}.seg"));
        let opts = SegmentOptions {
            compression: c,
            block_bytes,
            ..Default::default()
        };
        let t = Instant::now();
        let meta = write_segment(&path, mem.iter(), &opts).unwrap();
        let ws = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let seg = Segment::open(&path).unwrap();
        let open_us = t.elapsed().as_secs_f64() * 1e6;

        let mut lat = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let id = &ids[(rng.next() % n) as usize];
            let t = Instant::now();
            let got = seg.get(id).unwrap();
            lat.push(t.elapsed());
            assert!(got.is_some());
        }
        lat.sort();
        let mut miss = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let id = Id::from(format!("absent-{}", rng.next()));
            let t = Instant::now();
            let got = seg.get(&id).unwrap();
            miss.push(t.elapsed());
            assert!(got.is_none());
        }
        miss.sort();

        let t = Instant::now();
        let scanned: usize = seg.iter().map(|r| r.unwrap().len()).sum();
        let scan_s = t.elapsed().as_secs_f64();
        assert_eq!(scanned, raw_bytes);
        let before = seg.blocks_read();
        let from = 1_700_000_000_000_000_000 + (n as i64 / 2) * 1_000;
        let t = Instant::now();
        let hits = seg
            .scan_time_range(from, from + (n as i64 / 100) * 1_000)
            .count();
        let range_us = t.elapsed().as_secs_f64() * 1e6;
        println!(
            "{{\"bench\":\"segment\",\"compression\":\"{c:?}\",\"block_bytes\":{block_bytes},\"write_mb_per_sec\":{:.0},\"write_rows_per_sec\":{:.0},\"file_bytes\":{},\"open_us\":{open_us:.0},\"heap_bytes\":{},\"blocks\":{},\"get_hit_p50_us\":{:.1},\"get_hit_p99_us\":{:.1},\"get_hit_mean_us\":{:.1},\"get_miss_p50_us\":{:.2},\"get_miss_p99_us\":{:.2},\"scan_mb_per_sec\":{:.0},\"range_1pct_rows\":{hits},\"range_1pct_blocks_read\":{},\"range_1pct_us\":{range_us:.0}}}",
            raw_bytes as f64 / 1e6 / ws,
            n as f64 / ws,
            meta.bytes,
            seg.heap_bytes(),
            seg.block_count(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.iter().map(Duration::as_secs_f64).sum::<f64>() / lat.len() as f64 * 1e6,
            percentile(&miss, 0.5),
            percentile(&miss, 0.99),
            raw_bytes as f64 / 1e6 / scan_s,
            seg.blocks_read() - before,
        );
    }
}
