//! The IVF-PQ file: header, sections, CRC-32 footer (spec: `docs/format/quantization.md`).
//! Little-endian throughout. Loading checks the size, the magic, the version, the checksum
//! and every count and offset before use: a truncated or corrupted file is a
//! [`VectorError::Corruption`], never a panic.

use super::crc32::crc32;
use super::IvfPqIndex;
use crate::quant::pq::KSUB;
use crate::quant::ProductQuantizer;
use crate::{Metric, Result, VectorError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// First 8 bytes of every IVF-PQ file.
pub const MAGIC: [u8; 8] = *b"QVIVFPQ\0";
/// Last 4 bytes of every IVF-PQ file.
pub const END_MAGIC: [u8; 4] = *b"QVPQ";
/// Current format version.
pub const VERSION: u32 = 1;
/// Fixed header length in bytes.
pub const HEADER_LEN: usize = 40;
/// Footer: CRC-32 of everything before it, then [`END_MAGIC`].
pub const FOOTER_LEN: usize = 8;

fn metric_code(m: Metric) -> u8 {
    match m {
        Metric::L2 => 0,
        Metric::Dot => 1,
        Metric::Cosine => 2,
    }
}

impl IvfPqIndex {
    /// Serialises the index to bytes (see the format spec).
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.ids.len();
        let mut out = Vec::with_capacity(self.index_bytes() + HEADER_LEN + FOOTER_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(metric_code(self.metric));
        out.push(8); // nbits
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(self.nlist() as u32).to_le_bytes());
        out.extend_from_slice(&(self.pq.m() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        for x in &self.centroids {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in self.pq.centroids() {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in &self.offsets {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in &self.ids {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.codes);
        for x in &self.l2_terms {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&END_MAGIC);
        out
    }

    /// Writes the index to `path` (through a temporary file, fsynced, then renamed).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |source| VectorError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("ivfpq-tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&self.to_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads an index written by [`save`](Self::save).
    ///
    /// Errors: `Io` when the file cannot be read; `Corruption` (with the byte offset) when it
    /// is truncated, has a wrong magic, version or checksum, or inconsistent counts.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| VectorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses [`to_bytes`](Self::to_bytes) output; `file` names the source in errors.
    pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<Self> {
        let bad = |offset: usize, reason: String| VectorError::Corruption {
            file: file.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        if bytes.len() < HEADER_LEN + FOOTER_LEN {
            return Err(bad(
                bytes.len(),
                format!(
                    "truncated: {} bytes is shorter than header and footer",
                    bytes.len()
                ),
            ));
        }
        if bytes[..8] != MAGIC {
            return Err(bad(0, "not an IVF-PQ file (bad magic)".into()));
        }
        let body_end = bytes.len() - FOOTER_LEN;
        if bytes[body_end + 4..] != END_MAGIC {
            return Err(bad(
                body_end + 4,
                "truncated or corrupted footer (bad end magic)".into(),
            ));
        }
        let mut r = Reader {
            bytes: &bytes[..body_end],
            pos: 8,
            file,
        };
        let version = r.u32()?;
        if version != VERSION {
            return Err(bad(
                8,
                format!("unsupported format version {version} (this build reads {VERSION})"),
            ));
        }
        let stored_crc = u32::from_le_bytes([
            bytes[body_end],
            bytes[body_end + 1],
            bytes[body_end + 2],
            bytes[body_end + 3],
        ]);
        let crc = crc32(&bytes[..body_end]);
        if crc != stored_crc {
            return Err(bad(
                body_end,
                format!("checksum mismatch: expected {stored_crc:#010x}, got {crc:#010x}"),
            ));
        }
        let metric = match r.u8()? {
            0 => Metric::L2,
            1 => Metric::Dot,
            2 => Metric::Cosine,
            other => return Err(bad(12, format!("unknown metric code {other}"))),
        };
        let nbits = r.u8()?;
        if nbits != 8 {
            return Err(bad(13, format!("unsupported nbits {nbits} (only 8)")));
        }
        r.take(2)?;
        let dim = r.u32()? as usize;
        let nlist = r.u32()? as usize;
        let m = r.u32()? as usize;
        r.take(4)?;
        let n = usize::try_from(r.u64()?).map_err(|_| bad(32, "vector count overflows".into()))?;
        if dim == 0 || m == 0 || !dim.is_multiple_of(m) || nlist == 0 || n > u32::MAX as usize {
            return Err(bad(
                16,
                format!("inconsistent header: dim {dim}, nlist {nlist}, m {m}, n {n}"),
            ));
        }
        let centroids = r.f32s(nlist.checked_mul(dim))?;
        let pq_centroids = r.f32s(KSUB.checked_mul(dim))?;
        let offsets_at = r.pos;
        let offsets = r.u64s(nlist.checked_add(1))?;
        if offsets.first() != Some(&0)
            || offsets.last() != Some(&(n as u64))
            || offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad(
                offsets_at,
                "inverted list offsets are not a non-decreasing 0..=n range".into(),
            ));
        }
        let ids_at = r.pos;
        let ids = r.u32s(Some(n))?;
        if let Some(i) = ids.iter().position(|&id| id as usize >= n) {
            return Err(bad(
                ids_at + 4 * i,
                format!("id {} out of range 0..{n}", ids[i]),
            ));
        }
        let codes = r.take_len(n.checked_mul(m))?.to_vec();
        let l2_terms = r.f32s(Some(if metric == Metric::L2 { n } else { 0 }))?;
        if r.pos != body_end {
            return Err(bad(
                r.pos,
                format!("{} unexpected trailing bytes", body_end - r.pos),
            ));
        }
        if centroids
            .iter()
            .chain(&pq_centroids)
            .chain(&l2_terms)
            .any(|x| !x.is_finite())
        {
            return Err(bad(HEADER_LEN, "non-finite centroid or term".into()));
        }
        Ok(IvfPqIndex::from_parts(
            dim,
            metric,
            centroids,
            ProductQuantizer::from_centroids(dim, m, Metric::L2, pq_centroids),
            offsets,
            ids,
            codes,
            l2_terms,
        ))
    }
}

/// Bounds-checked little-endian cursor over the file body.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    file: &'a Path,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, reason: String) -> VectorError {
        VectorError::Corruption {
            file: PathBuf::from(self.file),
            offset: self.pos as u64,
            reason,
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.corrupt(format!(
                "truncated: need {len} bytes, {} left",
                self.bytes.len() - self.pos
            ))),
        }
    }

    /// `take` for a computed length that may have overflowed (`None`).
    fn take_len(&mut self, len: Option<usize>) -> Result<&'a [u8]> {
        match len {
            Some(len) => self.take(len),
            None => Err(self.corrupt("section length overflows".into())),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn f32s(&mut self, count: Option<usize>) -> Result<Vec<f32>> {
        let b = self.take_len(count.and_then(|c| c.checked_mul(4)))?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn u32s(&mut self, count: Option<usize>) -> Result<Vec<u32>> {
        let b = self.take_len(count.and_then(|c| c.checked_mul(4)))?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn u64s(&mut self, count: Option<usize>) -> Result<Vec<u64>> {
        let b = self.take_len(count.and_then(|c| c.checked_mul(8)))?;
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect())
    }
}
