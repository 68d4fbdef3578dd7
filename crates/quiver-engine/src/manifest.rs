//! The manifest: which segments are live and how far they cover the log
//! (spec: `docs/format/manifest.md`).
//!
//! `MANIFEST-<n>` files are written whole, fsynced, then named by `CURRENT` through an atomic
//! rename followed by a directory fsync. A reader follows `CURRENT`; a crash at any point leaves
//! either the old or the new manifest in force.

use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

/// One live segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Segment id (file `segments/<id>.seg`).
    pub id: u64,
    /// Rows stored.
    pub rows: u64,
    /// Smallest sequence number stored.
    pub min_seq: u64,
    /// Largest sequence number stored.
    pub max_seq: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Whether this segment holds the oldest data (no older segment exists): tombstones in it
    /// can be dropped by compaction.
    #[serde(default)]
    pub oldest: bool,
}

/// The live state of a data directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version (1).
    pub version: u32,
    /// Manifest number (the `n` of `MANIFEST-<n>`).
    pub number: u64,
    /// Every entry with seq <= this is in a segment (or was dropped by compaction).
    pub flushed_through: u64,
    /// Next segment id to allocate.
    pub next_segment_id: u64,
    /// Live segments, oldest (lowest seqs) first.
    pub segments: Vec<SegmentEntry>,
    /// Hash algorithm of the ledger ("blake3"/"sha256"), fixed at creation.
    pub ledger_alg: Option<String>,
    /// Random id of this database, fixed at creation: the ledger's checkpoint origin.
    #[serde(default)]
    pub db_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    manifest: Manifest,
    crc32c: u32,
}

fn crc_of(m: &Manifest) -> Result<u32> {
    let body = serde_json::to_vec(m).map_err(|e| EngineError::Manifest {
        path: PathBuf::new(),
        reason: e.to_string(),
    })?;
    Ok(crc32c::crc32c(&body))
}

/// Fsyncs a directory so renames and new files in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(|e| EngineError::io(dir, e))?;
    f.sync_all().map_err(|e| EngineError::io(dir, e))
}

/// Reads the manifest named by `CURRENT`, or `None` for a new directory.
pub fn load(dir: &Path) -> Result<Option<Manifest>> {
    let current = dir.join("CURRENT");
    let name = match fs::read_to_string(&current) {
        Ok(s) => s.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(current, e)),
    };
    if !name.starts_with("MANIFEST-") || name.contains('/') {
        return Err(EngineError::Manifest {
            path: current,
            reason: format!("CURRENT names {name:?}"),
        });
    }
    let path = dir.join(&name);
    let bytes = fs::read(&path).map_err(|e| EngineError::io(&path, e))?;
    let on: OnDisk = serde_json::from_slice(&bytes).map_err(|e| EngineError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let got = crc_of(&on.manifest)?;
    if got != on.crc32c {
        return Err(EngineError::Manifest {
            path,
            reason: format!(
                "checksum mismatch: stored {:#010x}, computed {got:#010x}",
                on.crc32c
            ),
        });
    }
    if on.manifest.version != 1 {
        return Err(EngineError::Manifest {
            path,
            reason: format!("unsupported manifest version {}", on.manifest.version),
        });
    }
    check(&on.manifest).map_err(|reason| EngineError::Manifest { path, reason })?;
    Ok(Some(on.manifest))
}

/// Largest seq, segment id or manifest number a manifest may hold: the WAL's seq limit, so
/// that no `+ 1` on them can overflow and a forged value is refused, not acted on.
const MAX_COUNTER: u64 = 1 << 62;

/// What a checksum cannot vouch for (anyone can recompute it): values the engine would act
/// on wrongly. Every segment id is below `next_segment_id` (or a flush would overwrite a live
/// segment), ids are unique, seq ranges are ordered and within `flushed_through`.
fn check(m: &Manifest) -> std::result::Result<(), String> {
    for (what, v) in [
        ("number", m.number),
        ("flushed_through", m.flushed_through),
        ("next_segment_id", m.next_segment_id),
    ] {
        if v >= MAX_COUNTER {
            return Err(format!("{what} {v} is out of range (at most 2^62 - 1)"));
        }
    }
    let mut ids = std::collections::HashSet::new();
    for e in &m.segments {
        if e.id >= m.next_segment_id {
            return Err(format!(
                "segment {} is not below next_segment_id {}",
                e.id, m.next_segment_id
            ));
        }
        if !ids.insert(e.id) {
            return Err(format!("segment {} is listed twice", e.id));
        }
        if e.min_seq == 0 || e.min_seq > e.max_seq || e.max_seq > m.flushed_through {
            return Err(format!(
                "segment {} holds seqs {}..={}, outside 1..={} (flushed_through)",
                e.id, e.min_seq, e.max_seq, m.flushed_through
            ));
        }
    }
    Ok(())
}

