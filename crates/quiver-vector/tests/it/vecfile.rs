//! Vector files: round trips, alignment, and typed errors on damage.

use quiver_vector::space::F32Vectors;
use quiver_vector::vecfile::{ElemType, VecFile, VecFileWriter, HEADER_LEN};
use quiver_vector::VectorError;

fn rows(n: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| (0..dim).map(|j| (i * 31 + j) as f32 * 0.25 - 3.0).collect())
        .collect()
}

#[test]
fn f32_round_trip_aligned_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    for dim in [1usize, 17, 384] {
        let p = dir.path().join(format!("v{dim}.vec"));
        let data = rows(37, dim);
        let mut w = VecFileWriter::create(&p, dim, ElemType::F32).expect("create");
        for r in &data {
            w.append_f32(r).expect("append");
        }
        w.finish().expect("finish");
        let f = VecFile::open(&p).expect("open");
        assert_eq!((f.len(), f.dim(), f.elem()), (37, dim, ElemType::F32));
        for (i, r) in data.iter().enumerate() {
            let got = f.row_f32(i).expect("row");
            assert_eq!(got, &r[..]);
            assert_eq!(
                got.as_ptr() as usize % 64,
                0,
                "row {i} of dim {dim} not 64-byte aligned"
            );
        }
        assert!(f.row_f32(37).is_none());
        let size = std::fs::metadata(&p).expect("meta").len() as usize;
        assert_eq!(size, HEADER_LEN + 37 * (dim * 4).div_ceil(64) * 64);
    }
}

#[test]
fn u8_round_trip_and_append_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.vec");
    let mut w = VecFileWriter::create(&p, 5, ElemType::U8).expect("create");
    w.append_u8(&[1, 2, 3, 4, 5]).expect("append");
    assert!(matches!(
        w.append_f32(&[0.0; 5]),
        Err(VectorError::InvalidParameter { .. })
    ));
    assert!(matches!(
        w.append_u8(&[1, 2]),
        Err(VectorError::DimensionMismatch {
            expected: 5,
            got: 2
        })
    ));
    w.finish().expect("finish");
    let mut w = VecFileWriter::append_to(&p).expect("reopen");
    w.append_u8(&[9, 8, 7, 6, 5]).expect("append");
    w.finish().expect("finish");
    let f = VecFile::open(&p).expect("open");
    assert_eq!(f.len(), 2);
    assert_eq!(f.row_u8(1), Some(&[9u8, 8, 7, 6, 5][..]));
    assert!(f.f32_data().is_err());
}

#[test]
fn f32_vectors_mmap_equals_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("v.vec");
    let mut v = F32Vectors::new(33);
    for r in rows(100, 33) {
        v.push(&r).expect("push");
    }
    v.write(&p).expect("write");
    let mut m = F32Vectors::open(&p).expect("open");
    assert!(m.is_mapped());
    assert_eq!(m.len(), 100);
    for i in 0..100 {
        assert_eq!(m.row(i), v.row(i));
    }
    // Appending to a mapped collection copies it into memory first.
    m.push(&[1.0; 33]).expect("push after map");
    assert!(!m.is_mapped());
    assert_eq!(m.len(), 101);
    assert_eq!(m.row(7), v.row(7));
    assert!(matches!(
        m.push(&[1.0; 3]),
        Err(VectorError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        m.push(&[f32::NAN; 33]),
        Err(VectorError::NonFinite { .. })
    ));
}

fn written(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("x.vec");
    let mut w = VecFileWriter::create(&p, 16, ElemType::F32).expect("create");
    for r in rows(10, 16) {
        w.append_f32(&r).expect("append");
    }
    w.finish().expect("finish");
    p
}

fn assert_corrupt(p: &std::path::Path, what: &str) {
    match VecFile::open(p) {
        Err(VectorError::Corruption { reason, .. }) => eprintln!("{what}: {reason}"),
        other => panic!("{what}: expected Corruption, got {other:?}"),
    }
}

#[test]
fn damage_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = written(dir.path());
    let good = std::fs::read(&p).expect("read");

    std::fs::write(&p, &good[..good.len() - 1]).expect("write");
    assert_corrupt(&p, "truncated by one byte");
    std::fs::write(&p, &good[..40]).expect("write");
    assert_corrupt(&p, "truncated inside the header");
    std::fs::write(&p, b"").expect("write");
    assert_corrupt(&p, "empty file");
    let mut extra = good.clone();
    extra.extend_from_slice(&[0u8; 64]);
    std::fs::write(&p, &extra).expect("write");
    assert_corrupt(&p, "trailing row not in the header");
    for (off, what) in [
        (0usize, "magic"),
        (9, "version"),
        (17, "dim"),
        (25, "count"),
        (HEADER_LEN + 5, "row data"),
        (good.len() - 1, "last byte"),
    ] {
        let mut b = good.clone();
        b[off] ^= 0x40;
        std::fs::write(&p, &b).expect("write");
        assert_corrupt(&p, what);
    }
    // An unfinished writer leaves a file that does not open.
    let q = dir.path().join("unfinished.vec");
    let mut w = VecFileWriter::create(&q, 4, ElemType::F32).expect("create");
    w.append_f32(&[1.0; 4]).expect("append");
    drop(w);
    assert_corrupt(&q, "writer dropped before finish");
    assert!(matches!(
        VecFile::open(dir.path().join("missing.vec")),
        Err(VectorError::Io { .. })
    ));
}
