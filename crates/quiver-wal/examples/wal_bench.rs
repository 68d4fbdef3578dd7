//! Commit throughput of the WAL on a real directory.
//!
//! ```text
//! cargo run --release -p quiver-wal --example wal_bench -- \
//!     [--threads 2] [--batch 2000] [--body 250] [--sync none|group|write] \
//!     [--prealloc] [--buffered] [--gather-us 0] [--max-group 2000] [--file-mb 64] [--seconds 5] [--dir /tmp/quiver-wal-bench]
//! ```
//!
//! Prints one JSON line: records/s, commits/s, groups, fdatasyncs and commit latency p50/p99.

use quiver_core::{SyncMode, WalConfig};
use quiver_wal::{FsStorage, Storage, Wal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut threads = 2usize;
    let mut batch = 2000usize;
    let mut body_len = 250usize;
    let mut sync = SyncMode::None;
    let mut prealloc = false;
    let mut direct_io = true;
    let mut gather_us = 0u64;
    let mut max_group = 2000usize;
    let mut file_mb = 64u64;
    let mut seconds = 5f64;
    let mut dir = std::env::temp_dir().join("quiver-wal-bench");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => threads = val()?.parse()?,
            "--batch" => batch = val()?.parse()?,
            "--body" => body_len = val()?.parse()?,
            "--sync" => {
                sync = match val()?.as_str() {
                    "none" => SyncMode::None,
                    "group" => SyncMode::PerGroup,
                    "write" => SyncMode::PerWrite,
                    o => return Err(format!("unknown sync mode {o}").into()),
                }
            }
            "--prealloc" => prealloc = true,
            "--buffered" => direct_io = false,
            "--gather-us" => gather_us = val()?.parse()?,
            "--max-group" => max_group = val()?.parse()?,
            "--file-mb" => file_mb = val()?.parse()?,
            "--seconds" => seconds = val()?.parse()?,
            "--dir" => dir = val()?.into(),
            o => return Err(format!("unknown argument {o}").into()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(&dir)?);
    let config = WalConfig {
        sync,
        gather_delay: Duration::from_micros(gather_us),
        max_group_entries: max_group,
        file_size: file_mb << 20,
        preallocate: prealloc,
        direct_io,
    };
    let wal = Wal::open(storage, config, None)?;
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut lat: Vec<Duration> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (wal, stop) = (&wal, &stop);
                sc.spawn(move || {
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let bodies: Vec<Vec<u8>> = (0..batch)
                            .map(|j| {
                                let mut b = vec![0u8; body_len.max(16)];
                                b[8..16].copy_from_slice(
                                    &((t as u64) << 48 | i << 16 | j as u64).to_le_bytes(),
                                );
                                b
                            })
                            .collect();
                        let t0 = Instant::now();
                        wal.commit(bodies).expect("commit");
                        lat.push(t0.elapsed());
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter()
            .flat_map(|h| h.join().expect("writer"))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let st = wal.stats();
    println!(
        "{{\"bench\":\"wal\",\"threads\":{threads},\"batch\":{batch},\"body_bytes\":{body_len},\"sync\":\"{sync:?}\",\"prealloc\":{prealloc},\"direct_io\":{direct_io},\"max_group\":{max_group},\"file_mb\":{file_mb},\"files\":{},\"seconds\":{secs:.2},\"records\":{},\"records_per_sec\":{:.0},\"commits_per_sec\":{:.0},\"groups\":{},\"fdatasyncs\":{},\"mb_per_sec\":{:.1},\"commit_p50_ms\":{:.3},\"commit_p99_ms\":{:.3}}}",
        st.files,
        st.records,
        st.records as f64 / secs,
        lat.len() as f64 / secs,
        st.groups,
        st.syncs,
        st.bytes as f64 / secs / 1e6,
        ms(pct(0.5)),
        ms(pct(0.99)),
    );
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
