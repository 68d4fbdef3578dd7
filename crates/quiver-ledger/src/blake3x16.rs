//! Many short BLAKE3 hashes at once: sixteen messages per AVX-512 pass.
//!
//! A Merkle log hashes millions of *short* inputs: a ~250-byte leaf, a 65-byte interior node.
//! The `blake3` crate's SIMD paths parallelise across the 1 KiB chunks of *one* long input, so
//! for inputs under a chunk it compresses one 64-byte block at a time (~1.3 µs per KiB here,
//! slower than SHA-NI). This module puts a different message in each of the 16 32-bit lanes of
//! an AVX-512 register and runs the compression function on all sixteen together, so a block
//! costs roughly one sixteenth of a 16-wide compression.
//!
//! Scope: unkeyed BLAKE3 with a 32-byte output, of `prefix || message` where the whole input
//! fits in one chunk (≤ 1024 bytes) — every interior node and nearly every leaf. Longer inputs,
//! and every input on CPUs without AVX-512F, go through the `blake3` crate; both paths give the
//! same bytes (tested against the crate on every length up to and past a chunk).

/// Inputs up to this many bytes (prefix included) take the lane path: one BLAKE3 chunk.
const CHUNK_LEN: usize = 1024;

/// BLAKE3 of `prefix || msg` for every message of `msgs`, written to `out[i]`.
///
/// # Panics
/// If `out` is shorter than `msgs` (a caller bug).
pub(crate) fn hash_prefixed_many(prefix: u8, msgs: &[&[u8]], out: &mut [[u8; 32]]) {
    assert!(out.len() >= msgs.len(), "output shorter than input list");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        // Lanes run in lockstep for as many blocks as their longest input, so inputs are
        // grouped by block count (1..=16): each pass then wastes no compression.
        let mut lanes = [[0usize; 16]; 16];
        let mut filled = [0usize; 16];
        for (i, m) in msgs.iter().enumerate() {
            if m.len() >= CHUNK_LEN {
                out[i] = portable(prefix, m);
                continue;
            }
            let g = (1 + m.len()).div_ceil(64).max(1) - 1;
            lanes[g][filled[g]] = i;
            filled[g] += 1;
            if filled[g] == 16 {
                x86::run_lanes(prefix, msgs, &lanes[g], out);
                filled[g] = 0;
            }
        }
        // Leftovers of all groups, shortest first, packed sixteen at a time.
        let mut rest = [0usize; 16];
        let mut n = 0;
        for (g, lane) in lanes.iter().enumerate() {
            for &i in &lane[..filled[g]] {
                rest[n] = i;
                n += 1;
                if n == 16 {
                    x86::run_lanes(prefix, msgs, &rest, out);
                    n = 0;
                }
            }
        }
        if n > 0 {
            x86::run_lanes(prefix, msgs, &rest[..n], out);
        }
        return;
    }
    for (m, o) in msgs.iter().zip(out.iter_mut()) {
        *o = portable(prefix, m);
    }
}

