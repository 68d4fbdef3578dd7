//! One query against many rows: `out[i] = ⟨q, row_i⟩` with the rows stored in blocks of 16,
//! component-major inside a block (`block[d][lane]`). Every step is a vertical FMA of one
//! broadcast query component against 16 rows, so there are no horizontal sums and four
//! blocks run as independent accumulator chains. Used for the IVF coarse quantizer (`nlist`
//! centroids per query) and for k-means assignment.
//!
//! AVX-512F and AVX2+FMA paths are chosen at run time; the scalar path is the reference.

use super::sq8::kernel::Isa;

/// Rows per block.
pub(crate) const LANES: usize = 16;

/// Rows of dimension `dim` in the blocked layout (the last block zero-padded).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockedRows {
    dim: usize,
    rows: usize,
    data: Vec<f32>,
    isa: Isa,
}

impl BlockedRows {
    /// Re-lays out `rows` (row-major, `dim` per row).
    pub(crate) fn new(rows: &[f32], dim: usize) -> Self {
        let n = rows.len().checked_div(dim).unwrap_or(0);
        let blocks = n.div_ceil(LANES);
        let mut data = vec![0.0f32; blocks * LANES * dim];
        for (i, row) in rows.chunks_exact(dim.max(1)).enumerate().take(n) {
            let (b, lane) = (i / LANES, i % LANES);
            let block = &mut data[b * LANES * dim..(b + 1) * LANES * dim];
            for (d, &x) in row.iter().enumerate() {
                block[d * LANES + lane] = x;
            }
        }
        BlockedRows {
            dim,
            rows: n,
            data,
            isa: Isa::detect(),
        }
    }

    /// Forces the instruction set (tests); an unsupported one runs scalar.
    #[cfg(test)]
    pub(crate) fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// Number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held (including the padding of the last block).
    pub(crate) fn bytes(&self) -> usize {
        self.data.len() * 4
    }

    /// `out[i] = ⟨q, row_i⟩` for every row; `out` is resized to the row count.
    pub(crate) fn dots(&self, q: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.rows.div_ceil(LANES) * LANES, 0.0);
        if q.len() == self.dim && self.dim > 0 {
            dispatch(self.isa, q, &self.data, self.dim, out);
        }
        out.truncate(self.rows);
    }
}

