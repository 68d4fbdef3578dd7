//! [`TrustStore`]: the last trusted checkpoint of a log, kept on disk by an offline verifier so
//! that rollbacks and forks are caught across runs.
//!
//! Rules (the class of flaw immudb's clients had in 2022):
//! - first use: a valid checkpoint is trusted as-is;
//! - a checkpoint smaller than the trusted one is a [`LedgerError::Rollback`];
//! - the same size with another root is a [`LedgerError::Fork`];
//! - a larger checkpoint is trusted only through a consistency bundle that starts exactly at the
//!   trusted checkpoint ([`LedgerError::Unproven`] otherwise, [`LedgerError::Fork`] when the
//!   proof's old checkpoint has the trusted size but another root).

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::bundle::{ConsistencyBundle, InclusionBundle};
use crate::error::{LedgerError, Result};
use crate::note::{verify_checkpoint, Checkpoint};

/// Hex fingerprint of a public key (first 8 bytes of SHA-256 of the 32 key bytes); names the
/// default trust file `trusted-<fingerprint>.json`.
pub fn key_fingerprint(key: &VerifyingKey) -> String {
    let d = sha2::Sha256::digest(key.as_bytes());
    hex::encode(&d[..8])
}

/// A public key in every encoding a verifier may want (printed by `quiver key show`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Key name = checkpoint origin.
    pub origin: String,
    /// The 32 key bytes, hex.
    pub public_key: String,
    /// The 32 key bytes, standard base64.
    pub public_key_base64: String,
    /// Signed-note key id (4 bytes, hex).
    pub key_id: String,
    /// Signed-note verifier key `name+keyid+base64(0x01 || key)`.
    pub vkey: String,
    /// [`key_fingerprint`], names the default trust file.
    pub fingerprint: String,
}

impl KeyInfo {
    /// Describes `key` under the name `origin`.
    pub fn new(origin: &str, key: &VerifyingKey) -> KeyInfo {
        use base64::Engine;
        KeyInfo {
            origin: origin.to_string(),
            public_key: hex::encode(key.as_bytes()),
            public_key_base64: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
            key_id: hex::encode(crate::note::key_id(origin, key)),
            vkey: crate::note::vkey(origin, key),
            fingerprint: key_fingerprint(key),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TrustFile {
    public_key: String,
    checkpoint: String,
}

/// What a successful check did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrustOutcome {
    /// The trusted checkpoint after the check.
    pub trusted: Checkpoint,
    /// True when the trusted checkpoint changed (first use or proven extension).
    pub advanced: bool,
    /// True when there was no trusted checkpoint before.
    pub first_use: bool,
}

/// The on-disk trusted state for one log key.
#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    trusted: Option<(Checkpoint, String)>,
    key_hex: Option<String>,
}

impl TrustStore {
    /// Opens the trust file at `path` (a missing file means nothing is trusted yet).
    pub fn open(path: &Path) -> Result<TrustStore> {
        let mut store = TrustStore {
            path: path.to_path_buf(),
            trusted: None,
            key_hex: None,
        };
        if !path.exists() {
            return Ok(store);
        }
        let text = fs::read_to_string(path).map_err(|e| LedgerError::io(path, e))?;
        let tf: TrustFile = serde_json::from_str(&text).map_err(|e| LedgerError::Malformed {
            what: "trust file",
            reason: format!("{}: {e}", path.display()),
        })?;
        let key = crate::note::parse_public_key(&tf.public_key)?;
        let cp = verify_checkpoint(&key, &tf.checkpoint)?;
        store.trusted = Some((cp, tf.checkpoint));
        store.key_hex = Some(hex::encode(key.as_bytes()));
        Ok(store)
    }

    /// The trusted checkpoint, if any.
    pub fn trusted(&self) -> Option<&Checkpoint> {
        self.trusted.as_ref().map(|(c, _)| c)
    }

