//! Append-only files of checksummed records, used for checkpoints and receipts.
//!
//! Header (16 bytes): magic (8) | version u16 = 1 | 2 reserved zero bytes | crc32c u32 of bytes
//! 0..12. Each record: `len u32 | crc32c(body) u32 | body`. A final record that runs past the end
//! of the file is a torn write and is cut off when the file is opened for writing; any other
//! mismatch is a typed corruption error naming the file and offset.

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
        if file_len == 0 && !read_only {
            log.file
                .write_all_at(&header(magic), 0)
                .map_err(|e| LedgerError::io(path, e))?;
            log.len = HEADER;
            return Ok(log);
        }
        log.len = match log.scan(each) {
            Ok(end) => end,
            // Read-only audits open damaged files too; the audit rescans and reports the damage.
            Err(e) if read_only && e.is_corruption() => file_len,
            Err(e) => return Err(e),
        };
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

    /// Reads every record; returns the end of the last whole record.
    pub(crate) fn scan(&self, each: &mut dyn FnMut(u64, &[u8]) -> Result<()>) -> Result<u64> {
        let file_len = self.file_len()?;
        let mut h = [0u8; 16];
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
                break; // torn final record
            }
            body.resize(n as usize, 0);
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
}
