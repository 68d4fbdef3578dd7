//! `quiver ingest`: newline-delimited JSON records on stdin, written in acknowledged batches.

use crate::util;
use quiver_core::{DbConfig, Id, Op, Preset, Record, TimestampFormat};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::{BufRead, Write};

/// Arguments of `quiver ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Data directory (created if missing).
    #[arg(long, default_value = "./quiver-data")]
    pub data: std::path::PathBuf,
    /// Durability preset: throughput, balanced or durable.
    #[arg(long, default_value = "balanced")]
    pub preset: Preset,
    /// Records per write batch (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = util::at_least_one)]
    pub batch: usize,
    /// A batch is also written once its input lines add up to this many bytes, so that large
    /// records do not pile up in memory (1000 records of 1 MiB would hold over 1 GiB).
    #[arg(long, default_value_t = 64 << 20, value_parser = util::at_least_one)]
    pub batch_bytes: usize,
    /// Longest accepted input line in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_line_bytes: usize,
}

/// An input `timestamp`: integer nanoseconds since the Unix epoch (an `i64`) or an RFC 3339
/// string (checked later, by [`util::rfc3339_to_ns`]).
enum TsIn {
    Ns(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for TsIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TsIn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a timestamp: integer nanoseconds since the Unix epoch (within ±2^63) \
                     or an RFC 3339 string",
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TsIn, E> {
                Ok(TsIn::Ns(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TsIn, E> {
                i64::try_from(v)
                    .map(TsIn::Ns)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TsIn, E> {
                Ok(TsIn::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    id: Id,
    #[serde(default)]
    timestamp: Option<TsIn>,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    source: Option<String>,
    /// `null` is a payload like any other JSON value: present means `Some`, even if null.
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    vector: Option<Vec<f32>>,
}

/// A field that is present, whatever its JSON value (serde maps `null` to `None` otherwise).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue as Deserialize>::deserialize(d).map(Some)
}

/// Parses one input line into a record, with a message fit for the user on failure.
pub fn parse_line(line: &str, max_payload: usize) -> anyhow::Result<Record> {
    // serde_json says "at line 1 column N": the line is ours to name, the column is useful.
    let l: Line<'_> = serde_json::from_str(line).map_err(|e| {
        let what = e.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_owned();
        anyhow::anyhow!("{what} (column {})", e.column())
    })?;
    let (timestamp_ns, timestamp_format) = match l.timestamp {
        None => (util::now_ns(), TimestampFormat::Nanos),
        Some(TsIn::Ns(n)) => (n, TimestampFormat::Nanos),
        Some(TsIn::Text(s)) => (util::rfc3339_to_ns(&s)?, TimestampFormat::Rfc3339),
    };
    let r = Record {
        id: Some(l.id),
        timestamp_ns: Some(timestamp_ns),
        timestamp_format,
        event_type: l.event_type,
        source: l.source,
        vector: l.vector,
        payload: l.payload.map(|p| p.get().to_owned()),
    };
    r.validate(None, max_payload)?;
    Ok(r)
}

/// A UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads one line of at most `max` bytes (without the newline), not counting a byte order
/// mark that starts it when `bom_allowance` is its length (line 1). `Ok(None)` at end of input.
fn read_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    bom_allowance: usize,
) -> anyhow::Result<Option<()>> {
    buf.clear();
    let too_long = || anyhow::anyhow!("line is longer than the maximum of {max} bytes");
    // Bytes that do not count: a BOM at the start of line 1, once it is seen.
    let uncounted = |buf: &[u8]| {
        if bom_allowance > 0 && buf.starts_with(BOM) {
            BOM.len()
        } else {
            0
        }
    };
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            if buf.len() - uncounted(buf) > max {
                return Err(too_long());
            }
            return Ok((!buf.is_empty()).then_some(()));
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        buf.extend_from_slice(&chunk[..take]);
        input.consume(take);
        if done {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            if buf.len() - uncounted(buf) > max {
                return Err(too_long());
            }
            return Ok(Some(()));
        }
        // The byte before the newline may be the '\r' of a CRLF, which does not count.
        if buf.len() - uncounted(buf) - usize::from(buf.last() == Some(&b'\r')) > max {
            return Err(too_long());
        }
    }
}

/// Runs the command.
pub fn run(a: IngestArgs) -> anyhow::Result<()> {
    let db = crate::util::open_db(&a.data, DbConfig::new(a.preset))?;
    let max_payload = db.config().max_payload_bytes;
    let batch = a.batch;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} records ingested ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut pending: Vec<Op> = Vec::with_capacity(batch.min(1 << 16));
    let mut pending_bytes = 0usize;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut failure: Option<(u64, String)> = None;
    let commit = |pending: &mut Vec<Op>, out: &mut std::io::StdoutLock<'_>| -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let range = db.write_batch(pending)?;
        writeln!(
            out,
            "{{\"acked_through\":{},\"count\":{}}}",
            range.last,
            pending.len()
        )?;
        out.flush()?;
        pb.inc(pending.len() as u64);
        pending.clear();
        Ok(())
    };
    loop {
        line_no += 1;
        let allowance = if line_no == 1 { BOM.len() } else { 0 };
        match read_bounded(&mut input, &mut buf, a.max_line_bytes, allowance) {
            Ok(None) => break,
            Ok(Some(())) => {}
            Err(e) => {
                failure = Some((line_no, e.to_string()));
                break;
            }
        }
        // Editors on some systems start a UTF-8 file with a byte order mark: not JSON, and
        // not counted against --max-line-bytes (`read_bounded` allowed for it on line 1).
        if line_no == 1 && buf.starts_with(BOM) {
            buf.drain(..BOM.len());
        }
        let line = match std::str::from_utf8(&buf) {
            Ok(s) => s,
            Err(e) => {
                failure = Some((line_no, format!("not valid UTF-8: {e}")));
                break;
            }
        };
        // Blank means JSON whitespace only (space, tab, CR); any other character, Unicode
        // whitespace included, is a line to parse, and to refuse when it is not a record.
        if line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        match parse_line(line, max_payload) {
            Ok(r) => pending.push(Op::Put(r)),
            Err(e) => {
                failure = Some((line_no, e.to_string()));
                break;
            }
        }
        pending_bytes += line.len();
        if pending.len() >= batch || pending_bytes >= a.batch_bytes {
            commit(&mut pending, &mut out)?;
            pending_bytes = 0;
        }
    }
    // Every line before a bad one is kept.
    commit(&mut pending, &mut out)?;
    pb.finish_and_clear();
    db.close()?;
    if let Some((line, msg)) = failure {
        let err = serde_json::json!({"error": {"code": "bad_input", "line": line, "message": msg}});
        writeln!(out, "{err}")?;
        anyhow::bail!("line {line}: {msg}");
    }
    Ok(())
}
