//! The commit observer: called in seq order, exactly once per record, before the ack.

use crate::{body, cfg, mem, replay_all};
use parking_lot::Mutex;
use quiver_core::{codec::peek_seq, SeqNo, SyncMode};
use quiver_wal::{CommitObserver, Wal, WalError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(SeqNo, Vec<u8>)>>,
    calls: Mutex<usize>,
    fail: AtomicBool,
}

impl CommitObserver for Recorder {
    fn on_commit(&self, first_seq: SeqNo, bodies: &[&[u8]]) -> Result<(), String> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("ledger disk full".into());
        }
        *self.calls.lock() += 1;
        let mut seen = self.seen.lock();
        for (k, b) in bodies.iter().enumerate() {
            let seq = first_seq + k as u64;
            assert_eq!(
                peek_seq(b).unwrap(),
                seq,
                "bodies are stamped before the observer runs"
            );
            seen.push((seq, b.to_vec()));
        }
        Ok(())
    }
}

#[test]
fn called_in_seq_order_once_per_record_before_ack() {
    let (_m, s) = mem();
    let rec = Arc::new(Recorder::default());
    let obs: Arc<dyn CommitObserver> = rec.clone();
    let wal = Wal::open(s, cfg(SyncMode::PerGroup, 8192, false), Some(obs)).unwrap();
    std::thread::scope(|sc| {
        for t in 0..6u64 {
            let (wal, rec) = (&wal, &rec);
            sc.spawn(move || {
                for i in 0..40u64 {
                    let n = 1 + (i % 3) as usize;
                    let r = wal
                        .commit(
                            (0..n)
                                .map(|j| body(t << 20 | i << 4 | j as u64, 20))
                                .collect::<Vec<_>>(),
                        )
                        .unwrap();
                    // Acked only after the observer saw the whole batch.
                    let seen = rec.seen.lock();
                    assert!(seen.len() as u64 >= r.last, "acked before the observer ran");
                    assert_eq!(seen[r.last as usize - 1].0, r.last);
                }
            });
        }
    });
    let seen = rec.seen.lock().clone();
    assert_eq!(
        seen.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=seen.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(seen, replay_all(&wal, 0));
    assert_eq!(
        *rec.calls.lock() as u64,
        wal.stats().groups,
        "one call per group"
    );
}

#[test]
fn observer_failure_poisons_and_records_survive_reopen() {
    let (_m, s) = mem();
    let rec = Arc::new(Recorder::default());
    let obs: Arc<dyn CommitObserver> = rec.clone();
    let wal = Wal::open(s.clone(), cfg(SyncMode::PerGroup, 8192, false), Some(obs)).unwrap();
    wal.commit(vec![body(1, 10)]).unwrap();
    rec.fail.store(true, Ordering::SeqCst);
    match wal.commit(vec![body(2, 10)]) {
        Err(WalError::Poisoned { reason }) => {
            assert!(reason.contains("ledger disk full"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        wal.commit(vec![body(3, 10)]),
        Err(WalError::Poisoned { .. })
    ));
    drop(wal);
    let wal = Wal::open(s, cfg(SyncMode::PerGroup, 8192, false), None).unwrap();
    assert_eq!(
        replay_all(&wal, 0).len(),
        2,
        "the durable group is replayed so the ledger can catch up"
    );
}
