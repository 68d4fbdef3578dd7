//! Files whose checksums are all valid but whose id index disagrees with the rows (as a
//! buggy writer or a careful forger would produce): `get` and `verify` must notice.

use crate::{
    checks::parse_dir,
    format::{put_key, put_u32, put_u64, Cur, Footer, FOOTER_LEN},
    write_segment, Segment, SegmentError, SegmentOptions,
};
use quiver_core::{codec, Entry, Id, Op, Record};
use std::path::Path;

fn row(seq: u64, id: u64) -> Vec<u8> {
    let mut r = Record::new(id);
    r.payload = Some(format!("{{\"v\":{seq}}}"));
    codec::encode_entry(&Entry {
        seq,
        op: Op::Put(r),
    })
    .unwrap()
}

/// Rewrites the id-index entry of `target` with `edit(seq, block, pos)`, then recomputes
/// the id-index block CRC, the directory CRC and the footer CRC.
fn patch_index(path: &Path, target: &Id, edit: impl Fn(&mut u64, &mut u32, &mut u32)) {
    let mut file = std::fs::read(path).unwrap();
    let foff = file.len() - FOOTER_LEN;
    let mut footer = Footer::decode(&file[foff..]).unwrap();
    let dir_start = footer.id_dir_offset as usize;
    let dir_bytes = file[dir_start..dir_start + footer.id_dir_len as usize].to_vec();
    let mut dir = parse_dir(path, &dir_bytes, &footer).unwrap();
    let mut patched = false;
    for d in &mut dir {
        let start = d.offset as usize;
        let block = file[start..start + d.len as usize].to_vec();
        let mut c = Cur::new(&block);
        let mut out = Vec::new();
        for _ in 0..d.count {
            let key = c.key().unwrap();
            let (mut seq, mut b, mut p) = (c.u64().unwrap(), c.u32().unwrap(), c.u32().unwrap());
            if key == *target {
                edit(&mut seq, &mut b, &mut p);
                patched = true;
            }
            put_key(&mut out, &key);
            put_u64(&mut out, seq);
            put_u32(&mut out, b);
            put_u32(&mut out, p);
        }
        assert_eq!(out.len(), block.len());
        file[start..start + out.len()].copy_from_slice(&out);
        d.crc = crc32c::crc32c(&out);
    }
    assert!(patched, "{target} not in the index");
    let mut dir_bytes = Vec::new();
    for d in &dir {
        d.encode(&mut dir_bytes);
    }
    file[dir_start..dir_start + dir_bytes.len()].copy_from_slice(&dir_bytes);
    footer.id_dir_crc = crc32c::crc32c(&dir_bytes);
    file[foff..].copy_from_slice(&footer.encode());
    std::fs::write(path, &file).unwrap();
}

fn setup(dir: &Path) -> std::path::PathBuf {
    // Id 7 has versions at seq 1 (block 0) and seq 5 (a later block); 64-byte blocks hold
    // one row each.
    let rows = [row(1, 7), row(2, 8), row(3, 9), row(4, 10), row(5, 7)];
    let path = dir.join("seg");
    let opts = SegmentOptions {
        block_bytes: 64,
        ..Default::default()
    };
    write_segment(&path, rows.iter(), &opts).unwrap();
    Segment::open(&path).unwrap().verify().unwrap();
    path
}

fn is_corruption(r: Result<impl std::fmt::Debug, SegmentError>) -> bool {
    matches!(r, Err(SegmentError::Corruption { .. }))
}

#[test]
fn index_entry_with_the_wrong_seq_is_caught_by_get_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path());
    patch_index(&path, &Id::U64(7), |seq, _, _| *seq = 4);
    let seg = Segment::open(&path).expect("all checksums are valid");
    assert!(is_corruption(seg.get(&Id::U64(7))));
    assert!(is_corruption(seg.verify()));
    assert_eq!(seg.get(&Id::U64(8)).unwrap().unwrap(), row(2, 8));
}

#[test]
fn index_pointing_at_an_older_version_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path());
    // Point id 7 at its first version (seq 1, block 0, row 0): self-consistent, but stale.
    patch_index(&path, &Id::U64(7), |seq, b, p| (*seq, *b, *p) = (1, 0, 0));
    let seg = Segment::open(&path).unwrap();
    // `get` alone cannot tell (the row it reads matches the entry) ...
    assert_eq!(seg.get(&Id::U64(7)).unwrap().unwrap(), row(1, 7));
    // ... `verify` sees a newer row of the id than the index names.
    assert!(is_corruption(seg.verify()));
}

#[test]
fn index_pointing_outside_the_blocks_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path());
    patch_index(&path, &Id::U64(9), |_, b, _| *b = 999);
    let seg = Segment::open(&path).unwrap();
    assert!(is_corruption(seg.get(&Id::U64(9))));
    assert!(is_corruption(seg.verify()));
    let sub = dir.path().join("x");
    std::fs::create_dir(&sub).unwrap();
    let path2 = setup(&sub);
    patch_index(&path2, &Id::U64(9), |_, _, p| *p = 3);
    let seg = Segment::open(&path2).unwrap();
    assert!(is_corruption(seg.get(&Id::U64(9))));
}

/// A row whose key parses but whose rest does not decode (a careful forger recomputes the
/// block checksum): `verify` reads every row whole.
#[test]
fn a_row_that_does_not_decode_whole_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg");
    let mut bad = row(2, 8);
    bad.pop(); // the payload's last byte
    assert!(codec::decode_entry(&bad).is_err(), "precondition");
    // The writer checks row keys only, so it stands in for the forger here.
    write_segment(&path, [row(1, 7), bad].iter(), &SegmentOptions::default()).unwrap();
    assert!(is_corruption(Segment::open(&path).unwrap().verify()));
}
