//! TrustStore under concurrency (many verifiers sharing one trust file) and signed-note vkey
//! checks (name and key id).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use quiver_ledger::{
    parse_public_key, vkey, ConsistencyBundle, HashAlg, KeyInfo, Ledger, LedgerConfig, LedgerError,
    TrustStore,
};

const ORIGIN: &str = "trust.quiver/db";

/// A ledger with a signed checkpoint at every multiple of `step` up to `step * n`.
fn ledger(root: &Path, step: u64, n: u64) -> Ledger {
    let cfg = LedgerConfig {
        alg: HashAlg::Sha256,
        origin: ORIGIN.to_string(),
        checkpoint_every: u64::MAX,
        checkpoint_interval: Duration::from_secs(3600),
    };
    let l = Ledger::open(&root.join("ledger"), &root.join("keys"), cfg).expect("open ledger");
    for c in 0..n {
        let bodies: Vec<Vec<u8>> = (0..step)
            .map(|i| format!("leaf-{}", c * step + i).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
        l.append(c * step + 1, &refs).expect("append");
        l.checkpoint().expect("checkpoint");
    }
    l
}

/// Size of the checkpoint kept in the trust file at `path` (its note's second line).
fn size_in_file(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("read trust file");
    let v: serde_json::Value = serde_json::from_str(&text).expect("trust file is JSON");
    let note = v["checkpoint"].as_str().expect("checkpoint note");
    note.lines()
        .nth(1)
        .expect("size line")
        .parse()
        .expect("size")
}

/// Many threads keep advancing one trust file at the same time, each reading the trusted size
/// and checking a consistency bundle from it to a few checkpoints further on (so two threads
/// often race from the same trusted size to different new sizes), while a monitor keeps reading
/// the file. The trusted size in the file must never decrease, no check may fail with an I/O
/// (or any non-protocol) error, the file must end at the largest size any check reported
/// trusting, and no temporary file may be left behind. Without a lock around the
/// read-check-write (and with a fixed temporary name) this fails in the first rounds.
#[test]
fn concurrent_checks_never_roll_back_the_trust_file() {
    const N: u64 = 48;
    const THREADS: usize = 6;
    const ROUNDS: usize = 12;
    let d = tempfile::tempdir().expect("tmp");
    let l = ledger(&d.path().join("db"), 1, N);
    let pk = l.public_key();
    // bundles[from][k - 1] proves from -> min(from + k, N).
    let bundles: Vec<Vec<ConsistencyBundle>> = (0..N)
        .map(|from| {
            (1..=4)
                .map(|k| {
                    let from = from.max(1);
                    l.consistency_bundle(from, Some((from + k).min(N)))
                        .expect("bundle")
                })
                .collect()
        })
        .collect();
    let bundles = Arc::new(bundles);
    let first = l.inclusion_bundle(1, Some(1)).expect("inclusion");

    for round in 0..ROUNDS {
        let dir = d.path().join(format!("round-{round}"));
        let path = dir.join("tc.json");
        TrustStore::open(&path)
            .expect("open")
            .check_inclusion(&pk, &first)
            .expect("first use");
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let mut last = 1;
                while !stop.load(Ordering::Relaxed) {
                    let s = size_in_file(&path);
                    assert!(
                        s >= last,
                        "round {round}: trust file went back from {last} to {s}"
                    );
                    last = s;
                }
            })
        };
        let barrier = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (bundles, barrier, path) = (bundles.clone(), barrier.clone(), path.clone());
                std::thread::spawn(move || -> Result<u64, String> {
                    barrier.wait();
                    let mut max_trusted = 1;
                    for op in 0..400usize {
                        let mut ts = TrustStore::open(&path).map_err(|e| e.to_string())?;
                        let from = ts.trusted().map_or(1, |c| c.size);
                        if from >= N {
                            break;
                        }
                        let b = &bundles[from as usize][(t + op + round) % 4];
                        match ts.check_consistency(&pk, b) {
                            Ok(o) => max_trusted = max_trusted.max(o.trusted.size),
                            Err(
                                LedgerError::Rollback { .. }
                                | LedgerError::Unproven { .. }
                                | LedgerError::Fork { .. },
                            ) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Ok(max_trusted)
                })
            })
            .collect();
        let results: Vec<_> = workers
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect();
        stop.store(true, Ordering::Relaxed);
        monitor.join().expect("monitor: the trust file went back");
        let mut max_trusted = 1;
        for r in results {
            match r {
                Ok(s) => max_trusted = max_trusted.max(s),
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(
            size_in_file(&path),
            max_trusted,
            "round {round}: the trust file lost an advance"
        );
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["tc.json", "tc.json.lock"], "round {round}");
    }
}