/// Writes `m` as `MANIFEST-<m.number>`, fsyncs it, swaps `CURRENT` atomically, fsyncs the
/// directory, and removes the previous manifest file.
pub fn store(dir: &Path, m: &Manifest) -> Result<()> {
    let name = format!("MANIFEST-{:06}", m.number);
    let path = dir.join(&name);
    let on = OnDisk {
        manifest: m.clone(),
        crc32c: crc_of(m)?,
    };
    let bytes = serde_json::to_vec_pretty(&on).map_err(|e| EngineError::Manifest {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_synced(&path, &bytes)?;
    let tmp = dir.join("CURRENT.tmp");
    write_synced(&tmp, format!("{name}\n").as_bytes())?;
    fs::rename(&tmp, dir.join("CURRENT")).map_err(|e| EngineError::io(&tmp, e))?;
    sync_dir(dir)?;
    if m.number > 0 {
        let old = dir.join(format!("MANIFEST-{:06}", m.number - 1));
        let _ = fs::remove_file(old);
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| EngineError::io(path, e))?;
    f.write_all(bytes).map_err(|e| EngineError::io(path, e))?;
    f.sync_all().map_err(|e| EngineError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_checksum() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).unwrap().is_none());
        let mut m = Manifest {
            version: 1,
            number: 0,
            ..Default::default()
        };
        store(d.path(), &m).unwrap();
        m.number = 1;
        m.flushed_through = 42;
        m.next_segment_id = 4;
        m.segments.push(SegmentEntry {
            id: 3,
            rows: 10,
            min_seq: 1,
            max_seq: 42,
            bytes: 99,
            oldest: true,
        });
        store(d.path(), &m).unwrap();
        assert_eq!(load(d.path()).unwrap().unwrap(), m);
        assert!(!d.path().join("MANIFEST-000000").exists());
        // Tamper with the manifest body: the checksum catches it.
        let p = d.path().join("MANIFEST-000001");
        let s = fs::read_to_string(&p).unwrap().replace("42", "43");
        fs::write(&p, s).unwrap();
        assert!(matches!(load(d.path()), Err(EngineError::Manifest { .. })));
    }

    /// A checksum vouches for nothing (anyone can recompute it): values the engine would act
    /// on wrongly are refused at load, with checksums that match.
    #[test]
    fn forged_values_with_a_valid_checksum_are_refused() {
        let good = Manifest {
            version: 1,
            number: 7,
            flushed_through: 42,
            next_segment_id: 6,
            segments: vec![SegmentEntry {
                id: 5,
                rows: 10,
                min_seq: 1,
                max_seq: 42,
                bytes: 99,
                oldest: true,
            }],
            ..Default::default()
        };
        let d = tempfile::tempdir().unwrap();
        store(d.path(), &good).unwrap();
        assert_eq!(load(d.path()).unwrap().unwrap(), good);
        type Edit = fn(&mut Manifest);
        let forged: [(&str, Edit); 7] = [
            ("flushed_through", |m| m.flushed_through = u64::MAX),
            ("number", |m| m.number = u64::MAX),
            ("next_segment_id", |m| m.next_segment_id = u64::MAX),
            ("not below next_segment_id", |m| m.next_segment_id = 5),
            ("listed twice", |m| {
                let e = m.segments[0].clone();
                m.segments.push(e);
            }),
            ("outside", |m| m.segments[0].max_seq = 43),
            ("outside", |m| m.segments[0].min_seq = 0),
        ];
        for (what, edit) in forged {
            let d = tempfile::tempdir().unwrap();
            let mut m = good.clone();
            edit(&mut m);
            if m.number == u64::MAX {
                // `store` would name the file after the number (and remove MANIFEST-<n - 1>).
                let on = OnDisk {
                    crc32c: crc_of(&m).unwrap(),
                    manifest: m,
                };
                fs::write(
                    d.path().join("MANIFEST-x"),
                    serde_json::to_vec(&on).unwrap(),
                )
                .unwrap();
                fs::write(d.path().join("CURRENT"), "MANIFEST-x\n").unwrap();
            } else {
                store(d.path(), &m).unwrap();
            }
            match load(d.path()) {
                Err(EngineError::Manifest { reason, .. }) => {
                    assert!(reason.contains(what), "{what}: {reason}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
