//! The binary encoding of a committed [`Entry`] (spec: `docs/format/entry.md`).
//!
//! ```text
//! seq      u64 LE          first 8 bytes, so the WAL can stamp it in place at commit
//! flags    u8              bit0 tombstone, bit1 timestamp, bit2 timestamp given as RFC 3339,
//!                          bit3 type, bit4 source, bit5 vector, bit6 payload
//! id       u8 tag          0: u64 LE follows; 1: u32 LE length + UTF-8 bytes
//! ts       i64 LE          if bit1
//! type     u16 LE len+utf8 if bit3
//! source   u16 LE len+utf8 if bit4
//! vector   u32 LE dim + dim × f32 LE   if bit5
//! payload  u32 LE len + JSON text      if bit6
//! ```
//!
//! The same bytes are the WAL record body, the ledger leaf input and a segment row, so the
//! ledger's leaf hash can be recomputed from any surviving copy.

use crate::{CoreError, Entry, Id, Op, Record, Result, SeqNo, TimestampFormat};

const F_TOMBSTONE: u8 = 1;
const F_TS: u8 = 1 << 1;
const F_TS_RFC3339: u8 = 1 << 2;
const F_TYPE: u8 = 1 << 3;
const F_SOURCE: u8 = 1 << 4;
const F_VECTOR: u8 = 1 << 5;
const F_PAYLOAD: u8 = 1 << 6;

/// Size of the sequence-number prefix of every encoded entry.
pub const SEQ_PREFIX: usize = 8;

/// The longest encoding of a record that passes [`Record::validate`](crate::Record::validate)
/// with a payload limit of at most [`MAX_PAYLOAD_LIMIT`](crate::config::MAX_PAYLOAD_LIMIT):
/// every field at its maximum. Storage layers check at compile time that such a record fits.
pub const MAX_ENCODED_BYTES: usize = SEQ_PREFIX
    + 1 // flags
    + 1 + 4 + crate::id::MAX_ID_BYTES // id: tag, length, bytes
    + 8 // timestamp
    + 2 * (2 + u16::MAX as usize) // type and source
    + 4 + 4 * crate::record::MAX_VECTOR_DIM
    + 4 + crate::config::MAX_PAYLOAD_LIMIT;

