//! The writer's id-index entries, kept compact: 24 bytes per row for u64 ids, 32 bytes plus
//! the string for string ids (instead of 40 with a general `Id`), so that compacting
//! millions of rows stays small.

use crate::rowkey::IdRef;
use quiver_core::SeqNo;

#[derive(Debug, Clone, Copy)]
struct U64Key {
    id: u64,
    seq: SeqNo,
    block: u32,
    pos: u32,
}

#[derive(Debug)]
struct StrKey {
    id: Box<str>,
    seq: SeqNo,
    block: u32,
    pos: u32,
}

/// Collects (id, seq, block, position) per row; [`KeyCollector::finish`] keeps the newest
/// row of each id, in `Id` order (all u64 ids, ascending, then all string ids, bytewise).
#[derive(Debug, Default)]
pub(crate) struct KeyCollector {
    u64s: Vec<U64Key>,
    strs: Vec<StrKey>,
}

impl KeyCollector {
    pub fn push(&mut self, id: IdRef<'_>, seq: SeqNo, block: u32, pos: u32) {
        match id {
            IdRef::U64(id) => self.u64s.push(U64Key {
                id,
                seq,
                block,
                pos,
            }),
            IdRef::Str(s) => self.strs.push(StrKey {
                id: s.into(),
                seq,
                block,
                pos,
            }),
        }
    }

    /// Sorts by id, newest first within an id, and drops older versions.
    ///
    /// Rows arrive in seq order, and ids very often rise with seq (counters, clients that
    /// number their events, batches claimed from one counter), so the u64 keys are mostly
    /// long ascending runs: the stable sort finds and merges runs (one pass when already
    /// sorted) where the unstable one would partition. (id, seq) pairs are unique, so both
    /// give the same order.
    pub fn finish(&mut self) {
        self.u64s
            .sort_by(|a, b| a.id.cmp(&b.id).then(b.seq.cmp(&a.seq)));
        self.u64s.dedup_by(|later, first| later.id == first.id);
        self.strs
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then(b.seq.cmp(&a.seq)));
        self.strs.dedup_by(|later, first| later.id == first.id);
    }

    /// Number of entries (distinct ids once finished).
    pub fn len(&self) -> usize {
        self.u64s.len() + self.strs.len()
    }

    /// Visits the entries in order: (id, seq, block, position).
    pub fn iter(&self) -> impl Iterator<Item = (IdRef<'_>, SeqNo, u32, u32)> + '_ {
        let u = self
            .u64s
            .iter()
            .map(|k| (IdRef::U64(k.id), k.seq, k.block, k.pos));
        let s = self
            .strs
            .iter()
            .map(|k| (IdRef::Str(&k.id), k.seq, k.block, k.pos));
        u.chain(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::Id;

    #[test]
    fn newest_per_id_in_id_order() {
        let mut k = KeyCollector::default();
        k.push(IdRef::Str("b"), 1, 0, 0);
        k.push(IdRef::U64(9), 2, 0, 1);
        k.push(IdRef::Str("a"), 3, 0, 2);
        k.push(IdRef::U64(9), 4, 1, 0);
        k.push(IdRef::U64(1), 5, 1, 1);
        k.push(IdRef::Str("b"), 6, 1, 2);
        k.finish();
        let got: Vec<(Id, SeqNo, u32, u32)> =
            k.iter().map(|(i, s, b, p)| (i.to_id(), s, b, p)).collect();
        let want = vec![
            (Id::U64(1), 5, 1, 1),
            (Id::U64(9), 4, 1, 0),
            (Id::from("a"), 3, 0, 2),
            (Id::from("b"), 6, 1, 2),
        ];
        assert_eq!(got, want);
        let mut sorted = want.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(sorted, want, "collector order must equal Id order");
        assert_eq!(k.len(), 4);
    }
}
