//! SQ8: 8-bit scalar quantization with per-dimension ranges.
//!
//! Training takes a sample of the data and records, per dimension `d`, a range
//! `[min_d, min_d + 255·scale_d]` (the sample's min/max, or its `clip` / `1 − clip`
//! quantiles). A component is stored as `c_d = round((x_d − min_d) / scale_d)` clamped to
//! `0..=255` and decoded as `min_d + scale_d · c_d`: one byte per component, a quarter of f32.
//!
//! Scoring is asymmetric: the f32 query is compared to the codes with the per-dimension scale
//! folded into the query once per query ([`Sq8Query`]), so the inner loop is one u8→f32
//! conversion and one FMA per component ([`kernel`]).

pub mod kernel;
mod search;
#[cfg(test)]
mod tests;

pub use search::{Sq8Query, Sq8Scorer};

use super::validate;
use crate::space::VectorSpace;
use crate::{Metric, Result, VectorError};
use rayon::prelude::*;

/// Trained per-dimension ranges of an SQ8 code.
#[derive(Debug, Clone, PartialEq)]
pub struct Sq8Quantizer {
    dim: usize,
    metric: Metric,
    mins: Vec<f32>,
    scales: Vec<f32>,
}

impl Sq8Quantizer {
    /// Trains on up to `sample_size` rows of `data` (row-major, `dim` components per row)
    /// drawn with `seed`, taking each dimension's min and max as its range.
    ///
    /// Errors: `dim == 0` or `data` not whole rows (`InvalidParameter`); no rows or
    /// `sample_size == 0` (`NotEnoughTrainingData`); NaN/inf components (`NonFinite`);
    /// a zero row under cosine (`ZeroVector`).
    pub fn train(
        data: &[f32],
        dim: usize,
        metric: Metric,
        sample_size: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::train_clipped(data, dim, metric, sample_size, seed, 0.0)
    }

    /// Like [`train`](Self::train) but clips each dimension's range to the `clip` and
    /// `1 − clip` quantiles of the sample (`clip` in `[0, 0.5)`; 0 = min/max). Outliers then
    /// saturate at 0 or 255 instead of stretching the step for every other value.
    pub fn train_clipped(
        data: &[f32],
        dim: usize,
        metric: Metric,
        sample_size: usize,
        seed: u64,
        clip: f32,
    ) -> Result<Self> {
        if !(0.0..0.5).contains(&clip) {
            return Err(VectorError::InvalidParameter {
                name: "clip",
                reason: format!("quantile clip must be in [0, 0.5), got {clip}"),
            });
        }
        let n = validate::matrix(data, dim, metric)?;
        if n == 0 || sample_size == 0 {
            return Err(VectorError::NotEnoughTrainingData {
                what: "sq8",
                need: 1,
                got: n.min(sample_size),
            });
        }
        let idx = validate::sample_rows(n, sample_size, seed);
        let mut mins = vec![0.0f32; dim];
        let mut scales = vec![0.0f32; dim];
        let mut column = Vec::with_capacity(idx.len());
        for d in 0..dim {
            column.clear();
            column.extend(idx.iter().map(|&i| data[i * dim + d]));
            let (lo, hi) = if clip == 0.0 {
                column
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    })
            } else {
                column.sort_unstable_by(f32::total_cmp);
                let last = column.len() - 1;
                let at = |q: f32| column[((q * last as f32).round() as usize).min(last)];
                (at(clip), at(1.0 - clip))
            };
            mins[d] = lo;
            // Halves first: `hi - lo` of finite values can overflow. Distances weight each
            // dimension by the step squared, which must stay finite (else inf · 0 = NaN).
            let step = hi / 255.0 - lo / 255.0;
            if !(step * step).is_finite() {
                return Err(VectorError::RangeTooWide {
                    dimension: d,
                    lo,
                    hi,
                });
            }
            scales[d] = step;
        }
        Ok(Sq8Quantizer {
            dim,
            metric,
            mins,
            scales,
        })
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Metric the codes are scored under.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Per-dimension range start `min_d`.
    pub fn mins(&self) -> &[f32] {
        &self.mins
    }

    /// Per-dimension step `scale_d = (max_d − min_d) / 255`.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Encodes one vector into `dim` bytes (values outside the trained range saturate).
    pub fn encode(&self, v: &[f32]) -> Result<Vec<u8>> {
        validate::vector(v, self.dim, self.metric)?;
        let mut out = vec![0u8; self.dim];
        self.encode_into(v, &mut out);
        Ok(out)
    }

    /// Encodes a checked vector into `out` (both of length `dim`).
    fn encode_into(&self, v: &[f32], out: &mut [u8]) {
        for (((o, &x), &lo), &s) in out.iter_mut().zip(v).zip(&self.mins).zip(&self.scales) {
            *o = if s > 0.0 {
                ((x - lo) / s).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
        }
    }

    /// Reconstructs `min_d + scale_d · c_d` from a code of `dim` bytes.
    pub fn decode(&self, code: &[u8]) -> Result<Vec<f32>> {
        if code.len() != self.dim {
            return Err(VectorError::DimensionMismatch {
                expected: self.dim,
                got: code.len(),
            });
        }
        Ok(code
            .iter()
            .zip(&self.mins)
            .zip(&self.scales)
            .map(|((&c, &lo), &s)| lo + s * f32::from(c))
            .collect())
    }

    /// Encodes every row of `data` (in parallel) into a code store.
    pub fn encode_all(&self, data: &[f32]) -> Result<Sq8Codes> {
        let n = validate::matrix(data, self.dim, self.metric)?;
        if n > u32::MAX as usize {
            return Err(VectorError::InvalidParameter {
                name: "data",
                reason: format!("{n} rows exceed the u32 id space"),
            });
        }
        let mut codes = vec![0u8; n * self.dim];
        codes
            .par_chunks_mut(self.dim)
            .zip(data.par_chunks(self.dim))
            .for_each(|(out, v)| self.encode_into(v, out));
        Ok(Sq8Codes {
            quantizer: self.clone(),
            codes,
            isa: kernel::Isa::detect(),
        })
    }
}

