//! The in-memory picture of what is live: the active memtable, memtables being flushed, and
//! the immutable segments, plus the observer that applies committed groups.

use crate::manifest::Manifest;
use parking_lot::{Condvar, Mutex, RwLock};
use quiver_core::SeqNo;
use quiver_segment::{Memtable, Segment};
use quiver_wal::CommitObserver;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

/// A memtable shared between the writer (the commit observer) and readers.
pub(crate) type SharedMemtable = Arc<RwLock<Memtable>>;

/// One live segment and its manifest entry.
pub(crate) struct LiveSegment {
    pub(crate) id: u64,
    pub(crate) seg: Segment,
}

/// What is live. Sources are ordered oldest first and hold disjoint, increasing seq ranges:
/// segments, then frozen memtables, then the active memtable.
pub(crate) struct State {
    pub(crate) active: SharedMemtable,
    pub(crate) frozen: Vec<SharedMemtable>,
    pub(crate) segments: Vec<Arc<LiveSegment>>,
    pub(crate) manifest: Manifest,
}

/// A consistent view for readers: cloned `Arc`s, taken under the state lock (or, for a
/// [`ReadOnlyDatabase`](crate::ReadOnlyDatabase), loaded once at open).
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub(crate) active: SharedMemtable,
    pub(crate) frozen: Vec<SharedMemtable>,
    pub(crate) segments: Vec<Arc<LiveSegment>>,
}

impl State {
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            active: self.active.clone(),
            frozen: self.frozen.clone(),
            segments: self.segments.clone(),
        }
    }
}

/// Wakes the flush thread.
#[derive(Default)]
pub(crate) struct Signal {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    pub(crate) fn notify(&self) {
        *self.pending.lock() = true;
        self.cv.notify_all();
    }
    /// Waits until notified or `timeout` passes; returns whether it was notified.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> bool {
        let mut p = self.pending.lock();
        if !*p {
            self.cv.wait_for(&mut p, timeout);
        }
        std::mem::replace(&mut *p, false)
    }
}

/// Applies each committed group to the active memtable, in the WAL's critical section and
/// therefore in seq order. (Ledger leaves are hashed by the writers: see `leaves.rs`.)
pub(crate) struct Applier {
    pub(crate) state: Arc<RwLock<State>>,
    pub(crate) memtable_bytes: usize,
    pub(crate) flush: Arc<Signal>,
    pub(crate) failed: AtomicBool,
}

impl CommitObserver for Applier {
    fn on_commit(&self, _first_seq: SeqNo, bodies: &[&[u8]]) -> Result<(), String> {
        let st = self.state.read();
        let mut mt = st.active.write();
        for b in bodies {
            if let Err(e) = mt.insert_slice(b) {
                self.failed.store(true, Ordering::Release);
                return Err(format!("memtable insert failed: {e}"));
            }
        }
        let full = mt.approx_bytes() >= self.memtable_bytes;
        drop(mt);
        drop(st);
        if full {
            self.flush.notify();
        }
        Ok(())
    }
}
