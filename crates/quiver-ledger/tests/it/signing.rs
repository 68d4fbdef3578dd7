//! Checkpoints, receipts and proof bundles.

use std::time::Duration;

use quiver_ledger::verify::{verify_checkpoint, verify_receipt};
use quiver_ledger::{HashAlg, Ledger, LedgerConfig, LedgerError, ProofBundle};

use crate::common;

#[test]
fn checkpoint_note_format_and_monotonicity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Sha256);
    assert!(!l.checkpoint_due());
    common::append_range(&l, 1, 9);
    assert!(!l.checkpoint_due(), "9 < checkpoint_every = 10");
    common::append_range(&l, 10, 10);
    assert!(l.checkpoint_due());
    // Only 9 of the 10 leaves may be signed (e.g. durable): not due yet.
    assert!(!l.checkpoint_due_at(9));
    assert!(l.checkpoint_due_at(10));
    assert!(l.checkpoint_due_at(u64::MAX), "capped at the ledger size");
    let cp = l.checkpoint().expect("checkpoint");
    assert!(!l.checkpoint_due());
    let lines: Vec<&str> = cp.note.split('\n').collect();
    assert_eq!(lines[0], "test.quiver/db");
    assert_eq!(lines[1], "10");
    assert_eq!(lines[3], "hash sha256");
    assert!(lines[4].starts_with("timestamp "));
    assert_eq!(lines[5], "");
    assert!(lines[6].starts_with("\u{2014} test.quiver/db "));
    assert_eq!(lines[7], "");
    let parsed = verify_checkpoint(&l.public_key(), &cp.note).expect("verifies");
    assert_eq!(parsed.root, l.root());
    assert_eq!(parsed, cp.checkpoint);
    // Same size: the same checkpoint comes back, no second (possibly different) one is stored.
    let again = l.checkpoint().expect("again");
    assert_eq!(again, cp);
    common::append_range(&l, 11, 25);
    assert!(l.checkpoint_due());
    assert!(
        !l.checkpoint_due_at(10),
        "nothing beyond the signed size may be signed"
    );
    let cp2 = l.checkpoint().expect("cp2");
    assert_eq!(cp2.checkpoint.size, 25);
    assert!(cp2.checkpoint.timestamp_ms >= cp.checkpoint.timestamp_ms);
    let all = l.checkpoints().expect("list");
    assert_eq!(
        all.iter().map(|c| c.checkpoint.size).collect::<Vec<_>>(),
        vec![10, 25]
    );
    drop(l);
    let l = common::open(dir.path(), HashAlg::Sha256);
    assert_eq!(l.latest_checkpoint(), Some(cp2));
    assert_eq!(
        l.checkpoint_at_size(10).expect("at").map(|c| c.note),
        Some(cp.note)
    );
}

#[test]
fn checkpoint_due_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ld, kd) = common::dirs(dir.path());
    let cfg = LedgerConfig {
        checkpoint_every: 1_000_000,
        checkpoint_interval: Duration::from_millis(30),
        ..common::cfg(HashAlg::Blake3)
    };
    let l = Ledger::open(&ld, &kd, cfg).expect("open");
    common::append_range(&l, 1, 1);
    std::thread::sleep(Duration::from_millis(40));
    assert!(l.checkpoint_due());
    l.checkpoint().expect("cp");
    assert!(!l.checkpoint_due());
    std::thread::sleep(Duration::from_millis(40));
    assert!(!l.checkpoint_due(), "no new leaves, nothing to sign");
}

#[test]
fn receipts_are_signed_indexed_and_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Blake3);
    common::append_range(&l, 1, 10);
    let r1 = l.receipt(1, 10).expect("r1");
    common::append_range(&l, 11, 30);
    let r2 = l.receipt(11, 30).expect("r2");
    assert_eq!((r1.id, r2.id), (1, 2));
    assert_eq!(r2.tree_size, 30);
    assert_eq!(r2.root, l.root());
    assert_eq!(r1.root, l.root_at(10).expect("root"));
    verify_receipt(&l.public_key(), &r1).expect("r1 verifies");
    verify_receipt(&l.public_key(), &r2).expect("r2 verifies");
    let mut forged = r2.clone();
    forged.first_seq = 12;
    assert!(verify_receipt(&l.public_key(), &forged).is_err());
    assert!(matches!(
        l.receipt(25, 31),
        Err(LedgerError::OutOfRange { .. })
    ));
    assert!(l.receipt(0, 3).is_err());
    l.sync().expect("sync");
    drop(l);
    let l = common::open_ro(dir.path());
    assert_eq!(l.receipt_by_id(2).expect("by id"), Some(r2.clone()));
    assert_eq!(l.receipt_by_id(3).expect("by id"), None);
    assert_eq!(l.receipt_by_id(0).expect("by id"), None);
    assert_eq!(l.receipt_for_seq(11).expect("seq").map(|r| r.id), Some(2));
    assert_eq!(l.receipt_for_seq(30).expect("seq").map(|r| r.id), Some(2));
    assert_eq!(l.receipt_for_seq(10).expect("seq").map(|r| r.id), Some(1));
    assert_eq!(l.receipt_for_seq(31).expect("seq"), None);
    assert_eq!(l.receipt_count(), 2);
    let report = l.verify_tree(&mut |_| {}).expect("verify");
    assert_eq!(report.receipts, 2);
    assert!(report.ok());
}

