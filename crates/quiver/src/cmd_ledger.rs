//! Ledger commands: `quiver key show`, `quiver proof inclusion`, `quiver proof consistency`,
//! `quiver proof check` (issue 3). JSON on stdout; errors of `proof check` are JSON too.
//!
//! Data-directory layout used here: `<data>/ledger/` and `<data>/keys/node.ed25519`. The
//! ledger is opened read-only, so these commands are safe next to a running server.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use quiver_ledger::{
    key_fingerprint, parse_public_key, KeyInfo, Ledger, LedgerError, ProofBundle, TrustStore,
};
use serde_json::json;

/// Arguments of `quiver key show`.
#[derive(clap::Args, Debug)]
pub struct KeyShowArgs {
    /// Data directory.
    #[arg(long, default_value = "./quiver-data")]
    pub data: PathBuf,
}

/// Arguments of `quiver proof inclusion`.
#[derive(clap::Args, Debug)]
pub struct ProofInclusionArgs {
    /// Data directory.
    #[arg(long, default_value = "./quiver-data")]
    pub data: PathBuf,
    /// Sequence number of the record.
    #[arg(long)]
    pub seq: u64,
    /// Size of a signed checkpoint to prove against. Default: the newest checkpoint.
    #[arg(long)]
    pub tree_size: Option<u64>,
}

/// Arguments of `quiver proof consistency`.
#[derive(clap::Args, Debug)]
pub struct ProofConsistencyArgs {
    /// Data directory.
    #[arg(long, default_value = "./quiver-data")]
    pub data: PathBuf,
    /// Old tree size (must be a signed checkpoint's size).
    #[arg(long)]
    pub from: u64,
    /// New tree size (a signed checkpoint's size). Default: the newest checkpoint.
    #[arg(long)]
    pub to: Option<u64>,
}

/// Arguments of `quiver proof check`.
#[derive(clap::Args, Debug)]
pub struct ProofCheckArgs {
    /// The node's public key: signed-note vkey (`name+keyid+base64`, as printed by `quiver key
    /// show`), 64 hex digits or base64. A vkey's name and key id are checked: only checkpoints
    /// of that origin, signed under that name and key id, are accepted.
    #[arg(long)]
    pub pubkey: String,
    /// Where the last trusted checkpoint is kept.
    /// Default: `$HOME/.quiver/trusted-<key fingerprint>.json`.
    #[arg(long)]
    pub trust_file: Option<PathBuf>,
    /// Proof bundle (JSON printed by `quiver proof inclusion|consistency`); `-` for stdin.
    pub proof: PathBuf,
}

fn open_ledger(data: &Path) -> anyhow::Result<Ledger> {
    Ledger::open_read_only(&data.join("ledger"), &data.join("keys"))
        .with_context(|| format!("opening the ledger of {}", data.display()))
}

fn print(v: &serde_json::Value) {
    println!("{v}");
}

/// `quiver key show`: prints the node's public key in every useful encoding.
pub fn key_show(args: KeyShowArgs) -> anyhow::Result<()> {
    let l = open_ledger(&args.data)?;
    let mut v = serde_json::to_value(KeyInfo::new(l.origin(), &l.public_key()))?;
    v["alg"] = json!(l.alg());
    print(&v);
    Ok(())
}

/// `quiver proof inclusion`: prints an inclusion bundle for `--seq` against a signed checkpoint.
pub fn proof_inclusion(args: ProofInclusionArgs) -> anyhow::Result<()> {
    let l = open_ledger(&args.data)?;
    let b = l.inclusion_bundle(args.seq, args.tree_size)?;
    println!("{}", serde_json::to_string(&ProofBundle::Inclusion(b))?);
    Ok(())
}

/// `quiver proof consistency`: prints a consistency bundle between two signed checkpoints.
pub fn proof_consistency(args: ProofConsistencyArgs) -> anyhow::Result<()> {
    let l = open_ledger(&args.data)?;
    let b = l.consistency_bundle(args.from, args.to)?;
    println!("{}", serde_json::to_string(&ProofBundle::Consistency(b))?);
    Ok(())
}

