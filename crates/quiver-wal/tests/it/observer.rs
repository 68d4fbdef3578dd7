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

/// Counts writes issued while the observer is applying an earlier group.
struct OverlapProbe {
    applying: Arc<AtomicBool>,
    overlaps: Arc<std::sync::atomic::AtomicUsize>,
}

impl crate::Hooks for OverlapProbe {
    fn write(&self, _name: &str, _off: u64, _len: usize) {
        if self.applying.load(Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// An observer that takes a while, flagging when it runs.
struct SlowApply {
    rec: Recorder,
    applying: Arc<AtomicBool>,
}

impl CommitObserver for SlowApply {
    fn on_commit(&self, first_seq: SeqNo, bodies: &[&[u8]]) -> Result<(), String> {
        assert!(
            !self.applying.swap(true, Ordering::SeqCst),
            "two groups applied at once"
        );
        std::thread::sleep(std::time::Duration::from_micros(500));
        let r = self.rec.on_commit(first_seq, bodies);
        self.applying.store(false, Ordering::SeqCst);
        r
    }
}

/// Groups of at least `HANDOFF_ENTRIES` records: the leader hands leadership on before
/// applying, so the next group is written while this one is applied — and still every record
/// reaches the observer once, in seq order, before its writer is acknowledged, and
/// `last_seq` never runs ahead of what the observer has seen.
#[test]
fn large_groups_are_written_while_the_previous_one_is_applied() {
    let applying = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s: Arc<dyn quiver_wal::Storage> = crate::Hooked::new(
        quiver_wal::MemStorage::new(),
        OverlapProbe {
            applying: applying.clone(),
            overlaps: overlaps.clone(),
        },
    );
    let obs = Arc::new(SlowApply {
        rec: Recorder::default(),
        applying,
    });
    let dyn_obs: Arc<dyn CommitObserver> = obs.clone();
    let mut c = cfg(SyncMode::PerGroup, 4 << 20, false);
    c.max_group_entries = quiver_wal::HANDOFF_ENTRIES;
    let wal = Wal::open(s, c, Some(dyn_obs)).unwrap();
    let n = quiver_wal::HANDOFF_ENTRIES;
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let (wal, obs) = (&wal, &obs);
            sc.spawn(move || {
                for i in 0..12u64 {
                    let r = wal
                        .commit(
                            (0..n)
                                .map(|j| body(t << 40 | i << 20 | j as u64, 24))
                                .collect::<Vec<_>>(),
                        )
                        .unwrap();
                    let published = wal.last_seq();
                    let seen = obs.rec.seen.lock().len() as u64;
                    assert!(seen >= r.last, "acked before the observer ran");
                    assert!(published <= seen, "last_seq ahead of the applied records");
                }
            });
        }
    });
    let seen = obs.rec.seen.lock().clone();
    assert_eq!(seen.len(), 4 * 12 * n);
    assert_eq!(
        seen.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=seen.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(seen, replay_all(&wal, 0));
    assert_eq!(wal.last_seq(), seen.len() as u64);
    assert!(
        overlaps.load(Ordering::SeqCst) > 0,
        "no group was written while another was applied: the handover did not happen"
    );
}

/// An observer that panics on its second call.
#[derive(Default)]
struct PanicsOnce(std::sync::atomic::AtomicUsize);

impl CommitObserver for PanicsOnce {
    fn on_commit(&self, _first_seq: SeqNo, _bodies: &[&[u8]]) -> Result<(), String> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 1 {
            // Long enough for another writer to queue behind this group.
            std::thread::sleep(std::time::Duration::from_millis(150));
            panic!("observer bug");
        }
        Ok(())
    }
}

/// A panicking observer poisons the log: the panic reaches the writer whose group it was
/// applying, and a writer queued behind that group, like any later commit, fails with
/// `Poisoned` instead of waiting forever for a result, a leader or its turn to apply.
#[test]
fn observer_panic_poisons_instead_of_hanging() {
    let (_m, s) = mem();
    let obs: Arc<dyn CommitObserver> = Arc::new(PanicsOnce::default());
    let wal = Arc::new(Wal::open(s, cfg(SyncMode::PerGroup, 8192, false), Some(obs)).unwrap());
    wal.commit(vec![body(1, 10)]).unwrap();
    // Plain threads, not scoped ones: a commit that hangs must fail this test, not stall it.
    let (tx, rx) = std::sync::mpsc::channel();
    let w = wal.clone();
    let first = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = w.commit(vec![body(2, 10)]);
        }))
        .is_err()
    });
    std::thread::sleep(std::time::Duration::from_millis(40));
    let (w, tx2) = (wal.clone(), tx.clone());
    std::thread::spawn(move || tx2.send(("queued", w.commit(vec![body(3, 10)]))));
    assert!(
        first.join().unwrap(),
        "the observer's panic reaches its writer"
    );
    let w = wal.clone();
    std::thread::spawn(move || tx.send(("later", w.commit(vec![body(4, 10)]))));
    for _ in 0..2 {
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok((_, Err(WalError::Poisoned { reason }))) => {
                assert!(reason.contains("panic"), "{reason}")
            }
            Ok((who, other)) => panic!("{who}: {other:?}"),
            Err(_) => panic!("a commit hung after an observer panic"),
        }
    }
}
