//! `quiver`: the command-line interface. Progress goes to stderr, machine-readable JSON lines
//! to stdout.

mod bench_search;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "quiver", version, about = "quiver: a tamper-evident vector and event database")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Vector search: recall@k, QPS and latency per query setting, one JSON line each.
    Search(bench_search::BenchSearchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(BenchCommand::Search(a)) => bench_search::run(a),
    }
}
