//! Concurrent writers: disjoint gap-free ranges, replay equals what was acked, shared syncs.

use crate::{body, cfg, mem, replay_all, stamped};
use quiver_core::{SeqRange, SyncMode};
use quiver_wal::{MemStorage, Storage, Wal};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs `threads` writers doing `commits` commits each of 1..=4 records, every other commit
/// announced first (so gathering leaders wait for it); returns every acked (range, bodies) pair.
fn run_writers(wal: &Wal, threads: u64, commits: u64) -> Vec<(SeqRange, Vec<Vec<u8>>)> {
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..commits {
                        let n = 1 + ((t + i) % 4) as usize;
                        let bodies: Vec<Vec<u8>> = (0..n)
                            .map(|j| {
                                body(t << 32 | i << 8 | j as u64, 10 + (i as usize * 7 + j) % 90)
                            })
                            .collect();
                        let r = if (t + i) % 2 == 0 {
                            let arrival = wal.announce();
                            std::thread::yield_now();
                            arrival.commit(bodies.clone()).unwrap()
                        } else {
                            wal.commit(bodies.clone()).unwrap()
                        };
                        assert_eq!(r.len(), n as u64);
                        acked.push((r, bodies));
                    }
                    acked
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn check(wal: &Wal, acked: Vec<(SeqRange, Vec<Vec<u8>>)>) {
    let mut by_seq = BTreeMap::new();
    for (r, bodies) in acked {
        for (k, b) in bodies.into_iter().enumerate() {
            let seq = r.first + k as u64;
            assert!(
                by_seq.insert(seq, stamped(seq, b)).is_none(),
                "seq {seq} acked twice"
            );
        }
    }
    let n = by_seq.len() as u64;
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "gap"
    );
    assert_eq!(wal.last_seq(), n);
    let expected: Vec<_> = by_seq.into_iter().collect();
    assert_eq!(replay_all(wal, 0), expected);
}

#[test]
fn eight_writers_per_group_with_rotation() {
    let (_m, s) = mem();
    let wal = Wal::open(s.clone(), cfg(SyncMode::PerGroup, 8192, false), None).unwrap();
    let acked = run_writers(&wal, 8, 60);
    check(&wal, acked.clone());
    drop(wal);
    let wal = Wal::open(s, cfg(SyncMode::PerGroup, 8192, false), None).unwrap();
    check(&wal, acked);
}

#[test]
fn writers_with_gather_delay_and_small_groups() {
    let (_m, s) = mem();
    let mut c = cfg(SyncMode::PerGroup, 1 << 20, false);
    c.gather_delay = Duration::from_micros(300);
    c.max_group_entries = 5;
    let wal = Wal::open(s, c, None).unwrap();
    let acked = run_writers(&wal, 4, 40);
    check(&wal, acked);
}

/// Waits (at most 10 s) until `done` holds.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The gather delay takes effect, and only for announced writers: a lone writer is never
/// delayed; a leader waits for a writer that announced itself and is not queued yet, so both
/// share one group; it stops waiting when that writer withdraws; with no delay it never waits.
#[test]
fn gather_waits_only_for_announced_writers() {
    let open = |gather: Duration| {
        let (_m, s) = mem();
        let mut c = cfg(SyncMode::PerGroup, 1 << 20, false);
        c.gather_delay = gather;
        Wal::open(s, c, None).unwrap()
    };
    let long = Duration::from_secs(3600);

    // (Two seconds, so that a leader that wrongly waited would fail the test, not hang it.)
    let wal = open(Duration::from_secs(2));
    for i in 0..3 {
        wal.commit(vec![body(i, 20)]).unwrap();
        wal.announce().commit(vec![body(10 + i, 20)]).unwrap();
    }
    let st = wal.stats();
    assert_eq!(
        (st.groups, st.gathers),
        (6, 0),
        "a lone writer never gathers"
    );

    // `late` announces, the leader gathers for it, `late` commits: one group of two.
    let wal = open(long);
    let late = wal.announce();
    std::thread::scope(|sc| {
        let leader = sc.spawn(|| wal.commit(vec![body(1, 20)]).unwrap());
        eventually("the leader gathers", || wal.stats().gathers == 1);
        late.commit(vec![body(2, 20)]).unwrap();
        leader.join().unwrap();
    });
    assert_eq!((wal.stats().groups, wal.stats().records), (1, 2));

    // `late` withdraws (drops its arrival): the leader stops waiting and writes alone.
    let wal = open(long);
    let late = wal.announce();
    std::thread::scope(|sc| {
        let leader = sc.spawn(|| wal.commit(vec![body(1, 20)]).unwrap());
        eventually("the leader gathers", || wal.stats().gathers == 1);
        drop(late);
        eventually("the leader writes", || wal.stats().groups == 1);
        leader.join().unwrap();
    });

    // No gather delay: the leader writes without waiting for the announced writer.
    let wal = open(Duration::ZERO);
    let late = wal.announce();
    std::thread::scope(|sc| {
        let leader = sc.spawn(|| wal.commit(vec![body(1, 20)]).unwrap());
        eventually("the leader writes", || wal.stats().groups == 1);
        leader.join().unwrap();
        late.commit(vec![body(2, 20)]).unwrap();
    });
    let st = wal.stats();
    assert_eq!((st.groups, st.gathers), (2, 0));
}

#[test]
fn no_sync_mode_concurrent() {
    let (_m, s) = mem();
    let wal = Wal::open(s, cfg(SyncMode::None, 4096, false), None).unwrap();
    let acked = run_writers(&wal, 6, 50);
    check(&wal, acked);
    assert_eq!(
        wal.stats().syncs as usize,
        wal.stats().files.saturating_sub(1) * 2 + 1
    );
}

/// An fdatasync takes a while, like a real disk's.
struct SlowSync;

impl crate::Hooks for SlowSync {
    fn sync(&self, _name: &str, _extent: u64) -> std::io::Result<()> {
        std::thread::sleep(Duration::from_millis(3));
        Ok(())
    }
}

#[test]
fn per_write_writers_share_fdatasyncs() {
    let s: Arc<dyn Storage> = crate::Hooked::new(MemStorage::new(), SlowSync);
    let wal = Wal::open(s, cfg(SyncMode::PerWrite, 1 << 20, true), None).unwrap();
    let threads = 8;
    let commits = 25;
    let acked = run_writers(&wal, threads, commits);
    check(&wal, acked);
    let st = wal.stats();
    let total = threads * commits;
    // Every group was synced (plus the one sync of creating the file)...
    assert_eq!(st.syncs, st.groups + 1);
    // ...and while one leader sleeps in fdatasync the others queue up and share the next one.
    assert!(
        st.groups * 2 < total,
        "{} groups for {total} commits: no sharing",
        st.groups
    );
}
