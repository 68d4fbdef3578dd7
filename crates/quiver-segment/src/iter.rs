//! Sequential reading of rows: the rows of one block, and iterators over a segment.

use crate::{rowkey::parse_head, Result, Segment, SegmentError};
use quiver_core::SeqNo;

fn corrupt(seg: &Segment, block: usize, reason: String) -> SegmentError {
    let offset = seg.blocks.get(block).map_or(0, |h| h.offset);
    SegmentError::Corruption {
        file: seg.path().display().to_string(),
        offset,
        reason: format!("block {block}: {reason}"),
    }
}

/// Takes the row `[u32 LE len][body]` at `*pos` of a decompressed block.
fn take_row<'b>(raw: &'b [u8], pos: &mut usize) -> std::result::Result<&'b [u8], String> {
    let at = *pos;
    let len = raw
        .get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format!("row length at byte {at} runs past the end of the block"))?;
    let start = at + 4;
    let body = start
        .checked_add(len as usize)
        .and_then(|end| raw.get(start..end))
        .ok_or_else(|| format!("row of {len} bytes at byte {at} runs past the end of the block"))?;
    *pos = start + len as usize;
    Ok(body)
}

/// The rows of one decompressed block, checked against its block handle: exactly `rows`
/// rows filling the block, sequence numbers strictly increasing within `min_seq..=max_seq`.
pub(crate) struct BlockRows<'a, 'b> {
    seg: &'a Segment,
    block: usize,
    raw: &'b [u8],
    pos: usize,
    left: u32,
    prev: Option<SeqNo>,
}

impl<'a, 'b> BlockRows<'a, 'b> {
    pub(crate) fn new(seg: &'a Segment, block: usize, raw: &'b [u8]) -> Self {
        let left = seg.blocks.get(block).map_or(0, |h| h.rows);
        BlockRows {
            seg,
            block,
            raw,
            pos: 0,
            left,
            prev: None,
        }
    }

    /// The next row, or `None` once the block's rows are consumed.
    pub(crate) fn next_row(&mut self) -> Result<Option<&'b [u8]>> {
        if self.left == 0 {
            if self.pos != self.raw.len() {
                let extra = self.raw.len() - self.pos;
                return Err(corrupt(
                    self.seg,
                    self.block,
                    format!("{extra} bytes after the last row"),
                ));
            }
            return Ok(None);
        }
        let body =
            take_row(self.raw, &mut self.pos).map_err(|r| corrupt(self.seg, self.block, r))?;
        let seq = crate::codec_seq(body).ok_or_else(|| {
            corrupt(
                self.seg,
                self.block,
                "row shorter than a sequence number".into(),
            )
        })?;
        let Some(h) = self.seg.blocks.get(self.block) else {
            return Err(corrupt(self.seg, self.block, "no such block".into()));
        };
        let (lo, hi) = (h.min_seq, h.max_seq);
        if seq < lo || seq > hi || self.prev.is_some_and(|p| p >= seq) {
            return Err(corrupt(
                self.seg,
                self.block,
                format!("row seq {seq} out of order or outside the block's range {lo}..={hi}"),
            ));
        }
        // Time-range scans skip blocks by this summary: a row outside it would be hidden
        // from them, so a full read (`quiver verify`, a full scan) refuses it.
        let ts = crate::rowkey::peek_ts(body)
            .map_err(|e| corrupt(self.seg, self.block, format!("row does not decode: {e}")))?;
        if let Some(t) = ts {
            if !h.has_ts() || t < h.min_ts || t > h.max_ts {
                let summary = if h.has_ts() {
                    format!("{}..={}", h.min_ts, h.max_ts)
                } else {
                    "none".into()
                };
                return Err(corrupt(
                    self.seg,
                    self.block,
                    format!("row seq {seq} has timestamp {t} outside the block's timestamp summary ({summary})"),
                ));
            }
        }
        self.prev = Some(seq);
        self.left -= 1;
        Ok(Some(body))
    }
}

/// Iterator over a segment's rows in sequence order, optionally only the events whose
/// timestamp lies in `[from, to)` (skipping blocks by their timestamp range).
///
/// Yields `Err` for a block that fails its checksum or does not parse, then ends.
pub struct SegmentIter<'a> {
    seg: &'a Segment,
    filter: Option<(i64, i64)>,
    next_block: usize,
    cur_block: usize,
    raw: Vec<u8>,
    pos: usize,
    left: u32,
    prev: Option<SeqNo>,
    done: bool,
}

impl<'a> SegmentIter<'a> {
    pub(crate) fn new(seg: &'a Segment, filter: Option<(i64, i64)>) -> Self {
        SegmentIter {
            seg,
            filter,
            next_block: 0,
            cur_block: 0,
            raw: Vec::new(),
            pos: 0,
            left: 0,
            prev: None,
            done: false,
        }
    }

    fn block_wanted(&self, i: usize) -> bool {
        match (self.filter, self.seg.blocks.get(i)) {
            (None, _) => true,
            (Some((from, to)), Some(h)) => {
                h.has_ts() && h.max_ts >= from && (h.min_ts < to || to == i64::MAX)
            }
            (Some(_), None) => false,
        }
    }

    /// The next row as a slice of the current block, without copying it (a lending
    /// iterator: the slice lives until the next call). Errors end the iteration like `next`.
    pub fn next_ref(&mut self) -> Option<Result<&[u8]>> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some((start, end))) => Some(Ok(&self.raw[start..end])),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Advances to the next wanted row; returns its byte range in `self.raw`.
    fn step(&mut self) -> Result<Option<(usize, usize)>> {
        loop {
            if self.left == 0 {
                if self.pos != self.raw.len() {
                    let extra = self.raw.len() - self.pos;
                    return Err(corrupt(
                        self.seg,
                        self.cur_block,
                        format!("{extra} bytes after the last row"),
                    ));
                }
                if let Some((from, to)) = self.filter {
                    if from >= to && to != i64::MAX {
                        return Ok(None);
                    }
                }
                while self.next_block < self.seg.blocks.len() && !self.block_wanted(self.next_block)
                {
                    self.next_block += 1;
                }
                let i = self.next_block;
                let Some(h) = self.seg.blocks.get(i) else {
                    return Ok(None);
                };
                self.seg.read_block_into(i, &mut self.raw)?;
                self.pos = 0;
                self.left = h.rows;
                self.prev = None;
                self.cur_block = i;
                self.next_block += 1;
                continue;
            }
            let mut rows = BlockRows {
                seg: self.seg,
                block: self.cur_block,
                raw: &self.raw,
                pos: self.pos,
                left: self.left,
                prev: self.prev,
            };
            let row = rows.next_row()?;
            self.pos = rows.pos;
            self.left = rows.left;
            self.prev = rows.prev;
            let Some(body) = row else { continue };
            if let Some((from, to)) = self.filter {
                let head = parse_head(body).map_err(|e| {
                    corrupt(
                        self.seg,
                        self.cur_block,
                        format!("row does not decode: {e}"),
                    )
                })?;
                if !head
                    .ts
                    .is_some_and(|t| quiver_core::in_time_range(t, from, to))
                {
                    continue;
                }
            }
            // `body` borrows `self.raw`; hand back its range so callers can re-borrow.
            let start = body.as_ptr() as usize - self.raw.as_ptr() as usize;
            return Ok(Some((start, start + body.len())));
        }
    }
}

impl Iterator for SegmentIter<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(<[u8]>::to_vec))
    }
}

impl std::iter::FusedIterator for SegmentIter<'_> {}
