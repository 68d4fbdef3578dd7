//! `quiver scan` and `quiver stats`: read-only (see [`ReadOnlyDatabase`]), a snapshot of the
//! data directory as of the command's start.

use crate::util;
use anyhow::Context;
use quiver_engine::{Database, ReadOnlyDatabase};
use std::io::Write;

/// Arguments of `quiver scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Data directory.
    #[arg(long, default_value = "./quiver-data")]
    pub data: std::path::PathBuf,
    /// Only events at or after this time (RFC 3339 or integer ns, which may be negative).
    #[arg(long, allow_hyphen_values = true)]
    pub from_ts: Option<String>,
    /// Only events before this time (RFC 3339 or integer ns, which may be negative); without
    /// it, or at the largest timestamp (9223372036854775807 ns), the range has no upper end.
    #[arg(long, allow_hyphen_values = true)]
    pub to_ts: Option<String>,
}

/// Arguments of `quiver stats`.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Data directory.
    #[arg(long, default_value = "./quiver-data")]
    pub data: std::path::PathBuf,
}

/// Opens `data` read-only ([`ReadOnlyDatabase`]): no lock, nothing written, so `scan` and
/// `stats` work while an ingest has the directory open, and on a directory they may not write.
fn open_existing(data: &std::path::Path) -> anyhow::Result<ReadOnlyDatabase> {
    // A directory without a manifest is `EngineError::NotADatabase`.
    Database::open_read_only(data).with_context(|| format!("opening {}", data.display()))
}

/// Runs `quiver scan`.
pub fn scan(a: ScanArgs) -> anyhow::Result<()> {
    let db = open_existing(&a.data)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // The first write error stops the scan; a closed pipe (`quiver scan | head`) is no error.
    let mut write_err: Option<std::io::Error> = None;
    let mut visit = |e: quiver_core::Entry| -> quiver_engine::Result<bool> {
        let line = entry_line(&e);
        match writeln!(out, "{line}") {
            Ok(()) => Ok(true),
            Err(err) => {
                write_err = Some(err);
                Ok(false)
            }
        }
    };
    if a.from_ts.is_some() || a.to_ts.is_some() {
        let from = a
            .from_ts
            .as_deref()
            .map(util::parse_ts)
            .transpose()?
            .unwrap_or(i64::MIN);
        let to = a
            .to_ts
            .as_deref()
            .map(util::parse_ts)
            .transpose()?
            .unwrap_or(i64::MAX);
        anyhow::ensure!(
            from <= to,
            "--from-ts ({from} ns) is after --to-ts ({to} ns): the range would be empty"
        );
        db.scan_time_range(from, to, &mut visit)?;
    } else {
        db.scan(&mut visit)?;
    }
    let flushed = out.flush();
    match write_err.map_or(flushed, Err) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn entry_line(e: &quiver_core::Entry) -> String {
    util::entry_json(e).unwrap_or_else(|err| {
        serde_json::json!({"seq": e.seq, "error": err.to_string()}).to_string()
    })
}

/// Runs `quiver stats`.
pub fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let db = open_existing(&a.data)?;
    let mut live = 0u64;
    db.scan(&mut |_| {
        live += 1;
        Ok(true)
    })?;
    let s = db.stats()?;
    let mut v = serde_json::to_value(&s)?;
    v["live_records"] = live.into();
    v["bytes_on_disk"] = util::dir_bytes(&a.data).into();
    println!("{v}");
    Ok(())
}
