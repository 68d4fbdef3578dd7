//! [`Ledger`]: the append-only Merkle log, its files and its frontier.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::{SigningKey, VerifyingKey};
use parking_lot::Mutex;

use crate::error::{LedgerError, Result};
use crate::framed::FramedLog;
use crate::hash::{leaf_hashes, Hash, HashAlg};
use crate::keys;
use crate::meta::{read_meta, write_meta, META_FILE};
use crate::note::{self, SignedCheckpoint};
use crate::proof::{self, ConsistencyProof, InclusionProof};
use crate::receipt::Receipt;
use crate::store::TreeStore;
use crate::tree::Inner;
pub use crate::tree::LeafHashes;

pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints.log";
pub(crate) const RECEIPTS_FILE: &str = "receipts.log";
pub(crate) const CHECKPOINT_MAGIC: &[u8; 8] = b"QVLGCKPT";
pub(crate) const RECEIPT_MAGIC: &[u8; 8] = b"QVLGRCPT";

/// Ledger settings.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// Tree hash; fixed when the ledger is created. Default: [`HashAlg::default`] (BLAKE3).
    pub alg: HashAlg,
    /// Log origin / database id, used as the checkpoint origin line and the key name.
    /// No whitespace or '+'. Default: `"quiver"`.
    pub origin: String,
    /// A checkpoint is due after this many new leaves. Default: 100 000.
    pub checkpoint_every: u64,
    /// ... or after this much time with at least one new leaf. Default: 10 s.
    pub checkpoint_interval: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            alg: HashAlg::default(),
            origin: "quiver".to_string(),
            checkpoint_every: 100_000,
            checkpoint_interval: Duration::from_secs(10),
        }
    }
}

