//! Leaf hashing off the commit path.
//!
//! A record's sequence number — and so its leaf index (seq − 1) — is fixed inside the WAL's
//! critical section. Hashing the leaf does not need to be: each writer hashes its own batch
//! after its commit returns, in parallel with the other writers, and hands the hashes to this
//! sequencer, which appends them to the ledger strictly in seq order (a batch that finishes
//! hashing early waits in a reorder buffer for the batches before it). Recovery recomputes
//! any leaf that had not been appended from the WAL, so a crash in between loses nothing.

use crate::{EngineError, Result};
use parking_lot::{Condvar, Mutex};
use quiver_core::SeqNo;
use quiver_ledger::{Hash, Ledger};
use std::{collections::BTreeMap, sync::Arc, time::Duration};

struct Pending {
    /// Seq of the next leaf the ledger expects.
    next: SeqNo,
    /// Hashed batches waiting for an earlier one, by first seq.
    waiting: BTreeMap<SeqNo, Vec<Hash>>,
    failed: Option<String>,
}

pub(crate) struct LeafSequencer {
    ledger: Arc<Ledger>,
    pending: Mutex<Pending>,
    cv: Condvar,
}

impl LeafSequencer {
    pub(crate) fn new(ledger: Arc<Ledger>) -> Self {
        let next = ledger.size() + 1;
        LeafSequencer {
            ledger,
            pending: Mutex::new(Pending {
                next,
                waiting: BTreeMap::new(),
                failed: None,
            }),
            cv: Condvar::new(),
        }
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
