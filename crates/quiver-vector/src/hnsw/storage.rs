//! The graph file: write an HNSW graph, map it back without rebuilding.
//! Byte layout: `docs/format/hnsw.md`. All integers little-endian.

use super::graph::{GraphRead, MemGraph, MAX_LEVEL};
use super::HnswParams;
use crate::vecfile::map_readonly;
use crate::{Result, VectorError};
use memmap2::Mmap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File magic, bytes 0..8.
pub const MAGIC: [u8; 8] = *b"QVHNSWGR";
/// Current format version.
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const NO_ENTRY: u32 = u32::MAX;

fn pad64(x: usize) -> usize {
    x.div_ceil(64) * 64
}

/// Section offsets of a graph file with `n` nodes, `m0`, and `upper_len` upper-layer slots.
struct Layout {
    levels: usize,
    links0: usize,
    upper_off: usize,
    upper: usize,
    end: usize,
}

impl Layout {
    fn new(n: usize, m0: usize, upper_len: usize) -> Option<Layout> {
        let levels = HEADER_LEN;
        let links0 = levels.checked_add(pad64(n))?;
        let upper_off = links0.checked_add(pad64(n.checked_mul(m0 + 1)?.checked_mul(4)?))?;
        let upper = upper_off.checked_add(pad64((n + 1).checked_mul(8)?))?;
        let end = upper.checked_add(pad64(upper_len.checked_mul(4)?))?;
        Some(Layout {
            levels,
            links0,
            upper_off,
            upper,
            end,
        })
    }
}

/// Writes `g` to `path` (create/truncate, then fsync).
pub(crate) fn save<G: GraphRead>(
    g: &G,
    m: usize,
    m0: usize,
    params: &HnswParams,
    path: &Path,
) -> Result<()> {
    let io = |source| VectorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let n = g.len();
    let upper_len: usize = (0..n as u32).map(|i| g.level(i) * (m + 1)).sum();
    let lay = Layout::new(n, m0, upper_len).ok_or_else(|| VectorError::InvalidParameter {
        name: "graph",
        reason: "graph too large to serialise".into(),
    })?;
    let mut body = vec![0u8; lay.end - HEADER_LEN];
    let at = |off: usize| off - HEADER_LEN;
    let mut buf = Vec::new();
    let mut uoff = 0u64;
    for i in 0..n {
        let node = i as u32;
        let lvl = g.level(node);
        body[at(lay.levels) + i] = lvl as u8;
        buf.clear();
        g.neighbors(0, node, &mut buf);
        let base = at(lay.links0) + i * (m0 + 1) * 4;
        body[base..base + 4].copy_from_slice(&(buf.len() as u32).to_le_bytes());
        for (j, id) in buf.iter().enumerate() {
            body[base + 4 + j * 4..base + 8 + j * 4].copy_from_slice(&id.to_le_bytes());
        }
        let ob = at(lay.upper_off) + i * 8;
        body[ob..ob + 8].copy_from_slice(&uoff.to_le_bytes());
        for level in 1..=lvl {
            buf.clear();
            g.neighbors(level, node, &mut buf);
            let base = at(lay.upper) + (uoff as usize + (level - 1) * (m + 1)) * 4;
            body[base..base + 4].copy_from_slice(&(buf.len() as u32).to_le_bytes());
            for (j, id) in buf.iter().enumerate() {
                body[base + 4 + j * 4..base + 8 + j * 4].copy_from_slice(&id.to_le_bytes());
            }
        }
        uoff += (lvl * (m + 1)) as u64;
    }
    let ob = at(lay.upper_off) + n * 8;
    body[ob..ob + 8].copy_from_slice(&uoff.to_le_bytes());

    let (entry, top) = g.entry().map_or((NO_ENTRY, 0), |(e, l)| (e, l as u32));
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(m as u32).to_le_bytes());
    h[16..20].copy_from_slice(&(m0 as u32).to_le_bytes());
    h[20..24].copy_from_slice(&top.to_le_bytes());
    h[24..32].copy_from_slice(&(n as u64).to_le_bytes());
    h[32..36].copy_from_slice(&entry.to_le_bytes());
    h[36..40].copy_from_slice(&(params.ef_construction as u32).to_le_bytes());
    h[40..48].copy_from_slice(&params.seed.to_le_bytes());
    h[48..56].copy_from_slice(&(upper_len as u64).to_le_bytes());
    h[56..60].copy_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    let hc = crc32c::crc32c(&h[0..60]);
    h[60..64].copy_from_slice(&hc.to_le_bytes());

    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(&h).map_err(io)?;
    f.write_all(&body).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// A graph file mapped read-only and fully validated at open.
