//! Opening a segment file and reading it by id.

use crate::{
    bloom::{hash_id, Bloom},
    compress::decompress,
    format::{
        BlockHandle, Cur, DirEntry, Footer, FOOTER_HAS_TS, FOOTER_LEN, FOOTER_MAGIC,
        FOOTER_NO_TOMBSTONES, HEADER_LEN, HEADER_MAGIC, VERSION,
    },
    iter::{BlockRows, SegmentIter},
    Result, SegmentError, SegmentMeta,
};
use quiver_core::{Id, SeqNo};
use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

/// An open immutable segment file.
///
/// Holds in memory only the block index (60 bytes per data block), the sparse id directory
/// (the first id of each ~4 KiB id-index block) and the bloom filter; rows and the id index
/// itself stay on disk and are read with positional reads (`pread`), so a `Segment` is
/// `Send + Sync` and every read takes `&self`.
#[derive(Debug)]
pub struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    meta: SegmentMeta,
    pub(crate) blocks: Vec<BlockHandle>,
    pub(crate) dir: Vec<DirEntry>,
    pub(crate) bloom: Bloom,
    /// Smallest and largest id, read from the id index on first use.
    id_range: OnceLock<(Id, Id)>,
    blocks_read: AtomicU64,
    index_blocks_read: AtomicU64,
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> SegmentError {
    SegmentError::Corruption {
        file: path.display().to_string(),
        offset,
        reason: reason.into(),
    }
}

