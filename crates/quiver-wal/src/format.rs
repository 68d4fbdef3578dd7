//! Byte layout of WAL files (spec: `docs/format/wal.md`).
//!
//! ```text
//! header (40 bytes)
//!   0  magic       [u8; 8]  b"QVRWAL\r\n"
//!   8  version     u32 LE   2
//!  12  flags       u32 LE   0 (reserved)
//!  16  first_seq   u64 LE   seq of the first record this file holds (= the file name)
//!  24  prev_seq    u64 LE   last seq of the preceding WAL file when this one was created (0: none)
//!  32  header_crc  u32 LE   CRC32C of bytes 0..32
//!  36  reserved    u32 LE   0
//! commit groups, back to back from byte 40; 8 zero bytes at a group's place (and only zeros
//! after them) = end of data
//!   group header (40 bytes)
//!     0  magic      [u8; 4]  b"QGRP"
//!     4  frames     u32 LE   number of frames in the group (>= 1)
//!     8  first_seq  u64 LE   seq of the group's first frame
//!    16  bytes      u64 LE   bytes of the group's frames, which follow the header
//!    24  durable    u64 LE   the file was durable up to this offset when the group was written
//!    32  flags      u32 LE   bit 0: written by a syncing log (acknowledged once durable, the
//!                            next group written only after that); other bits 0
//!    36  crc        u32 LE   CRC32C of bytes 0..36
//!   frames, back to back
//!     len   u32 LE   body length (>= 8)
//!     crc   u32 LE   CRC32C of the whole body
//!     body  [u8; len]  first 8 bytes: the record's seq (u64 LE)
//! ```

use crate::error::{Result, WalError};
use quiver_core::SeqNo;

/// File magic: the first 8 bytes of every WAL file.
pub const MAGIC: [u8; 8] = *b"QVRWAL\r\n";
/// Current format version (2: frames in commit groups, each behind a group header). New files
/// are written in it.
pub const VERSION: u32 = 2;
/// The first format version, frames back to back with no group headers (before 2026-11-22):
/// still read, never appended to.
pub const VERSION_1: u32 = 1;
/// Size of the file header.
pub const HEADER_LEN: usize = 40;
/// Size of a commit group's header.
pub const GROUP_HEADER_LEN: usize = 40;
/// First bytes of every group header.
pub const GROUP_MAGIC: [u8; 4] = *b"QGRP";
/// Size of a frame header (`len` + `crc`).
pub const FRAME_HEADER_LEN: usize = 8;
/// Smallest legal body: the 8-byte seq prefix.
pub const MIN_BODY: usize = quiver_core::codec::SEQ_PREFIX;
/// Largest legal body.
pub const MAX_BODY: usize = u32::MAX as usize;
/// Largest seq a WAL file may start at; keeps every seq computation far from overflow.
pub const MAX_SEQ: SeqNo = 1 << 62;
/// Suffix of WAL file names.
pub const SUFFIX: &str = ".log";

/// The decoded header of a WAL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version: [`VERSION`], or [`VERSION_1`] in a file an earlier build wrote.
    pub version: u32,
    /// Seq of the first record of the file.
    pub first_seq: SeqNo,
    /// Last seq of the preceding file at creation time (0: none).
    pub prev_seq: SeqNo,
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        h[24..32].copy_from_slice(&self.prev_seq.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes and checks a header (`buf` holds at least [`HEADER_LEN`] bytes).
    pub fn decode(file: &str, buf: &[u8]) -> Result<Header> {
        let h = buf.get(..HEADER_LEN).ok_or_else(|| {
            WalError::corrupt(
                file,
                0,
                format!("file is {} bytes, shorter than the header", buf.len()),
            )
        })?;
        let magic: [u8; 8] = arr(&h[0..8]);
        if magic != MAGIC {
            return Err(WalError::BadMagic {
                file: file.to_string(),
                expected: MAGIC,
                got: magic,
            });
        }
        let version = u32::from_le_bytes(arr(&h[8..12]));
        if version != VERSION && version != VERSION_1 {
            return Err(WalError::UnsupportedVersion {
                file: file.to_string(),
                got: version,
                supported: VERSION,
            });
        }
        let expected = u32::from_le_bytes(arr(&h[32..36]));
        let got = crc32c::crc32c(&h[0..32]);
        if expected != got {
            return Err(WalError::corrupt(
                file,
                32,
                format!("header checksum mismatch: stored {expected:#010x}, computed {got:#010x}"),
            ));
        }
        if h[36..40] != [0; 4] {
            return Err(WalError::corrupt(
                file,
                36,
                "reserved header bytes are not zero",
            ));
        }
        let flags = u32::from_le_bytes(arr(&h[12..16]));
        if flags != 0 {
            return Err(WalError::corrupt(
                file,
                12,
                format!("unknown header flags {flags:#x}"),
            ));
        }
        let first_seq = u64::from_le_bytes(arr(&h[16..24]));
        let prev_seq = u64::from_le_bytes(arr(&h[24..32]));
        if first_seq == 0 || first_seq > MAX_SEQ || prev_seq >= first_seq {
            return Err(WalError::corrupt(
                file,
                16,
                format!("implausible header seqs: first {first_seq}, previous {prev_seq}"),
            ));
        }
        Ok(Header {
            version,
            first_seq,
            prev_seq,
        })
    }
}

