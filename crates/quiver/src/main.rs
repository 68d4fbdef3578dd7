//! `quiver`: the command-line interface. Progress goes to stderr, machine-readable JSON lines
//! to stdout.

mod bench_gen;
mod bench_ingest;
mod bench_search;
mod cmd_ingest;
mod cmd_ledger;
mod cmd_scan;
mod cmd_verify;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "quiver",
    version,
    about = "quiver: a tamper-evident vector and event database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Ingest newline-delimited JSON records from stdin.
    Ingest(cmd_ingest::IngestArgs),
    /// Print stored records as JSON lines in sequence order.
    Scan(cmd_scan::ScanArgs),
    /// Print counts and sizes as JSON.
    Stats(cmd_scan::StatsArgs),
    /// Recompute every leaf from the stored records and check the ledger and its checkpoints.
    Verify(cmd_verify::VerifyArgs),
    /// The node's signing key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Inclusion and consistency proofs.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print the public key.
    Show(cmd_ledger::KeyShowArgs),
}

#[derive(Subcommand)]
enum ProofCommand {
    /// Prove that the record with a sequence number is in the tree of a signed checkpoint.
    Inclusion(cmd_ledger::ProofInclusionArgs),
    /// Prove that one signed tree is a prefix of another.
    Consistency(cmd_ledger::ProofConsistencyArgs),
    /// Check a proof offline, trusting only the public key and the last trusted checkpoint.
    Check(cmd_ledger::ProofCheckArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Ingest throughput and latency through the full write path.
    Ingest(bench_ingest::BenchIngestArgs),
    /// Vector search: recall@k, QPS and latency per query setting, one JSON line each.
    Search(bench_search::BenchSearchArgs),
}

/// Runs the command; an error is printed as one line, `error: ` and its causes, with exit
/// code 1 — never a Rust backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::from(1)
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// already holds (our error types name their source in their own text, so `{:#}` would
/// print "… No such file or directory (os error 2): No such file or directory (os error 2)").
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::Ingest(a) => cmd_ingest::run(a).map(|_| ok),
        Command::Scan(a) => cmd_scan::scan(a).map(|_| ok),
        Command::Stats(a) => cmd_scan::stats(a).map(|_| ok),
        Command::Verify(a) => cmd_verify::run(a),
        Command::Key(KeyCommand::Show(a)) => cmd_ledger::key_show(a).map(|_| ok),
        Command::Proof(ProofCommand::Inclusion(a)) => cmd_ledger::proof_inclusion(a).map(|_| ok),
        Command::Proof(ProofCommand::Consistency(a)) => {
            cmd_ledger::proof_consistency(a).map(|_| ok)
        }
        Command::Proof(ProofCommand::Check(a)) => cmd_ledger::proof_check(a).map(|_| ok),
        Command::Bench(BenchCommand::Ingest(a)) => bench_ingest::run(a).map(|_| ok),
        Command::Bench(BenchCommand::Search(a)) => bench_search::run(a).map(|_| ok),
    }
}
