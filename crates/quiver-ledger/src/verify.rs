//! Standalone verification: trusts nothing but the public key (RFC 9162 §2.1.3.2, §2.1.4.2).

use crate::error::{LedgerError, Result};
use crate::hash::{node_hash, Hash, HashAlg};
pub use crate::note::verify_checkpoint;
pub use crate::receipt::verify_receipt;

/// Computes the root implied by an inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(
    alg: HashAlg,
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
) -> Result<Hash> {
    if index >= tree_size {
        return Err(LedgerError::proof(format!(
            "leaf index {index} is not below tree size {tree_size}"
        )));
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(LedgerError::proof("proof is longer than the path"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(alg, p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(alg, &r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(LedgerError::proof("proof is shorter than the path"));
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `tree_size` leaves with `root`.
pub fn verify_inclusion(
    alg: HashAlg,
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let got = root_from_inclusion(alg, leaf_hash, index, tree_size, proof)?;
    if got != *root {
        return Err(LedgerError::proof(format!(
            "computed root {got} differs from expected {root}"
        )));
    }
    Ok(())
}

/// Verifies that the tree of `size1` leaves with `root1` is a prefix of the tree of `size2`
/// leaves with `root2` (RFC 9162 §2.1.4.2). `size1 == 0` is consistent with everything (with an
/// empty proof); `size1 == size2` needs an empty proof and equal roots.
pub fn verify_consistency(
    alg: HashAlg,
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<()> {
    if size2 < size1 {
        return Err(LedgerError::proof(format!(
            "size2 {size2} is smaller than size1 {size1}"
        )));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(LedgerError::proof("equal sizes need an empty proof"));
        }
        if root1 != root2 {
            return Err(LedgerError::proof(format!(
                "equal sizes {size1} but roots differ: {root1} vs {root2}"
            )));
        }
        return Ok(());
    }
    if size1 == 0 {
        if !proof.is_empty() {
            return Err(LedgerError::proof("size1 = 0 needs an empty proof"));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(LedgerError::proof("empty consistency proof"));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(LedgerError::proof("proof is longer than the path"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(alg, c, &fr);
            sr = node_hash(alg, c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(alg, &sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(LedgerError::proof("proof is shorter than the path"));
    }
    if fr != *root1 {
        return Err(LedgerError::proof(format!(
            "computed old root {fr} differs from {root1}"
        )));
    }
    if sr != *root2 {
        return Err(LedgerError::proof(format!(
            "computed new root {sr} differs from {root2}"
        )));
    }
    Ok(())
}
