//! Proof generation, exactly as RFC 9162 §2.1.3.1 (`PATH`) and §2.1.4.1 (`PROOF`/`SUBPROOF`),
//! over a source of complete perfect subtree hashes.
//!
//! Every node of the RFC 9162 tree over `D[lo:hi)` is the fold of the perfect subtrees of its
//! binary decomposition (largest first), and each of those is stored, so any `MTH(D[lo:hi))` the
//! algorithms need costs at most `log2(n)` node reads.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hash::{node_hash, Hash, HashAlg};

/// A source of perfect subtree hashes: `node(level, index)` is the root of leaves
/// `[index << level, (index + 1) << level)`.
pub(crate) trait NodeSource {
    fn node(&self, level: u32, index: u64) -> Result<Hash>;
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[lo:hi))` for a range that is a node of the RFC 9162 tree (or any range whose `lo` is
/// aligned to the largest power of two not above `hi - lo`). `hi > lo`.
pub(crate) fn range_hash(src: &dyn NodeSource, alg: HashAlg, lo: u64, hi: u64) -> Result<Hash> {
    let mut parts: [Hash; 64] = [Hash::default(); 64];
    let mut count = 0usize;
    let mut at = lo;
    let n = hi - lo;
    for level in (0..64u32).rev() {
        if n & (1u64 << level) != 0 {
            parts[count] = src.node(level, at >> level)?;
            count += 1;
            at += 1u64 << level;
        }
    }
    let mut acc = parts[count - 1];
    for i in (0..count - 1).rev() {
        acc = node_hash(alg, &parts[i], &acc);
    }
    Ok(acc)
}

/// An inclusion proof (RFC 9162 §2.1.3): the audit path from leaf `leaf_index` to the root of
/// the tree of size `tree_size`, bottom-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Zero-based leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// Size of the tree the proof is against.
    pub tree_size: u64,
    /// Sibling hashes, leaf level first.
    pub path: Vec<Hash>,
}

/// A consistency proof (RFC 9162 §2.1.4) between trees of sizes `from` and `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older (smaller) tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// Proof hashes in RFC order.
    pub path: Vec<Hash>,
}

/// `PATH(m, D[lo:hi))`, appended bottom-up to `out`.
pub(crate) fn inclusion_path(
    src: &dyn NodeSource,
    alg: HashAlg,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < lo + k {
        inclusion_path(src, alg, m, lo, lo + k, out)?;
        out.push(range_hash(src, alg, lo + k, hi)?);
    } else {
        inclusion_path(src, alg, m, lo + k, hi, out)?;
        out.push(range_hash(src, alg, lo, lo + k)?);
    }
    Ok(())
}

/// `SUBPROOF(m, D[lo:hi), b)` with `m` the absolute old size, appended to `out`.
pub(crate) fn consistency_subproof(
    src: &dyn NodeSource,
    alg: HashAlg,
    m: u64,
    lo: u64,
    hi: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<()> {
    if m == hi {
        if !b {
            out.push(range_hash(src, alg, lo, hi)?);
        }
        return Ok(());
    }
    let k = split_point(hi - lo);
    if m <= lo + k {
        consistency_subproof(src, alg, m, lo, lo + k, b, out)?;
        out.push(range_hash(src, alg, lo + k, hi)?);
    } else {
        consistency_subproof(src, alg, m, lo + k, hi, false, out)?;
        out.push(range_hash(src, alg, lo, lo + k)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// Perfect-subtree source computed naively from leaves.
    struct Naive {
        alg: HashAlg,
        leaves: Vec<Hash>,
    }

    impl NodeSource for Naive {
        fn node(&self, level: u32, index: u64) -> Result<Hash> {
            let lo = (index << level) as usize;
            let hi = ((index + 1) << level) as usize;
            Ok(mth(self.alg, &self.leaves[lo..hi]))
        }
    }

    fn mth(alg: HashAlg, d: &[Hash]) -> Hash {
        match d.len() {
            0 => alg.empty_root(),
            1 => d[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(alg, &mth(alg, &d[..k]), &mth(alg, &d[k..]))
            }
        }
    }

    #[test]
    fn split_point_is_largest_power_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn range_hash_equals_recursive_mth() {
        let alg = HashAlg::Blake3;
        let leaves: Vec<Hash> = (0..37u32)
            .map(|i| leaf_hash(alg, &i.to_le_bytes()))
            .collect();
        let src = Naive {
            alg,
            leaves: leaves.clone(),
        };
        for n in 1..=leaves.len() as u64 {
            assert_eq!(
                range_hash(&src, alg, 0, n).ok(),
                Some(mth(alg, &leaves[..n as usize])),
                "n={n}"
            );
        }
    }
}
