//! The drop log: every seq that a flush or a compaction dropped, signed by the node key
//! (spec: `docs/format/dropped.md`).
//!
//! A flush keeps only the newest version of each id and drops tombstones that shadow
//! nothing; a compaction drops overwritten versions and, at the bottom, tombstones. Their
//! leaves stay in the ledger, so `quiver verify` must tell a record that was dropped this way
//! from one that was deleted from the files behind the database's back. The manifest cannot
//! say (it is only checksummed, anyone can rewrite it), so each flush or compaction that
//! drops something appends the seqs it dropped here, with an Ed25519 signature, durably,
//! before the manifest that stops naming those rows is swapped in. Verify then accepts a seq
//! missing from the segments only if a correctly signed record lists it.

use crate::{EngineError, Result};
use quiver_ledger::{verify_record, Ledger, VerifyingKey};
use roaring::RoaringTreemap;
use std::{
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
};

/// File name, in the data directory.
pub const FILE: &str = "DROPPED";
/// The `kind` of the records' signatures ([`Ledger::sign_record`]).
const KIND: &str = "dropped seqs";
const MAGIC: &[u8; 8] = b"QVDROP\0\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
const SIG_LEN: usize = 64;

/// Path of the drop log of the data directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one signed record of `seqs` (ascending) and makes it durable. Nothing to do for
/// an empty list.
pub(crate) fn append(dir: &Path, ledger: &Ledger, seqs: &[u64]) -> Result<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let p = path(dir);
    let io = |e| EngineError::io(&p, e);
    let mut body = Vec::with_capacity(8 + 8 * seqs.len() + SIG_LEN);
    body.extend_from_slice(&(seqs.len() as u64).to_le_bytes());
    for s in seqs {
        body.extend_from_slice(&s.to_le_bytes());
    }
    let sig = ledger.sign_record(KIND, &body)?;
    body.extend_from_slice(&sig);
    let len = u32::try_from(body.len()).map_err(|_| EngineError::Closed {
        reason: format!("{} dropped seqs do not fit one drop-log record", seqs.len()),
    })?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(io)?;
    let fresh = f.metadata().map_err(io)?.len() == 0;
    let mut frame = Vec::with_capacity(HEADER_LEN + 8 + body.len());
    if fresh {
        frame.extend_from_slice(&header());
    }
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    f.write_all(&frame).map_err(io)?;
    f.sync_data().map_err(io)?;
    if fresh {
        crate::manifest::sync_dir(dir)?;
    }
    Ok(())
}

/// A drop log's intact records (offset, body) and the end of its intact part.
type Records<'a> = (Vec<(usize, &'a [u8])>, usize);

/// The records of a whole drop log `buf` with their offsets, and where its intact part ends:
/// all of `buf`, or where a torn final record (or a torn header: a creation cut short, so
/// nothing was recorded) starts. A zero-filled tail is torn too: what a power loss leaves where
/// the file's size reached the disk but its data did not (a zero-length "record" passes its
/// checksum, so zeros must be recognised as such). Damage anywhere else is an error.
fn records(buf: &[u8]) -> std::result::Result<Records<'_>, Damage> {
    let damage = |offset: usize, reason: &str| Damage {
        offset: offset as u64,
        reason: reason.into(),
    };
    // Everything from here to the end of the log is zero.
    let zeros = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    // A record that looks torn is the last one written only if no intact record (non-empty,
    // checksum matching) starts after it; otherwise its length was damaged, and cutting there
    // would throw signed records away.
    let followed = |off: usize| {
        quiver_ledger::intact_frame_in(&buf[off + 1..], usize::MAX).map(|p| off + 1 + p)
    };
    let torn = |off: usize| match followed(off) {
        None => Ok(()),
        Some(p) => Err(damage(
            off,
            &format!("drop-log record looks cut short, but an intact record follows at byte {p}"),
        )),
    };
    if (buf.len() < HEADER_LEN && header().starts_with(buf)) || zeros == 0 {
        return Ok((Vec::new(), 0));
    }
    if buf.len() < HEADER_LEN || buf[..HEADER_LEN] != header() {
        return Err(damage(0, "bad drop-log header"));
    }
    let mut out = Vec::new();
    let mut off = HEADER_LEN;
    while off < buf.len() {
        let Some(frame) = buf.get(off..off + 8) else {
            break; // torn final frame header (too short to hold a record after it)
        };
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let Some(body) = buf.get(off + 8..off + 8 + len) else {
            torn(off)?;
            break; // torn final record
        };
        // Zeros from the record's start to its sector's end: its first sector never reached the
        // disk, a later one did (the ledger's framed logs follow the same rules).
        let lost_first = quiver_ledger::zeros_to_sector_end(off as u64, &buf[off..]);
        if len == 0 {
            if zeros <= off {
                break; // a zero-filled tail
            }
            if lost_first > 0 {
                torn(off)?;
                break;
            }
            return Err(damage(off, "zero-length drop-log record"));
        }
        if crc32c::crc32c(body) != crc {
            if quiver_ledger::zero_filled_torn((off + 8 + len) as u64, zeros as u64)
                || lost_first >= 2
            {
                torn(off)?;
                break; // a torn final record
            }
            return Err(damage(off, "drop-log record checksum mismatch"));
        }
        out.push((off, body));
        off += 8 + len;
    }
    Ok((out, off))
}

