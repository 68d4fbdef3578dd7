//! Append-only files of checksummed records, used for checkpoints and receipts.
//!
//! Header (16 bytes): magic (8) | version u16 = 1 | 2 reserved zero bytes | crc32c u32 of bytes
//! 0..12. Each record: `len u32 | crc32c(body) u32 | body`, never empty. A torn write is cut off
//! when the file is opened for writing: a final record that runs past the end of the file, and
//! a zero-filled tail (what a power loss leaves where a file's size reached the disk but its
//! data did not): a zero-length record with only zeros after it, or a record failing its
//! checksum whose bytes are zero from a sector boundary to the end of the file
//! ([`zero_filled_torn`]); a file of zeros only is a creation cut short. None of these
//! is torn if an intact record starts at any later byte (a damaged length, not a crash). Any
//! other mismatch is a typed corruption error naming the file and offset.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{LedgerError, Result};

const VERSION: u16 = 1;
/// Header length in bytes.
pub(crate) const HEADER: u64 = 16;
/// Largest record body accepted (a checkpoint note is well under this).
const MAX_BODY: u32 = 1 << 20;

fn header(magic: &[u8; 8]) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(magic);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Disks write whole sectors of (at least) this many bytes, and the page cache writes back whole
/// pages, which are multiples of it.
const SECTOR: u64 = 512;

/// Whether a record ending at `record_end` (exclusive) that fails its checksum is a
/// zero-filled torn write, given `zeros_start`, where the run of zeros that ends the file
/// starts: a sector boundary must lie inside both the zero run and the record, since a write
/// that did not reach the disk leaves whole sectors unwritten. (The zeros may start before
/// that boundary: the last bytes that did arrive can be zero, such as a length's high bytes.
/// Merely ending in zeros is not enough: one receipt in sixteen ends in a zero byte, the top
/// byte of its signature's scalar, and a damaged one must not be cut as torn.)
pub fn zero_filled_torn(record_end: u64, zeros_start: u64) -> bool {
    zeros_start.next_multiple_of(SECTOR) < record_end
}

/// How many bytes run from file offset `off` to the end of its 512-byte sector (or of the
/// file) when all of them are zero, else 0; `from_off` holds the file's bytes from `off` on.
/// A final record whose first sector never reached the disk while a later one did (a device
/// that completes a write's sectors in any order) starts so.
pub fn zeros_to_sector_end(off: u64, from_off: &[u8]) -> u64 {
    let n = ((off + 1).next_multiple_of(SECTOR) - off).min(from_off.len() as u64);
    if from_off[..n as usize].iter().all(|&b| b == 0) {
        n
    } else {
        0
    }
}

/// Offset of the first intact `len u32 | crc32c u32 | body` frame in `buf` (a length of 1 to
/// `max_body` whose body fits and matches its checksum), if any. Used to tell a torn final
/// record (nothing intact after it) from a damaged length (whole records after it), in these
/// logs and in the engine's drop log, which frames its records the same way.
pub fn intact_frame_in(buf: &[u8], max_body: usize) -> Option<usize> {
    let word = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    (0..buf.len().saturating_sub(8)).find(|&p| {
        let n = word(p) as usize;
        (1..=max_body).contains(&n)
            && buf
                .get(p + 8..p + 8 + n)
                .is_some_and(|body| crc32c::crc32c(body) == word(p + 4))
    })
}

/// One framed log file.
pub(crate) struct FramedLog {
    path: PathBuf,
    file: File,
    magic: [u8; 8],
    /// Length of the valid prefix (header + whole records).
    len: u64,
    read_only: bool,
}

