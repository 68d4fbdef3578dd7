//! Builds a database whose records all still sit in the WAL (a memtable too large to flush,
//! closed without a flush), to measure `quiver verify` on WAL records alone:
//!
//! ```sh
//! cargo run --release -p quiver-engine --example wal_only_db -- /tmp/wal-only 2000000
//! target/release/quiver verify --data /tmp/wal-only
//! ```
//!
//! Records are like `quiver bench ingest`'s: u64 ids, a timestamp, a type and a ~200-byte
//! JSON payload (~235 bytes encoded), written in batches of 2,000 under `throughput`.

use quiver_core::{DbConfig, Op, Preset, Record};
use quiver_engine::Database;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: wal_only_db DIR EVENTS".into());
    };
    let n: u64 = n.parse()?;
    let cfg = DbConfig::new(Preset::Throughput)
        .memtable_bytes(4 << 30)
        .flush_interval(std::time::Duration::from_secs(3600));
    let db = Database::open(std::path::Path::new(&dir), cfg)?;
    let pad: String = (0..190)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for b in 0..n.div_ceil(2000) {
        let ops: Vec<Op> = (b * 2000..((b + 1) * 2000).min(n))
            .map(|i| {
                Op::Put(
                    Record::new(i)
                        .with_timestamp(i as i64)
                        .with_type("click")
                        .with_payload(&serde_json::json!({ "d": pad })),
                )
            })
            .collect();
        db.write_batch(&ops)?;
    }
    db.close_without_flush()?;
    Ok(())
}
