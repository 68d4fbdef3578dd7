//! Torn final write: cut at every byte offset, recover exactly the groups before it.

use crate::{body, cfg, mem, replay_all, stamped, wal_files, Records};
use quiver_core::{SyncMode, WalConfig};
use quiver_wal::{format, FsStorage, MemStorage, Storage, Wal};
use std::sync::Arc;

/// A one-file log of `n` single-record groups; returns (file name, bytes, group offsets,
/// expected records).
fn image(n: u64) -> (String, Vec<u8>, Vec<usize>, Records) {
    let (m, s) = mem();
    let wal = Wal::open(s.clone(), cfg(SyncMode::PerGroup, 1 << 20, false), None).unwrap();
    let mut expected = Vec::new();
    let mut offsets = Vec::new();
    let mut off = format::HEADER_LEN;
    for i in 0..n {
        let b = body(i, 20 + (i as usize * 13) % 50);
        offsets.push(off);
        off += format::GROUP_HEADER_LEN + format::frame_len(b.len());
        let r = wal.commit(vec![b.clone()]).unwrap();
        expected.push((r.first, stamped(r.first, b)));
    }
    let name = wal_files(&*s).pop().unwrap();
    let data = m.file(&name).unwrap();
    assert_eq!(data.len(), off);
    (name, data, offsets, expected)
}

fn check_recovers(
    s: Arc<dyn Storage>,
    keep: &[(u64, Vec<u8>)],
    c: quiver_core::WalConfig,
    what: &str,
) {
    let wal = Wal::open(s.clone(), c.clone(), None).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(replay_all(&wal, 0), keep, "{what}");
    assert_eq!(wal.last_seq(), keep.len() as u64, "{what}");
    let b = body(999, 33);
    let r = wal.commit(vec![b.clone()]).unwrap();
    assert_eq!(r.first, keep.len() as u64 + 1, "{what}");
    drop(wal);
    let wal = Wal::open(s, c, None).unwrap();
    let mut all = keep.to_vec();
    all.push((r.first, stamped(r.first, b)));
    assert_eq!(
        replay_all(&wal, 0),
        all,
        "{what}: after new commit and reopen"
    );
}

#[test]
fn cut_final_record_at_every_byte() {
    let (name, data, offsets, expected) = image(6);
    let last = *offsets.last().unwrap();
    for cut in last..data.len() {
        let m = MemStorage::new();
        m.put_file(&name, data[..cut].to_vec());
        let c = cfg(SyncMode::PerGroup, 1 << 20, false);
        check_recovers(
            Arc::new(m.clone()),
            &expected[..5],
            c,
            &format!("cut at {cut}"),
        );
    }
    // Cutting exactly at a frame boundary is a clean shorter log, at every boundary.
    for (k, &off) in offsets.iter().enumerate() {
        let m = MemStorage::new();
        m.put_file(&name, data[..off].to_vec());
        let c = cfg(SyncMode::PerGroup, 1 << 20, false);
        check_recovers(Arc::new(m), &expected[..k], c, &format!("boundary {off}"));
    }
}

#[test]
fn torn_final_record_in_preallocated_file() {
    // In a preallocated file the unwritten tail of a torn record is zeros, not EOF.
    let (name, data, offsets, expected) = image(5);
    let last = *offsets.last().unwrap();
    for cut in last..data.len() {
        let mut d = data[..cut].to_vec();
        d.resize(4096, 0);
        let m = MemStorage::new();
        m.put_file(&name, d);
        let c = cfg(SyncMode::PerWrite, 4096, true);
        check_recovers(
            Arc::new(m),
            &expected[..4],
            c,
            &format!("prealloc cut at {cut}"),
        );
    }
}

#[test]
fn a_torn_multi_record_group_is_cut_whole() {
    let (m, s) = mem();
    let c = cfg(SyncMode::PerGroup, 1 << 20, false);
    let wal = Wal::open(s.clone(), c.clone(), None).unwrap();
    let b1: Vec<Vec<u8>> = (0..3).map(|i| body(i, 40)).collect();
    let r1 = wal.commit(b1.clone()).unwrap();
    let b2: Vec<Vec<u8>> = (0..4).map(|i| body(10 + i, 40)).collect();
    wal.commit(b2).unwrap();
    drop(wal);
    let name = wal_files(&*s).pop().unwrap();
    let data = m.file(&name).unwrap();
    let group2_start = format::HEADER_LEN + format::GROUP_HEADER_LEN + 3 * format::frame_len(48);
    let keep: Vec<_> = b1
        .into_iter()
        .enumerate()
        .map(|(k, b)| (r1.first + k as u64, stamped(r1.first + k as u64, b)))
        .collect();
    for cut in group2_start + 1..data.len() {
        let m2 = MemStorage::new();
        m2.put_file(&name, data[..cut].to_vec());
        let wal = Wal::open(Arc::new(m2.clone()), c.clone(), None).unwrap();
        // No record of the torn group is kept, however much of it made it: it was never
        // acknowledged, and a batch is all or nothing.
        assert_eq!(replay_all(&wal, 0), keep, "cut {cut}");
        assert_eq!(m2.file(&name).unwrap().len(), group2_start, "cut {cut}");
    }
}

