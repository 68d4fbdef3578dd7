//! `quiver verify`: recompute every leaf from the records held and check the whole ledger.

use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `quiver verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Data directory.
    #[arg(long, default_value = "./quiver-data")]
    pub data: PathBuf,
}

/// Runs the command: exit 0 with `{"ok":true,...}`, or exit 1 with
/// `{"ok":false,"first_bad_seq":S,"file":"...","reason":"..."}`.
pub fn run(a: VerifyArgs) -> anyhow::Result<std::process::ExitCode> {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} verifying: {pos} records ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let start = std::time::Instant::now();
    let result = quiver_engine::verify::verify_dir(&a.data, &mut |n| pb.set_position(n));
    pb.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let v = serde_json::json!({"ok": false, "first_bad_seq": null,
                "file": a.data.display().to_string(), "reason": e.to_string()});
            println!("{v}");
            return Ok(std::process::ExitCode::from(1));
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let v = match &report.failure {
        None => serde_json::json!({
            "ok": true, "records": report.records, "checkpoints": report.checkpoints,
            "root": report.root, "tree_size": report.tree_size, "bytes": report.bytes,
            "unhashed_tail": report.unhashed_tail, "leaves_past_log": report.leaves_past_log, "seconds": (secs * 1000.0).round() / 1000.0,
        }),
        Some(f) => serde_json::json!({
            "ok": false, "first_bad_seq": f.first_bad_seq, "file": f.file.display().to_string(),
            "reason": f.reason, "records": report.records,
        }),
    };
    println!(
        "{}",
        serde_json::to_string(&v).context("rendering the report")?
    );
    Ok(if report.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
