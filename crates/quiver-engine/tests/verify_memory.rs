//! `verify_dir` streams: its memory does not grow with the database, also when records are
//! large. (Its own test binary: it measures the process's peak resident memory.)

use quiver_core::{DbConfig, Op, Preset, Record};
use quiver_engine::{verify::verify_dir, Database};

/// Peak resident memory of this process in bytes (`VmHWM`), after resetting it when `reset`.
fn peak_rss(reset: bool) -> Option<u64> {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// A database of 192 MiB of 1 MiB records verifies in far less memory than it holds (a
/// batch of 16 384 records, whatever their size, once held every record in memory).
#[test]
fn verify_memory_does_not_grow_with_large_records() {
    const MIB: usize = 1 << 20;
    let d = tempfile::tempdir().unwrap();
    let cfg = DbConfig::new(Preset::Throughput)
        .max_payload_bytes(MIB)
        .memtable_bytes(8 * MIB)
        .wal_file_size(4 * MIB as u64);
    let db = Database::open(d.path(), cfg).unwrap();
    let payload = format!("\"{}\"", "p".repeat(MIB - 2));
    for i in 0..192u64 {
        let rec = Record {
            payload: Some(payload.clone()),
            ..Record::new(i).with_timestamp(i as i64)
        };
        db.write_batch(&[Op::Put(rec)]).unwrap();
    }
    db.close().unwrap();
    drop(payload);
    let Some(before) = peak_rss(true) else {
        eprintln!("SKIPPED: no /proc/self/clear_refs to reset the peak resident memory");
        return;
    };
    let r = verify_dir(d.path(), &mut |_| {}).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.records, 192);
    assert!(r.bytes >= 192 * MIB as u64);
    let grew = peak_rss(false).unwrap().saturating_sub(before);
    assert!(
        grew < 96 * MIB as u64,
        "verify of {} MiB of records took {} MiB more memory at its peak",
        r.bytes >> 20,
        grew >> 20
    );
}