/// Sequential checks still follow the rules with the lock in place, and a fresher state written
/// by another store is honoured (never overwritten with an older one).
#[test]
fn a_stale_store_decides_against_the_current_file() {
    let d = tempfile::tempdir().expect("tmp");
    let l = ledger(&d.path().join("db"), 4, 4);
    let pk = l.public_key();
    let path = d.path().join("t/trust.json");
    let mut a = TrustStore::open(&path).expect("open a");
    a.check_inclusion(&pk, &l.inclusion_bundle(1, Some(4)).expect("b"))
        .expect("first use");
    // `stale` read the file at size 4; `b` then advances it to 12.
    let mut stale = TrustStore::open(&path).expect("open stale");
    let mut b = TrustStore::open(&path).expect("open b");
    b.check_consistency(&pk, &l.consistency_bundle(4, Some(12)).expect("b"))
        .expect("4 -> 12");
    // 4 -> 8 is a valid proof, but from a checkpoint older than the trusted one: rollback.
    assert!(matches!(
        stale.check_consistency(&pk, &l.consistency_bundle(4, Some(8)).expect("b")),
        Err(LedgerError::Rollback {
            trusted_size: 12,
            got_size: 8
        })
    ));
    assert_eq!(stale.trusted().map(|c| c.size), Some(12));
    // 4 -> 16 does not start at the trusted 12: unproven; 12 -> 16 advances.
    assert!(matches!(
        stale.check_consistency(&pk, &l.consistency_bundle(4, Some(16)).expect("b")),
        Err(LedgerError::Unproven { .. })
    ));
    let o = stale
        .check_consistency(&pk, &l.consistency_bundle(12, Some(16)).expect("b"))
        .expect("12 -> 16");
    assert!(o.advanced && !o.first_use);
    assert_eq!(size_in_file(&path), 16);
}

fn vkey_error(s: &str) -> LedgerError {
    match parse_public_key(s) {
        Ok(_) => panic!("{s:?} accepted"),
        Err(e) => e,
    }
}

#[test]
fn vkey_name_and_key_id_are_checked() {
    let d = tempfile::tempdir().expect("tmp");
    let l = ledger(&d.path().join("db"), 4, 2);
    let pk = l.public_key();
    let info = KeyInfo::new(l.origin(), &pk);
    assert_eq!(info.vkey, vkey(ORIGIN, &pk));
    // The genuine vkey parses, round-trips through KeyInfo, and verifies quiver's checkpoints.
    assert_eq!(parse_public_key(&info.vkey).ok(), Some(pk));
    assert_eq!(KeyInfo::from_vkey(&info.vkey).ok(), Some(info.clone()));
    // (The base64 part may itself contain '+'.)
    let b64_key = info.vkey.splitn(3, '+').nth(2).expect("b64").to_owned();

    // A garbage name and key id, a wrong key id, a right-format id of another name.
    for bad in [
        format!("x+y+{b64_key}"),
        format!("other.name+00000000+{b64_key}"),
        format!("{ORIGIN}+00000000+{b64_key}"),
        format!("other.name+{}+{b64_key}", info.key_id),
    ] {
        let e = vkey_error(&bad);
        assert!(
            matches!(
                e,
                LedgerError::Malformed {
                    what: "vkey" | "vkey key id",
                    ..
                }
            ),
            "{bad}: {e}"
        );
        assert!(KeyInfo::from_vkey(&bad).is_err());
    }
    assert!(matches!(
        vkey_error(&format!("other.name+00000000+{b64_key}")),
        LedgerError::Malformed {
            what: "vkey key id",
            ..
        }
    ));
    // Malformed vkeys: typed errors, never panics.
    for bad in [
        format!("+{}+{b64_key}", info.key_id),
        format!("a b+{}+{b64_key}", info.key_id),
        format!("{ORIGIN}+{}+", info.key_id),
        format!("{ORIGIN}+{}0+{b64_key}", info.key_id),
        format!("{ORIGIN}+{}+{b64_key}A", info.key_id),
        format!("{ORIGIN}+{}+AAAA", info.key_id),
        format!("{ORIGIN}+{}+{}", info.key_id, info.public_key_base64),
        format!("{ORIGIN}+zzzzzzzz+{b64_key}"),
        format!("{ORIGIN}+{}", info.key_id),
    ] {
        let e = vkey_error(&bad);
        assert!(
            matches!(e, LedgerError::Malformed { what: "vkey", .. }),
            "{bad}: {e}"
        );
    }

    // A valid vkey of the same key under another name: the key parses, but a trust store
    // bound to that name refuses quiver's checkpoints (their origin and signature name differ).
    let other = vkey("other.name", &pk);
    assert_eq!(parse_public_key(&other).ok(), Some(pk));
    let name = KeyInfo::from_vkey(&other).expect("valid").origin;
    let path = d.path().join("trust.json");
    let mut ts = TrustStore::open(&path).expect("open");
    ts.require_key_name(&name);
    let inc = l.inclusion_bundle(1, Some(4)).expect("b");
    assert!(matches!(
        ts.check_inclusion(&pk, &inc),
        Err(LedgerError::BadSignature { .. })
    ));
    assert!(matches!(
        ts.check_consistency(&pk, &l.consistency_bundle(4, Some(8)).expect("b")),
        Err(LedgerError::BadSignature { .. })
    ));
    assert!(!path.exists(), "a refused check must not create trust");
    // Bound to the genuine name it verifies.
    let mut ts = TrustStore::open(&path).expect("open");
    ts.require_key_name(ORIGIN);
    ts.check_inclusion(&pk, &inc).expect("genuine name");
    ts.check_consistency(&pk, &l.consistency_bundle(4, Some(8)).expect("b"))
        .expect("genuine name");
    assert_eq!(size_in_file(&path), 8);
}

/// A base64 key may contain '+' and is not mistaken for a vkey.
#[test]
fn base64_keys_with_plus_still_parse() {
    for seed in 0u8..=255 {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let pk = sk.verifying_key();
        let info = KeyInfo::new("n", &pk);
        if info.public_key_base64.contains('+') {
            assert_eq!(parse_public_key(&info.public_key_base64).ok(), Some(pk));
            return;
        }
    }
    panic!("no test key with '+' in its base64");
}
