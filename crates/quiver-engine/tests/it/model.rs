//! Model test: random write/delete/get/scan/time-range scan/flush/compact/reopen against a
//! BTreeMap oracle.

use proptest::prelude::*;
use quiver_core::{DbConfig, Id, Op, Preset, Record};
use quiver_engine::Database;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Step {
    Put(Vec<(u8, u16)>),
    Delete(u8),
    Get(u8),
    Scan,
    /// `[from, to)`; `None` for `to` is the open top (`i64::MAX`).
    TimeScan(u16, Option<u16>),
    Flush,
    Compact,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => proptest::collection::vec((0u8..40, any::<u16>()), 1..20).prop_map(Step::Put),
        2 => (0u8..40).prop_map(Step::Delete),
        3 => (0u8..40).prop_map(Step::Get),
        1 => Just(Step::Scan),
        2 => (any::<u16>(), proptest::option::weighted(0.8, any::<u16>()))
            .prop_map(|(a, b)| Step::TimeScan(a, b)),
        1 => Just(Step::Flush),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

fn id(k: u8) -> Id {
    if k.is_multiple_of(3) {
        Id::Str(format!("key-{k}"))
    } else {
        Id::U64(k as u64)
    }
}

fn cfg() -> DbConfig {
    DbConfig::new(Preset::Throughput)
        .memtable_bytes(4096)
        .block_bytes(512)
        .compaction_trigger(3)
        .wal_file_size(8192)
}

/// A put of value `v`: an event at timestamp `v`, except every fifth value, a plain record
/// (no timestamp, never in a time-range scan).
fn put(k: u8, v: u16) -> Op {
    let r = Record::new(id(k)).with_payload(&serde_json::json!({"v": v}));
    Op::Put(if v.is_multiple_of(5) {
        r
    } else {
        r.with_timestamp(v as i64)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn matches_btreemap(steps in proptest::collection::vec(step(), 1..40)) {
        let d = tempfile::tempdir().unwrap();
        let mut db = Database::open(d.path(), cfg()).unwrap();
        // id -> (payload value, seq)
        let mut oracle: BTreeMap<Id, (u16, u64)> = BTreeMap::new();
        for s in steps {
            match s {
                Step::Put(kvs) => {
                    let ops: Vec<Op> = kvs.iter().map(|(k, v)| put(*k, *v)).collect();
                    let r = db.write_batch(&ops).unwrap();
                    for (i, (k, v)) in kvs.iter().enumerate() {
                        oracle.insert(id(*k), (*v, r.first + i as u64));
                    }
                }
                Step::Delete(k) => {
                    db.write_batch(&[Op::Delete(id(k))]).unwrap();
                    oracle.remove(&id(k));
                }
                Step::Get(k) => {
                    let got = db.get(&id(k)).unwrap().map(|e| {
                        let Op::Put(r) = e.op else { panic!("tombstone") };
                        (r.payload_value().unwrap().unwrap()["v"].as_u64().unwrap() as u16, e.seq)
                    });
                    prop_assert_eq!(got, oracle.get(&id(k)).copied());
                }
                Step::Scan => {
                    let got: Vec<(Id, u64)> = db.scan_all().unwrap().into_iter().map(|e| (e.op.id().unwrap().clone(), e.seq)).collect();
                    let mut want: Vec<(Id, u64)> = oracle.iter().map(|(k, (_, s))| (k.clone(), *s)).collect();
                    want.sort_by_key(|x| x.1);
                    prop_assert_eq!(got, want);
                }
                Step::TimeScan(a, b) => {
                    let from = a as i64;
                    let to = b.map_or(i64::MAX, |b| b as i64);
                    let mut got: Vec<(Id, u64)> = Vec::new();
                    db.scan_time_range(from, to, &mut |e| {
                        got.push((e.op.id().unwrap().clone(), e.seq));
                        Ok(true)
                    })
                    .unwrap();
                    let mut want: Vec<(Id, u64)> = oracle
                        .iter()
                        .filter(|(_, (v, _))| {
                            let ts = *v as i64;
                            !v.is_multiple_of(5) && from <= ts && (ts < to || to == i64::MAX)
                        })
                        .map(|(k, (_, s))| (k.clone(), *s))
                        .collect();
                    want.sort_by_key(|x| x.1);
                    prop_assert_eq!(got, want, "[{}, {})", from, to);
                }
                Step::Flush => db.flush().unwrap(),
                Step::Compact => db.compact().unwrap(),
                Step::Reopen => {
                    db.close().unwrap();
                    db = Database::open(d.path(), cfg()).unwrap();
                }
            }
        }
        let n = db.scan_all().unwrap().len();
        prop_assert_eq!(n, oracle.len());
    }
}
