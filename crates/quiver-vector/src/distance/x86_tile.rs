//! x86-64 tile kernels of batched flat search (see [`super::tile`]): AVX-512F with 32 query
//! lanes (two zmm registers) × up to 12 rows, AVX2+FMA with 16 lanes (two ymm) × up to 6 rows.
//!
//! Per component the kernel loads the query panel's lanes once, broadcasts each row's
//! component and issues one FMA per accumulator: 24 (AVX-512) or 12 (AVX2) independent
//! accumulators cover the FMA latency, and there is one load per ~2 FMAs. The functions are
//! `unsafe` only because of `#[target_feature]`: every memory bound is asserted by
//! [`Tile::check`] before the first load.

use super::tile::Tile;
use std::arch::x86_64::*;

/// Components summed in registers before the partial sums are added to running totals
/// (shorter sequential sums: less rounding error for long vectors).
const CHUNK: usize = 64;

/// Query lanes of the AVX-512 tile.
pub const AVX512_LANES: usize = 32;
/// Most rows of the AVX-512 tile (2 × 12 = 24 accumulators of the 32 zmm registers).
pub const AVX512_ROWS: usize = 12;
/// Query lanes of the AVX2 tile.
pub const AVX2_LANES: usize = 16;
/// Most rows of the AVX2 tile (2 × 6 = 12 accumulators of the 16 ymm registers).
pub const AVX2_ROWS: usize = 6;

/// AVX-512F tile: 32 query lanes × 1..=12 rows.
///
/// # Safety
/// The CPU must support `avx512f`.
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "calls #[target_feature] kernels")]
pub unsafe fn tile_avx512(t: &Tile<'_>, dist: &mut [f32], hits: &mut [u64]) -> bool {
    t.check(AVX512_LANES, AVX512_ROWS, dist, hits);
    // SAFETY: `check` asserted the lengths `avx512_m` reads and writes; same CPU features.
    unsafe {
        match t.rows.len() {
            1 => avx512_m::<1>(t, dist, hits),
            2 => avx512_m::<2>(t, dist, hits),
            3 => avx512_m::<3>(t, dist, hits),
            4 => avx512_m::<4>(t, dist, hits),
            5 => avx512_m::<5>(t, dist, hits),
            6 => avx512_m::<6>(t, dist, hits),
            7 => avx512_m::<7>(t, dist, hits),
            8 => avx512_m::<8>(t, dist, hits),
            9 => avx512_m::<9>(t, dist, hits),
            10 => avx512_m::<10>(t, dist, hits),
            11 => avx512_m::<11>(t, dist, hits),
            _ => avx512_m::<12>(t, dist, hits),
        }
    }
}

/// # Safety
/// `avx512f`; `t` passed [`Tile::check`] for 32 lanes and `t.rows.len() == M`.
#[inline]
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "SIMD loads and stores through raw pointers")]
unsafe fn avx512_m<const M: usize>(t: &Tile<'_>, dist: &mut [f32], hits: &mut [u64]) -> bool {
    const L: usize = AVX512_LANES;
    let rp: [*const f32; M] = std::array::from_fn(|i| t.rows[i].as_ptr());
    let q = t.queries.as_ptr();
    let mut a0 = [_mm512_setzero_ps(); M];
    let mut a1 = [_mm512_setzero_ps(); M];
    let mut s0 = [_mm512_setzero_ps(); M];
    let mut s1 = [_mm512_setzero_ps(); M];
    // SAFETY: the panel holds dim · 32 floats and every row dim floats (`Tile::check`), so
    // the loads at d · 32 (+16) and at row offset d, d < dim, stay inside them.
    unsafe {
        let mut c = 0;
        while c < t.dim {
            let ce = (c + CHUNK).min(t.dim);
            for d in c..ce {
                let q0 = _mm512_loadu_ps(q.add(d * L));
                let q1 = _mm512_loadu_ps(q.add(d * L + 16));
                for i in 0..M {
                    let b = _mm512_set1_ps(*rp[i].add(d));
                    a0[i] = _mm512_fmadd_ps(q0, b, a0[i]);
                    a1[i] = _mm512_fmadd_ps(q1, b, a1[i]);
                }
            }
            for i in 0..M {
                s0[i] = _mm512_add_ps(s0[i], a0[i]);
                s1[i] = _mm512_add_ps(s1[i], a1[i]);
                a0[i] = _mm512_setzero_ps();
                a1[i] = _mm512_setzero_ps();
            }
            c = ce;
        }
    }
    let (a0, a1) = (s0, s1);
    // SAFETY: bias and threshold hold >= 32 floats, row_bias >= M, dist >= 32 · M and hits
    // >= M entries (`Tile::check`).
    unsafe {
        let qb0 = _mm512_loadu_ps(t.query_bias.as_ptr());
        let qb1 = _mm512_loadu_ps(t.query_bias.as_ptr().add(16));
        let th0 = _mm512_loadu_ps(t.threshold.as_ptr());
        let th1 = _mm512_loadu_ps(t.threshold.as_ptr().add(16));
        let sc = _mm512_set1_ps(t.scale);
        let out = dist.as_mut_ptr();
        let mut any = 0u64;
        for i in 0..M {
            let rb = _mm512_set1_ps(*t.row_bias.as_ptr().add(i));
            let d0 = _mm512_fmadd_ps(a0[i], sc, _mm512_add_ps(qb0, rb));
            let d1 = _mm512_fmadd_ps(a1[i], sc, _mm512_add_ps(qb1, rb));
            _mm512_storeu_ps(out.add(i * L), d0);
            _mm512_storeu_ps(out.add(i * L + 16), d1);
            let h0 = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(d0, th0);
            let h1 = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(d1, th1);
            let h = u64::from(h0) | (u64::from(h1) << 16);
            *hits.as_mut_ptr().add(i) = h;
            any |= h;
        }
        any != 0
    }
}

