//! Recovery scan of one WAL file: header check, group and frame walk, end-of-data and
//! torn-write rules.
//!
//! Rules (also in `docs/format/wal.md`):
//! - a group is *bad* when its header is cut short or not intact (magic, checksum, reserved
//!   bytes), or when one of its frames is: cut short, a length of 1..=7, running past the
//!   group or the file, or a CRC32C that does not match its body;
//! - eight zero bytes where a group header belongs, followed only by zeros, end the data
//!   (preallocated files are zero-filled, direct writes pad to a 4 KiB block with zeros);
//! - what checks out but does not fit — a seq other than the next, a group whose frames do not
//!   fill it — is always corruption;
//! - in the final file, a bad group is a *torn write* (the file is cut at the group's start:
//!   a group is kept whole or not at all) when nothing after it says otherwise: no later
//!   intact group header records the file as durable past the damage, no record of a later
//!   group follows a damaged group whose intact header says the log synced, and either no intact
//!   frame follows the damage or the damage overlaps a 512-byte sector that reads as zeros to
//!   its end (a write that never reached the disk reads as zeros; bit rot does not zero a
//!   sector). Otherwise, and in every other file, it is
//!   [`WalError::Corruption`] naming the file and the offset of the damage.

use crate::error::{Result, WalError};
use crate::format::{
    arr, GroupHeader, Header, FRAME_HEADER_LEN, GROUP_HEADER_LEN, HEADER_LEN, MIN_BODY,
};
use quiver_core::SeqNo;

/// What a scan found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// The checked header.
    pub header: Header,
    /// Seq of the last intact record, if any.
    pub last_seq: Option<SeqNo>,
    /// Number of intact records.
    pub records: u64,
    /// Offset just past the last intact group (where the next append goes).
    pub end: u64,
    /// Whether bytes after `end` must be cut away (a torn final write).
    pub torn: bool,
}

/// Outcome of scanning a file.
#[derive(Debug)]
pub(crate) enum ScanOutcome {
    /// A valid WAL file.
    File(Scanned),
    /// The final file was being created when the process stopped: nothing but zeros (or a short
    /// prefix of a header); it holds no records and may be removed.
    TornCreation,
}

/// A bad group, where a walk stopped before the end of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The damaged group's header, when that is intact.
    pub header: Option<GroupHeader>,
    /// Offset of the bad group header or frame.
    pub at: usize,
    /// Offset of the group it lies in: a torn write is cut here.
    pub group: usize,
    /// The seq the group's first frame carries (or would carry).
    pub group_first: SeqNo,
    /// Where later groups may start: the group's end when its header is intact.
    pub after: usize,
    /// What is wrong.
    pub reason: String,
}

/// Where a walk over a file's groups ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    /// Offset just past the last intact group.
    pub end: usize,
    /// Number of frames in the intact groups.
    pub records: u64,
    /// The bad group the walk stopped at, if it did not reach the end of data.
    pub damage: Option<Damage>,
}

