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

/// The database's public key as a signed-note vkey (`quiver key show`).
fn vkey_of(data: &Path) -> String {
    let key: serde_json::Value =
        serde_json::from_str(run_ok(&["key", "show"], data).trim()).expect("key show");
    key["vkey"].as_str().expect("vkey").to_owned()
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
    let pubkey = vkey_of(&data);
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

/// Runs `quiver` with `args` (plus `--data data`), expects exit code 1 without a panic.
fn run_fails(args: &[&str], data: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed a bundle");
    err
}

/// The proof commands at the edges: first and last leaves against trees whose sizes are powers
/// of two and one more, consistency between every pair of signed sizes; a tree size that is
/// not signed, seq 0, a seq past the tree, `--from` above `--to`, `--from 0` and `u64::MAX` are
/// refused (exit 1, no bundle).
#[test]
fn proof_commands_at_the_edges() {
    let d = tempfile::tempdir().expect("tmp");
    let data = d.path().join("db");
    for (from, to) in [(0, 8), (8, 9), (9, 16), (16, 17)] {
        ingest(&data, from, to);
    }
    let pubkey = vkey_of(&data);
    let sizes = [8u64, 9, 16, 17];
    let mut n = 0;
    let mut check_ok = |bundle: &Path, trust: Option<&Path>| {
        n += 1;
        let fresh = d.path().join(format!("fresh-{n}.json"));
        let out = check_cmd(&pubkey, trust.unwrap_or(&fresh), bundle)
            .output()
            .expect("check");
        assert!(out.status.success(), "{}", json_of(&out));
        json_of(&out)
    };
    for &t in &sizes {
        let ts = t.to_string();
        for seq in [1, 2, t / 2, t / 2 + 1, t - 1, t] {
            let s = seq.to_string();
            let args = ["proof", "inclusion", "--seq", &s, "--tree-size", &ts];
            let b = write_bundle(d.path(), &format!("inc-{seq}-{t}.json"), &args, &data);
            let v = check_ok(&b, None);
            assert_eq!(v["trusted"]["size"], t, "{v}");
        }
        for &to in sizes.iter().filter(|&&to| to >= t) {
            let tos = to.to_string();
            let args = ["proof", "consistency", "--from", &ts, "--to", &tos];
            let b = write_bundle(d.path(), &format!("con-{t}-{to}.json"), &args, &data);
            let v = check_ok(&b, None);
            assert_eq!(v["trusted"]["size"], to, "{v}");
        }
    }
    // One trust file walked up through every signed size, then every older inclusion is a
    // rollback and the newest still checks.
    let trust = d.path().join("walk.json");
    check_ok(&d.path().join("inc-1-8.json"), Some(&trust));
    for (a, b) in [(8, 9), (9, 16), (16, 17)] {
        let v = check_ok(&d.path().join(format!("con-{a}-{b}.json")), Some(&trust));
        assert_eq!(v["advanced"], true, "{v}");
    }
    for old in ["inc-8-8.json", "inc-9-9.json", "inc-16-16.json"] {
        let out = check_cmd(&pubkey, &trust, &d.path().join(old))
            .output()
            .expect("check");
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(json_of(&out)["error"]["code"], "rollback");
    }
    check_ok(&d.path().join("inc-17-17.json"), Some(&trust));
    assert_eq!(trusted_size(&trust), 17);

    let max = u64::MAX.to_string();
    for args in [
        &["proof", "inclusion", "--seq", "3", "--tree-size", "10"][..],
        &["proof", "inclusion", "--seq", "3", "--tree-size", "0"],
        &["proof", "inclusion", "--seq", "0"],
        &["proof", "inclusion", "--seq", "0", "--tree-size", "8"],
        &["proof", "inclusion", "--seq", "18"],
        &["proof", "inclusion", "--seq", "9", "--tree-size", "8"],
        &["proof", "inclusion", "--seq", &max, "--tree-size", &max],
        &["proof", "inclusion", "--seq", &max],
        &["proof", "consistency", "--from", "9", "--to", "8"],
        &["proof", "consistency", "--from", "0", "--to", "8"],
        &["proof", "consistency", "--from", "10", "--to", "17"],
        &["proof", "consistency", "--from", "8", "--to", "10"],
        &["proof", "consistency", "--from", &max],
        &["proof", "consistency", "--from", "8", "--to", &max],
    ] {
        run_fails(args, &data);
    }
}

/// `quiver proof check` on damaged bundles: every one is refused with exit code 1, a JSON
/// error with a stable code, and no trust created; never a panic, never "ok".
#[test]
fn proof_check_refuses_damaged_bundles() {
    let d = tempfile::tempdir().expect("tmp");
    let data = d.path().join("db");
    database(&data, 2);
    let other = d.path().join("other");
    database(&other, 1);
    let pubkey = vkey_of(&data);
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
    };
    let inc_args = ["proof", "inclusion", "--seq", "9", "--tree-size", "20"];
    let inc = read(&write_bundle(d.path(), "inc.json", &inc_args, &data));
    let other_inc = read(&write_bundle(d.path(), "other.json", &inc_args, &other));
    let con = read(&write_bundle(
        d.path(),
        "con.json",
        &["proof", "consistency", "--from", "20", "--to", "40"],
        &data,
    ));
    let note = inc["checkpoint"].as_str().expect("note").to_owned();
    let (body, sigs) = note.split_once("\n\n").expect("signed note");
    let lines: Vec<String> = body.lines().map(str::to_string).collect();
    let renote = |l: &[String]| serde_json::json!(format!("{}\n\n{sigs}", l.join("\n")));

    let with = |base: &serde_json::Value, edits: &[(&str, serde_json::Value)]| {
        let mut b = base.clone();
        for (field, v) in edits {
            b[*field] = v.clone();
        }
        b.to_string()
    };
    let without = |base: &serde_json::Value, field: &str| {
        let mut b = base.clone();
        b.as_object_mut().expect("object").remove(field);
        b.to_string()
    };
    let hex = |c: &str, n: usize| serde_json::json!(c.repeat(n));
    let max = serde_json::json!(u64::MAX);
    let mut origin_changed = lines.clone();
    origin_changed[0] = format!("x{}", lines[0]);
    let mut extra_line = lines.clone();
    extra_line.push("extra 1".into());
    let mut reordered = lines.clone();
    reordered.swap(3, 4);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "malformed_input"),
        ("{".into(), "malformed_input"),
        ("null".into(), "malformed_input"),
        ("[]".into(), "malformed_input"),
        (format!("{inc}garbage"), "malformed_input"),
        (with(&inc, &[("type", "nope".into())]), "malformed_input"),
        (with(&inc, &[("seq", "9".into())]), "malformed_input"),
        (with(&inc, &[("seq", (-1).into())]), "malformed_input"),
        (with(&inc, &[("seq", 1.5.into())]), "malformed_input"),
        (
            with(&inc, &[("seq", 7.into())]).replace("\"seq\":7", "\"seq\":18446744073709551616"),
            "malformed_input",
        ),
        (
            with(&inc, &[("leaf_hash", hex("ab", 31))]),
            "malformed_input",
        ),
        (
            with(&inc, &[("leaf_hash", hex("ab", 33))]),
            "malformed_input",
        ),
        (
            with(&inc, &[("leaf_hash", hex("zz", 32))]),
            "malformed_input",
        ),
        (with(&inc, &[("proof", "ab".into())]), "malformed_input"),
        (with(&inc, &[("alg", "md5".into())]), "malformed_input"),
        (without(&inc, "checkpoint"), "malformed_input"),
        (without(&inc, "root"), "malformed_input"),
        (without(&con, "proof"), "malformed_input"),
        (with(&inc, &[("root", hex("00", 32))]), "invalid_proof"),
        (with(&inc, &[("leaf_hash", hex("00", 32))]), "invalid_proof"),
        (
            with(&inc, &[("proof", serde_json::json!([]))]),
            "invalid_proof",
        ),
        (with(&inc, &[("alg", "sha256".into())]), "invalid_proof"),
        (with(&inc, &[("tree_size", 0.into())]), "invalid_proof"),
        (with(&inc, &[("tree_size", max.clone())]), "invalid_proof"),
        (with(&inc, &[("seq", 0.into())]), "invalid_proof"),
        (with(&inc, &[("seq", max.clone())]), "invalid_proof"),
        (with(&inc, &[("leaf_index", max.clone())]), "invalid_proof"),
        (
            with(&inc, &[("seq", 21.into()), ("leaf_index", 20.into())]),
            "invalid_proof",
        ),
        (
            with(&inc, &[("checkpoint", "".into())]),
            "malformed_checkpoint",
        ),
        // Signed by another key (another database's checkpoint of the same size).
        (
            with(&inc, &[("checkpoint", other_inc["checkpoint"].clone())]),
            "bad_signature",
        ),
        // Origin line changed: the signature line (the old name) is not of the new origin.
        (
            with(&inc, &[("checkpoint", renote(&origin_changed))]),
            "bad_signature",
        ),
        // An extra or reordered note line breaks the signature.
        (
            with(&inc, &[("checkpoint", renote(&extra_line))]),
            "bad_signature",
        ),
        (
            with(&inc, &[("checkpoint", renote(&reordered))]),
            "bad_signature",
        ),
        // The signature line under another key name.
        (
            with(
                &inc,
                &[(
                    "checkpoint",
                    note.replacen(
                        &format!("\u{2014} {} ", lines[0]),
                        "\u{2014} other.name ",
                        1,
                    )
                    .into(),
                )],
            ),
            "bad_signature",
        ),
        (with(&con, &[("from", 0.into())]), "invalid_proof"),
        (with(&con, &[("to", 20.into())]), "invalid_proof"),
        (with(&con, &[("from", max.clone())]), "invalid_proof"),
        (
            with(&con, &[("proof", serde_json::json!([]))]),
            "invalid_proof",
        ),
        (
            with(&con, &[("new_checkpoint", con["old_checkpoint"].clone())]),
            "invalid_proof",
        ),
        // Checkpoints swapped: the new one is older than the old one.
        (
            with(
                &con,
                &[
                    ("from", 40.into()),
                    ("to", 20.into()),
                    ("old_checkpoint", con["new_checkpoint"].clone()),
                    ("new_checkpoint", con["old_checkpoint"].clone()),
                ],
            ),
            "invalid_proof",
        ),
    ];
    for (i, (text, code)) in cases.iter().enumerate() {
        let b = d.path().join(format!("bad-{i}.json"));
        std::fs::write(&b, text).expect("write");
        let trust = d.path().join(format!("t-{i}.json"));
        let out = check_cmd(&pubkey, &trust, &b).output().expect("check");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i} {text}: {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
        let v = json_of(&out);
        assert_eq!(v["ok"], false, "case {i}: {v}");
        assert_eq!(v["error"]["code"], *code, "case {i} {text}: {v}");
        assert!(!trust.exists(), "case {i}: a refused check created trust");
    }
}

