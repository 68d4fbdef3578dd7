//! Reading the log without opening it: [`read_log`], for readers that must not write (a
//! read-only open of a data directory, possibly while a writer has it open).

use crate::error::{Result, WalError};
use crate::scan::{is_torn_creation, scan_file, ScanOutcome};
use crate::storage::Storage;
use crate::wal::ReplayVisitor;
use quiver_core::SeqNo;

/// What [`read_log`] found: the log as it stood when its files were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogView {
    /// WAL files read (a final file whose creation was cut short is not counted).
    pub files: usize,
    /// Bytes of data in them (headers and intact frames, not preallocated zeros or a torn
    /// tail), as [`WalStats::bytes`](crate::WalStats::bytes) counts them.
    pub bytes: u64,
    /// Seq of the last intact record, or where the file headers say the log ends (0: empty).
    pub last_seq: SeqNo,
    /// The final file ends in a torn write, which was skipped (and left in place).
    pub torn_tail: bool,
}

/// Calls `f` for every intact record with seq >= `from`, in seq order, reading the log in
/// `storage` the way [`Wal::open`](crate::Wal::open) recovers it (same header, group, frame,
/// chain and torn-write rules, `docs/format/wal.md`) but changing nothing: a torn final group
/// is skipped rather than cut off, a final file whose creation was cut short is ignored rather
/// than removed, and no file is opened for writing. Nothing is held open afterwards.
///
/// Meant for a reader beside a live writer: the files are listed once and each is read
/// whole, so records committed meanwhile may or may not be seen (a group half-written at
/// the end of the final file reads as a torn tail). A file the writer removes after the
/// listing (it trims the log after every flush) fails with [`WalError::Io`] whose source is
/// `NotFound`; a record appended while the final file was read can, rarely, look like
/// [`WalError::Corruption`] of that file. Callers that run beside a writer retry both.
pub fn read_log(storage: &dyn Storage, from: SeqNo, f: &mut ReplayVisitor<'_>) -> Result<LogView> {
    let mut names = crate::scan::log_files(storage)?;
    // Files at the end whose creation was cut short (or is under way) hold no records.
    while let Some((_, name)) = names.last() {
        if !is_torn_creation(&storage.read_all(name)?) {
            break;
        }
        names.pop();
    }
    let count = names.len();
    let mut view = LogView::default();
    // (name, last seq of the log through it) of the previous file.
    let mut prev: Option<(String, SeqNo)> = None;
    for (i, (name_seq, name)) in names.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let data = storage.read_all(&name)?;
        let mut visit = |seq: SeqNo, body: &[u8]| {
            if seq >= from {
                f(seq, body).map_err(|reason| WalError::Replay { seq, reason })?;
            }
            Ok(())
        };
        let s = match scan_file(&name, name_seq, &data, is_last, &mut visit)? {
            ScanOutcome::File(s) => s,
            // Only the final file can be one (checked above), and it holds no records.
            ScanOutcome::TornCreation => continue,
        };
        if let Some((prev_name, end)) = &prev {
            if s.header.prev_seq != *end || s.header.first_seq <= *end {
                return Err(WalError::corrupt(
                    &name,
                    24,
                    format!(
                        "header says the previous file ended at seq {} (first seq {}), but \
                         {prev_name} ends at seq {end}: a WAL file is missing or out of place",
                        s.header.prev_seq, s.header.first_seq
                    ),
                ));
            }
        }
        let end = s.last_seq.unwrap_or(s.header.prev_seq);
        view.files += 1;
        view.bytes += s.end;
        view.last_seq = s.last_seq.unwrap_or(s.header.first_seq.saturating_sub(1));
        view.torn_tail = s.torn;
        prev = Some((name, end));
    }
    Ok(view)
}
