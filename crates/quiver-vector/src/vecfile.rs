//! Vector files: a 64-byte header, then fixed-stride rows padded to 64-byte alignment.
//! Written by appending ([`VecFileWriter`]), read through a memory map ([`VecFile`]).
//! Byte layout: `docs/format/vectors.md`. All integers little-endian.

use crate::{Result, VectorError};
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File magic, bytes 0..8.
pub const MAGIC: [u8; 8] = *b"QVVECTRS";
/// Current format version.
pub const VERSION: u32 = 1;
/// Header size; rows start here.
pub const HEADER_LEN: usize = 64;
/// Row alignment in bytes.
pub const ALIGN: usize = 64;

/// Element type of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElemType {
    /// 32-bit IEEE float (code 1).
    F32,
    /// Unsigned byte, e.g. SQ8 codes (code 2).
    U8,
}

impl ElemType {
    /// On-disk code.
    pub fn code(self) -> u32 {
        match self {
            ElemType::F32 => 1,
            ElemType::U8 => 2,
        }
    }
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 => 4,
            ElemType::U8 => 1,
        }
    }
    fn from_code(c: u32) -> Option<ElemType> {
        match c {
            1 => Some(ElemType::F32),
            2 => Some(ElemType::U8),
            _ => None,
        }
    }
}

/// Bytes per row: `dim * size` rounded up to a multiple of [`ALIGN`].
pub fn row_stride(dim: usize, elem: ElemType) -> usize {
    (dim * elem.size()).div_ceil(ALIGN) * ALIGN
}

