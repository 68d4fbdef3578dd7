//! Per-block compression: none, LZ4 (block format, no size prefix) or zstd level 3.

use crate::format::{CODEC_LZ4, CODEC_NONE, CODEC_ZSTD};
use quiver_core::Compression;

/// zstd level used for blocks.
const ZSTD_LEVEL: i32 = 3;

/// A block compressor for one segment write, reusing its zstd context across blocks.
pub(crate) struct BlockCompressor {
    kind: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl BlockCompressor {
    pub(crate) fn new(kind: Compression) -> Self {
        let zstd = match kind {
            Compression::Zstd => zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(),
            _ => None,
        };
        BlockCompressor { kind, zstd }
    }

    /// Compresses `raw`. Returns the codec byte actually used and the stored bytes: a block
    /// that does not shrink (or that the codec fails on) is stored raw (codec 0).
    pub(crate) fn compress(&mut self, raw: &[u8]) -> (u8, Vec<u8>) {
        let out = match self.kind {
            Compression::None => None,
            Compression::Lz4 => Some((CODEC_LZ4, lz4_flex::block::compress(raw))),
            Compression::Zstd => match &mut self.zstd {
                Some(z) => z.compress(raw).ok(),
                None => zstd::bulk::compress(raw, ZSTD_LEVEL).ok(),
            }
            .map(|v| (CODEC_ZSTD, v)),
        };
        match out {
            Some((codec, v)) if v.len() < raw.len() => (codec, v),
            _ => (CODEC_NONE, raw.to_vec()),
        }
    }
}

thread_local! {
    /// One zstd decompression context per reading thread (creating one per block is costly).
    static ZSTD_DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn zstd_decompress(stored: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    ZSTD_DCTX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            match slot.as_mut() {
                Some(d) => d.decompress(stored, raw_len),
                None => zstd::bulk::decompress(stored, raw_len),
            }
        }
        Err(_) => zstd::bulk::decompress(stored, raw_len),
    })
}

/// Decompresses a stored block to exactly `raw_len` bytes; `Err` explains why it could not.
pub(crate) fn decompress(codec: u8, stored: Vec<u8>, raw_len: usize) -> Result<Vec<u8>, String> {
    let out = match codec {
        CODEC_NONE => stored,
        CODEC_LZ4 => lz4_flex::block::decompress(&stored, raw_len)
            .map_err(|e| format!("LZ4 decompression failed: {e}"))?,
        CODEC_ZSTD => zstd_decompress(&stored, raw_len)
            .map_err(|e| format!("zstd decompression failed: {e}"))?,
        other => return Err(format!("unknown block codec {other}")),
    };
    if out.len() != raw_len {
        return Err(format!(
            "block decompressed to {} bytes, the block index says {raw_len}",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_each_codec_and_incompressible_fallback() {
        let text: Vec<u8> = b"quiver segment block "
            .iter()
            .copied()
            .cycle()
            .take(10_000)
            .collect();
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let (codec, stored) = BlockCompressor::new(c).compress(&text);
            if c != Compression::None {
                assert_ne!(codec, CODEC_NONE);
                assert!(stored.len() < text.len() / 4);
            }
            assert_eq!(decompress(codec, stored, text.len()).unwrap(), text);
        }
        // Pseudo-random bytes do not shrink: stored raw.
        let mut x = 0x1234_5678_9abc_def0u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (codec, stored) = BlockCompressor::new(Compression::Lz4).compress(&noise);
        assert_eq!(codec, CODEC_NONE);
        assert_eq!(stored, noise);
    }

    #[test]
    fn wrong_length_or_garbage_is_an_error() {
        let raw = vec![7u8; 1000];
        let (codec, stored) = BlockCompressor::new(Compression::Zstd).compress(&raw);
        assert!(decompress(codec, stored.clone(), 999).is_err());
        assert!(decompress(CODEC_LZ4, vec![0xff; 20], 1000).is_err());
        assert!(decompress(CODEC_ZSTD, vec![0xff; 20], 1000).is_err());
        assert!(decompress(9, stored, 1000).is_err());
    }
}