/// The header of one commit group: the frames that one write appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHeader {
    /// Number of frames in the group (at least 1).
    pub frames: u32,
    /// Seq of the group's first frame; the others follow one by one.
    pub first_seq: SeqNo,
    /// Bytes of the group's frames (headers included), which follow this header.
    pub bytes: u64,
    /// The file was durable (synced) up to this byte offset when the group was written: the
    /// group's own offset under a syncing mode (every earlier group was synced before it was
    /// acknowledged), the last sync's under `SyncMode::None`. Recovery uses it to tell a write
    /// that never reached the disk from damage to data that had.
    pub durable: u64,
    /// Written by a log that syncs (`balanced`, `durable`): the group was acknowledged only
    /// once durable, and the next group was written only after that. So any record of a later
    /// group proves this one reached the disk whole.
    pub syncing: bool,
}

/// Bit of [`GroupHeader::syncing`] in the header's flags.
const GROUP_SYNCING: u32 = 1;

impl GroupHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; GROUP_HEADER_LEN] {
        let mut h = [0u8; GROUP_HEADER_LEN];
        h[0..4].copy_from_slice(&GROUP_MAGIC);
        h[4..8].copy_from_slice(&self.frames.to_le_bytes());
        h[8..16].copy_from_slice(&self.first_seq.to_le_bytes());
        h[16..24].copy_from_slice(&self.bytes.to_le_bytes());
        h[24..32].copy_from_slice(&self.durable.to_le_bytes());
        let flags = if self.syncing { GROUP_SYNCING } else { 0 };
        h[32..36].copy_from_slice(&flags.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..36]);
        h[36..40].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes a group header from the first [`GROUP_HEADER_LEN`] bytes of `buf`; `None` when
    /// they are not an intact one (too short, wrong magic or checksum, unknown flags, or
    /// fields no writer produces: no frames, fewer bytes than its frames need).
    pub fn decode(buf: &[u8]) -> Option<GroupHeader> {
        let h = buf.get(..GROUP_HEADER_LEN)?;
        if h[0..4] != GROUP_MAGIC
            || u32::from_le_bytes(arr(&h[36..40])) != crc32c::crc32c(&h[0..36])
        {
            return None;
        }
        let flags = u32::from_le_bytes(arr(&h[32..36]));
        if flags & !GROUP_SYNCING != 0 {
            return None;
        }
        let g = GroupHeader {
            frames: u32::from_le_bytes(arr(&h[4..8])),
            first_seq: u64::from_le_bytes(arr(&h[8..16])),
            bytes: u64::from_le_bytes(arr(&h[16..24])),
            durable: u64::from_le_bytes(arr(&h[24..32])),
            syncing: flags & GROUP_SYNCING != 0,
        };
        let least = g.frames as u64 * (FRAME_HEADER_LEN + MIN_BODY) as u64;
        (g.frames > 0 && g.bytes >= least && g.first_seq > 0 && g.first_seq <= MAX_SEQ).then_some(g)
    }
}

/// Copies a slice of known length into an array (callers slice exactly `N` bytes).
pub(crate) fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

/// The name of the WAL file whose first record has seq `first_seq`.
pub fn file_name(first_seq: SeqNo) -> String {
    format!("{first_seq:020}{SUFFIX}")
}

