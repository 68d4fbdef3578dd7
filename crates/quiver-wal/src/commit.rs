//! Group commit.
//!
//! Writers enqueue their batch. The first writer to find no leader leads; the others sleep on
//! their own [`Waiter`]. A leader waits — at most `gather_delay`, and only while writers that
//! announced themselves ([`Wal::announce`], e.g. while they encode their batch) have yet to
//! queue and the group is below `max_group_entries` — for those writers to join. It never
//! waits for writers nobody announced: a lone writer is never delayed (a fixed gather delay
//! capped one writer of single events at 1 / `gather_delay`: ~100 events/s under `balanced`).
//! It then takes
//! whole batches from the front of the queue (up to `max_group_entries`, at least one batch,
//! never splitting one), stamps consecutive seqs and fills in the frame headers inside each
//! batch's own buffer ([`Batch`]), issues one `pwrite` (copying into a shared buffer only when
//! the group holds several batches), at most one `fdatasync` (per [`SyncMode`]), calls the
//! observer, and wakes exactly the writers of the group with their [`SeqRange`]. Writers
//! arriving meanwhile queue up, and the next group takes them all at once: that is how many
//! writers share one write and one fdatasync.
//!
//! Once its own batch is done the leader hands leadership to the writer at the front of the
//! queue (one targeted wakeup) and returns. (Leading a couple more groups itself first, to
//! spare the successor's wakeup, measured 6 % slower under `durable`, with twice the p99: the
//! writers it kept waiting for their acknowledgement were the ones the next groups lacked.)
//!
//! Writing and applying are two stages. The write (seal, `pwrite`, sync) happens under the
//! I/O lock; the apply (the observer, i.e. the engine's memtable insert, then publishing the
//! seqs as [`Wal::last_seq`]) happens after it, in the order groups were written (a ticket
//! per group). A leader whose own batch is in a large group ([`HANDOFF_ENTRIES`]) hands
//! leadership on *before* applying, so the next leader writes the next group while this one
//! is applied: with batches of thousands of records the insert took a fifth of each group's
//! turn. Writers are still acknowledged only after their group is both durable and applied.

use crate::batch::Batch;
use crate::error::{Result, WalError};
use crate::format::{GroupHeader, GROUP_HEADER_LEN, MAX_BODY, MIN_BODY};
use crate::wal::{Io, Pending, Queue, Wal, WRITE_BEHIND_BYTES};
use parking_lot::{Condvar, Mutex};
use quiver_core::{SeqNo, SeqRange, SyncMode};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Under `SyncMode::None` a queued writer with at most [`SPIN_MAX_ENTRIES`] queued up to and
/// including its own batch first spins this long for its result before it sleeps: such a
/// group is a `write(2)` to the page cache and a memtable insert, done in a few microseconds,
/// so most waits end before a sleep and wakeup (a futex round trip and two context switches)
/// would. Measured (`BENCHMARKS.md` § Small batches): 1.19× with two writers of single events,
/// 1.29× with eight. Larger queues take longer than the spin, and syncing presets never spin:
/// their groups wait for the device (~100 µs), and spinning made `durable` 10–27 % slower.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(5);

/// See [`SPIN_BEFORE_SLEEP`].
const SPIN_MAX_ENTRIES: usize = 256;

/// A leader whose own batch is in a group of at least this many entries hands leadership on
/// before applying the group, so the next group's write overlaps this group's apply. A smaller
/// group is applied first (a few microseconds) and leadership handed on after.
pub const HANDOFF_ENTRIES: usize = 256;

/// A batch once its group is durable per the preset: its seqs and the batch itself, handed back
/// with those seqs stamped in (so a caller that hashes the records needs no copy of its own).
#[derive(Debug)]
pub struct Committed {
    /// The batch's sequence numbers.
    pub range: SeqRange,
    /// The batch as written, seqs stamped.
    pub batch: Batch,
}

/// This group's turn to apply; passes the turn on when dropped — also when the observer
/// panics, which poisons the log instead of leaving later groups waiting forever.
struct ApplyTurn<'a> {
    wal: &'a Wal,
    guard: parking_lot::MutexGuard<'a, u64>,
}

impl Drop for ApplyTurn<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.wal.apply_failed.store(true, Ordering::SeqCst);
            self.wal.poison(&WalError::Poisoned {
                reason: "the commit observer panicked".into(),
            });
        }
        *self.guard += 1;
        self.wal.apply_cv.notify_all();
    }
}