/// The tamper-evident log. `Send + Sync`; every method takes `&self` (one internal mutex).
pub struct Ledger {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) key: SigningKey,
    pub(crate) public: VerifyingKey,
    pub(crate) alg: HashAlg,
    pub(crate) origin: String,
    pub(crate) dir: PathBuf,
    pub(crate) read_only: bool,
    pub(crate) cfg: LedgerConfig,
    /// Serialises checkpoint signing (whose fsyncs run outside `inner`).
    pub(crate) signing: Mutex<()>,
    /// Held for a whole [`Ledger::sync`]: its fdatasyncs run outside `inner` on files marked
    /// clean when they began, so a second sync must wait for them before it may return.
    pub(crate) syncing: Mutex<()>,
    /// Unit-test probe: [`Ledger::sync`] runs in flight now, and the most seen at once.
    #[cfg(test)]
    pub(crate) sync_probe: [std::sync::atomic::AtomicUsize; 2],
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.dir)
            .field("alg", &self.alg)
            .field("origin", &self.origin)
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens or creates the ledger in `ledger_dir` and the node key in
    /// `<keys_dir>/node.ed25519` (created on first open with mode 0600). Repairs node files that
    /// lag the leaf file after a crash and cuts torn tails. Reopening with another `cfg.alg` is
    /// [`LedgerError::AlgMismatch`].
    pub fn open(ledger_dir: &Path, keys_dir: &Path, cfg: LedgerConfig) -> Result<Ledger> {
        note::validate_origin(&cfg.origin)?;
        crate::store::create_dir_durable(ledger_dir)?;
        let key = keys::load_or_create(keys_dir)?;
        let meta_path = ledger_dir.join(META_FILE);
        let (alg, origin) = match read_meta(&meta_path)? {
            Some((alg, origin)) => {
                if alg != cfg.alg {
                    return Err(LedgerError::AlgMismatch {
                        stored: alg,
                        requested: cfg.alg,
                    });
                }
                (alg, origin)
            }
            None => {
                write_meta(ledger_dir, cfg.alg, &cfg.origin)?;
                (cfg.alg, cfg.origin.clone())
            }
        };
        Self::open_inner(ledger_dir, key, alg, origin, false, cfg)
    }

    /// The number of leaves stored in the ledger at `ledger_dir`, what [`size`](Self::size)
    /// of a ledger opened there would say, read from the length of the leaf-hash file alone
    /// (0 when there is none yet): nothing else is read and nothing opened. For readers beside
    /// a live writer, which may be creating the other files meanwhile.
    pub fn stored_size(ledger_dir: &Path) -> Result<u64> {
        let path = ledger_dir.join(crate::store::level_file_name(0));
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len().saturating_sub(crate::store::HEADER) / 32),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(LedgerError::io(&path, e)),
        }
    }

    /// Opens an existing ledger without writing anything (for CLI tools and audits). Node files
    /// that lag the leaf file are completed in memory only.
    pub fn open_read_only(ledger_dir: &Path, keys_dir: &Path) -> Result<Ledger> {
        let key = keys::load(keys_dir)?;
        let meta_path = ledger_dir.join(META_FILE);
        let (alg, origin) = read_meta(&meta_path)?
            .ok_or_else(|| LedgerError::corrupt(&meta_path, 0, "ledger metadata file missing"))?;
        let cfg = LedgerConfig {
            alg,
            origin: origin.clone(),
            ..LedgerConfig::default()
        };
        Self::open_inner(ledger_dir, key, alg, origin, true, cfg)
    }

    fn open_inner(
        dir: &Path,
        key: SigningKey,
        alg: HashAlg,
        origin: String,
        read_only: bool,
        cfg: LedgerConfig,
    ) -> Result<Ledger> {
        let public = key.verifying_key();
        let mut latest: Option<SignedCheckpoint> = None;
        let cp_path = dir.join(CHECKPOINTS_FILE);
        let checkpoints = {
            let mut each = |off: u64, b: &[u8]| {
                let text = std::str::from_utf8(b)
                    .map_err(|_| LedgerError::corrupt(&cp_path, off, "checkpoint is not UTF-8"))?;
                let checkpoint = note::verify_checkpoint(&public, text)?;
                latest = Some(SignedCheckpoint {
                    checkpoint,
                    note: text.to_string(),
                });
                Ok(())
            };
            if read_only && !cp_path.exists() {
                None
            } else {
                Some(FramedLog::open(
                    &cp_path,
                    CHECKPOINT_MAGIC,
                    read_only,
                    &mut each,
                )?)
            }
        };
        let rc_path = dir.join(RECEIPTS_FILE);
        let mut receipt_offsets = Vec::new();
        let mut receipt_by_first = BTreeMap::new();
        let mut receipt_max_span = 0;
        let mut receipt_max_size = 0;
        let receipts = {
            let mut each = |off: u64, b: &[u8]| {
                let r = Receipt::decode(&origin, alg, b)
                    .map_err(|reason| LedgerError::corrupt(&rc_path, off, reason))?;
                receipt_offsets.push(off);
                receipt_by_first.insert((r.first_seq, r.id), r.last_seq);
                receipt_max_span = receipt_max_span.max(r.last_seq.saturating_sub(r.first_seq));
                receipt_max_size = receipt_max_size.max(r.tree_size);
                Ok(())
            };
            if read_only && !rc_path.exists() {
                None
            } else {
                Some(FramedLog::open(
                    &rc_path,
                    RECEIPT_MAGIC,
                    read_only,
                    &mut each,
                )?)
            }
        };
        let (Some(checkpoints), Some(receipts)) = (checkpoints, receipts) else {
            return Err(LedgerError::corrupt(
                dir,
                0,
                "checkpoints.log or receipts.log missing",
            ));
        };
        let signed = latest
            .as_ref()
            .map_or(0, |c| c.checkpoint.size)
            .max(receipt_max_size);
        // Nothing signed yet: a leaf file of zeros only (header included) is a creation cut
        // short whose leaves, if any, never landed (see `TreeStore::open`).
        let mut store = TreeStore::open(dir, Some(alg), read_only, signed == 0)?;
        if store.alg() != alg {
            return Err(LedgerError::corrupt(
                store.path(0),
                10,
                format!("node files use {} but metadata says {alg}", store.alg()),
            ));
        }
        // Node writes a power cut lost while the file's new size landed (zeros): forgotten
        // from the first zero node past what a signature covers, so recovery re-hashes their
        // leaves from the WAL and the levels above are recomputed (`first_unlanded`).
        for level in 0..store.level_count() {
            if let Some(at) = store.first_unlanded(level, signed >> level)? {
                store.forget_from(level, at)?;
            }
        }
        let size = store.count(0);
        let mut inner = Inner {
            store,
            size,
            frontier: [Hash::default(); 64],
            checkpoints,
            latest,
            last_checkpoint_at: Instant::now(),
            receipts,
            receipt_offsets,
            receipt_by_first,
            receipt_max_span,
            receipt_max_size,
            poisoned: false,
        };
        if !read_only {
            if let Some(cp) = &inner.latest {
                if cp.checkpoint.size > inner.size {
                    return Err(LedgerError::BehindCheckpoint {
                        file: inner.store.path(0),
                        size: inner.size,
                        signed: cp.checkpoint.size,
                    });
                }
            }
        }
        inner.reconcile(alg, read_only)?;
        let ledger = Ledger {
            inner: Mutex::new(inner),
            key,
            public,
            alg,
            origin,
            dir: dir.to_path_buf(),
            read_only,
            signing: Mutex::new(()),
            syncing: Mutex::new(()),
            #[cfg(test)]
            sync_probe: Default::default(),
            cfg,
        };
        if !read_only {
            let inner = ledger.inner.lock();
            if let Some(cp) = &inner.latest {
                let root = inner.root_at(alg, cp.checkpoint.size)?;
                if root != cp.checkpoint.root {
                    return Err(LedgerError::corrupt(
                        inner.store.path(0),
                        0,
                        format!(
                            "stored hashes give root {root} at size {}, but the signed checkpoint says {}; run `quiver verify`",
                            cp.checkpoint.size, cp.checkpoint.root
                        ),
                    ));
                }
            }
        }
        Ok(ledger)
    }

    /// Number of leaves. Leaf index = seq - 1.
    pub fn size(&self) -> u64 {
        self.inner.lock().size
    }

    /// Tree hash algorithm.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Log origin (key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The node's public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.public
    }

    /// The ledger directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn check_writable(&self, inner: &Inner) -> Result<()> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        if inner.poisoned {
            return Err(LedgerError::Poisoned);
        }
        Ok(())
    }

    /// Appends leaves `H(0x00 || body)` for seqs `first_seq..`; `first_seq` must be `size() + 1`.
    /// Hashing happens before the lock is taken.
    pub fn append(&self, first_seq: u64, bodies: &[&[u8]]) -> Result<()> {
        let hashes = leaf_hashes(self.alg, bodies);
        self.append_hashes(first_seq, &hashes)
    }

    /// Appends precomputed leaf hashes for seqs `first_seq..`. O(log n) per leaf; buffered,
    /// durable after [`Ledger::sync`].
    pub fn append_hashes(&self, first_seq: u64, leaf_hashes: &[Hash]) -> Result<()> {
        let mut inner = self.inner.lock();
        self.check_writable(&inner)?;
        if first_seq != inner.size + 1 {
            return Err(LedgerError::SeqGap {
                expected: inner.size + 1,
                got: first_seq,
            });
        }
        if let Err(e) = inner.push_leaves(self.alg, leaf_hashes) {
            inner.poisoned = true;
            return Err(e);
        }
        Ok(())
    }

    /// Stored leaf hash at `index` (= seq - 1).
    pub fn leaf_hash_at(&self, index: u64) -> Result<Hash> {
        let inner = self.inner.lock();
        if index >= inner.size {
            return Err(LedgerError::OutOfRange {
                what: "leaf index",
                value: index,
                size: inner.size,
            });
        }
        inner.store.node(0, index)
    }

    /// Streams stored leaf hashes from `from` up to the size at the time of the call, reading
    /// in chunks (memory independent of size).
    pub fn leaf_hashes(&self, from: u64) -> LeafHashes<'_> {
        LeafHashes::new(self, from, self.size())
    }

    /// Current root (`H()` for the empty tree). O(log n) hashing, no I/O.
    pub fn root(&self) -> Hash {
        self.inner.lock().current_root(self.alg)
    }

    /// Root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let inner = self.inner.lock();
        inner.check_size("tree size", size)?;
        inner.root_at(self.alg, size)
    }

    /// Writes buffered nodes and fsyncs the node, checkpoint and receipt files. A failure
    /// poisons the ledger. The fdatasyncs run on duplicated handles outside the ledger lock,
    /// so appends (and the commits that make them) are not held up by the disk.
    ///
    /// Concurrent calls run one at a time: a call returns only once every node written before
    /// it began is durable, including nodes another call was still syncing.
    pub fn sync(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let _one = self.syncing.lock();
        let mut batch = {
            let mut inner = self.inner.lock();
            self.check_writable(&inner)?;
            let r = (|| {
                let mut b = inner.store.begin_sync()?;
                b.files.push(inner.checkpoints.dup()?);
                b.files.push(inner.receipts.dup()?);
                Ok(b)
            })();
            if r.is_err() {
                inner.poisoned = true;
            }
            r?
        };
        #[cfg(test)]
        {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.sync_probe[0].fetch_add(1, SeqCst) + 1;
            self.sync_probe[1].fetch_max(now, SeqCst);
        }
        let r = std::mem::take(&mut batch).run();
        #[cfg(test)]
        self.sync_probe[0].fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if r.is_err() {
            self.inner.lock().poisoned = true;
        }
        r
    }

    /// Drops leaves beyond `size` (recovery after the WAL lost unsynced records). Refuses to go
    /// below the newest signed checkpoint.
    pub fn truncate(&self, size: u64) -> Result<()> {
        let mut inner = self.inner.lock();
        self.check_writable(&inner)?;
        inner.check_size("tree size", size)?;
        if let Some(cp) = &inner.latest {
            if size < cp.checkpoint.size {
                return Err(LedgerError::BelowSigned {
                    requested: size,
                    signed: cp.checkpoint.size,
                    kind: "checkpoint",
                });
            }
        }
        // A receipt covers only records that were durable when it was signed.
        if size < inner.receipt_max_size {
            return Err(LedgerError::BelowSigned {
                requested: size,
                signed: inner.receipt_max_size,
                kind: "receipt",
            });
        }
        let levels = inner.store.level_count();
        for level in 0..levels {
            inner.store.truncate_level(level, size >> level)?;
        }
        inner.store.drop_empty_top_levels()?;
        inner.size = size;
        inner.rebuild_frontier()?;
        inner.store.sync()
    }

    /// Inclusion proof for leaf `index` in the tree of `tree_size` leaves (RFC 9162 §2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<InclusionProof> {
        let inner = self.inner.lock();
        inner.check_size("tree size", tree_size)?;
        if index >= tree_size {
            return Err(LedgerError::OutOfRange {
                what: "leaf index",
                value: index,
                size: tree_size,
            });
        }
        let mut path = Vec::with_capacity(64);
        proof::inclusion_path(&*inner, self.alg, index, 0, tree_size, &mut path)?;
        Ok(InclusionProof {
            leaf_index: index,
            tree_size,
            path,
        })
    }

    /// Consistency proof between tree sizes `from <= to` (RFC 9162 §2.1.4.1). Empty when
    /// `from == 0` or `from == to`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        let inner = self.inner.lock();
        inner.check_size("tree size", to)?;
        if from > to {
            return Err(LedgerError::OutOfRange {
                what: "old tree size",
                value: from,
                size: to,
            });
        }
        let mut path = Vec::new();
        if from > 0 && from < to {
            proof::consistency_subproof(&*inner, self.alg, from, 0, to, true, &mut path)?;
        }
        Ok(ConsistencyProof { from, to, path })
    }

    /// Whether a checkpoint is due: `checkpoint_every` leaves or `checkpoint_interval` since
    /// the last one, with at least one new leaf.
    pub fn checkpoint_due(&self) -> bool {
        self.checkpoint_due_at(u64::MAX)
    }

    /// Like [`Ledger::checkpoint_due`] for a checkpoint that may cover at most `size` leaves
    /// (e.g. only those already durable): due when it would cover `checkpoint_every` new
    /// leaves, or any new leaf once `checkpoint_interval` has passed.
    pub fn checkpoint_due_at(&self, size: u64) -> bool {
        let inner = self.inner.lock();
        let size = size.min(inner.size);
        let signed = inner.latest.as_ref().map_or(0, |c| c.checkpoint.size);
        size > signed
            && (size - signed >= self.cfg.checkpoint_every
                || inner.last_checkpoint_at.elapsed() >= self.cfg.checkpoint_interval)
    }

    pub(crate) fn mark_checkpointed(inner: &mut Inner) {
        inner.last_checkpoint_at = Instant::now();
    }

    pub(crate) fn poison(inner: &mut Inner) {
        inner.poisoned = true;
    }
}

impl Drop for Ledger {
    /// Best effort: hands buffered nodes to the OS (not fsynced). A process crash loses them;
    /// the engine re-appends lost leaves from the WAL on recovery.
    fn drop(&mut self) {
        if !self.read_only {
            let _ = self.inner.get_mut().store.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;

    /// A sync marks the levels it found dirty as clean before its fdatasyncs (outside the
    /// lock) finish; a second sync overlapping it could return while those nodes were still
    /// not durable, and a checkpoint or manifest would then rely on them.
    #[test]
    fn concurrent_syncs_never_overlap() {
        let d = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(
            &d.path().join("l"),
            &d.path().join("k"),
            LedgerConfig::default(),
        )
        .expect("open");
        let order = Mutex::new(());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..40 {
                        {
                            let _in_seq = order.lock();
                            l.append_hashes(l.size() + 1, &[Hash([7; 32]); 8])
                                .expect("append");
                        }
                        l.sync().expect("sync");
                    }
                });
            }
        });
        assert_eq!(l.size(), 4 * 40 * 8);
        assert_eq!(l.sync_probe[1].load(SeqCst), 1, "two syncs overlapped");
    }
}
