//! Rewriting a segment's rows with every checksum recomputed — for tamper-evidence tests.
//!
//! The ledger must catch a row altered by someone who also fixed the block CRCs; this module
//! produces exactly such a file. It is not used by quiver itself.

use crate::{write_segment, Result, Segment, SegmentMeta, SegmentOptions};
use std::path::Path;

/// Reads every row of the segment at `path`, lets `edit` change each row in place (return
/// `false` to drop it), and writes the result back to `path` as a valid segment whose
/// checksums, id index and bloom filter all agree with the edited rows.
///
/// Errors like [`write_segment`]'s (an edit that breaks sequence order or the entry
/// encoding is refused) and [`Segment::open`]'s.
pub fn rewrite_rows(
    path: &Path,
    opts: &SegmentOptions,
    mut edit: impl FnMut(&mut Vec<u8>) -> bool,
) -> Result<SegmentMeta> {
    let rows: Vec<Vec<u8>> = {
        let seg = Segment::open(path)?;
        let mut rows = Vec::new();
        for r in seg.iter() {
            let mut r = r?;
            if edit(&mut r) {
                rows.push(r);
            }
        }
        rows
    };
    let tmp = path.with_extension("tamper-tmp");
    let meta = write_segment(&tmp, rows.iter(), opts)?;
    std::fs::rename(&tmp, path).map_err(|e| crate::SegmentError::io(path, "rename", e))?;
    Ok(meta)
}
