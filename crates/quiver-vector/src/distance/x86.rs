//! x86-64 kernels: AVX2+FMA and AVX-512 (F for f32, BW for u8 codes).
//!
//! Every function here is `unsafe` only because it is compiled with `#[target_feature]`; the
//! dispatcher in [`super`] installs one into the kernel table only after
//! `is_x86_feature_detected!` confirmed the features. Loads stay inside `min(a.len(), b.len())`
//! (AVX-512 tails use masked loads, which never touch masked-off lanes).

use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma")]
#[expect(
    unsafe_code,
    reason = "AVX2 horizontal sum of a register, no memory access"
)]
unsafe fn hsum256(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[inline]
#[target_feature(enable = "avx2")]
#[expect(
    unsafe_code,
    reason = "AVX2 horizontal sum of a register, no memory access"
)]
unsafe fn hsum256_epi32(v: __m256i) -> u32 {
    let lo = _mm256_castsi256_si128(v);
    let hi = _mm256_extracti128_si256::<1>(v);
    let s = _mm_add_epi32(lo, hi);
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s) as u32
}

/// Squared L2, AVX2+FMA.
///
/// # Safety
/// The CPU must support `avx2` and `fma`.
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1, mut s2, mut s3) = (
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
    );
    let mut i = 0;
    // SAFETY: every load reads 8 floats starting at i with i + 8 <= n.
    while i + 32 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        let d1 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
        );
        let d2 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 16)),
            _mm256_loadu_ps(pb.add(i + 16)),
        );
        let d3 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 24)),
            _mm256_loadu_ps(pb.add(i + 24)),
        );
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
        i += 32;
    }
    while i + 8 <= n {
        let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    let mut s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    while i < n {
        let d = *pa.add(i) - *pb.add(i);
        s += d * d;
        i += 1;
    }
    s
}

/// Inner product, AVX2+FMA.
///
/// # Safety
/// The CPU must support `avx2` and `fma`.
#[target_feature(enable = "avx2,fma")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1, mut s2, mut s3) = (
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
        _mm256_setzero_ps(),
    );
    let mut i = 0;
    // SAFETY: every load reads 8 floats starting at i with i + 8 <= n.
    while i + 32 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
        s1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
            s1,
        );
        s2 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 16)),
            _mm256_loadu_ps(pb.add(i + 16)),
            s2,
        );
        s3 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 24)),
            _mm256_loadu_ps(pb.add(i + 24)),
            s3,
        );
        i += 32;
    }
    while i + 8 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
        i += 8;
    }
    let mut s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    while i < n {
        s += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    s
}

/// Squared L2, AVX-512F (masked tail).
///
/// # Safety
/// The CPU must support `avx512f`.
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn l2_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1, mut s2, mut s3) = (
        _mm512_setzero_ps(),
        _mm512_setzero_ps(),
        _mm512_setzero_ps(),
        _mm512_setzero_ps(),
    );
    let mut i = 0;
    // SAFETY: full loads read 16 floats at i with i + 16 <= n; the tail load is masked to
    // the n - i < 16 remaining lanes.
    while i + 64 <= n {
        let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
        let d1 = _mm512_sub_ps(
            _mm512_loadu_ps(pa.add(i + 16)),
            _mm512_loadu_ps(pb.add(i + 16)),
        );
        let d2 = _mm512_sub_ps(
            _mm512_loadu_ps(pa.add(i + 32)),
            _mm512_loadu_ps(pb.add(i + 32)),
        );
        let d3 = _mm512_sub_ps(
            _mm512_loadu_ps(pa.add(i + 48)),
            _mm512_loadu_ps(pb.add(i + 48)),
        );
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
        i += 64;
    }
    while i + 16 <= n {
        let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
        s1 = _mm512_fmadd_ps(d, d, s1);
        i += 16;
    }
    if i < n {
        let m: __mmask16 = ((1u32 << (n - i)) - 1) as __mmask16;
        let d = _mm512_sub_ps(
            _mm512_maskz_loadu_ps(m, pa.add(i)),
            _mm512_maskz_loadu_ps(m, pb.add(i)),
        );
        s2 = _mm512_fmadd_ps(d, d, s2);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

/// Inner product, AVX-512F (masked tail).
///
/// # Safety
/// The CPU must support `avx512f`.
#[target_feature(enable = "avx512f")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1, mut s2, mut s3) = (
        _mm512_setzero_ps(),
        _mm512_setzero_ps(),
        _mm512_setzero_ps(),
        _mm512_setzero_ps(),
    );
    let mut i = 0;
    // SAFETY: as in `l2_avx512`.
    while i + 64 <= n {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
        s1 = _mm512_fmadd_ps(
            _mm512_loadu_ps(pa.add(i + 16)),
            _mm512_loadu_ps(pb.add(i + 16)),
            s1,
        );
        s2 = _mm512_fmadd_ps(
            _mm512_loadu_ps(pa.add(i + 32)),
            _mm512_loadu_ps(pb.add(i + 32)),
            s2,
        );
        s3 = _mm512_fmadd_ps(
            _mm512_loadu_ps(pa.add(i + 48)),
            _mm512_loadu_ps(pb.add(i + 48)),
            s3,
        );
        i += 64;
    }
    while i + 16 <= n {
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s1);
        i += 16;
    }
    if i < n {
        let m: __mmask16 = ((1u32 << (n - i)) - 1) as __mmask16;
        s2 = _mm512_fmadd_ps(
            _mm512_maskz_loadu_ps(m, pa.add(i)),
            _mm512_maskz_loadu_ps(m, pb.add(i)),
            s2,
        );
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

/// Squared L2 of u8 codes, AVX2 (widen to i16, `madd` into i32 lanes).
///
/// # Safety
/// The CPU must support `avx2`.
#[target_feature(enable = "avx2")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn l2_u8_avx2(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // SAFETY: each load reads 16 bytes at i with i + 16 <= n.
    while i + 16 <= n {
        let va = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i).cast()));
        let vb = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i).cast()));
        let d = _mm256_sub_epi16(va, vb);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
        i += 16;
    }
    let mut s = hsum256_epi32(acc);
    while i < n {
        let d = i32::from(*pa.add(i)) - i32::from(*pb.add(i));
        s = s.wrapping_add((d * d) as u32);
        i += 1;
    }
    s
}

