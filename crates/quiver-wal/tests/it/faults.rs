//! Fault injection: the Nth write or fdatasync fails -> poisoned, nothing acked lost, reopen works.

use crate::{body, cfg, mem, replay_all, stamped, wal_files, Hooked};
use quiver_core::SyncMode;
use quiver_wal::format::HEADER_LEN;
use quiver_wal::{FaultPlan, FaultyStorage, MemStorage, Storage, Wal, WalError};
use std::sync::Arc;

/// Commits single-record batches on a faulty storage until one fails; checks poisoning, then
/// reopens `reopen_on` and checks every acked record is there and new commits work.
fn run(plan: FaultPlan, sync: SyncMode, crash: bool) {
    let what = format!("{plan:?} {sync:?} crash={crash}");
    let m = MemStorage::new();
    let faulty = FaultyStorage::new(Arc::new(m.clone()), plan);
    let wal = match Wal::open(Arc::new(faulty.clone()), cfg(sync, 512, false), None) {
        Ok(w) => w,
        Err(e) => panic!("{what}: open failed: {e}"),
    };
    let mut acked = Vec::new();
    let mut attempted = Vec::new();
    let mut failed = false;
    for i in 0..40u64 {
        let bodies = vec![body(i, 30), body(i + 1000, 45)];
        match wal.commit(bodies.clone()) {
            Ok(r) => {
                assert!(!failed, "{what}: commit succeeded after a failure");
                for (k, b) in bodies.into_iter().enumerate() {
                    acked.push((r.first + k as u64, stamped(r.first + k as u64, b)));
                }
            }
            Err(WalError::Poisoned { reason }) => {
                if !failed {
                    assert!(reason.contains("injected"), "{what}: {reason}");
                    let first = acked.len() as u64 + 1;
                    for (k, b) in bodies.into_iter().enumerate() {
                        attempted.push((first + k as u64, stamped(first + k as u64, b)));
                    }
                }
                failed = true;
            }
            Err(e) => panic!("{what}: unexpected error {e}"),
        }
    }
    assert!(failed, "{what}: the fault never fired");
    assert!(
        matches!(wal.sync(), Err(WalError::Poisoned { .. })),
        "{what}"
    );
    drop(wal);

    let image: Arc<dyn Storage> = if crash {
        Arc::new(m.crash_image())
    } else {
        Arc::new(m)
    };
    let c = cfg(sync, 512, false);
    let wal =
        Wal::open(image.clone(), c.clone(), None).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    let got = replay_all(&wal, 0);
    assert!(got.len() >= acked.len(), "{what}: lost acked records");
    assert_eq!(&got[..acked.len()], &acked[..], "{what}");
    // Anything beyond the acked records can only be (a prefix of) the failed group.
    assert!(
        got.len() <= acked.len() + attempted.len(),
        "{what}: invented records"
    );
    assert_eq!(
        &got[acked.len()..],
        &attempted[..got.len() - acked.len()],
        "{what}"
    );
    let r = wal.commit(vec![body(7, 7)]).unwrap();
    assert_eq!(r.first, got.len() as u64 + 1, "{what}");
    drop(wal);
    let wal = Wal::open(image, c, None).unwrap();
    assert_eq!(wal.last_seq(), r.first, "{what}");
}

#[test]
fn nth_write_fails() {
    for n in 1..=12 {
        for torn in [0, 5, 60] {
            for sync in [SyncMode::None, SyncMode::PerGroup] {
                run(
                    FaultPlan {
                        fail_write: Some(n),
                        torn_write_bytes: torn,
                        ..Default::default()
                    },
                    sync,
                    false,
                );
            }
        }
    }
}

#[test]
fn nth_sync_fails() {
    for n in 1..=12 {
        for sync in [SyncMode::PerGroup, SyncMode::PerWrite] {
            for crash in [false, true] {
                run(
                    FaultPlan {
                        fail_sync: Some(n),
                        ..Default::default()
                    },
                    sync,
                    crash,
                );
            }
        }
    }
}

