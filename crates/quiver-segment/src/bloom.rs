//! Bloom filter on ids (Bloom 1970), probed by double hashing (Kirsch & Mitzenmacher 2006).
//!
//! Hash: the id's key encoding (tag byte, then u64 LE or u32 LE length + UTF-8) is hashed
//! with 64-bit FNV-1a and finished with MurmurHash3's `fmix64`, giving `h1`;
//! `h2 = fmix64(h1 ^ 0x9E37_79B9_7F4A_7C15) | 1`. Probe `i` (0 ≤ i < k) sets or tests bit
//! `(h1 + i·h2) mod m` (wrapping u64 arithmetic), bit `b` living in word `b / 64`, bit `b % 64`.
//! `m` = 64 · ceil(n · bits_per_key / 64) (at least 64), `k` = round(bits_per_key · ln 2)
//! clamped to 1..=30. `bits_per_key = 0` writes an empty filter (k = 0) that answers
//! "maybe" for every id.

use crate::{
    format::{put_u32, put_u64, Cur},
    rowkey::IdRef,
};
use quiver_core::Id;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// `h1` of an id, computed over its key encoding without allocating.
pub(crate) fn hash_id(id: &Id) -> u64 {
    hash_key(IdRef::from(id))
}

/// `h1` of a borrowed id.
pub(crate) fn hash_key(id: IdRef<'_>) -> u64 {
    let h = match id {
        IdRef::U64(v) => fnv1a(fnv1a(FNV_OFFSET, &[0]), &v.to_le_bytes()),
        IdRef::Str(s) => {
            let h = fnv1a(FNV_OFFSET, &[1]);
            let h = fnv1a(h, &(s.len() as u32).to_le_bytes());
            fnv1a(h, s.as_bytes())
        }
    };
    fmix64(h)
}

/// A bloom filter held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bloom {
    k: u32,
    words: Vec<u64>,
}

/// `a % d` for a fixed `d` by multiplication (Lemire, Kaser and Kurz, "Faster Remainder by
/// Direct Computation", 2019): exact for every u64 `a` and `d > 0`, and several times cheaper
/// than a 64-bit division, which dominated checking a filter against all of its ids.
#[derive(Clone, Copy)]
struct FastMod {
    d: u64,
    m: u128,
    /// 2^64 mod d.
    wrap: u64,
}

impl FastMod {
    fn new(d: u64) -> Self {
        FastMod {
            d,
            m: (u128::MAX / u128::from(d.max(1))).wrapping_add(1),
            wrap: ((1u128 << 64) % u128::from(d.max(1))) as u64,
        }
    }

    #[inline]
    fn rem(&self, a: u64) -> u64 {
        let low = self.m.wrapping_mul(u128::from(a));
        let d = u128::from(self.d);
        let bottom = (u128::from(low as u64) * d) >> 64;
        let top = (low >> 64) * d;
        ((bottom + top) >> 64) as u64
    }
}

/// Calls `probe` with the `k` bit positions of the id hash `h1`: `(h1 + i·h2) mod m` in u64
/// arithmetic, as [`Bloom::may_contain`] computes them one division each. Here the remainder
/// of each step follows from the previous one by an addition, corrected when the u64 sum
/// wraps (it then loses 2^64, i.e. `2^64 mod m`): two divisions' worth of work per id
/// instead of `k`.
#[inline]
fn probes(fm: &FastMod, h1: u64, k: u32, mut probe: impl FnMut(u64)) {
    let m = fm.d;
    let h2 = fmix64(h1 ^ 0x9E37_79B9_7F4A_7C15) | 1;
    let step = fm.rem(h2);
    let wrap = fm.wrap;
    let (mut h, mut b) = (h1, fm.rem(h1));
    for _ in 0..k {
        probe(b);
        let (next, over) = h.overflowing_add(h2);
        h = next;
        b += step;
        if b >= m {
            b -= m;
        }
        if over {
            b += m - wrap;
            if b >= m {
                b -= m;
            }
        }
    }
}

