//! Process crash: a child process appends, syncs and checkpoints in a loop and is killed with
//! SIGKILL at a random point; the reopened ledger holds at least every synced leaf, equals the
//! reference tree of its leaves, and its checkpoints and nodes verify.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use quiver_ledger::HashAlg;
use rand::{Rng, SeedableRng};

use crate::common;

const ENV: &str = "QUIVER_LEDGER_CRASH_CHILD_DIR";

/// The child side: runs only when the parent sets `ENV`; otherwise a no-op.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let l = common::open(&dir, HashAlg::Sha256);
    let (mut until_sync, mut until_checkpoint) = (3u32, 7u32);
    loop {
        let next = l.size() + 1;
        common::append_range(&l, next, next + 49);
        until_sync -= 1;
        until_checkpoint -= 1;
        if until_sync == 0 {
            until_sync = 3;
            l.sync().expect("sync");
            println!("synced {}", l.size());
        }
        if until_checkpoint == 0 {
            until_checkpoint = 7;
            let cp = l.checkpoint().expect("checkpoint");
            println!("checkpoint {}", cp.checkpoint.size);
        }
    }
}

#[test]
fn sigkill_at_random_points_loses_no_synced_leaf() {
    let seed: u64 = rand::random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut synced = 0u64;
    for round in 0..5 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (first_sync_tx, first_sync_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("synced ") {
                    last = n.trim().parse().unwrap_or(last);
                    let _ = first_sync_tx.send(());
                }
            }
            last
        });
        // Kill at a random point after the child's first sync of this round (so a loaded
        // machine, where the child starts slowly, still kills mid-run and not before it).
        first_sync_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child did not sync within 60 s");
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        synced = synced.max(reader.join().expect("reader"));

        let l = common::open(dir.path(), HashAlg::Sha256);
        let n = l.size();
        assert!(n >= synced, "round {round}: {n} leaves < {synced} synced");
        assert_eq!(
            l.root(),
            common::mth(HashAlg::Sha256, &common::leaves(HashAlg::Sha256, n))
        );
        if let Some(cp) = l.latest_checkpoint() {
            assert!(cp.checkpoint.size <= n);
        }
        let report = l.verify_tree(&mut |_| ()).expect("verify");
        assert!(report.ok(), "round {round}: {:?}", report.failure);
    }
    assert!(synced > 0, "the child never synced; raise the kill delay");
}
