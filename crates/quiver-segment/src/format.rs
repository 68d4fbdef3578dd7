//! Byte layout of segment files (spec: `docs/format/segment.md`). All integers little-endian.

use quiver_core::{Id, SeqNo};

/// Magic at the start of every segment file.
pub(crate) const HEADER_MAGIC: [u8; 8] = *b"QVSEGMT\0";
/// Magic at the very end of every segment file.
pub(crate) const FOOTER_MAGIC: [u8; 8] = *b"QVSEGEND";
/// Format version written and read by this build.
pub(crate) const VERSION: u32 = 1;
/// Header: magic (8), version u32, CRC32C of the first 12 bytes u32.
pub(crate) const HEADER_LEN: usize = 16;
/// Footer size in bytes (see [`Footer`]).
pub(crate) const FOOTER_LEN: usize = 136;
/// Size of one block-index entry.
pub(crate) const BLOCK_HANDLE_LEN: usize = 60;
/// Largest uncompressed block (format limit; protects readers from absurd allocations).
pub(crate) const MAX_BLOCK_RAW: usize = 256 << 20;
// Any record the write path accepts fits in one block (a row is a u32 length and the body).
const _: () = assert!(4 + quiver_core::codec::MAX_ENCODED_BYTES <= MAX_BLOCK_RAW);
// The engine's configuration refuses larger blocks up front (`DbConfig::validate`).
const _: () = assert!(MAX_BLOCK_RAW == quiver_core::config::MAX_BLOCK_BYTES);
/// Target size of one id-index block.
pub(crate) const ID_INDEX_BLOCK_BYTES: usize = 4096;

/// Block codec byte values.
pub(crate) const CODEC_NONE: u8 = 0;
pub(crate) const CODEC_LZ4: u8 = 1;
pub(crate) const CODEC_ZSTD: u8 = 2;

/// Block flag: at least one row of the block carries a timestamp.
pub(crate) const BLOCK_HAS_TS: u8 = 1;
/// Footer flag: at least one row of the segment carries a timestamp.
pub(crate) const FOOTER_HAS_TS: u32 = 1;
/// Footer flag: no row of the segment is a tombstone. (Files written before the flag existed
/// lack it and so count as possibly holding tombstones.)
pub(crate) const FOOTER_NO_TOMBSTONES: u32 = 2;

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends the key encoding of an id: tag 0 + u64, or tag 1 + u32 length + UTF-8.
/// This is the id encoding of the entry codec, so keys hash the same everywhere.
pub(crate) fn put_key(out: &mut Vec<u8>, id: &Id) {
    put_key_ref(out, id.into())
}

/// [`put_key`] for a borrowed id.
pub(crate) fn put_key_ref(out: &mut Vec<u8>, id: crate::rowkey::IdRef<'_>) {
    use crate::rowkey::IdRef;
    match id {
        IdRef::U64(v) => {
            out.push(0);
            put_u64(out, v);
        }
        IdRef::Str(s) => {
            out.push(1);
            put_u32(out, s.len() as u32);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// A bounds-checked little-endian reader over a byte slice. Errors carry the position.
pub(crate) struct Cur<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cur { buf, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], usize> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(self.pos)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], usize> {
        let at = self.pos;
        self.take(N)?.try_into().map_err(|_| at)
    }
    pub fn u8(&mut self) -> Result<u8, usize> {
        Ok(self.arr::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, usize> {
        self.arr().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Result<u32, usize> {
        self.arr().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Result<u64, usize> {
        self.arr().map(u64::from_le_bytes)
    }
    pub fn i64(&mut self) -> Result<i64, usize> {
        self.arr().map(i64::from_le_bytes)
    }
    /// Reads a key written by [`put_key`].
    pub fn key(&mut self) -> Result<Id, usize> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(Id::U64(self.u64()?)),
            1 => {
                let n = self.u32()? as usize;
                let b = self.take(n)?;
                let s = std::str::from_utf8(b).map_err(|_| at)?;
                Ok(Id::Str(s.to_owned()))
            }
            _ => Err(at),
        }
    }
}

/// One entry of the block index: where a data block lies and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub crc: u32,
    pub codec: u8,
    pub flags: u8,
    pub rows: u32,
    pub min_seq: SeqNo,
    pub max_seq: SeqNo,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl BlockHandle {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.offset);
        put_u32(out, self.stored_len);
        put_u32(out, self.raw_len);
        put_u32(out, self.crc);
        out.push(self.codec);
        out.push(self.flags);
        out.extend_from_slice(&0u16.to_le_bytes());
        put_u32(out, self.rows);
        put_u64(out, self.min_seq);
        put_u64(out, self.max_seq);
        put_i64(out, self.min_ts);
        put_i64(out, self.max_ts);
    }
    pub fn decode(c: &mut Cur<'_>) -> Result<(Self, u16), usize> {
        let offset = c.u64()?;
        let stored_len = c.u32()?;
        let raw_len = c.u32()?;
        let crc = c.u32()?;
        let codec = c.u8()?;
        let flags = c.u8()?;
        let reserved = c.u16()?;
        let h = BlockHandle {
            offset,
            stored_len,
            raw_len,
            crc,
            codec,
            flags,
            rows: c.u32()?,
            min_seq: c.u64()?,
            max_seq: c.u64()?,
            min_ts: c.i64()?,
            max_ts: c.i64()?,
        };
        Ok((h, reserved))
    }
    pub fn has_ts(&self) -> bool {
        self.flags & BLOCK_HAS_TS != 0
    }
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.stored_len)
    }
}

