//! TrustStore: rollback and fork rejected, proven extension accepted, state kept on disk.

use std::fs;
use std::path::Path;

use quiver_ledger::{HashAlg, Ledger, LedgerError, TrustStore};

use crate::common;

/// A second ledger signed with the same key (a malicious or split-brain node): same first
/// `common_prefix` leaves, different ones after.
fn forked(root: &Path, key_from: &Path, common_prefix: u64, n: u64) -> Ledger {
    fs::create_dir_all(root.join("keys")).expect("mkdir");
    fs::copy(
        key_from.join("keys/node.ed25519"),
        root.join("keys/node.ed25519"),
    )
    .expect("copy key");
    let l = common::open(root, HashAlg::Sha256);
    common::append_range(&l, 1, common_prefix);
    let bodies: Vec<Vec<u8>> = (common_prefix + 1..=n)
        .map(|i| format!("evil-{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    l.append(common_prefix + 1, &refs).expect("append");
    l
}

#[test]
fn rollback_fork_and_extension() {
    let a_dir = tempfile::tempdir().expect("a");
    let b_dir = tempfile::tempdir().expect("b");
    let t_dir = tempfile::tempdir().expect("trust");
    let trust_path = t_dir.path().join("sub/trusted.json");

    let a = common::open(a_dir.path(), HashAlg::Sha256);
    common::append_range(&a, 1, 10);
    a.checkpoint().expect("a10");
    common::append_range(&a, 11, 20);
    a.checkpoint().expect("a20");
    common::append_range(&a, 21, 30);
    a.checkpoint().expect("a30");
    let pk = a.public_key();

    let b = forked(b_dir.path(), a_dir.path(), 15, 20);
    b.checkpoint().expect("b20");
    let extra: Vec<Vec<u8>> = (21..=30u64)
        .map(|i| format!("evil-{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = extra.iter().map(|x| x.as_slice()).collect();
    b.append(21, &refs).expect("b append");
    b.checkpoint().expect("b30");

    // First use: trust a@20 via an inclusion bundle.
    let mut ts = TrustStore::open(&trust_path).expect("open");
    assert!(ts.trusted().is_none());
    let out = ts
        .check_inclusion(&pk, &a.inclusion_bundle(5, Some(20)).expect("inc"))
        .expect("first use");
    assert!(out.first_use && out.advanced);
    assert_eq!(out.trusted.size, 20);

    // State survives reopening the trust store.
    let mut ts = TrustStore::open(&trust_path).expect("reopen");
    assert_eq!(ts.trusted().map(|c| c.size), Some(20));

    // Rollback: a valid but older checkpoint.
    let old = a.inclusion_bundle(5, Some(10)).expect("inc10");
    assert!(matches!(
        ts.check_inclusion(&pk, &old),
        Err(LedgerError::Rollback {
            trusted_size: 20,
            got_size: 10
        })
    ));
    let old_con = a.consistency_bundle(10, Some(10)).expect("c10");
    assert!(matches!(
        ts.check_consistency(&pk, &old_con),
        Err(LedgerError::Rollback { .. })
    ));

    // Fork: same size, different root, validly signed by the same key.
    let fork = b.inclusion_bundle(3, Some(20)).expect("b inc20");
    assert!(matches!(
        ts.check_inclusion(&pk, &fork),
        Err(LedgerError::Fork { size: 20, .. })
    ));

    // Newer checkpoint without a consistency proof: not accepted.
    let newer = a.inclusion_bundle(25, Some(30)).expect("inc30");
    assert!(matches!(
        ts.check_inclusion(&pk, &newer),
        Err(LedgerError::Unproven { .. })
    ));

    // The forked log's extension 20 -> 30 starts from another root at 20: fork.
    let b_con = b.consistency_bundle(20, Some(30)).expect("b con");
    assert!(matches!(
        ts.check_consistency(&pk, &b_con),
        Err(LedgerError::Fork { .. })
    ));
    // Splicing the trusted old checkpoint onto the fork's new one fails the proof.
    let mut spliced = b_con.clone();
    spliced.old_checkpoint = a.checkpoint_at_size(20).expect("a20").expect("some").note;
    assert!(matches!(
        ts.check_consistency(&pk, &spliced),
        Err(LedgerError::InvalidProof { .. })
    ));
    // A proof that does not start at the trusted size proves nothing about it.
    let from10 = a.consistency_bundle(10, Some(30)).expect("a 10-30");
    assert!(matches!(
        ts.check_consistency(&pk, &from10),
        Err(LedgerError::Unproven { .. })
    ));
    assert_eq!(
        ts.trusted().map(|c| c.size),
        Some(20),
        "failed checks change nothing"
    );

    // Proven extension 20 -> 30 is accepted and persisted; then the newer inclusion passes.
    let ext = a.consistency_bundle(20, Some(30)).expect("a 20-30");
    let out = ts.check_consistency(&pk, &ext).expect("extension");
    assert!(out.advanced && !out.first_use);
    assert_eq!(out.trusted.size, 30);
    ts.check_inclusion(&pk, &newer).expect("now trusted");
    let ts2 = TrustStore::open(&trust_path).expect("reopen");
    assert_eq!(ts2.trusted().map(|c| c.size), Some(30));
    // And the fork's 30 is now a fork too.
    let b30 = b.inclusion_bundle(3, Some(30)).expect("b30");
    let mut ts = ts2;
    assert!(matches!(
        ts.check_inclusion(&pk, &b30),
        Err(LedgerError::Fork { size: 30, .. })
    ));
}

#[test]
fn trust_file_for_another_key_is_refused() {
    let a_dir = tempfile::tempdir().expect("a");
    let c_dir = tempfile::tempdir().expect("c");
    let t_dir = tempfile::tempdir().expect("t");
    let path = t_dir.path().join("t.json");
    let a = common::open(a_dir.path(), HashAlg::Sha256);
    common::append_range(&a, 1, 4);
    a.checkpoint().expect("cp");
    let c = common::open(c_dir.path(), HashAlg::Sha256);
    common::append_range(&c, 1, 4);
    c.checkpoint().expect("cp");
    let mut ts = TrustStore::open(&path).expect("open");
    ts.check_inclusion(&a.public_key(), &a.inclusion_bundle(1, None).expect("b"))
        .expect("ok");
    let e = ts.check_inclusion(&c.public_key(), &c.inclusion_bundle(1, None).expect("b"));
    assert!(matches!(
        e,
        Err(LedgerError::Malformed {
            what: "trust file",
            ..
        })
    ));
    // A bundle signed by another key fails against the trusted key.
    let e = ts.check_inclusion(&a.public_key(), &c.inclusion_bundle(1, None).expect("b"));
    assert!(matches!(e, Err(LedgerError::BadSignature { .. })));
    // Garbage trust file: typed error.
    fs::write(&path, "{not json").expect("write");
    assert!(matches!(
        TrustStore::open(&path),
        Err(LedgerError::Malformed { .. })
    ));
}

/// A ledger of origin `origin` signed with the key of `key_from` (when given), leaves
/// `common::body(1..=n)`, a checkpoint at each size in `sizes`.
fn ledger_of(root: &Path, origin: &str, key_from: Option<&Path>, sizes: &[u64]) -> Ledger {
    if let Some(k) = key_from {
        fs::create_dir_all(root.join("keys")).expect("mkdir");
        fs::copy(k.join("keys/node.ed25519"), root.join("keys/node.ed25519")).expect("copy key");
    }
    let mut cfg = common::cfg(HashAlg::Sha256);
    cfg.origin = origin.to_string();
    cfg.checkpoint_every = u64::MAX;
    let (l, k) = common::dirs(root);
    let l = Ledger::open(&l, &k, cfg).expect("open ledger");
    for &s in sizes {
        if s > l.size() {
            common::append_range(&l, l.size() + 1, s);
        }
        l.checkpoint().expect("checkpoint");
    }
    l
}

/// Two logs (origins) signed with one key share the default trust file (it is named after the
/// key). A checkpoint of one log must never satisfy or replace the other's trusted checkpoint,
/// even where the two trees agree (same records, or both empty).
#[test]
fn another_origins_checkpoint_never_satisfies_or_replaces_the_trusted_one() {
    let a_dir = tempfile::tempdir().expect("a");
    let b_dir = tempfile::tempdir().expect("b");
    let t_dir = tempfile::tempdir().expect("t");
    let a = ledger_of(a_dir.path(), "a.quiver/db", None, &[10, 20]);
    let b = ledger_of(b_dir.path(), "b.quiver/db", Some(a_dir.path()), &[10, 20]);
    let pk = a.public_key();
    assert_eq!(b.public_key(), pk);

    let path = t_dir.path().join("same-origin.json");
    let mut ts = TrustStore::open(&path).expect("open");
    ts.check_inclusion(&pk, &a.inclusion_bundle(3, Some(10)).expect("a inc"))
        .expect("first use: a@10");
    // b@10 has a's root (same records) but is another log's checkpoint.
    let e = ts.check_inclusion(&pk, &b.inclusion_bundle(3, Some(10)).expect("b inc"));
    assert_refused_by_trust_file(&e);
    let e = ts.check_consistency(&pk, &b.consistency_bundle(10, Some(20)).expect("b con"));
    assert_refused_by_trust_file(&e);
    let ts = TrustStore::open(&path).expect("reopen");
    assert_eq!(
        ts.trusted().map(|c| (c.origin.as_str(), c.size)),
        Some(("a.quiver/db", 10))
    );

    // An empty log's checkpoint: every empty tree has the same root, and every tree is
    // consistent with it, so another log's proof from its own empty checkpoint verifies.
    let e_dir = tempfile::tempdir().expect("e");
    let empty = ledger_of(e_dir.path(), "empty.quiver/db", Some(a_dir.path()), &[0]);
    let path = t_dir.path().join("empty.json");
    let mut ts = TrustStore::open(&path).expect("open");
    ts.check_consistency(&pk, &empty.consistency_bundle(0, Some(0)).expect("e con"))
        .expect("first use: empty@0");
    let b0_dir = tempfile::tempdir().expect("b0");
    let b0 = ledger_of(b0_dir.path(), "b.quiver/db", Some(a_dir.path()), &[0, 20]);
    let e = ts.check_consistency(&pk, &b0.consistency_bundle(0, Some(20)).expect("b0 con"));
    assert_refused_by_trust_file(&e);
    let ts = TrustStore::open(&path).expect("reopen");
    assert_eq!(
        ts.trusted().map(|c| (c.origin.as_str(), c.size)),
        Some(("empty.quiver/db", 0))
    );
}

/// A trust file whose checkpoint or key was edited is refused as a damaged trust file (naming
/// it), not reported as if the presented bundle were badly signed.
#[test]
fn an_edited_trust_file_is_reported_as_the_trust_file() {
    let a_dir = tempfile::tempdir().expect("a");
    let t_dir = tempfile::tempdir().expect("t");
    let a = ledger_of(a_dir.path(), "a.quiver/db", None, &[10]);
    let pk = a.public_key();
    let path = t_dir.path().join("t.json");
    let bundle = a.inclusion_bundle(3, Some(10)).expect("inc");
    TrustStore::open(&path)
        .expect("open")
        .check_inclusion(&pk, &bundle)
        .expect("first use");
    let good: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
    let note = good["checkpoint"].as_str().expect("note");
    let key = good["public_key"].as_str().expect("key");
    for (name, key, note) in [
        (
            "size edited",
            key.to_string(),
            note.replacen("\n10\n", "\n11\n", 1),
        ),
        (
            "signature removed",
            key.to_string(),
            format!("{}\n\n", note.split("\n\n").next().unwrap_or("")),
        ),
        ("empty note", key.to_string(), String::new()),
        ("empty key", String::new(), note.to_string()),
        ("other key", "11".repeat(32), note.to_string()),
    ] {
        let text = serde_json::json!({"public_key": key, "checkpoint": note}).to_string();
        fs::write(&path, &text).expect("write");
        let e = TrustStore::open(&path);
        assert!(
            matches!(&e, Err(LedgerError::Malformed { what: "trust file", reason }) if reason.contains("t.json")),
            "{name}: {e:?}"
        );
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            text,
            "{name}: file left as is"
        );
    }
}

/// A trust file reached through a symbolic link: an advance through the link updates the file
/// it names (the rename used to replace the link with a file of its own, leaving the real trust
/// file behind at the older checkpoint, where a fork of the newer one would still pass).
#[cfg(unix)]
#[test]
fn a_symlinked_trust_file_is_advanced_in_place() {
    let a_dir = tempfile::tempdir().expect("a");
    let t_dir = tempfile::tempdir().expect("t");
    let a = ledger_of(a_dir.path(), "a.quiver/db", None, &[10, 20]);
    let pk = a.public_key();
    let real = t_dir.path().join("real.json");
    let link = t_dir.path().join("link.json");
    TrustStore::open(&real)
        .expect("open")
        .check_inclusion(&pk, &a.inclusion_bundle(3, Some(10)).expect("inc"))
        .expect("first use");
    std::os::unix::fs::symlink("real.json", &link).expect("symlink");
    TrustStore::open(&link)
        .expect("open link")
        .check_consistency(&pk, &a.consistency_bundle(10, Some(20)).expect("con"))
        .expect("10 -> 20");
    assert!(fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    let ts = TrustStore::open(&real).expect("reopen");
    assert_eq!(ts.trusted().map(|c| c.size), Some(20));

    // A link to a file that does not exist yet: nothing trusted, and the first check writes
    // the file it names, through a chain of two links.
    let first = t_dir.path().join("first.json");
    let hop = t_dir.path().join("hop.json");
    let link2 = t_dir.path().join("link2.json");
    std::os::unix::fs::symlink("first.json", &hop).expect("symlink");
    std::os::unix::fs::symlink(&hop, &link2).expect("symlink");
    let mut ts = TrustStore::open(&link2).expect("a dangling link is nothing trusted yet");
    assert!(ts.trusted().is_none());
    ts.check_inclusion(&pk, &a.inclusion_bundle(3, Some(10)).expect("inc"))
        .expect("first use");
    assert!(first.is_file(), "the named file was written");
    assert!(fs::symlink_metadata(&link2)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        TrustStore::open(&first)
            .expect("open")
            .trusted()
            .map(|c| c.size),
        Some(10)
    );
}

/// `e` is the trust store refusing a bundle for what its trust file holds.
fn assert_refused_by_trust_file<T: std::fmt::Debug>(e: &Result<T, LedgerError>) {
    assert!(
        matches!(
            e,
            Err(LedgerError::Malformed {
                what: "trust file",
                ..
            })
        ),
        "{e:?}"
    );
}