impl Bloom {
    /// Builds a filter over the given id hashes (from [`hash_id`]).
    #[cfg(test)]
    pub fn build(hashes: &[u64], bits_per_key: u32) -> Self {
        Self::build_from(hashes.len(), hashes.iter().copied(), bits_per_key)
    }

    /// Builds a filter for `n` keys over the hashes yielded by `hashes`.
    pub fn build_from(n: usize, hashes: impl Iterator<Item = u64>, bits_per_key: u32) -> Self {
        if bits_per_key == 0 {
            return Bloom {
                k: 0,
                words: Vec::new(),
            };
        }
        let bits = (n as u64).saturating_mul(u64::from(bits_per_key)).max(64);
        let nwords = bits.div_ceil(64) as usize;
        let k = ((f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u32).clamp(1, 30);
        let mut words = vec![0u64; nwords];
        let m = nwords as u64 * 64;
        for h1 in hashes {
            let h2 = fmix64(h1 ^ 0x9E37_79B9_7F4A_7C15) | 1;
            let mut h = h1;
            for _ in 0..k {
                let b = h % m;
                words[(b / 64) as usize] |= 1u64 << (b % 64);
                h = h.wrapping_add(h2);
            }
        }
        Bloom { k, words }
    }

    /// Whether the id with hash `h1` may be in the set (false: certainly not).
    pub fn may_contain(&self, h1: u64) -> bool {
        if self.k == 0 || self.words.is_empty() {
            return true;
        }
        let m = self.words.len() as u64 * 64;
        let h2 = fmix64(h1 ^ 0x9E37_79B9_7F4A_7C15) | 1;
        let mut h = h1;
        for _ in 0..self.k {
            let b = h % m;
            match self.words.get((b / 64) as usize) {
                Some(w) if w & (1u64 << (b % 64)) != 0 => {}
                _ => return false,
            }
            h = h.wrapping_add(h2);
        }
        true
    }

    /// The position in `hashes` of the first id hash the filter denies, if any: the check of
    /// a filter against every id it should hold. No early exit within an id, so the probes
    /// of consecutive ids are independent loads the CPU overlaps (present ids, the expected
    /// case, need every probe anyway).
    pub fn first_missing(&self, hashes: &[u64]) -> Option<usize> {
        if self.k == 0 || self.words.is_empty() {
            return None;
        }
        let m = self.words.len() as u64 * 64;
        let fm = FastMod::new(m);
        hashes.iter().position(|&h1| {
            let mut all = true;
            probes(&fm, h1, self.k, |b| {
                let w = self.words.get((b / 64) as usize).copied().unwrap_or(0);
                all &= w & (1u64 << (b % 64)) != 0;
            });
            !all
        })
    }

    /// Bytes of memory held.
    pub fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Serialises: k u32, reserved u32 (0), word count u64, words u64 LE.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.words.len() * 8);
        put_u32(&mut out, self.k);
        put_u32(&mut out, 0);
        put_u64(&mut out, self.words.len() as u64);
        for w in &self.words {
            put_u64(&mut out, *w);
        }
        out
    }

    /// Parses [`Bloom::encode`]'s output; `Err(pos)` names the offending byte.
    pub fn decode(b: &[u8]) -> Result<Self, usize> {
        let mut c = Cur::new(b);
        let k = c.u32()?;
        if k > 30 {
            return Err(0);
        }
        if c.u32()? != 0 {
            return Err(4);
        }
        let n = c.u64()?;
        if n.checked_mul(8) != Some((b.len() - 16) as u64) || (k > 0 && n == 0) {
            return Err(8);
        }
        let mut words = Vec::with_capacity(n as usize);
        while !c.is_empty() {
            words.push(c.u64()?);
        }
        Ok(Bloom { k, words })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_mod_equals_the_remainder() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let divisors = [
            1u64,
            2,
            63,
            64,
            640,
            64 * 40_001,
            (1 << 40) + 64,
            u64::MAX - 1,
            u64::MAX,
        ];
        for d in divisors {
            let f = FastMod::new(d);
            for a in [0, 1, d - 1, d, d.wrapping_add(1), u64::MAX, u64::MAX - 1] {
                assert_eq!(f.rem(a), a % d, "{a} % {d}");
            }
            for _ in 0..10_000 {
                x = fmix64(x.wrapping_add(0x632B_E59B_D9B4_E019));
                assert_eq!(f.rem(x), x % d, "{x} % {d}");
            }
        }
    }

    #[test]
    fn incremental_probes_equal_the_divisions() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        for m in [64u64, 128, 640, 64 * 12_345, 64 * 1_000_003, (1 << 40) + 64] {
            let fm = FastMod::new(m);
            for _ in 0..5_000 {
                x = fmix64(x.wrapping_add(0x632B_E59B_D9B4_E019));
                let h2 = fmix64(x ^ 0x9E37_79B9_7F4A_7C15) | 1;
                let mut want = Vec::new();
                let mut h = x;
                for _ in 0..30 {
                    want.push(h % m);
                    h = h.wrapping_add(h2);
                }
                let mut got = Vec::new();
                probes(&fm, x, 30, |b| got.push(b));
                assert_eq!(got, want, "h1 {x}, m {m}");
            }
        }
    }

    #[test]
    fn first_missing_finds_the_denied_id() {
        let hashes: Vec<u64> = (0..5000u64).map(|i| fmix64(i + 1)).collect();
        let b = Bloom::build(&hashes, 10);
        assert_eq!(b.first_missing(&hashes), None);
        let mut words = b.clone();
        // Clear one probed bit of id 1234: it, and maybe others sharing the bit, are denied.
        let m = words.words.len() as u64 * 64;
        let bit = hashes[1234] % m;
        words.words[(bit / 64) as usize] &= !(1 << (bit % 64));
        let first = words.first_missing(&hashes).expect("an id is denied");
        assert!(first <= 1234);
        assert!(!words.may_contain(hashes[first]));
    }

    #[test]
    fn no_false_negatives_and_bounded_false_positives() {
        let ids: Vec<Id> = (0..20_000u64).map(Id::U64).collect();
        let hashes: Vec<u64> = ids.iter().map(hash_id).collect();
        let b = Bloom::build(&hashes, 10);
        assert!(hashes.iter().all(|&h| b.may_contain(h)));
        let fp = (1_000_000..1_020_000u64)
            .filter(|&v| b.may_contain(hash_id(&Id::U64(v))))
            .count();
        let rate = fp as f64 / 20_000.0;
        // Theory at 10 bits/key with k = 7: about 0.82 %.
        assert!(rate < 0.02, "false-positive rate {rate}");
        let b2 = Bloom::decode(&b.encode()).unwrap();
        assert_eq!(b, b2);
    }

    #[test]
    fn zero_bits_means_always_maybe() {
        let b = Bloom::build(&[1, 2, 3], 0);
        assert!(b.may_contain(12345));
        assert_eq!(Bloom::decode(&b.encode()).unwrap(), b);
    }

    #[test]
    fn decode_rejects_bad_lengths() {
        let b = Bloom::build(&[1, 2, 3], 10).encode();
        assert!(Bloom::decode(&b[..b.len() - 1]).is_err());
        assert!(Bloom::decode(&b[..10]).is_err());
        let mut bad_k = b.clone();
        bad_k[0] = 31;
        assert!(Bloom::decode(&bad_k).is_err());
    }

    #[test]
    fn hash_matches_the_documented_algorithm() {
        // Values from an independent Python implementation of docs/format/segment.md.
        assert_eq!(hash_id(&Id::U64(1)), 0xf8c9_7ee8_ae26_0daa);
        assert_eq!(hash_id(&Id::from("abc")), 0x7672_0d1f_2529_cea3);
    }

    #[test]
    fn hash_distinguishes_u64_and_string_ids() {
        assert_ne!(hash_id(&Id::U64(49)), hash_id(&Id::from("1")));
        assert_eq!(hash_id(&Id::from("abc")), hash_id(&Id::from("abc")));
    }
}