/// Walks the groups of a WAL file's contents `data`, calling `visit(offset, body)` for every
/// frame of every intact group, in order, once the whole group has checked out (so a torn
/// group's frames are never visited). The file header is checked first (its errors are
/// returned as they are). With `check_seqs`, each group and frame must carry the next seq
/// from the header's first (anything else is [`WalError::Corruption`]); without, seqs are not
/// checked (`quiver verify` checks them itself, to name the first bad one). A file of format
/// [`VERSION_1`](crate::format::VERSION_1) is walked frame by frame, each frame a group of its
/// own. `name` is for errors.
pub fn walk_groups(
    name: &str,
    data: &[u8],
    check_seqs: bool,
    visit: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
) -> Result<Walked> {
    let header = Header::decode(name, data)?;
    let first_seq = check_seqs.then_some(header.first_seq);
    if header.version == crate::format::VERSION_1 {
        return walk_v1(name, data, first_seq, visit);
    }
    let all_zero = |s: &[u8]| s.iter().all(|&b| b == 0);
    let mut off = HEADER_LEN;
    let mut expected = first_seq;
    let mut records = 0u64;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let stop = |header: Option<GroupHeader>,
                at: usize,
                group: usize,
                first: SeqNo,
                after: usize,
                reason: String| Walked {
        end: group,
        records: 0,
        damage: Some(Damage {
            header,
            at,
            group,
            group_first: first,
            after,
            reason,
        }),
    };
    let walked = loop {
        let rest = &data[off.min(data.len())..];
        if rest.is_empty() {
            break Walked {
                end: off,
                records: 0,
                damage: None,
            };
        }
        let next = expected.unwrap_or(0);
        if rest.len() < FRAME_HEADER_LEN || rest[..FRAME_HEADER_LEN] == [0; FRAME_HEADER_LEN] {
            if all_zero(rest) {
                break Walked {
                    end: off,
                    records: 0,
                    damage: None,
                };
            }
            let reason = if rest.len() < FRAME_HEADER_LEN {
                format!("group header cut short ({} bytes left)", rest.len())
            } else {
                "non-zero bytes after the end-of-data marker".into()
            };
            break stop(None, off, off, next, off + 1, reason);
        }
        let Some(g) = GroupHeader::decode(rest) else {
            let reason = if rest.len() < GROUP_HEADER_LEN {
                format!("group header cut short ({} bytes left)", rest.len())
            } else {
                "damaged group header".into()
            };
            break stop(None, off, off, next, off + 1, reason);
        };
        if let Some(e) = expected {
            if g.first_seq != e {
                return Err(WalError::corrupt(
                    name,
                    off as u64 + 8,
                    format!("group starts at seq {}, expected {e}", g.first_seq),
                ));
            }
        }
        if g.durable > off as u64 {
            return Err(WalError::corrupt(
                name,
                off as u64 + 24,
                format!(
                    "group says the file was durable through byte {}, past its own start",
                    g.durable
                ),
            ));
        }
        let first = g.first_seq;
        let body_at = off + GROUP_HEADER_LEN;
        // The group's end, or past the file's when it claims more bytes than are left.
        let group_end = usize::try_from(g.bytes)
            .ok()
            .and_then(|b| body_at.checked_add(b))
            .unwrap_or(usize::MAX);
        // Frames must end by here; later groups (if any) start here.
        let limit = group_end.min(data.len());
        spans.clear();
        let mut p = body_at;
        let mut bad: Option<(usize, String)> = None;
        let what = if limit == group_end { "group" } else { "file" };
        for i in 0..g.frames as u64 {
            let body = match frame_at(&data[..limit], p, what) {
                Ok(body) => body,
                Err(reason) => {
                    bad = Some((p, reason));
                    break;
                }
            };
            let len = body.len();
            let seq = u64::from_le_bytes(arr(&body[..8]));
            if expected.is_some() && seq != first + i {
                return Err(WalError::corrupt(
                    name,
                    p as u64,
                    format!("record has seq {seq}, expected {}", first + i),
                ));
            }
            spans.push((p, len));
            p += FRAME_HEADER_LEN + len;
        }
        if let Some((at, reason)) = bad {
            break stop(Some(g), at, off, first, limit, reason);
        }
        if p != group_end {
            return Err(WalError::corrupt(
                name,
                off as u64 + 16,
                format!(
                    "group of {} frames says it holds {} bytes, but its frames take {}",
                    g.frames,
                    g.bytes,
                    p - body_at
                ),
            ));
        }
        for &(p, len) in &spans {
            visit(p, &data[p + FRAME_HEADER_LEN..p + FRAME_HEADER_LEN + len])?;
        }
        records += g.frames as u64;
        expected = expected.map(|e| e + g.frames as u64);
        off = group_end;
    };
    Ok(Walked { records, ..walked })
}

