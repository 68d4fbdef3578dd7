//! Input checks shared by the quantizers and IVF: dimension, finiteness, zero vectors.

use crate::{Metric, Result, VectorError};

/// Checks that `dim` is usable and that `data` holds whole rows of `dim` components.
/// Returns the number of rows.
pub(crate) fn rows(data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(VectorError::InvalidParameter {
            name: "dim",
            reason: "the dimension must be at least 1".into(),
        });
    }
    if !data.len().is_multiple_of(dim) {
        return Err(VectorError::InvalidParameter {
            name: "data",
            reason: format!(
                "{} values is not a whole number of rows of dimension {dim}",
                data.len()
            ),
        });
    }
    Ok(data.len() / dim)
}

/// Checks one vector: length `dim`, finite components, and under cosine non-zero and of
/// unit length (the stored form: [`crate::distance::prepare`] makes it).
pub(crate) fn vector(v: &[f32], dim: usize, metric: Metric) -> Result<()> {
    if v.len() != dim {
        return Err(VectorError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(VectorError::NonFinite { index, value });
    }
    if metric == Metric::Cosine {
        if v.iter().all(|&x| x == 0.0) {
            return Err(VectorError::ZeroVector);
        }
        // Codes and cells score cosine as a dot product, which ranks by cosine only between
        // unit vectors: a raw row would silently be scored as `dot`.
        let norm2 = crate::distance::dot(v, v);
        if (norm2 - 1.0).abs() > 1e-3 {
            return Err(VectorError::NotUnitLength { norm: norm2.sqrt() });
        }
    }
    Ok(())
}

/// Checks every row of a row-major matrix (see [`vector`]); returns the number of rows.
pub(crate) fn matrix(data: &[f32], dim: usize, metric: Metric) -> Result<usize> {
    let n = rows(data, dim)?;
    for row in data.chunks_exact(dim) {
        vector(row, dim, metric)?;
    }
    Ok(n)
}

/// Deterministic sample of at most `size` distinct row indices out of `n` (sorted).
pub(crate) fn sample_rows(n: usize, size: usize, seed: u64) -> Vec<usize> {
    use rand::seq::index::sample;
    use rand::SeedableRng;
    if size >= n {
        return (0..n).collect();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut idx = sample(&mut rng, n, size).into_vec();
    idx.sort_unstable();
    idx
}

/// Copies the rows `idx` of `data` into a new row-major matrix.
pub(crate) fn gather(data: &[f32], dim: usize, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * dim);
    for &i in idx {
        out.extend_from_slice(&data[i * dim..(i + 1) * dim]);
    }
    out
}

/// Checks the arguments of an exact re-rank: `rows` must hold at least `n` rows of `dim`
/// and `oversample` must be at least 1.
pub(crate) fn rescore_args(data: &[f32], dim: usize, n: usize, oversample: usize) -> Result<()> {
    if oversample == 0 {
        return Err(VectorError::InvalidParameter {
            name: "oversample",
            reason: "the rescore oversampling factor must be at least 1".into(),
        });
    }
    let have = rows(data, dim)?;
    if have < n {
        return Err(VectorError::InvalidParameter {
            name: "rows",
            reason: format!("re-rank rows hold {have} vectors but the index has {n}"),
        });
    }
    Ok(())
}
