//! Inputs at the edges of what the vector APIs accept: each is answered correctly or with a
//! typed error, never a panic, an abort or a silently empty result.

use crate::{clustered, space_of};
use quiver_vector::distance::normalize;
use quiver_vector::flat::{self, FlatParams};
use quiver_vector::ivf::{IvfPqIndex, IvfPqParams};
use quiver_vector::quant::{ProductQuantizer, Sq8Quantizer};
use quiver_vector::space::F32Space;
use quiver_vector::vecfile::{ElemType, VecFileWriter};
use quiver_vector::{Metric, VectorError};

#[test]
fn flat_search_takes_any_k() {
    let pts = clustered(1, 10, 4, 2);
    let s = space_of(Metric::L2, &pts);
    for k in [usize::MAX, 1 << 40, 11] {
        let r = flat::search(&s, &pts[0], &FlatParams::k(k)).expect("search");
        assert_eq!(r.len(), 10, "k={k}");
        assert_eq!(r[0].id, 0);
    }
}

#[test]
fn sq8_refuses_a_range_it_cannot_score() {
    let mut data: Vec<f32> = clustered(2, 100, 4, 3).concat();
    data[0] = 3e38;
    data[4] = -3e38;
    match Sq8Quantizer::train(&data, 4, Metric::L2, 100, 1) {
        Err(VectorError::RangeTooWide { dimension: 0, .. }) => {}
        other => panic!("expected RangeTooWide on dimension 0, got {other:?}"),
    }
    // A wide but scorable range still answers.
    data[0] = 1e15;
    data[4] = -1e15;
    let q = Sq8Quantizer::train(&data, 4, Metric::L2, 100, 1).expect("train");
    let codes = q.encode_all(&data).expect("encode");
    assert_eq!(codes.search_flat(&data[8..12], 3).expect("search").len(), 3);
}

#[test]
fn a_vector_file_refuses_non_finite_rows() {
    let d = tempfile::tempdir().unwrap();
    let mut w = VecFileWriter::create(d.path().join("v.qv"), 4, ElemType::F32).unwrap();
    w.append_f32(&[1.0, 1.0, 1.0, 1.0]).unwrap();
    for bad in [f32::NAN, f32::INFINITY] {
        assert!(matches!(
            w.append_f32(&[bad, 0.0, 1.0, 2.0]),
            Err(VectorError::NonFinite { index: 0, .. })
        ));
    }
    w.finish().unwrap();
}

#[test]
fn cosine_normalises_huge_and_tiny_vectors() {
    for scale in [1e20f32, 1e-30, 3e38, 1e-44] {
        let mut v = [scale; 8];
        normalize(&mut v).unwrap_or_else(|e| panic!("{scale}: {e}"));
        let n: f32 = v.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5, "{scale}: norm² {n}");
        let mut s = F32Space::new(Metric::Cosine, 8);
        s.add(&[scale; 8])
            .unwrap_or_else(|e| panic!("{scale}: {e}"));
    }
    assert!(matches!(
        normalize(&mut [0.0; 8]),
        Err(VectorError::ZeroVector)
    ));
}

#[test]
fn cosine_codes_refuse_raw_rows() {
    // Rows of different norms: scored as dot products they would rank by `dot`, not cosine.
    let raw: Vec<f32> = clustered(3, 300, 8, 4)
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.iter().map(move |x| x * (1.0 + i as f32)))
        .collect();
    let is_unit_error = |e: VectorError| matches!(e, VectorError::NotUnitLength { .. });
    assert!(is_unit_error(
        IvfPqIndex::build(&raw, 8, Metric::Cosine, IvfPqParams::new(8, 4)).unwrap_err()
    ));
    assert!(is_unit_error(
        ProductQuantizer::train(&raw, 8, 4, Metric::Cosine, 1).unwrap_err()
    ));
    assert!(is_unit_error(
        Sq8Quantizer::train(&raw, 8, Metric::Cosine, 300, 1).unwrap_err()
    ));
    // The same rows normalised are accepted, and so must the queries be.
    let mut unit = raw.clone();
    for row in unit.chunks_exact_mut(8) {
        normalize(row).unwrap();
    }
    let ivf = IvfPqIndex::build(&unit, 8, Metric::Cosine, IvfPqParams::new(8, 4)).unwrap();
    assert_eq!(ivf.search(&unit[..8], 5, 8, None).unwrap().len(), 5);
    assert!(is_unit_error(
        ivf.search(&raw[8..16], 5, 8, None).unwrap_err()
    ));
}