impl FramedLog {
    /// Opens (or, unless `read_only`, creates) the file and scans it, calling `each(offset, body)`
    /// for every record.
    pub(crate) fn open(
        path: &Path,
        magic: &[u8; 8],
        read_only: bool,
        each: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<FramedLog> {
        let exists = path.exists();
        if !exists && read_only {
            return Err(LedgerError::corrupt(path, 0, "file missing"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .create(!read_only)
            .truncate(false)
            .open(path)
            .map_err(|e| LedgerError::io(path, e))?;
        let mut log = FramedLog {
            path: path.to_path_buf(),
            file,
            magic: *magic,
            len: 0,
            read_only,
        };
        let file_len = log.file_len()?;
        let end = if file_len == 0 {
            0
        } else {
            match log.scan(each) {
                Ok(end) => end,
                // Read-only audits open damaged files too; the audit rescans and reports the
                // damage.
                Err(e) if read_only && e.is_corruption() => file_len,
                Err(e) => return Err(e),
            }
        };
        if end == 0 && !read_only {
            // New, or a creation cut short (nothing but zeros): start it afresh.
            log.file
                .set_len(0)
                .and_then(|()| log.file.write_all_at(&header(magic), 0))
                .map_err(|e| LedgerError::io(path, e))?;
            log.len = HEADER;
            return Ok(log);
        }
        log.len = end;
        if log.len < file_len && !read_only {
            log.file
                .set_len(log.len)
                .map_err(|e| LedgerError::io(path, e))?;
        }
        Ok(log)
    }

    fn file_len(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| LedgerError::io(&self.path, e))?
            .len())
    }

    /// Path of the file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the run of zero bytes that ends the file starts (the file's length if its last
    /// byte is not zero).
    fn zeros_start(&self) -> Result<u64> {
        let mut end = self.file_len()?;
        let mut buf = vec![0u8; 64 * 1024];
        while end > 0 {
            let n = end.min(buf.len() as u64) as usize;
            self.read_at(&mut buf[..n], end - n as u64)?;
            if let Some(i) = buf[..n].iter().rposition(|&b| b != 0) {
                return Ok(end - n as u64 + i as u64 + 1);
            }
            end -= n as u64;
        }
        Ok(0)
    }

    /// [`zeros_to_sector_end`] of the record at `off`.
    fn zeros_to_sector_end(&self, off: u64) -> Result<u64> {
        let end = (off + 1).next_multiple_of(SECTOR).min(self.file_len()?);
        let mut buf = vec![0u8; end.saturating_sub(off) as usize];
        self.read_at(&mut buf, off)?;
        Ok(zeros_to_sector_end(off, &buf))
    }

    /// A record at `off` that looks torn is the last one written only if no intact record
    /// starts after it: otherwise its length was damaged, and cutting there would throw whole
    /// records away.
    fn torn_unless_followed(&self, off: u64) -> Result<()> {
        let end = self.file_len()?;
        let mut rest = vec![0u8; end.saturating_sub(off + 1) as usize];
        self.read_at(&mut rest, off + 1)?;
        match intact_frame_in(&rest, MAX_BODY as usize) {
            None => Ok(()),
            Some(p) => Err(LedgerError::corrupt(
                &self.path,
                off,
                format!(
                    "the record here looks cut short, but an intact record follows at byte {}",
                    off + 1 + p as u64
                ),
            )),
        }
    }

    /// Reads every record; returns the end of the last whole record (0 for a file of zeros
    /// only: a creation cut short).
    pub(crate) fn scan(&self, each: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
        let file_len = self.file_len()?;
        let mut h = [0u8; 16];
        // Everything from here to the end of the file is zero.
        let zeros = self.zeros_start()?;
        if zeros == 0 {
            return Ok(0);
        }
        if file_len < HEADER {
            return Err(LedgerError::corrupt(
                &self.path,
                0,
                "shorter than the 16-byte header",
            ));
        }
        self.read_at(&mut h, 0)?;
        if h[..8] != self.magic {
            return Err(LedgerError::corrupt(&self.path, 0, "bad magic"));
        }
        if h != header(&self.magic) {
            return Err(LedgerError::corrupt(
                &self.path,
                8,
                "bad version or header checksum",
            ));
        }
        let mut off = HEADER;
        let mut body = Vec::new();
        while off + 8 <= file_len {
            let mut rh = [0u8; 8];
            self.read_at(&mut rh, off)?;
            let n = u32::from_le_bytes([rh[0], rh[1], rh[2], rh[3]]);
            let crc = u32::from_le_bytes([rh[4], rh[5], rh[6], rh[7]]);
            if n > MAX_BODY {
                return Err(LedgerError::corrupt(
                    &self.path,
                    off,
                    format!("record length {n} is too large"),
                ));
            }
            if off + 8 + u64::from(n) > file_len {
                self.torn_unless_followed(off)?;
                break; // torn final record
            }
            if n == 0 {
                if zeros <= off {
                    break; // a zero-filled tail
                }
                // A final record whose first sector never reached the disk while a later one
                // did (a device that completes a write's sectors in any order): its length
                // reads as zero, and so does everything up to the sector's end. A damaged
                // length of an older record has intact records after it.
                if self.zeros_to_sector_end(off)? > 0 {
                    self.torn_unless_followed(off)?;
                    break;
                }
                return Err(LedgerError::corrupt(&self.path, off, "zero-length record"));
            }
            body.resize(n as usize, 0);
            self.read_at(&mut body, off + 8)?;
            let got = crc32c::crc32c(&body);
            if got != crc {
                if zero_filled_torn(off + 8 + u64::from(n), zeros) {
                    self.torn_unless_followed(off)?;
                    break; // a final record whose tail never reached the disk
                }
                // Or whose first sector never did, while a later one (with the length's high
                // bytes) did: zeros from the record's start to that sector's end. At least two
                // zero bytes, the length's low ones, which no intact record under 64 KiB has.
                if self.zeros_to_sector_end(off)? >= 2 {
                    self.torn_unless_followed(off)?;
                    break;
                }
                return Err(LedgerError::Checksum {
                    file: self.path.clone(),
                    offset: off,
                    expected: crc,
                    got,
                });
            }
            each(off, &body)?;
            off += 8 + u64::from(n);
        }
        Ok(off)
    }

    /// Reads the record at `off` (which must come from a scan).
    pub(crate) fn read_record(&self, off: u64) -> Result<Vec<u8>> {
        let mut rh = [0u8; 8];
        self.read_at(&mut rh, off)?;
        let n = u32::from_le_bytes([rh[0], rh[1], rh[2], rh[3]]);
        let crc = u32::from_le_bytes([rh[4], rh[5], rh[6], rh[7]]);
        if n > MAX_BODY || off + 8 + u64::from(n) > self.len {
            return Err(LedgerError::corrupt(
                &self.path,
                off,
                "record runs past the end",
            ));
        }
        let mut body = vec![0u8; n as usize];
        self.read_at(&mut body, off + 8)?;
        let got = crc32c::crc32c(&body);
        if got != crc {
            return Err(LedgerError::Checksum {
                file: self.path.clone(),
                offset: off,
                expected: crc,
                got,
            });
        }
        Ok(body)
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| LedgerError::io(&self.path, e))
    }

    /// Appends a record (not yet durable) and returns its offset.
    pub(crate) fn append(&mut self, body: &[u8]) -> Result<u64> {
        if self.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let mut rec = Vec::with_capacity(8 + body.len());
        rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        rec.extend_from_slice(body);
        let off = self.len;
        self.file
            .write_all_at(&rec, off)
            .map_err(|e| LedgerError::io(&self.path, e))?;
        self.len += rec.len() as u64;
        Ok(off)
    }

    /// A duplicated handle, to fdatasync without holding the ledger lock.
    pub(crate) fn dup(&self) -> Result<(File, PathBuf)> {
        let f = self
            .file
            .try_clone()
            .map_err(|e| LedgerError::io(&self.path, e))?;
        Ok((f, self.path.clone()))
    }

    /// fdatasyncs the file.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| LedgerError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the `QVTEST01` log at `p` for writing (cutting a torn tail) and counts its records.
    fn open_writable(p: &Path) -> Result<usize> {
        let mut n = 0;
        let mut c = |_: u64, _: &[u8]| {
            n += 1;
            Ok(())
        };
        drop(FramedLog::open(p, b"QVTEST01", false, &mut c)?);
        Ok(n)
    }

    #[test]
    fn round_trip_torn_tail_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.log");
        let magic = b"QVTEST01";
        let mut none = |_: u64, _: &[u8]| Ok(());
        {
            let mut l = FramedLog::open(&p, magic, false, &mut none).expect("open");
            l.append(b"hello").expect("a");
            l.append(b"world!").expect("b");
            l.sync().expect("sync");
        }
        let mut got = Vec::new();
        let mut collect = |_: u64, b: &[u8]| {
            got.push(b.to_vec());
            Ok(())
        };
        drop(FramedLog::open(&p, magic, true, &mut collect).expect("reopen"));
        assert_eq!(got, vec![b"hello".to_vec(), b"world!".to_vec()]);

        // Torn tail: cut the last record short; a writable open drops it.
        let len = std::fs::metadata(&p).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&p).expect("f");
        f.set_len(len - 3).expect("cut");
        let mut n = 0;
        let mut count = |_: u64, _: &[u8]| {
            n += 1;
            Ok(())
        };
        drop(FramedLog::open(&p, magic, false, &mut count).expect("torn reopen"));
        assert_eq!(n, 1);
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), HEADER + 8 + 5);

        // A flipped body byte is a checksum error naming the offset.
        f.write_all_at(b"J", HEADER + 8).expect("flip");
        let r = FramedLog::open(&p, magic, false, &mut none);
        assert!(matches!(r, Err(LedgerError::Checksum { offset, .. }) if offset == HEADER));
        // Read-only audits still open it; scanning reports the damage.
        let ro = FramedLog::open(&p, magic, true, &mut none).expect("tolerant open");
        assert!(matches!(
            ro.scan(&mut none),
            Err(LedgerError::Checksum { .. })
        ));
        // Wrong magic.
        assert!(FramedLog::open(&p, b"QVOTHER1", false, &mut none).is_err());
    }

    /// What a power loss can leave where a file's size reached the disk but its data did not:
    /// zeros. They are a torn tail, cut on a writable open; other damage is still an error.
    #[test]
    fn zero_filled_tails_are_torn_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let magic = b"QVTEST01";
        let mut none = |_: u64, _: &[u8]| Ok(());
        let count = |p: &Path, read_only: bool| -> Result<usize> {
            let mut n = 0;
            let mut c = |_: u64, _: &[u8]| {
                n += 1;
                Ok(())
            };
            drop(FramedLog::open(p, magic, read_only, &mut c)?);
            Ok(n)
        };
        let p = dir.path().join("x.log");
        {
            let mut l = FramedLog::open(&p, magic, false, &mut none).expect("open");
            l.append(b"hello").expect("a");
        }
        let whole = std::fs::read(&p).expect("read");
        let f = OpenOptions::new().write(true).open(&p).expect("f");
        // Zeros after the last record: a zero-length "record" whose checksum (of nothing) is 0.
        f.write_all_at(&[0u8; 24], whole.len() as u64)
            .expect("zeros");
        assert_eq!(count(&p, true).expect("read-only"), 1);
        assert_eq!(count(&p, false).expect("writable"), 1);
        assert_eq!(std::fs::read(&p).expect("read"), whole, "the tail was cut");
        // A record whose first sector arrived but whose next one reads as zeros.
        let body: Vec<u8> = (0..700u32).map(|i| (i % 251) as u8 + 1).collect();
        let mut torn = whole.clone();
        torn.extend_from_slice(&(body.len() as u32).to_le_bytes());
        torn.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        let body_at = torn.len();
        torn.extend_from_slice(&body);
        torn[512..].fill(0);
        std::fs::write(&p, &torn).expect("write");
        assert_eq!(count(&p, true).expect("read-only"), 1);
        assert_eq!(count(&p, false).expect("writable"), 1);
        assert_eq!(std::fs::read(&p).expect("read"), whole);
        // A body whose last byte arrived is not a torn write.
        let last = torn.len() - 1;
        torn[last] = b'x';
        std::fs::write(&p, &torn).expect("write");
        assert!(matches!(
            count(&p, false),
            Err(LedgerError::Checksum { .. })
        ));
        // Nor is a damaged record whose last bytes are zero but whose zeros do not start at a
        // sector boundary: what a flipped byte in a receipt whose signature ends in a zero
        // byte looks like. Nothing is cut.
        let mut damaged = whole.clone();
        damaged.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let mut zero_end = body.clone();
        zero_end[690..].fill(0);
        damaged.extend_from_slice(&crc32c::crc32c(&zero_end).to_le_bytes());
        damaged.extend_from_slice(&zero_end);
        damaged[body_at + 3] ^= 0x40;
        assert_ne!((body_at + 690) % 512, 0);
        std::fs::write(&p, &damaged).expect("write");
        assert!(matches!(
            count(&p, false),
            Err(LedgerError::Checksum { .. })
        ));
        assert_eq!(std::fs::read(&p).expect("read"), damaged, "nothing cut");
        // A zero-length record with data after it is damage.
        let mut mid = whole.clone();
        mid.extend_from_slice(&[0u8; 8]);
        mid.extend_from_slice(&whole[HEADER as usize..]);
        std::fs::write(&p, &mid).expect("write");
        assert!(count(&p, false).is_err());
        // A forged length running past the end, with whole records after it: damage, not a
        // torn write (cutting there would throw the later records away).
        std::fs::write(&p, &whole).expect("write");
        {
            let mut l = FramedLog::open(&p, magic, false, &mut none).expect("open");
            l.append(b"second").expect("append");
        }
        let mut forged = std::fs::read(&p).expect("read");
        let len = forged.len() as u32;
        forged[HEADER as usize..HEADER as usize + 4].copy_from_slice(&len.to_le_bytes());
        std::fs::write(&p, &forged).expect("write");
        assert!(count(&p, false).is_err());
        assert_eq!(std::fs::read(&p).expect("read"), forged, "nothing cut");
        // Zeros only: a creation cut short, started afresh.
        std::fs::write(&p, [0u8; 40]).expect("write");
        assert_eq!(count(&p, false).expect("writable"), 0);
        assert_eq!(std::fs::read(&p).expect("read"), header(magic));
        FramedLog::open(&p, magic, false, &mut none)
            .expect("open")
            .append(b"again")
            .expect("append");
        assert_eq!(count(&p, true).expect("read-only"), 1);
    }

    /// Torn writes whose first sector arrived where the last bytes that arrived are zero
    /// (a u64's high bytes; a length's high bytes): still torn, cut on a writable open.
    #[test]
    fn torn_writes_ending_in_zero_bytes_before_the_sector_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut none = |_: u64, _: &[u8]| Ok(());
        // Zeros from byte 507 of the file, the second sector (from 512) never arrived.
        let p = dir.path().join("a.log");
        {
            let mut l = FramedLog::open(&p, b"QVTEST01", false, &mut none).expect("open");
            l.append(b"hello").expect("append");
        }
        let whole = std::fs::read(&p).expect("read");
        let mut body: Vec<u8> = (0..700u32).map(|i| (i % 251) as u8 + 1).collect();
        let body_at = whole.len() + 8;
        body[507 - body_at..=511 - body_at].fill(0);
        let mut torn = whole.clone();
        torn.extend_from_slice(&(body.len() as u32).to_le_bytes());
        torn.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        torn.extend_from_slice(&body);
        torn[512..].fill(0);
        std::fs::write(&p, &torn).expect("write");
        assert_eq!(open_writable(&p).expect("torn, not damage"), 1);
        assert_eq!(
            std::fs::read(&p).expect("read"),
            whole,
            "the torn record was cut"
        );
        // The boundary right after a record's length field: the checksum and body never came.
        let p = dir.path().join("b.log");
        {
            let mut l = FramedLog::open(&p, b"QVTEST01", false, &mut none).expect("open");
            l.append(&[7u8; 508 - 16 - 8]).expect("append");
        }
        let mut torn = std::fs::read(&p).expect("read");
        assert_eq!(torn.len(), 508);
        torn.extend_from_slice(&300u32.to_le_bytes());
        torn.extend_from_slice(&[0u8; 4 + 300]);
        std::fs::write(&p, &torn).expect("write");
        assert_eq!(open_writable(&p).expect("torn, not damage"), 1);
        assert_eq!(std::fs::read(&p).expect("read").len(), 508);
    }

    /// A final record whose first sector never arrived while its second did (sectors written
    /// out of order): zeros from its start to the sector's end, then the record's tail. Torn,
    /// and cut; with an intact record after it, the same bytes are damage. One zero byte (the
    /// length's lowest, alone in the first sector) is too little to tell from damage.
    #[test]
    fn a_final_record_whose_first_sector_never_arrived_is_torn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut none = |_: u64, _: &[u8]| Ok(());
        for start in [400usize, 509, 510, 511] {
            let p = dir.path().join(format!("s{start}.log"));
            {
                let mut l = FramedLog::open(&p, b"QVTEST01", false, &mut none).expect("open");
                l.append(&vec![7u8; start - 16 - 8]).expect("append");
            }
            let whole = std::fs::read(&p).expect("read");
            assert_eq!(whole.len(), start);
            let body: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8 + 1).collect();
            let mut torn = whole.clone();
            torn.extend_from_slice(&(body.len() as u32).to_le_bytes());
            torn.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
            torn.extend_from_slice(&body);
            torn[start..512].fill(0);
            std::fs::write(&p, &torn).expect("write");
            if start == 511 {
                assert!(open_writable(&p).is_err());
                assert_eq!(std::fs::read(&p).expect("read"), torn, "nothing cut");
                continue;
            }
            assert_eq!(open_writable(&p).expect("torn, not damage"), 1, "{start}");
            assert_eq!(std::fs::read(&p).expect("read"), whole, "cut, {start}");
            // An intact record after the same zeros: a damaged length, refused, nothing cut.
            let mut damaged = torn.clone();
            damaged.extend_from_slice(&whole[HEADER as usize..]);
            std::fs::write(&p, &damaged).expect("write");
            assert!(open_writable(&p).is_err(), "{start}");
            assert_eq!(
                std::fs::read(&p).expect("read"),
                damaged,
                "nothing cut, {start}"
            );
        }
    }
}
