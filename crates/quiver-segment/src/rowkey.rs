//! Partial decoding of an encoded entry: sequence number, flags, id and timestamp only,
//! without copying the payload. Agrees with `quiver_core::codec` (checked by tests).

use quiver_core::{CoreError, Id, SeqNo};

const F_TOMBSTONE: u8 = 1;
const F_TS: u8 = 1 << 1;
const F_UNKNOWN: u8 = 0x80;

/// An id borrowed from an encoded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdRef<'a> {
    U64(u64),
    Str(&'a str),
}

impl<'a> From<&'a Id> for IdRef<'a> {
    fn from(id: &'a Id) -> Self {
        match id {
            Id::U64(v) => IdRef::U64(*v),
            Id::Str(s) => IdRef::Str(s),
        }
    }
}

impl IdRef<'_> {
    pub(crate) fn to_id(self) -> Id {
        match self {
            IdRef::U64(v) => Id::U64(v),
            IdRef::Str(s) => Id::Str(s.to_owned()),
        }
    }

    pub(crate) fn matches(self, id: &Id) -> bool {
        match (self, id) {
            (IdRef::U64(a), Id::U64(b)) => a == *b,
            (IdRef::Str(a), Id::Str(b)) => a == b,
            _ => false,
        }
    }
}

/// The leading fields of an encoded entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowHead<'a> {
    pub seq: SeqNo,
    pub id: IdRef<'a>,
    pub ts: Option<i64>,
}

fn err(offset: usize, reason: &'static str) -> CoreError {
    CoreError::Decode { offset, reason }
}

fn arr<const N: usize>(b: &[u8], at: usize, what: &'static str) -> Result<[u8; N], CoreError> {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or(err(at, what))
}

/// Decodes the sequence number, id, timestamp and tombstone flag of an encoded entry.
/// Never panics.
/// The event timestamp of an encoded entry, if it has one: what [`parse_head`] would return
/// as `ts`, without decoding (or UTF-8 checking) the id. For checks on every row of a block.
pub(crate) fn peek_ts(b: &[u8]) -> Result<Option<i64>, CoreError> {
    let flags = *b.get(8).ok_or(err(8, "truncated flags"))?;
    if flags & F_TS == 0 {
        return Ok(None);
    }
    let at = match *b.get(9).ok_or(err(9, "truncated id tag"))? {
        0 => 18,
        1 => 14 + u32::from_le_bytes(arr::<4>(b, 10, "truncated id length")?) as usize,
        _ => return Err(err(9, "unknown id tag")),
    };
    Ok(Some(i64::from_le_bytes(arr::<8>(
        b,
        at,
        "truncated timestamp",
    )?)))
}

pub(crate) fn parse_head(b: &[u8]) -> Result<RowHead<'_>, CoreError> {
    let seq = u64::from_le_bytes(arr::<8>(b, 0, "truncated sequence number")?);
    let flags = *b.get(8).ok_or(err(8, "truncated flags"))?;
    if flags & F_UNKNOWN != 0 {
        return Err(err(8, "unknown flag bits"));
    }
    if flags & F_TOMBSTONE != 0 && flags != F_TOMBSTONE {
        return Err(err(8, "tombstone with record fields"));
    }
    let tag = *b.get(9).ok_or(err(9, "truncated id tag"))?;
    let (id, mut pos) = match tag {
        0 => (
            IdRef::U64(u64::from_le_bytes(arr::<8>(b, 10, "truncated u64 id")?)),
            18,
        ),
        1 => {
            let n = u32::from_le_bytes(arr::<4>(b, 10, "truncated id length")?) as usize;
            let bytes = 14usize
                .checked_add(n)
                .and_then(|end| b.get(14..end))
                .ok_or(err(14, "truncated string id"))?;
            let s = std::str::from_utf8(bytes).map_err(|_| err(14, "invalid UTF-8"))?;
            (IdRef::Str(s), 14 + n)
        }
        _ => return Err(err(9, "unknown id tag")),
    };
    let ts = if flags & F_TS != 0 {
        let t = i64::from_le_bytes(arr::<8>(b, pos, "truncated timestamp")?);
        pos += 8;
        Some(t)
    } else {
        None
    };
    let _ = pos;
    Ok(RowHead { seq, id, ts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::{codec, Entry, Op, Record};

    #[test]
    fn agrees_with_core_codec() {
        let ops = [
            Op::Put(Record::new(7u64)),
            Op::Put(
                Record::new("abc")
                    .with_timestamp(-5)
                    .with_type("t")
                    .with_payload(&1.into()),
            ),
            Op::Delete(Id::from("gone")),
            Op::Delete(Id::U64(u64::MAX)),
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let e = Entry {
                seq: 100 + i as u64,
                op,
            };
            let b = codec::encode_entry(&e).unwrap();
            let h = parse_head(&b).unwrap();
            assert_eq!(h.seq, e.seq);
            assert_eq!(h.id.to_id(), *e.op.id().unwrap());
            let ts = match &e.op {
                Op::Put(r) => r.timestamp_ns,
                Op::Delete(_) => None,
            };
            assert_eq!(h.ts, ts);
            assert_eq!(peek_ts(&b).unwrap(), ts);
        }
    }

    #[test]
    fn truncations_are_errors() {
        let b = codec::encode_entry(&Entry {
            seq: 1,
            op: Op::Put(Record::new("key").with_timestamp(9)),
        })
        .unwrap();
        // Everything up to and including the timestamp is needed.
        let need = 8 + 1 + 1 + 4 + 3 + 8;
        for n in 0..need {
            assert!(parse_head(&b[..n]).is_err(), "prefix of {n} bytes parsed");
            assert!(peek_ts(&b[..n]).is_err(), "prefix of {n} bytes peeked");
        }
        assert!(parse_head(&b[..need]).is_ok());
    }
}