pub(crate) struct MappedGraph {
    pub path: PathBuf,
    map: Mmap,
    pub n: usize,
    pub m: usize,
    pub m0: usize,
    pub params: HnswParams,
    entry: Option<(u32, usize)>,
    lay: Layout,
}

impl MappedGraph {
    /// Maps `path` and checks magic, version, both checksums, the length, and that every
    /// count and neighbour id is in range, so later reads cannot go astray.
    pub fn open(path: &Path) -> Result<MappedGraph> {
        let (map, len) = map_readonly(path)?;
        let corrupt = |offset: usize, reason: String| VectorError::Corruption {
            file: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        if map.len() < HEADER_LEN {
            return Err(corrupt(
                0,
                format!("file is {len} bytes, shorter than the {HEADER_LEN}-byte header"),
            ));
        }
        let h = &map[..HEADER_LEN];
        if h[0..8] != MAGIC {
            return Err(corrupt(0, "bad magic: not a quiver HNSW graph file".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(b)
        };
        if u32_at(8) != VERSION {
            return Err(corrupt(
                8,
                format!("unsupported version {}, expected {VERSION}", u32_at(8)),
            ));
        }
        let hc = crc32c::crc32c(&h[0..60]);
        if hc != u32_at(60) {
            return Err(corrupt(
                60,
                format!(
                    "header checksum mismatch: expected {hc:#010x}, got {:#010x}",
                    u32_at(60)
                ),
            ));
        }
        let (m, m0, top) = (
            u32_at(12) as usize,
            u32_at(16) as usize,
            u32_at(20) as usize,
        );
        let n =
            usize::try_from(u64_at(24)).map_err(|_| corrupt(24, "node count overflows".into()))?;
        let upper_len =
            usize::try_from(u64_at(48)).map_err(|_| corrupt(48, "upper size overflows".into()))?;
        if m < 2 || m0 < m || top > MAX_LEVEL || n > u32::MAX as usize {
            return Err(corrupt(
                12,
                format!("implausible parameters m={m} m0={m0} top level={top} n={n}"),
            ));
        }
        let lay =
            Layout::new(n, m0, upper_len).ok_or_else(|| corrupt(24, "sizes overflow".into()))?;
        if lay.end as u64 != len {
            return Err(corrupt(
                len.min(lay.end as u64) as usize,
                format!("file is {len} bytes, the header describes {}", lay.end),
            ));
        }
        let bc = crc32c::crc32c(&map[HEADER_LEN..]);
        if bc != u32_at(56) {
            return Err(corrupt(
                HEADER_LEN,
                format!(
                    "body checksum mismatch: expected {:#010x}, got {bc:#010x}",
                    u32_at(56)
                ),
            ));
        }
        let entry_id = u32_at(32);
        let entry = if entry_id == NO_ENTRY {
            None
        } else {
            Some((entry_id, top))
        };
        let params = HnswParams {
            m,
            ef_construction: u32_at(36) as usize,
            seed: u64_at(40),
        };
        let g = MappedGraph {
            path: path.to_path_buf(),
            map,
            n,
            m,
            m0,
            params,
            entry,
            lay,
        };
        g.validate()?;
        Ok(g)
    }

    fn validate(&self) -> Result<()> {
        let corrupt = |offset: usize, reason: String| VectorError::Corruption {
            file: self.path.clone(),
            offset: offset as u64,
            reason,
        };
        match self.entry {
            None if self.n != 0 => {
                return Err(corrupt(32, "non-empty graph without an entry point".into()))
            }
            Some((e, top)) if e as usize >= self.n || self.level(e) != top => {
                return Err(corrupt(
                    32,
                    format!(
                        "entry point {e} invalid for {} nodes / top level {top}",
                        self.n
                    ),
                ))
            }
            _ => {}
        }
        let offs = self.upper_offsets();
        if offs.len() != self.n + 1 || offs.first().copied().unwrap_or(0) != 0 {
            return Err(corrupt(
                self.lay.upper_off,
                "upper-layer offsets malformed".into(),
            ));
        }
        let upper_len = (self.lay.end - self.lay.upper) / 4;
        let mut buf = Vec::new();
        for i in 0..self.n {
            let lvl = self.level(i as u32);
            let top = self.entry.map_or(0, |e| e.1);
            if lvl > top {
                return Err(corrupt(
                    self.lay.levels + i,
                    format!("node {i} has level {lvl} above the top level {top}"),
                ));
            }
            let want = offs[i] + (lvl * (self.m + 1)) as u64;
            if offs[i + 1] != want || want as usize > upper_len {
                return Err(corrupt(
                    self.lay.upper_off + i * 8,
                    format!("upper-layer offset of node {i} is inconsistent"),
                ));
            }
            for level in 0..=lvl {
                let slot = self.slot(level, i as u32);
                let cap = if level == 0 { self.m0 } else { self.m };
                let Some((&c, ids)) = slot.split_first() else {
                    return Err(corrupt(
                        self.lay.links0,
                        format!("node {i} level {level}: list out of bounds"),
                    ));
                };
                if c as usize > cap {
                    return Err(corrupt(
                        self.lay.links0,
                        format!("node {i} level {level}: {c} neighbours, more than {cap}"),
                    ));
                }
                buf.clear();
                buf.extend_from_slice(&ids[..c as usize]);
                if let Some(bad) = buf
                    .iter()
                    .find(|&&x| x as usize >= self.n || self.level(x) < level)
                {
                    return Err(corrupt(
                        self.lay.links0,
                        format!("node {i} level {level}: neighbour {bad} is not a valid node"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn upper_offsets(&self) -> &[u64] {
        bytemuck::try_cast_slice(
            &self.map[self.lay.upper_off..self.lay.upper_off + (self.n + 1) * 8],
        )
        .unwrap_or(&[])
    }

    #[inline]
    fn slot(&self, level: usize, node: u32) -> &[u32] {
        let node = node as usize;
        let bytes: &[u8] = if level == 0 {
            let w = (self.m0 + 1) * 4;
            let s = self.lay.links0 + node * w;
            self.map.get(s..s + w).unwrap_or(&[])
        } else {
            let off = self.upper_offsets().get(node).copied().unwrap_or(0) as usize;
            let w = (self.m + 1) * 4;
            let s = self.lay.upper + (off + (level - 1) * (self.m + 1)) * 4;
            if level > self.level(node as u32) {
                &[]
            } else {
                self.map.get(s..s + w).unwrap_or(&[])
            }
        };
        bytemuck::try_cast_slice(bytes).unwrap_or(&[])
    }

    /// Bytes of the mapped file.
    pub fn bytes(&self) -> usize {
        self.map.len()
    }

    /// Copies the graph into a growable in-memory graph.
    pub fn to_mem(&self) -> MemGraph {
        let mut g = MemGraph::new(self.m, self.m0);
        let levels: Vec<u8> = (0..self.n as u32).map(|i| self.level(i) as u8).collect();
        g.grow_nodes(&levels);
        let mut buf = Vec::new();
        for i in 0..self.n as u32 {
            for level in 0..=self.level(i) {
                buf.clear();
                self.neighbors(level, i, &mut buf);
                g.write(level, i, &buf);
            }
        }
        *g.entry.write() = self.entry;
        g
    }
}

impl GraphRead for MappedGraph {
    fn len(&self) -> usize {
        self.n
    }
    fn entry(&self) -> Option<(u32, usize)> {
        self.entry
    }
    #[inline]
    fn level(&self, node: u32) -> usize {
        self.map
            .get(self.lay.levels + node as usize)
            .map_or(0, |&l| l as usize)
    }
    #[inline]
    fn neighbors(&self, level: usize, node: u32, out: &mut Vec<u32>) {
        if let Some((&c, ids)) = self.slot(level, node).split_first() {
            out.extend_from_slice(&ids[..(c as usize).min(ids.len())]);
        }
    }
    #[inline]
    fn prefetch_links(&self, node: u32) {
        let s = self.lay.links0 + node as usize * (self.m0 + 1) * 4;
        crate::distance::prefetch(self.map.as_ptr().wrapping_add(s));
    }
}
