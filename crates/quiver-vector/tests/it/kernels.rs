//! Every dispatched kernel path equals the scalar reference.

use proptest::prelude::*;
use quiver_vector::distance::{self, scalar, Isa, Kernels};
use quiver_vector::Metric;

const DIMS: [usize; 6] = [1, 3, 15, 17, 383, 1536];

fn vecs(dim: usize, scale: f32) -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (
        proptest::collection::vec(-1.0f32..1.0, dim),
        proptest::collection::vec(-1.0f32..1.0, dim),
    )
        .prop_map(move |(a, b)| {
            (
                a.iter().map(|x| x * scale).collect(),
                b.iter().map(|x| x * scale).collect(),
            )
        })
}

/// Relative error ≤ 1e-5 against the f64-accumulated reference, measured against the
/// magnitude of the summed terms (the absolute floor for results near zero by cancellation).
fn close(got: f32, want: f32, scale: f64) -> bool {
    let err = (f64::from(got) - f64::from(want)).abs();
    err <= 1e-5 * f64::from(want.abs()).max(scale) + 1e-30
}

fn case() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (
        0..DIMS.len(),
        prop_oneof![Just(1.0f32), Just(1e-3f32), Just(100.0f32)],
    )
        .prop_flat_map(|(i, scale)| vecs(DIMS[i], scale))
}

fn check_all(a: &[f32], b: &[f32]) -> Result<(), TestCaseError> {
    let l2_ref = scalar::l2(a, b);
    let dot_ref = scalar::dot(a, b);
    let dot_scale: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x * *y).abs()).sum();
    for k in Kernels::available() {
        let l2 = (k.l2)(a, b);
        let dot = (k.dot)(a, b);
        prop_assert!(
            close(l2, l2_ref, f64::from(l2_ref)),
            "{:?} l2 dim {}: {} vs {}",
            k.isa,
            a.len(),
            l2,
            l2_ref
        );
        prop_assert!(
            close(dot, dot_ref, dot_scale),
            "{:?} dot dim {}: {} vs {}",
            k.isa,
            a.len(),
            dot,
            dot_ref
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn f32_kernels_match_reference((a, b) in case()) {
        check_all(&a, &b)?;
    }

    #[test]
    fn u8_kernels_are_exact(dim_i in 0usize..DIMS.len(), seed in any::<u64>()) {
        let dim = DIMS[dim_i];
        let mut x = seed | 1;
        let mut next = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; (x >> 24) as u8 };
        let a: Vec<u8> = (0..dim).map(|_| next()).collect();
        let b: Vec<u8> = (0..dim).map(|_| next()).collect();
        for k in Kernels::available() {
            prop_assert_eq!((k.l2_u8)(&a, &b), scalar::l2_u8(&a, &b), "{:?} l2_u8 dim {}", k.isa, dim);
            prop_assert_eq!((k.dot_u8)(&a, &b), scalar::dot_u8(&a, &b), "{:?} dot_u8 dim {}", k.isa, dim);
        }
    }
}

#[test]
fn every_dimension_every_path_extremes() {
    for dim in DIMS {
        let a: Vec<f32> = (0..dim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..dim)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 5.0)
            .collect();
        check_all(&a, &b).expect("kernels agree");
        let max = vec![255u8; dim];
        let zero = vec![0u8; dim];
        for k in Kernels::available() {
            assert_eq!(
                (k.l2_u8)(&max, &zero),
                255 * 255 * dim as u32,
                "{:?}",
                k.isa
            );
            assert_eq!(
                (k.dot_u8)(&max, &max),
                255 * 255 * dim as u32,
                "{:?}",
                k.isa
            );
        }
    }
}

#[test]
fn machine_paths_are_tested() {
    let isas: Vec<Isa> = Kernels::available().iter().map(|k| k.isa).collect();
    eprintln!(
        "kernel paths on this machine: {isas:?}; dispatched: {:?}",
        Kernels::best().isa
    );
    assert!(isas.contains(&Isa::Scalar));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        assert!(isas.contains(&Isa::Avx2));
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        assert!(isas.contains(&Isa::Avx512));
    }
}

#[test]
fn distance_convention() {
    let a = [1.0, 2.0, 3.0];
    let b = [4.0, 6.0, 3.0];
    assert_eq!(distance::l2(&a, &b), 25.0);
    assert_eq!(distance::dot(&a, &b), 25.0);
    assert_eq!(distance::distance(Metric::L2, &a, &b), 25.0);
    assert_eq!(distance::distance(Metric::Dot, &a, &b), -25.0);
    assert_eq!(distance::distance(Metric::Cosine, &a, &b), -25.0);
    assert_eq!(distance::l2_u8(&[1, 2], &[4, 6]), 25);
    assert_eq!(distance::dot_u8(&[1, 2], &[4, 6]), 16);
}

#[test]
fn bad_input_is_typed() {
    use quiver_vector::VectorError;
    assert!(matches!(
        distance::validate(&[1.0, 2.0], 3),
        Err(VectorError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        distance::validate(&[1.0, f32::NAN], 2),
        Err(VectorError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        distance::validate(&[f32::INFINITY, 0.0], 2),
        Err(VectorError::NonFinite { index: 0, .. })
    ));
    assert!(matches!(
        distance::prepare(Metric::Cosine, &[0.0, 0.0], 2),
        Err(VectorError::ZeroVector)
    ));
    let p = distance::prepare(Metric::Cosine, &[3.0, 4.0], 2).expect("normalises");
    assert!((p[0] - 0.6).abs() < 1e-6 && (p[1] - 0.8).abs() < 1e-6);
}
