//! Shared helpers: entry generation and a newest-version oracle.

use quiver_core::{codec, Entry, Id, Op, Record};
use std::collections::BTreeMap;

/// A tiny deterministic generator (xorshift64*), so failures print a reproducible seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Encodes an entry.
pub fn encode(seq: u64, op: Op) -> Vec<u8> {
    codec::encode_entry(&Entry { seq, op }).unwrap()
}

/// A put of `id` with a payload of about `payload` bytes, an event when `ts` is given.
pub fn put(seq: u64, id: Id, ts: Option<i64>, payload: usize) -> Vec<u8> {
    let mut r = Record::new(id);
    if let Some(t) = ts {
        r = r.with_timestamp(t).with_type("click").with_source("web");
    }
    r.payload = Some(format!("{{\"p\":\"{}\"}}", "x".repeat(payload)));
    encode(seq, Op::Put(r))
}

/// An id drawn from a space of `space` u64 ids and `space` string ids.
pub fn any_id(rng: &mut Rng, space: u64) -> Id {
    let v = rng.below(space);
    if rng.below(2) == 0 {
        Id::U64(v)
    } else {
        Id::Str(format!("user-{v:06}"))
    }
}

/// `n` rows from seq `first`: mixed ids (with overwrites), ~1/8 tombstones, ~1/2 events
/// whose timestamps grow with seq (plus jitter), the rest plain records.
pub fn gen_rows(seed: u64, n: usize, first: u64, space: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed | 1);
    (0..n as u64)
        .map(|i| {
            let seq = first + i;
            let id = any_id(&mut rng, space);
            match rng.below(8) {
                0 => encode(seq, Op::Delete(id)),
                1..=4 => {
                    let ts = 1_000 * seq as i64 + rng.below(500) as i64;
                    put(seq, id, Some(ts), rng.below(120) as usize)
                }
                _ => put(seq, id, None, rng.below(120) as usize),
            }
        })
        .collect()
}

/// id -> body of its newest row.
pub fn newest(rows: &[Vec<u8>]) -> BTreeMap<Id, Vec<u8>> {
    let mut m = BTreeMap::new();
    for r in rows {
        let e = codec::decode_entry(r).unwrap();
        m.insert(e.op.id().unwrap().clone(), r.clone());
    }
    m
}

/// The event timestamp of a row, if any.
pub fn ts_of(row: &[u8]) -> Option<i64> {
    match codec::decode_entry(row).unwrap().op {
        Op::Put(r) => r.timestamp_ns,
        Op::Delete(_) => None,
    }
}
