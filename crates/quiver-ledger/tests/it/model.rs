//! Model test: random append / reopen / sync / checkpoint / truncate sequences against a
//! `Vec<Hash>` oracle of leaf hashes and the reference MTH.

use proptest::prelude::*;
use quiver_ledger::verify::{verify_consistency, verify_inclusion};
use quiver_ledger::{leaf_hash, HashAlg, LedgerError};

use crate::common;

#[derive(Clone, Debug)]
enum Op {
    Append(u8),
    Reopen,
    Sync,
    Checkpoint,
    Truncate(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..60).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        1 => Just(Op::Sync),
        1 => Just(Op::Checkpoint),
        1 => any::<u16>().prop_map(Op::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_oracle(ops in proptest::collection::vec(op(), 1..14), blake in any::<bool>()) {
        let alg = if blake { HashAlg::Blake3 } else { HashAlg::Sha256 };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = common::open(dir.path(), alg);
        let mut oracle = Vec::new();
        let mut signed = 0u64;
        let mut counter = 0u64;
        for op in ops {
            match op {
                Op::Append(k) => {
                    let bodies: Vec<Vec<u8>> = (0..k).map(|_| { counter += 1; format!("b{counter}").into_bytes() }).collect();
                    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
                    l.append(oracle.len() as u64 + 1, &refs).expect("append");
                    oracle.extend(bodies.iter().map(|b| leaf_hash(alg, b)));
                }
                Op::Reopen => {
                    drop(l);
                    l = common::open(dir.path(), alg);
                }
                Op::Sync => l.sync().expect("sync"),
                Op::Checkpoint => {
                    let cp = l.checkpoint().expect("checkpoint");
                    prop_assert_eq!(cp.checkpoint.size, oracle.len() as u64);
                    signed = cp.checkpoint.size;
                }
                Op::Truncate(t) => {
                    let to = u64::from(t) % (oracle.len() as u64 + 1);
                    match l.truncate(to) {
                        Ok(()) => {
                            prop_assert!(to >= signed);
                            oracle.truncate(to as usize);
                        }
                        Err(LedgerError::BelowSigned { .. }) => prop_assert!(to < signed),
                        Err(e) => return Err(TestCaseError::fail(e.to_string())),
                    }
                }
            }
            let n = oracle.len() as u64;
            prop_assert_eq!(l.size(), n);
            prop_assert_eq!(l.root(), common::mth(alg, &oracle));
            if n > 0 {
                let i = n / 3;
                prop_assert_eq!(l.leaf_hash_at(i).expect("leaf"), oracle[i as usize]);
                let p = l.inclusion_proof(i, n).expect("inclusion");
                prop_assert!(verify_inclusion(alg, &oracle[i as usize], i, n, &p.path, &l.root()).is_ok());
                let m = (n / 2).max(1);
                let c = l.consistency_proof(m, n).expect("consistency");
                let r1 = common::mth(alg, &oracle[..m as usize]);
                prop_assert!(verify_consistency(alg, m, n, &c.path, &r1, &l.root()).is_ok());
            }
        }
        drop(l);
        let ro = common::open_ro(dir.path());
        prop_assert_eq!(ro.size(), oracle.len() as u64);
        prop_assert_eq!(ro.root(), common::mth(alg, &oracle));
        let report = ro.verify_tree(&mut |_| ()).expect("verify");
        prop_assert!(report.ok(), "{:?}", report.failure);
    }
}