/// Parses a WAL file name back into its first seq; `None` for names that are not WAL files.
pub fn parse_file_name(name: &str) -> Option<SeqNo> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The frame header (`len`, `crc`) of `body`.
pub fn frame_header(body: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    h[4..].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    h
}

/// Appends one frame (`len`, `crc`, `body`) to `out`.
pub fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&frame_header(body));
    out.extend_from_slice(body);
}

/// Appends one commit group — its header, then a frame per body — to `out`, as the log writes
/// it at offset `out.len()`; `durable` and `syncing` are the header's fields of those names
/// (see [`GroupHeader`]). The bodies' seqs must already be stamped.
///
/// # Panics
/// If `bodies` is empty or holds more than `u32::MAX` bodies (a caller bug).
pub fn push_group(out: &mut Vec<u8>, bodies: &[&[u8]], durable: u64, syncing: bool) {
    let at = out.len();
    let first_seq = u64::from_le_bytes(arr(bodies[0]));
    out.extend_from_slice(&[0; GROUP_HEADER_LEN]);
    for b in bodies {
        push_frame(out, b);
    }
    let header = GroupHeader {
        frames: u32::try_from(bodies.len()).expect("at most u32::MAX bodies in a group"),
        first_seq,
        bytes: (out.len() - at - GROUP_HEADER_LEN) as u64,
        durable,
        syncing,
    };
    out[at..at + GROUP_HEADER_LEN].copy_from_slice(&header.encode());
}

/// Size of the frame holding a body of `body_len` bytes.
pub fn frame_len(body_len: usize) -> usize {
    FRAME_HEADER_LEN + body_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_checks() {
        let h = Header {
            version: VERSION,
            first_seq: 42,
            prev_seq: 41,
        };
        let b = h.encode();
        assert_eq!(Header::decode("x", &b).unwrap(), h);
        let mut bad = b;
        bad[0] ^= 1;
        assert!(matches!(
            Header::decode("x", &bad),
            Err(WalError::BadMagic { .. })
        ));
        let mut bad = b;
        bad[8] = 3;
        assert!(matches!(
            Header::decode("x", &bad),
            Err(WalError::UnsupportedVersion { got: 3, .. })
        ));
        let v1 = Header {
            version: VERSION_1,
            ..h
        };
        assert_eq!(Header::decode("x", &v1.encode()).unwrap(), v1);
        for i in (16..32).chain(36..40) {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert!(
                matches!(Header::decode("x", &bad), Err(WalError::Corruption { .. })),
                "{i}"
            );
        }
        assert!(matches!(
            Header::decode("x", &b[..10]),
            Err(WalError::Corruption { offset: 0, .. })
        ));
    }

    #[test]
    fn names() {
        assert_eq!(file_name(7), "00000000000000000007.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("7.log"), None);
        assert_eq!(parse_file_name("0000000000000000000x.log"), None);
        assert_eq!(parse_file_name("00000000000000000007.tmp"), None);
    }

    #[test]
    fn group_header_roundtrip_and_checks() {
        let g = GroupHeader {
            frames: 3,
            first_seq: 7,
            bytes: 3 * 20,
            durable: 4096,
            syncing: true,
        };
        let b = g.encode();
        assert_eq!(&b[0..4], b"QGRP");
        assert_eq!(GroupHeader::decode(&b), Some(g));
        assert_eq!(GroupHeader::decode(&b[..39]), None);
        for i in 0..GROUP_HEADER_LEN {
            let mut bad = b;
            bad[i] ^= 0x04;
            assert_eq!(GroupHeader::decode(&bad), None, "byte {i}");
        }
        // Intact checksums over fields no writer produces.
        for odd in [
            GroupHeader { frames: 0, ..g },
            GroupHeader {
                bytes: 3 * 16 - 1,
                ..g
            },
            GroupHeader { first_seq: 0, ..g },
        ] {
            assert_eq!(GroupHeader::decode(&odd.encode()), None, "{odd:?}");
        }
    }

    #[test]
    fn frame_layout() {
        let mut out = Vec::new();
        push_frame(&mut out, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(out.len(), frame_len(9));
        assert_eq!(&out[0..4], &9u32.to_le_bytes());
        assert_eq!(
            &out[4..8],
            &crc32c::crc32c(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).to_le_bytes()
        );
    }
}
