//! RFC 6962 / Certificate Transparency SHA-256 test vectors (the 8 leaves of the CT and
//! transparency-dev test data): roots of every prefix tree, inclusion and consistency proofs.

use quiver_ledger::verify::{verify_consistency, verify_inclusion};
use quiver_ledger::{leaf_hash, Hash, HashAlg};

use crate::common;

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn h(s: &str) -> Hash {
    Hash::from_hex(s).expect("hex")
}

fn build() -> (tempfile::TempDir, quiver_ledger::Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Sha256);
    let bodies: Vec<Vec<u8>> = LEAVES
        .iter()
        .map(|s| hex::decode(s).expect("hex"))
        .collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    l.append(1, &refs).expect("append");
    (dir, l)
}

#[test]
fn roots_of_all_prefix_trees() {
    let (_d, l) = build();
    assert_eq!(l.size(), 8);
    for (i, want) in ROOTS.iter().enumerate() {
        assert_eq!(
            l.root_at(i as u64 + 1).expect("root_at"),
            h(want),
            "size {}",
            i + 1
        );
    }
    assert_eq!(l.root(), h(ROOTS[7]));
    assert_eq!(l.root_at(0).expect("empty"), HashAlg::Sha256.empty_root());
}

#[test]
fn roots_while_growing() {
    // The frontier-based current root must match after every single append.
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Sha256);
    for (i, leaf) in LEAVES.iter().enumerate() {
        let b = hex::decode(leaf).expect("hex");
        l.append(i as u64 + 1, &[b.as_slice()]).expect("append");
        assert_eq!(l.root(), h(ROOTS[i]));
    }
}

#[test]
fn inclusion_proofs_match_exactly() {
    let (_d, l) = build();
    // (leaf index, tree size, proof)
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in cases {
        let p = l.inclusion_proof(index, size).expect("proof");
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(p.path, want, "inclusion ({index}, {size})");
        let leaf = leaf_hash(
            HashAlg::Sha256,
            &hex::decode(LEAVES[index as usize]).expect("hex"),
        );
        assert_eq!(l.leaf_hash_at(index).expect("leaf"), leaf);
        let root = h(ROOTS[size as usize - 1]);
        verify_inclusion(HashAlg::Sha256, &leaf, index, size, &p.path, &root).expect("verifies");
        // Wrong index / size / root are rejected.
        if size > 1 {
            assert!(verify_inclusion(
                HashAlg::Sha256,
                &leaf,
                (index + 1) % size,
                size,
                &p.path,
                &root
            )
            .is_err());
        }
        assert!(verify_inclusion(HashAlg::Sha256, &leaf, index, size * 2, &p.path, &root).is_err());
        assert!(
            verify_inclusion(
                HashAlg::Sha256,
                &leaf,
                index,
                size,
                &p.path,
                &h(ROOTS[0]).clone()
            )
            .is_err()
                || size == 1
        );
    }
}

#[test]
fn consistency_proofs_match_exactly() {
    let (_d, l) = build();
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (m, n, want) in cases {
        let p = l.consistency_proof(m, n).expect("proof");
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(p.path, want, "consistency ({m}, {n})");
        let (r1, r2) = (h(ROOTS[m as usize - 1]), h(ROOTS[n as usize - 1]));
        verify_consistency(HashAlg::Sha256, m, n, &p.path, &r1, &r2).expect("verifies");
        if m != n {
            assert!(verify_consistency(HashAlg::Sha256, m, n, &p.path, &r2, &r1).is_err());
            assert!(verify_consistency(HashAlg::Sha256, m, n, &[], &r1, &r2).is_err());
        }
    }
}

#[test]
fn ledger_agrees_with_reference_mth_for_both_algs() {
    for alg in [HashAlg::Blake3, HashAlg::Sha256] {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = common::open(dir.path(), alg);
        common::append_range(&l, 1, 100);
        let leaves = common::leaves(alg, 100);
        for n in 1..=100u64 {
            assert_eq!(
                l.root_at(n).expect("root"),
                common::mth(alg, &leaves[..n as usize]),
                "{alg} n={n}"
            );
        }
    }
}