#[cfg_attr(
    target_arch = "x86_64",
    expect(
        unsafe_code,
        reason = "calls target_feature kernels after runtime detection"
    )
)]
fn dispatch(isa: Isa, q: &[f32], data: &[f32], dim: usize, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f is detected at run time right here.
        Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => unsafe {
            x86::dots_avx512(q, data, dim, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 and fma are detected at run time right here.
        Isa::Avx2
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma") =>
        unsafe { x86::dots_avx2(q, data, dim, out) },
        _ => dots_scalar(q, data, dim, out),
    }
}

/// Reference: `out` holds one value per padded row.
pub(crate) fn dots_scalar(q: &[f32], data: &[f32], dim: usize, out: &mut [f32]) {
    for (block, o) in data
        .chunks_exact(LANES * dim)
        .zip(out.chunks_exact_mut(LANES))
    {
        let mut acc = [0.0f32; LANES];
        for (&qd, col) in q.iter().zip(block.chunks_exact(LANES)) {
            for (a, &c) in acc.iter_mut().zip(col) {
                *a += qd * c;
            }
        }
        o.copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[expect(unsafe_code, reason = "unaligned SIMD loads and stores on slices")]
    pub(super) fn dots_avx512(q: &[f32], data: &[f32], dim: usize, out: &mut [f32]) {
        let block = LANES * dim;
        let blocks = (data.len() / block).min(out.len() / LANES);
        if q.len() < dim {
            return;
        }
        let (dp, op) = (data.as_ptr(), out.as_mut_ptr());
        let mut b = 0;
        while b + 4 <= blocks {
            let (mut a0, mut a1, mut a2, mut a3) = (
                _mm512_setzero_ps(),
                _mm512_setzero_ps(),
                _mm512_setzero_ps(),
                _mm512_setzero_ps(),
            );
            for (d, &qd) in q.iter().enumerate().take(dim) {
                let x = _mm512_set1_ps(qd);
                // SAFETY: blocks b..b+4 lie inside `data` (b + 4 <= blocks) and d < dim, so
                // each 16-float load at (b + i) * block + d * 16 is in bounds.
                let (c0, c1, c2, c3) = unsafe {
                    let p = dp.add(b * block + d * LANES);
                    (
                        _mm512_loadu_ps(p),
                        _mm512_loadu_ps(p.add(block)),
                        _mm512_loadu_ps(p.add(2 * block)),
                        _mm512_loadu_ps(p.add(3 * block)),
                    )
                };
                a0 = _mm512_fmadd_ps(x, c0, a0);
                a1 = _mm512_fmadd_ps(x, c1, a1);
                a2 = _mm512_fmadd_ps(x, c2, a2);
                a3 = _mm512_fmadd_ps(x, c3, a3);
            }
            // SAFETY: out holds at least `blocks * 16` floats.
            unsafe {
                _mm512_storeu_ps(op.add(b * LANES), a0);
                _mm512_storeu_ps(op.add((b + 1) * LANES), a1);
                _mm512_storeu_ps(op.add((b + 2) * LANES), a2);
                _mm512_storeu_ps(op.add((b + 3) * LANES), a3);
            }
            b += 4;
        }
        while b < blocks {
            let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut d = 0;
            while d + 2 <= dim {
                // SAFETY: block b is inside `data` and d + 1 < dim.
                let (c0, c1) = unsafe {
                    let p = dp.add(b * block + d * LANES);
                    (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(LANES)))
                };
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), c0, a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 1]), c1, a1);
                d += 2;
            }
            if d < dim {
                // SAFETY: block b is inside `data` and d < dim.
                let c0 = unsafe { _mm512_loadu_ps(dp.add(b * block + d * LANES)) };
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), c0, a0);
            }
            // SAFETY: out holds at least `blocks * 16` floats.
            unsafe { _mm512_storeu_ps(op.add(b * LANES), _mm512_add_ps(a0, a1)) };
            b += 1;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[expect(unsafe_code, reason = "unaligned SIMD loads and stores on slices")]
    pub(super) fn dots_avx2(q: &[f32], data: &[f32], dim: usize, out: &mut [f32]) {
        let block = LANES * dim;
        let blocks = (data.len() / block).min(out.len() / LANES);
        if q.len() < dim {
            return;
        }
        let (dp, op) = (data.as_ptr(), out.as_mut_ptr());
        let mut b = 0;
        while b + 2 <= blocks {
            let (mut a0, mut a1, mut a2, mut a3) = (
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
            );
            for (d, &qd) in q.iter().enumerate().take(dim) {
                let x = _mm256_set1_ps(qd);
                // SAFETY: blocks b and b + 1 lie inside `data` and d < dim.
                let (c0, c1, c2, c3) = unsafe {
                    let p = dp.add(b * block + d * LANES);
                    (
                        _mm256_loadu_ps(p),
                        _mm256_loadu_ps(p.add(8)),
                        _mm256_loadu_ps(p.add(block)),
                        _mm256_loadu_ps(p.add(block + 8)),
                    )
                };
                a0 = _mm256_fmadd_ps(x, c0, a0);
                a1 = _mm256_fmadd_ps(x, c1, a1);
                a2 = _mm256_fmadd_ps(x, c2, a2);
                a3 = _mm256_fmadd_ps(x, c3, a3);
            }
            // SAFETY: out holds at least `blocks * 16` floats.
            unsafe {
                _mm256_storeu_ps(op.add(b * LANES), a0);
                _mm256_storeu_ps(op.add(b * LANES + 8), a1);
                _mm256_storeu_ps(op.add((b + 1) * LANES), a2);
                _mm256_storeu_ps(op.add((b + 1) * LANES + 8), a3);
            }
            b += 2;
        }
        if b < blocks {
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for (d, &qd) in q.iter().enumerate().take(dim) {
                let x = _mm256_set1_ps(qd);
                // SAFETY: block b lies inside `data` and d < dim.
                let (c0, c1) = unsafe {
                    let p = dp.add(b * block + d * LANES);
                    (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
                };
                a0 = _mm256_fmadd_ps(x, c0, a0);
                a1 = _mm256_fmadd_ps(x, c1, a1);
            }
            // SAFETY: out holds at least `blocks * 16` floats.
            unsafe {
                _mm256_storeu_ps(op.add(b * LANES), a0);
                _mm256_storeu_ps(op.add(b * LANES + 8), a1);
            }
        }
    }
}
