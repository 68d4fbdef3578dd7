//! Asymmetric SQ8 kernels: an f32 query (with the per-dimension scale already folded in)
//! against one row of u8 codes.
//!
//! * `dot_u8(q, c) = Σ_d q[d] · c[d]`
//! * `l2_u8(q, w, c) = Σ_d w[d] · (q[d] − c[d])²`
//!
//! [`scalar`] is the reference; the AVX-512 and AVX2+FMA paths are chosen at run time
//! ([`Isa::detect`]) and are tested against it. No `-C target-cpu` is needed.

/// Instruction set a kernel call runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, the reference.
    Scalar,
    /// AVX2 + FMA, 8 lanes.
    Avx2,
    /// AVX-512F, 16 lanes.
    Avx512,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Every instruction set this CPU supports (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        #[cfg_attr(
            not(target_arch = "x86_64"),
            expect(unused_mut, reason = "x86-only pushes")
        )]
        let mut v = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }
}

/// Scalar reference kernels.
pub mod scalar {
    /// `Σ q[d] · c[d]` over the common length.
    pub fn dot_u8(q: &[f32], c: &[u8]) -> f32 {
        q.iter().zip(c).map(|(&x, &y)| x * f32::from(y)).sum()
    }

    /// `Σ w[d] · (q[d] − c[d])²` over the common length.
    pub fn l2_u8(q: &[f32], w: &[f32], c: &[u8]) -> f32 {
        q.iter()
            .zip(w)
            .zip(c)
            .map(|((&x, &wd), &y)| {
                let t = x - f32::from(y);
                wd * t * t
            })
            .sum()
    }
}

/// `Σ q[d] · c[d]` on `isa` (which must be one [`Isa::available`] lists; otherwise the
/// scalar path runs).
#[inline]
#[cfg_attr(
    target_arch = "x86_64",
    expect(
        unsafe_code,
        reason = "calls target_feature kernels after runtime detection"
    )
)]
pub fn dot_u8(isa: Isa, q: &[f32], c: &[u8]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only produced by `detect`/`available` after
        // `is_x86_feature_detected!("avx512f")`; re-checked here so a hand-made value is safe too.
        Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => unsafe {
            x86::dot_u8_avx512(q, c)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 and fma are detected at run time right here.
        Isa::Avx2
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma") =>
        unsafe { x86::dot_u8_avx2(q, c) },
        _ => scalar::dot_u8(q, c),
    }
}

