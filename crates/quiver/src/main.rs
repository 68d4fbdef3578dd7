//! `quiver`: the command-line interface. Progress goes to stderr, machine-readable JSON lines
//! to stdout.

mod bench_ingest;
mod bench_search;
mod cmd_ingest;
mod cmd_scan;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "quiver", version, about = "quiver: a tamper-evident vector and event database")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest newline-delimited JSON records from stdin.
    Ingest(cmd_ingest::IngestArgs),
    /// Print stored records as JSON lines in sequence order.
    Scan(cmd_scan::ScanArgs),
    /// Print counts and sizes as JSON.
    Stats(cmd_scan::StatsArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Ingest throughput and latency through the full write path.
    Ingest(bench_ingest::BenchIngestArgs),
    /// Vector search: recall@k, QPS and latency per query setting, one JSON line each.
    Search(bench_search::BenchSearchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingest(a) => cmd_ingest::run(a),
        Command::Scan(a) => cmd_scan::scan(a),
        Command::Stats(a) => cmd_scan::stats(a),
        Command::Bench(BenchCommand::Ingest(a)) => bench_ingest::run(a),
        Command::Bench(BenchCommand::Search(a)) => bench_search::run(a),
    }
}