/// The body of the intact frame at `p` in `data` (which ends where the frame must end: its
/// group's end, `what`, or the file's), or why it is bad.
fn frame_at<'a>(data: &'a [u8], p: usize, what: &str) -> std::result::Result<&'a [u8], String> {
    let left = data.len().saturating_sub(p);
    if left < FRAME_HEADER_LEN {
        return Err(format!("frame header cut short ({left} bytes left)"));
    }
    let len = u32::from_le_bytes(arr(&data[p..p + 4])) as usize;
    let crc = u32::from_le_bytes(arr(&data[p + 4..p + 8]));
    if len < MIN_BODY {
        return Err(format!(
            "frame length {len} is below the minimum {MIN_BODY}"
        ));
    }
    if len > left - FRAME_HEADER_LEN {
        return Err(format!(
            "frame of {len} bytes runs past the end of the {what}"
        ));
    }
    let body = &data[p + FRAME_HEADER_LEN..p + FRAME_HEADER_LEN + len];
    let got = crc32c::crc32c(body);
    if got != crc {
        return Err(format!(
            "checksum mismatch: stored {crc:#010x}, computed {got:#010x}"
        ));
    }
    Ok(body)
}

/// [`walk_groups`] for a file of format version 1: frames back to back, no group headers.
fn walk_v1(
    name: &str,
    data: &[u8],
    first_seq: Option<SeqNo>,
    visit: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
) -> Result<Walked> {
    let mut off = HEADER_LEN;
    let mut expected = first_seq;
    let mut records = 0u64;
    let damage = loop {
        let rest = &data[off..];
        let next = expected.unwrap_or(0);
        if rest.iter().all(|&b| b == 0) {
            break None;
        }
        let bad = |reason: String| Damage {
            header: None,
            at: off,
            group: off,
            group_first: next,
            after: off + 1,
            reason,
        };
        if rest.len() >= FRAME_HEADER_LEN && rest[..FRAME_HEADER_LEN] == [0; FRAME_HEADER_LEN] {
            break Some(bad("non-zero bytes after the end-of-data marker".into()));
        }
        let body = match frame_at(data, off, "file") {
            Ok(body) => body,
            Err(reason) => break Some(bad(reason)),
        };
        let len = body.len();
        if let Some(e) = expected {
            let seq = u64::from_le_bytes(arr(&body[..8]));
            if seq != e {
                return Err(WalError::corrupt(
                    name,
                    off as u64,
                    format!("record has seq {seq}, expected {e}"),
                ));
            }
        }
        visit(off, body)?;
        records += 1;
        expected = expected.map(|e| e + 1);
        off += FRAME_HEADER_LEN + len;
    };
    Ok(Walked {
        end: damage.as_ref().map_or(off, |d| d.group),
        records,
        damage,
    })
}

/// Whether `d`, found in the final file `data`, is a write that never fully reached the disk
/// (`Ok`) rather than damage to data that had (`Err` with the evidence). See the module docs.
pub fn torn_verdict(data: &[u8], d: &Damage) -> std::result::Result<(), String> {
    let mut q = d.after;
    while let Some((at, g)) = find_group_header(data, q, d.group_first) {
        if g.durable > d.at as u64 {
            return Err(format!(
                "yet the group at byte {at} records the file as durable through byte {}",
                g.durable
            ));
        }
        q = at + 1;
    }
    if let Some(g) = d.header.filter(|g| g.syncing) {
        // A syncing log writes a group only once the one before is durable: a record of any
        // later group means the damaged one had reached the disk whole, and been acknowledged.
        if let Some(z) = find_intact_frame(data, d.after, g.first_seq + g.frames as u64) {
            return Err(format!(
                "yet a record of a later group follows at byte {z}, so this group had been \
                 durable (the log syncs each group before it writes the next)"
            ));
        }
    }
    if let Some(z) = find_intact_frame(data, d.at + 1, d.group_first) {
        if !has_zero_sector(data, d.at, z, d.group) {
            return Err(format!("yet an intact record follows at byte {z}"));
        }
    }
    Ok(())
}

/// The size of the unit a device writes whole or not at all (a sector).
const SECTOR: usize = 512;

