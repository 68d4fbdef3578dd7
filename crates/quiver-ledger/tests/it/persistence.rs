//! Restart, torn writes, truncate, key persistence.

use std::fs;

use quiver_ledger::{HashAlg, Ledger, LedgerError};

use crate::common;

fn level_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir.join("ledger"))
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("level-"))
        .map(|n| {
            let b = fs::read(dir.join("ledger").join(&n)).expect("read");
            (n, b)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn restart_mid_run_gives_identical_tree() {
    let a = tempfile::tempdir().expect("a");
    let b = tempfile::tempdir().expect("b");
    let n = 1500u64;
    {
        let l = common::open(b.path(), HashAlg::Blake3);
        common::append_range(&l, 1, n);
        l.sync().expect("sync");
    }
    // Interrupted run: reopen at odd points, sometimes without an explicit sync (Drop flushes).
    let mut next = 1u64;
    let mut round = 0;
    while next <= n {
        let l = common::open(a.path(), HashAlg::Blake3);
        assert_eq!(l.size(), next - 1);
        let end = (next + 137 + round * 11).min(n);
        common::append_range(&l, next, end);
        if round % 2 == 0 {
            l.sync().expect("sync");
        }
        next = end + 1;
        round += 1;
    }
    let la = common::open(a.path(), HashAlg::Blake3);
    let lb = common::open(b.path(), HashAlg::Blake3);
    assert_eq!(la.size(), n);
    assert_eq!(la.root(), lb.root());
    for s in [1, 2, 3, 255, 256, 257, 1024, 1499, 1500] {
        assert_eq!(la.root_at(s).expect("a"), lb.root_at(s).expect("b"));
    }
    assert_eq!(
        la.inclusion_proof(700, n).expect("pa"),
        lb.inclusion_proof(700, n).expect("pb")
    );
    drop((la, lb));
    assert_eq!(
        level_files(a.path()),
        level_files(b.path()),
        "node files byte-identical"
    );
}

/// A SHA-256 ledger of leaves `1..=n`, synced and closed, in a fresh directory.
fn synced_sha256_ledger(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Sha256);
    common::append_range(&l, 1, n);
    l.sync().expect("sync");
    dir
}

#[test]
fn lagging_and_torn_node_files_are_repaired() {
    let n = 300u64;
    let dir = synced_sha256_ledger(n);
    let ld = dir.path().join("ledger");
    // Torn final leaf hash (5 bytes short) and level 1..3 files behind (a crash between writes).
    let cut = |name: &str, by: u64| {
        let p = ld.join(name);
        let len = fs::metadata(&p).expect("meta").len();
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open")
            .set_len(len - by)
            .expect("cut");
    };
    cut("level-00.hashes", 5);
    cut("level-01.hashes", 32 * 7);
    cut("level-03.hashes", 32 * 2);
    // A level file created but never given its header (crash at creation).
    let l4 = ld.join("level-04.hashes");
    let l4_len = fs::metadata(&l4).expect("meta").len();
    cut("level-04.hashes", l4_len);
    // An audit sees the same state without writing: the empty level is recomputed in memory.
    {
        let ro = common::open_ro(dir.path());
        assert_eq!(ro.size(), n - 1);
        let want = common::mth(HashAlg::Sha256, &common::leaves(HashAlg::Sha256, n - 1));
        assert_eq!(ro.root(), want);
        let report = ro.verify_tree(&mut |_| {}).expect("verify read-only");
        assert!(report.ok(), "{:?}", report.failure);
        assert_eq!(fs::metadata(&l4).expect("meta").len(), 0, "nothing written");
    }
    let l = common::open(dir.path(), HashAlg::Sha256);
    assert_eq!(l.size(), n - 1);
    let want = common::mth(HashAlg::Sha256, &common::leaves(HashAlg::Sha256, n - 1));
    assert_eq!(l.root(), want);
    assert_eq!(l.root_at(n - 1).expect("root_at"), want);
    let report = l.verify_tree(&mut |_| {}).expect("verify");
    assert!(report.ok(), "{:?}", report.failure);
    // And appending continues seamlessly.
    common::append_range(&l, n, n);
    assert_eq!(
        l.root(),
        common::mth(HashAlg::Sha256, &common::leaves(HashAlg::Sha256, n))
    );
}

#[test]
fn read_only_open_sees_synced_state_and_refuses_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Sha256);
    common::append_range(&l, 1, 50);
    l.checkpoint().expect("checkpoint");
    let ro = common::open_ro(dir.path());
    assert_eq!(ro.size(), 50);
    assert_eq!(ro.root(), l.root());
    assert_eq!(ro.alg(), HashAlg::Sha256);
    assert_eq!(ro.public_key(), l.public_key());
    assert!(matches!(
        ro.append(51, &[b"x".as_slice()]),
        Err(LedgerError::ReadOnly)
    ));
    assert!(matches!(ro.checkpoint(), Err(LedgerError::ReadOnly)));
    let leaves: Vec<_> = ro.leaf_hashes(10).map(|h| h.expect("leaf")).collect();
    assert_eq!(leaves, common::leaves(HashAlg::Sha256, 50)[10..].to_vec());
}