/// Inner product of u8 codes, AVX2.
///
/// # Safety
/// The CPU must support `avx2`.
#[target_feature(enable = "avx2")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn dot_u8_avx2(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // SAFETY: each load reads 16 bytes at i with i + 16 <= n.
    while i + 16 <= n {
        let va = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i).cast()));
        let vb = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i).cast()));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vb));
        i += 16;
    }
    let mut s = hsum256_epi32(acc);
    while i < n {
        s = s.wrapping_add(u32::from(*pa.add(i)) * u32::from(*pb.add(i)));
        i += 1;
    }
    s
}

/// Squared L2 of u8 codes, AVX-512BW.
///
/// # Safety
/// The CPU must support `avx512f` and `avx512bw`.
#[target_feature(enable = "avx512f,avx512bw")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn l2_u8_avx512(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut i = 0;
    // SAFETY: each load reads 32 bytes at i with i + 32 <= n.
    while i + 64 <= n {
        let va = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pa.add(i).cast()));
        let vb = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pb.add(i).cast()));
        let d = _mm512_sub_epi16(va, vb);
        acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(d, d));
        let va = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pa.add(i + 32).cast()));
        let vb = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pb.add(i + 32).cast()));
        let d = _mm512_sub_epi16(va, vb);
        acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(d, d));
        i += 64;
    }
    while i + 32 <= n {
        let va = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pa.add(i).cast()));
        let vb = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pb.add(i).cast()));
        let d = _mm512_sub_epi16(va, vb);
        acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(d, d));
        i += 32;
    }
    let mut s = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1)) as u32;
    while i < n {
        let d = i32::from(*pa.add(i)) - i32::from(*pb.add(i));
        s = s.wrapping_add((d * d) as u32);
        i += 1;
    }
    s
}

/// Inner product of u8 codes, AVX-512BW.
///
/// # Safety
/// The CPU must support `avx512f` and `avx512bw`.
#[target_feature(enable = "avx512f,avx512bw")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn dot_u8_avx512(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    // SAFETY: each load reads 32 bytes at i with i + 32 <= n.
    while i + 32 <= n {
        let va = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pa.add(i).cast()));
        let vb = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pb.add(i).cast()));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(va, vb));
        i += 32;
    }
    let mut s = _mm512_reduce_add_epi32(acc) as u32;
    while i < n {
        s = s.wrapping_add(u32::from(*pa.add(i)) * u32::from(*pb.add(i)));
        i += 1;
    }
    s
}

/// Hints the CPU to pull the cache line at `p` into L1. A hint only: never faults.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    // SAFETY: PREFETCHT0 is a hint that never faults, whatever the address; SSE is part of
    // the x86-64 baseline.
    #[expect(unsafe_code, reason = "prefetch intrinsic takes a raw pointer")]
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
}

/// Hints the CPU to pull the cache line at `p` into L2 (not L1). A hint only: never faults.
#[inline(always)]
pub fn prefetch_l2(p: *const u8) {
    // SAFETY: PREFETCHT1 is a hint that never faults, whatever the address; SSE is part of
    // the x86-64 baseline.
    #[expect(unsafe_code, reason = "prefetch intrinsic takes a raw pointer")]
    unsafe {
        _mm_prefetch::<_MM_HINT_T1>(p.cast());
    }
}