/// Encodes `op` with a zero sequence number, to be stamped with [`stamp_seq`] at commit.
pub fn encode_op(op: &Op) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded_len_hint(op));
    encode_op_into(op, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `op` (with a zero sequence number) to `out`.
pub fn encode_op_into(op: &Op, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&0u64.to_le_bytes());
    match op {
        Op::Delete(id) => {
            out.push(F_TOMBSTONE);
            encode_id(id, out);
        }
        Op::Put(r) => {
            let mut flags = 0u8;
            if r.timestamp_ns.is_some() {
                flags |= F_TS;
                if r.timestamp_format == TimestampFormat::Rfc3339 {
                    flags |= F_TS_RFC3339;
                }
            }
            if r.event_type.is_some() {
                flags |= F_TYPE;
            }
            if r.source.is_some() {
                flags |= F_SOURCE;
            }
            if r.vector.is_some() {
                flags |= F_VECTOR;
            }
            if r.payload.is_some() {
                flags |= F_PAYLOAD;
            }
            out.push(flags);
            encode_id(r.id()?, out);
            if let Some(ts) = r.timestamp_ns {
                out.extend_from_slice(&ts.to_le_bytes());
            }
            for (field, s) in [("event type", &r.event_type), ("event source", &r.source)] {
                if let Some(s) = s {
                    let len = u16::try_from(s.len()).map_err(|_| CoreError::TooLarge {
                        field,
                        size: s.len(),
                        max: u16::MAX as usize,
                    })?;
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
            if let Some(v) = &r.vector {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            if let Some(p) = &r.payload {
                let len = u32::try_from(p.len()).map_err(|_| CoreError::TooLarge {
                    field: "payload",
                    size: p.len(),
                    max: u32::MAX as usize,
                })?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(p.as_bytes());
            }
        }
    }
    Ok(())
}

/// Encodes a whole entry (sequence number included).
pub fn encode_entry(e: &Entry) -> Result<Vec<u8>> {
    let mut out = encode_op(&e.op)?;
    stamp_seq(&mut out, e.seq);
    Ok(out)
}

/// Writes `seq` into the first 8 bytes of an encoded entry.
pub fn stamp_seq(body: &mut [u8], seq: SeqNo) {
    body[..SEQ_PREFIX].copy_from_slice(&seq.to_le_bytes());
}

/// Whether an encoded entry is a tombstone (its flags byte, right after the seq, has the
/// tombstone bit). False for a body too short to say.
pub fn is_tombstone(body: &[u8]) -> bool {
    body.get(SEQ_PREFIX).is_some_and(|f| f & F_TOMBSTONE != 0)
}

/// Reads the sequence number of an encoded entry.
pub fn peek_seq(body: &[u8]) -> Result<SeqNo> {
    body.get(..SEQ_PREFIX)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or(CoreError::Decode {
            offset: 0,
            reason: "entry shorter than its sequence number",
        })
}

fn encode_id(id: &Id, out: &mut Vec<u8>) {
    match id {
        Id::U64(v) => {
            out.push(0);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Id::Str(s) => {
            out.push(1);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// An upper-bound guess of the encoded size of `op`, for sizing buffers.
pub fn encoded_len_hint(op: &Op) -> usize {
    match op {
        Op::Delete(_) => 32,
        Op::Put(r) => {
            64 + r.vector.as_ref().map_or(0, |v| v.len() * 4)
                + r.payload.as_ref().map_or(0, |p| p.len())
                + r.event_type.as_ref().map_or(0, |s| s.len())
                + r.source.as_ref().map_or(0, |s| s.len())
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(CoreError::Decode {
                offset: self.pos,
                reason: what,
            }),
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn arr<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn id(&mut self) -> Result<Id> {
        Ok(match self.u8("truncated id tag")? {
            0 => Id::U64(u64::from_le_bytes(self.arr::<8>("truncated u64 id")?)),
            1 => {
                let n = u32::from_le_bytes(self.arr::<4>("truncated id length")?) as usize;
                Id::Str(self.string(n, "truncated string id")?)
            }
            _ => {
                return Err(CoreError::Decode {
                    offset: 9,
                    reason: "unknown id tag",
                })
            }
        })
    }
    fn string(&mut self, n: usize, what: &'static str) -> Result<String> {
        let off = self.pos;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| CoreError::Decode {
            offset: off,
            reason: "invalid UTF-8",
        })
    }
}

/// Decodes an encoded entry. Never panics on any input.
pub fn decode_entry(body: &[u8]) -> Result<Entry> {
    let mut r = Reader { buf: body, pos: 0 };
    let seq = u64::from_le_bytes(r.arr::<8>("truncated sequence number")?);
    let flags = r.u8("truncated flags")?;
    if flags & 0x80 != 0 {
        return Err(CoreError::Decode {
            offset: 8,
            reason: "unknown flag bits",
        });
    }
    let id = r.id()?;
    let op = if flags & F_TOMBSTONE != 0 {
        if flags != F_TOMBSTONE {
            return Err(CoreError::Decode {
                offset: 8,
                reason: "tombstone with record fields",
            });
        }
        Op::Delete(id)
    } else {
        let mut rec = Record {
            id: Some(id),
            ..Default::default()
        };
        if flags & F_TS != 0 {
            rec.timestamp_ns = Some(i64::from_le_bytes(r.arr::<8>("truncated timestamp")?));
            if flags & F_TS_RFC3339 != 0 {
                rec.timestamp_format = TimestampFormat::Rfc3339;
            }
        }
        if flags & F_TYPE != 0 {
            let n = u16::from_le_bytes(r.arr::<2>("truncated type length")?) as usize;
            rec.event_type = Some(r.string(n, "truncated type")?);
        }
        if flags & F_SOURCE != 0 {
            let n = u16::from_le_bytes(r.arr::<2>("truncated source length")?) as usize;
            rec.source = Some(r.string(n, "truncated source")?);
        }
        if flags & F_VECTOR != 0 {
            let dim = u32::from_le_bytes(r.arr::<4>("truncated vector dimension")?) as usize;
            let bytes = r.take(dim.saturating_mul(4), "truncated vector")?;
            rec.vector = Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            );
        }
        if flags & F_PAYLOAD != 0 {
            let n = u32::from_le_bytes(r.arr::<4>("truncated payload length")?) as usize;
            rec.payload = Some(r.string(n, "truncated payload")?);
        }
        Op::Put(rec)
    };
    if r.pos != body.len() {
        return Err(CoreError::Decode {
            offset: r.pos,
            reason: "trailing bytes after entry",
        });
    }
    Ok(Entry { seq, op })
}

/// Decodes only the sequence number, id and tombstone flag of an entry, without touching the
/// rest (for flush, compaction and indexes that need no payload). Checks only what it reads.
pub fn decode_key(body: &[u8]) -> Result<(SeqNo, Id, bool)> {
    let mut r = Reader { buf: body, pos: 0 };
    let seq = u64::from_le_bytes(r.arr::<8>("truncated sequence number")?);
    let flags = r.u8("truncated flags")?;
    let id = r.id()?;
    Ok((seq, id, flags & F_TOMBSTONE != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = Id> {
        prop_oneof![
            any::<u64>().prop_map(Id::U64),
            "[a-z0-9-]{1,40}".prop_map(Id::Str)
        ]
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let rec = (
            arb_id(),
            proptest::option::of(any::<i64>()),
            any::<bool>(),
            proptest::option::of("[a-z]{0,10}"),
            proptest::option::of("[a-z]{0,10}"),
            proptest::option::of(proptest::collection::vec(-1e6f32..1e6, 0..20)),
            proptest::option::of("\\{\"k\":[0-9]{1,5}\\}"),
        )
            .prop_map(|(id, ts, rfc, t, s, v, p)| {
                Op::Put(Record {
                    id: Some(id),
                    timestamp_format: if rfc && ts.is_some() {
                        TimestampFormat::Rfc3339
                    } else {
                        TimestampFormat::Nanos
                    },
                    timestamp_ns: ts,
                    event_type: t,
                    source: s,
                    vector: v,
                    payload: p,
                })
            });
        prop_oneof![rec, arb_id().prop_map(Op::Delete)]
    }

    proptest! {
        #[test]
        fn roundtrip(op in arb_op(), seq in any::<u64>()) {
            let e = Entry { seq, op };
            let b = encode_entry(&e).unwrap();
            prop_assert_eq!(peek_seq(&b).unwrap(), seq);
            prop_assert_eq!(decode_entry(&b).unwrap(), e);
        }

        #[test]
        fn key_agrees_with_full_decode(op in arb_op(), seq in any::<u64>()) {
            let e = Entry { seq, op };
            let b = encode_entry(&e).unwrap();
            let (s, id, tomb) = decode_key(&b).unwrap();
            prop_assert_eq!(s, seq);
            prop_assert_eq!(&id, e.op.id().unwrap());
            prop_assert_eq!(tomb, matches!(e.op, Op::Delete(_)));
        }

        #[test]
        fn never_panics_on_garbage(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_entry(&b);
        }

        #[test]
        fn every_truncation_is_an_error(op in arb_op()) {
            let b = encode_entry(&Entry { seq: 7, op }).unwrap();
            for n in 0..b.len() {
                prop_assert!(decode_entry(&b[..n]).is_err());
            }
        }
    }
}
