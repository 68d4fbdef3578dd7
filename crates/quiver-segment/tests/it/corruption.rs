//! Damaged files: every flipped byte and every truncation is a typed error (or, for reads
//! that do not touch the damage, the exact original data) — never a panic.

use crate::common::{gen_rows, newest};
use proptest::prelude::*;
use quiver_core::Compression;
use quiver_segment::{write_segment, Segment, SegmentError, SegmentOptions};
use std::path::Path;

fn small_segment(dir: &Path, c: Compression) -> (Vec<Vec<u8>>, Vec<u8>) {
    let rows = gen_rows(21, 40, 1, 20);
    let path = dir.join("orig");
    write_segment(
        &path,
        rows.iter(),
        &SegmentOptions {
            block_bytes: 512,
            compression: c,
            ..Default::default()
        },
    )
    .unwrap();
    (rows, std::fs::read(&path).unwrap())
}

/// Opens `bytes` as a segment and reads it every way, stopping at the first error; checks
/// that whatever is returned without error is exactly the original data.
fn read_everything(path: &Path, rows: &[Vec<u8>]) -> Result<(), SegmentError> {
    let seg = Segment::open(path)?;
    for (i, r) in seg.iter().enumerate() {
        assert_eq!(
            r?, rows[i],
            "iteration returned a wrong row {i} instead of an error"
        );
    }
    for (id, body) in newest(rows) {
        match seg.get(&id)? {
            Some(b) => assert_eq!(b, body, "get({id}) returned wrong data"),
            None => panic!("get({id}) silently missed a present id"),
        }
    }
    for r in seg.scan_time_range(i64::MIN, i64::MAX) {
        r?;
    }
    seg.verify()
}

fn assert_corruption(e: &SegmentError, path: &Path, len: usize) {
    match e {
        SegmentError::Corruption {
            file,
            offset,
            reason,
        } => {
            assert_eq!(file, &path.display().to_string());
            assert!(
                *offset <= len as u64,
                "offset {offset} beyond file of {len} bytes ({reason})"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(file) && msg.contains(&offset.to_string()),
                "{msg}"
            );
        }
        SegmentError::UnsupportedVersion { .. } => {}
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

// The damaged copies are made in place (pwrite / ftruncate of one scratch file): rewriting a
// whole file with truncate-then-write makes ext4 flush it (auto_da_alloc), which is slow.

#[test]
fn every_single_byte_flip_is_detected() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged");
    for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let (rows, orig) = small_segment(dir.path(), c);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &orig).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert_eq!(read_everything(&path, &rows).ok(), Some(()));
        for i in 0..orig.len() {
            f.write_all_at(&[orig[i] ^ (1 << (i % 8))], i as u64)
                .unwrap();
            match read_everything(&path, &rows) {
                Ok(()) => panic!("{c:?}: flip at byte {i} of {} went unnoticed", orig.len()),
                Err(e) => assert_corruption(&e, &path, orig.len()),
            }
            f.write_all_at(&orig[i..=i], i as u64).unwrap();
        }
        assert_eq!(read_everything(&path, &rows).ok(), Some(()));
    }
}

/// Footer field `i` (a u64 at byte `8 * i` of the 136-byte footer) of a segment file.
fn footer_u64(b: &[u8], i: usize) -> usize {
    let f = &b[b.len() - 136..];
    u64::from_le_bytes(f[8 * i..8 * i + 8].try_into().unwrap()) as usize
}

#[test]
fn the_id_index_check_catches_every_flip_in_the_id_index() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let (_rows, orig) = small_segment(dir.path(), Compression::None);
    let (start, end) = (footer_u64(&orig, 0), footer_u64(&orig, 1));
    assert!(start < end, "the segment has an id index");
    let path = dir.path().join("damaged");
    std::fs::write(&path, &orig).unwrap();
    Segment::open(&path).unwrap().check_id_index().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for i in start..end {
        f.write_all_at(&[orig[i] ^ (1 << (i % 8))], i as u64)
            .unwrap();
        // Id-index blocks are read lazily: the file still opens.
        let e = Segment::open(&path).unwrap().check_id_index().unwrap_err();
        assert_corruption(&e, &path, orig.len());
        f.write_all_at(&orig[i..=i], i as u64).unwrap();
    }
}