#[test]
fn the_newest_receipt_containing_a_seq_is_found_among_overlapping_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Blake3);
    common::append_range(&l, 1, 20);
    // Receipts 1..=4: 1..=10, 5..=6 (inside the first), 5..=5 (same start), 12..=20.
    for (a, b) in [(1, 10), (5, 6), (5, 5), (12, 20)] {
        l.receipt(a, b).expect("receipt");
    }
    let want = |seq: u64| l.receipt_for_seq(seq).expect("seq").map(|r| r.id);
    for (seq, id) in [
        (1, Some(1)),
        (5, Some(3)),
        (6, Some(2)),
        (7, Some(1)),
        (10, Some(1)),
    ] {
        assert_eq!(want(seq), id, "seq {seq}");
    }
    assert_eq!(want(11), None);
    assert_eq!(want(20), Some(4));
    // The same after a reopen, from the receipts file.
    l.sync().expect("sync");
    drop(l);
    let l = common::open_ro(dir.path());
    assert_eq!(l.receipt_for_seq(7).expect("seq").map(|r| r.id), Some(1));
    assert_eq!(l.receipt_for_seq(6).expect("seq").map(|r| r.id), Some(2));
}

#[test]
fn bundles_round_trip_through_json_and_verify_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Sha256);
    common::append_range(&l, 1, 13);
    l.checkpoint().expect("cp13");
    common::append_range(&l, 14, 40);
    l.checkpoint().expect("cp40");
    let pk = l.public_key();
    let inc = l.inclusion_bundle(7, None).expect("inclusion");
    assert_eq!((inc.tree_size, inc.leaf_index), (40, 6));
    let json = serde_json::to_string(&ProofBundle::Inclusion(inc.clone())).expect("json");
    assert!(json.contains("\"type\":\"inclusion\""));
    let back: ProofBundle = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, ProofBundle::Inclusion(inc.clone()));
    inc.verify(&pk).expect("inclusion verifies");
    let inc13 = l.inclusion_bundle(13, Some(13)).expect("at 13");
    inc13.verify(&pk).expect("verifies at 13");
    assert!(matches!(
        l.inclusion_bundle(14, Some(13)),
        Err(LedgerError::NoCheckpoint { .. })
    ));
    assert!(matches!(
        l.inclusion_bundle(3, Some(20)),
        Err(LedgerError::NoCheckpoint { .. })
    ));
    // Seqs start at 1; a proof runs from an older checkpoint to a newer one.
    assert!(matches!(
        l.inclusion_bundle(0, None),
        Err(LedgerError::OutOfRange {
            what: "seq",
            value: 0,
            size: 40
        })
    ));
    assert!(matches!(
        l.consistency_bundle(40, Some(13)),
        Err(LedgerError::OutOfRange {
            value: 40,
            size: 13,
            ..
        })
    ));

    let con = l.consistency_bundle(13, None).expect("consistency");
    assert_eq!((con.from, con.to), (13, 40));
    let (old, new) = con.verify(&pk).expect("consistency verifies");
    assert_eq!((old.size, new.size), (13, 40));

    // Tampering with any field of the bundle is caught.
    let mut bad = inc.clone();
    bad.leaf_hash = quiver_ledger::leaf_hash(HashAlg::Sha256, b"forged");
    assert!(bad.verify(&pk).is_err());
    let mut bad = inc.clone();
    bad.seq = 8;
    bad.leaf_index = 7;
    assert!(bad.verify(&pk).is_err());
    let mut bad = inc.clone();
    bad.tree_size = 39;
    assert!(bad.verify(&pk).is_err());
    let mut bad = con.clone();
    bad.proof.reverse();
    assert!(bad.verify(&pk).is_err());
    let other = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert!(matches!(
        inc.verify(&other),
        Err(LedgerError::BadSignature { .. })
    ));
}