#[cfg(unix)]
pub(crate) fn pread(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn pread(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

impl Segment {
    /// Opens a segment file, checking the header, the footer and the checksums of the
    /// block index, the id directory and the bloom filter, and that every region lies
    /// where the footer says. Data blocks and id-index blocks are checked when read.
    pub fn open(path: &Path) -> Result<Segment> {
        let file = File::open(path).map_err(|e| SegmentError::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| SegmentError::io(path, "stat", e))?
            .len();
        let min = (HEADER_LEN + FOOTER_LEN) as u64;
        if len < min {
            return Err(corrupt(
                path,
                len,
                format!(
                    "file is {len} bytes, shorter than the {min}-byte header + footer (truncated?)"
                ),
            ));
        }
        let read = |off: u64, n: usize| -> Result<Vec<u8>> {
            let mut b = vec![0u8; n];
            pread(&file, &mut b, off).map_err(|e| SegmentError::io(path, "read", e))?;
            Ok(b)
        };
        let h = read(0, HEADER_LEN)?;
        if h[..8] != HEADER_MAGIC {
            return Err(corrupt(
                path,
                0,
                "bad header magic: not a quiver segment file",
            ));
        }
        let hcrc = crc32c::crc32c(&h[..12]);
        let stored = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        if hcrc != stored {
            return Err(corrupt(
                path,
                12,
                format!("header checksum mismatch: stored {stored:#010x}, computed {hcrc:#010x}"),
            ));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != VERSION {
            return Err(SegmentError::UnsupportedVersion {
                file: path.display().to_string(),
                found: version,
                supported: VERSION,
            });
        }
        let foff = len - FOOTER_LEN as u64;
        let fb = read(foff, FOOTER_LEN)?;
        if fb[FOOTER_LEN - 8..] != FOOTER_MAGIC {
            return Err(corrupt(
                path,
                len - 8,
                "bad footer magic (truncated or not fully written?)",
            ));
        }
        let fcrc = crc32c::crc32c(&fb[..FOOTER_LEN - 12]);
        let stored = u32::from_le_bytes([fb[124], fb[125], fb[126], fb[127]]);
        if fcrc != stored {
            return Err(corrupt(
                path,
                foff + 124,
                format!("footer checksum mismatch: stored {stored:#010x}, computed {fcrc:#010x}"),
            ));
        }
        let fver = u32::from_le_bytes([fb[120], fb[121], fb[122], fb[123]]);
        if fver != VERSION {
            return Err(SegmentError::UnsupportedVersion {
                file: path.display().to_string(),
                found: fver,
                supported: VERSION,
            });
        }
        let f = Footer::decode(&fb).map_err(|p| corrupt(path, foff + p as u64, "short footer"))?;
        // Regions must tile the file:
        // header | blocks | id index | dir | block index | bloom | footer.
        let tiles = [
            (HEADER_LEN as u64, f.id_index_offset),
            (f.id_index_offset, f.id_dir_offset),
            (
                f.id_dir_offset,
                f.id_dir_offset.saturating_add(f.id_dir_len),
            ),
            (
                f.block_index_offset,
                f.block_index_offset.saturating_add(f.block_index_len),
            ),
            (f.bloom_offset, f.bloom_offset.saturating_add(f.bloom_len)),
        ];
        let ends_ok = tiles.windows(2).all(|w| w[0].1 == w[1].0) && tiles[4].1 == foff;
        if !ends_ok || tiles.iter().any(|&(a, b)| a > b) {
            return Err(corrupt(
                path,
                foff,
                format!("footer region offsets do not tile the file: {tiles:?}, footer at {foff}"),
            ));
        }
        if f.rows == 0 || f.distinct_ids == 0 || f.min_seq > f.max_seq {
            return Err(corrupt(
                path,
                foff,
                format!(
                    "footer claims {} rows, {} ids, seqs {}..={}",
                    f.rows, f.distinct_ids, f.min_seq, f.max_seq
                ),
            ));
        }
        // Directory, block index and bloom are contiguous: one read.
        let meta_bytes = read(f.id_dir_offset, (foff - f.id_dir_offset) as usize)?;
        let (dir_b, rest) = meta_bytes.split_at(f.id_dir_len as usize);
        let (bi_b, bloom_b) = rest.split_at(f.block_index_len as usize);
        for (name, bytes, want, off) in [
            ("id directory", dir_b, f.id_dir_crc, f.id_dir_offset),
            ("block index", bi_b, f.block_index_crc, f.block_index_offset),
            ("bloom filter", bloom_b, f.bloom_crc, f.bloom_offset),
        ] {
            let got = crc32c::crc32c(bytes);
            if got != want {
                return Err(corrupt(
                    path,
                    off,
                    format!(
                        "{name} checksum mismatch: footer says {want:#010x}, computed {got:#010x}"
                    ),
                ));
            }
        }
        let blocks = crate::checks::parse_block_index(path, bi_b, &f)?;
        let dir = crate::checks::parse_dir(path, dir_b, &f)?;
        let bloom = Bloom::decode(bloom_b)
            .map_err(|p| corrupt(path, f.bloom_offset + p as u64, "malformed bloom filter"))?;
        let has_ts = f.flags & FOOTER_HAS_TS != 0;
        let meta = SegmentMeta {
            rows: f.rows,
            min_seq: f.min_seq,
            max_seq: f.max_seq,
            bytes: len,
            min_ts: has_ts.then_some(f.min_ts),
            max_ts: has_ts.then_some(f.max_ts),
            may_hold_tombstones: f.flags & FOOTER_NO_TOMBSTONES == 0,
        };
        Ok(Segment {
            path: path.to_path_buf(),
            file,
            meta,
            blocks,
            dir,
            bloom,
            id_range: OnceLock::new(),
            blocks_read: AtomicU64::new(0),
            index_blocks_read: AtomicU64::new(0),
        })
    }

    /// Facts about the segment.
    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of data blocks in the file.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Data blocks read (and CRC-checked) since open: lets tests and stats see block skipping.
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read.load(Ordering::Relaxed)
    }

    /// Id-index blocks read since open.
    pub fn index_blocks_read(&self) -> u64 {
        self.index_blocks_read.load(Ordering::Relaxed)
    }

    /// Memory held by the open segment's in-memory structures, in bytes (approximate).
    pub fn heap_bytes(&self) -> usize {
        let dir: usize = self
            .dir
            .iter()
            .map(|d| {
                std::mem::size_of::<DirEntry>()
                    + match &d.first {
                        Id::Str(s) => s.len(),
                        Id::U64(_) => 0,
                    }
            })
            .sum();
        self.blocks.len() * std::mem::size_of::<BlockHandle>() + dir + self.bloom.heap_bytes()
    }

    /// The sequence number of the newest row for `id` in this segment, from the id index
    /// alone (no data block is read): bloom filter, directory, one id-index block.
    pub fn newest_seq(&self, id: &Id) -> Result<Option<SeqNo>> {
        Ok(self.lookup(id)?.map(|(seq, _, _)| seq))
    }

    fn lookup(&self, id: &Id) -> Result<Option<(SeqNo, u32, u32)>> {
        if !self.bloom.may_contain(hash_id(id)) {
            return Ok(None);
        }
        let i = self.dir.partition_point(|d| d.first <= *id);
        match i.checked_sub(1).and_then(|i| self.dir.get(i)) {
            Some(d) => self.find_in_index_block(d, id),
            None => Ok(None),
        }
    }

    /// The newest row for `id` in this segment: bloom filter first, then the sparse id
    /// directory, one id-index block read, and one data block read.
    pub fn get(&self, id: &Id) -> Result<Option<Vec<u8>>> {
        let Some((seq, block, pos)) = self.lookup(id)? else {
            return Ok(None);
        };
        // `lookup` checked block and position against the block index.
        let h = self.blocks.get(block as usize).copied().unwrap_or_default();
        let raw = self.read_block(block as usize)?;
        let mut rows = BlockRows::new(self, block as usize, &raw);
        let mut found = None;
        for _ in 0..=pos {
            found = rows.next_row()?;
        }
        let body = found.ok_or_else(|| {
            corrupt(
                &self.path,
                h.offset,
                format!("block {block} ended before row {pos}"),
            )
        })?;
        let head = crate::rowkey::parse_head(body).map_err(|e| {
            corrupt(
                &self.path,
                h.offset,
                format!("row {pos} of block {block} does not decode: {e}"),
            )
        })?;
        if head.seq != seq || !head.id.matches(id) {
            return Err(corrupt(
                &self.path,
                h.offset,
                format!(
                    "row {pos} of block {block} is seq {} id {:?}, the id index says seq {seq} id {id}",
                    head.seq, head.id
                ),
            ));
        }
        Ok(Some(body.to_vec()))
    }

    /// Reads one id-index block and checks its CRC against the directory.
    pub(crate) fn read_index_block(&self, d: &DirEntry) -> Result<Vec<u8>> {
        let mut b = vec![0u8; d.len as usize];
        pread(&self.file, &mut b, d.offset).map_err(|e| SegmentError::io(&self.path, "read", e))?;
        self.index_blocks_read.fetch_add(1, Ordering::Relaxed);
        let got = crc32c::crc32c(&b);
        if got != d.crc {
            return Err(corrupt(
                &self.path,
                d.offset,
                format!(
                    "id index block checksum mismatch: directory says {:#010x}, computed {got:#010x}",
                    d.crc
                ),
            ));
        }
        Ok(b)
    }

    /// Calls `f` with each id of the id index from `from` to `to` (inclusive) in `Id` order,
    /// reading only the id-index blocks that can hold them, until `f` returns false.
    fn for_ids_between(
        &self,
        from: &Id,
        to: &Id,
        mut f: impl FnMut(Id) -> Result<bool>,
    ) -> Result<()> {
        let start = self
            .dir
            .partition_point(|d| d.first <= *from)
            .saturating_sub(1);
        for d in self.dir[start..].iter().take_while(|d| d.first <= *to) {
            let more = self.for_index_entries(d, |key, _, _, _| {
                if key < *from {
                    return Ok(true);
                }
                if key > *to {
                    return Ok(false);
                }
                f(key)
            })?;
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f` with each entry of one id-index block — id, seq, block, position — in
    /// order, until it returns false; returns whether it never did.
    fn for_index_entries(
        &self,
        d: &DirEntry,
        mut f: impl FnMut(Id, SeqNo, u32, u32) -> Result<bool>,
    ) -> Result<bool> {
        let b = self.read_index_block(d)?;
        let mut c = Cur::new(&b);
        let bad = |p: usize| corrupt(&self.path, d.offset + p as u64, "malformed id index entry");
        for _ in 0..d.count {
            let key = c.key().map_err(bad)?;
            let seq = c.u64().map_err(bad)?;
            let block = c.u32().map_err(bad)?;
            let pos = c.u32().map_err(bad)?;
            if !f(key, seq, block, pos)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The smallest and largest id stored (in `Id` order: integers before strings). The first
    /// call reads the last id-index block.
    pub fn id_range(&self) -> Result<&(Id, Id)> {
        if let Some(r) = self.id_range.get() {
            return Ok(r);
        }
        let (Some(first), Some(last)) = (self.dir.first(), self.dir.last()) else {
            return Err(corrupt(&self.path, 0, "segment has an empty id directory"));
        };
        let mut max = last.first.clone();
        self.for_index_entries(last, |id, _, _, _| {
            max = id;
            Ok(true)
        })?;
        Ok(self.id_range.get_or_init(|| (first.first.clone(), max)))
    }

    /// Whether this segment and `other` hold a common id: ids of this segment inside
    /// `other`'s id range are probed against `other` (bloom filter, then its id index). When
    /// more than `max_probes` ids would need probing the answer is `None` (unknown): the
    /// ranges overlap too much for a cheap check. Segments of an append-only stream (ids that
    /// rise with time) overlap only at their edges, so the check reads a block or two.
    pub fn shares_id_with(&self, other: &Segment, max_probes: usize) -> Result<Option<bool>> {
        let (mine, theirs) = (self.id_range()?, other.id_range()?);
        let from = (&mine.0).max(&theirs.0);
        let to = (&mine.1).min(&theirs.1);
        if from > to {
            return Ok(Some(false));
        }
        let (mut probes, mut shared, mut gave_up) = (0usize, false, false);
        self.for_ids_between(from, to, |id| {
            if probes == max_probes {
                gave_up = true;
                return Ok(false);
            }
            probes += 1;
            shared = other.lookup(&id)?.is_some();
            Ok(!shared)
        })?;
        Ok(if shared {
            Some(true)
        } else if gave_up {
            None
        } else {
            Some(false)
        })
    }

    fn find_in_index_block(&self, d: &DirEntry, id: &Id) -> Result<Option<(u64, u32, u32)>> {
        let mut found = None;
        self.for_index_entries(d, |key, seq, block, pos| match key.cmp(id) {
            std::cmp::Ordering::Less => Ok(true),
            std::cmp::Ordering::Greater => Ok(false),
            std::cmp::Ordering::Equal => {
                let rows = self.blocks.get(block as usize).map_or(0, |h| h.rows);
                if pos >= rows {
                    return Err(corrupt(
                        &self.path,
                        d.offset,
                        format!(
                            "id index entry for {id} points to row {pos} of block {block}; the file has {} blocks and that block {rows} rows",
                            self.blocks.len()
                        ),
                    ));
                }
                found = Some((seq, block, pos));
                Ok(false)
            }
        })?;
        Ok(found)
    }

    /// Reads data block `i`, checks its CRC32C and decompresses it.
    pub(crate) fn read_block(&self, i: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_block_into(i, &mut out)?;
        Ok(out)
    }

    /// Like `read_block`, reusing `out`'s allocation: a scan that reads block after block
    /// allocates (and zero-fills) its buffer once instead of once per block.
    pub(crate) fn read_block_into(&self, i: usize, out: &mut Vec<u8>) -> Result<()> {
        let h = self
            .blocks
            .get(i)
            .ok_or_else(|| corrupt(&self.path, 0, format!("no block {i}")))?;
        let mut stored = std::mem::take(out);
        stored.resize(h.stored_len as usize, 0);
        pread(&self.file, &mut stored, h.offset)
            .map_err(|e| SegmentError::io(&self.path, "read", e))?;
        self.blocks_read.fetch_add(1, Ordering::Relaxed);
        let got = crc32c::crc32c(&stored);
        if got != h.crc {
            return Err(corrupt(
                &self.path,
                h.offset,
                format!(
                    "block {i} checksum mismatch: block index says {:#010x}, computed {got:#010x}",
                    h.crc
                ),
            ));
        }
        *out = decompress(h.codec, stored, h.raw_len as usize)
            .map_err(|reason| corrupt(&self.path, h.offset, format!("block {i}: {reason}")))?;
        Ok(())
    }

    /// All rows in sequence order, block by block; each block is CRC-checked when read.
    /// After the first error the iterator ends.
    pub fn iter(&self) -> SegmentIter<'_> {
        SegmentIter::new(self, None)
    }

    /// Rows whose event timestamp lies in `[from, to)` (`to = i64::MAX`: no upper bound),
    /// in sequence order. Blocks whose
    /// timestamp range misses the interval are not read. Rows without a timestamp (plain
    /// records, tombstones) are never returned.
    pub fn scan_time_range(&self, from: i64, to: i64) -> SegmentIter<'_> {
        SegmentIter::new(self, Some((from, to)))
    }
}
