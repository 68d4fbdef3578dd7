//! [`TrustStore`]: the last trusted checkpoint of a log, kept on disk by an offline verifier so
//! that rollbacks and forks are caught across runs.
//!
//! Rules (the class of flaw immudb's clients had in 2022):
//! - first use: a valid checkpoint is trusted as-is;
//! - a checkpoint smaller than the trusted one is a [`LedgerError::Rollback`];
//! - the same size with another root is a [`LedgerError::Fork`];
//! - a larger checkpoint is trusted only through a consistency bundle that starts exactly at the
//!   trusted checkpoint ([`LedgerError::Unproven`] otherwise, [`LedgerError::Fork`] when the
//!   proof's old checkpoint has the trusted size but another root);
//! - a trust file holds one log: a checkpoint of another origin (another log signed by the same
//!   key) is refused ([`LedgerError::Malformed`]), even where its tree agrees with the trusted one.
//!
//! Concurrency and durability: several verifiers (processes or threads) may share one trust file.
//! A check that changes nothing reads the file without a lock (the file is only ever replaced
//! whole, by a rename). A check that would advance the trust takes an exclusive advisory lock on
//! `<trust file>.lock` (beside it, never deleted), re-reads the trusted checkpoint and applies
//! the rules again to that current state, so the trusted size never decreases and every advance
//! is proven from the checkpoint it replaces. The new state goes to a uniquely named temporary
//! file that is fsynced, renamed over the trust file, and the directory is fsynced.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::bundle::{ConsistencyBundle, InclusionBundle};
use crate::error::{LedgerError, Result};
use crate::note::{verify_checkpoint, Checkpoint, NoteVerifier};

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

    /// Parses a signed-note verifier key `name+keyid+base64(0x01 || key)` and checks it in full:
    /// a valid name, an 8-hex-digit key id equal to [`crate::key_id`] of the name and key, and
    /// an Ed25519 key. The name becomes [`KeyInfo::origin`].
    ///
    /// Errors: [`LedgerError::Malformed`] with `what` `"vkey"` when it does not parse, `"vkey key
    /// id"` when the key id does not match the name and key.
    pub fn from_vkey(vkey: &str) -> Result<KeyInfo> {
        let v = NoteVerifier::parse(vkey.trim())?;
        Ok(KeyInfo::new(&v.name, &v.key))
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
    /// The trusted state as last read from (or written to) the file.
    state: State,
    /// When set, checkpoints must be signed under this key name (= origin).
    key_name: Option<String>,
}

/// The contents of a trust file.
#[derive(Debug, Default)]
struct State {
    trusted: Option<(Checkpoint, String)>,
    key_hex: Option<String>,
}

/// What a check decided against one trusted state.
enum Decision {
    /// Nothing to write.
    Keep(TrustOutcome),
    /// Trust `cp` (signed note `note`) from now on.
    Advance {
        cp: Checkpoint,
        note: String,
        first_use: bool,
    },
}

/// Reads the trust file at `path`; a missing file means nothing is trusted yet.
fn read_state(path: &Path) -> Result<State> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(LedgerError::io(path, e)),
    };
    // Every failure names the trust file: an edited or damaged one must not read as a bad
    // bundle (nor ever be taken for "nothing trusted yet").
    let bad = |e: &dyn std::fmt::Display| LedgerError::Malformed {
        what: "trust file",
        reason: format!("{}: {e}", path.display()),
    };
    let tf: TrustFile = serde_json::from_str(&text).map_err(|e| bad(&e))?;
    let key = crate::note::parse_public_key(&tf.public_key).map_err(|e| bad(&e))?;
    let cp = verify_checkpoint(&key, &tf.checkpoint).map_err(|e| bad(&e))?;
    Ok(State {
        trusted: Some((cp, tf.checkpoint)),
        key_hex: Some(hex::encode(key.as_bytes())),
    })
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Takes the exclusive advisory lock that serialises writers of the trust file at `path`
/// (`<path>.lock`, created if missing and never removed). Released when the file is dropped.
fn lock(path: &Path) -> Result<fs::File> {
    let dir = parent_dir(path);
    crate::store::create_dir_durable(dir)?;
    let lock_path = sibling(path, ".lock");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| LedgerError::io(&lock_path, e))?;
    f.lock().map_err(|e| LedgerError::io(&lock_path, e))?;
    Ok(f)
}