/// A trust file that is empty, truncated, not JSON or edited is refused naming the trust file
/// (exit 1, `malformed_input`) and left as it is: never reset to "nothing trusted yet".
#[test]
fn proof_check_refuses_a_damaged_trust_file() {
    let d = tempfile::tempdir().expect("tmp");
    let data = d.path().join("db");
    database(&data, 1);
    let pubkey = vkey_of(&data);
    let inc = write_bundle(
        d.path(),
        "inc.json",
        &["proof", "inclusion", "--seq", "1"],
        &data,
    );
    let good_path = d.path().join("good.json");
    assert!(check_cmd(&pubkey, &good_path, &inc)
        .output()
        .expect("check")
        .status
        .success());
    let good = std::fs::read_to_string(&good_path).expect("read");
    let v: serde_json::Value = serde_json::from_str(&good).expect("json");
    let (pk, note) = (
        v["public_key"].as_str().expect("key"),
        v["checkpoint"].as_str().expect("note"),
    );
    let tf = |k: &str, n: &str| serde_json::json!({"public_key": k, "checkpoint": n}).to_string();
    for (i, text) in [
        String::new(),
        "   \n".into(),
        good[..good.len() / 2].to_string(),
        "{}".into(),
        "\0\0\0".into(),
        tf(pk, &note.replacen("\n20\n", "\n21\n", 1)),
        tf(pk, ""),
        tf("", note),
    ]
    .iter()
    .enumerate()
    {
        let trust = d.path().join(format!("t-{i}.json"));
        std::fs::write(&trust, text).expect("write");
        let out = check_cmd(&pubkey, &trust, &inc).output().expect("check");
        assert_eq!(out.status.code(), Some(1), "case {i}");
        let v = json_of(&out);
        assert_eq!(v["error"]["code"], "malformed_input", "case {i}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("trust file") && msg.contains(&format!("t-{i}.json")),
            "case {i}: {msg}"
        );
        assert_eq!(
            &std::fs::read_to_string(&trust).expect("read"),
            text,
            "case {i}"
        );
    }
}
