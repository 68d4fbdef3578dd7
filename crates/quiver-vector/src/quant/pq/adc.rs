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
        self.tables(query, |acc, q, c| acc + q * c)
    }

    /// Squared-L2 tables: `T[j][c] = ‖q_j − centroid_{j,c}‖²`.
    pub fn l2_tables(&self, query: &[f32]) -> Vec<Table> {
        self.tables(query, |acc, q, c| {
            let t = q - c;
            acc + t * t
        })
    }

    #[inline]
    fn tables(&self, query: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> Vec<Table> {
        let mut out = vec![[0.0f32; KSUB]; self.m];
        let book = KSUB * self.dsub;
        for ((t, q), ct) in out
            .iter_mut()
            .zip(query.chunks_exact(self.dsub))
            .zip(self.centroids_t.chunks_exact(book))
        {
            for (&qd, col) in q.iter().zip(ct.chunks_exact(KSUB)) {
                for (acc, &c) in t.iter_mut().zip(col) {
                    *acc = f(*acc, qd, c);
                }
            }
        }
        out
    }
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
pub fn scan(tables: &[Table], codes: &[u8], out: &mut Vec<f32>) {
    let m = tables.len();
    out.clear();
    if m == 0 {
        return;
    }
    let mut blocks = codes.chunks_exact(4 * m);
    for block in &mut blocks {
        let (a, rest) = block.split_at(m);
        let (b, rest) = rest.split_at(m);
        let (c, d) = rest.split_at(m);
        let mut s = [0.0f32; 4];
        for ((((t, &ca), &cb), &cc), &cd) in tables.iter().zip(a).zip(b).zip(c).zip(d) {
            s[0] += t[ca as usize];
            s[1] += t[cb as usize];
            s[2] += t[cc as usize];
            s[3] += t[cd as usize];
        }
        out.extend_from_slice(&s);
    }
    for code in blocks.remainder().chunks_exact(m) {
        out.push(score(tables, code));
    }
}