    /// Path of the trust file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_key(&self, key: &VerifyingKey) -> Result<()> {
        match &self.key_hex {
            Some(k) if *k != hex::encode(key.as_bytes()) => Err(LedgerError::Malformed {
                what: "trust file",
                reason: format!(
                    "{} trusts another key; use a different --trust-file",
                    self.path.display()
                ),
            }),
            _ => Ok(()),
        }
    }

    fn save(&mut self, key: &VerifyingKey, cp: Checkpoint, note: &str) -> Result<()> {
        let tf = TrustFile {
            public_key: hex::encode(key.as_bytes()),
            checkpoint: note.to_string(),
        };
        let json = serde_json::to_string_pretty(&tf).map_err(|e| LedgerError::Malformed {
            what: "trust file",
            reason: e.to_string(),
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| LedgerError::io(dir, e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        fs::write(&tmp, json).map_err(|e| LedgerError::io(&tmp, e))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| LedgerError::io(&tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| LedgerError::io(&self.path, e))?;
        self.trusted = Some((cp, note.to_string()));
        self.key_hex = Some(hex::encode(key.as_bytes()));
        Ok(())
    }

    /// Checks an inclusion bundle: proof and signature, then the rollback/fork rules against
    /// the trusted checkpoint. Trusts the checkpoint on first use.
    pub fn check_inclusion(
        &mut self,
        key: &VerifyingKey,
        b: &InclusionBundle,
    ) -> Result<TrustOutcome> {
        self.check_key(key)?;
        let cp = b.verify(key)?;
        let Some((t, _)) = &self.trusted else {
            self.save(key, cp.clone(), &b.checkpoint)?;
            return Ok(TrustOutcome {
                trusted: cp,
                advanced: true,
                first_use: true,
            });
        };
        compare_same_or_fail(t, &cp)?;
        Ok(TrustOutcome {
            trusted: t.clone(),
            advanced: false,
            first_use: false,
        })
    }

    /// Checks a consistency bundle and, when it starts at the trusted checkpoint, advances the
    /// trust to its new checkpoint.
    pub fn check_consistency(
        &mut self,
        key: &VerifyingKey,
        b: &ConsistencyBundle,
    ) -> Result<TrustOutcome> {
        self.check_key(key)?;
        let (old, new) = b.verify(key)?;
        let Some((t, _)) = &self.trusted else {
            self.save(key, new.clone(), &b.new_checkpoint)?;
            return Ok(TrustOutcome {
                trusted: new,
                advanced: true,
                first_use: true,
            });
        };
        let t = t.clone();
        if new.size <= t.size {
            compare_same_or_fail(&t, &new)?;
            return Ok(TrustOutcome {
                trusted: t,
                advanced: false,
                first_use: false,
            });
        }
        if old.size == t.size {
            if old.root != t.root {
                return Err(LedgerError::Fork {
                    size: t.size,
                    trusted_root: t.root.to_hex(),
                    got_root: old.root.to_hex(),
                });
            }
            self.save(key, new.clone(), &b.new_checkpoint)?;
            return Ok(TrustOutcome {
                trusted: new,
                advanced: true,
                first_use: false,
            });
        }
        Err(LedgerError::Unproven {
            trusted_size: t.size,
            got_size: new.size,
        })
    }
}

/// `cp` must not be older than, and must agree with, the trusted checkpoint `t`.
fn compare_same_or_fail(t: &Checkpoint, cp: &Checkpoint) -> Result<()> {
    if cp.size < t.size {
        return Err(LedgerError::Rollback {
            trusted_size: t.size,
            got_size: cp.size,
        });
    }
    if cp.size == t.size {
        if cp.root != t.root {
            return Err(LedgerError::Fork {
                size: t.size,
                trusted_root: t.root.to_hex(),
                got_root: cp.root.to_hex(),
            });
        }
        return Ok(());
    }
    Err(LedgerError::Unproven {
        trusted_size: t.size,
        got_size: cp.size,
    })
}