#[test]
fn seq_gap_and_alg_mismatch_are_typed_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let l = common::open(dir.path(), HashAlg::Sha256);
        common::append_range(&l, 1, 5);
        assert!(matches!(
            l.append(7, &[b"x".as_slice()]),
            Err(LedgerError::SeqGap {
                expected: 6,
                got: 7
            })
        ));
        assert!(matches!(
            l.append(5, &[b"x".as_slice()]),
            Err(LedgerError::SeqGap { .. })
        ));
        assert!(matches!(
            l.leaf_hash_at(5),
            Err(LedgerError::OutOfRange { .. })
        ));
        assert!(l.inclusion_proof(5, 5).is_err());
        assert!(l.inclusion_proof(0, 6).is_err());
        assert!(l.consistency_proof(4, 3).is_err());
        assert!(l.root_at(6).is_err());
    }
    let (ld, kd) = common::dirs(dir.path());
    let r = Ledger::open(&ld, &kd, common::cfg(HashAlg::Blake3));
    assert!(matches!(
        r,
        Err(LedgerError::AlgMismatch {
            stored: HashAlg::Sha256,
            requested: HashAlg::Blake3
        })
    ));
}

#[test]
fn truncate_drops_unsigned_tail_but_refuses_below_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Blake3);
    common::append_range(&l, 1, 40);
    let cp = l.checkpoint().expect("checkpoint");
    assert_eq!(cp.checkpoint.size, 40);
    common::append_range(&l, 41, 77);
    assert!(matches!(
        l.truncate(39),
        Err(LedgerError::BelowSigned {
            requested: 39,
            signed: 40,
            ..
        })
    ));
    assert_eq!(l.size(), 77);
    l.truncate(50).expect("truncate");
    assert_eq!(l.size(), 50);
    assert_eq!(
        l.root(),
        common::mth(HashAlg::Blake3, &common::leaves(HashAlg::Blake3, 50))
    );
    // Appending after a truncate continues with the same seqs and reaches the same tree.
    common::append_range(&l, 51, 77);
    drop(l);
    let l = common::open(dir.path(), HashAlg::Blake3);
    assert_eq!(
        l.root(),
        common::mth(HashAlg::Blake3, &common::leaves(HashAlg::Blake3, 77))
    );
    l.truncate(40).expect("truncate to the checkpoint itself");
    assert!(l.verify_tree(&mut |_| {}).expect("verify").ok());
    // A receipt signs a tree size too, and covers only records durable when it was signed.
    common::append_range(&l, 41, 77);
    let r = l.receipt_at(41, 60, 70).expect("receipt");
    assert_eq!((r.tree_size, l.signed_size()), (70, 70));
    assert!(matches!(
        l.truncate(69),
        Err(LedgerError::BelowSigned {
            requested: 69,
            signed: 70,
            kind: "receipt"
        })
    ));
    drop(l);
    let l = common::open(dir.path(), HashAlg::Blake3);
    assert_eq!(l.signed_size(), 70, "known again after a reopen");
    assert!(l.truncate(69).is_err());
    l.truncate(70).expect("truncate to the receipt's size");
}

#[test]
fn key_file_is_0600_and_persisted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let pk = common::open(dir.path(), HashAlg::Sha256).public_key();
    let (_, kd) = common::dirs(dir.path());
    let path = quiver_ledger::key_path(&kd);
    let mode = fs::metadata(&path).expect("key meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(fs::metadata(&path).expect("meta").len(), 80);
    assert_eq!(common::open(dir.path(), HashAlg::Sha256).public_key(), pk);
    assert_eq!(common::open_ro(dir.path()).public_key(), pk);
    // The secret never shows in Debug output.
    let dbg = format!("{:?}", common::open(dir.path(), HashAlg::Sha256));
    assert!(!dbg.to_lowercase().contains("secret"));
}