/// Stable machine-readable code for a ledger error.
fn error_code(e: &LedgerError) -> &'static str {
    match e {
        LedgerError::Rollback { .. } => "rollback",
        LedgerError::Fork { .. } => "fork",
        LedgerError::Unproven { .. } => "unproven_checkpoint",
        LedgerError::InvalidProof { .. } => "invalid_proof",
        LedgerError::BadSignature { .. } => "bad_signature",
        LedgerError::MalformedNote { .. } => "malformed_checkpoint",
        LedgerError::Malformed { .. } => "malformed_input",
        LedgerError::Io { .. } => "io",
        _ => "ledger_error",
    }
}

fn default_trust_file(pk: &quiver_ledger::VerifyingKey) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --trust-file")?;
    Ok(PathBuf::from(home)
        .join(".quiver")
        .join(format!("trusted-{}.json", key_fingerprint(pk))))
}

fn check(args: &ProofCheckArgs) -> Result<serde_json::Value, (String, String)> {
    let le = |e: LedgerError| (error_code(&e).to_string(), e.to_string());
    // A vkey is validated in full (name, key id, key); its name is then the only key name (and
    // checkpoint origin) accepted, as in Go's note.NewVerifier / note.Open.
    let pk = parse_public_key(&args.pubkey).map_err(le)?;
    let vkey_name = KeyInfo::from_vkey(&args.pubkey).ok().map(|k| k.origin);
    let text = if args.proof.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| ("io".to_string(), format!("reading stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(&args.proof)
            .map_err(|e| ("io".to_string(), format!("{}: {e}", args.proof.display())))?
    };
    let bundle: ProofBundle = serde_json::from_str(&text)
        .map_err(|e| ("malformed_input".to_string(), format!("proof bundle: {e}")))?;
    let trust_path = match &args.trust_file {
        Some(p) => p.clone(),
        None => default_trust_file(&pk).map_err(|e| ("io".to_string(), e.to_string()))?,
    };
    let mut ts = TrustStore::open(&trust_path).map_err(le)?;
    if let Some(name) = &vkey_name {
        ts.require_key_name(name);
    }
    let (kind, detail, outcome) = match &bundle {
        ProofBundle::Inclusion(b) => {
            let o = ts.check_inclusion(&pk, b).map_err(le)?;
            let d = json!({"seq": b.seq, "leaf_hash": b.leaf_hash, "tree_size": b.tree_size, "root": b.root});
            ("inclusion", d, o)
        }
        ProofBundle::Consistency(b) => {
            let o = ts.check_consistency(&pk, b).map_err(le)?;
            let d = json!({"from": b.from, "to": b.to});
            ("consistency", d, o)
        }
    };
    Ok(json!({
        "ok": true,
        "type": kind,
        "proof": detail,
        "trusted": {
            "origin": outcome.trusted.origin,
            "size": outcome.trusted.size,
            "root": outcome.trusted.root,
            "timestamp_ms": outcome.trusted.timestamp_ms,
        },
        "advanced": outcome.advanced,
        "first_use": outcome.first_use,
        "trust_file": ts.path(),
    }))
}

/// `quiver proof check`: verifies a bundle offline trusting only `--pubkey`, applies the
/// rollback/fork rules against the trust file, and prints `{"ok":true,...}`. On failure it
/// prints `{"ok":false,"error":{"code":..,"message":..}}` on stdout and returns an error (so
/// the process exits non-zero).
pub fn proof_check(args: ProofCheckArgs) -> anyhow::Result<()> {
    match check(&args) {
        Ok(v) => {
            print(&v);
            Ok(())
        }
        Err((code, message)) => {
            print(&json!({"ok": false, "error": {"code": code, "message": message}}));
            anyhow::bail!("proof check failed ({code}): {message}")
        }
    }
}
