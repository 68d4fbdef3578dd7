//! Full audit of the stored tree: every node, checkpoint and receipt, with memory independent
//! of the tree size.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{LedgerError, Result};
use crate::hash::{parent_hashes_into, Hash};
use crate::ledger::Ledger;
use crate::receipt::Receipt;

/// Where the stored tree first stops checking out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyFailure {
    /// Zero-based index of the first leaf that may be bad (seq = index + 1).
    pub first_bad_index: u64,
    /// How many leaves from `first_bad_index` on the failure implicates: 1, or for an
    /// interior node whose children do not hash to it, the `2^level` leaves below it (one
    /// of them, or the node itself, was altered; a check of the records can say which).
    pub span: u64,
    /// The file that holds the bad data.
    pub file: PathBuf,
    /// What does not match.
    pub reason: String,
}

/// Result of [`Ledger::verify_tree`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TreeReport {
    /// Number of leaves.
    pub size: u64,
    /// Root of the whole tree, recomputed from the leaf hashes.
    pub root: Hash,
    /// Interior nodes recomputed and compared.
    pub nodes_checked: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Receipts whose signature and root were checked.
    pub receipts: u64,
    /// The first problem found (lowest leaf index), if any.
    pub failure: Option<VerifyFailure>,
}

impl TreeReport {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

const CHUNK: u64 = 8192;

impl Ledger {
    /// Recomputes every stored interior node from the level below (so, transitively, from the
    /// leaf hashes), recomputes every checkpoint's and receipt's root, and checks every
    /// signature against the node key. `progress` receives the number of nodes checked so far.
    /// Damage is reported in [`TreeReport::failure`] (the lowest bad leaf index); `Err` is kept
    /// for I/O errors.
    pub fn verify_tree(&self, progress: &mut dyn FnMut(u64)) -> Result<TreeReport> {
        let size = self.size();
        let mut failures: Vec<VerifyFailure> = Vec::new();
        let mut nodes_checked = 0u64;
        let mut children = vec![Hash::default(); 2 * CHUNK as usize];
        let mut parents = vec![Hash::default(); CHUNK as usize];
        let mut wants = Vec::with_capacity(CHUNK as usize);
        'levels: for level in 1..64u32 {
            let count = size >> level;
            if count == 0 {
                break;
            }
            let mut start = 0u64;
            while start < count {
                let n = (count - start).min(CHUNK) as usize;
                {
                    let inner = self.inner.lock();
                    inner
                        .store
                        .read_range(level - 1, 2 * start, &mut children[..2 * n])?;
                    inner.store.read_range(level, start, &mut parents[..n])?;
                }
                wants.clear();
                parent_hashes_into(self.alg, &children[..2 * n], &mut wants);
                for (i, &want) in wants.iter().enumerate() {
                    if want != parents[i] {
                        let index = start + i as u64;
                        failures.push(VerifyFailure {
                            first_bad_index: index << level,
                            span: 1 << level,
                            file: self.inner.lock().store.path(level),
                            reason: format!(
                                "node {index} of level {level} (leaves {}..{}) is {} but its children hash to {want}",
                                index << level,
                                (index + 1) << level,
                                parents[i]
                            ),
                        });
                        continue 'levels;
                    }
                }
                nodes_checked += n as u64;
                progress(nodes_checked);
                start += n as u64;
            }
        }
        let root = self.inner.lock().root_at(self.alg, size)?;
        let checkpoints = self.audit_checkpoints(size, &mut failures)?;
        let receipts = self.audit_receipts(size, &mut failures)?;
        let failure = failures.into_iter().min_by_key(|f| f.first_bad_index);
        Ok(TreeReport {
            size,
            root,
            nodes_checked,
            checkpoints,
            receipts,
            failure,
        })
    }

