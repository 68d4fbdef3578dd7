//! Leaf hashing off the commit path.
//!
//! A record's sequence number — and so its leaf index (seq − 1) — is fixed inside the WAL's
//! critical section. Hashing the leaf does not need to be, and neither does it need the
//! writer: after its commit returns, a writer hands its batch's bodies (seqs stamped, given
//! back by the WAL) to the `quiver-leaves` thread and returns. That thread hashes each batch
//! (BLAKE3 sixteen at a time) and appends the hashes to the ledger strictly in seq order (a
//! batch that arrives early waits in a reorder buffer for the batches before it). Hashing so
//! stays out of every writer's turn and out of the WAL's serial critical section; where a core
//! is free (one writer on two cores) it costs ingest ~7 %. Where writers keep every core busy
//! it takes its CPU from them (~20 % on two cores with two writers; `BENCHMARKS.md` § Ledger
//! cost on ingest — letting waiting writers hash instead measured no better). The queue is
//! bounded ([`QUEUE_BATCHES`]): if hashing ever fell behind, writers would wait for it.
//! Recovery recomputes from the WAL any leaf that had not been appended, so a crash in
//! between loses nothing; flushes and receipts wait for the leaves they need.

use crate::{EngineError, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use quiver_core::SeqNo;
use quiver_ledger::{leaf_hashes, Hash, Ledger};
use quiver_wal::Batch;
use std::{
    collections::BTreeMap,
    sync::{mpsc, Arc},
    thread::JoinHandle,
    time::Duration,
};

/// Batches that may wait for the hashing thread before writers block.
pub(crate) const QUEUE_BATCHES: usize = 16;

/// Under `throughput` (no WAL syncs) the hashing thread, having drained its queue, polls it
/// this long before it sleeps: there commits come every few microseconds, and a sleeping
/// thread costs each writer's send a futex wakeup and a context switch. Measured: 1.40–1.44×
/// with eight writers of single events, 1.05–1.1× with one, 0.99× with batches of 2000
/// (`BENCHMARKS.md` § Small batches). Not when the WAL syncs: there a group takes ~100 µs of
/// device time and the polling took CPU from the writers' turnaround (`durable` 0.92×).
pub(crate) const POLL_BEFORE_SLEEP: Duration = Duration::from_micros(20);

struct Pending {
    /// Seq of the next leaf the ledger expects.
    next: SeqNo,
    /// Hashed batches waiting for an earlier one, by first seq.
    waiting: BTreeMap<SeqNo, Vec<Hash>>,
    failed: Option<String>,
}

struct Shared {
    ledger: Arc<Ledger>,
    pending: Mutex<Pending>,
    cv: Condvar,
    /// Set with `Pending::failed`: writers check it on every batch without taking the lock
    /// (which the hashing thread holds while it appends).
    has_failed: std::sync::atomic::AtomicBool,
}

/// One committed batch for the hashing thread: its first seq and its stamped bodies.
type Job = (SeqNo, Batch);

pub(crate) struct LeafSequencer {
    shared: Arc<Shared>,
    tx: RwLock<Option<mpsc::SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for LeafSequencer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has drained what was queued.
        self.tx.write().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl LeafSequencer {
    /// Starts the hashing thread; once its queue is empty it polls it for `poll` before it
    /// sleeps (see [`POLL_BEFORE_SLEEP`]).
    pub(crate) fn new(ledger: Arc<Ledger>, poll: Duration) -> Result<Self> {
        let next = ledger.size() + 1;
        let shared = Arc::new(Shared {
            ledger,
            pending: Mutex::new(Pending {
                next,
                waiting: BTreeMap::new(),
                failed: None,
            }),
            cv: Condvar::new(),
            has_failed: std::sync::atomic::AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE_BATCHES);
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("quiver-leaves".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| {
                    while let Some((first, batch)) = next_job(&rx, poll) {
                        let refs: Vec<&[u8]> = batch.bodies().collect();
                        let hashes = leaf_hashes(worker.ledger.alg(), &refs);
                        if worker.submit(first, hashes).is_err() {
                            // `submit` recorded the failure: writers and waiters see it.
                            return;
                        }
                    }
                });
                if let Err(panic) = std::panic::catch_unwind(run) {
                    worker.fail(format!(
                        "the leaf hashing thread panicked: {}",
                        crate::panic_message(&*panic)
                    ));
                }
            })
            .map_err(|e| EngineError::Closed {
                reason: format!("cannot start the leaf hashing thread: {e}"),
            })?;
        Ok(LeafSequencer {
            shared,
            tx: RwLock::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Fails once a leaf append has failed (or the hashing thread died): the database must
    /// then refuse writes *before* committing them, or a caller told that its write failed
    /// would find it durable (and in the signed log) after a reopen.
    pub(crate) fn check(&self) -> Result<()> {
        if !self
            .shared
            .has_failed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Ok(());
        }
        match &self.shared.pending.lock().failed {
            Some(f) => Err(EngineError::Closed {
                reason: format!("ledger append failed earlier: {f}"),
            }),
            None => Ok(()),
        }
    }

    /// Queues a committed batch (bodies with seqs stamped, from `first`) for hashing.
    pub(crate) fn hash_later(&self, first: SeqNo, bodies: Batch) -> Result<()> {
        self.check()?;
        let tx = self.tx.read();
        let sent = tx.as_ref().map(|t| t.send((first, bodies)));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => {
                self.check()?;
                Err(EngineError::Closed {
                    reason: "the leaf hashing thread has stopped".into(),
                })
            }
        }
    }

    /// Waits until every leaf up to `seq` is in the ledger.
    pub(crate) fn wait_for(&self, seq: SeqNo) -> Result<()> {
        self.shared.wait_for(seq)
    }
}

/// The next queued batch, polling up to `poll` before sleeping; `None` once the queue is
/// closed and drained.
fn next_job(rx: &mpsc::Receiver<Job>, poll: Duration) -> Option<Job> {
    match rx.try_recv() {
        Ok(job) => return Some(job),
        Err(mpsc::TryRecvError::Disconnected) => return None,
        Err(mpsc::TryRecvError::Empty) => {}
    }
    if !poll.is_zero() {
        let start = std::time::Instant::now();
        while start.elapsed() < poll {
            match rx.try_recv() {
                Ok(job) => return Some(job),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
    }
    rx.recv().ok()
}

impl Shared {
    /// Records a failure (the first one wins) and wakes every waiter.
    fn fail(&self, reason: String) {
        self.pending.lock().failed.get_or_insert(reason);
        self.has_failed
            .store(true, std::sync::atomic::Ordering::Release);
        self.cv.notify_all();
    }

    /// Hands over the leaf hashes of seqs `first..first + hashes.len()`; appends every batch
    /// that is now next in line.
    pub(crate) fn submit(&self, first: SeqNo, hashes: Vec<Hash>) -> Result<()> {
        let mut p = self.pending.lock();
        if let Some(f) = &p.failed {
            return Err(EngineError::Closed {
                reason: format!("ledger append failed earlier: {f}"),
            });
        }
        p.waiting.insert(first, hashes);
        loop {
            let next = p.next;
            let Some(hs) = p.waiting.remove(&next) else {
                break;
            };
            if let Err(e) = self.ledger.append_hashes(next, &hs) {
                p.failed = Some(e.to_string());
                self.has_failed
                    .store(true, std::sync::atomic::Ordering::Release);
                self.cv.notify_all();
                return Err(e.into());
            }
            p.next += hs.len() as u64;
        }
        self.cv.notify_all();
        Ok(())
    }

    /// Waits until every leaf up to `seq` is in the ledger.
    pub(crate) fn wait_for(&self, seq: SeqNo) -> Result<()> {
        let mut p = self.pending.lock();
        let mut waited = Duration::ZERO;
        while p.next <= seq {
            if let Some(f) = &p.failed {
                return Err(EngineError::Closed {
                    reason: format!("ledger append failed: {f}"),
                });
            }
            if waited >= Duration::from_secs(60) {
                return Err(EngineError::Closed {
                    reason: format!("leaf {seq} was never handed to the ledger"),
                });
            }
            self.cv.wait_for(&mut p, Duration::from_millis(100));
            waited += Duration::from_millis(100);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_job_polls_then_sleeps_and_ends_when_closed() {
        let (tx, rx) = mpsc::sync_channel::<Job>(4);
        // Queued already: returned at once, with or without polling.
        tx.send((1, Batch::default())).unwrap();
        assert_eq!(next_job(&rx, Duration::ZERO).map(|j| j.0), Some(1));
        // Sent while the receiver polls (a long poll): taken by the poll.
        let sender = {
            let tx = tx.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                tx.send((2, Batch::default())).unwrap();
            })
        };
        assert_eq!(next_job(&rx, Duration::from_secs(20)).map(|j| j.0), Some(2));
        sender.join().unwrap();
        // Sent after a short poll gave up: the blocking receive takes it.
        let sender = {
            let tx = tx.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send((3, Batch::default())).unwrap();
            })
        };
        assert_eq!(
            next_job(&rx, Duration::from_micros(1)).map(|j| j.0),
            Some(3)
        );
        sender.join().unwrap();
        // Closed and drained: `None`, whether polling or not.
        tx.send((4, Batch::default())).unwrap();
        drop(tx);
        assert_eq!(
            next_job(&rx, Duration::from_millis(1)).map(|j| j.0),
            Some(4)
        );
        assert!(next_job(&rx, Duration::from_millis(1)).is_none());
        assert!(next_job(&rx, Duration::ZERO).is_none());
    }
}