/// A group written to the log (durable per the sync mode) and not yet applied.
struct Written {
    /// Position in the order groups were written; groups are applied in this order.
    ticket: u64,
    first: SeqNo,
    last: SeqNo,
    /// Each batch's seqs.
    ranges: Vec<SeqRange>,
}

/// A writer on its way to the commit queue, from [`Wal::announce`]: a gathering leader waits
/// (at most `gather_delay`) for it to queue. Commit with [`Arrival::commit`] or
/// [`Arrival::commit_returning`]; dropping it withdraws the announcement.
#[must_use = "an arrival is committed or, when dropped, withdrawn"]
pub struct Arrival<'a> {
    wal: &'a Wal,
    /// Still counted in `Wal::arriving`.
    counted: bool,
}

impl Arrival<'_> {
    /// [`Wal::commit`] for an announced writer.
    pub fn commit(self, batch: impl Into<Batch>) -> Result<SeqRange> {
        self.commit_returning(batch).map(|c| c.range)
    }

    /// [`Wal::commit_returning`] for an announced writer.
    pub fn commit_returning(mut self, batch: impl Into<Batch>) -> Result<Committed> {
        let wal = self.wal;
        wal.commit_inner(batch.into(), Some(&mut self))
    }

    /// Stops counting this writer as arriving; the caller holds the queue lock. Wakes a
    /// gathering leader once nobody else is on the way.
    fn arrive(&mut self, q: &Queue) {
        if std::mem::take(&mut self.counted) {
            let left = self.wal.arriving.fetch_sub(1, Ordering::SeqCst) - 1;
            if left == 0 && q.leader {
                self.wal.gather_cv.notify_one();
            }
        }
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if self.counted {
            let q = self.wal.queue.lock();
            self.arrive(&q);
        }
    }
}

/// Where a queued writer sleeps until its batch is done or it is asked to lead.
#[derive(Default)]
pub(crate) struct Waiter {
    slot: Mutex<Slot>,
    cv: Condvar,
    /// Set once `slot` holds a result or a call to lead (read by a spinning writer).
    ready: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
enum Slot {
    #[default]
    Waiting,
    Lead,
    Done(Result<Committed>),
}

impl Waiter {
    fn set(&self, s: Slot) {
        *self.slot.lock() = s;
        self.ready.store(true, Ordering::Release);
        self.cv.notify_one();
    }

    /// Spins up to `limit` for [`Waiter::set`]; the caller then takes the slot as usual.
    fn spin(&self, limit: Duration) {
        let start = Instant::now();
        let mut polls = 0u32;
        while !self.ready.load(Ordering::Acquire) {
            std::hint::spin_loop();
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(64) && start.elapsed() >= limit {
                return;
            }
        }
    }

    fn take_done(&self) -> Option<Result<Committed>> {
        let mut slot = self.slot.lock();
        match std::mem::take(&mut *slot) {
            Slot::Done(r) => Some(r),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Sleeps until done (`Some`) or asked to lead (`None`).
    fn wait(&self) -> Option<Result<Committed>> {
        let mut slot = self.slot.lock();
        loop {
            match std::mem::take(&mut *slot) {
                Slot::Done(r) => return Some(r),
                Slot::Lead => return None,
                Slot::Waiting => self.cv.wait(&mut slot),
            }
        }
    }
}

/// Leadership passes to the writer at the front of the queue (one targeted wakeup), or
/// lapses when nobody waits.
fn hand_over(q: &mut Queue) {
    match q.pending.front() {
        Some(front) => front.waiter.set(Slot::Lead),
        None => q.leader = false,
    }
}

/// Fails every queued writer with `Poisoned` and ends the leadership.
fn fail_queued(q: &mut Queue, reason: &str) {
    for p in q.pending.drain(..) {
        p.waiter.set(Slot::Done(Err(WalError::Poisoned {
            reason: reason.to_string(),
        })));
    }
    q.queued_entries = 0;
    q.leader = false;
}

impl Wal {
    /// Commits a batch. Each body starts with 8 reserved bytes
    /// ([`quiver_core::codec::SEQ_PREFIX`]) into which the leader stamps the record's seq; seqs
    /// are consecutive in batch order, batches in queue order. Returns once the batch is durable
    /// per `config.sync` (always at least handed to the OS with `write(2)`). A batch is never
    /// split across groups or files. After an I/O failure every caller gets
    /// [`WalError::Poisoned`] until the log is reopened.
    pub fn commit(&self, batch: impl Into<Batch>) -> Result<SeqRange> {
        self.commit_returning(batch).map(|c| c.range)
    }

    /// [`Wal::commit`], handing the stamped bodies back with the range.
    pub fn commit_returning(&self, batch: impl Into<Batch>) -> Result<Committed> {
        self.commit_inner(batch.into(), None)
    }

    /// Announces a writer that is about to commit (see the module docs): until it queues its
    /// batch through the returned [`Arrival`] (or drops it), a group leader may wait up to
    /// `gather_delay` for it, so that both share one write and one fdatasync.
    pub fn announce(&self) -> Arrival<'_> {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival {
            wal: self,
            counted: true,
        }
    }

