//! x86-64 tile kernels of batched flat search (see [`super::tile`]): AVX-512F with 48 query
//! lanes (three zmm registers) × up to 8 rows, AVX2+FMA with 16 lanes (two ymm) × up to 6 rows.
//!
//! Per component the kernel loads the query panel's lanes once, broadcasts each row's
//! component and issues one FMA per accumulator: 24 (AVX-512) or 12 (AVX2) independent
//! accumulators cover the FMA latency, and there is one load per ~2 FMAs. On Zen 4 the
//! AVX-512 tile runs at ~105–110 GFLOP/s per core from L1/L2, within noise of 32 × 12 and
//! 64 × 6; 48 lanes waste the least on 1,000-query batches (1,008 lanes computed). The functions are
//! `unsafe` only because of `#[target_feature]`: every memory bound is asserted by
//! `Tile::check` before the first load.

use super::tile::{Candidates, Tile};
use std::arch::x86_64::*;

/// Components summed in registers before the partial sums are added to running totals
/// (shorter sequential sums: less rounding error for long vectors).
const CHUNK: usize = 128;

/// Query lanes of the AVX-512 tile.
pub const AVX512_LANES: usize = 48;
/// Most rows of the AVX-512 tile (3 × 8 = 24 accumulators of the 32 zmm registers; 8 row
/// pointers stay in general registers).
pub const AVX512_ROWS: usize = 8;
/// Query lanes of the AVX2 tile.
pub const AVX2_LANES: usize = 16;
/// Most rows of the AVX2 tile (2 × 6 = 12 accumulators of the 16 ymm registers).
pub const AVX2_ROWS: usize = 6;

/// Calls `$f::<$n>($args)` for a tail length `$n` known only at run time.
macro_rules! tail {
    ($n:expr, $f:ident($t:expr, $r:expr, $o:expr), $($k:literal)+) => {
        match $n {
            $($k => $f::<$k>($t, $r, $o),)+
            _ => unreachable!("tail longer than a tile"),
        }
    };
}

/// AVX-512F tile: 48 query lanes × 8 rows, then one narrower tile for the rest.
///
/// # Safety
/// The CPU must support `avx512f`.
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "calls #[target_feature] kernels")]
pub unsafe fn tile_avx512(t: &Tile<'_>, out: &mut Candidates) -> usize {
    const L: usize = AVX512_LANES;
    const R: usize = AVX512_ROWS;
    t.check(L, R, out);
    out.len = 0;
    let cap = out.dist.len().min(out.code.len());
    let n = t.rows.len();
    let mut r0 = 0;
    // SAFETY: `check` asserted every length `avx512_m` reads; the capacity test before each
    // tile leaves room for its 48 · 8 candidates plus one register of slack.
    unsafe {
        while r0 + R <= n && out.len + R * L + 16 <= cap {
            avx512_m::<R>(t, r0, out);
            r0 += R;
        }
        if r0 < n && out.len + R * L + 16 <= cap {
            tail!(n - r0, avx512_m(t, r0, out), 1 2 3 4 5 6 7);
            r0 = n;
        }
    }
    r0
}