/// A power cut in the middle of one group's write whose blocks reached the disk out of order:
/// a hole of zeros inside the last group, intact frames after it. The group was never
/// acknowledged, so the log opens without it; the same hole in an earlier group, which a
/// later group's header records as durable, is refused.
#[test]
fn a_hole_in_the_last_group_is_a_torn_write_and_earlier_it_is_corruption() {
    let (m, s) = mem();
    let c = cfg(SyncMode::PerGroup, 1 << 20, false);
    let wal = Wal::open(s.clone(), c.clone(), None).unwrap();
    let mut expected = Vec::new();
    let mut starts = Vec::new();
    for g in 0..3u64 {
        starts.push(wal.stats().bytes as usize);
        let bodies: Vec<Vec<u8>> = (0..40).map(|i| body(100 * g + i, 60)).collect();
        let r = wal.commit(bodies.clone()).unwrap();
        for (k, b) in bodies.into_iter().enumerate() {
            expected.push((r.first + k as u64, stamped(r.first + k as u64, b)));
        }
    }
    drop(wal);
    let name = wal_files(&*s).pop().unwrap();
    let data = m.file(&name).unwrap();
    let hole_in = |group: usize| {
        let mut d = data.clone();
        let at = (starts[group] / 512 + 2) * 512;
        d[at..at + 512].fill(0);
        d
    };
    let m2 = MemStorage::new();
    m2.put_file(&name, hole_in(2));
    check_recovers(
        Arc::new(m2),
        &expected[..80],
        c.clone(),
        "hole in the last group",
    );
    let m3 = MemStorage::new();
    m3.put_file(&name, hole_in(1));
    match Wal::open(Arc::new(m3), c, None) {
        Err(quiver_wal::WalError::Corruption { offset, reason, .. }) => {
            assert!(
                offset as usize > starts[1] && (offset as usize) < starts[2],
                "{offset}"
            );
            assert!(reason.contains("durable"), "{reason}");
        }
        other => panic!("a hole in an acknowledged group must be refused: {other:?}"),
    }
}

#[test]
fn torn_tail_on_real_files() {
    for direct_io in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let s: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
        let c = WalConfig {
            direct_io,
            ..cfg(SyncMode::PerGroup, 1 << 20, false)
        };
        let wal = Wal::open(s.clone(), c.clone(), None).unwrap();
        let mut expected = Vec::new();
        for i in 0..4 {
            let b = body(i, 64);
            let r = wal.commit(vec![b.clone()]).unwrap();
            expected.push((r.first, stamped(r.first, b)));
        }
        // With direct I/O the file runs on in zeros to a 4 KiB boundary: tear the last record
        // relative to the end of its data, not of the file.
        let end = wal.stats().bytes;
        let direct = wal.stats().direct_io;
        drop(wal);
        let what = format!("fs cut, direct_io {direct_io} (in effect: {direct})");
        let path = dir.path().join(wal_files(&*s).pop().unwrap());
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len > end, direct, "{what}: padding exactly when direct");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(end - 10)
            .unwrap();
        check_recovers(s, &expected[..3], c, &what);
        let after = std::fs::metadata(&path).unwrap().len();
        if direct {
            assert_eq!(after % 4096, 0, "{what}: direct appends write whole blocks");
        } else {
            assert!(
                after < len,
                "{what}: the torn bytes were cut and replaced by the new record"
            );
        }
    }
}

#[test]
fn zero_filled_file_after_the_active_one_is_a_cut_rotation() {
    // A crash right after a spare was renamed into place leaves an all-zero last file; the torn
    // tail rule must then apply to the file before it.
    let (name, data, offsets, expected) = image(4);
    for cut in [data.len(), data.len() - 1, *offsets.last().unwrap() + 3] {
        let m = MemStorage::new();
        m.put_file(&name, data[..cut].to_vec());
        m.put_file(&format::file_name(100), vec![0; 4096]);
        m.put_file(quiver_wal::SPARE, vec![7; 100]); // a stale spare is ignored and replaced
        let keep = if cut == data.len() {
            &expected[..]
        } else {
            &expected[..3]
        };
        let c = cfg(SyncMode::PerWrite, 4096, true);
        check_recovers(
            Arc::new(m.clone()),
            keep,
            c,
            &format!("zero file after cut {cut}"),
        );
        assert!(
            m.file(&format::file_name(100)).is_none(),
            "the empty file was removed"
        );
        assert_eq!(
            m.file(quiver_wal::SPARE).unwrap(),
            vec![0; 4096],
            "spare re-prepared"
        );
    }
}

/// `read_log` reads a torn tail (cut at every byte of the final record) and a trailing
/// zero-filled file the way `Wal::open` recovers them, but leaves every file as it was.
#[test]
fn read_log_reads_a_torn_tail_without_cutting_it() {
    let (name, data, offsets, expected) = image(6);
    let last = *offsets.last().unwrap();
    for cut in last..data.len() {
        let m = MemStorage::new();
        m.put_file(&name, data[..cut].to_vec());
        m.put_file(&format::file_name(100), vec![0; 4096]);
        let mut got = Vec::new();
        let view = quiver_wal::read_log(&m, 2, &mut |s, b| {
            got.push((s, b.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, expected[1..5], "cut at {cut}");
        assert_eq!(view.last_seq, 5, "cut at {cut}");
        assert_eq!((view.files, view.bytes), (1, last as u64), "cut at {cut}");
        assert_eq!(view.torn_tail, cut > last, "cut at {cut}");
        assert_eq!(m.file(&name).unwrap(), data[..cut], "left as it was");
        assert_eq!(m.file(&format::file_name(100)).unwrap(), vec![0; 4096]);
    }
    // Intact: every record, no torn tail.
    let m = MemStorage::new();
    m.put_file(&name, data.clone());
    let mut n = 0;
    let view = quiver_wal::read_log(&m, 0, &mut |_, _| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!((n, view.last_seq, view.torn_tail), (6, 6, false));
}