/// An index entry redirected outside the data, with every checksum above it recomputed (the
/// id-index block's in the directory, the directory's and the footer's own), is still caught.
#[test]
fn an_index_entry_pointing_outside_the_data_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (_rows, mut b) = small_segment(dir.path(), Compression::None);
    let (start, dir_off, dir_len) = (footer_u64(&b, 0), footer_u64(&b, 1), footer_u64(&b, 2));
    // First entry of the first id-index block: key, seq u64, block u32, row u32.
    let key_len = match b[start] {
        0 => 9,
        _ => 5 + u32::from_le_bytes(b[start + 1..start + 5].try_into().unwrap()) as usize,
    };
    let block_at = start + key_len + 8;
    b[block_at..block_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    // Directory entry 0: offset u64, len u32, crc u32, ...
    let len = u32::from_le_bytes(b[dir_off + 8..dir_off + 12].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c(&b[start..start + len]);
    b[dir_off + 12..dir_off + 16].copy_from_slice(&crc.to_le_bytes());
    let dir_crc = crc32c::crc32c(&b[dir_off..dir_off + dir_len]);
    let foot = b.len() - 136;
    b[foot + 56..foot + 60].copy_from_slice(&dir_crc.to_le_bytes());
    let foot_crc = crc32c::crc32c(&b[foot..foot + 124]);
    b[foot + 124..foot + 128].copy_from_slice(&foot_crc.to_le_bytes());
    let path = dir.path().join("redirected");
    std::fs::write(&path, &b).unwrap();
    let e = Segment::open(&path)
        .expect("every checksum was recomputed")
        .check_id_index()
        .unwrap_err();
    assert_corruption(&e, &path, b.len());
    assert!(e.to_string().contains("points outside the data"), "{e}");
}

#[test]
fn every_truncation_is_detected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short");
    let (_rows, orig) = small_segment(dir.path(), Compression::Lz4);
    std::fs::write(&path, &orig).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for n in (0..orig.len()).rev() {
        f.set_len(n as u64).unwrap();
        let e = Segment::open(&path).unwrap_err();
        assert_corruption(&e, &path, n);
    }
    // Appended garbage is detected too (the footer is no longer at the end).
    let mut longer = orig.clone();
    longer.extend_from_slice(&[0u8; 7]);
    let path = dir.path().join("longer");
    std::fs::write(&path, &longer).unwrap();
    assert!(Segment::open(&path).unwrap_err().is_corruption());
}

#[test]
fn a_flipped_data_block_byte_names_the_block_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (_rows, orig) = small_segment(dir.path(), Compression::None);
    let path = dir.path().join("damaged");
    let mut b = orig.clone();
    b[16 + 30] ^= 0xff; // inside the first data block, which starts after the 16-byte header
    std::fs::write(&path, &b).unwrap();
    let seg = Segment::open(&path).expect("data blocks are checked when read, not at open");
    let e = seg.iter().find_map(Result::err).unwrap();
    match &e {
        SegmentError::Corruption { offset, reason, .. } => {
            assert_eq!(*offset, 16, "{reason}");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // After the error the iterator ends rather than skipping the block.
    let mut it = seg.iter();
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn garbage_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk");
    for junk in [
        vec![],
        vec![0u8; 10],
        vec![0u8; 4096],
        b"QVSEGMT\0 not really a segment".repeat(20),
    ] {
        std::fs::write(&path, &junk).unwrap();
        let e = Segment::open(&path).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_damage_is_an_error_or_exact_data(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        c in 0usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let comp = [Compression::None, Compression::Lz4, Compression::Zstd][c];
        let (rows, orig) = small_segment(dir.path(), comp);
        let mut b = orig.clone();
        for (i, x) in &flips {
            let i = i.index(b.len());
            b[i] ^= x;
        }
        if let Some(cut) = cut {
            b.truncate(cut.index(b.len()));
        }
        let path = dir.path().join("damaged");
        std::fs::write(&path, &b).unwrap();
        match read_everything(&path, &rows) {
            Ok(()) => prop_assert_eq!(b, orig),
            Err(e) => assert_corruption(&e, &path, b.len()),
        }
    }
}
