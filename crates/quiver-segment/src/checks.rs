//! Structural checks of the metadata regions read at open.

use crate::{
    format::{
        BlockHandle, Cur, DirEntry, Footer, BLOCK_HANDLE_LEN, CODEC_NONE, CODEC_ZSTD, HEADER_LEN,
        MAX_BLOCK_RAW,
    },
    reader::corrupt,
    Result,
};
use std::path::Path;

/// Parses the block index and checks it against the footer: blocks contiguous from the
/// header to the id index, known codecs, sequence ranges increasing, row counts summing up.
pub(crate) fn parse_block_index(path: &Path, b: &[u8], f: &Footer) -> Result<Vec<BlockHandle>> {
    if !b.len().is_multiple_of(BLOCK_HANDLE_LEN) || b.is_empty() {
        return Err(corrupt(
            path,
            f.block_index_offset,
            format!(
                "block index is {} bytes, not a positive multiple of {BLOCK_HANDLE_LEN}",
                b.len()
            ),
        ));
    }
    let mut c = Cur::new(b);
    let mut out: Vec<BlockHandle> = Vec::with_capacity(b.len() / BLOCK_HANDLE_LEN);
    let mut rows = 0u64;
    let mut next_off = HEADER_LEN as u64;
    while !c.is_empty() {
        let at = f.block_index_offset + c.pos as u64;
        let i = out.len();
        let (h, reserved) = BlockHandle::decode(&mut c)
            .map_err(|p| corrupt(path, f.block_index_offset + p as u64, "short block handle"))?;
        let why = if reserved != 0 {
            Some("reserved bytes are not zero".to_string())
        } else if h.offset != next_off {
            Some(format!(
                "starts at {}, the previous block ends at {next_off}",
                h.offset
            ))
        } else if h.codec > CODEC_ZSTD {
            Some(format!("unknown codec {}", h.codec))
        } else if h.codec == CODEC_NONE && h.stored_len != h.raw_len {
            Some("uncompressed block with stored length != raw length".to_string())
        } else if h.raw_len as usize > MAX_BLOCK_RAW || h.rows == 0 || h.min_seq > h.max_seq {
            Some(format!(
                "raw length {}, {} rows, seqs {}..={}",
                h.raw_len, h.rows, h.min_seq, h.max_seq
            ))
        } else if out.last().is_some_and(|p| p.max_seq >= h.min_seq) {
            Some("sequence numbers overlap the previous block".to_string())
        } else if h.flags > 1 || (h.has_ts() && h.min_ts > h.max_ts) {
            Some(format!(
                "bad flags {} or timestamp range {}..={}",
                h.flags, h.min_ts, h.max_ts
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(corrupt(path, at, format!("block handle {i}: {why}")));
        }
        rows += u64::from(h.rows);
        next_off = h.end();
        out.push(h);
    }
    let (first, last) = (out[0], out[out.len() - 1]);
    if next_off != f.id_index_offset
        || rows != f.rows
        || first.min_seq != f.min_seq
        || last.max_seq != f.max_seq
    {
        return Err(corrupt(
            path,
            f.block_index_offset,
            format!(
                "block index disagrees with the footer: blocks end at {next_off} (id index at {}), {rows} rows (footer {}), seqs {}..={} (footer {}..={})",
                f.id_index_offset, f.rows, first.min_seq, last.max_seq, f.min_seq, f.max_seq
            ),
        ));
    }
    Ok(out)
}

/// Parses the id directory: index blocks contiguous, first keys strictly increasing, id
/// counts summing to the footer's.
pub(crate) fn parse_dir(path: &Path, b: &[u8], f: &Footer) -> Result<Vec<DirEntry>> {
    let mut c = Cur::new(b);
    let mut out: Vec<DirEntry> = Vec::new();
    let mut next_off = f.id_index_offset;
    let mut ids = 0u64;
    while !c.is_empty() {
        let at = f.id_dir_offset + c.pos as u64;
        let d = DirEntry::decode(&mut c).map_err(|p| {
            corrupt(
                path,
                f.id_dir_offset + p as u64,
                "malformed id directory entry",
            )
        })?;
        if d.offset != next_off || d.count == 0 || out.last().is_some_and(|p| p.first >= d.first) {
            return Err(corrupt(
                path,
                at,
                format!(
                    "id directory entry {}: offset {} (expected {next_off}), {} ids, keys out of order?",
                    out.len(), d.offset, d.count
                ),
            ));
        }
        next_off = d.offset + u64::from(d.len);
        ids += u64::from(d.count);
        out.push(d);
    }
    if next_off != f.id_dir_offset || ids != f.distinct_ids {
        return Err(corrupt(
            path,
            f.id_dir_offset,
            format!(
                "id directory covers up to {next_off} and {ids} ids; footer says {} and {}",
                f.id_dir_offset, f.distinct_ids
            ),
        ));
    }
    Ok(out)
}
