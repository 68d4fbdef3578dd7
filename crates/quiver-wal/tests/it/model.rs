//! Model test: random commits, reopens, power failures, removals and seq floors against a Vec oracle.

use crate::{body, cfg, replay_all, stamped};
use proptest::prelude::*;
use quiver_core::{SeqNo, SyncMode};
use quiver_wal::{MemStorage, Wal};
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    /// A batch of records with these body lengths.
    Commit(Vec<usize>),
    /// Drop the handle and reopen the same storage (a process crash).
    Reopen,
    /// Reopen a power-failure image (PerGroup: nothing acked may be lost).
    PowerLoss,
    /// remove_before(oracle.len() * pct / 100 + 1).
    RemoveBefore(u8),
    /// set_next_seq_at_least(last + 1 + gap).
    SeqFloor(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0usize..300, 1..12).prop_map(Op::Commit),
        1 => Just(Op::Reopen),
        1 => Just(Op::PowerLoss),
        1 => (0u8..=100).prop_map(Op::RemoveBefore),
        1 => (0u16..50).prop_map(Op::SeqFloor),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn matches_vec_oracle(ops in prop::collection::vec(op(), 1..40), prealloc in any::<bool>()) {
        let c = cfg(SyncMode::PerGroup, 2048, prealloc);
        let mut m = MemStorage::new();
        let mut wal = Wal::open(Arc::new(m.clone()), c.clone(), None).unwrap();
        // Every record ever acked, in seq order, and the floor below which files may be gone.
        let mut oracle: Vec<(SeqNo, Vec<u8>)> = Vec::new();
        let mut floor: SeqNo = 1;
        let mut next: SeqNo = 1;
        let mut tag = 0u64;
        for op in ops {
            match op {
                Op::Commit(lens) => {
                    let bodies: Vec<Vec<u8>> = lens.iter().map(|&l| { tag += 1; body(tag, l) }).collect();
                    let r = wal.commit(bodies.clone()).unwrap();
                    prop_assert_eq!(r.first, next);
                    prop_assert_eq!(r.len(), lens.len() as u64);
                    for (k, b) in bodies.into_iter().enumerate() {
                        oracle.push((r.first + k as u64, stamped(r.first + k as u64, b)));
                    }
                    next = r.last + 1;
                }
                Op::Reopen => {
                    drop(wal);
                    wal = Wal::open(Arc::new(m.clone()), c.clone(), None).unwrap();
                    // A floor with no record after it lives only in memory; the engine sets it
                    // again after reopening (from its segments), so do the same.
                    wal.set_next_seq_at_least(next);
                }
                Op::PowerLoss => {
                    drop(wal);
                    m = m.crash_image();
                    wal = Wal::open(Arc::new(m.clone()), c.clone(), None).unwrap();
                    wal.set_next_seq_at_least(next);
                }
                Op::RemoveBefore(pct) => {
                    let s = oracle.len() as u64 * pct as u64 / 100 + 1;
                    let s = oracle.get(s as usize - 1).map_or(next, |r| r.0);
                    wal.remove_before(s).unwrap();
                    floor = floor.max(s);
                }
                Op::SeqFloor(gap) => {
                    next += gap as u64;
                    wal.set_next_seq_at_least(next);
                }
            }
            prop_assert_eq!(wal.last_seq(), next - 1);
            let want: Vec<_> = oracle.iter().filter(|r| r.0 >= floor).cloned().collect();
            prop_assert_eq!(replay_all(&wal, floor), want);
            // Whatever is still there below the floor is an exact suffix of the oracle.
            let all = replay_all(&wal, 0);
            let start = oracle.len() - all.len();
            prop_assert_eq!(&all[..], &oracle[start..]);
        }
    }
}
