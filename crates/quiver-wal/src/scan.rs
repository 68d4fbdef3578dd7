//! Recovery scan of one WAL file: header check, frame walk, end-of-data and torn-tail rules.
//!
//! Rules (also in `docs/format/wal.md`):
//! - a frame is *bad* when its header is cut short, its length is 1..=7, it runs past the end
//!   of the file, or its CRC32C does not match its body;
//! - a zero `len` with a zero `crc` marks the end of data (preallocated files are zero-filled);
//! - a frame with a good CRC but an unexpected seq is always corruption;
//! - in the final file, a bad frame (or non-zero bytes after the end marker) is a *torn tail*
//!   only if no intact frame with a plausible seq starts anywhere after it; otherwise, and in
//!   every other file, it is [`WalError::Corruption`] naming the file and the frame's offset.

use crate::error::{Result, WalError};
use crate::format::{arr, Header, FRAME_HEADER_LEN, HEADER_LEN, MIN_BODY};
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
    /// Offset just past the last intact frame (where the next append goes).
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

/// Scans `data`, the full contents of WAL file `name` whose name encodes `name_seq`.
/// `is_last` enables the torn-tail rule. `visit` is called for each intact record.
pub(crate) fn scan_file(
    name: &str,
    name_seq: SeqNo,
    data: &[u8],
    is_last: bool,
    visit: &mut dyn FnMut(SeqNo, &[u8]) -> Result<()>,
) -> Result<ScanOutcome> {
    let all_zero = |s: &[u8]| s.iter().all(|&b| b == 0);
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
    let mut off = HEADER_LEN;
    let mut expected = header.first_seq;
    let mut records = 0u64;
    let bad = |off: usize, expected: SeqNo, reason: String| -> Result<ScanOutcome> {
        if is_last {
            match find_intact_frame(data, off + 1, expected) {
                None => Ok(ScanOutcome::File(Scanned {
                    header,
                    last_seq: expected.checked_sub(1).filter(|&s| s >= header.first_seq),
                    records: expected - header.first_seq,
                    end: off as u64,
                    torn: true,
                })),
                Some(at) => Err(WalError::corrupt(
                    name,
                    off as u64,
                    format!("{reason}, yet an intact record follows at byte {at}"),
                )),
            }
        } else {
            Err(WalError::corrupt(name, off as u64, reason))
        }
    };
    loop {
        let rem = data.len() - off;
        if rem == 0 {
            break;
        }
        if rem < FRAME_HEADER_LEN {
            if all_zero(&data[off..]) {
                break;
            }
            return bad(
                off,
                expected,
                format!("frame header cut short ({rem} bytes left)"),
            );
        }
        let len = u32::from_le_bytes(arr(&data[off..off + 4])) as usize;
        let crc = u32::from_le_bytes(arr(&data[off + 4..off + 8]));
        if len == 0 && crc == 0 {
            if all_zero(&data[off..]) {
                break;
            }
            return bad(
                off,
                expected,
                "non-zero bytes after the end-of-data marker".into(),
            );
        }
        if len < MIN_BODY {
            return bad(
                off,
                expected,
                format!("frame length {len} is below the minimum {MIN_BODY}"),
            );
        }
        if len > rem - FRAME_HEADER_LEN {
            return bad(
                off,
                expected,
                format!("frame of {len} bytes runs past the end of the file ({rem} bytes left)"),
            );
        }
        let body = &data[off + FRAME_HEADER_LEN..off + FRAME_HEADER_LEN + len];
        let got = crc32c::crc32c(body);
        if got != crc {
            return bad(
                off,
                expected,
                format!("checksum mismatch: stored {crc:#010x}, computed {got:#010x}"),
            );
        }
        let seq = u64::from_le_bytes(arr(&body[..8]));
        if seq != expected {
            return Err(WalError::corrupt(
                name,
                off as u64,
                format!("record has seq {seq}, expected {expected}"),
            ));
        }
        visit(seq, body)?;
        records += 1;
        expected += 1;
        off += FRAME_HEADER_LEN + len;
    }
    Ok(ScanOutcome::File(Scanned {
        header,
        last_seq: if records > 0 {
            Some(expected - 1)
        } else {
            None
        },
        records,
        end: off as u64,
        torn: false,
    }))
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
    use crate::format::push_frame;

    fn file(first: SeqNo, n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut d = Header {
            first_seq: first,
            prev_seq: 0,
        }
        .encode()
        .to_vec();
        let mut offs = Vec::new();
        for s in first..first + n {
            offs.push(d.len());
            let mut body = s.to_le_bytes().to_vec();
            body.extend(std::iter::repeat_n((s % 251) as u8, 20 + (s as usize % 7)));
            push_frame(&mut d, &body);
        }
        (d, offs)
    }

    fn scan(d: &[u8], last: bool) -> Result<ScanOutcome> {
        scan_file("f", 5, d, last, &mut |_, _| Ok(()))
    }

    #[test]
    fn intact_and_zero_padded() {
        let (mut d, _) = file(5, 10);
        let end = d.len() as u64;
        d.resize(d.len() + 1000, 0);
        for last in [false, true] {
            match scan(&d, last).unwrap() {
                ScanOutcome::File(s) => {
                    assert_eq!(
                        (s.last_seq, s.records, s.end, s.torn),
                        (Some(14), 10, end, false)
                    )
                }
                o => panic!("{o:?}"),
            }
        }
    }

    #[test]
    fn bad_frame_in_middle_is_corruption_even_in_last_file() {
        let (d, offs) = file(5, 10);
        let mut c = d.clone();
        c[offs[4] + 12] ^= 0xff;
        for last in [false, true] {
            match scan(&c, last) {
                Err(WalError::Corruption { offset, .. }) => assert_eq!(offset, offs[4] as u64),
                o => panic!("{o:?}"),
            }
        }
    }

    #[test]
    fn torn_tail_only_in_last_file() {
        let (d, offs) = file(5, 10);
        let cut = &d[..d.len() - 3];
        match scan(cut, true).unwrap() {
            ScanOutcome::File(s) => {
                assert_eq!(
                    (s.last_seq, s.end, s.torn),
                    (Some(13), offs[9] as u64, true)
                )
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(scan(cut, false), Err(WalError::Corruption { .. })));
    }

    #[test]
    fn zero_length_hole_followed_by_data_is_corruption() {
        let (mut d, offs) = file(5, 10);
        d[offs[3]..offs[3] + 8].fill(0);
        assert!(matches!(scan(&d, true), Err(WalError::Corruption { .. })));
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