/// Replaces the file at `path` with `bytes` atomically and durably: a uniquely named temporary
/// file in the same directory is written and fsynced, renamed over `path`, then the directory is
/// fsynced. The caller holds the lock.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let tmp = sibling(
        path,
        &format!(".{}-{:016x}.tmp", std::process::id(), rand::random::<u64>()),
    );
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| LedgerError::io(&tmp, e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| LedgerError::io(path, e)));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    crate::store::sync_dir(dir)
}

impl TrustStore {
    /// Opens the trust file at `path` (a missing file means nothing is trusted yet). A symbolic
    /// link is followed: the file it names is the one locked and replaced, so checks through
    /// the link and through the file share one trusted state. A link whose file does not exist
    /// yet names where the first trusted checkpoint goes.
    pub fn open(path: &Path) -> Result<TrustStore> {
        let mut path = path.to_path_buf();
        // A chain of links, followed one at a time (at most 40, as the kernel does).
        for _ in 0..40 {
            let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                break;
            }
            let target = fs::read_link(&path).map_err(|e| LedgerError::io(&path, e))?;
            path = match path.parent() {
                Some(dir) if target.is_relative() => dir.join(target),
                _ => target,
            };
        }
        Ok(TrustStore {
            state: read_state(&path)?,
            path,
            key_name: None,
        })
    }

    /// Accepts only checkpoints signed under the key name `name`: their origin must be `name`
    /// and their signature line must carry that name and the key id of (`name`, key). Set this
    /// to the name of a signed-note vkey (see [`KeyInfo::from_vkey`]); quiver names its key
    /// after the log origin.
    pub fn require_key_name(&mut self, name: &str) {
        self.key_name = Some(name.to_string());
    }

    /// The trusted checkpoint, if any (as last read from or written to the trust file).
    pub fn trusted(&self) -> Option<&Checkpoint> {
        self.state.trusted.as_ref().map(|(c, _)| c)
    }

    /// Path of the trust file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_key(&self, state: &State, key: &VerifyingKey) -> Result<()> {
        match &state.key_hex {
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

    /// The trusted checkpoint must be of the log `origin`: a trust file holds one log's state,
    /// and another log signed by the same key (whose tree may well agree with it, e.g. both
    /// empty) neither satisfies nor replaces it.
    fn check_origin(&self, state: &State, origin: &str) -> Result<()> {
        match &state.trusted {
            Some((t, _)) if t.origin != origin => Err(LedgerError::Malformed {
                what: "trust file",
                reason: format!(
                    "{} trusts the log {:?}, not {origin:?}; use a different --trust-file",
                    self.path.display(),
                    t.origin
                ),
            }),
            _ => Ok(()),
        }
    }

    /// With [`TrustStore::require_key_name`], checks that every note is a checkpoint signed
    /// under that name and key id.
    fn check_name(&self, key: &VerifyingKey, notes: &[&str]) -> Result<()> {
        let Some(name) = &self.key_name else {
            return Ok(());
        };
        let v = NoteVerifier {
            name: name.clone(),
            id: crate::note::key_id(name, key),
            key: *key,
        };
        for note in notes {
            v.verify_checkpoint(note)?;
        }
        Ok(())
    }

    /// Applies `decide` to the current trusted state of the log `origin` and persists an
    /// advance. A decision that writes nothing is taken on a lock-free read; one that advances
    /// is taken again under the lock on a fresh read, so concurrent checks never lose an advance
    /// or roll the file back.
    fn apply(
        &mut self,
        key: &VerifyingKey,
        origin: &str,
        decide: impl Fn(Option<&Checkpoint>) -> Result<Decision>,
    ) -> Result<TrustOutcome> {
        let mut locked = None;
        loop {
            let state = read_state(&self.path)?;
            self.check_key(&state, key)?;
            self.check_origin(&state, origin)?;
            let d = decide(state.trusted.as_ref().map(|(c, _)| c));
            self.state = state;
            match d? {
                Decision::Keep(o) => return Ok(o),
                Decision::Advance {
                    cp,
                    note,
                    first_use,
                } => {
                    if locked.is_none() {
                        // Decide again on the state current under the lock.
                        locked = Some(lock(&self.path)?);
                        continue;
                    }
                    self.save(key, &note)?;
                    self.state = State {
                        trusted: Some((cp.clone(), note)),
                        key_hex: Some(hex::encode(key.as_bytes())),
                    };
                    return Ok(TrustOutcome {
                        trusted: cp,
                        advanced: true,
                        first_use,
                    });
                }
            }
        }
    }

    /// Writes the trust file (the caller holds the lock).
    fn save(&self, key: &VerifyingKey, note: &str) -> Result<()> {
        let tf = TrustFile {
            public_key: hex::encode(key.as_bytes()),
            checkpoint: note.to_string(),
        };
        let json = serde_json::to_string_pretty(&tf).map_err(|e| LedgerError::Malformed {
            what: "trust file",
            reason: e.to_string(),
        })?;
        replace_file(&self.path, json.as_bytes())
    }

    /// Checks an inclusion bundle: proof and signature, then the rollback/fork rules against
    /// the trusted checkpoint. Trusts the checkpoint on first use.
    pub fn check_inclusion(
        &mut self,
        key: &VerifyingKey,
        b: &InclusionBundle,
    ) -> Result<TrustOutcome> {
        let cp = b.verify(key)?;
        self.check_name(key, &[&b.checkpoint])?;
        self.apply(key, &cp.origin, |trusted| {
            let Some(t) = trusted else {
                return Ok(Decision::Advance {
                    cp: cp.clone(),
                    note: b.checkpoint.clone(),
                    first_use: true,
                });
            };
            compare_same_or_fail(t, &cp)?;
            Ok(Decision::Keep(TrustOutcome {
                trusted: t.clone(),
                advanced: false,
                first_use: false,
            }))
        })
    }

    /// Checks a consistency bundle and, when it starts at the trusted checkpoint, advances the
    /// trust to its new checkpoint.
    pub fn check_consistency(
        &mut self,
        key: &VerifyingKey,
        b: &ConsistencyBundle,
    ) -> Result<TrustOutcome> {
        let (old, new) = b.verify(key)?;
        self.check_name(key, &[&b.old_checkpoint, &b.new_checkpoint])?;
        self.apply(key, &new.origin, |trusted| {
            let Some(t) = trusted else {
                return Ok(Decision::Advance {
                    cp: new.clone(),
                    note: b.new_checkpoint.clone(),
                    first_use: true,
                });
            };
            if new.size <= t.size {
                compare_same_or_fail(t, &new)?;
                return Ok(Decision::Keep(TrustOutcome {
                    trusted: t.clone(),
                    advanced: false,
                    first_use: false,
                }));
            }
            if old.size == t.size {
                if old.root != t.root {
                    return Err(LedgerError::Fork {
                        size: t.size,
                        trusted_root: t.root.to_hex(),
                        got_root: old.root.to_hex(),
                    });
                }
                return Ok(Decision::Advance {
                    cp: new.clone(),
                    note: b.new_checkpoint.clone(),
                    first_use: false,
                });
            }
            Err(LedgerError::Unproven {
                trusted_size: t.size,
                got_size: new.size,
            })
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