/// One entry of the id directory: an id-index block and the first key it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
    pub count: u32,
    pub first: Id,
}

impl DirEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.offset);
        put_u32(out, self.len);
        put_u32(out, self.crc);
        put_u32(out, self.count);
        put_key(out, &self.first);
    }
    pub fn decode(c: &mut Cur<'_>) -> Result<Self, usize> {
        Ok(DirEntry {
            offset: c.u64()?,
            len: c.u32()?,
            crc: c.u32()?,
            count: c.u32()?,
            first: c.key()?,
        })
    }
}

/// The fixed-size footer at the end of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub id_index_offset: u64,
    pub id_dir_offset: u64,
    pub id_dir_len: u64,
    pub block_index_offset: u64,
    pub block_index_len: u64,
    pub bloom_offset: u64,
    pub bloom_len: u64,
    pub id_dir_crc: u32,
    pub block_index_crc: u32,
    pub bloom_crc: u32,
    pub flags: u32,
    pub rows: u64,
    pub distinct_ids: u64,
    pub min_seq: SeqNo,
    pub max_seq: SeqNo,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl Footer {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        for v in [
            self.id_index_offset,
            self.id_dir_offset,
            self.id_dir_len,
            self.block_index_offset,
            self.block_index_len,
            self.bloom_offset,
            self.bloom_len,
        ] {
            put_u64(&mut out, v);
        }
        for v in [
            self.id_dir_crc,
            self.block_index_crc,
            self.bloom_crc,
            self.flags,
        ] {
            put_u32(&mut out, v);
        }
        for v in [self.rows, self.distinct_ids, self.min_seq, self.max_seq] {
            put_u64(&mut out, v);
        }
        put_i64(&mut out, self.min_ts);
        put_i64(&mut out, self.max_ts);
        put_u32(&mut out, VERSION);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        out.extend_from_slice(&FOOTER_MAGIC);
        out
    }

    /// Decodes the footer fields (magic, version and CRC are checked by the caller).
    pub fn decode(b: &[u8]) -> Result<Self, usize> {
        let mut c = Cur::new(b);
        Ok(Footer {
            id_index_offset: c.u64()?,
            id_dir_offset: c.u64()?,
            id_dir_len: c.u64()?,
            block_index_offset: c.u64()?,
            block_index_len: c.u64()?,
            bloom_offset: c.u64()?,
            bloom_len: c.u64()?,
            id_dir_crc: c.u32()?,
            block_index_crc: c.u32()?,
            bloom_crc: c.u32()?,
            flags: c.u32()?,
            rows: c.u64()?,
            distinct_ids: c.u64()?,
            min_seq: c.u64()?,
            max_seq: c.u64()?,
            min_ts: c.i64()?,
            max_ts: c.i64()?,
        })
    }
}

/// The 16-byte header.
pub(crate) fn encode_header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&HEADER_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_is_fixed_size_and_roundtrips() {
        let f = Footer {
            id_index_offset: 1,
            id_dir_offset: 2,
            id_dir_len: 3,
            block_index_offset: 4,
            block_index_len: 5,
            bloom_offset: 6,
            bloom_len: 7,
            id_dir_crc: 8,
            block_index_crc: 9,
            bloom_crc: 10,
            flags: 1,
            rows: 11,
            distinct_ids: 12,
            min_seq: 13,
            max_seq: 14,
            min_ts: -15,
            max_ts: 16,
        };
        let b = f.encode();
        assert_eq!(b.len(), FOOTER_LEN);
        assert_eq!(Footer::decode(&b).unwrap(), f);
        assert_eq!(&b[FOOTER_LEN - 8..], &FOOTER_MAGIC);
    }

    #[test]
    fn block_handle_is_fixed_size_and_roundtrips() {
        let h = BlockHandle {
            offset: 16,
            stored_len: 100,
            raw_len: 200,
            crc: 0xdead_beef,
            codec: CODEC_ZSTD,
            flags: BLOCK_HAS_TS,
            rows: 3,
            min_seq: 4,
            max_seq: 6,
            min_ts: i64::MIN,
            max_ts: i64::MAX,
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out.len(), BLOCK_HANDLE_LEN);
        assert_eq!(BlockHandle::decode(&mut Cur::new(&out)).unwrap(), (h, 0));
    }

    #[test]
    fn keys_roundtrip_and_reject_garbage() {
        for id in [Id::U64(0), Id::U64(u64::MAX), Id::from("héllo")] {
            let mut out = Vec::new();
            put_key(&mut out, &id);
            let mut c = Cur::new(&out);
            assert_eq!(c.key().unwrap(), id);
            assert!(c.is_empty());
            for n in 0..out.len() {
                assert!(Cur::new(&out[..n]).key().is_err());
            }
        }
        assert!(Cur::new(&[2, 0, 0]).key().is_err());
        assert!(Cur::new(&[1, 1, 0, 0, 0, 0xff]).key().is_err());
    }
}
