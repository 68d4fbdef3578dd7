//! The ledger's mutable state behind its mutex: node store, frontier, signed statements; and
//! the streaming leaf-hash iterator.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::error::{LedgerError, Result};
use crate::framed::FramedLog;
use crate::hash::{node_hash, parent_hashes_into, Hash, HashAlg};
use crate::ledger::Ledger;
use crate::note::SignedCheckpoint;
use crate::proof::{self, NodeSource};
use crate::store::TreeStore;

pub(crate) struct Inner {
    pub(crate) store: TreeStore,
    pub(crate) size: u64,
    /// `frontier[l]` is the last node of level `l`, valid where bit `l` of `size` is set.
    pub(crate) frontier: [Hash; 64],
    pub(crate) checkpoints: FramedLog,
    pub(crate) latest: Option<SignedCheckpoint>,
    pub(crate) last_checkpoint_at: Instant,
    pub(crate) receipts: FramedLog,
    /// Offset of receipt `id` at `receipt_offsets[id - 1]`.
    pub(crate) receipt_offsets: Vec<u64>,
    /// Receipts by their ranges: (first_seq, id) -> last_seq. Keyed by id too, as ranges may
    /// start at the same seq (and overlap) when `Ledger::receipt` is called directly.
    pub(crate) receipt_by_first: BTreeMap<(u64, u64), u64>,
    /// The widest receipt range (last_seq - first_seq): no receipt starting further below a
    /// seq can contain it.
    pub(crate) receipt_max_span: u64,
    /// The largest tree size any receipt was signed over.
    pub(crate) receipt_max_size: u64,
    pub(crate) poisoned: bool,
}

impl NodeSource for Inner {
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        self.store.node(level, index)
    }
}

impl Inner {
    pub(crate) fn check_size(&self, what: &'static str, size: u64) -> Result<()> {
        if size > self.size {
            return Err(LedgerError::OutOfRange {
                what,
                value: size,
                size: self.size,
            });
        }
        Ok(())
    }

    pub(crate) fn push_leaf(&mut self, alg: HashAlg, h: &Hash) -> Result<()> {
        self.store.push(0, h)?;
        let mut node = *h;
        let mut level = 0u32;
        let mut idx = self.size;
        while idx & 1 == 1 {
            node = node_hash(alg, &self.frontier[level as usize], &node);
            level += 1;
            idx >>= 1;
            self.store.push(level, &node)?;
        }
        self.frontier[level as usize] = node;
        self.size += 1;
        Ok(())
    }

    /// Appends many leaves: the same nodes as [`Inner::push_leaf`] on each in turn, but each
    /// level's new parents are hashed in one [`parent_hashes_into`] call (sixteen at a time with
    /// BLAKE3 on AVX-512).
    pub(crate) fn push_leaves(&mut self, alg: HashAlg, leaves: &[Hash]) -> Result<()> {
        if leaves.len() < 4 {
            for h in leaves {
                self.push_leaf(alg, h)?;
            }
            return Ok(());
        }
        let new_size = self.size + leaves.len() as u64;
        let mut level = 0u32;
        // The new nodes of `level` (the caller's slice at level 0), the first at index `start`.
        let mut owned: Vec<Hash>;
        let mut nodes: &[Hash] = leaves;
        let mut start = self.size;
        loop {
            self.store.push_many(level, nodes)?;
            // A new node at an odd index pairs with the level's existing last node.
            let (first, rest) = match (start & 1 == 1, nodes.split_first()) {
                (true, Some((n0, rest))) => (
                    Some(node_hash(alg, &self.frontier[level as usize], n0)),
                    rest,
                ),
                _ => (None, nodes),
            };
            if (new_size >> level) & 1 == 1 {
                if let Some(last) = nodes.last() {
                    self.frontier[level as usize] = *last;
                }
            }
            let pairs = rest.len() / 2;
            if first.is_none() && pairs == 0 {
                break;
            }
            let mut parents = Vec::with_capacity(pairs + 1);
            parents.extend(first);
            parent_hashes_into(alg, &rest[..2 * pairs], &mut parents);
            owned = parents;
            nodes = &owned;
            start >>= 1;
            level += 1;
        }
        self.size = new_size;
        Ok(())
    }

    pub(crate) fn current_root(&self, alg: HashAlg) -> Hash {
        let mut acc: Option<Hash> = None;
        for level in 0..64 {
            if self.size & (1u64 << level) != 0 {
                let f = &self.frontier[level];
                acc = Some(match acc {
                    None => *f,
                    Some(a) => node_hash(alg, f, &a),
                });
            }
        }
        acc.unwrap_or_else(|| alg.empty_root())
    }

    pub(crate) fn root_at(&self, alg: HashAlg, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(alg.empty_root());
        }
        if size == self.size {
            return Ok(self.current_root(alg));
        }
        proof::range_hash(self, alg, 0, size)
    }

    pub(crate) fn rebuild_frontier(&mut self) -> Result<()> {
        for level in 0..64u32 {
            if self.size & (1u64 << level) != 0 {
                self.frontier[level as usize] = self.store.node(level, (self.size >> level) - 1)?;
            }
        }
        Ok(())
    }

    /// Makes every level hold exactly `size >> level` nodes: cuts stale extra nodes and
    /// recomputes nodes whose write was lost in a crash (in memory only when read-only).
    pub(crate) fn reconcile(&mut self, alg: HashAlg, read_only: bool) -> Result<()> {
        for level in 1..64u32 {
            let want = self.size >> level;
            let have = self.store.count(level);
            if have > want && !read_only {
                self.store.truncate_level(level, want)?;
            }
            for i in have.min(want)..want {
                let l = self.store.node(level - 1, 2 * i)?;
                let r = self.store.node(level - 1, 2 * i + 1)?;
                self.store.push(level, &node_hash(alg, &l, &r))?;
            }
            if want == 0 && level >= self.store.level_count() {
                break;
            }
        }
        if !read_only {
            self.store.drop_empty_top_levels()?;
            self.store.sync()?;
        }
        self.rebuild_frontier()
    }
}

/// Iterator over stored leaf hashes, see [`Ledger::leaf_hashes`].
pub struct LeafHashes<'a> {
    ledger: &'a Ledger,
    next: u64,
    end: u64,
    buf: Vec<Hash>,
    pos: usize,
}

impl<'a> LeafHashes<'a> {
    pub(crate) fn new(ledger: &'a Ledger, from: u64, end: u64) -> Self {
        LeafHashes {
            ledger,
            next: from,
            end,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Iterator for LeafHashes<'_> {
    type Item = Result<Hash>;

    fn next(&mut self) -> Option<Result<Hash>> {
        if self.pos == self.buf.len() {
            if self.next >= self.end {
                return None;
            }
            let n = (self.end - self.next).min(4096) as usize;
            self.buf.resize(n, Hash::default());
            self.pos = 0;
            let r = self
                .ledger
                .inner
                .lock()
                .store
                .read_range(0, self.next, &mut self.buf);
            if let Err(e) = r {
                self.next = self.end;
                self.buf.clear();
                return Some(Err(e));
            }
            self.next += n as u64;
        }
        let h = self.buf[self.pos];
        self.pos += 1;
        Some(Ok(h))
    }
}