    fn commit_inner(&self, batch: Batch, arrival: Option<&mut Arrival<'_>>) -> Result<Committed> {
        if batch.is_empty() {
            return Err(WalError::EmptyBatch);
        }
        for (index, b) in batch.bodies().enumerate() {
            if b.len() < MIN_BODY {
                return Err(WalError::BodyTooShort {
                    index,
                    len: b.len(),
                });
            }
            if b.len() > MAX_BODY {
                return Err(WalError::BodyTooLarge {
                    index,
                    len: b.len(),
                    max: MAX_BODY,
                });
            }
        }
        let waiter = Arc::new(Waiter::default());
        let mut q = self.queue.lock();
        if let Some(reason) = &q.poisoned {
            return Err(WalError::Poisoned {
                reason: reason.clone(),
            });
        }
        q.queued_entries += batch.len();
        let spin = self.config.sync == SyncMode::None && q.queued_entries <= SPIN_MAX_ENTRIES;
        q.pending.push_back(Pending {
            batch,
            waiter: waiter.clone(),
        });
        let lead = !q.leader;
        if lead {
            q.leader = true;
        } else if q.queued_entries >= self.max_group() {
            self.gather_cv.notify_one();
        }
        if let Some(a) = arrival {
            a.arrive(&q);
        }
        drop(q);
        if !lead {
            if spin {
                waiter.spin(SPIN_BEFORE_SLEEP);
            }
            if let Some(r) = waiter.wait() {
                return r;
            }
        }
        self.lead(&waiter)
    }

    fn max_group(&self) -> usize {
        self.config.max_group_entries.max(1)
    }

