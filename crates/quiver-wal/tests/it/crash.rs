//! Crash images: power failure (unsynced bytes dropped) and process crash (page cache kept).

use crate::{body, cfg, replay_all, stamped, RecordMap};
use parking_lot::Mutex;
use quiver_core::{SyncMode, WalConfig};
use quiver_wal::{MemStorage, Wal};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs 4 writers; while they run, takes crash images, each right after snapshotting the set
/// of acked records. Returns (image, records acked before it) pairs and the final acked set.
fn run(c: WalConfig) -> (MemStorage, Vec<(MemStorage, RecordMap)>, RecordMap) {
    let m = MemStorage::new();
    let wal = Wal::open(Arc::new(m.clone()), c, None).unwrap();
    let acked = Mutex::new(BTreeMap::new());
    let stop = AtomicBool::new(false);
    let mut images = Vec::new();
    std::thread::scope(|sc| {
        for t in 0..4u64 {
            let (wal, acked, stop) = (&wal, &acked, &stop);
            sc.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < 400 {
                    let bodies: Vec<Vec<u8>> = (0..1 + i % 3)
                        .map(|j| body(t << 40 | i << 4 | j, 50))
                        .collect();
                    let r = wal.commit(bodies.clone()).unwrap();
                    let mut a = acked.lock();
                    for (k, b) in bodies.into_iter().enumerate() {
                        a.insert(r.first + k as u64, stamped(r.first + k as u64, b));
                    }
                    i += 1;
                }
            });
        }
        for _ in 0..12 {
            std::thread::sleep(std::time::Duration::from_millis(2));
            let before = acked.lock().clone();
            images.push((m.crash_image(), before));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let all = acked.into_inner();
    (m, images, all)
}

fn check_image(img: MemStorage, must: &BTreeMap<u64, Vec<u8>>, c: &WalConfig) -> usize {
    let wal = Wal::open(Arc::new(img), c.clone(), None).expect("crash image opens");
    let got: BTreeMap<u64, Vec<u8>> = replay_all(&wal, 0).into_iter().collect();
    for (seq, b) in must {
        assert_eq!(
            got.get(seq),
            Some(b),
            "acked seq {seq} missing or different after power loss"
        );
    }
    // Recovered seqs are gap-free from 1: no invented or reordered records.
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=got.len() as u64).collect::<Vec<_>>()
    );
    // And the log keeps working.
    let r = wal.commit(vec![body(1, 1)]).unwrap();
    assert_eq!(r.first, got.len() as u64 + 1);
    got.len()
}

#[test]
fn power_loss_keeps_every_acked_record_per_group() {
    let c = cfg(SyncMode::PerGroup, 16 << 10, false);
    let (m, images, all) = run(c.clone());
    let mut sizes = Vec::new();
    for (img, before) in images {
        sizes.push(check_image(img, &before, &c));
    }
    check_image(m.crash_image(), &all, &c);
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
}

#[test]
fn power_loss_keeps_every_acked_record_preallocated_per_write() {
    let c = cfg(SyncMode::PerWrite, 16 << 10, true);
    let (m, images, all) = run(c.clone());
    for (img, before) in images {
        check_image(img, &before, &c);
    }
    check_image(m.crash_image(), &all, &c);
}

#[test]
fn process_crash_keeps_every_acked_record_without_sync() {
    // SyncMode::None: a power failure may lose recent writes, a process crash loses nothing,
    // because every acked group was handed to the OS with write(2).
    let c = cfg(SyncMode::None, 16 << 10, false);
    let (m, _images, all) = run(c.clone());
    let wal = Wal::open(Arc::new(m), c, None).unwrap();
    let got: BTreeMap<u64, Vec<u8>> = replay_all(&wal, 0).into_iter().collect();
    assert_eq!(got, all);
}

