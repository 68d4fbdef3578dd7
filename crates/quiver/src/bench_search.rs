//! `quiver bench search` (owned by the vector engine work).

/// Arguments of `quiver bench search`.
#[derive(clap::Args, Debug)]
pub struct BenchSearchArgs {
    /// Base vectors (.fvecs).
    #[arg(long)]
    pub base: std::path::PathBuf,
}

/// Runs the benchmark.
pub fn run(_a: BenchSearchArgs) -> anyhow::Result<()> {
    anyhow::bail!("quiver bench search is not built yet")
}
