//! Damaged files: typed errors naming file and offset; never a panic, never a silent skip.

use crate::{body, cfg, mem, replay_all, stamped, wal_files, Records};
use proptest::prelude::*;
use quiver_core::SyncMode;
use quiver_wal::{format, MemStorage, Wal, WalError};
use std::sync::Arc;

/// Each file's name and group offsets (one record per group).
type Layout = Vec<(String, Vec<usize>)>;

/// A log of `n` single-record commits over small files; returns storage, per-file group
/// offsets and the expected records.
fn build(n: u64, file_size: u64) -> (MemStorage, Layout, Records) {
    let (m, s) = mem();
    let wal = Wal::open(s.clone(), cfg(SyncMode::PerGroup, file_size, false), None).unwrap();
    let mut expected = Vec::new();
    for i in 0..n {
        let b = body(i, 24 + (i as usize % 9) * 5);
        let r = wal.commit(vec![b.clone()]).unwrap();
        expected.push((r.first, stamped(r.first, b)));
    }
    drop(wal);
    let mut layout = Vec::new();
    for name in wal_files(&*s) {
        let data = m.file(&name).unwrap();
        let mut offs = Vec::new();
        let mut off = format::HEADER_LEN;
        while off < data.len() {
            offs.push(off);
            let bytes = u64::from_le_bytes(data[off + 16..off + 24].try_into().unwrap());
            off += format::GROUP_HEADER_LEN + bytes as usize;
        }
        layout.push((name, offs));
    }
    (m, layout, expected)
}

fn open(m: &MemStorage) -> quiver_wal::Result<Wal> {
    Wal::open(
        Arc::new(m.clone()),
        cfg(SyncMode::PerGroup, 1024, false),
        None,
    )
}

fn flip(m: &MemStorage, name: &str, at: usize) {
    let mut d = m.file(name).unwrap();
    d[at] ^= 0x5a;
    m.put_file(name, d);
}