#[test]
fn concurrent_appenders_serialise_by_seq() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let dir = tempfile::tempdir().expect("tempdir");
    let l = common::open(dir.path(), HashAlg::Blake3);
    let next = Mutex::new(1u64);
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    // The caller's critical section assigns seqs and appends in order.
                    let mut g = next.lock().expect("lock");
                    let seq = *g;
                    common::append_range(&l, seq, seq + 2);
                    *g = seq + 3;
                    done.fetch_add(3, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(l.size(), done.load(Ordering::Relaxed));
    assert_eq!(
        l.root(),
        common::mth(HashAlg::Blake3, &common::leaves(HashAlg::Blake3, 600))
    );
}

/// A level above the leaves whose header reads as zeros — its size reached the disk, its
/// first sector did not (a crash at its creation) — holds no nodes: they are recomputed from
/// the level below, in memory for an audit, on disk for a writable open. The same at level 0
/// would throw leaves away: there it is damage.
#[test]
fn a_derived_level_whose_header_never_landed_is_rebuilt() {
    let n = 300u64;
    let dir = synced_sha256_ledger(n);
    let ld = dir.path().join("ledger");
    let want = common::mth(HashAlg::Sha256, &common::leaves(HashAlg::Sha256, n));
    let zero_header = |name: &str| {
        let p = ld.join(name);
        let mut b = fs::read(&p).expect("read");
        b[..32].fill(0);
        fs::write(&p, b).expect("write");
    };
    zero_header("level-02.hashes");
    {
        let ro = common::open_ro(dir.path());
        assert_eq!((ro.size(), ro.root()), (n, want));
        let report = ro.verify_tree(&mut |_| {}).expect("verify read-only");
        assert!(report.ok(), "{:?}", report.failure);
    }
    {
        let l = common::open(dir.path(), HashAlg::Sha256);
        assert_eq!((l.size(), l.root()), (n, want));
        let report = l.verify_tree(&mut |_| {}).expect("verify");
        assert!(report.ok(), "{:?}", report.failure);
        l.sync().expect("sync");
    }
    let b = fs::read(ld.join("level-02.hashes")).expect("read");
    assert_eq!(&b[..8], b"QVLGNODE", "header rewritten");
    zero_header("level-00.hashes");
    let (l, k) = common::dirs(dir.path());
    let err = Ledger::open(&l, &k, common::cfg(HashAlg::Sha256)).expect_err("level 0 damaged");
    assert!(err.to_string().contains("level-00.hashes"), "{err}");
    let err = Ledger::open_read_only(&l, &k).expect_err("level 0 damaged");
    assert!(err.to_string().contains("level-00.hashes"), "{err}");
}

/// Overwrites nodes `[from, to)` of the level file `name` with zeros, in place: what a power
/// cut leaves where the file's new size reached the disk and those pages of its data did not.
fn zero_nodes(root: &std::path::Path, name: &str, from: u64, to: u64) {
    let p = root.join("ledger").join(name);
    let mut b = fs::read(&p).expect("read");
    b[(32 + 32 * from) as usize..(32 + 32 * to) as usize].fill(0);
    fs::write(&p, b).expect("write");
}

/// Node writes that never landed past the last signature (zeros, with later nodes intact) are
/// forgotten from the first zero node on: a read-only open stops reading there, a writable one
/// cuts the file there and recomputes the levels above; appending the leaves again gives the
/// uninterrupted tree. Before this, the zeros were taken for leaves, and the next checkpoint
/// would have signed a root over them.
#[test]
fn unlanded_node_writes_past_the_signature_are_forgotten() {
    let alg = HashAlg::Sha256;
    let n = 300u64;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let l = common::open(dir.path(), alg);
        common::append_range(&l, 1, 100);
        assert_eq!(l.checkpoint().expect("checkpoint").checkpoint.size, 100);
        common::append_range(&l, 101, n);
        l.sync().expect("sync");
    }
    zero_nodes(dir.path(), "level-00.hashes", 150, 200);
    zero_nodes(dir.path(), "level-02.hashes", 40, 41);
    let all = common::leaves(alg, n);
    let before = level_files(dir.path());
    {
        let ro = common::open_ro(dir.path());
        assert_eq!(ro.size(), 150);
        assert_eq!(ro.root(), common::mth(alg, &all[..150]));
        let report = ro.verify_tree(&mut |_| {}).expect("verify read-only");
        assert!(report.ok(), "{:?}", report.failure);
    }
    assert_eq!(level_files(dir.path()), before, "an audit writes nothing");
    {
        let l = common::open(dir.path(), alg);
        assert_eq!(l.size(), 150);
        assert_eq!(l.root(), common::mth(alg, &all[..150]));
        let len = fs::metadata(dir.path().join("ledger/level-00.hashes"))
            .expect("meta")
            .len();
        assert_eq!(len, 32 + 32 * 150, "cut at the first zero leaf");
        common::append_range(&l, 151, n);
        assert_eq!(l.root(), common::mth(alg, &all));
        let report = l.verify_tree(&mut |_| {}).expect("verify");
        assert!(report.ok(), "{:?}", report.failure);
    }
    // A level above the leaves alone: recomputed from the leaves, none of them lost.
    zero_nodes(dir.path(), "level-01.hashes", 120, 121);
    let l = common::open(dir.path(), alg);
    assert_eq!((l.size(), l.root()), (n, common::mth(alg, &all)));
    assert!(l.verify_tree(&mut |_| {}).expect("verify").ok());
    let p = l.inclusion_proof(241, n).expect("proof");
    quiver_ledger::verify::verify_inclusion(alg, &all[241], 241, n, &p.path, &l.root())
        .expect("proof");
}