#[test]
fn concurrent_writers_all_see_poison() {
    let (m, _) = mem();
    let faulty = FaultyStorage::new(
        Arc::new(m.clone()),
        FaultPlan {
            fail_sync: Some(15),
            ..Default::default()
        },
    );
    let wal = Wal::open(
        Arc::new(faulty),
        cfg(SyncMode::PerGroup, 1 << 20, false),
        None,
    )
    .unwrap();
    let results: Vec<Vec<Result<quiver_core::SeqRange, String>>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let wal = &wal;
                sc.spawn(move || {
                    (0..30u64)
                        .map(|i| {
                            wal.commit(vec![body(t * 100 + i, 20)])
                                .map_err(|e| match e {
                                    WalError::Poisoned { .. } => "poisoned".to_string(),
                                    e => e.to_string(),
                                })
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut acked = Vec::new();
    for per_thread in &results {
        let first_err = per_thread
            .iter()
            .position(|r| r.is_err())
            .expect("every writer sees the poison");
        assert!(per_thread[first_err..]
            .iter()
            .all(|r| r.as_ref().err().map(String::as_str) == Some("poisoned")));
        acked.extend(
            per_thread[..first_err]
                .iter()
                .map(|r| r.as_ref().unwrap().first),
        );
    }
    drop(wal);
    let wal = Wal::open(
        Arc::new(m.crash_image()),
        cfg(SyncMode::PerGroup, 1 << 20, false),
        None,
    )
    .unwrap();
    let have: std::collections::BTreeSet<u64> =
        replay_all(&wal, 0).into_iter().map(|r| r.0).collect();
    for s in acked {
        assert!(have.contains(&s), "acked seq {s} lost");
    }
}

/// Fails the seal of the first WAL file: its first fdatasync once records went in (the one
/// before that is its header's, at creation).
struct FailSeal;

impl crate::Hooks for FailSeal {
    fn sync(&self, name: &str, extent: u64) -> std::io::Result<()> {
        if name == quiver_wal::format::file_name(1) && extent > HEADER_LEN as u64 {
            return Err(std::io::Error::other("injected seal failure"));
        }
        Ok(())
    }
}

#[test]
fn failed_seal_sync_fails_the_rotating_commit_and_poisons_in_no_sync_mode() {
    let (m, _) = mem();
    let wal = Wal::open(
        Hooked::new(m.clone(), FailSeal),
        cfg(SyncMode::None, 512, false),
        None,
    )
    .unwrap();
    let mut acked = 0;
    let reason = loop {
        match wal.commit(vec![body(acked, 40)]) {
            Ok(_) => acked += 1,
            Err(WalError::Poisoned { reason }) => break reason,
            Err(e) => panic!("{e:?}"),
        }
        assert!(acked < 100, "the first file never rotated");
    };
    assert!(
        reason.contains("fdatasync") && reason.contains("injected seal"),
        "{reason}"
    );
    assert_eq!(wal.stats().files, 1, "no file after a seal that failed");
    assert!(matches!(wal.sync(), Err(WalError::Poisoned { .. })));
    assert!(matches!(
        wal.commit(vec![body(0, 1)]),
        Err(WalError::Poisoned { .. })
    ));
    drop(wal);
    let wal = Wal::open(Arc::new(m), cfg(SyncMode::None, 512, false), None).unwrap();
    assert_eq!(
        wal.last_seq(),
        acked,
        "a process crash loses nothing acked, and the failed commit wrote nothing"
    );
}

/// A slow disk under `SyncMode::None`: every fdatasync of a record-bearing file takes 20 ms,
/// and at each directory sync (the last step of a rotation, once the new file's header is
/// synced) the power-cut image of that moment is kept.
#[derive(Default)]
struct SlowSyncs {
    images: parking_lot::Mutex<Vec<MemStorage>>,
}

impl crate::Hooks for SlowSyncs {
    fn sync(&self, _name: &str, extent: u64) -> std::io::Result<()> {
        if extent > HEADER_LEN as u64 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }
    fn synced_dir(&self, m: &MemStorage) {
        self.images.lock().push(m.crash_image());
    }
}

/// A power cut just after a rotation under `SyncMode::None` leaves a log that opens, holding
/// every record of the sealed files. (When the seal ran on a background thread, the new
/// file's header could be durable while the sealed file was still short: a hole that the
/// open refuses as a missing WAL file, `docs/format/wal.md`.)
#[test]
fn a_power_cut_after_a_no_sync_rotation_leaves_an_openable_log() {
    let storage = Hooked::new(MemStorage::new(), SlowSyncs::default());
    let c = cfg(SyncMode::None, 1024, false);
    let wal = Wal::open(storage.clone(), c.clone(), None).unwrap();
    let mut acked = Vec::new();
    for i in 0..40u64 {
        let b = body(i, 100);
        let r = wal.commit(vec![b.clone()]).unwrap();
        acked.push((r.first, b));
    }
    drop(wal);
    let images = std::mem::take(&mut *storage.hooks.images.lock());
    assert!(images.len() >= 4, "rotated: {} images", images.len());
    for (k, image) in images.into_iter().enumerate() {
        let files = wal_files(&image);
        let w = Wal::open(Arc::new(image), c.clone(), None)
            .unwrap_or_else(|e| panic!("image {k} ({files:?}) does not open: {e}"));
        let got = replay_all(&w, 0);
        // A prefix of what was acknowledged, with every record of every sealed file.
        let newest = files.last().expect("a file");
        let first_of_newest: u64 = newest.trim_end_matches(".log").parse().unwrap();
        assert!(
            got.len() as u64 + 1 >= first_of_newest,
            "image {k}: {} records, but the newest file starts at seq {first_of_newest}",
            got.len()
        );
        for (i, (seq, b)) in got.iter().enumerate() {
            assert_eq!(*seq, acked[i].0);
            assert_eq!(b, &stamped(*seq, acked[i].1.clone()));
        }
    }
}

/// An observer that takes 100 ms over its first group, flagging when it has started.
#[derive(Default)]
struct SlowFirst(Arc<std::sync::atomic::AtomicBool>);

impl quiver_wal::CommitObserver for SlowFirst {
    fn on_commit(&self, _first: quiver_core::SeqNo, _bodies: &[&[u8]]) -> Result<(), String> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(())
    }
}

/// A large group is written, its leader hands over and applies it; meanwhile the next group's
/// write fails and poisons the log. The first group is durable, so it is still applied and
/// acknowledged; the second writer gets the error; reopening finds exactly the first group.
#[test]
fn a_written_group_is_still_acknowledged_when_a_later_write_fails() {
    let m = MemStorage::new();
    let plan = FaultPlan {
        fail_write: Some(3), // 1: the file header, 2: the first group, 3: the second group
        ..FaultPlan::default()
    };
    let s: Arc<dyn Storage> = Arc::new(FaultyStorage::new(Arc::new(m.clone()), plan));
    let applying = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let obs: Arc<dyn quiver_wal::CommitObserver> = Arc::new(SlowFirst(applying.clone()));
    let wal = Arc::new(Wal::open(s, cfg(SyncMode::PerGroup, 1 << 20, false), Some(obs)).unwrap());
    let n = quiver_wal::HANDOFF_ENTRIES as u64;
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| body(i, 20)).collect();
    let w = wal.clone();
    let big = bodies.clone();
    let first = std::thread::spawn(move || w.commit(big));
    // The first group is written and being applied before the second one is committed.
    while !applying.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    match wal.commit(vec![body(9999, 20)]) {
        Err(WalError::Poisoned { .. }) | Err(WalError::Io { .. }) => {}
        other => panic!("the failed write must not be acknowledged: {other:?}"),
    }
    let r = first
        .join()
        .unwrap()
        .expect("the durable group is acknowledged");
    assert_eq!((r.first, r.last), (1, n));
    drop(wal);
    let wal = Wal::open(Arc::new(m), cfg(SyncMode::PerGroup, 1 << 20, false), None).unwrap();
    let expected: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| (i as u64 + 1, stamped(i as u64 + 1, b)))
        .collect();
    assert_eq!(replay_all(&wal, 0), expected);
}

/// Records the ranges handed to `start_writeback`.
#[derive(Default)]
struct Writebacks(parking_lot::Mutex<Vec<(u64, u64)>>);

impl crate::Hooks for Writebacks {
    fn writeback(&self, _name: &str, off: u64, len: u64) {
        self.0.lock().push((off, len));
    }
}

/// Under `SyncMode::None` every whole `WRITE_BEHIND_BYTES` chunk of the active file is handed
/// to write-back once, in order, as soon as a write completes it; a syncing log, whose groups
/// are synced anyway, never asks.
#[test]
fn no_sync_logs_start_write_back_of_each_completed_chunk() {
    use quiver_wal::WRITE_BEHIND_BYTES as W;
    for sync in [SyncMode::None, SyncMode::PerGroup] {
        let storage = Hooked::new(MemStorage::new(), Writebacks::default());
        let wal = Wal::open(storage.clone(), cfg(sync, 64 << 20, false), None).unwrap();
        // 10.5 chunks' worth, in groups of ~300 KiB that straddle chunk boundaries.
        let mut written = 0u64;
        let mut tag = 0;
        while written < W * 21 / 2 {
            let batch: Vec<Vec<u8>> = (0..100)
                .map(|_| {
                    tag += 1;
                    body(tag, 3000)
                })
                .collect();
            wal.commit(batch).unwrap();
            written = wal.stats().bytes;
        }
        let got = storage.hooks.0.lock().clone();
        if sync == SyncMode::None {
            let want: Vec<(u64, u64)> = (0..written / W).map(|k| (k * W, W)).collect();
            let merged: Vec<(u64, u64)> = got
                .iter()
                .flat_map(|&(off, len)| (0..len / W).map(move |k| (off + k * W, W)))
                .collect();
            assert!(got
                .iter()
                .all(|&(off, len)| off % W == 0 && len % W == 0 && len > 0));
            assert_eq!(merged, want, "each whole chunk once, in order");
        } else {
            assert!(got.is_empty(), "{sync:?} asked for write-back: {got:?}");
        }
    }
}
