//! Distance kernels. `scalar` is the reference every SIMD path is tested against.
//! (SIMD dispatch to be added; these signatures are the stable entry points.)

pub mod scalar;

use quiver_core::Metric;

/// Squared Euclidean distance.
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    scalar::l2(a, b)
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    scalar::dot(a, b)
}

/// Distance under `metric`, smaller is closer: squared L2, or the negated inner product for
/// `dot` and `cosine` (cosine inputs must already be unit length).
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2(a, b),
        Metric::Dot | Metric::Cosine => -dot(a, b),
    }
}
