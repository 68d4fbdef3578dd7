//! Property tests: every inclusion and consistency proof verifies for random sizes in 1..2000
//! and fails for any altered hash, index or size.

use std::sync::OnceLock;

use proptest::prelude::*;
use quiver_ledger::verify::{verify_consistency, verify_inclusion};
use quiver_ledger::{Hash, HashAlg, Ledger};

use crate::common;

const N: u64 = 2000;
const ALG: HashAlg = HashAlg::Blake3;

struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    leaves: Vec<Hash>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = common::open(dir.path(), ALG);
        common::append_range(&ledger, 1, N);
        Fixture {
            leaves: common::leaves(ALG, N),
            _dir: dir,
            ledger,
        }
    })
}

fn flip(h: &Hash, bit: u8) -> Hash {
    let mut b = h.0;
    b[(bit / 8) as usize % 32] ^= 1 << (bit % 8);
    Hash(b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_verifies_and_detects_alteration(
        size in 1..=N,
        idx_seed in any::<u64>(),
        other_seed in any::<u64>(),
        pick in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let f = fixture();
        let index = idx_seed % size;
        let root = f.ledger.root_at(size).expect("root");
        prop_assert_eq!(root, common::mth(ALG, &f.leaves[..size as usize]));
        let leaf = f.ledger.leaf_hash_at(index).expect("leaf");
        prop_assert_eq!(leaf, f.leaves[index as usize]);
        let p = f.ledger.inclusion_proof(index, size).expect("proof").path;
        prop_assert!(verify_inclusion(ALG, &leaf, index, size, &p, &root).is_ok());

        // Altered leaf hash.
        prop_assert!(verify_inclusion(ALG, &flip(&leaf, bit), index, size, &p, &root).is_err());
        // Altered proof element, truncated or extended proof.
        if !p.is_empty() {
            let mut q = p.clone();
            let i = pick % q.len();
            q[i] = flip(&q[i], bit);
            prop_assert!(verify_inclusion(ALG, &leaf, index, size, &q, &root).is_err());
            prop_assert!(verify_inclusion(ALG, &leaf, index, size, &p[..p.len() - 1], &root).is_err());
        }
        let mut longer = p.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(ALG, &leaf, index, size, &longer, &root).is_err());
        // Altered index.
        if size > 1 {
            let other = (index + 1 + other_seed % (size - 1)) % size;
            prop_assume!(other != index);
            prop_assert!(verify_inclusion(ALG, &leaf, other, size, &p, &root).is_err());
        }
        // Altered tree size: the claimed size's root does not verify.
        let other_size = 1 + (size + other_seed % (N - 1)) % N;
        if other_size != size && index < other_size {
            let other_root = f.ledger.root_at(other_size).expect("root");
            prop_assert!(verify_inclusion(ALG, &leaf, index, other_size, &p, &other_root).is_err());
        }
        prop_assert!(verify_inclusion(ALG, &leaf, index, size, &p, &flip(&root, bit)).is_err());
    }

    #[test]
    fn consistency_verifies_and_detects_alteration(
        a in 1..=N,
        b in 1..=N,
        other_seed in any::<u64>(),
        pick in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let f = fixture();
        let (m, n) = if a <= b { (a, b) } else { (b, a) };
        let (r1, r2) = (f.ledger.root_at(m).expect("r1"), f.ledger.root_at(n).expect("r2"));
        let p = f.ledger.consistency_proof(m, n).expect("proof").path;
        prop_assert!(verify_consistency(ALG, m, n, &p, &r1, &r2).is_ok());
        if m == n {
            prop_assert!(p.is_empty());
            return Ok(());
        }
        prop_assert!(!p.is_empty());
        // Altered proof element, dropped element, extra element.
        let mut q = p.clone();
        let i = pick % q.len();
        q[i] = flip(&q[i], bit);
        prop_assert!(verify_consistency(ALG, m, n, &q, &r1, &r2).is_err());
        prop_assert!(verify_consistency(ALG, m, n, &p[..p.len() - 1], &r1, &r2).is_err());
        let mut longer = p.clone();
        longer.push(r2);
        prop_assert!(verify_consistency(ALG, m, n, &longer, &r1, &r2).is_err());
        // Altered roots.
        prop_assert!(verify_consistency(ALG, m, n, &p, &flip(&r1, bit), &r2).is_err());
        prop_assert!(verify_consistency(ALG, m, n, &p, &r1, &flip(&r2, bit)).is_err());
        // Altered sizes, with the true roots of the claimed sizes.
        let m2 = 1 + other_seed % (n - 1);
        if m2 != m {
            let r = f.ledger.root_at(m2).expect("root");
            prop_assert!(verify_consistency(ALG, m2, n, &p, &r, &r2).is_err());
        }
        let n2 = m + 1 + other_seed % (N - m);
        if n2 != n {
            let r = f.ledger.root_at(n2).expect("root");
            prop_assert!(verify_consistency(ALG, m, n2, &p, &r1, &r).is_err());
        }
    }
}
