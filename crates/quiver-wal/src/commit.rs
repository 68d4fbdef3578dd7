//! Group commit.
//!
//! Writers enqueue their batch and wait. Whoever finds no active leader becomes the leader: it
//! optionally waits `gather_delay` for the group to fill, takes whole batches from the front of
//! the queue (up to `max_group_entries`, at least one batch, never splitting one), stamps
//! consecutive seqs, frames the group into one buffer, issues one `pwrite`, at most one
//! `fdatasync` (per [`SyncMode`]), calls the observer, and hands each writer its [`SeqRange`].
//! Writers arriving meanwhile queue up and the next leader takes them all at once: that is
//! where many writers come to share one write and one fdatasync.

use crate::error::{Result, WalError};
use crate::format::{frame_len, push_frame, MAX_BODY, MIN_BODY};
use crate::wal::{Pending, Wal};
use quiver_core::codec::stamp_seq;
use quiver_core::{SeqNo, SeqRange, SyncMode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Wal {
    /// Commits a batch. Each body starts with 8 reserved bytes
    /// ([`quiver_core::codec::SEQ_PREFIX`]) into which the leader stamps the record's seq; seqs
    /// are consecutive in batch order, batches in queue order. Returns once the batch is durable
    /// per `config.sync` (always at least handed to the OS with `write(2)`). A batch is never
    /// split across groups or files. After an I/O failure every caller gets
    /// [`WalError::Poisoned`] until the log is reopened.
    pub fn commit(&self, bodies: Vec<Vec<u8>>) -> Result<SeqRange> {
        if bodies.is_empty() {
            return Err(WalError::EmptyBatch);
        }
        for (index, b) in bodies.iter().enumerate() {
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
        let max = self.config.max_group_entries.max(1);
        let mut q = self.queue.lock();
        if let Some(reason) = &q.poisoned {
            return Err(WalError::Poisoned {
                reason: reason.clone(),
            });
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.queued_entries += bodies.len();
        q.pending.push_back(Pending { ticket, bodies });
        if q.leader && q.queued_entries >= max {
            self.gather_cv.notify_one();
        }
        loop {
            if let Some(r) = q.done.remove(&ticket) {
                return r;
            }
            if !q.leader {
                break;
            }
            self.done_cv.wait(&mut q);
        }
        // Leader until our own batch is done.
        q.leader = true;
        let gather = match self.config.sync {
            SyncMode::PerWrite => Duration::ZERO,
            _ => self.config.gather_delay,
        };
        loop {
            if !gather.is_zero() && q.queued_entries < max && q.poisoned.is_none() {
                let deadline = Instant::now() + gather;
                while q.queued_entries < max {
                    if self.gather_cv.wait_until(&mut q, deadline).timed_out() {
                        break;
                    }
                }
            }
            if let Some(reason) = q.poisoned.clone() {
                for p in q.pending.drain(..).collect::<Vec<_>>() {
                    q.done.insert(
                        p.ticket,
                        Err(WalError::Poisoned {
                            reason: reason.clone(),
                        }),
                    );
                }
                q.queued_entries = 0;
            } else {
                let mut group = Vec::new();
                let mut entries = 0;
                while let Some(p) = q.pending.front() {
                    if !group.is_empty() && entries + p.bodies.len() > max {
                        break;
                    }
                    entries += p.bodies.len();
                    group.extend(q.pending.pop_front());
                }
                q.queued_entries -= entries;
                drop(q);
                let res = self.write_group(&mut group);
                q = self.queue.lock();
                match res {
                    Ok(ranges) => {
                        for (p, r) in group.iter().zip(ranges) {
                            q.done.insert(p.ticket, Ok(r));
                        }
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        q.poisoned.get_or_insert(reason);
                        let reason = q.poisoned.clone().unwrap_or_default();
                        for p in &group {
                            q.done.insert(
                                p.ticket,
                                Err(WalError::Poisoned {
                                    reason: reason.clone(),
                                }),
                            );
                        }
                    }
                }
            }
            if let Some(r) = q.done.remove(&ticket) {
                q.leader = false;
                self.done_cv.notify_all();
                return r;
            }
            self.done_cv.notify_all();
        }
    }

    /// Writes one group: stamp, frame, rotate if needed, one pwrite, one fdatasync per the sync
    /// mode, observer. Returns each batch's range.
    fn write_group(&self, group: &mut [Pending]) -> Result<Vec<SeqRange>> {
        self.check_seal_error()?;
        let mut io = self.io.lock();
        let first: SeqNo = self.next_seq.load(Ordering::SeqCst);
        let mut seq = first;
        let mut ranges = Vec::with_capacity(group.len());
        let mut buf = std::mem::take(&mut io.buf);
        buf.clear();
        for p in group.iter_mut() {
            let start = seq;
            for b in &mut p.bodies {
                stamp_seq(b, seq);
                push_frame(&mut buf, b);
                seq += 1;
            }
            ranges.push(SeqRange {
                first: start,
                last: seq - 1,
            });
        }
        let result = self.write_buf(&mut io, first, seq - 1, &buf, group);
        buf.clear();
        if buf.capacity() > 64 << 20 {
            buf.shrink_to(1 << 20);
        }
        io.buf = buf;
        result?;
        Ok(ranges)
    }

    fn write_buf(
        &self,
        io: &mut crate::wal::Io,
        first: SeqNo,
        last: SeqNo,
        buf: &[u8],
        group: &[Pending],
    ) -> Result<()> {
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
        let crate::wal::Io { files, active, .. } = io;
        let (Some(meta), Some(h)) = (files.last_mut(), active.as_mut()) else {
            return Err(WalError::Poisoned {
                reason: "no active WAL file after rotation".into(),
            });
        };
        h.write_all_at(meta.len, buf)
            .map_err(|e| WalError::io("write", &meta.name, e))?;
        if self.config.sync != SyncMode::None {
            self.syncs.fetch_add(1, Ordering::Relaxed);
            h.sync_data()
                .map_err(|e| WalError::io("fdatasync", &meta.name, e))?;
        }
        meta.len += buf.len() as u64;
        meta.last_seq = Some(last);
        debug_assert_eq!(
            buf.len(),
            group
                .iter()
                .flat_map(|p| &p.bodies)
                .map(|b| frame_len(b.len()))
                .sum::<usize>()
        );
        if let Some(obs) = &self.observer {
            let bodies: Vec<&[u8]> = group
                .iter()
                .flat_map(|p| p.bodies.iter().map(Vec::as_slice))
                .collect();
            obs.on_commit(first, &bodies)
                .map_err(|reason| WalError::Observer {
                    first_seq: first,
                    reason,
                })?;
        }
        self.next_seq.fetch_max(last + 1, Ordering::SeqCst);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(last + 1 - first, Ordering::Relaxed);
        Ok(())
    }
}
