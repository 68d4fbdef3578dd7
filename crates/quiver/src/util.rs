//! Helpers shared by the commands: timestamps, JSON rendering of entries, process facts.

use anyhow::{bail, Context};
use quiver_core::{Entry, Id, Op, TimestampFormat};
use quiver_engine::{Database, DbConfig, EngineError};
use std::{fmt::Write as _, path::Path};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// Opens `dir` with `config`, keeping the ledger setting the database was created with: the
/// commands have no ledger switch, and a database made without one (`bench ingest --ledger
/// off --keep`, or `DbConfig::ledger(false)`) must still be readable and writable.
pub fn open_db(dir: &Path, config: DbConfig) -> anyhow::Result<Database> {
    let wants = config.ledger;
    match Database::open(dir, config.clone()) {
        Err(EngineError::LedgerSetting { .. }) => Database::open(dir, config.ledger(!wants)),
        r => r,
    }
    .with_context(|| format!("opening {}", dir.display()))
}

/// A count of at least 1.
pub fn at_least_one(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses an RFC 3339 timestamp or integer nanoseconds since the Unix epoch.
pub fn parse_ts(s: &str) -> anyhow::Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    rfc3339_to_ns(s)
}

/// RFC 3339 string to ns since the epoch.
pub fn rfc3339_to_ns(s: &str) -> anyhow::Result<i64> {
    // The `time` crate takes any byte between date and time; RFC 3339 allows "T" or "t"
    // (and, in its note, a space).
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        anyhow::bail!("invalid timestamp {s:?}: expected RFC 3339 or integer ns");
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .with_context(|| format!("invalid timestamp {s:?}: expected RFC 3339 or integer ns"))?;
    i64::try_from(t.unix_timestamp_nanos()).context("timestamp out of range")
}

/// ns since the epoch to an RFC 3339 UTC string with nanoseconds.
pub fn ns_to_rfc3339(ns: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ns.to_string())
}

/// Current time in ns since the epoch.
pub fn now_ns() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// Renders an entry as one JSON line with its `seq` and the fields as ingested; the payload
/// is copied through as stored JSON text.
pub fn entry_json(e: &Entry) -> anyhow::Result<String> {
    let Op::Put(r) = &e.op else {
        bail!("tombstones are not rendered")
    };
    let mut s = String::with_capacity(128);
    write!(s, "{{\"seq\":{}", e.seq)?;
    match r.id()? {
        Id::U64(v) => write!(s, ",\"id\":{v}")?,
        Id::Str(v) => write!(s, ",\"id\":{}", serde_json::to_string(v)?)?,
    }
    if let Some(ts) = r.timestamp_ns {
        match r.timestamp_format {
            TimestampFormat::Nanos => write!(s, ",\"timestamp\":{ts}")?,
            TimestampFormat::Rfc3339 => write!(
                s,
                ",\"timestamp\":{}",
                serde_json::to_string(&ns_to_rfc3339(ts))?
            )?,
        }
    }
    if let Some(t) = &r.event_type {
        write!(s, ",\"type\":{}", serde_json::to_string(t)?)?;
    }
    if let Some(t) = &r.source {
        write!(s, ",\"source\":{}", serde_json::to_string(t)?)?;
    }
    if let Some(p) = &r.payload {
        write!(s, ",\"payload\":{p}")?;
    }
    if let Some(v) = &r.vector {
        write!(s, ",\"vector\":{}", serde_json::to_string(v)?)?;
    }
    s.push('}');
    Ok(s)
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Total size of the files below `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
