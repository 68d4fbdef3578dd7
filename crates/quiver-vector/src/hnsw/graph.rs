//! Graph storage shared by the builder and the searcher.
//!
//! [`MemGraph`] is the growable in-memory graph. Layer 0 is one flat array of
//! `n * (m0 + 1)` slots (`[count, id_1 .. id_m0]` per node), upper layers one small array per
//! node that has them. Slots are `AtomicU32` so the parallel builder can write them under a
//! fine-grained per-node lock while other threads read; searches (which need `&self` while
//! inserts need `&mut self`) read them with relaxed loads, which compile to plain loads.

use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Highest level a node may be assigned (levels are drawn as `⌊-ln(U)·mL⌋`, capped here).
pub(crate) const MAX_LEVEL: usize = 15;

/// Read access to a graph, whatever its storage.
pub(crate) trait GraphRead: Sync {
    /// Number of nodes.
    fn len(&self) -> usize;
    /// Entry point and its level (the graph's top level), `None` when empty.
    fn entry(&self) -> Option<(u32, usize)>;
    /// Level of `node` (0 when out of range).
    fn level(&self, node: u32) -> usize;
    /// Appends the neighbours of `node` at `level` to `out` (nothing when it has none).
    fn neighbors(&self, level: usize, node: u32, out: &mut Vec<u32>);
    /// Hint that `node`'s layer-0 list is needed soon.
    #[inline]
    fn prefetch_links(&self, _node: u32) {}
}

/// The in-memory graph (see the module docs).
pub(crate) struct MemGraph {
    pub m: usize,
    pub m0: usize,
    pub levels: Vec<u8>,
    pub links0: Vec<AtomicU32>,
    pub upper: Vec<Box<[AtomicU32]>>,
    pub locks: Vec<Mutex<()>>,
    pub entry: RwLock<Option<(u32, usize)>>,
    /// Held by an insert whose level exceeds the current top level.
    pub grow: Mutex<()>,
}

fn read_slot(slot: &[AtomicU32], out: &mut Vec<u32>) {
    if let Some((c, ids)) = slot.split_first() {
        let c = (c.load(Relaxed) as usize).min(ids.len());
        out.extend(ids[..c].iter().map(|a| a.load(Relaxed)));
    }
}

impl MemGraph {
    pub fn new(m: usize, m0: usize) -> Self {
        MemGraph {
            m,
            m0,
            levels: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: RwLock::new(None),
            grow: Mutex::new(()),
        }
    }

    /// Adds nodes (not yet linked) with the given levels.
    pub fn grow_nodes(&mut self, levels: &[u8]) {
        let (m, m0) = (self.m, self.m0);
        self.levels.extend_from_slice(levels);
        self.links0
            .extend((0..levels.len() * (m0 + 1)).map(|_| AtomicU32::new(0)));
        self.upper.extend(levels.iter().map(|&l| {
            (0..l as usize * (m + 1))
                .map(|_| AtomicU32::new(0))
                .collect()
        }));
        self.locks.extend(levels.iter().map(|_| Mutex::new(())));
    }

    /// The slot of `node` at `level` (empty when the node has no such level).
    #[inline]
    pub fn slot(&self, level: usize, node: u32) -> &[AtomicU32] {
        let node = node as usize;
        if level == 0 {
            let w = self.m0 + 1;
            self.links0.get(node * w..node * w + w).unwrap_or(&[])
        } else {
            let w = self.m + 1;
            let s = (level - 1) * w;
            self.upper
                .get(node)
                .and_then(|u| u.get(s..s + w))
                .unwrap_or(&[])
        }
    }

    /// Replaces the list of `node` at `level` (caller holds the node's lock).
    pub fn write(&self, level: usize, node: u32, ids: &[u32]) {
        let slot = self.slot(level, node);
        if let Some((c, rest)) = slot.split_first() {
            let n = ids.len().min(rest.len());
            for (a, &id) in rest.iter().zip(&ids[..n]) {
                a.store(id, Relaxed);
            }
            c.store(n as u32, Relaxed);
        }
    }

    /// Appends `id` to `node`'s list at `level` if there is room (caller holds the lock).
    pub fn try_append(&self, level: usize, node: u32, id: u32) -> bool {
        let slot = self.slot(level, node);
        let Some((c, rest)) = slot.split_first() else {
            return false;
        };
        let n = c.load(Relaxed) as usize;
        if n < rest.len() {
            rest[n].store(id, Relaxed);
            c.store(n as u32 + 1, Relaxed);
            true
        } else {
            false
        }
    }

    /// Bytes held by links, levels and locks.
    pub fn bytes(&self) -> usize {
        self.links0.len() * 4
            + self.upper.iter().map(|u| u.len() * 4 + 16).sum::<usize>()
            + self.levels.len()
            + self.locks.len() * std::mem::size_of::<Mutex<()>>()
    }
}

impl GraphRead for MemGraph {
    fn len(&self) -> usize {
        self.levels.len()
    }
    fn entry(&self) -> Option<(u32, usize)> {
        *self.entry.read()
    }
    fn level(&self, node: u32) -> usize {
        self.levels.get(node as usize).map_or(0, |&l| l as usize)
    }
    #[inline]
    fn neighbors(&self, level: usize, node: u32, out: &mut Vec<u32>) {
        read_slot(self.slot(level, node), out);
    }
    #[inline]
    fn prefetch_links(&self, node: u32) {
        crate::distance::prefetch(
            self.links0
                .as_ptr()
                .wrapping_add(node as usize * (self.m0 + 1)),
        );
    }
}

/// The in-memory graph read under each node's lock (while a parallel build writes it).
pub(crate) struct Locked<'a>(pub &'a MemGraph);

impl GraphRead for Locked<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn entry(&self) -> Option<(u32, usize)> {
        self.0.entry()
    }
    fn level(&self, node: u32) -> usize {
        self.0.level(node)
    }
    #[inline]
    fn neighbors(&self, level: usize, node: u32, out: &mut Vec<u32>) {
        if let Some(lock) = self.0.locks.get(node as usize) {
            let _g = lock.lock();
            read_slot(self.0.slot(level, node), out);
        }
    }
    #[inline]
    fn prefetch_links(&self, node: u32) {
        self.0.prefetch_links(node)
    }
}
