//! The ledger as the engine drives it: receipts, and a tree independent of restarts and WAL
//! rotation.

use quiver_core::{DbConfig, Op, Preset, Record};
use quiver_engine::Database;

fn ev(i: u64) -> Op {
    Op::Put(
        Record::new(i)
            .with_timestamp(i as i64)
            .with_payload(&serde_json::json!({"i": i})),
    )
}

fn cfg() -> DbConfig {
    DbConfig::new(Preset::Balanced)
        .wal_file_size(4096)
        .memtable_bytes(8192)
}

#[test]
fn restart_and_rotation_leave_the_tree_identical() {
    let straight = tempfile::tempdir().unwrap();
    let db = Database::open(straight.path(), cfg()).unwrap();
    for b in 0..30 {
        db.write_batch(&(b * 10..b * 10 + 10).map(ev).collect::<Vec<_>>())
            .unwrap();
    }
    let root_a = db.ledger().unwrap().root();
    db.close().unwrap();

    let broken = tempfile::tempdir().unwrap();
    for session in 0..3 {
        let db = Database::open(broken.path(), cfg()).unwrap();
        for b in session * 10..session * 10 + 10 {
            db.write_batch(&(b * 10..b * 10 + 10).map(ev).collect::<Vec<_>>())
                .unwrap();
        }
        if session == 1 {
            db.close_without_flush().unwrap(); // the next open replays the WAL
        } else {
            db.close().unwrap();
        }
    }
    let db = Database::open(broken.path(), cfg()).unwrap();
    assert_eq!(db.ledger().unwrap().size(), 300);
    assert_eq!(
        db.ledger().unwrap().root(),
        root_a,
        "same records, same tree"
    );
}

#[test]
fn batch_receipts_verify_and_are_indexed() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::new(Preset::Durable)).unwrap();
    db.write_batch(&(0..5).map(ev).collect::<Vec<_>>()).unwrap();
    let (range, receipt) = db
        .write_batch_with_receipt(&(5..25).map(ev).collect::<Vec<_>>())
        .unwrap();
    assert_eq!((range.first, range.last), (6, 25));
    let ledger = db.ledger().unwrap();
    quiver_ledger::verify::verify_receipt(&ledger.public_key(), &receipt).unwrap();
    let found = ledger
        .receipt_for_seq(17)
        .unwrap()
        .expect("receipt indexed by seq");
    assert_eq!(found, receipt);
    // A receipt altered anywhere no longer verifies.
    let mut forged = receipt.clone();
    forged.last_seq += 1;
    assert!(quiver_ledger::verify::verify_receipt(&ledger.public_key(), &forged).is_err());
}

/// The checkpoint policy knobs take effect: signed every N records (by the flush thread, off
/// the writers' path), and by time.
#[test]
fn checkpoint_policy_takes_effect() {
    let count = |cfg: DbConfig, batches: u64| {
        let d = tempfile::tempdir().unwrap();
        let db = Database::open(d.path(), cfg).unwrap();
        for b in 0..batches {
            db.write_batch(&(b * 50..b * 50 + 50).map(ev).collect::<Vec<_>>())
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        std::thread::sleep(std::time::Duration::from_millis(400));
        let n = db.ledger().unwrap().checkpoints().unwrap().len();
        db.close().unwrap();
        n
    };
    let base =
        DbConfig::new(Preset::Balanced).checkpoint_interval(std::time::Duration::from_secs(3600));
    let every_100 = count(base.clone().checkpoint_every(100), 20);
    let never = count(base.checkpoint_every(1_000_000), 20);
    assert_eq!(
        never, 0,
        "no checkpoint before close with a huge N and interval"
    );
    assert!(
        every_100 >= 2,
        "1000 records with N = 100 gave {every_100} checkpoints"
    );
    let timed = count(
        DbConfig::new(Preset::Balanced)
            .checkpoint_every(1_000_000)
            .checkpoint_interval(std::time::Duration::from_millis(50)),
        10,
    );
    assert!(
        timed >= 2,
        "a 50 ms interval over ~0.5 s gave {timed} checkpoints"
    );
}

/// A receipt is a signed statement: under `throughput` (no WAL syncs for plain writes) the
/// WAL is synced before one is signed, so a power loss cannot take back what it covers.
#[test]
fn a_throughput_receipt_covers_only_synced_records() {
    let d = tempfile::tempdir().unwrap();
    let cfg =
        DbConfig::new(Preset::Throughput).flush_interval(std::time::Duration::from_secs(3600));
    let db = Database::open(d.path(), cfg).unwrap();
    let syncs = |db: &Database| db.stats().unwrap().wal_syncs;
    // The first write creates the first WAL file (its header is synced).
    db.write_batch(&(0..5).map(ev).collect::<Vec<_>>()).unwrap();
    let s0 = syncs(&db);
    db.write_batch(&(100..105).map(ev).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(syncs(&db), s0, "a plain throughput write does not sync");
    let (range, receipt) = db
        .write_batch_with_receipt(&(5..25).map(ev).collect::<Vec<_>>())
        .unwrap();
    assert!(syncs(&db) > s0, "the WAL was synced before the receipt");
    assert!(receipt.tree_size >= range.last);
    let ledger = db.ledger().unwrap();
    assert_eq!(ledger.root_at(receipt.tree_size).unwrap(), receipt.root);
    quiver_ledger::verify::verify_receipt(&ledger.public_key(), &receipt).unwrap();
    db.close().unwrap();
}

/// Once a leaf append has failed, writes are refused *before* they are committed: a caller
/// told that its write failed must not find it durable (and in the signed log) after a reopen.
#[test]
fn after_a_failed_leaf_append_writes_are_refused_uncommitted() {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), DbConfig::new(Preset::Balanced)).unwrap();
    db.write_batch(&[ev(0)]).unwrap();
    // Level 4 of the tree is first needed at 16 leaves; its file cannot be created.
    std::fs::create_dir(d.path().join("ledger").join("level-04.hashes")).unwrap();
    db.write_batch(&(1..40).map(ev).collect::<Vec<_>>())
        .unwrap();
    // A checkpoint waits for every leaf: it sees the failure once the hashing thread hit it.
    assert!(
        db.checkpoint().is_err(),
        "the leaf append failure is reported"
    );
    let last = db.last_seq();
    for i in 0..3 {
        let err = db.write_batch(&[ev(100 + i)]).unwrap_err().to_string();
        assert!(err.contains("level-04"), "the cause is named: {err}");
    }
    assert_eq!(db.last_seq(), last, "refused writes were not committed");
}

