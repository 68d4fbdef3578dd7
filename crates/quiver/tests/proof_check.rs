//! `quiver proof check`: concurrent runs sharing one trust file, and the `--pubkey` vkey's name
//! and key id.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_quiver");

fn line(i: u64) -> String {
    format!(
        "{{\"id\":{i},\"timestamp\":{},\"type\":\"t\",\"source\":\"s\",\"payload\":{{\"i\":{i}}}}}\n",
        1_700_000_000_000_000_000i64 + i as i64,
    )
}

/// One `quiver ingest` session of records `from..to`; its close signs a checkpoint of size `to`.
fn ingest(dir: &Path, from: u64, to: u64) {
    let mut child = Command::new(BIN)
        .args(["ingest", "--batch", "5", "--data"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ingest");
    let input: String = (from..to).map(line).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("ingest");
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_ok(args: &[&str], dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database with signed checkpoints at 20, 40, ..., 20 * `n`.
fn database(dir: &Path, n: u64) {
    for s in 0..n {
        ingest(dir, s * 20, (s + 1) * 20);
    }
}

fn write_bundle(dir: &Path, name: &str, args: &[&str], data: &Path) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, run_ok(args, data)).expect("write bundle");
    p
}

fn check_cmd(pubkey: &str, trust: &Path, bundle: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["proof", "check", "--pubkey", pubkey, "--trust-file"])
        .arg(trust)
        .arg(bundle);
    c
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Size of the checkpoint held by a trust file.
fn trusted_size(trust: &Path) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trust).expect("read trust file"))
            .expect("trust file is JSON");
    let note = v["checkpoint"].as_str().expect("checkpoint");
    note.lines()
        .nth(1)
        .expect("size line")
        .parse()
        .expect("size")
}

/// Several `quiver proof check` processes advance one trust file at once, with consistency
/// bundles from the trusted 20 to different sizes and chains from later sizes. Every run either
/// succeeds or fails with a rollback / unproven / fork verdict (never an I/O error), and the
/// trust file ends at the largest size any run reported trusting.
#[test]
fn concurrent_proof_checks_never_roll_back_the_trust_file() {
    let d = tempfile::tempdir().expect("tmp");
    let data = d.path().join("db");
    database(&data, 6);
    let key: serde_json::Value =
        serde_json::from_str(run_ok(&["key", "show"], &data).trim()).expect("key show");
    let pubkey = key["vkey"].as_str().expect("vkey").to_owned();
    let inc = write_bundle(
        d.path(),
        "inc.json",
        &["proof", "inclusion", "--seq", "3", "--tree-size", "20"],
        &data,
    );
    let mut bundles = Vec::new();
    for (from, to) in [
        (20, 120),
        (20, 60),
        (20, 100),
        (20, 40),
        (20, 80),
        (40, 80),
        (60, 120),
        (80, 100),
    ] {
        let (f, t) = (from.to_string(), to.to_string());
        bundles.push(write_bundle(
            d.path(),
            &format!("c-{from}-{to}.json"),
            &["proof", "consistency", "--from", &f, "--to", &t],
            &data,
        ));
    }
    for round in 0..12 {
        let dir = d.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let trust = dir.join("tc.json");
        let out = check_cmd(&pubkey, &trust, &inc)
            .output()
            .expect("first use");
        assert!(out.status.success(), "{}", json_of(&out));
        assert_eq!(trusted_size(&trust), 20);
        let children: Vec<_> = (0..bundles.len())
            .map(|i| {
                let b = &bundles[(i + round) % bundles.len()];
                check_cmd(&pubkey, &trust, b)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn check")
            })
            .collect();
        let mut max_trusted = 20;
        for c in children {
            let out = c.wait_with_output().expect("check");
            let v = json_of(&out);
            if out.status.success() {
                max_trusted = max_trusted.max(v["trusted"]["size"].as_u64().expect("size"));
            } else {
                let code = v["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    ["rollback", "unproven_checkpoint", "fork"].contains(&code),
                    "round {round}: {v}"
                );
            }
        }
        assert_eq!(
            trusted_size(&trust),
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

/// The vkey's name and key id must match the key and the checkpoints: a wrong name, a wrong key
/// id or a malformed vkey are refused with a clear error and create no trust; the genuine vkey
/// (and the bare key) verify.
#[test]
fn proof_check_checks_the_vkey_name_and_key_id() {
    let d = tempfile::tempdir().expect("tmp");
    let data = d.path().join("db");
    database(&data, 2);
    let key: serde_json::Value =
        serde_json::from_str(run_ok(&["key", "show"], &data).trim()).expect("key show");
    let genuine = key["vkey"].as_str().expect("vkey").to_owned();
    let origin = key["origin"].as_str().expect("origin").to_owned();
    let key_id = key["key_id"].as_str().expect("key_id").to_owned();
    // The vkey's name is the checkpoint origin.
    assert!(genuine.starts_with(&format!("{origin}+{key_id}+")), "{key}");
    let b64 = genuine.splitn(3, '+').nth(2).expect("base64").to_owned();
    let pk = quiver_ledger::parse_public_key(key["public_key"].as_str().expect("hex"))
        .expect("public key");
    let inc = write_bundle(
        d.path(),
        "inc.json",
        &["proof", "inclusion", "--seq", "3", "--tree-size", "20"],
        &data,
    );
    let cons = write_bundle(
        d.path(),
        "cons.json",
        &["proof", "consistency", "--from", "20", "--to", "40"],
        &data,
    );

    let mut n = 0;
    let mut refused = |pubkey: &str, code: &str, needle: &str| {
        for b in [&inc, &cons] {
            n += 1;
            let trust = d.path().join(format!("t-{n}.json"));
            let out = check_cmd(pubkey, &trust, b).output().expect("check");
            let v = json_of(&out);
            assert!(!out.status.success(), "{pubkey} accepted: {v}");
            assert_eq!(v["error"]["code"], code, "{pubkey}: {v}");
            let msg = v["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(needle), "{pubkey}: {msg}");
            assert!(!trust.exists(), "{pubkey}: a refused check created trust");
        }
    };
    // Malformed: name and key id of the wrong shape.
    refused(&format!("x+y+{b64}"), "malformed_input", "not 8 hex digits");
    refused(&format!("{origin}+{key_id}"), "malformed_input", "vkey");
    refused(
        &format!("{origin}+{key_id}+AAAA"),
        "malformed_input",
        "vkey",
    );
    // Another name, or a key id that is not the name's and key's.
    refused(
        &format!("other.name+00000000+{b64}"),
        "malformed_input",
        "does not match",
    );
    refused(
        &format!("other.name+{key_id}+{b64}"),
        "malformed_input",
        "does not match",
    );
    refused(
        &format!("{origin}+00000000+{b64}"),
        "malformed_input",
        "does not match",
    );
    // A self-consistent vkey of the same key under another name: quiver's checkpoints are not
    // signed under that name.
    refused(
        &quiver_ledger::vkey("other.name", &pk),
        "bad_signature",
        "other.name",
    );

    // The genuine vkey, and the bare key in hex, verify.
    for pubkey in [genuine.as_str(), key["public_key"].as_str().expect("hex")] {
        let trust = d.path().join(format!("ok-{}.json", pubkey.len()));
        for b in [&inc, &cons] {
            let out = check_cmd(pubkey, &trust, b).output().expect("check");
            assert!(out.status.success(), "{pubkey}: {}", json_of(&out));
        }
        assert_eq!(trusted_size(&trust), 40);
    }
}