/// Whether a sector overlapping `from..to` reads as a lost write: zeros from its start — or
/// from `floor`, the damaged group's start, when that lies inside it (the bytes before were on
/// disk already, and a lost sector keeps them) — to its end.
fn has_zero_sector(data: &[u8], from: usize, to: usize, floor: usize) -> bool {
    let mut s = from / SECTOR * SECTOR;
    while s < to {
        let lo = s.max(floor);
        if let Some(sec) = data.get(lo..s + SECTOR) {
            if !sec.is_empty() && sec.iter().all(|&b| b == 0) {
                return true;
            }
        }
        s += SECTOR;
    }
    false
}

/// The first intact group header at or after `start` whose first seq is plausible
/// (`>= first`, and not further on than the bytes left could hold), with its offset.
fn find_group_header(data: &[u8], start: usize, first: SeqNo) -> Option<(usize, GroupHeader)> {
    let n = data.len();
    let mut p = start;
    while p + GROUP_HEADER_LEN <= n {
        let at = p + memchr_magic(&data[p..n - GROUP_HEADER_LEN + 4])?;
        if let Some(g) = GroupHeader::decode(&data[at..]) {
            if g.first_seq >= first && g.first_seq - first < (n - at) as u64 {
                return Some((at, g));
            }
        }
        p = at + 1;
    }
    None
}

/// Offset in `s` of the first occurrence of the group magic.
fn memchr_magic(s: &[u8]) -> Option<usize> {
    s.windows(4).position(|w| w == crate::format::GROUP_MAGIC)
}

/// Scans `data`, the full contents of WAL file `name` whose name encodes `name_seq`.
/// `is_last` enables the torn-write rule. `visit` is called for each intact record.
pub(crate) fn scan_file(
    name: &str,
    name_seq: SeqNo,
    data: &[u8],
    is_last: bool,
    visit: &mut dyn FnMut(SeqNo, &[u8]) -> Result<()>,
) -> Result<ScanOutcome> {
    if is_last && is_torn_creation(data) {
        return Ok(ScanOutcome::TornCreation);
    }
    let header = Header::decode(name, data)?;
    if header.first_seq != name_seq {
        return Err(WalError::corrupt(
            name,
            16,
            format!(
                "header says first seq {} but the file name says {name_seq}",
                header.first_seq
            ),
        ));
    }
    let mut on_frame = |_: usize, body: &[u8]| visit(u64::from_le_bytes(arr(&body[..8])), body);
    let w = walk_groups(name, data, true, &mut on_frame)?;
    let kept = |end: usize, records: u64, torn: bool| {
        ScanOutcome::File(Scanned {
            header,
            last_seq: (records > 0).then(|| header.first_seq + records - 1),
            records,
            end: end as u64,
            torn,
        })
    };
    let Some(d) = w.damage else {
        return Ok(kept(w.end, w.records, false));
    };
    if !is_last {
        return Err(WalError::corrupt(name, d.at as u64, d.reason));
    }
    match torn_verdict(data, &d) {
        Ok(()) => Ok(kept(d.group, w.records, true)),
        Err(why) => Err(WalError::corrupt(
            name,
            d.at as u64,
            format!("{}, {why}", d.reason),
        )),
    }
}

/// True for the contents of a file whose creation was cut short: nothing but zeros (a
/// preallocated file whose header never reached the disk), or fewer bytes than a header that
/// are a prefix of the magic.
/// The log's files in `storage`, as (first seq from the name, name), oldest first; other
/// files are ignored.
pub(crate) fn log_files(storage: &dyn crate::storage::Storage) -> Result<Vec<(SeqNo, String)>> {
    let mut names: Vec<(SeqNo, String)> = storage
        .list()?
        .into_iter()
        .filter_map(|n| Some((crate::format::parse_file_name(&n)?, n)))
        .collect();
    names.sort();
    Ok(names)
}