/// Cuts a torn final record (or header) off the drop log, durably, as WAL recovery cuts a
/// torn tail: `Database::open` calls it before anything is appended, so a record a crash
/// cut short never ends up in front of whole ones (where it would read as damage).
pub(crate) fn repair(dir: &Path) -> Result<()> {
    let p = path(dir);
    let buf = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io(&p, e)),
    };
    // Damage other than a torn tail is left in place for `verify` to report.
    let keep = records(&buf).map_or(buf.len(), |(_, end)| end);
    if keep < buf.len() {
        let f = OpenOptions::new()
            .write(true)
            .open(&p)
            .map_err(|e| EngineError::io(&p, e))?;
        f.set_len(keep as u64).map_err(|e| EngineError::io(&p, e))?;
        f.sync_all().map_err(|e| EngineError::io(&p, e))?;
    }
    Ok(())
}

/// Why the drop log could not be read.
#[derive(Debug)]
pub struct Damage {
    /// Byte offset of the bad part.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// Reads the drop log of `dir`, checking every record's checksum and signature (by `key`,
/// for the log `origin`). A missing file is an empty log. A torn final record (a crash
/// during an append, before the manifest that depended on it) is ignored.
pub fn read(
    dir: &Path,
    key: &VerifyingKey,
    origin: &str,
) -> Result<std::result::Result<RoaringTreemap, Damage>> {
    let p = path(dir);
    let buf = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(RoaringTreemap::new())),
        Err(e) => return Err(EngineError::io(&p, e)),
    };
    let damage = |offset: usize, reason: String| {
        Ok(Err(Damage {
            offset: offset as u64,
            reason,
        }))
    };
    let recs = match records(&buf) {
        Ok((recs, _)) => recs,
        Err(d) => return Ok(Err(d)),
    };
    let mut set = RoaringTreemap::new();
    for (off, body) in recs {
        let count = body
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .unwrap_or(0);
        let want = count
            .checked_mul(8)
            .and_then(|n| n.checked_add((8 + SIG_LEN) as u64));
        if want != Some(body.len() as u64) || count == 0 {
            return damage(
                off,
                format!(
                    "drop-log record of {} bytes cannot hold {count} seqs",
                    body.len()
                ),
            );
        }
        let (msg, sig) = body.split_at(body.len() - SIG_LEN);
        let sig: [u8; SIG_LEN] = sig.try_into().unwrap_or([0; SIG_LEN]);
        if !verify_record(key, origin, KIND, msg, &sig) {
            return damage(
                off,
                "drop-log record signature does not verify against the node key".into(),
            );
        }
        let mut prev = 0u64;
        for (i, s) in msg[8..].chunks_exact(8).enumerate() {
            let s = u64::from_le_bytes(s.try_into().unwrap_or_default());
            if s == 0 || (i > 0 && s <= prev) {
                return damage(off, format!("drop-log record lists seq {s} after {prev}"));
            }
            set.insert(s);
            prev = s;
        }
    }
    Ok(Ok(set))
}

