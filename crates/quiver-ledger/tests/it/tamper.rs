//! Tampering and corruption: every case is a typed error or a reported failure, never a panic.

use std::fs;
use std::path::Path;

use base64::Engine;
use quiver_ledger::{HashAlg, Ledger, LedgerError};

use crate::common;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// Rewrites every record body of a framed log, recomputing the record CRCs (a determined
/// attacker, not bit rot).
fn rewrite_framed(path: &Path, f: &dyn Fn(usize, Vec<u8>) -> Vec<u8>) {
    let data = fs::read(path).expect("read");
    let mut out = data[..16].to_vec();
    let mut off = 16;
    let mut i = 0;
    while off + 8 <= data.len() {
        let n = u32::from_le_bytes(data[off..off + 4].try_into().expect("len")) as usize;
        let body = f(i, data[off + 8..off + 8 + n].to_vec());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        off += 8 + n;
        i += 1;
    }
    fs::write(path, out).expect("write");
}

fn two_checkpoints(root: &Path) {
    let l = common::open(root, HashAlg::Sha256);
    common::append_range(&l, 1, 20);
    l.checkpoint().expect("cp20");
    common::append_range(&l, 21, 50);
    l.checkpoint().expect("cp50");
}

fn replace_line(note: &str, line: usize, new: &str) -> String {
    let mut lines: Vec<String> = note.split('\n').map(str::to_string).collect();
    lines[line] = new.to_string();
    lines.join("\n")
}

fn assert_write_open_fails(root: &Path) -> LedgerError {
    let (ld, kd) = common::dirs(root);
    match Ledger::open(&ld, &kd, common::cfg(HashAlg::Sha256)) {
        Ok(_) => panic!("tampered ledger opened for writing"),
        Err(e) => e,
    }
}

#[test]
fn checkpoint_root_replaced_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_checkpoints(dir.path());
    let cp_log = dir.path().join("ledger/checkpoints.log");
    rewrite_framed(&cp_log, &|i, b| {
        if i != 1 {
            return b;
        }
        let note = String::from_utf8(b).expect("utf8");
        replace_line(&note, 2, &B64.encode([0xAB; 32])).into_bytes()
    });
    assert!(matches!(
        assert_write_open_fails(dir.path()),
        LedgerError::BadSignature { .. }
    ));
    let ro = common::open_ro(dir.path());
    let report = ro.verify_tree(&mut |_| {}).expect("verify");
    let f = report.failure.expect("failure reported");
    assert_eq!(
        f.first_bad_index, 20,
        "leaves after the last good checkpoint"
    );
    assert!(f.file.ends_with("checkpoints.log"));
    assert!(f.reason.contains("signature"), "{}", f.reason);
}

#[test]
fn checkpoint_signature_replaced_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_checkpoints(dir.path());
    let cp_log = dir.path().join("ledger/checkpoints.log");
    rewrite_framed(&cp_log, &|i, b| {
        if i != 0 {
            return b;
        }
        let note = String::from_utf8(b).expect("utf8");
        let sig_line = note.split('\n').nth(6).expect("sig line").to_string();
        let (prefix, blob) = sig_line.rsplit_once(' ').expect("blob");
        let mut raw = B64.decode(blob).expect("b64");
        for x in &mut raw[4..] {
            *x ^= 0x5A; // keep the key id, replace the signature
        }
        replace_line(&note, 6, &format!("{prefix} {}", B64.encode(raw))).into_bytes()
    });
    assert!(matches!(
        assert_write_open_fails(dir.path()),
        LedgerError::BadSignature { .. }
    ));
    let report = common::open_ro(dir.path())
        .verify_tree(&mut |_| {})
        .expect("verify");
    let f = report.failure.expect("failure");
    assert_eq!(f.first_bad_index, 0);
}

#[test]
fn key_file_swapped_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_checkpoints(dir.path());
    let other = tempfile::tempdir().expect("other");
    drop(common::open(other.path(), HashAlg::Sha256));
    fs::copy(
        other.path().join("keys/node.ed25519"),
        dir.path().join("keys/node.ed25519"),
    )
    .expect("swap key");
    assert!(matches!(
        assert_write_open_fails(dir.path()),
        LedgerError::BadSignature { .. }
    ));
    let report = common::open_ro(dir.path())
        .verify_tree(&mut |_| {})
        .expect("verify");
    let f = report.failure.expect("failure");
    assert_eq!(f.first_bad_index, 0);
    assert!(f.reason.contains("key id"), "{}", f.reason);
}