/// [`is_torn_creation`] of the file at `path`, reading all of it only when its first header's
/// worth of bytes leaves the question open (a preallocated file of zeros can be large).
pub fn file_is_torn_creation(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(HEADER_LEN);
    std::fs::File::open(path)?
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    if head.len() == HEADER_LEN && head.iter().any(|&b| b != 0) {
        return Ok(false);
    }
    Ok(is_torn_creation(&std::fs::read(path)?))
}

/// Whether a file's whole contents `data` are a creation cut short by a crash: zeros only, or
/// fewer bytes than a header that begin the magic (WAL recovery rule 0). Such a file at the
/// end of the log holds no records.
pub fn is_torn_creation(data: &[u8]) -> bool {
    data.iter().all(|&b| b == 0)
        || data.len() < HEADER_LEN && data.iter().zip(crate::format::MAGIC).all(|(a, b)| *a == b)
}

/// Offset of the first intact frame starting at or after `start` whose seq is plausible
/// (`expected <= seq < expected + remaining bytes`), if any.
fn find_intact_frame(data: &[u8], start: usize, expected: SeqNo) -> Option<usize> {
    let n = data.len();
    let mut p = start;
    while p + FRAME_HEADER_LEN + MIN_BODY <= n {
        if data[p..p + 4] == [0; 4] {
            // A candidate has a non-zero length: jump to just before the next non-zero byte.
            let q = data[p..].iter().position(|&b| b != 0)? + p;
            p = (q.saturating_sub(3)).max(p + 1);
            continue;
        }
        let len = u32::from_le_bytes(arr(&data[p..p + 4])) as usize;
        let room = n - p - FRAME_HEADER_LEN;
        if (MIN_BODY..=room).contains(&len) {
            let body = &data[p + FRAME_HEADER_LEN..p + FRAME_HEADER_LEN + len];
            let seq = u64::from_le_bytes(arr(&body[..8]));
            let plausible = seq >= expected && seq - expected < (n - p) as u64;
            if plausible && crc32c::crc32c(body) == u32::from_le_bytes(arr(&data[p + 4..p + 8])) {
                return Some(p);
            }
        }
        p += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::push_group;

    /// A file of `groups` groups of `per` records from seq `first`, each group's `durable` set
    /// as a syncing log sets it (its own offset) or, with `synced = false`, as a log that
    /// never synced past the header. Returns the file and each group's offset.
    fn file(first: SeqNo, groups: u64, per: u64, synced: bool) -> (Vec<u8>, Vec<usize>) {
        let mut d = Header {
            version: crate::format::VERSION,
            first_seq: first,
            prev_seq: 0,
        }
        .encode()
        .to_vec();
        let mut offs = Vec::new();
        for g in 0..groups {
            let bodies: Vec<Vec<u8>> = (0..per)
                .map(|i| {
                    let s = first + g * per + i;
                    let mut body = s.to_le_bytes().to_vec();
                    body.extend(std::iter::repeat_n(
                        (s % 251) as u8 | 1,
                        20 + (s as usize % 7),
                    ));
                    body
                })
                .collect();
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            offs.push(d.len());
            let durable = if synced { d.len() } else { HEADER_LEN } as u64;
            push_group(&mut d, &refs, durable, synced);
        }
        (d, offs)
    }

    fn scan(d: &[u8], last: bool) -> Result<ScanOutcome> {
        scan_file("f", 5, d, last, &mut |_, _| Ok(()))
    }

    /// (last seq, end, torn) of a scan that succeeded.
    fn kept(d: &[u8], last: bool) -> (Option<SeqNo>, u64, bool) {
        match scan(d, last) {
            Ok(ScanOutcome::File(s)) => (s.last_seq, s.end, s.torn),
            o => panic!("{o:?}"),
        }
    }

    fn corruption_at(d: &[u8], last: bool) -> u64 {
        match scan(d, last) {
            Err(WalError::Corruption { offset, .. }) => offset,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn intact_and_zero_padded() {
        let (mut d, _) = file(5, 4, 3, true);
        let end = d.len() as u64;
        d.resize(d.len() + 1000, 0);
        for last in [false, true] {
            assert_eq!(kept(&d, last), (Some(16), end, false));
        }
        let mut seen = Vec::new();
        scan_file("f", 5, &d, true, &mut |s, _| {
            seen.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (5..=16).collect::<Vec<_>>());
    }

    #[test]
    fn flipped_byte_is_corruption_even_in_the_last_file() {
        let (d, offs) = file(5, 4, 3, true);
        // A record of the second group, and one in the middle of the last group.
        for at in [
            offs[1] + GROUP_HEADER_LEN + 12,
            offs[3] + GROUP_HEADER_LEN + 12,
        ] {
            let mut c = d.clone();
            c[at] ^= 0xff;
            for last in [false, true] {
                assert_eq!(corruption_at(&c, last), (at - 12) as u64);
            }
        }
        // A group header, followed by its intact frames.
        let mut c = d.clone();
        c[offs[3] + 9] ^= 0x01;
        assert_eq!(corruption_at(&c, true), offs[3] as u64);
    }

    #[test]
    fn torn_tail_cuts_the_whole_last_group_and_only_in_the_last_file() {
        let (d, offs) = file(5, 4, 3, true);
        for cut in [d.len() - 3, offs[3] + GROUP_HEADER_LEN + 5, offs[3] + 7] {
            assert_eq!(
                kept(&d[..cut], true),
                (Some(13), offs[3] as u64, true),
                "{cut}"
            );
            let at = corruption_at(&d[..cut], false) as usize;
            assert!(at >= offs[3] && at < cut, "{cut}: {at}");
        }
    }

    #[test]
    fn a_flipped_byte_in_the_final_record_is_cut_as_a_torn_write() {
        let (mut d, offs) = file(5, 4, 3, true);
        let n = d.len();
        d[n - 2] ^= 0x40;
        assert_eq!(kept(&d, true), (Some(13), offs[3] as u64, true));
    }

    /// A power cut during one group's write, whose blocks reached the disk out of order: a
    /// hole of zeros inside the last group, intact frames after it.
    #[test]
    fn a_hole_of_zeros_in_the_last_group_is_a_torn_write() {
        let (mut d, offs) = file(5, 3, 60, true);
        let last = offs[2];
        assert!(
            d.len() - last > 4 * SECTOR,
            "the last group spans several sectors"
        );
        let hole = (last / SECTOR + 2) * SECTOR;
        d[hole..hole + SECTOR].fill(0);
        assert_eq!(kept(&d, true), (Some(124), last as u64, true));
        // The same in a file that is not the last: corruption, naming the damaged frame.
        let at = corruption_at(&d, false);
        assert!((at as usize) < hole && at as usize > last, "{at}");
    }

    /// The same hole in a group that a later group records as durable: damage to
    /// acknowledged data, never cut away.
    #[test]
    fn a_hole_before_a_group_that_says_it_was_durable_is_corruption() {
        let (mut d, offs) = file(5, 3, 60, true);
        let hole = (offs[1] / SECTOR + 2) * SECTOR;
        d[hole..hole + SECTOR].fill(0);
        let at = corruption_at(&d, true) as usize;
        assert!(at > offs[1] && at < hole, "{at}");
        match scan(&d, true) {
            Err(WalError::Corruption { reason, .. }) => {
                assert!(
                    reason.contains(&format!("group at byte {}", offs[2])),
                    "{reason}"
                )
            }
            o => panic!("{o:?}"),
        }
    }

    /// Without syncs nothing past the header was promised durable: a hole anywhere is a torn
    /// write, cut with everything after it.
    #[test]
    fn a_hole_in_an_unsynced_log_is_a_torn_write() {
        let (mut d, offs) = file(5, 3, 60, false);
        let hole = (offs[1] / SECTOR + 2) * SECTOR;
        d[hole..hole + SECTOR].fill(0);
        assert_eq!(kept(&d, true), (Some(64), offs[1] as u64, true));
        // But a flipped byte there (no zeros) is still corruption.
        let (mut d, offs) = file(5, 3, 60, false);
        d[offs[1] + GROUP_HEADER_LEN + 20] ^= 1;
        assert_eq!(corruption_at(&d, true), (offs[1] + GROUP_HEADER_LEN) as u64);
    }

    /// A zeroed sector across the boundary of the last two groups: the next group's header is
    /// gone, its later records are not. Under a syncing log those records prove the group
    /// before them was durable (and acknowledged): corruption. Without syncs both groups may
    /// have been lost to the cut: a torn write.
    #[test]
    fn a_hole_across_the_last_group_boundary_is_corruption_only_when_the_log_synced() {
        for synced in [true, false] {
            let (mut d, offs) = file(5, 3, 60, synced);
            let sector = offs[2] / SECTOR * SECTOR;
            assert!(sector > offs[1] && sector + SECTOR < d.len());
            d[sector..sector + SECTOR].fill(0);
            if synced {
                let at = corruption_at(&d, true) as usize;
                assert!(at > offs[1] && at < offs[2], "{at}");
                match scan(&d, true) {
                    Err(WalError::Corruption { reason, .. }) => {
                        assert!(reason.contains("later group"), "{reason}")
                    }
                    o => panic!("{o:?}"),
                }
            } else {
                assert_eq!(kept(&d, true), (Some(64), offs[1] as u64, true));
            }
        }
    }

    #[test]
    fn zero_length_hole_followed_by_data_is_corruption() {
        let (mut d, offs) = file(5, 4, 3, true);
        d[offs[2]..offs[2] + 8].fill(0);
        assert_eq!(corruption_at(&d, true), offs[2] as u64);
    }

    #[test]
    fn seqs_and_sizes_that_do_not_fit_are_corruption() {
        // A group whose first seq is not the next one.
        let (d, offs) = file(5, 2, 3, true);
        let (other, _) = file(9, 1, 3, true);
        let mut c = d[..offs[1]].to_vec();
        c.extend_from_slice(&other[HEADER_LEN..]);
        assert_eq!(corruption_at(&c, true), offs[1] as u64 + 8);
        // A group that says it was durable past its own start.
        let mut c = d.clone();
        let g = GroupHeader {
            durable: offs[1] as u64 + 1,
            ..GroupHeader::decode(&d[offs[1]..]).unwrap()
        };
        c[offs[1]..offs[1] + GROUP_HEADER_LEN].copy_from_slice(&g.encode());
        assert_eq!(corruption_at(&c, true), offs[1] as u64 + 24);
        // A group whose frames do not fill it (intact checksums all the same).
        let mut c = d.clone();
        let g = GroupHeader {
            frames: 2,
            ..GroupHeader::decode(&d[offs[1]..]).unwrap()
        };
        c[offs[1]..offs[1] + GROUP_HEADER_LEN].copy_from_slice(&g.encode());
        assert_eq!(corruption_at(&c, true), offs[1] as u64 + 16);
    }

    #[test]
    fn a_lenient_walk_does_not_check_seqs() {
        let (d, _) = file(5, 2, 3, true);
        let (other, _) = file(50, 1, 2, true);
        let mut c = d.clone();
        c.extend_from_slice(&other[HEADER_LEN..]);
        let mut seqs = Vec::new();
        let w = walk_groups("f", &c, false, &mut |_, b| {
            seqs.push(u64::from_le_bytes(arr(b)));
            Ok(())
        })
        .unwrap();
        assert_eq!((w.records, w.end, w.damage), (8, c.len(), None));
        assert_eq!(seqs, [5, 6, 7, 8, 9, 10, 50, 51]);
        assert!(walk_groups("f", &c, true, &mut |_, _| Ok(())).is_err());
    }

    #[test]
    fn torn_creation() {
        assert!(matches!(
            scan(&[0u8; 100], true).unwrap(),
            ScanOutcome::TornCreation
        ));
        assert!(matches!(
            scan(&crate::format::MAGIC[..3], true).unwrap(),
            ScanOutcome::TornCreation
        ));
        assert!(scan(&[0u8; 100], false).is_err());
    }
}