/// Zeros under a signature are damage, never cut away: the open keeps every leaf (it does not
/// audit them; the checkpoint's root still follows from the stored upper levels) and the audit
/// reports the zero leaf, read-only and writable alike.
#[test]
fn zero_nodes_under_a_signature_are_damage_not_cut() {
    let alg = HashAlg::Sha256;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let l = common::open(dir.path(), alg);
        common::append_range(&l, 1, 100);
        l.checkpoint().expect("checkpoint");
        common::append_range(&l, 101, 120);
        l.sync().expect("sync");
    }
    zero_nodes(dir.path(), "level-00.hashes", 60, 61);
    let before = level_files(dir.path());
    let bad_at_60 = |l: &Ledger| {
        assert_eq!(l.size(), 120, "nothing cut");
        let report = l.verify_tree(&mut |_| {}).expect("verify");
        let f = report.failure.expect("the zero leaf is reported");
        assert!(
            (f.first_bad_index..f.first_bad_index + f.span).contains(&60),
            "{f:?}"
        );
    };
    bad_at_60(&common::open_ro(dir.path()));
    assert_eq!(level_files(dir.path()), before, "an audit writes nothing");
    bad_at_60(&common::open(dir.path(), alg));
    assert_eq!(
        fs::metadata(dir.path().join("ledger/level-00.hashes"))
            .expect("meta")
            .len(),
        32 + 32 * 120
    );
}

/// A leaf file of zeros only, header and all, before anything was signed is a creation cut
/// short (its header is written before any leaf; leaves that never landed are hashed again from
/// the WAL by the engine): it starts afresh, in memory for an audit and on disk for a writable
/// open. Once a checkpoint is signed, the same zeros are damage.
#[test]
fn an_unsigned_leaf_file_of_zeros_only_starts_afresh() {
    let alg = HashAlg::Sha256;
    let zero_leaf_file = |root: &std::path::Path| {
        let p = root.join("ledger/level-00.hashes");
        let len = fs::metadata(&p).expect("meta").len() as usize;
        fs::write(&p, vec![0u8; len]).expect("write");
    };
    for n in [0u64, 40] {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let l = common::open(dir.path(), alg);
            if n > 0 {
                common::append_range(&l, 1, n);
            }
            l.sync().expect("sync");
        }
        zero_leaf_file(dir.path());
        assert_eq!(common::open_ro(dir.path()).size(), 0, "{n} leaves");
        let l = common::open(dir.path(), alg);
        assert_eq!((l.size(), l.root()), (0, alg.empty_root()), "{n} leaves");
        common::append_range(&l, 1, 40);
        assert_eq!(l.root(), common::mth(alg, &common::leaves(alg, 40)));
        assert!(l.verify_tree(&mut |_| {}).expect("verify").ok());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let l = common::open(dir.path(), alg);
        common::append_range(&l, 1, 40);
        l.checkpoint().expect("checkpoint");
    }
    zero_leaf_file(dir.path());
    let (ld, kd) = common::dirs(dir.path());
    for err in [
        Ledger::open(&ld, &kd, common::cfg(alg)).expect_err("signed leaves zeroed"),
        Ledger::open_read_only(&ld, &kd).expect_err("signed leaves zeroed"),
    ] {
        assert!(err.to_string().contains("level-00.hashes"), "{err}");
    }
}
