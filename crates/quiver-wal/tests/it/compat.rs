//! Logs an earlier build wrote (format version 1: frames with no group headers) are read, and
//! never appended to: the first commit after opening one starts a file of the current format.

use crate::{body, cfg, replay_all, stamped, wal_files, Records};
use quiver_core::SyncMode;
use quiver_wal::{format, MemStorage, Wal, WalError};
use std::sync::Arc;

/// A version-1 file holding seqs `first..first + n`, as the earlier build laid it out.
fn v1_file(first: u64, prev: u64, n: u64) -> (Vec<u8>, Records) {
    let mut d = format::Header {
        version: format::VERSION_1,
        first_seq: first,
        prev_seq: prev,
    }
    .encode()
    .to_vec();
    let mut records = Vec::new();
    for seq in first..first + n {
        let b = stamped(seq, body(seq, 30 + seq as usize % 11));
        format::push_frame(&mut d, &b);
        records.push((seq, b));
    }
    (d, records)
}

fn version_of(m: &MemStorage, name: &str) -> u32 {
    u32::from_le_bytes(m.file(name).unwrap()[8..12].try_into().unwrap())
}

#[test]
fn a_version_1_log_is_read_and_the_next_commit_starts_a_current_file() {
    for sync in [SyncMode::None, SyncMode::PerGroup, SyncMode::PerWrite] {
        let m = MemStorage::new();
        let (a, mut expected) = v1_file(1, 0, 5);
        let (b, more) = v1_file(6, 5, 4);
        expected.extend(more);
        m.put_file(&format::file_name(1), a);
        m.put_file(&format::file_name(6), b.clone());
        let c = cfg(sync, 1 << 20, false);
        let wal = Wal::open(Arc::new(m.clone()), c.clone(), None).unwrap();
        assert_eq!(replay_all(&wal, 0), expected, "{sync:?}");
        assert_eq!(wal.last_seq(), 9);
        let x = body(100, 40);
        let r = wal.commit(vec![x.clone()]).unwrap();
        assert_eq!(r.first, 10);
        expected.push((10, stamped(10, x)));
        drop(wal);
        // The old file is left exactly as it was; the record went to a new, current file.
        assert_eq!(m.file(&format::file_name(6)).unwrap(), b, "{sync:?}");
        assert_eq!(
            wal_files(&m),
            [
                format::file_name(1),
                format::file_name(6),
                format::file_name(10)
            ]
        );
        assert_eq!(version_of(&m, &format::file_name(10)), format::VERSION);
        let wal = Wal::open(Arc::new(m.clone()), c, None).unwrap();
        assert_eq!(replay_all(&wal, 0), expected, "{sync:?} after reopen");
    }
}

#[test]
fn a_version_1_log_keeps_its_recovery_rules() {
    let (d, expected) = v1_file(1, 0, 6);
    let last = d.len() - (8 + expected[5].1.len());
    // A torn final record is cut.
    for cut in [d.len() - 1, last + 3] {
        let m = MemStorage::new();
        m.put_file(&format::file_name(1), d[..cut].to_vec());
        let c = cfg(SyncMode::PerGroup, 1 << 20, false);
        let wal = Wal::open(Arc::new(m), c, None).unwrap();
        assert_eq!(replay_all(&wal, 0), expected[..5], "cut at {cut}");
    }
    // A flipped byte in a middle record is corruption naming it.
    let mut bad = d.clone();
    bad[format::HEADER_LEN + 12] ^= 0x20;
    let m = MemStorage::new();
    m.put_file(&format::file_name(1), bad);
    match Wal::open(Arc::new(m), cfg(SyncMode::PerGroup, 1 << 20, false), None) {
        Err(WalError::Corruption { offset, .. }) => assert_eq!(offset, format::HEADER_LEN as u64),
        other => panic!("{other:?}"),
    }
}