#[test]
fn flipped_byte_in_every_position_of_a_middle_record() {
    let (m0, layout, _) = build(40, 1024);
    assert!(layout.len() >= 3);
    for (fi, (name, offs)) in layout.iter().enumerate() {
        // A middle record of this file, and (for all but the final file) its last record too.
        let mut victims = vec![offs.len() / 2];
        if fi + 1 < layout.len() {
            victims.push(offs.len() - 1);
        }
        for k in victims {
            let start = offs[k];
            let end = offs
                .get(k + 1)
                .copied()
                .unwrap_or(m0.file(name).unwrap().len());
            for at in start..end {
                let m = MemStorage::new();
                for (n, _) in &layout {
                    m.put_file(n, m0.file(n).unwrap());
                }
                flip(&m, name, at);
                // A damaged group header is named at the group, a damaged frame at the frame.
                let frame = start + format::GROUP_HEADER_LEN;
                let want = if at < frame { start } else { frame };
                match open(&m) {
                    Err(WalError::Corruption { file, offset, .. }) => {
                        assert_eq!((&file, offset), (name, want as u64), "flip at {name}:{at}");
                    }
                    other => panic!("flip at {name}:{at}: expected corruption, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn bad_header_is_a_typed_error() {
    let (m0, layout, _) = build(10, 1 << 20);
    let name = &layout[0].0;
    type Check = fn(&WalError) -> bool;
    let cases: [(usize, Check); 4] = [
        (0, |e| matches!(e, WalError::BadMagic { .. })),
        (
            8,
            |e| matches!(e, WalError::UnsupportedVersion { got, .. } if *got == 2 ^ 0x5a),
        ),
        (17, |e| matches!(e, WalError::Corruption { offset: 32, .. })),
        (33, |e| matches!(e, WalError::Corruption { offset: 32, .. })),
    ];
    for (at, ok) in cases {
        let m = MemStorage::new();
        m.put_file(name, m0.file(name).unwrap());
        flip(&m, name, at);
        let err = open(&m).expect_err("damaged header must not open");
        assert!(ok(&err), "flip at {at}: {err}");
        assert!(err.is_corruption());
        assert!(err.to_string().contains(name.as_str()), "{err}");
    }
    // A header cut short in a file that is not the last one.
    let m = MemStorage::new();
    m.put_file(&format::file_name(1), b"QVRWAL".to_vec());
    m.put_file(&format::file_name(2), m0.file(name).unwrap());
    assert!(matches!(open(&m), Err(WalError::Corruption { .. })));
}

#[test]
fn missing_middle_file_is_detected() {
    let (m0, layout, _) = build(40, 1024);
    assert!(layout.len() >= 3);
    let m = MemStorage::new();
    for (i, (n, _)) in layout.iter().enumerate() {
        if i != 1 {
            m.put_file(n, m0.file(n).unwrap());
        }
    }
    match open(&m) {
        Err(WalError::Corruption {
            file, offset: 24, ..
        }) => assert_eq!(file, layout[2].0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_name_must_match_header() {
    let (m0, layout, _) = build(3, 1 << 20);
    let m = MemStorage::new();
    m.put_file(&format::file_name(7), m0.file(&layout[0].0).unwrap());
    assert!(matches!(
        open(&m),
        Err(WalError::Corruption { offset: 16, .. })
    ));
}

#[test]
fn corruption_after_open_is_caught_by_replay() {
    let (m, layout, expected) = build(20, 1 << 20);
    let wal = open(&m).unwrap();
    assert_eq!(replay_all(&wal, 0), expected);
    let (name, offs) = &layout[0];
    flip(&m, name, offs[3] + 10);
    let mut seen = 0;
    let err = wal.replay(0, &mut |_, _| {
        seen += 1;
        Ok(())
    });
    assert_eq!(
        seen, 3,
        "records before the damage are delivered, none after"
    );
    match err {
        Err(WalError::Corruption { file, offset, .. }) => {
            assert_eq!((&file, offset), (name, offs[3] as u64))
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Any single damaged byte: an error, or (only when it hit the final record) that record
    /// cut as a torn tail. Never a panic, never another record lost or invented.
    #[test]
    fn random_damage_never_silently_loses_data(at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let (m, layout, expected) = build(30, 1024);
        let files: Vec<_> = layout.iter().map(|(n, _)| (n.clone(), m.file(n).unwrap().len())).collect();
        let total: usize = files.iter().map(|f| f.1).sum();
        let mut pos = at.index(total);
        let mut fi = 0;
        while pos >= files[fi].1 {
            pos -= files[fi].1;
            fi += 1;
        }
        let (name, _) = &files[fi];
        let mut d = m.file(name).unwrap();
        d[pos] ^= x;
        m.put_file(name, d);
        let last_frame = *layout.last().unwrap().1.last().unwrap();
        match open(&m) {
            Ok(wal) => {
                prop_assert!(fi + 1 == files.len() && pos >= last_frame, "damage at {name}:{pos} went unnoticed");
                prop_assert_eq!(replay_all(&wal, 0), expected[..expected.len() - 1].to_vec());
            }
            Err(e) => prop_assert!(e.is_corruption(), "{e}"),
        }
    }
}

/// A syncing log of multi-record groups in one file: (storage, file name, each group's
/// offset, the records of each group). Every group was acknowledged once written.
fn grouped_log(sizes: &[usize]) -> (MemStorage, String, Vec<usize>, Vec<Records>) {
    let m = MemStorage::new();
    let c = cfg(SyncMode::PerGroup, 1 << 20, false);
    let wal = Wal::open(Arc::new(m.clone()), c, None).unwrap();
    let (mut starts, mut groups) = (Vec::new(), Vec::new());
    for (g, &n) in sizes.iter().enumerate() {
        starts.push(wal.stats().bytes as usize);
        let bodies: Vec<Vec<u8>> = (0..n)
            .map(|i| body((g * 100 + i) as u64, 20 + (g * 37 + i * 11) % 180))
            .collect();
        let r = wal.commit(bodies.clone()).unwrap();
        groups.push(
            bodies
                .into_iter()
                .enumerate()
                .map(|(k, b)| (r.first + k as u64, stamped(r.first + k as u64, b)))
                .collect(),
        );
    }
    drop(wal);
    let name = wal_files(&m).pop().unwrap();
    (m, name, starts, groups)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// One damaged byte or one zeroed 512-byte sector in a syncing log of multi-record groups.
    /// A flip is corruption unless it hit the final group's last record (then that group is
    /// cut, a torn write by the bytes). A zeroed sector is corruption unless it reaches into
    /// the final group (then the groups from the first one it touched may be cut). Whatever
    /// opens holds whole groups, a prefix of what was acknowledged; nothing is ever invented.
    #[test]
    fn damage_to_a_grouped_log_is_corruption_or_a_cut_of_whole_final_groups(
        sizes in prop::collection::vec(1usize..6, 3..10),
        at in any::<prop::sample::Index>(),
        x in 1u8..=255,
        zero_sector in any::<bool>(),
    ) {
        let (m, name, starts, groups) = grouped_log(&sizes);
        let data = m.file(&name).unwrap();
        let end = {
            let last = *starts.last().unwrap();
            last + format::GROUP_HEADER_LEN
                + groups.last().unwrap().iter().map(|(_, b)| 8 + b.len()).sum::<usize>()
        };
        let last = *starts.last().unwrap();
        let pos = format::HEADER_LEN + at.index(end - format::HEADER_LEN);
        let mut d = data.clone();
        let (from, to) = if zero_sector {
            let s = pos / 512 * 512;
            let (from, to) = (s.max(format::HEADER_LEN), (s + 512).min(d.len()));
            d[from..to].fill(0);
            (from, to)
        } else {
            d[pos] ^= x;
            (pos, pos + 1)
        };
        prop_assume!(d != data);
        let m2 = MemStorage::new();
        m2.put_file(&name, d);
        match Wal::open(Arc::new(m2), cfg(SyncMode::PerGroup, 1 << 20, false), None) {
            Err(e) => prop_assert!(e.is_corruption(), "{e}"),
            Ok(wal) => {
                let got = replay_all(&wal, 0);
                // Whole groups, a prefix of the log.
                let kept = (0..=groups.len())
                    .find(|&k| groups[..k].concat() == got)
                    .ok_or_else(|| TestCaseError::fail(format!("not whole groups: {} records", got.len())))?;
                prop_assert!(kept < groups.len(), "damage at {from}..{to} went unnoticed");
                // Only groups the damage reached are cut, and only when it reached the last.
                prop_assert!(to > last, "damage at {from}..{to}, before the last group at {last}, cut groups from {kept}");
                let first_hit = starts.iter().rposition(|&s| s <= from).unwrap();
                prop_assert!(kept >= first_hit, "damage at {from}..{to} cut group {kept}, before group {first_hit} it hit");
                if !zero_sector {
                    prop_assert_eq!(kept, groups.len() - 1);
                    let last_frame = end - 8 - groups.last().unwrap().last().unwrap().1.len();
                    prop_assert!(pos >= last_frame, "flip at {pos}, before the last record at {last_frame}");
                }
            }
        }
    }
}