/// Scores rows `r0..r0 + M` against the panel and appends the passing pairs to `out`.
///
/// # Safety
/// `avx512f`; `t` passed [`Tile::check`] for 48 lanes, `r0 + M <= t.rows.len()`, and `out`
/// has room for `48 · M + 16` more entries.
#[inline]
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "SIMD loads and stores through raw pointers")]
unsafe fn avx512_m<const M: usize>(t: &Tile<'_>, r0: usize, out: &mut Candidates) {
    const V: usize = AVX512_LANES / 16;
    const L: usize = AVX512_LANES;
    let rp: [*const f32; M] = std::array::from_fn(|i| t.rows[r0 + i].as_ptr());
    let q = t.queries.as_ptr();
    let mut s = [[_mm512_setzero_ps(); V]; M];
    let mut c = 0;
    // SAFETY: the panel holds dim · L floats and every row dim floats (`Tile::check`), so
    // the loads at d · L + 16 · v and at row offset d, d < dim, stay inside them.
    unsafe {
        while c < t.dim {
            let ce = (c + CHUNK).min(t.dim);
            let mut a = [[_mm512_setzero_ps(); V]; M];
            for d in c..ce {
                let qv: [__m512; V] =
                    std::array::from_fn(|v| _mm512_loadu_ps(q.add(d * L + 16 * v)));
                for i in 0..M {
                    let b = _mm512_set1_ps(*rp[i].add(d));
                    for v in 0..V {
                        a[i][v] = _mm512_fmadd_ps(qv[v], b, a[i][v]);
                    }
                }
            }
            if c == 0 {
                s = a;
            } else {
                for i in 0..M {
                    for v in 0..V {
                        s[i][v] = _mm512_add_ps(s[i][v], a[i][v]);
                    }
                }
            }
            c = ce;
        }
    }
    // SAFETY: bias and threshold hold >= L floats, row_bias >= r0 + M (`Tile::check`); each
    // compressed store writes 16 entries at `out.len`, which stays below the room the caller
    // guaranteed (at most L · M passing pairs, plus 16 of slack).
    unsafe {
        let qb: [__m512; V] =
            std::array::from_fn(|v| _mm512_loadu_ps(t.query_bias.as_ptr().add(16 * v)));
        let th: [__m512; V] =
            std::array::from_fn(|v| _mm512_loadu_ps(t.threshold.as_ptr().add(16 * v)));
        let sc = _mm512_set1_ps(t.scale);
        let lane0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (i, si) in s.iter().enumerate() {
            let rb = _mm512_set1_ps(*t.row_bias.as_ptr().add(r0 + i));
            let mut d = [_mm512_setzero_ps(); V];
            let mut h = [0u16; V];
            let mut any = 0u16;
            for v in 0..V {
                d[v] = _mm512_fmadd_ps(si[v], sc, _mm512_add_ps(qb[v], rb));
                h[v] = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(d[v], th[v]);
                any |= h[v];
            }
            if any == 0 {
                continue;
            }
            for v in 0..V {
                if h[v] != 0 {
                    let code = _mm512_add_epi32(
                        lane0,
                        _mm512_set1_epi32((((r0 + i) << 6) + 16 * v) as i32),
                    );
                    // Register-form compress (the memory form is slow on Zen 4), then a full
                    // store into the slack.
                    let at = out.len;
                    _mm512_storeu_ps(
                        out.dist.as_mut_ptr().add(at),
                        _mm512_maskz_compress_ps(h[v], d[v]),
                    );
                    _mm512_storeu_si512(
                        out.code.as_mut_ptr().add(at).cast(),
                        _mm512_maskz_compress_epi32(h[v], code),
                    );
                    out.len = at + h[v].count_ones() as usize;
                }
            }
        }
    }
}

/// AVX2+FMA tile: 16 query lanes × 6 rows, then one narrower tile for the rest.
///
/// # Safety
/// The CPU must support `avx2` and `fma`.
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "calls #[target_feature] kernels")]
pub unsafe fn tile_avx2(t: &Tile<'_>, out: &mut Candidates) -> usize {
    const L: usize = AVX2_LANES;
    const R: usize = AVX2_ROWS;
    t.check(L, R, out);
    out.len = 0;
    let cap = out.dist.len().min(out.code.len());
    let n = t.rows.len();
    let mut r0 = 0;
    // SAFETY: as in `tile_avx512`.
    unsafe {
        while r0 + R <= n && out.len + R * L + 16 <= cap {
            avx2_m::<R>(t, r0, out);
            r0 += R;
        }
        if r0 < n && out.len + R * L + 16 <= cap {
            tail!(n - r0, avx2_m(t, r0, out), 1 2 3 4 5);
            r0 = n;
        }
    }
    r0
}

/// # Safety
/// `avx2` and `fma`; as `avx512_m` with 16 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "SIMD loads and stores through raw pointers")]
unsafe fn avx2_m<const M: usize>(t: &Tile<'_>, r0: usize, out: &mut Candidates) {
    const L: usize = AVX2_LANES;
    let rp: [*const f32; M] = std::array::from_fn(|i| t.rows[r0 + i].as_ptr());
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
    // SAFETY: bias and threshold hold >= 16 floats, row_bias >= r0 + M (`Tile::check`);
    // the scalar appends stay within the 16 · M entries the caller guaranteed.
    unsafe {
        let qb0 = _mm256_loadu_ps(t.query_bias.as_ptr());
        let qb1 = _mm256_loadu_ps(t.query_bias.as_ptr().add(8));
        let th0 = _mm256_loadu_ps(t.threshold.as_ptr());
        let th1 = _mm256_loadu_ps(t.threshold.as_ptr().add(8));
        let sc = _mm256_set1_ps(t.scale);
        let mut buf = [0.0f32; 16];
        for i in 0..M {
            let rb = _mm256_set1_ps(*t.row_bias.as_ptr().add(r0 + i));
            let d0 = _mm256_fmadd_ps(a0[i], sc, _mm256_add_ps(qb0, rb));
            let d1 = _mm256_fmadd_ps(a1[i], sc, _mm256_add_ps(qb1, rb));
            let h0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(d0, th0)) as u32;
            let h1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(d1, th1)) as u32;
            let mut h = h0 | (h1 << 8);
            if h == 0 {
                continue;
            }
            _mm256_storeu_ps(buf.as_mut_ptr(), d0);
            _mm256_storeu_ps(buf.as_mut_ptr().add(8), d1);
            while h != 0 {
                let j = h.trailing_zeros() as usize;
                h &= h - 1;
                *out.dist.as_mut_ptr().add(out.len) = buf[j];
                *out.code.as_mut_ptr().add(out.len) = ((r0 + i) << 6 | j) as u32;
                out.len += 1;
            }
        }
    }
}