/// AVX2+FMA tile: 16 query lanes × 1..=6 rows.
///
/// # Safety
/// The CPU must support `avx2` and `fma`.
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "calls #[target_feature] kernels")]
pub unsafe fn tile_avx2(t: &Tile<'_>, dist: &mut [f32], hits: &mut [u64]) -> bool {
    t.check(AVX2_LANES, AVX2_ROWS, dist, hits);
    // SAFETY: `check` asserted the lengths `avx2_m` reads and writes; same CPU features.
    unsafe {
        match t.rows.len() {
            1 => avx2_m::<1>(t, dist, hits),
            2 => avx2_m::<2>(t, dist, hits),
            3 => avx2_m::<3>(t, dist, hits),
            4 => avx2_m::<4>(t, dist, hits),
            5 => avx2_m::<5>(t, dist, hits),
            _ => avx2_m::<6>(t, dist, hits),
        }
    }
}

/// # Safety
/// `avx2` and `fma`; `t` passed [`Tile::check`] for 16 lanes and `t.rows.len() == M`.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "SIMD loads and stores through raw pointers")]
unsafe fn avx2_m<const M: usize>(t: &Tile<'_>, dist: &mut [f32], hits: &mut [u64]) -> bool {
    const L: usize = AVX2_LANES;
    let rp: [*const f32; M] = std::array::from_fn(|i| t.rows[i].as_ptr());
    let q = t.queries.as_ptr();
    let mut a0 = [_mm256_setzero_ps(); M];
    let mut a1 = [_mm256_setzero_ps(); M];
    // SAFETY: as in `avx512_m`, with 16-float panel groups.
    unsafe {
        for d in 0..t.dim {
            let q0 = _mm256_loadu_ps(q.add(d * L));
            let q1 = _mm256_loadu_ps(q.add(d * L + 8));
            for i in 0..M {
                let b = _mm256_broadcast_ss(&*rp[i].add(d));
                a0[i] = _mm256_fmadd_ps(q0, b, a0[i]);
                a1[i] = _mm256_fmadd_ps(q1, b, a1[i]);
            }
        }
    }
    // SAFETY: as in `avx512_m`, with 16 lanes.
    unsafe {
        let qb0 = _mm256_loadu_ps(t.query_bias.as_ptr());
        let qb1 = _mm256_loadu_ps(t.query_bias.as_ptr().add(8));
        let th0 = _mm256_loadu_ps(t.threshold.as_ptr());
        let th1 = _mm256_loadu_ps(t.threshold.as_ptr().add(8));
        let sc = _mm256_set1_ps(t.scale);
        let out = dist.as_mut_ptr();
        let mut any = 0u64;
        for i in 0..M {
            let rb = _mm256_set1_ps(*t.row_bias.as_ptr().add(i));
            let d0 = _mm256_fmadd_ps(a0[i], sc, _mm256_add_ps(qb0, rb));
            let d1 = _mm256_fmadd_ps(a1[i], sc, _mm256_add_ps(qb1, rb));
            _mm256_storeu_ps(out.add(i * L), d0);
            _mm256_storeu_ps(out.add(i * L + 8), d1);
            let h0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(d0, th0)) as u32;
            let h1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(d1, th1)) as u32;
            let h = u64::from(h0 | (h1 << 8));
            *hits.as_mut_ptr().add(i) = h;
            any |= h;
        }
        any != 0
    }
}
