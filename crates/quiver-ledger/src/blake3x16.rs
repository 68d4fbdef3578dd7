//! Many short BLAKE3 hashes at once: sixteen messages per AVX-512 pass (eight with AVX2).
//!
//! A Merkle log hashes millions of *short* inputs: a ~250-byte leaf, a 65-byte interior node.
//! The `blake3` crate's SIMD paths parallelise across the 1 KiB chunks of *one* long input, so
//! for inputs under a chunk it compresses one 64-byte block at a time (~1.3 µs per KiB here,
//! slower than SHA-NI). This module puts a different message in each of the 16 32-bit lanes of
//! an AVX-512 register and runs the compression function on all sixteen together, so a block
//! costs roughly one sixteenth of a 16-wide compression.
//!
//! Scope: unkeyed BLAKE3 with a 32-byte output, of `prefix || message` where the whole input
//! fits in one chunk (≤ 1024 bytes) — every interior node and nearly every leaf. CPUs with AVX2
//! but not AVX-512 run the same scheme eight lanes wide. Longer inputs, and every input on other
//! CPUs, go through the `blake3` crate; every path gives the same bytes (each path this CPU
//! supports is tested against the crate on every length up to and past a chunk).

use crate::hash::Hash;

/// Inputs up to this many bytes (prefix included) take the lane path: one BLAKE3 chunk.
const CHUNK_LEN: usize = 1024;

/// BLAKE3 of `prefix || msg` for every message of `msgs`, written to `out[i]`.
///
/// # Panics
/// If `out` is shorter than `msgs` (a caller bug).
pub(crate) fn hash_prefixed_many(prefix: u8, msgs: &[&[u8]], out: &mut [Hash]) {
    hash_with(Path::best(), prefix, msgs, out);
}

/// Which implementation hashes a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// The `blake3` crate, one input at a time.
    Portable,
    /// Eight inputs per pass in AVX2 registers.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Sixteen inputs per pass in AVX-512 registers.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Path {
    fn best() -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                return Path::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Path::Avx2;
            }
        }
        Path::Portable
    }

    /// Every path this CPU can run (for tests).
    #[cfg(test)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    fn supported() -> Vec<Path> {
        let mut v = vec![Path::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Path::Avx2);
            }
            if Path::best() == Path::Avx512 {
                v.push(Path::Avx512);
            }
        }
        v
    }
}

/// One SIMD pass: hashes `prefix || msgs[i]` for every `i` of the index list into `out[i]`.
type LanePass = fn(u8, &[&[u8]], &[usize], &mut [Hash]);

