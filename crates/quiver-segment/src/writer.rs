//! Building a segment file from rows in sequence order.

use crate::{
    bloom::{hash_key, Bloom},
    compress::BlockCompressor,
    format::{
        encode_header, put_key_ref, put_u32, put_u64, BlockHandle, DirEntry, Footer, BLOCK_HAS_TS,
        FOOTER_HAS_TS, FOOTER_NO_TOMBSTONES, HEADER_LEN, ID_INDEX_BLOCK_BYTES, MAX_BLOCK_RAW,
    },
    keys::KeyCollector,
    rowkey::parse_head,
    Result, SegmentError, SegmentMeta, SegmentOptions,
};
use quiver_core::{Id, SeqNo};
use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Write},
    path::Path,
};

/// While a segment is written, each whole chunk of this many bytes is handed to write-back as
/// soon as it is in the page cache (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, as RocksDB's
/// `bytes_per_sync` does), so the device writes the segment while it is built. Left to the final
/// fsync, a 64 MiB flush put its whole segment in the device's queue at once, and every WAL
/// group write of a syncing preset waited behind it: 14–29 ms stalls, ~30 % of a `balanced`
/// run (`BENCHMARKS.md` § Segment write-behind). The writer does not wait for the chunks: doing
/// so (at most two in flight) slowed flushes enough to let memtables pile up, doubling peak RSS.
pub const WRITE_BEHIND_BYTES: u64 = 1 << 20;

struct Out<'p> {
    w: BufWriter<File>,
    path: &'p Path,
    pos: u64,
    /// Bytes from the start whose write-back was started (whole [`WRITE_BEHIND_BYTES`] chunks).
    behind: u64,
}

impl Out<'_> {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w
            .write_all(b)
            .map_err(|e| SegmentError::io(self.path, "write", e))?;
        self.pos += b.len() as u64;
        if self.pos >= self.behind + WRITE_BEHIND_BYTES {
            self.write_behind()?;
        }
        Ok(())
    }

    /// Starts write-back of the whole chunks written since the last call.
    fn write_behind(&mut self) -> Result<()> {
        self.w
            .flush()
            .map_err(|e| SegmentError::io(self.path, "write", e))?;
        let upto = self.pos / WRITE_BEHIND_BYTES * WRITE_BEHIND_BYTES;
        // A hint: an error here resurfaces in the final fsync, which decides.
        let _ = start_writeback(self.w.get_ref(), self.behind, upto - self.behind);
        self.behind = upto;
        Ok(())
    }
}