/// SQ8 codes of `n` vectors (`n × dim` bytes, row-major) with their quantizer.
///
/// Implements [`VectorSpace`](crate::space::VectorSpace), so HNSW can traverse over the codes;
/// [`search_flat`](Sq8Codes::search_flat) scans them all.
#[derive(Debug, Clone)]
pub struct Sq8Codes {
    quantizer: Sq8Quantizer,
    codes: Vec<u8>,
    isa: kernel::Isa,
}

impl Sq8Codes {
    /// An empty store for `quantizer`.
    pub fn new(quantizer: Sq8Quantizer) -> Self {
        Sq8Codes {
            quantizer,
            codes: Vec::new(),
            isa: kernel::Isa::detect(),
        }
    }

    /// Appends one vector, returning its id.
    pub fn push(&mut self, v: &[f32]) -> Result<u32> {
        let code = self.quantizer.encode(v)?;
        let id = u32::try_from(self.len()).map_err(|_| VectorError::InvalidParameter {
            name: "data",
            reason: "the u32 id space is full".into(),
        })?;
        self.codes.extend_from_slice(&code);
        Ok(id)
    }

    /// The quantizer.
    pub fn quantizer(&self) -> &Sq8Quantizer {
        &self.quantizer
    }

    /// The code of point `i` (`dim` bytes), if it exists.
    pub fn code(&self, i: u32) -> Option<&[u8]> {
        let d = self.quantizer.dim;
        let start = (i as usize).checked_mul(d)?;
        self.codes.get(start..start + d)
    }

    /// All codes, row-major.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Bytes held in RAM by the codes and the quantizer (`n·dim + 8·dim`).
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() + 2 * 4 * self.quantizer.dim
    }

    /// Forces the kernel instruction set (for benchmarks and tests); an unsupported one falls
    /// back to scalar at call time.
    pub fn set_isa(&mut self, isa: kernel::Isa) {
        self.isa = isa;
    }
}