/// Child side of [`sigkill_child_keeps_every_acked_record`]: writes until killed, printing
/// `ACK <tag> <first> <count> <len>` after each acknowledged commit. Ignored unless spawned.
#[test]
#[ignore = "spawned by sigkill_child_keeps_every_acked_record"]
fn child_writer() {
    use std::io::Write;
    let Ok(dir) = std::env::var("QUIVER_WAL_CHILD_DIR") else {
        return;
    };
    let mode = std::env::var("QUIVER_WAL_CHILD_MODE").unwrap();
    let c = match mode.as_str() {
        "none" => cfg(SyncMode::None, 64 << 10, false),
        "group" => cfg(SyncMode::PerGroup, 64 << 10, false),
        _ => cfg(SyncMode::PerWrite, 64 << 10, true),
    };
    let s: Arc<dyn quiver_wal::Storage> = Arc::new(quiver_wal::FsStorage::new(&dir).unwrap());
    let wal = Wal::open(s, c, None).unwrap();
    let base = wal.last_seq() << 20;
    let out = Mutex::new(std::io::stdout());
    std::thread::scope(|sc| {
        for t in 0..3u64 {
            let (wal, out) = (&wal, &out);
            sc.spawn(move || {
                for i in 0..200_000u64 {
                    let tag = base | t << 40 | i << 8;
                    let (n, len) = (1 + (i % 4) as usize, 16 + (i as usize % 40));
                    let r = wal
                        .commit(
                            (0..n)
                                .map(|j| body(tag + j as u64, len))
                                .collect::<Vec<_>>(),
                        )
                        .unwrap();
                    let mut o = out.lock();
                    writeln!(o, "ACK {tag} {} {n} {len}", r.first).unwrap();
                    o.flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn sigkill_child_keeps_every_acked_record() {
    use std::io::Read;
    for (rep, mode) in ["none", "group", "write"]
        .iter()
        .cycle()
        .take(9)
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        // Two lives per directory: the second reopens what the first left behind.
        for life in 0..2 {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "crash::child_writer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("QUIVER_WAL_CHILD_DIR", dir.path())
                .env("QUIVER_WAL_CHILD_MODE", mode)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(
                60 + 37 * ((rep * 2 + life) % 5) as u64,
            ));
            child.kill().unwrap(); // SIGKILL
            let mut text = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            child.wait().unwrap();
            for line in text.lines().filter_map(|l| l.strip_prefix("ACK ")) {
                let v: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
                for j in 0..v[2] {
                    let seq = v[1] + j;
                    acked.insert(seq, stamped(seq, body(v[0] + j, v[3] as usize)));
                }
            }
        }
        let s: Arc<dyn quiver_wal::Storage> =
            Arc::new(quiver_wal::FsStorage::new(dir.path()).unwrap());
        let wal = Wal::open(s, cfg(SyncMode::PerGroup, 64 << 10, false), None).unwrap();
        let got: BTreeMap<u64, Vec<u8>> = replay_all(&wal, 0).into_iter().collect();
        assert!(!acked.is_empty(), "{mode}: the child acknowledged nothing");
        for (seq, b) in &acked {
            assert_eq!(
                got.get(seq),
                Some(b),
                "{mode}: acked seq {seq} lost after SIGKILL"
            );
        }
        // Every recovered record is one the child really wrote (self-describing bodies), gap-free.
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            (1..=got.len() as u64).collect::<Vec<_>>()
        );
        for (seq, b) in &got {
            let tag = u64::from_le_bytes(b[8..16].try_into().unwrap());
            assert_eq!(
                b,
                &stamped(*seq, body(tag, b.len() - 8)),
                "{mode}: seq {seq} was never written"
            );
        }
    }
}

/// Records a `SyncMode::None` run left unsynced are made durable when the log is opened in a
/// syncing mode: the engine treats everything it finds at open as committed (and may sign
/// checkpoints over it), and direct appends would never sync those bytes.
#[test]
fn opening_a_syncing_log_makes_what_it_found_durable() {
    let (m, s) = crate::mem();
    let wal = Wal::open(s.clone(), crate::cfg(SyncMode::None, 4096, false), None).unwrap();
    let mut expected = Vec::new();
    for i in 0..150u64 {
        let b = crate::body(i, 100);
        let r = wal.commit(vec![b.clone()]).unwrap();
        expected.push((r.first, crate::stamped(r.first, b)));
    }
    assert!(wal.stats().files > 2, "rotated");
    drop(wal);
    let lost = {
        let img = m.crash_image();
        let w = Wal::open(Arc::new(img), crate::cfg(SyncMode::None, 4096, false), None).unwrap();
        crate::replay_all(&w, 0).len()
    };
    assert!(
        lost < expected.len(),
        "precondition: the unsynced tail would be lost"
    );
    let wal = Wal::open(s, crate::cfg(SyncMode::PerGroup, 4096, false), None).unwrap();
    drop(wal);
    let img = m.crash_image();
    let w = Wal::open(
        Arc::new(img),
        crate::cfg(SyncMode::PerGroup, 4096, false),
        None,
    )
    .unwrap();
    assert_eq!(crate::replay_all(&w, 0), expected);
}

/// `Wal::sync` under `SyncMode::None` is what a signed checkpoint or receipt relies on: it must
/// also cover files a previous run sealed but never got to fdatasync (its background seals cut
/// short by a crash), not only the active file and this session's seals.
#[test]
fn a_throughput_sync_covers_files_a_previous_run_left_unsynced() {
    use quiver_wal::Storage;
    let (m, s) = crate::mem();
    let c = crate::cfg(SyncMode::None, 4096, false);
    let wal = Wal::open(s.clone(), c.clone(), None).unwrap();
    let mut expected = Vec::new();
    for i in 0..150u64 {
        let b = crate::body(i, 100);
        let r = wal.commit(vec![b.clone()]).unwrap();
        expected.push((r.first, crate::stamped(r.first, b)));
    }
    drop(wal);
    // The crash came before any seal's fdatasync: only the headers had reached the disk.
    let names = m.list().unwrap();
    assert!(names.len() > 2, "rotated");
    for n in &names {
        m.forget_sync(n, 40);
    }
    let wal = Wal::open(s, c.clone(), None).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let w = Wal::open(Arc::new(m.crash_image()), c, None).expect("the image opens");
    assert_eq!(crate::replay_all(&w, 0), expected);
}

/// A power cut during one group's write that spans many 512-byte sectors, whose sectors reach
/// the disk in any order: every subset of them may have landed (a lost sector reads as the
/// zeros it held before). Recovery must open, keep every acknowledged group, and keep the torn
/// group only if all of it landed — never a refusal, never a partial batch.
#[test]
fn power_cut_during_a_group_write_keeps_every_acked_group_whatever_sectors_landed() {
    const SECTOR: usize = 512;
    for (sync, prealloc) in [(SyncMode::PerGroup, false), (SyncMode::PerWrite, true)] {
        let m = MemStorage::new();
        let c = cfg(sync, 1 << 20, prealloc);
        let wal = Wal::open(Arc::new(m.clone()), c.clone(), None).unwrap();
        let group = |g: u64| -> Vec<Vec<u8>> { (0..40).map(|i| body(g << 8 | i, 150)).collect() };
        let mut acked = Vec::new();
        for g in 0..2 {
            let r = wal.commit(group(g)).unwrap();
            for (k, b) in group(g).into_iter().enumerate() {
                acked.push((r.first + k as u64, stamped(r.first + k as u64, b)));
            }
        }
        let start = wal.stats().bytes as usize;
        let r = wal.commit(group(2)).unwrap();
        let end = wal.stats().bytes as usize;
        let mut all = acked.clone();
        for (k, b) in group(2).into_iter().enumerate() {
            all.push((r.first + k as u64, stamped(r.first + k as u64, b)));
        }
        drop(wal);
        let name = crate::wal_files(&m).pop().unwrap();
        let full = m.file(&name).unwrap();
        let sectors: Vec<usize> = (start / SECTOR..end.div_ceil(SECTOR)).collect();
        assert!(
            sectors.len() > 8,
            "the group spans {} sectors",
            sectors.len()
        );
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rand = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300 {
            // Early rounds lose one sector each; later ones a random subset.
            let lost: Vec<usize> = if round < sectors.len() {
                vec![sectors[round]]
            } else {
                sectors
                    .iter()
                    .copied()
                    .filter(|_| rand() % 2 == 0)
                    .collect()
            };
            let mut torn = full.clone();
            for &s in &lost {
                // The bytes before the group were there already: a lost sector keeps them.
                let from = (s * SECTOR).max(start);
                let to = ((s + 1) * SECTOR).min(torn.len());
                torn[from..to].fill(0);
            }
            let img = MemStorage::new();
            img.put_file(&name, torn);
            let want = if lost.is_empty() { &all } else { &acked };
            let wal = Wal::open(Arc::new(img.clone()), c.clone(), None)
                .unwrap_or_else(|e| panic!("{sync:?}, lost sectors {lost:?}: {e}"));
            assert_eq!(
                &replay_all(&wal, 0),
                want,
                "{sync:?}, lost sectors {lost:?}"
            );
            // The log goes on from there, and reopens.
            let next = want.len() as u64 + 1;
            assert_eq!(wal.commit(vec![body(9, 30)]).unwrap().first, next);
            drop(wal);
            let wal = Wal::open(Arc::new(img), c.clone(), None).unwrap();
            assert_eq!(wal.last_seq(), next);
        }
    }
}
