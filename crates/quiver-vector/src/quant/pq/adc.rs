//! ADC lookup tables and the code scan.
//!
//! A table is `m` rows of [`KSUB`] f32 (`[f32; 256]` each, so indexing by a code byte needs no
//! bounds check). A code scores `Σ_j T[j][c_j]`: `m` loads and adds, unrolled four sub-spaces
//! at a time into independent accumulators, and four codes at a time in [`scan`] so that the
//! loads of different codes overlap.

use super::{ProductQuantizer, KSUB};

/// One lookup-table row per sub-space.
pub type Table = [f32; KSUB];

impl ProductQuantizer {
    /// Inner-product tables: `T[j][c] = ⟨q_j, centroid_{j,c}⟩` (not negated).
    pub fn inner_product_tables(&self, query: &[f32]) -> Vec<Table> {
        let mut out = vec![[0.0f32; KSUB]; self.m];
        fill_dispatch::<false>(query, &self.centroids_t, self.dsub, &mut out);
        out
    }

    /// Squared-L2 tables: `T[j][c] = ‖q_j − centroid_{j,c}‖²`.
    pub fn l2_tables(&self, query: &[f32]) -> Vec<Table> {
        let mut out = vec![[0.0f32; KSUB]; self.m];
        fill_dispatch::<true>(query, &self.centroids_t, self.dsub, &mut out);
        out
    }
}

/// Fills the tables from component-major codebooks `ct` (`m × dsub × 256`): for each
/// component, one broadcast query value against 256 centroids, which vectorises.
#[inline(always)]
fn fill<const L2: bool>(query: &[f32], ct: &[f32], dsub: usize, out: &mut [Table]) {
    if dsub == 0 {
        return;
    }
    for ((t, q), book) in out
        .iter_mut()
        .zip(query.chunks_exact(dsub))
        .zip(ct.chunks_exact(KSUB * dsub))
    {
        for (&qd, col) in q.iter().zip(book.chunks_exact(KSUB)) {
            for (acc, &c) in t.iter_mut().zip(col) {
                if L2 {
                    let d = qd - c;
                    *acc += d * d;
                } else {
                    *acc += qd * c;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fill_avx512<const L2: bool>(query: &[f32], ct: &[f32], dsub: usize, out: &mut [Table]) {
    fill::<L2>(query, ct, dsub, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fill_avx2<const L2: bool>(query: &[f32], ct: &[f32], dsub: usize, out: &mut [Table]) {
    fill::<L2>(query, ct, dsub, out);
}

/// The same loop compiled for the best instruction set found at run time.
#[cfg_attr(
    target_arch = "x86_64",
    expect(
        unsafe_code,
        reason = "calls target_feature functions after runtime detection"
    )
)]
fn fill_dispatch<const L2: bool>(query: &[f32], ct: &[f32], dsub: usize, out: &mut [Table]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: avx512f was detected on this CPU just above.
            return unsafe { fill_avx512::<L2>(query, ct, dsub, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: avx2 and fma were detected on this CPU just above.
            return unsafe { fill_avx2::<L2>(query, ct, dsub, out) };
        }
    }
    fill::<L2>(query, ct, dsub, out)
}

/// `Σ_j T[j][code_j]` for one code (`code.len() == tables.len()`; extra bytes are ignored).
#[inline]
pub fn score(tables: &[Table], code: &[u8]) -> f32 {
    let mut acc = [0.0f32; 4];
    let mut t4 = tables.chunks_exact(4);
    let mut c4 = code.chunks_exact(4);
    for (t, c) in (&mut t4).zip(&mut c4) {
        acc[0] += t[0][c[0] as usize];
        acc[1] += t[1][c[1] as usize];
        acc[2] += t[2][c[2] as usize];
        acc[3] += t[3][c[3] as usize];
    }
    for (t, &c) in t4.remainder().iter().zip(c4.remainder()) {
        acc[0] += t[c as usize];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Scores consecutive `m`-byte codes into `out` (one value per code, `out` cleared first).
///
/// One code at a time with two scalar accumulators (even and odd sub-spaces): each lookup is
/// a byte load and an add with a memory operand, and consecutive codes overlap in the
/// out-of-order window. Measured on the benchmark machine, neither interleaving four codes
/// (the compiler packs the accumulators into vectors with shuffles), AVX-512 gathers, u16
/// tables (half the cache footprint) nor 8-byte code loads made this loop faster.
pub fn scan(tables: &[Table], codes: &[u8], out: &mut Vec<f32>) {
    let m = tables.len();
    out.clear();
    if m == 0 {
        return;
    }
    out.reserve(codes.len() / m);
    for code in codes.chunks_exact(m) {
        let mut even = 0.0f32;
        let mut odd = 0.0f32;
        for (t, c) in tables.chunks_exact(2).zip(code.chunks_exact(2)) {
            even += t[0][c[0] as usize];
            odd += t[1][c[1] as usize];
        }
        if m % 2 == 1 {
            even += tables[m - 1][code[m - 1] as usize];
        }
        out.push(even + odd);
    }
}