/// Starts write-back of the dirty pages of `[off, off + len)` of `file` without waiting
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`). A no-op off Linux.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, off: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (i64::try_from(off), i64::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    // SAFETY: `sync_file_range` takes a file descriptor and plain integers and touches no
    // memory of ours; the descriptor is owned by `file`, open for this whole call.
    #[allow(unsafe_code)]
    let r =
        unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) -> std::io::Result<()> {
    Ok(())
}

struct BlockBuilder {
    raw: Vec<u8>,
    rows: u32,
    min_seq: SeqNo,
    max_seq: SeqNo,
    ts: Option<(i64, i64)>,
}

impl BlockBuilder {
    fn new(cap: usize) -> Self {
        BlockBuilder {
            raw: Vec::with_capacity(cap),
            rows: 0,
            min_seq: 0,
            max_seq: 0,
            ts: None,
        }
    }
}

/// Writes a segment file at `path` (created or truncated) from encoded entries in strictly
/// increasing sequence order, then fsyncs the file. The directory is not fsynced: the
/// caller does that before publishing the file (manifest swap).
///
/// Errors: [`SegmentError::Empty`] for no rows, [`SegmentError::OutOfOrder`],
/// [`SegmentError::InvalidRow`], [`SegmentError::RowTooLarge`], [`SegmentError::Io`].
/// On error the partial file is removed (best effort).
pub fn write_segment(
    path: &Path,
    rows: impl Iterator<Item = impl AsRef<[u8]>>,
    opts: &SegmentOptions,
) -> Result<SegmentMeta> {
    opts.validate()?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| SegmentError::io(path, "create", e))?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        path,
        pos: 0,
        behind: 0,
    };
    match write_all(&mut out, rows, opts) {
        Ok(meta) => Ok(meta),
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

fn write_all(
    out: &mut Out<'_>,
    rows: impl Iterator<Item = impl AsRef<[u8]>>,
    opts: &SegmentOptions,
) -> Result<SegmentMeta> {
    out.write(&encode_header())?;
    let mut blocks: Vec<BlockHandle> = Vec::new();
    let mut keys = KeyCollector::default();
    let mut cur = BlockBuilder::new(opts.block_bytes + 1024);
    let mut z = BlockCompressor::new(opts.compression);
    let mut last_seq: Option<SeqNo> = None;
    let mut seg_ts: Option<(i64, i64)> = None;
    let mut nrows = 0u64;
    let mut tombstones = false;
    for (index, row) in rows.enumerate() {
        let body = row.as_ref();
        let head = parse_head(body).map_err(|source| SegmentError::InvalidRow {
            index: index as u64,
            source,
        })?;
        if let Some(last) = last_seq {
            if head.seq <= last {
                return Err(SegmentError::OutOfOrder {
                    last,
                    got: head.seq,
                });
            }
        }
        last_seq = Some(head.seq);
        tombstones |= quiver_core::codec::is_tombstone(body);
        let need = 4 + body.len();
        if need > MAX_BLOCK_RAW || u32::try_from(body.len()).is_err() {
            return Err(SegmentError::RowTooLarge {
                size: body.len(),
                max: MAX_BLOCK_RAW - 4,
            });
        }
        if cur.rows > 0 && cur.raw.len() + need > opts.block_bytes {
            finish_block(out, &mut cur, &mut blocks, &mut z)?;
        }
        if cur.rows == 0 {
            cur.min_seq = head.seq;
        }
        cur.max_seq = head.seq;
        keys.push(head.id, head.seq, blocks.len() as u32, cur.rows);
        cur.rows += 1;
        put_u32(&mut cur.raw, body.len() as u32);
        cur.raw.extend_from_slice(body);
        if let Some(t) = head.ts {
            cur.ts = Some(cur.ts.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
            seg_ts = Some(seg_ts.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        }
        nrows += 1;
    }
    if nrows == 0 {
        return Err(SegmentError::Empty {
            path: out.path.to_path_buf(),
        });
    }
    finish_block(out, &mut cur, &mut blocks, &mut z)?;

    // Id index: newest version of each id, in Id order.
    keys.finish();
    let id_index_offset = out.pos;
    let mut dir = Vec::new();
    let mut buf = Vec::with_capacity(ID_INDEX_BLOCK_BYTES + 1100);
    let mut first: Option<Id> = None;
    let mut count = 0u32;
    let total = keys.len();
    for (i, (id, seq, block, pos)) in keys.iter().enumerate() {
        if first.is_none() {
            first = Some(id.to_id());
        }
        put_key_ref(&mut buf, id);
        put_u64(&mut buf, seq);
        put_u32(&mut buf, block);
        put_u32(&mut buf, pos);
        count += 1;
        if buf.len() >= ID_INDEX_BLOCK_BYTES || i + 1 == total {
            if let Some(f) = first.take() {
                let e = DirEntry {
                    offset: out.pos,
                    len: buf.len() as u32,
                    crc: crc32c::crc32c(&buf),
                    count,
                    first: f,
                };
                out.write(&buf)?;
                dir.push(e);
            }
            buf.clear();
            count = 0;
        }
    }
    let bloom = Bloom::build_from(
        total,
        keys.iter().map(|(id, ..)| hash_key(id)),
        opts.bloom_bits_per_key,
    )
    .encode();
    let distinct_ids = keys.len() as u64;
    drop(keys);

    let mut dir_bytes = Vec::new();
    for e in &dir {
        e.encode(&mut dir_bytes);
    }
    let id_dir_offset = out.pos;
    out.write(&dir_bytes)?;
    let mut bi = Vec::with_capacity(blocks.len() * crate::format::BLOCK_HANDLE_LEN);
    for b in &blocks {
        b.encode(&mut bi);
    }
    let block_index_offset = out.pos;
    out.write(&bi)?;
    let bloom_offset = out.pos;
    out.write(&bloom)?;
    let first_block = blocks.first();
    let last_block = blocks.last();
    let footer = Footer {
        id_index_offset,
        id_dir_offset,
        id_dir_len: dir_bytes.len() as u64,
        block_index_offset,
        block_index_len: bi.len() as u64,
        bloom_offset,
        bloom_len: bloom.len() as u64,
        id_dir_crc: crc32c::crc32c(&dir_bytes),
        block_index_crc: crc32c::crc32c(&bi),
        bloom_crc: crc32c::crc32c(&bloom),
        flags: if seg_ts.is_some() { FOOTER_HAS_TS } else { 0 }
            | if tombstones { 0 } else { FOOTER_NO_TOMBSTONES },
        rows: nrows,
        distinct_ids,
        min_seq: first_block.map_or(0, |b| b.min_seq),
        max_seq: last_block.map_or(0, |b| b.max_seq),
        min_ts: seg_ts.map_or(0, |t| t.0),
        max_ts: seg_ts.map_or(0, |t| t.1),
    };
    out.write(&footer.encode())?;
    out.w
        .flush()
        .map_err(|e| SegmentError::io(out.path, "write", e))?;
    out.w
        .get_ref()
        .sync_all()
        .map_err(|e| SegmentError::io(out.path, "fsync", e))?;
    debug_assert_eq!(HEADER_LEN as u64, blocks.first().map_or(0, |b| b.offset));
    Ok(SegmentMeta {
        rows: nrows,
        min_seq: footer.min_seq,
        max_seq: footer.max_seq,
        bytes: out.pos,
        min_ts: seg_ts.map(|t| t.0),
        max_ts: seg_ts.map(|t| t.1),
        may_hold_tombstones: tombstones,
    })
}

fn finish_block(
    out: &mut Out<'_>,
    cur: &mut BlockBuilder,
    blocks: &mut Vec<BlockHandle>,
    z: &mut BlockCompressor,
) -> Result<()> {
    if cur.rows == 0 {
        return Ok(());
    }
    let (codec, stored) = z.compress(&cur.raw);
    let h = BlockHandle {
        offset: out.pos,
        stored_len: stored.len() as u32,
        raw_len: cur.raw.len() as u32,
        crc: crc32c::crc32c(&stored),
        codec,
        flags: if cur.ts.is_some() { BLOCK_HAS_TS } else { 0 },
        rows: cur.rows,
        min_seq: cur.min_seq,
        max_seq: cur.max_seq,
        min_ts: cur.ts.map_or(0, |t| t.0),
        max_ts: cur.ts.map_or(0, |t| t.1),
    };
    out.write(&stored)?;
    blocks.push(h);
    cur.raw.clear();
    cur.rows = 0;
    cur.ts = None;
    Ok(())
}