/// One input through the `blake3` crate.
fn portable(prefix: u8, msg: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[prefix]);
    h.update(msg);
    *h.finalize().as_bytes()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    #![expect(
        unsafe_code,
        reason = "AVX-512 loads from pointers kept inside their slices; see each SAFETY note"
    )]

    use std::arch::x86_64::*;

    const IV: [u32; 8] = [
        0x6A09_E667,
        0xBB67_AE85,
        0x3C6E_F372,
        0xA54F_F53A,
        0x510E_527F,
        0x9B05_688C,
        0x1F83_D9AB,
        0x5BE0_CD19,
    ];
    const CHUNK_START: u32 = 1;
    const CHUNK_END: u32 = 2;
    const ROOT: u32 = 8;
    const BLOCK: usize = 64;

    /// Message word order of each of the seven rounds (the specification's permutation
    /// applied round after round).
    const SCHEDULE: [[usize; 16]; 7] = {
        const PERM: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
        let mut s = [[0usize; 16]; 7];
        let mut i = 0;
        while i < 16 {
            s[0][i] = i;
            i += 1;
        }
        let mut r = 1;
        while r < 7 {
            let mut i = 0;
            while i < 16 {
                s[r][i] = s[r - 1][PERM[i]];
                i += 1;
            }
            r += 1;
        }
        s
    };

    /// Hashes `prefix || msgs[j]` for the (at most 16) indices in `idx`, every one shorter
    /// than a chunk, into `out[j]`.
    pub(super) fn run_lanes(prefix: u8, msgs: &[&[u8]], idx: &[usize], out: &mut [[u8; 32]]) {
        debug_assert!(idx.len() <= 16);
        // SAFETY: the caller checked `is_x86_feature_detected!` for avx512f and avx512bw.
        unsafe { run_lanes_avx512(prefix, msgs, idx, out) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn run_lanes_avx512(prefix: u8, msgs: &[&[u8]], idx: &[usize], out: &mut [[u8; 32]]) {
        let n = idx.len();
        // Per lane: the input is `prefix || msg`, 1 + len bytes in at least one block.
        let mut blocks = [0usize; 16];
        let mut ptrs = [std::ptr::null::<u8>(); 16];
        let mut lens = [0usize; 16];
        for j in 0..n {
            let msg = msgs[idx[j]];
            blocks[j] = (1 + msg.len()).div_ceil(BLOCK).max(1);
            ptrs[j] = msg.as_ptr();
            lens[j] = msg.len();
        }
        let max_blocks = blocks.iter().copied().max().unwrap_or(0);
        let mut h = IV.map(|w| _mm512_set1_epi32(w as i32));
        for b in 0..max_blocks {
            let mut block_lens = [0u32; 16];
            let mut flags = [0u32; 16];
            let mut active: u16 = 0;
            let mut rows = [_mm512_setzero_si512(); 16];
            for j in 0..n {
                if b >= blocks[j] {
                    continue;
                }
                active |= 1 << j;
                // Input byte `64b + k` is message byte `64b + k - 1` (byte 0 is the prefix).
                let off = b * BLOCK;
                let this = (1 + lens[j] - off).min(BLOCK);
                block_lens[j] = this as u32;
                flags[j] = if b == 0 { CHUNK_START } else { 0 }
                    | if b + 1 == blocks[j] {
                        CHUNK_END | ROOT
                    } else {
                        0
                    };
                let mut mask: u64 = if this == BLOCK {
                    !0
                } else {
                    (1u64 << this) - 1
                };
                if b == 0 {
                    mask &= !1;
                }
                let p = ptrs[j].wrapping_add(off).wrapping_sub(1);
                // SAFETY: only the bytes selected by `mask` are read, and those are message
                // bytes `off - 1 + k` for `k` in 0..this (k ≥ 1 when off = 0), all inside
                // the slice; masked-off bytes are not accessed (and read as zero, which is
                // BLAKE3's padding).
                let v = unsafe { _mm512_maskz_loadu_epi8(mask, p.cast()) };
                rows[j] = if b == 0 {
                    _mm512_mask_set1_epi8(v, 1, prefix as i8)
                } else {
                    v
                };
            }
            let m = transpose16(rows);
            // SAFETY: `block_lens` and `flags` are 16 u32s each.
            let (lens_v, flags_v) = unsafe {
                (
                    _mm512_loadu_si512(block_lens.as_ptr().cast()),
                    _mm512_loadu_si512(flags.as_ptr().cast()),
                )
            };
            compress16(&mut h, &m, lens_v, flags_v, active);
        }
        let mut words = [[0u32; 16]; 8];
        for (w, hv) in words.iter_mut().zip(h.iter()) {
            // SAFETY: `w` is 16 u32s.
            unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), *hv) };
        }
        for (j, &i) in idx.iter().enumerate() {
            let o = &mut out[i];
            for (k, w) in words.iter().enumerate() {
                o[4 * k..4 * k + 4].copy_from_slice(&w[j].to_le_bytes());
            }
        }
    }

    /// 16×16 transpose of 32-bit words: row `j` (lane `j`'s block) becomes lane `j` of every
    /// output, output `w` holding message word `w` of all sixteen lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
        // Interleave pairs of rows: 32-bit, then 64-bit units inside each 128-bit lane. After
        // this, `s[4g + c]` holds, in 128-bit lane L, column 4L + c of rows 4g..4g+4.
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        let mut s = [_mm512_setzero_si512(); 16];
        for g in 0..4 {
            let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            s[4 * g] = _mm512_unpacklo_epi64(a, c);
            s[4 * g + 1] = _mm512_unpackhi_epi64(a, c);
            s[4 * g + 2] = _mm512_unpacklo_epi64(b, d);
            s[4 * g + 3] = _mm512_unpackhi_epi64(b, d);
        }
        // Transpose the 4×4 grid of 128-bit lanes for each column offset c.
        let mut out = [_mm512_setzero_si512(); 16];
        for c in 0..4 {
            let (s0, s1, s2, s3) = (s[c], s[4 + c], s[8 + c], s[12 + c]);
            let v0 = _mm512_shuffle_i32x4::<0x44>(s0, s1);
            let v1 = _mm512_shuffle_i32x4::<0xEE>(s0, s1);
            let v2 = _mm512_shuffle_i32x4::<0x44>(s2, s3);
            let v3 = _mm512_shuffle_i32x4::<0xEE>(s2, s3);
            out[c] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
            out[4 + c] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
            out[8 + c] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
            out[12 + c] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
        }
        out
    }

    #[inline(always)]
    fn add(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: only reached from `avx512f` functions below (inlined into them).
        unsafe { _mm512_add_epi32(a, b) }
    }

    /// The quarter-round `G` on lanes `a, b, c, d` with message words `x, y`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn g(v: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize, x: __m512i, y: __m512i) {
        v[a] = add(add(v[a], v[b]), x);
        v[d] = _mm512_ror_epi32::<16>(_mm512_xor_si512(v[d], v[a]));
        v[c] = add(v[c], v[d]);
        v[b] = _mm512_ror_epi32::<12>(_mm512_xor_si512(v[b], v[c]));
        v[a] = add(add(v[a], v[b]), y);
        v[d] = _mm512_ror_epi32::<8>(_mm512_xor_si512(v[d], v[a]));
        v[c] = add(v[c], v[d]);
        v[b] = _mm512_ror_epi32::<7>(_mm512_xor_si512(v[b], v[c]));
    }

    /// One round: the four column and the four diagonal quarter-rounds.
    #[inline(always)]
    fn round(v: &mut [__m512i; 16], m: &[__m512i; 16], s: &[usize; 16]) {
        // SAFETY: only inlined into `compress16`, which is compiled with avx512f.
        unsafe {
            g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
            g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
            g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
            g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
            g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
            g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
            g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
            g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
        }
    }

    /// One compression of every lane's block (chunk counter 0); lanes outside `active` keep
    /// their chaining value.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn compress16(
        h: &mut [__m512i; 8],
        m: &[__m512i; 16],
        block_len: __m512i,
        flags: __m512i,
        active: u16,
    ) {
        let zero = _mm512_setzero_si512();
        let mut v = [
            h[0],
            h[1],
            h[2],
            h[3],
            h[4],
            h[5],
            h[6],
            h[7],
            _mm512_set1_epi32(IV[0] as i32),
            _mm512_set1_epi32(IV[1] as i32),
            _mm512_set1_epi32(IV[2] as i32),
            _mm512_set1_epi32(IV[3] as i32),
            zero,
            zero,
            block_len,
            flags,
        ];
        // Seven explicit calls so every message index is a constant after inlining.
        round(&mut v, m, &SCHEDULE[0]);
        round(&mut v, m, &SCHEDULE[1]);
        round(&mut v, m, &SCHEDULE[2]);
        round(&mut v, m, &SCHEDULE[3]);
        round(&mut v, m, &SCHEDULE[4]);
        round(&mut v, m, &SCHEDULE[5]);
        round(&mut v, m, &SCHEDULE[6]);
        for i in 0..8 {
            h[i] = _mm512_mask_mov_epi32(h[i], active, _mm512_xor_si512(v[i], v[i + 8]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(prefix: u8, msg: &[u8]) -> [u8; 32] {
        portable(prefix, msg)
    }

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn every_length_through_a_chunk_and_past_it() {
        // One message per length, run as lanes of mixed lengths so lockstep masking and
        // partial last blocks are exercised together.
        let msgs: Vec<Vec<u8>> = (0..1100).map(|l| bytes(l, l as u64)).collect();
        for prefix in [0u8, 1, 0xFF] {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let mut out = vec![[0u8; 32]; refs.len()];
            hash_prefixed_many(prefix, &refs, &mut out);
            for (i, m) in refs.iter().enumerate() {
                assert_eq!(
                    out[i],
                    reference(prefix, m),
                    "prefix {prefix} len {}",
                    m.len()
                );
            }
        }
    }

    #[test]
    fn known_answer_for_the_empty_input() {
        // The official BLAKE3 test vector for input_len 1 (the single byte 0x00), which is
        // the prefix 0x00 followed by an empty message.
        let mut out = [[0u8; 32]; 1];
        hash_prefixed_many(0, &[&[]], &mut out);
        assert_eq!(
            hex::encode(out[0]),
            "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"
        );
    }

    proptest! {
        #[test]
        fn random_batches_match_the_crate(
            prefix in any::<u8>(),
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1200), 0..40),
        ) {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let mut out = vec![[0u8; 32]; refs.len()];
            hash_prefixed_many(prefix, &refs, &mut out);
            for (i, m) in refs.iter().enumerate() {
                prop_assert_eq!(out[i], reference(prefix, m));
            }
        }
    }
}