#[test]
fn stored_leaf_hash_altered_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_checkpoints(dir.path());
    // Leaf index 37 lives at 32 + 37 * 32.
    common::flip_byte(&dir.path().join("ledger/level-00.hashes"), 32 + 37 * 32 + 5);
    let ro = common::open_ro(dir.path());
    let report = ro.verify_tree(&mut |_| {}).expect("verify");
    let f = report.failure.expect("failure");
    assert_eq!(f.first_bad_index, 36, "the pair holding leaf 37");
    assert!(f.reason.contains("level 1"), "{}", f.reason);
    // And a leaf hash altered consistently up the tree is caught by the signed roots.
    drop(ro);
    let dir2 = tempfile::tempdir().expect("tempdir");
    two_checkpoints(dir2.path());
    let ld = dir2.path().join("ledger");
    for level in 0..6u32 {
        let p = ld.join(format!("level-{level:02}.hashes"));
        let idx = 37u64 >> level;
        if (fs::metadata(&p).expect("meta").len() - 32) / 32 > idx {
            common::flip_byte(&p, 32 + idx * 32);
        }
    }
    let report = common::open_ro(dir2.path())
        .verify_tree(&mut |_| {})
        .expect("verify");
    assert!(report.failure.is_some());
}

#[test]
fn corrupted_and_truncated_files_give_typed_errors() {
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "leaf magic",
            Box::new(|p: &Path| common::flip_byte(&p.join("ledger/level-00.hashes"), 0)),
        ),
        (
            "leaf header crc",
            Box::new(|p: &Path| common::flip_byte(&p.join("ledger/level-00.hashes"), 10)),
        ),
        (
            "upper header",
            Box::new(|p: &Path| common::flip_byte(&p.join("ledger/level-02.hashes"), 11)),
        ),
        (
            "meta body",
            Box::new(|p: &Path| common::flip_byte(&p.join("ledger/ledger.meta"), 25)),
        ),
        (
            "checkpoint body",
            Box::new(|p: &Path| common::flip_byte(&p.join("ledger/checkpoints.log"), 40)),
        ),
        (
            "checkpoint log cut",
            Box::new(|p: &Path| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(p.join("ledger/checkpoints.log"))
                    .expect("o")
                    .set_len(10)
                    .expect("cut")
            }),
        ),
        (
            "receipt body",
            Box::new(|p: &Path| common::flip_byte(&p.join("ledger/receipts.log"), 30)),
        ),
        (
            "key cut",
            Box::new(|p: &Path| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(p.join("keys/node.ed25519"))
                    .expect("o")
                    .set_len(40)
                    .expect("cut")
            }),
        ),
        (
            "key flipped",
            Box::new(|p: &Path| common::flip_byte(&p.join("keys/node.ed25519"), 20)),
        ),
        (
            "leaves removed below checkpoint",
            Box::new(|p: &Path| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(p.join("ledger/level-00.hashes"))
                    .expect("o")
                    .set_len(32 + 10 * 32)
                    .expect("cut")
            }),
        ),
    ];
    for (name, damage) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let l = common::open(dir.path(), HashAlg::Sha256);
            common::append_range(&l, 1, 30);
            l.receipt(1, 30).expect("receipt");
            l.checkpoint().expect("cp");
            l.sync().expect("sync");
        }
        damage(dir.path());
        let e = assert_write_open_fails(dir.path());
        assert!(e.is_corruption(), "{name}: {e}");
        // Read-only audits either refuse with a typed error or report the damage.
        let (ld, kd) = common::dirs(dir.path());
        if let Ok(ro) = Ledger::open_read_only(&ld, &kd) {
            let report = ro.verify_tree(&mut |_| {}).expect("verify");
            assert!(report.failure.is_some(), "{name}: audit found nothing");
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..24 {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let l = common::open(dir.path(), HashAlg::Blake3);
            common::append_range(&l, 1, 70);
            l.checkpoint().expect("cp");
            l.receipt(3, 9).expect("r");
            l.sync().expect("sync");
        }
        let files = [
            "level-00.hashes",
            "level-01.hashes",
            "level-03.hashes",
            "checkpoints.log",
            "receipts.log",
            "ledger.meta",
        ];
        let p = dir.path().join("ledger").join(files[round % files.len()]);
        let mut data = fs::read(&p).expect("read");
        if rng.gen_bool(0.3) {
            let cut = rng.gen_range(0..data.len());
            data.truncate(cut);
        } else {
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..data.len());
                data[i] = rng.gen();
            }
        }
        fs::write(&p, &data).expect("write");
        let (ld, kd) = common::dirs(dir.path());
        let cfg = common::cfg(HashAlg::Blake3);
        if let Ok(l) = Ledger::open(&ld, &kd, cfg) {
            let _ = l.verify_tree(&mut |_| {});
            let _ = l.inclusion_proof(3, l.size());
        }
        if let Ok(l) = Ledger::open_read_only(&ld, &kd) {
            let _ = l.verify_tree(&mut |_| {});
            let _ = l.checkpoints();
            let _ = l.receipt_for_seq(5);
        }
    }
}