/// `Σ w[d] · (q[d] − c[d])²` on `isa` (see [`dot_u8`]).
#[inline]
#[cfg_attr(
    target_arch = "x86_64",
    expect(
        unsafe_code,
        reason = "calls target_feature kernels after runtime detection"
    )
)]
pub fn l2_u8(isa: Isa, q: &[f32], w: &[f32], c: &[u8]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f is detected at run time right here.
        Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => unsafe {
            x86::l2_u8_avx512(q, w, c)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 and fma are detected at run time right here.
        Isa::Avx2
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma") =>
        unsafe { x86::l2_u8_avx2(q, w, c) },
        _ => scalar::l2_u8(q, w, c),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[expect(unsafe_code, reason = "unaligned SIMD loads from slices")]
    pub(super) fn dot_u8_avx512(q: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(c.len());
        let (qp, cp) = (q.as_ptr(), c.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n, so 32 f32 and 32 u8 from offset i are in bounds.
            let (q0, q1, c0, c1) = unsafe {
                (
                    _mm512_loadu_ps(qp.add(i)),
                    _mm512_loadu_ps(qp.add(i + 16)),
                    _mm_loadu_si128(cp.add(i).cast()),
                    _mm_loadu_si128(cp.add(i + 16).cast()),
                )
            };
            acc0 = _mm512_fmadd_ps(q0, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c0)), acc0);
            acc1 = _mm512_fmadd_ps(q1, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c1)), acc1);
            i += 32;
        }
        if i + 16 <= n {
            // SAFETY: i + 16 <= n.
            let (q0, c0) = unsafe {
                (
                    _mm512_loadu_ps(qp.add(i)),
                    _mm_loadu_si128(cp.add(i).cast()),
                )
            };
            acc0 = _mm512_fmadd_ps(q0, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c0)), acc0);
            i += 16;
        }
        let mut s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        for j in i..n {
            s += q[j] * f32::from(c[j]);
        }
        s
    }

    #[target_feature(enable = "avx512f")]
    #[expect(unsafe_code, reason = "unaligned SIMD loads from slices")]
    pub(super) fn l2_u8_avx512(q: &[f32], w: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(w.len()).min(c.len());
        let (qp, wp, cp) = (q.as_ptr(), w.as_ptr(), c.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n, so 32 elements of q, w and c from offset i are in bounds.
            let (q0, q1, w0, w1, c0, c1) = unsafe {
                (
                    _mm512_loadu_ps(qp.add(i)),
                    _mm512_loadu_ps(qp.add(i + 16)),
                    _mm512_loadu_ps(wp.add(i)),
                    _mm512_loadu_ps(wp.add(i + 16)),
                    _mm_loadu_si128(cp.add(i).cast()),
                    _mm_loadu_si128(cp.add(i + 16).cast()),
                )
            };
            let t0 = _mm512_sub_ps(q0, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c0)));
            let t1 = _mm512_sub_ps(q1, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c1)));
            acc0 = _mm512_fmadd_ps(_mm512_mul_ps(w0, t0), t0, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_mul_ps(w1, t1), t1, acc1);
            i += 32;
        }
        if i + 16 <= n {
            // SAFETY: i + 16 <= n.
            let (q0, w0, c0) = unsafe {
                (
                    _mm512_loadu_ps(qp.add(i)),
                    _mm512_loadu_ps(wp.add(i)),
                    _mm_loadu_si128(cp.add(i).cast()),
                )
            };
            let t0 = _mm512_sub_ps(q0, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c0)));
            acc0 = _mm512_fmadd_ps(_mm512_mul_ps(w0, t0), t0, acc0);
            i += 16;
        }
        let mut s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        for j in i..n {
            let t = q[j] - f32::from(c[j]);
            s += w[j] * t * t;
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    #[expect(unsafe_code, reason = "unaligned SIMD loads from slices")]
    pub(super) fn dot_u8_avx2(q: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(c.len());
        let (qp, cp) = (q.as_ptr(), c.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n; `_mm_loadl_epi64` reads 8 bytes at i and at i + 8.
            let (q0, q1, c0, c1) = unsafe {
                (
                    _mm256_loadu_ps(qp.add(i)),
                    _mm256_loadu_ps(qp.add(i + 8)),
                    _mm_loadl_epi64(cp.add(i).cast()),
                    _mm_loadl_epi64(cp.add(i + 8).cast()),
                )
            };
            acc0 = _mm256_fmadd_ps(q0, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c0)), acc0);
            acc1 = _mm256_fmadd_ps(q1, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c1)), acc1);
            i += 16;
        }
        if i + 8 <= n {
            // SAFETY: i + 8 <= n.
            let (q0, c0) = unsafe {
                (
                    _mm256_loadu_ps(qp.add(i)),
                    _mm_loadl_epi64(cp.add(i).cast()),
                )
            };
            acc0 = _mm256_fmadd_ps(q0, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c0)), acc0);
            i += 8;
        }
        let mut s = hsum256(_mm256_add_ps(acc0, acc1));
        for j in i..n {
            s += q[j] * f32::from(c[j]);
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    #[expect(unsafe_code, reason = "unaligned SIMD loads from slices")]
    pub(super) fn l2_u8_avx2(q: &[f32], w: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(w.len()).min(c.len());
        let (qp, wp, cp) = (q.as_ptr(), w.as_ptr(), c.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n for q, w and c.
            let (q0, q1, w0, w1, c0, c1) = unsafe {
                (
                    _mm256_loadu_ps(qp.add(i)),
                    _mm256_loadu_ps(qp.add(i + 8)),
                    _mm256_loadu_ps(wp.add(i)),
                    _mm256_loadu_ps(wp.add(i + 8)),
                    _mm_loadl_epi64(cp.add(i).cast()),
                    _mm_loadl_epi64(cp.add(i + 8).cast()),
                )
            };
            let t0 = _mm256_sub_ps(q0, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c0)));
            let t1 = _mm256_sub_ps(q1, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c1)));
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(w0, t0), t0, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_mul_ps(w1, t1), t1, acc1);
            i += 16;
        }
        if i + 8 <= n {
            // SAFETY: i + 8 <= n.
            let (q0, w0, c0) = unsafe {
                (
                    _mm256_loadu_ps(qp.add(i)),
                    _mm256_loadu_ps(wp.add(i)),
                    _mm_loadl_epi64(cp.add(i).cast()),
                )
            };
            let t0 = _mm256_sub_ps(q0, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c0)));
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(w0, t0), t0, acc0);
            i += 8;
        }
        let mut s = hsum256(_mm256_add_ps(acc0, acc1));
        for j in i..n {
            let t = q[j] - f32::from(c[j]);
            s += w[j] * t * t;
        }
        s
    }
}