    /// Leads groups until our own batch is done, then hands over (see the module docs).
    fn lead(&self, me: &Waiter) -> Result<Committed> {
        let max = self.max_group();
        let gather = match self.config.sync {
            SyncMode::PerWrite => Duration::ZERO,
            _ => self.config.gather_delay,
        };
        let mut handed_off = false;
        loop {
            let mut q = self.queue.lock();
            let mine = me.take_done();
            if let Some(reason) = q.poisoned.clone() {
                fail_queued(&mut q, &reason);
                return mine.unwrap_or(Err(WalError::Poisoned { reason }));
            }
            if let Some(r) = mine {
                hand_over(&mut q);
                return r;
            }
            // Wait only for announced writers that have not queued yet (see the module docs).
            let gathering =
                |q: &Queue| q.queued_entries < max && self.arriving.load(Ordering::SeqCst) > 0;
            if !gather.is_zero() && gathering(&q) {
                self.gathers.fetch_add(1, Ordering::Relaxed);
                // Saturating: a configured delay past the clock's range means "wait long".
                let now = Instant::now();
                let deadline = now
                    .checked_add(gather)
                    .unwrap_or(now + Duration::from_secs(3600));
                while gathering(&q) {
                    if self.gather_cv.wait_until(&mut q, deadline).timed_out() {
                        break;
                    }
                }
            }
            let mut group = Vec::new();
            let mut entries = 0;
            while let Some(p) = q.pending.front() {
                if !group.is_empty() && entries + p.batch.len() > max {
                    break;
                }
                entries += p.batch.len();
                group.extend(q.pending.pop_front());
            }
            q.queued_entries -= entries;
            drop(q);
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.write_group(&mut group).and_then(|w| {
                    // A large group of ours: let the next leader write its group while we apply
                    // this one (see the module docs).
                    if entries >= HANDOFF_ENTRIES
                        && group.iter().any(|p| std::ptr::eq(&*p.waiter, me))
                    {
                        handed_off = true;
                        hand_over(&mut self.queue.lock());
                    }
                    self.apply(&w, &group).map(|()| w.ranges)
                })
            }));
            let outcome = match attempt {
                Ok(outcome) => outcome,
                Err(panic) => {
                    self.fail_after_panic(&group, !handed_off);
                    std::panic::resume_unwind(panic);
                }
            };
            match outcome {
                Ok(ranges) => {
                    for (p, range) in group.iter_mut().zip(ranges) {
                        let batch = std::mem::take(&mut p.batch);
                        p.waiter.set(Slot::Done(Ok(Committed { range, batch })));
                    }
                }
                Err(e) => {
                    let reason = {
                        let mut q = self.queue.lock();
                        q.poisoned.get_or_insert_with(|| e.to_string()).clone()
                    };
                    for p in &group {
                        let err = WalError::Poisoned {
                            reason: reason.clone(),
                        };
                        p.waiter.set(Slot::Done(Err(err)));
                    }
                }
            }
            if handed_off {
                // Our batch was in the group, so its result is in our slot.
                return me.take_done().unwrap_or_else(|| {
                    Err(WalError::Poisoned {
                        reason: "a leader's own batch was left without a result".into(),
                    })
                });
            }
        }
    }

    /// After a panic while writing or applying a group (a bug in a storage backend or the
    /// observer): poisons the log and fails the group's writers and, when `leading`, every
    /// queued one, so that none waits forever for a result or a leader.
    fn fail_after_panic(&self, group: &[Pending], leading: bool) {
        let mut q = self.queue.lock();
        let reason = q
            .poisoned
            .get_or_insert_with(|| "a panic while committing a group".into())
            .clone();
        for p in group {
            p.waiter.set(Slot::Done(Err(WalError::Poisoned {
                reason: reason.clone(),
            })));
        }
        if leading {
            fail_queued(&mut q, &reason);
        }
    }

    /// Applies a written group, in the order groups were written: the observer (the engine's
    /// memtable insert), then the group's seqs become [`Wal::last_seq`]. Waits for every
    /// earlier group to be applied first. Once an apply failed (the observer returned an error
    /// or panicked) the log is poisoned and no later group is applied, since the observer would
    /// see a gap; a group that was written before some later write failed is still applied
    /// and acknowledged (it is durable per the sync mode).
    fn apply(&self, w: &Written, group: &[Pending]) -> Result<()> {
        let mut turn = ApplyTurn {
            wal: self,
            guard: self.apply_turn.lock(),
        };
        while *turn.guard != w.ticket {
            self.apply_cv.wait(&mut turn.guard);
        }
        let earlier_failed = || -> Result<()> {
            if self.apply_failed.load(Ordering::SeqCst) {
                self.check_poisoned()?;
                return Err(WalError::Poisoned {
                    reason: "an earlier group could not be applied".into(),
                });
            }
            Ok(())
        };
        let result = earlier_failed().and_then(|()| match &self.observer {
            Some(obs) => {
                let bodies: Vec<&[u8]> = group.iter().flat_map(|p| p.batch.bodies()).collect();
                obs.on_commit(w.first, &bodies)
                    .map_err(|reason| WalError::Observer {
                        first_seq: w.first,
                        reason,
                    })
            }
            None => Ok(()),
        });
        match &result {
            Ok(()) => {
                self.next_seq.fetch_max(w.last + 1, Ordering::SeqCst);
                self.groups.fetch_add(1, Ordering::Relaxed);
                self.records
                    .fetch_add(w.last + 1 - w.first, Ordering::Relaxed);
            }
            Err(e) => {
                self.apply_failed.store(true, Ordering::SeqCst);
                self.poison(e);
            }
        }
        result
    }

    /// Writes one group: stamp and frame (in place, in each batch's buffer), rotate if needed,
    /// one pwrite (a group of one batch straight from its buffer, a larger one copied into a
    /// shared buffer first), one fdatasync per the sync mode. Returns the group's apply
    /// ticket and each batch's range; [`Wal::apply`] runs the observer.
    fn write_group(&self, group: &mut [Pending]) -> Result<Written> {
        let mut io = self.io.lock();
        // Seqs of written groups may run ahead of `next_seq` (published once applied);
        // `set_next_seq_at_least` may have raised `next_seq` past them.
        let first: SeqNo = io.next_assign.max(self.next_seq.load(Ordering::SeqCst));
        let mut seq = first;
        let mut ranges = Vec::with_capacity(group.len());
        for p in group.iter_mut() {
            p.batch.seal(seq);
            let n = p.batch.len() as u64;
            ranges.push(SeqRange {
                first: seq,
                last: seq + n - 1,
            });
            seq += n;
        }
        let last = seq - 1;
        if let [one] = &mut *group {
            self.write_buf(&mut io, first, last, one.batch.group_mut())?;
        } else {
            let mut buf = std::mem::take(&mut io.buf);
            buf.clear();
            buf.resize(GROUP_HEADER_LEN, 0);
            for p in group.iter() {
                buf.extend_from_slice(p.batch.frames());
            }
            let result = self.write_buf(&mut io, first, last, &mut buf);
            buf.clear();
            if buf.capacity() > 64 << 20 {
                buf.shrink_to(1 << 20);
            }
            io.buf = buf;
            result?;
        }
        io.next_assign = last + 1;
        let ticket = io.next_ticket;
        io.next_ticket += 1;
        Ok(Written {
            ticket,
            first,
            last,
            ranges,
        })
    }

    /// Appends one group: `buf` is the room for its header followed by its sealed frames.
    fn write_buf(&self, io: &mut Io, first: SeqNo, last: SeqNo, buf: &mut [u8]) -> Result<()> {
        let needs_new = match (io.files.last(), io.active.is_some()) {
            (Some(f), true) => {
                f.next_seq() != first
                    || (f.last_seq.is_some() && f.len + buf.len() as u64 > self.config.file_size)
            }
            _ => true,
        };
        if needs_new {
            self.rotate(io, first)?;
        }
        let Io {
            files,
            active,
            active_dsync,
            ..
        } = io;
        let (Some(meta), Some(h)) = (files.last_mut(), active.as_mut()) else {
            return Err(WalError::Poisoned {
                reason: "no active WAL file after rotation".into(),
            });
        };
        let frames = u32::try_from(last - first + 1).map_err(|_| WalError::Poisoned {
            reason: format!(
                "a group of {} records is over the format's limit",
                last - first + 1
            ),
        })?;
        let header = GroupHeader {
            frames,
            first_seq: first,
            bytes: (buf.len() - GROUP_HEADER_LEN) as u64,
            durable: meta.synced,
            syncing: self.config.sync != SyncMode::None,
        };
        buf[..GROUP_HEADER_LEN].copy_from_slice(&header.encode());
        h.write_all_at(meta.len, buf)
            .map_err(|e| WalError::io("write", &meta.name, e))?;
        if self.config.sync != SyncMode::None {
            self.syncs.fetch_add(1, Ordering::Relaxed);
            if !*active_dsync {
                h.sync_data()
                    .map_err(|e| WalError::io("fdatasync", &meta.name, e))?;
            }
        } else {
            // Write-behind: start write-back of every whole WRITE_BEHIND_BYTES chunk this write
            // completed (see `Wal::rotate`). Only a hint: an error here is not a lost write,
            // and the seal's fdatasync reports any real failure.
            let done = |len: u64| len / WRITE_BEHIND_BYTES * WRITE_BEHIND_BYTES;
            let (from, to) = (done(meta.len), done(meta.len + buf.len() as u64));
            if to > from {
                let _ = h.start_writeback(from, to - from);
            }
        }
        meta.len += buf.len() as u64;
        meta.last_seq = Some(last);
        if self.config.sync != SyncMode::None {
            meta.synced = meta.len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_writer_stops_at_its_result_or_its_limit() {
        // Nobody sets the slot: the spin gives up after its limit, and the slot still waits.
        let w = Waiter::default();
        let start = Instant::now();
        w.spin(Duration::from_millis(2));
        assert!(start.elapsed() >= Duration::from_millis(2));
        assert!(w.take_done().is_none());
        // Set from another thread while spinning: the spin ends long before its limit and the
        // result is there to take.
        let w = Arc::new(Waiter::default());
        let setter = {
            let w = w.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                w.set(Slot::Lead);
            })
        };
        let start = Instant::now();
        w.spin(Duration::from_secs(20));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the spin saw the result"
        );
        assert!(w.wait().is_none(), "asked to lead");
        setter.join().unwrap();
    }
}