    fn audit_checkpoints(&self, size: u64, failures: &mut Vec<VerifyFailure>) -> Result<u64> {
        let (path, mut bodies) = {
            let inner = self.inner.lock();
            let path = inner.checkpoints.path().to_path_buf();
            let mut bodies = Vec::new();
            let scanned = inner.checkpoints.scan(&mut |off, b| {
                bodies.push((off, b.to_vec()));
                Ok(())
            });
            if let Err(e) = scanned {
                failures.push(VerifyFailure {
                    first_bad_index: 0,
                    span: 1,
                    file: path.clone(),
                    reason: e.to_string(),
                });
            }
            (path, bodies)
        };
        let mut good_size = 0u64; // leaves covered by the last good checkpoint
        let mut checked = 0u64;
        for (off, body) in bodies.drain(..) {
            checked += 1;
            let fail = |reason: String| VerifyFailure {
                first_bad_index: good_size,
                span: 1,
                file: path.clone(),
                reason: format!("checkpoint at offset {off}: {reason}"),
            };
            let text = match std::str::from_utf8(&body) {
                Ok(t) => t,
                Err(_) => {
                    failures.push(fail("not UTF-8".into()));
                    break;
                }
            };
            let cp = match crate::note::verify_checkpoint(&self.public, text) {
                Ok(cp) => cp,
                Err(e) => {
                    failures.push(fail(e.to_string()));
                    break;
                }
            };
            if cp.origin != self.origin || cp.alg != self.alg {
                failures.push(fail(format!(
                    "origin/alg {}/{} differ from the ledger's {}/{}",
                    cp.origin, cp.alg, self.origin, self.alg
                )));
                break;
            }
            if cp.size < good_size {
                failures.push(fail(format!(
                    "size {} is below an earlier checkpoint's {good_size}",
                    cp.size
                )));
                break;
            }
            if cp.size > size {
                failures.push(VerifyFailure {
                    first_bad_index: size,
                    span: 1,
                    file: self.inner.lock().store.path(0),
                    reason: format!(
                        "signed checkpoint covers {} leaves but only {size} leaf hashes are stored",
                        cp.size
                    ),
                });
                break;
            }
            let root = self.inner.lock().root_at(self.alg, cp.size)?;
            if root != cp.root {
                failures.push(fail(format!(
                    "signed root {} for size {} but the stored leaf hashes give {root}",
                    cp.root, cp.size
                )));
                break;
            }
            good_size = cp.size;
        }
        Ok(checked)
    }

    fn audit_receipts(&self, size: u64, failures: &mut Vec<VerifyFailure>) -> Result<u64> {
        let inner = self.inner.lock();
        let path = inner.receipts.path().to_path_buf();
        let mut checked = 0u64;
        let mut first_fail: Option<VerifyFailure> = None;
        let scanned = inner.receipts.scan(&mut |off, b| {
            if first_fail.is_some() {
                return Ok(());
            }
            checked += 1;
            let fail = |index: u64, reason: String| VerifyFailure {
                first_bad_index: index,
                span: 1,
                file: path.clone(),
                reason: format!("receipt at offset {off}: {reason}"),
            };
            let r = match Receipt::decode(&self.origin, self.alg, b) {
                Ok(r) => r,
                Err(reason) => {
                    first_fail = Some(fail(0, reason));
                    return Ok(());
                }
            };
            let index = r.first_seq.saturating_sub(1);
            if let Err(e) = crate::receipt::verify_receipt(&self.public, &r) {
                first_fail = Some(fail(index, e.to_string()));
            } else if r.tree_size > size {
                first_fail = Some(fail(
                    size,
                    format!("covers {} leaves, only {size} stored", r.tree_size),
                ));
            } else {
                let root = inner.root_at(self.alg, r.tree_size)?;
                if root != r.root {
                    first_fail = Some(fail(
                        index,
                        format!("signed root {} differs from recomputed {root}", r.root),
                    ));
                }
            }
            Ok(())
        });
        if let Err(e) = scanned {
            if !matches!(e, LedgerError::Io { .. }) {
                failures.push(VerifyFailure {
                    first_bad_index: 0,
                    span: 1,
                    file: path.clone(),
                    reason: e.to_string(),
                });
            } else {
                return Err(e);
            }
        }
        failures.extend(first_fail);
        Ok(checked)
    }
}
