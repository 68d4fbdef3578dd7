//! Building an IVF-PQ index: coarse k-means, residual PQ, inverted lists.

use super::{IvfPqIndex, IvfPqParams};
use crate::distance::dot;
use crate::quant::kmeans::{self, KMeans};
use crate::quant::pq::KSUB;
use crate::quant::{validate, ProductQuantizer};
use crate::{Metric, Result, VectorError};
use rayon::prelude::*;

/// Lloyd iterations of the coarse k-means (the FAISS default for IVF).
const KMEANS_ITERS: usize = 10;
/// Lloyd iterations of each residual PQ codebook (the FAISS default for PQ; cheap, since a
/// sub-space has only `dsub` components).
const PQ_ITERS: usize = 25;

impl IvfPqIndex {
    /// Builds the index over the rows of `data` (row-major, `dim` per row; ids are the row
    /// numbers): trains `nlist` coarse centroids and the residual PQ on a sample of
    /// `params.train_sample` rows, then assigns and encodes every row (in parallel).
    ///
    /// Errors: `dim == 0`, `data` not whole rows, `nlist == 0`, `nlist > n`, `pq_m` not
    /// dividing `dim` (`InvalidParameter`); no rows (`NotEnoughTrainingData`);
    /// NaN/inf (`NonFinite`); a zero row under cosine (`ZeroVector`).
    pub fn build(data: &[f32], dim: usize, metric: Metric, params: IvfPqParams) -> Result<Self> {
        let n = validate::matrix(data, dim, metric)?;
        let m = params.pq_m;
        if m == 0 || !dim.is_multiple_of(m) {
            return Err(VectorError::InvalidParameter {
                name: "pq_m",
                reason: format!("the PQ sub-space count pq_m={m} must divide the dimension {dim}"),
            });
        }
        if n > u32::MAX as usize {
            return Err(VectorError::InvalidParameter {
                name: "data",
                reason: format!("{n} rows exceed the u32 id space"),
            });
        }
        if n == 0 {
            return Err(VectorError::NotEnoughTrainingData {
                what: "ivf_pq",
                need: 1,
                got: 0,
            });
        }
        let nlist = params.nlist;
        if nlist == 0 || nlist > n {
            return Err(VectorError::InvalidParameter {
                name: "nlist",
                reason: format!(
                    "nlist must be between 1 and the number of vectors ({n}), got {nlist}"
                ),
            });
        }

        // 1. Coarse quantizer on a sample.
        let sample_size = params.train_sample.max(nlist).max(KSUB);
        let sample_idx = validate::sample_rows(n, sample_size, params.seed);
        let sample = validate::gather(data, dim, &sample_idx);
        let km = KMeans {
            k: nlist,
            iters: KMEANS_ITERS,
            seed: params.seed,
            spherical: metric == Metric::Cosine,
        };
        let centroids = km.train(&sample, dim)?;

        // 2. Residual PQ on the sample's residuals.
        let sample_assign = kmeans::assign(&sample, dim, &centroids);
        let mut residuals = sample;
        for (row, &a) in residuals.chunks_exact_mut(dim).zip(&sample_assign) {
            let c = &centroids[a as usize * dim..(a as usize + 1) * dim];
            row.iter_mut().zip(c).for_each(|(x, &y)| *x -= y);
        }
        let pq = ProductQuantizer::train_with(
            &residuals,
            dim,
            m,
            Metric::L2,
            params.seed.wrapping_add(0x5eed),
            residuals.len() / dim,
            PQ_ITERS,
        )?;
        drop(residuals);

        // 3. Assign and encode every row.
        let assign = kmeans::assign(data, dim, &centroids);
        let with_terms = metric == Metric::L2;
        let mut codes = vec![0u8; n * m];
        let mut terms = vec![0.0f32; if with_terms { n } else { 0 }];
        const CHUNK: usize = 256;
        let encode_chunk = |(ci, (out, rows)): (usize, (&mut [u8], &[f32])),
                            terms: Option<&mut [f32]>| {
            let mut scratch = vec![0.0f32; KSUB];
            let mut r = vec![0.0f32; dim];
            let mut terms = terms;
            for (i, (code, x)) in out
                .chunks_exact_mut(m)
                .zip(rows.chunks_exact(dim))
                .enumerate()
            {
                let a = assign[ci * CHUNK + i] as usize;
                let c = &centroids[a * dim..(a + 1) * dim];
                r.iter_mut()
                    .zip(x)
                    .zip(c)
                    .for_each(|((r, &x), &c)| *r = x - c);
                pq.encode_into(&r, code, &mut scratch);
                if let Some(t) = terms.as_deref_mut() {
                    if let Ok(rhat) = pq.decode(code) {
                        t[i] = dot(&rhat, &rhat) + 2.0 * dot(c, &rhat);
                    }
                }
            }
        };
        if with_terms {
            codes
                .par_chunks_mut(CHUNK * m)
                .zip(data.par_chunks(CHUNK * dim))
                .zip(terms.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(ci, ((out, rows), t))| encode_chunk((ci, (out, rows)), Some(t)));
        } else {
            codes
                .par_chunks_mut(CHUNK * m)
                .zip(data.par_chunks(CHUNK * dim))
                .enumerate()
                .for_each(|chunk| encode_chunk(chunk, None));
        }

        // 4. Inverted lists (CSR), ids ascending inside each list.
        let mut offsets = vec![0u64; nlist + 1];
        for &a in &assign {
            offsets[a as usize + 1] += 1;
        }
        for l in 0..nlist {
            offsets[l + 1] += offsets[l];
        }
        let mut cursor: Vec<u64> = offsets[..nlist].to_vec();
        let mut ids = vec![0u32; n];
        let mut list_codes = vec![0u8; n * m];
        let mut list_terms = vec![0.0f32; terms.len()];
        for (i, &a) in assign.iter().enumerate() {
            let slot = cursor[a as usize] as usize;
            cursor[a as usize] += 1;
            ids[slot] = i as u32;
            list_codes[slot * m..(slot + 1) * m].copy_from_slice(&codes[i * m..(i + 1) * m]);
            if with_terms {
                list_terms[slot] = terms[i];
            }
        }
        Ok(IvfPqIndex::from_parts(
            dim, metric, centroids, pq, offsets, ids, list_codes, list_terms,
        ))
    }
}