/// A creation cut short before any record (here: the node key cannot be written) leaves a
/// directory `verify` calls an incomplete creation — not a database without a ledger, and not
/// damage — and the next writable open completes it. With records in it, missing ledger files
/// stay damage.
#[test]
fn a_creation_cut_short_is_reported_as_such_and_completed_by_the_next_open() {
    use quiver_engine::{verify::verify_dir, EngineError};
    // Cut short before `CURRENT`: only the lock file and empty directories exist.
    let d = tempfile::tempdir().unwrap();
    assert!(
        matches!(
            verify_dir(d.path(), &mut |_| {}),
            Err(EngineError::Manifest { .. })
        ),
        "an empty directory is no database at all"
    );
    std::fs::write(d.path().join("LOCK"), b"").unwrap();
    std::fs::create_dir_all(d.path().join("wal")).unwrap();
    match verify_dir(d.path(), &mut |_| {}) {
        Err(EngineError::IncompleteCreation { reason, .. }) => assert!(reason.contains("CURRENT")),
        other => panic!("{other:?}"),
    }

    // A database whose CURRENT was lost is not a creation cut short, even an empty one:
    // the open refuses to create one over its files, and verify must not say it would.
    let lost = tempfile::tempdir().unwrap();
    Database::open(lost.path(), cfg()).unwrap().close().unwrap();
    std::fs::remove_file(lost.path().join("CURRENT")).unwrap();
    let v = verify_dir(lost.path(), &mut |_| {});
    assert!(
        !matches!(v, Err(EngineError::IncompleteCreation { .. })),
        "{v:?}"
    );
    assert!(Database::open(lost.path(), cfg()).is_err());

    let d = tempfile::tempdir().unwrap();
    let blocker = d.path().join("keys/node.ed25519");
    std::fs::create_dir_all(&blocker).unwrap();
    assert!(
        Database::open(d.path(), cfg()).is_err(),
        "the key cannot be created"
    );
    match verify_dir(d.path(), &mut |_| {}) {
        Err(EngineError::IncompleteCreation { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir(&blocker).unwrap();
    let db = Database::open(d.path(), cfg()).unwrap();
    db.close().unwrap();
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.records, 0);

    // Cut short after the leaf file was created, before its header landed (its size did: 32
    // zero bytes), with no WAL yet: the power-loss explorer's state. verify calls it a creation
    // cut short, and the next open does complete it.
    let z = tempfile::tempdir().unwrap();
    Database::open(z.path(), cfg()).unwrap().close().unwrap();
    std::fs::remove_dir_all(z.path().join("wal")).unwrap();
    std::fs::remove_file(z.path().join("ledger/receipts.log")).unwrap();
    std::fs::write(z.path().join("ledger/level-00.hashes"), [0u8; 32]).unwrap();
    match verify_dir(z.path(), &mut |_| {}) {
        Err(EngineError::IncompleteCreation { .. }) => {}
        other => panic!("{other:?}"),
    }
    let db = Database::open(z.path(), cfg()).unwrap();
    db.write_batch(&[ev(1)]).unwrap();
    db.close().unwrap();
    let r = verify_dir(z.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.records, 1);

    // Records only in the WAL, whose files are then removed with ledger.meta: the leaf hashes
    // and the signed checkpoint still show records existed, so this is damage.
    let d2 = tempfile::tempdir().unwrap();
    let db = Database::open(d2.path(), cfg()).unwrap();
    db.write_batch(&[ev(1), ev(2)]).unwrap();
    db.close_without_flush().unwrap();
    for e in std::fs::read_dir(d2.path().join("wal")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    std::fs::remove_file(d2.path().join("ledger/ledger.meta")).unwrap();
    match verify_dir(d2.path(), &mut |_| {}) {
        Err(EngineError::IncompleteCreation { .. }) => panic!("leaves and a checkpoint are there"),
        Err(_) => {}
        Ok(r) => assert!(!r.ok()),
    }

    // The same missing file in a database that holds records is not a creation cut short.
    let db = Database::open(d.path(), cfg()).unwrap();
    db.write_batch(&[ev(1)]).unwrap();
    db.close().unwrap();
    std::fs::remove_file(d.path().join("ledger/ledger.meta")).unwrap();
    match verify_dir(d.path(), &mut |_| {}) {
        Err(EngineError::IncompleteCreation { .. }) => panic!("records are there"),
        Err(_) => {}
        Ok(r) => assert!(!r.ok()),
    }
}

/// `throughput`, no automatic flush or checkpoint: the configuration of the zeroed-leaf tests.
fn unsigned_tail_cfg() -> DbConfig {
    use std::time::Duration;
    DbConfig::new(Preset::Throughput)
        .memtable_bytes(1 << 20)
        .flush_interval(Duration::from_secs(3600))
        .checkpoint_every(1_000_000)
        .checkpoint_interval(Duration::from_secs(3600))
}

/// A database of 150 records whose first 100 a checkpoint signs, left as a crash leaves it
/// (the process never closes) after `then` ran, with the leaves of seqs `zeroed` reading as
/// zeros. Returns the directory and the root over all 150 leaves.
fn crashed_with_zero_leaves(
    then: impl FnOnce(&Database),
    zeroed: std::ops::Range<usize>,
) -> (tempfile::TempDir, quiver_ledger::Hash) {
    let d = tempfile::tempdir().unwrap();
    let db = Database::open(d.path(), unsigned_tail_cfg()).unwrap();
    db.write_batch(&(0..100).map(ev).collect::<Vec<_>>())
        .unwrap();
    db.checkpoint().unwrap(); // signs size 100
    db.write_batch(&(100..150).map(ev).collect::<Vec<_>>())
        .unwrap();
    let root = db.ledger().unwrap().root(); // every leaf is in the ledger
    then(&db);
    std::mem::forget(db);
    let leaves = d.path().join("ledger/level-00.hashes");
    let mut b = std::fs::read(&leaves).unwrap();
    b[32 + 32 * (zeroed.start - 1)..32 + 32 * (zeroed.end - 1)].fill(0);
    std::fs::write(&leaves, b).unwrap();
    (d, root)
}

/// A power cut on a file system that makes an append's new size durable before its data
/// (XFS, ext4 with `data=writeback`) can leave the ledger's unsigned leaf tail as zeros. The
/// audit takes the zeros for leaves never stored (records not hashed yet), and the next open
/// hashes those records again from the WAL: the tree is the one the crash interrupted.
#[test]
fn zeroed_unsigned_leaves_are_hashed_again_from_the_wal() {
    let (d, root) = crashed_with_zero_leaves(|db| db.ledger().unwrap().sync().unwrap(), 121..136);
    let r = quiver_engine::verify::verify_dir(d.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!((r.records, r.unhashed_tail), (150, 30));

    let copy = tempfile::tempdir().unwrap();
    crate::copy_dir(d.path(), copy.path());
    let db = Database::open(copy.path(), unsigned_tail_cfg()).unwrap();
    assert_eq!(db.ledger().unwrap().size(), 150);
    assert_eq!(db.ledger().unwrap().root(), root);
    db.close().unwrap();
    let r = quiver_engine::verify::verify_dir(copy.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!((r.records, r.unhashed_tail), (150, 0));
}

/// The same zeros in leaves a flush synced (the manifest's `flushed_through` covers them) are
/// damage, not a write that never landed: the open refuses, naming the leaf file and the leaf.
#[test]
fn zeroed_leaves_a_flush_synced_are_damage() {
    // The flush syncs leaves 1..=150 before the manifest says flushed_through 150.
    let (d, _) = crashed_with_zero_leaves(|db| db.flush().unwrap(), 121..122);
    let copy = tempfile::tempdir().unwrap();
    crate::copy_dir(d.path(), copy.path());
    let Err(err) = Database::open(copy.path(), unsigned_tail_cfg()) else {
        panic!("opened although synced leaf 121 reads as zeros");
    };
    let msg = err.to_string();
    assert!(
        msg.contains("level-00.hashes") && msg.contains("leaf 121 of 150 reads as zeros"),
        "{msg}"
    );
    let r = quiver_engine::verify::verify_dir(d.path(), &mut |_| {}).unwrap();
    let f = r.failure.expect("the audit reports it too");
    assert_eq!(f.first_bad_seq, 121, "{f:?}");
    assert!(f.file.ends_with("ledger/level-00.hashes"), "{f:?}");
}
