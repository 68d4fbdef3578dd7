//! Signed statements: checkpoints (C2SP signed notes) and batch receipts.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{LedgerError, Result};
use crate::ledger::Ledger;
use crate::note::{self, Checkpoint, SignedCheckpoint};
use crate::receipt::Receipt;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Ledger {
    /// Signs a checkpoint of the current tree (origin, size, root, hash alg, timestamp), stores
    /// it durably (the node files are synced first) and returns it. The caller guarantees the
    /// covered records are durable. If the newest checkpoint already has the current size, it is
    /// returned unchanged, so two checkpoints never disagree.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        self.checkpoint_at(self.size())
    }

    /// Signs a checkpoint of the first `size` leaves — for callers that know only a prefix of
    /// the tree is durable (e.g. what has been flushed) — and stores it durably. Node files are
    /// synced first and every fsync runs outside the ledger lock, so appends continue. Sizes
    /// are monotone: a size below the newest checkpoint is refused, the same size returns the
    /// newest checkpoint unchanged.
    pub fn checkpoint_at(&self, size: u64) -> Result<SignedCheckpoint> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let _one = self.signing.lock();
        self.sync()?;
        let (signed, file) = {
            let mut inner = self.inner.lock();
            self.check_writable(&inner)?;
            if let Some(cp) = &inner.latest {
                if cp.checkpoint.size == size {
                    let cp = cp.clone();
                    Ledger::mark_checkpointed(&mut inner);
                    return Ok(cp);
                }
                if cp.checkpoint.size > size {
                    return Err(LedgerError::OutOfRange {
                        what: "checkpoint size below the newest checkpoint",
                        value: size,
                        size: cp.checkpoint.size,
                    });
                }
            }
            inner.check_size("tree size", size)?;
            let prev_ts = inner
                .latest
                .as_ref()
                .map_or(0, |c| c.checkpoint.timestamp_ms);
            let cp = Checkpoint {
                origin: self.origin.clone(),
                size,
                root: inner.root_at(self.alg, size)?,
                alg: self.alg,
                timestamp_ms: now_ms().max(prev_ts),
            };
            let signed = note::sign_checkpoint(&self.key, &cp);
            let r = inner
                .checkpoints
                .append(signed.note.as_bytes())
                .and_then(|_| inner.checkpoints.dup());
            match r {
                Ok(f) => (signed, f),
                Err(e) => {
                    Ledger::poison(&mut inner);
                    return Err(e);
                }
            }
        };
        let r = file.0.sync_data().map_err(|e| LedgerError::io(&file.1, e));
        let mut inner = self.inner.lock();
        if let Err(e) = r {
            Ledger::poison(&mut inner);
            return Err(e);
        }
        inner.latest = Some(signed.clone());
        Ledger::mark_checkpointed(&mut inner);
        Ok(signed)
    }

    /// Every stored checkpoint, oldest first (each signature re-verified).
    pub fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>> {
        let mut out = Vec::new();
        self.for_each_checkpoint(&mut |cp| {
            out.push(cp);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` for each stored checkpoint in order until it returns `false`.
    pub(crate) fn for_each_checkpoint(
        &self,
        f: &mut dyn FnMut(SignedCheckpoint) -> Result<bool>,
    ) -> Result<()> {
        let inner = self.inner.lock();
        let path = inner.checkpoints.path().to_path_buf();
        let mut stop = false;
        inner.checkpoints.scan(&mut |off, b| {
            if stop {
                return Ok(());
            }
            let text = std::str::from_utf8(b)
                .map_err(|_| LedgerError::corrupt(&path, off, "checkpoint is not UTF-8"))?;
            let checkpoint = note::verify_checkpoint(&self.public, text)?;
            stop = !f(SignedCheckpoint {
                checkpoint,
                note: text.to_string(),
            })?;
            Ok(())
        })?;
        Ok(())
    }

    /// The largest tree size any signed statement covers: the newest checkpoint or any
    /// receipt. Leaves up to it were durable when signed, so they may never go missing;
    /// leaves above it may, after a crash under `throughput`.
    pub fn signed_size(&self) -> u64 {
        let inner = self.inner.lock();
        let cp = inner.latest.as_ref().map_or(0, |c| c.checkpoint.size);
        cp.max(inner.receipt_max_size)
    }

    /// The newest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.inner.lock().latest.clone()
    }

    /// The stored checkpoint of exactly `size` leaves, if any.
    pub fn checkpoint_at_size(&self, size: u64) -> Result<Option<SignedCheckpoint>> {
        let mut found = None;
        self.for_each_checkpoint(&mut |cp| {
            if cp.checkpoint.size == size {
                found = Some(cp);
                return Ok(false);
            }
            Ok(cp.checkpoint.size < size)
        })?;
        Ok(found)
    }

    /// Signs one receipt for the batch `first_seq..=last_seq` (already appended) against the
    /// current tree; see [`Ledger::receipt_at`].
    pub fn receipt(&self, first_seq: u64, last_seq: u64) -> Result<Receipt> {
        self.receipt_at(first_seq, last_seq, self.size())
    }

    /// Signs one receipt for the batch `first_seq..=last_seq` against the tree of the first
    /// `tree_size` leaves (for callers that know only that prefix is durable), stores it and
    /// returns it. The node files are synced first, so no crash leaves a receipt over leaves
    /// the ledger lost, and the receipt is durable when this returns, so its id is never
    /// handed out twice.
    pub fn receipt_at(&self, first_seq: u64, last_seq: u64, tree_size: u64) -> Result<Receipt> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        self.sync()?;
        let (r, (file, path)) = {
            let mut inner = self.inner.lock();
            self.check_writable(&inner)?;
            inner.check_size("receipt tree size", tree_size)?;
            if first_seq == 0 || first_seq > last_seq || last_seq > tree_size {
                return Err(LedgerError::OutOfRange {
                    what: "receipt seq range end",
                    value: if first_seq == 0 || first_seq > last_seq {
                        first_seq
                    } else {
                        last_seq
                    },
                    size: tree_size,
                });
            }
            let r = Receipt {
                id: inner.receipt_offsets.len() as u64 + 1,
                origin: self.origin.clone(),
                alg: self.alg,
                first_seq,
                last_seq,
                tree_size,
                root: inner.root_at(self.alg, tree_size)?,
                timestamp_ms: now_ms(),
                signature: [0; 64],
            }
            .sign(&self.key);
            let stored = inner.receipts.append(&r.encode()).and_then(|off| {
                let dup = inner.receipts.dup()?;
                Ok((off, dup))
            });
            match stored {
                Ok((off, dup)) => {
                    inner.receipt_offsets.push(off);
                    inner.receipt_by_first.insert((first_seq, r.id), last_seq);
                    inner.receipt_max_span = inner.receipt_max_span.max(last_seq - first_seq);
                    inner.receipt_max_size = inner.receipt_max_size.max(tree_size);
                    (r, dup)
                }
                Err(e) => {
                    Ledger::poison(&mut inner);
                    return Err(e);
                }
            }
        };
        // Outside the lock: appends go on. A later receipt's fdatasync covers this one's bytes
        // too (written before it), so whichever returns first has both durable.
        if let Err(e) = file.sync_data() {
            Ledger::poison(&mut self.inner.lock());
            return Err(LedgerError::io(&path, e));
        }
        Ok(r)
    }

    /// Looks a receipt up by id.
    pub fn receipt_by_id(&self, id: u64) -> Result<Option<Receipt>> {
        let inner = self.inner.lock();
        let Some(&off) = id
            .checked_sub(1)
            .and_then(|i| inner.receipt_offsets.get(i as usize))
        else {
            return Ok(None);
        };
        let body = inner.receipts.read_record(off)?;
        Receipt::decode(&self.origin, self.alg, &body)
            .map(Some)
            .map_err(|reason| LedgerError::corrupt(inner.receipts.path(), off, reason))
    }

    /// The newest receipt whose range contains `seq`.
    pub fn receipt_for_seq(&self, seq: u64) -> Result<Option<Receipt>> {
        let id = {
            let inner = self.inner.lock();
            // Only receipts starting within the widest span below `seq` can contain it.
            let from = (seq.saturating_sub(inner.receipt_max_span), 0);
            let newest = inner
                .receipt_by_first
                .range(from..=(seq, u64::MAX))
                .filter(|&(_, &last)| last >= seq)
                .map(|(&(_, id), _)| id)
                .max();
            match newest {
                Some(id) => id,
                None => return Ok(None),
            }
        };
        self.receipt_by_id(id)
    }

    /// Number of stored receipts.
    pub fn receipt_count(&self) -> u64 {
        self.inner.lock().receipt_offsets.len() as u64
    }
}

/// The bytes an Ed25519 signature over a bookkeeping record covers: a prefix no C2SP note or
/// receipt can start with, the record kind, the log origin, then the record itself, so a
/// signature can be replayed neither as another kind of statement nor for another database.
fn record_message(origin: &str, kind: &str, msg: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + kind.len() + origin.len() + msg.len());
    m.extend_from_slice(b"quiver signed record v1\n");
    m.extend_from_slice(kind.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(origin.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(msg);
    m
}

impl Ledger {
    /// Signs one of the database's own bookkeeping records (`kind` names which: e.g. the
    /// drop log's "dropped seqs") with the node key. See [`verify_record`].
    pub fn sign_record(&self, kind: &str, msg: &[u8]) -> Result<[u8; 64]> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        use ed25519_dalek::Signer;
        Ok(self
            .key
            .sign(&record_message(&self.origin, kind, msg))
            .to_bytes())
    }
}

/// Checks a signature made by [`Ledger::sign_record`] for the log `origin`.
pub fn verify_record(
    key: &ed25519_dalek::VerifyingKey,
    origin: &str,
    kind: &str,
    msg: &[u8],
    sig: &[u8; 64],
) -> bool {
    key.verify_strict(
        &record_message(origin, kind, msg),
        &ed25519_dalek::Signature::from_bytes(sig),
    )
    .is_ok()
}
