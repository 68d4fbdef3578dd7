//! Self-contained JSON proof bundles: a proof plus the signed checkpoint(s) it is against, so
//! a verifier needs nothing but the node's public key.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::error::{LedgerError, Result};
use crate::hash::{Hash, HashAlg};
use crate::ledger::Ledger;
use crate::note::{verify_checkpoint, Checkpoint};
use crate::verify::{verify_consistency, verify_inclusion};

/// Proof that record `seq` (leaf `leaf_index = seq - 1`) is in the signed tree of `tree_size`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionBundle {
    /// Tree hash algorithm.
    pub alg: HashAlg,
    /// Sequence number of the record.
    pub seq: u64,
    /// `seq - 1`.
    pub leaf_index: u64,
    /// The record's leaf hash `H(0x00 || body)`.
    pub leaf_hash: Hash,
    /// Size of the signed tree.
    pub tree_size: u64,
    /// Root of that tree (as in the checkpoint).
    pub root: Hash,
    /// Audit path, leaf level first.
    pub proof: Vec<Hash>,
    /// The C2SP signed-note checkpoint of `tree_size` leaves.
    pub checkpoint: String,
}

/// Proof that the signed tree in `old_checkpoint` is a prefix of the one in `new_checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyBundle {
    /// Tree hash algorithm.
    pub alg: HashAlg,
    /// Old tree size.
    pub from: u64,
    /// New tree size.
    pub to: u64,
    /// RFC 9162 consistency proof.
    pub proof: Vec<Hash>,
    /// Signed checkpoint of `from` leaves.
    pub old_checkpoint: String,
    /// Signed checkpoint of `to` leaves.
    pub new_checkpoint: String,
}

/// Either bundle, tagged by `"type"` (`"inclusion"` or `"consistency"`) in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProofBundle {
    /// An inclusion bundle.
    Inclusion(InclusionBundle),
    /// A consistency bundle.
    Consistency(ConsistencyBundle),
}

fn check_cp(cp: &Checkpoint, alg: HashAlg, size: u64, what: &str) -> Result<()> {
    if cp.alg != alg {
        return Err(LedgerError::proof(format!(
            "{what} checkpoint uses {} but the bundle says {alg}",
            cp.alg
        )));
    }
    if cp.size != size {
        return Err(LedgerError::proof(format!(
            "{what} checkpoint has size {} but the bundle says {size}",
            cp.size
        )));
    }
    Ok(())
}

impl InclusionBundle {
    /// Verifies the checkpoint signature and the inclusion proof; returns the checkpoint.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Checkpoint> {
        let cp = verify_checkpoint(key, &self.checkpoint)?;
        check_cp(&cp, self.alg, self.tree_size, "the")?;
        if self.seq == 0 || self.leaf_index != self.seq - 1 {
            return Err(LedgerError::proof(format!(
                "leaf index {} does not match seq {}",
                self.leaf_index, self.seq
            )));
        }
        if self.root != cp.root {
            return Err(LedgerError::proof(format!(
                "bundle root {} differs from the signed root {}",
                self.root, cp.root
            )));
        }
        verify_inclusion(
            self.alg,
            &self.leaf_hash,
            self.leaf_index,
            self.tree_size,
            &self.proof,
            &cp.root,
        )?;
        Ok(cp)
    }
}

impl ConsistencyBundle {
    /// Verifies both checkpoint signatures and the consistency proof; returns (old, new).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(Checkpoint, Checkpoint)> {
        let old = verify_checkpoint(key, &self.old_checkpoint)?;
        let new = verify_checkpoint(key, &self.new_checkpoint)?;
        check_cp(&old, self.alg, self.from, "old")?;
        check_cp(&new, self.alg, self.to, "new")?;
        if old.origin != new.origin {
            return Err(LedgerError::proof(format!(
                "origins differ: {} vs {}",
                old.origin, new.origin
            )));
        }
        verify_consistency(
            self.alg,
            self.from,
            self.to,
            &self.proof,
            &old.root,
            &new.root,
        )?;
        Ok((old, new))
    }
}

impl Ledger {
    /// Inclusion bundle for `seq` against the stored checkpoint of `tree_size` leaves, or the
    /// newest checkpoint when `None`.
    pub fn inclusion_bundle(&self, seq: u64, tree_size: Option<u64>) -> Result<InclusionBundle> {
        let cp = match tree_size {
            Some(t) => self
                .checkpoint_at_size(t)?
                .ok_or_else(|| LedgerError::NoCheckpoint {
                    reason: format!("no checkpoint of size {t} is stored"),
                })?,
            None => self
                .latest_checkpoint()
                .ok_or_else(|| LedgerError::NoCheckpoint {
                    reason: "the ledger has no checkpoint yet".into(),
                })?,
        };
        let size = cp.checkpoint.size;
        if seq == 0 {
            // Sequence numbers start at 1 (leaf index = seq - 1).
            return Err(LedgerError::OutOfRange {
                what: "seq",
                value: 0,
                size,
            });
        }
        if seq > size {
            return Err(LedgerError::NoCheckpoint {
                reason: format!("seq {seq} is not covered by the checkpoint of size {size}"),
            });
        }
        let proof = self.inclusion_proof(seq - 1, size)?;
        Ok(InclusionBundle {
            alg: self.alg,
            seq,
            leaf_index: seq - 1,
            leaf_hash: self.leaf_hash_at(seq - 1)?,
            tree_size: size,
            root: cp.checkpoint.root,
            proof: proof.path,
            checkpoint: cp.note,
        })
    }

    /// Consistency bundle between the stored checkpoints of `from` and `to` leaves (`to`
    /// defaults to the newest checkpoint).
    pub fn consistency_bundle(&self, from: u64, to: Option<u64>) -> Result<ConsistencyBundle> {
        if let Some(t) = to.filter(|&t| from > t) {
            return Err(LedgerError::OutOfRange {
                what: "consistency proof start",
                value: from,
                size: t,
            });
        }
        let find = |size: u64| {
            self.checkpoint_at_size(size)?
                .ok_or_else(|| LedgerError::NoCheckpoint {
                    reason: format!("no checkpoint of size {size} is stored"),
                })
        };
        let old = find(from)?;
        let new = match to {
            Some(t) => find(t)?,
            None => self
                .latest_checkpoint()
                .ok_or_else(|| LedgerError::NoCheckpoint {
                    reason: "the ledger has no checkpoint yet".into(),
                })?,
        };
        let proof = self.consistency_proof(old.checkpoint.size, new.checkpoint.size)?;
        Ok(ConsistencyBundle {
            alg: self.alg,
            from: old.checkpoint.size,
            to: new.checkpoint.size,
            proof: proof.path,
            old_checkpoint: old.note,
            new_checkpoint: new.note,
        })
    }
}
