//! aarch64 NEON kernels (NEON is part of the aarch64 baseline; the dispatcher still checks).

use std::arch::aarch64::*;

/// Squared L2, NEON.
///
/// # Safety
/// The CPU must support `neon`.
#[target_feature(enable = "neon")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn l2_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1, mut s2, mut s3) = (
        vdupq_n_f32(0.0),
        vdupq_n_f32(0.0),
        vdupq_n_f32(0.0),
        vdupq_n_f32(0.0),
    );
    let mut i = 0;
    // SAFETY: each load reads 4 floats at i with i + 4 <= n.
    while i + 16 <= n {
        let d0 = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        let d1 = vsubq_f32(vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
        let d2 = vsubq_f32(vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8)));
        let d3 = vsubq_f32(vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12)));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
        i += 16;
    }
    while i + 4 <= n {
        let d = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        s0 = vfmaq_f32(s0, d, d);
        i += 4;
    }
    let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    while i < n {
        let d = *pa.add(i) - *pb.add(i);
        s += d * d;
        i += 1;
    }
    s
}

/// Inner product, NEON.
///
/// # Safety
/// The CPU must support `neon`.
#[target_feature(enable = "neon")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1, mut s2, mut s3) = (
        vdupq_n_f32(0.0),
        vdupq_n_f32(0.0),
        vdupq_n_f32(0.0),
        vdupq_n_f32(0.0),
    );
    let mut i = 0;
    // SAFETY: each load reads 4 floats at i with i + 4 <= n.
    while i + 16 <= n {
        s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        s1 = vfmaq_f32(s1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
        s2 = vfmaq_f32(s2, vld1q_f32(pa.add(i + 8)), vld1q_f32(pb.add(i + 8)));
        s3 = vfmaq_f32(s3, vld1q_f32(pa.add(i + 12)), vld1q_f32(pb.add(i + 12)));
        i += 16;
    }
    while i + 4 <= n {
        s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        i += 4;
    }
    let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    while i < n {
        s += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    s
}

/// Squared L2 of u8 codes, NEON (absolute difference widened to u16, squared into u32).
///
/// # Safety
/// The CPU must support `neon`.
#[target_feature(enable = "neon")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn l2_u8_neon(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = vdupq_n_u32(0);
    let mut i = 0;
    // SAFETY: each load reads 8 bytes at i with i + 8 <= n.
    while i + 8 <= n {
        let d = vabdl_u8(vld1_u8(pa.add(i)), vld1_u8(pb.add(i)));
        acc = vmlal_u16(acc, vget_low_u16(d), vget_low_u16(d));
        acc = vmlal_high_u16(acc, d, d);
        i += 8;
    }
    let mut s = vaddvq_u32(acc);
    while i < n {
        let d = i32::from(*pa.add(i)) - i32::from(*pb.add(i));
        s = s.wrapping_add((d * d) as u32);
        i += 1;
    }
    s
}

/// Inner product of u8 codes, NEON.
///
/// # Safety
/// The CPU must support `neon`.
#[target_feature(enable = "neon")]
#[expect(unsafe_code, reason = "SIMD loads from raw pointers within the slices")]
pub unsafe fn dot_u8_neon(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = vdupq_n_u32(0);
    let mut i = 0;
    // SAFETY: each load reads 8 bytes at i with i + 8 <= n.
    while i + 8 <= n {
        let p = vmull_u8(vld1_u8(pa.add(i)), vld1_u8(pb.add(i)));
        acc = vpadalq_u16(acc, p);
        i += 8;
    }
    let mut s = vaddvq_u32(acc);
    while i < n {
        s = s.wrapping_add(u32::from(*pa.add(i)) * u32::from(*pb.add(i)));
        i += 1;
    }
    s
}