struct Header {
    elem: ElemType,
    dim: u32,
    stride: u32,
    count: u64,
    data_crc: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.elem.code().to_le_bytes());
        h[16..20].copy_from_slice(&self.dim.to_le_bytes());
        h[20..24].copy_from_slice(&self.stride.to_le_bytes());
        h[24..32].copy_from_slice(&self.count.to_le_bytes());
        h[32..36].copy_from_slice(&self.data_crc.to_le_bytes());
        let crc = crc32c::crc32c(&h[0..36]);
        h[36..40].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn decode(path: &Path, h: &[u8]) -> Result<Header> {
        let corrupt = |offset: u64, reason: String| VectorError::Corruption {
            file: path.to_path_buf(),
            offset,
            reason,
        };
        if h.len() < HEADER_LEN {
            return Err(corrupt(
                0,
                format!(
                    "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
                    h.len()
                ),
            ));
        }
        if h[0..8] != MAGIC {
            return Err(corrupt(0, "bad magic: not a quiver vector file".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let version = u32_at(8);
        if version != VERSION {
            return Err(corrupt(
                8,
                format!("unsupported version {version}, expected {VERSION}"),
            ));
        }
        let crc = u32_at(36);
        let want = crc32c::crc32c(&h[0..36]);
        if crc != want {
            return Err(corrupt(
                36,
                format!("header checksum mismatch: expected {want:#010x}, got {crc:#010x}"),
            ));
        }
        let elem = ElemType::from_code(u32_at(12))
            .ok_or_else(|| corrupt(12, format!("unknown element type {}", u32_at(12))))?;
        let dim = u32_at(16);
        let stride = u32_at(20);
        if dim == 0 || stride as usize != row_stride(dim as usize, elem) {
            return Err(corrupt(
                16,
                format!("dim {dim} and row stride {stride} do not agree"),
            ));
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&h[24..32]);
        Ok(Header {
            elem,
            dim,
            stride,
            count: u64::from_le_bytes(c),
            data_crc: u32_at(32),
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VectorError + '_ {
    move |source| VectorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends rows to a vector file. The header (count, data checksum) is rewritten by
/// [`VecFileWriter::finish`]; until then the file reads as corrupted (length ≠ header).
pub struct VecFileWriter {
    path: PathBuf,
    file: std::io::BufWriter<File>,
    elem: ElemType,
    dim: usize,
    count: u64,
    crc: u32,
    pad: Vec<u8>,
}

impl VecFileWriter {
    /// Creates (truncates) `path` for rows of `dim` elements of type `elem`.
    pub fn create(path: impl AsRef<Path>, dim: usize, elem: ElemType) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if dim == 0 || dim > u32::MAX as usize / 4 {
            return Err(VectorError::InvalidParameter {
                name: "dim",
                reason: format!("{dim} is out of range"),
            });
        }
        let mut file = File::create(&path).map_err(io_err(&path))?;
        let h = Header {
            elem,
            dim: dim as u32,
            stride: row_stride(dim, elem) as u32,
            count: 0,
            data_crc: 0,
        };
        file.write_all(&h.encode()).map_err(io_err(&path))?;
        Ok(VecFileWriter {
            pad: vec![0u8; row_stride(dim, elem) - dim * elem.size()],
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            path,
            elem,
            dim,
            count: 0,
            crc: 0,
        })
    }

    /// Opens an existing, finished file to append more rows (its checksum is verified first).
    pub fn append_to(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (h, crc) = {
            let f = VecFile::open(&path)?;
            (
                Header {
                    elem: f.elem,
                    dim: f.dim as u32,
                    stride: f.stride as u32,
                    count: f.len as u64,
                    data_crc: 0,
                },
                f.data_crc,
            )
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        let dim = h.dim as usize;
        Ok(VecFileWriter {
            pad: vec![0u8; row_stride(dim, h.elem) - dim * h.elem.size()],
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            path,
            elem: h.elem,
            dim,
            count: h.count,
            crc,
        })
    }

    fn write_row(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.crc = crc32c::crc32c_append(self.crc, &self.pad);
        self.file.write_all(bytes).map_err(io_err(&self.path))?;
        self.file.write_all(&self.pad).map_err(io_err(&self.path))?;
        self.count += 1;
        Ok(())
    }

    /// Appends one f32 row (the file must hold f32; length must equal `dim`).
    pub fn append_f32(&mut self, row: &[f32]) -> Result<()> {
        if self.elem != ElemType::F32 {
            return Err(VectorError::InvalidParameter {
                name: "elem",
                reason: "file holds u8 rows, not f32".into(),
            });
        }
        // Every search over the file assumes finite rows (a NaN distance would drop the row).
        crate::distance::validate(row, self.dim)?;
        let mut bytes = Vec::with_capacity(row.len() * 4);
        row.iter()
            .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
        self.write_row(&bytes)
    }

    /// Appends one u8 row (the file must hold u8; length must equal `dim`).
    pub fn append_u8(&mut self, row: &[u8]) -> Result<()> {
        if self.elem != ElemType::U8 {
            return Err(VectorError::InvalidParameter {
                name: "elem",
                reason: "file holds f32 rows, not u8".into(),
            });
        }
        if row.len() != self.dim {
            return Err(VectorError::DimensionMismatch {
                expected: self.dim,
                got: row.len(),
            });
        }
        self.write_row(row)
    }

    /// Rows written so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no row was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Flushes the rows, rewrites the header with count and checksum, and fsyncs.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let mut file = self.file.into_inner().map_err(|e| VectorError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        let h = Header {
            elem: self.elem,
            dim: self.dim as u32,
            stride: row_stride(self.dim, self.elem) as u32,
            count: self.count,
            data_crc: self.crc,
        };
        file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
        file.write_all(&h.encode()).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        Ok(())
    }
}

/// A memory-mapped, validated vector file.
pub struct VecFile {
    path: PathBuf,
    map: Mmap,
    elem: ElemType,
    dim: usize,
    stride: usize,
    len: usize,
    data_crc: u32,
}

impl std::fmt::Debug for VecFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecFile")
            .field("path", &self.path)
            .field("dim", &self.dim)
            .field("len", &self.len)
            .finish()
    }
}

#[expect(unsafe_code, reason = "memory-mapping a file")]
fn map_file(path: &Path, file: &File) -> Result<Mmap> {
    // SAFETY: the map is read-only and private to this process; quiver never writes to a
    // finished vector file in place (appends go through a new writer, and readers reopen).
    // As with every mmap, a concurrent external truncation could fault; that is outside the
    // contract of the data directory.
    unsafe { Mmap::map(file) }.map_err(io_err(path))
}

/// Maps `path` read-only (a zero-length file maps to an empty slice).
pub(crate) fn map_readonly(path: &Path) -> Result<(Mmap, u64)> {
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    Ok((map_file(path, &file)?, len))
}

impl VecFile {
    /// Maps and validates `path`: magic, version, header checksum, length against the row
    /// count, and the checksum of the row bytes. Any mismatch is [`VectorError::Corruption`].
    pub fn open(path: impl AsRef<Path>) -> Result<VecFile> {
        let path = path.as_ref().to_path_buf();
        let (map, file_len) = map_readonly(&path)?;
        let h = Header::decode(&path, &map)?;
        let stride = h.stride as usize;
        let want = (h.count as u128) * (stride as u128) + HEADER_LEN as u128;
        if want != file_len as u128 {
            return Err(VectorError::Corruption {
                file: path,
                offset: file_len.min(want as u64),
                reason: format!(
                    "file is {file_len} bytes but the header's {} rows need {want}",
                    h.count
                ),
            });
        }
        let crc = crc32c::crc32c(&map[HEADER_LEN..]);
        if crc != h.data_crc {
            return Err(VectorError::Corruption {
                file: path,
                offset: HEADER_LEN as u64,
                reason: format!(
                    "row data checksum mismatch: expected {:#010x}, got {crc:#010x}",
                    h.data_crc
                ),
            });
        }
        Ok(VecFile {
            path,
            map,
            elem: h.elem,
            dim: h.dim as usize,
            stride,
            len: h.count as usize,
            data_crc: crc,
        })
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Element type of the rows.
    pub fn elem(&self) -> ElemType {
        self.elem
    }
    /// Elements per row.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the file holds no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Distance between row starts, in elements.
    pub fn stride_elems(&self) -> usize {
        self.stride / self.elem.size()
    }

    /// All row bytes (rows are `stride` bytes apart, each 64-byte aligned).
    pub fn data_bytes(&self) -> &[u8] {
        &self.map[HEADER_LEN..]
    }

    /// All rows as f32 (with padding), or an error if the file holds another type.
    pub fn f32_data(&self) -> Result<&[f32]> {
        if self.elem != ElemType::F32 {
            return Err(VectorError::InvalidParameter {
                name: "elem",
                reason: "file holds u8 rows, not f32".into(),
            });
        }
        if cfg!(target_endian = "big") {
            return Err(VectorError::InvalidParameter {
                name: "host",
                reason: "vector files are little-endian; big-endian hosts are not supported".into(),
            });
        }
        bytemuck::try_cast_slice(self.data_bytes()).map_err(|e| VectorError::Corruption {
            file: self.path.clone(),
            offset: HEADER_LEN as u64,
            reason: format!("row data not castable to f32: {e}"),
        })
    }

    /// Row `i` as f32, `None` past the end or for a u8 file.
    pub fn row_f32(&self, i: usize) -> Option<&[f32]> {
        let s = self.stride_elems();
        self.f32_data().ok()?.get(i * s..i * s + self.dim)
    }

    /// Row `i` as u8, `None` past the end or for an f32 file.
    pub fn row_u8(&self, i: usize) -> Option<&[u8]> {
        if self.elem != ElemType::U8 {
            return None;
        }
        self.data_bytes()
            .get(i * self.stride..i * self.stride + self.dim)
    }
}