// Off x86_64 the portable path is the only one, and it returns before the lane code.
#[cfg_attr(not(target_arch = "x86_64"), allow(unreachable_code))]
fn hash_with(path: Path, prefix: u8, msgs: &[&[u8]], out: &mut [Hash]) {
    assert!(out.len() >= msgs.len(), "output shorter than input list");
    let (width, run): (usize, LanePass) = match path {
        Path::Portable => {
            for (m, o) in msgs.iter().zip(out.iter_mut()) {
                *o = Hash(portable(prefix, m));
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => (8, x86::run_lanes_avx2),
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => (16, x86::run_lanes),
    };
    // Lanes run in lockstep for as many blocks as their longest input, so inputs are grouped
    // by block count (1..=16): each full pass then wastes no compression.
    let mut lanes = [[0usize; 16]; 16];
    let mut filled = [0usize; 16];
    for (i, m) in msgs.iter().enumerate() {
        if m.len() >= CHUNK_LEN {
            out[i] = Hash(portable(prefix, m));
            continue;
        }
        let g = (1 + m.len()).div_ceil(64).max(1) - 1;
        lanes[g][filled[g]] = i;
        filled[g] += 1;
        if filled[g] == width {
            run(prefix, msgs, &lanes[g][..width], out);
            filled[g] = 0;
        }
    }
    // Leftovers of all groups, shortest first, packed `width` at a time.
    let mut rest = [0usize; 16];
    let mut n = 0;
    for (g, lane) in lanes.iter().enumerate() {
        for &i in &lane[..filled[g]] {
            rest[n] = i;
            n += 1;
            if n == width {
                run(prefix, msgs, &rest[..width], out);
                n = 0;
            }
        }
    }
    if n > 0 {
        run(prefix, msgs, &rest[..n], out);
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

    use crate::hash::Hash;
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
    pub(super) fn run_lanes(prefix: u8, msgs: &[&[u8]], idx: &[usize], out: &mut [Hash]) {
        debug_assert!(idx.len() <= 16);
        // SAFETY: the caller checked `is_x86_feature_detected!` for avx512f and avx512bw.
        unsafe { run_lanes_avx512(prefix, msgs, idx, out) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn run_lanes_avx512(prefix: u8, msgs: &[&[u8]], idx: &[usize], out: &mut [Hash]) {
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
                rows[j] = unsafe { _mm512_maskz_loadu_epi8(mask, p.cast()) };
            }
            let mut m = transpose16(rows);
            if b == 0 {
                // Every lane's first block starts with the prefix byte, left zero by the mask:
                // one OR on message word 0 of all lanes instead of an insert per lane.
                m[0] = _mm512_or_si512(m[0], _mm512_set1_epi32(prefix as i32));
            }
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
            let o = &mut out[i].0;
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

    /// Hashes `prefix || msgs[j]` for the (at most 8) indices in `idx`, every one shorter than
    /// a chunk, into `out[j]`.
    pub(super) fn run_lanes_avx2(prefix: u8, msgs: &[&[u8]], idx: &[usize], out: &mut [Hash]) {
        debug_assert!(idx.len() <= 8);
        // SAFETY: `Path::best` / `Path::supported` checked `is_x86_feature_detected!("avx2")`.
        unsafe { avx2::run_lanes(prefix, msgs, idx, out) }
    }

    /// The same compression eight lanes wide, for CPUs with AVX2 but not AVX-512. AVX2 has no
    /// byte-masked loads, so a first or partial block is staged in a 64-byte lane buffer.
    mod avx2 {
        use super::{Hash, BLOCK, CHUNK_END, CHUNK_START, IV, ROOT, SCHEDULE};
        use std::arch::x86_64::*;

        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn run_lanes(
            prefix: u8,
            msgs: &[&[u8]],
            idx: &[usize],
            out: &mut [Hash],
        ) {
            let n = idx.len();
            let mut blocks = [0usize; 8];
            for (b, &i) in blocks.iter_mut().zip(idx) {
                *b = (1 + msgs[i].len()).div_ceil(BLOCK).max(1);
            }
            let max_blocks = blocks.iter().copied().max().unwrap_or(0);
            let mut h = IV.map(|w| _mm256_set1_epi32(w as i32));
            let mut stage = [[0u8; BLOCK]; 8];
            for b in 0..max_blocks {
                let mut block_lens = [0u32; 8];
                let mut flags = [0u32; 8];
                let mut active = [0u32; 8];
                let mut ptrs = [stage[0].as_ptr(); 8];
                for j in 0..8 {
                    if j >= n || b >= blocks[j] {
                        stage[j] = [0; BLOCK];
                        ptrs[j] = stage[j].as_ptr();
                        continue;
                    }
                    active[j] = u32::MAX;
                    let msg = msgs[idx[j]];
                    let off = b * BLOCK;
                    let this = (1 + msg.len() - off).min(BLOCK);
                    block_lens[j] = this as u32;
                    flags[j] = if b == 0 { CHUNK_START } else { 0 }
                        | if b + 1 == blocks[j] {
                            CHUNK_END | ROOT
                        } else {
                            0
                        };
                    if b > 0 && this == BLOCK {
                        // Input byte `off` is message byte `off - 1`: read in place.
                        ptrs[j] = msg[off - 1..off - 1 + BLOCK].as_ptr();
                        continue;
                    }
                    let t = &mut stage[j];
                    *t = [0; BLOCK];
                    if b == 0 {
                        t[0] = prefix;
                        t[1..this].copy_from_slice(&msg[..this - 1]);
                    } else {
                        t[..this].copy_from_slice(&msg[off - 1..off - 1 + this]);
                    }
                    ptrs[j] = stage[j].as_ptr();
                }
                // SAFETY: every pointer addresses 64 readable bytes (a 64-byte message slice or
                // a lane's stage buffer).
                let lo = ptrs.map(|p| unsafe { _mm256_loadu_si256(p.cast()) });
                // SAFETY: as above, bytes 32..64.
                let hi = ptrs.map(|p| unsafe { _mm256_loadu_si256(p.add(32).cast()) });
                let a = transpose8(lo);
                let c = transpose8(hi);
                let m = [
                    a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], c[0], c[1], c[2], c[3], c[4],
                    c[5], c[6], c[7],
                ];
                // SAFETY: each array holds 8 u32s.
                let (lens_v, flags_v, active_v) = unsafe {
                    (
                        _mm256_loadu_si256(block_lens.as_ptr().cast()),
                        _mm256_loadu_si256(flags.as_ptr().cast()),
                        _mm256_loadu_si256(active.as_ptr().cast()),
                    )
                };
                compress8(&mut h, &m, lens_v, flags_v, active_v);
            }
            let mut words = [[0u32; 8]; 8];
            for (w, hv) in words.iter_mut().zip(h.iter()) {
                // SAFETY: `w` is 8 u32s.
                unsafe { _mm256_storeu_si256(w.as_mut_ptr().cast(), *hv) };
            }
            for (j, &i) in idx.iter().enumerate() {
                let o = &mut out[i].0;
                for (k, w) in words.iter().enumerate() {
                    o[4 * k..4 * k + 4].copy_from_slice(&w[j].to_le_bytes());
                }
            }
        }

        /// 8×8 transpose of 32-bit words.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
            let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
            let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
            let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
            let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
            let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
            let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
            let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
            let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
            // Columns c | c + 4 of rows 0..4 (u0..u3) and rows 4..8 (u4..u7).
            let u0 = _mm256_unpacklo_epi64(t0, t2);
            let u1 = _mm256_unpackhi_epi64(t0, t2);
            let u2 = _mm256_unpacklo_epi64(t1, t3);
            let u3 = _mm256_unpackhi_epi64(t1, t3);
            let u4 = _mm256_unpacklo_epi64(t4, t6);
            let u5 = _mm256_unpackhi_epi64(t4, t6);
            let u6 = _mm256_unpacklo_epi64(t5, t7);
            let u7 = _mm256_unpackhi_epi64(t5, t7);
            [
                _mm256_permute2x128_si256::<0x20>(u0, u4),
                _mm256_permute2x128_si256::<0x20>(u1, u5),
                _mm256_permute2x128_si256::<0x20>(u2, u6),
                _mm256_permute2x128_si256::<0x20>(u3, u7),
                _mm256_permute2x128_si256::<0x31>(u0, u4),
                _mm256_permute2x128_si256::<0x31>(u1, u5),
                _mm256_permute2x128_si256::<0x31>(u2, u6),
                _mm256_permute2x128_si256::<0x31>(u3, u7),
            ]
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        fn rot16(x: __m256i) -> __m256i {
            let k = _mm256_setr_epi8(
                2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                11, 8, 9, 14, 15, 12, 13,
            );
            _mm256_shuffle_epi8(x, k)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        fn rot8(x: __m256i) -> __m256i {
            let k = _mm256_setr_epi8(
                1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9,
                10, 11, 8, 13, 14, 15, 12,
            );
            _mm256_shuffle_epi8(x, k)
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        fn g(
            v: &mut [__m256i; 16],
            a: usize,
            b: usize,
            c: usize,
            d: usize,
            x: __m256i,
            y: __m256i,
        ) {
            v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), x);
            v[d] = rot16(_mm256_xor_si256(v[d], v[a]));
            v[c] = _mm256_add_epi32(v[c], v[d]);
            let t = _mm256_xor_si256(v[b], v[c]);
            v[b] = _mm256_or_si256(_mm256_srli_epi32::<12>(t), _mm256_slli_epi32::<20>(t));
            v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), y);
            v[d] = rot8(_mm256_xor_si256(v[d], v[a]));
            v[c] = _mm256_add_epi32(v[c], v[d]);
            let t = _mm256_xor_si256(v[b], v[c]);
            v[b] = _mm256_or_si256(_mm256_srli_epi32::<7>(t), _mm256_slli_epi32::<25>(t));
        }

        #[inline(always)]
        fn round(v: &mut [__m256i; 16], m: &[__m256i; 16], s: &[usize; 16]) {
            // SAFETY: only inlined into `compress8`, which is compiled with avx2.
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

        /// One compression of every lane's block (chunk counter 0); lanes whose `active` word
        /// is zero keep their chaining value.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn compress8(
            h: &mut [__m256i; 8],
            m: &[__m256i; 16],
            block_len: __m256i,
            flags: __m256i,
            active: __m256i,
        ) {
            let zero = _mm256_setzero_si256();
            let mut v = [
                h[0],
                h[1],
                h[2],
                h[3],
                h[4],
                h[5],
                h[6],
                h[7],
                _mm256_set1_epi32(IV[0] as i32),
                _mm256_set1_epi32(IV[1] as i32),
                _mm256_set1_epi32(IV[2] as i32),
                _mm256_set1_epi32(IV[3] as i32),
                zero,
                zero,
                block_len,
                flags,
            ];
            round(&mut v, m, &SCHEDULE[0]);
            round(&mut v, m, &SCHEDULE[1]);
            round(&mut v, m, &SCHEDULE[2]);
            round(&mut v, m, &SCHEDULE[3]);
            round(&mut v, m, &SCHEDULE[4]);
            round(&mut v, m, &SCHEDULE[5]);
            round(&mut v, m, &SCHEDULE[6]);
            for i in 0..8 {
                let new = _mm256_xor_si256(v[i], v[i + 8]);
                h[i] = _mm256_blendv_epi8(h[i], new, active);
            }
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
            let mut out = vec![Hash::default(); refs.len()];
            hash_prefixed_many(prefix, &refs, &mut out);
            for (i, m) in refs.iter().enumerate() {
                assert_eq!(
                    out[i].0,
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
        for path in Path::supported() {
            let mut out = [Hash::default(); 1];
            hash_with(path, 0, &[&[]], &mut out);
            assert_eq!(
                hex::encode(out[0].0),
                "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
                "{path:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_batches_match_the_crate(
            prefix in any::<u8>(),
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1200), 0..40),
        ) {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            for path in Path::supported() {
                let mut out = vec![Hash::default(); refs.len()];
                hash_with(path, prefix, &refs, &mut out);
                for (i, m) in refs.iter().enumerate() {
                    prop_assert_eq!(out[i].0, reference(prefix, m), "{:?}", path);
                }
            }
        }
    }
}