/// The first seq of `a..=b` that `dropped` does not hold, if any.
pub fn first_not_dropped(dropped: &RoaringTreemap, a: u64, b: u64) -> Option<u64> {
    if a > b {
        return None;
    }
    let below = if a == 0 { 0 } else { dropped.rank(a - 1) };
    let all_in = |x: u64| dropped.rank(x) - below == x - a + 1;
    if all_in(b) {
        return None;
    }
    let (mut lo, mut hi) = (a, b);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if all_in(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::{first_not_dropped, header, records};
    use roaring::RoaringTreemap;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        f.extend_from_slice(body);
        f
    }

    /// A length forged to run past the end (no checksum covers it) must not pass for a torn
    /// final record: `repair` would then cut every signed record after it.
    #[test]
    fn a_forged_length_with_records_after_it_is_damage_not_a_torn_tail() {
        let mut log = header().to_vec();
        log.extend(frame(b"first record body"));
        log.extend(frame(b"second record body"));
        assert_eq!(
            records(&log).map(|(r, end)| (r.len(), end)).ok(),
            Some((2, log.len()))
        );
        let mut forged = log.clone();
        let past_end = (log.len() as u32).to_le_bytes();
        forged[16..20].copy_from_slice(&past_end);
        let err = records(&forged).expect_err("damage");
        assert_eq!(err.offset, 16);
        assert!(
            err.reason.contains("intact record follows"),
            "{}",
            err.reason
        );
        // The same length on the last record, with nothing after it: a torn tail.
        let mut torn = header().to_vec();
        torn.extend(frame(b"first record body"));
        let at = torn.len();
        torn.extend(frame(b"second record body"));
        torn[at..at + 4].copy_from_slice(&past_end);
        assert_eq!(
            records(&torn).map(|(r, end)| (r.len(), end)).ok(),
            Some((1, at))
        );
    }

    #[test]
    fn first_not_dropped_finds_the_first_hole() {
        let mut d = RoaringTreemap::new();
        d.insert_range(5..=9);
        d.insert(12);
        assert_eq!(first_not_dropped(&d, 5, 9), None);
        assert_eq!(first_not_dropped(&d, 6, 6), None);
        assert_eq!(first_not_dropped(&d, 5, 10), Some(10));
        assert_eq!(first_not_dropped(&d, 4, 9), Some(4));
        assert_eq!(first_not_dropped(&d, 9, 12), Some(10));
        assert_eq!(first_not_dropped(&d, 12, 12), None);
        assert_eq!(first_not_dropped(&d, 13, 12), None);
        assert_eq!(first_not_dropped(&RoaringTreemap::new(), 1, 1), Some(1));
    }

    /// A drop record whose first sector arrived and whose second did not, where the last bytes
    /// that arrived are zero (a u64's high bytes): a torn write, which `repair` cuts.
    #[test]
    fn a_torn_record_ending_in_zero_bytes_before_the_sector_boundary_is_torn() {
        let mut body: Vec<u8> = (0..900u32).map(|i| (i % 200) as u8 + 1).collect();
        let mut buf = header().to_vec();
        let body_at = buf.len() + 8;
        body[508 - body_at..=511 - body_at].fill(0);
        buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        buf.extend_from_slice(&body);
        buf[512..].fill(0);
        let end = records(&buf).map(|(_, end)| end);
        assert_eq!(end.ok(), Some(header().len()), "torn, cut after the header");
    }

    /// A final drop record whose first sector never arrived while its second did: zeros from
    /// its start to the sector's end. Torn; with an intact record after it, damage.
    #[test]
    fn a_final_record_whose_first_sector_never_arrived_is_torn() {
        for start in [300usize, 510] {
            let mut buf = header().to_vec();
            buf.extend(frame(&vec![9u8; start - buf.len() - 8]));
            assert_eq!(buf.len(), start);
            let body: Vec<u8> = (0..700u32).map(|i| (i % 200) as u8 + 1).collect();
            buf.extend(frame(&body));
            buf[start..512].fill(0);
            assert_eq!(
                records(&buf).map(|(r, end)| (r.len(), end)).ok(),
                Some((1, start)),
                "{start}"
            );
            let mut damaged = buf.clone();
            damaged.extend(frame(b"a later intact record"));
            assert!(records(&damaged).is_err(), "{start}");
        }
    }
}
