//! Full verification of a segment file.

use crate::{format::Cur, iter::BlockRows, reader::corrupt, Result, Segment};
use quiver_core::Id;

/// One id-index entry: the id's newest seq, its block and its row within the block.
type IndexEntry = (u64, u32, u32);

impl Segment {
    /// Checks the id index, one id-index block in memory at a time: every block's checksum,
    /// entries that parse and fill their block exactly, keys strictly increasing, and every
    /// entry pointing inside the data (a block and row that exist, a seq within that block's
    /// range), and the bloom filter holding every indexed id. This is what `quiver verify`
    /// checks, in memory independent of the segment's size; [`Segment::verify`] also matches
    /// every entry against the row it points at.
    pub fn check_id_index(&self) -> Result<()> {
        self.walk_id_index(&mut |_, _| {})
    }

    /// Walks the id index in key order with the checks of [`Segment::check_id_index`].
    fn walk_id_index(&self, visit: &mut dyn FnMut(Id, IndexEntry)) -> Result<()> {
        let mut prev: Option<Id> = None;
        let mut hashes: Vec<(u64, u64)> = Vec::new();
        for d in &self.dir {
            let b = self.read_index_block(d)?;
            let mut c = Cur::new(&b);
            let bad =
                |p: usize| corrupt(&self.path, d.offset + p as u64, "malformed id index entry");
            for n in 0..d.count {
                let at = d.offset + c.pos as u64;
                let key = c.key().map_err(bad)?;
                let entry @ (seq, block, pos) = (
                    c.u64().map_err(bad)?,
                    c.u32().map_err(bad)?,
                    c.u32().map_err(bad)?,
                );
                if (n == 0 && key != d.first) || prev.as_ref().is_some_and(|p| *p >= key) {
                    return Err(corrupt(
                        &self.path,
                        at,
                        format!("id index key {key} out of order"),
                    ));
                }
                let inside = self
                    .blocks
                    .get(block as usize)
                    .is_some_and(|h| pos < h.rows && (h.min_seq..=h.max_seq).contains(&seq));
                if !inside {
                    return Err(corrupt(
                        &self.path,
                        at,
                        format!(
                            "id index entry for {key} points outside the data (seq {seq}, block {block}, row {pos})"
                        ),
                    ));
                }
                hashes.push((crate::bloom::hash_id(&key), at));
                prev = Some(key.clone());
                visit(key, entry);
            }
            if !c.is_empty() {
                return Err(corrupt(
                    &self.path,
                    d.offset + c.pos as u64,
                    "bytes after the last id index entry",
                ));
            }
            // `get` asks the bloom filter first: an id it denies is never looked up.
            let keys: Vec<u64> = hashes.iter().map(|&(h, _)| h).collect();
            if let Some(i) = self.bloom.first_missing(&keys) {
                return Err(corrupt(
                    &self.path,
                    hashes[i].1,
                    "the bloom filter denies an id that the id index holds",
                ));
            }
            hashes.clear();
        }
        Ok(())
    }

    /// Reads and checks the whole file: every data block and row (each decoded whole), and
    /// every id-index entry
    /// (the checks of [`Segment::check_id_index`], and each entry pointing at a row with that
    /// id and seq, that seq being the id's newest in the segment). Costs a full read of the
    /// file and memory proportional to the number of distinct ids.
    pub fn verify(&self) -> Result<()> {
        let mut index: std::collections::HashMap<Id, IndexEntry> = std::collections::HashMap::new();
        self.walk_id_index(&mut |key, entry| {
            index.insert(key, entry);
        })?;
        let mut rows = 0u64;
        let mut matched = 0u64;
        for block in 0..self.blocks.len() {
            let raw = self.read_block(block)?;
            let mut it = BlockRows::new(self, block, &raw);
            let mut pos = 0u32;
            while let Some(body) = it.next_row()? {
                let off = self.blocks[block].offset;
                let undecodable = |e: &dyn std::fmt::Display| {
                    corrupt(
                        &self.path,
                        off,
                        format!("row {pos} of block {block} does not decode: {e}"),
                    )
                };
                let head = crate::rowkey::parse_head(body).map_err(|e| undecodable(&e))?;
                // The whole row, not only its key: payload, vector and all.
                quiver_core::codec::decode_entry(body).map_err(|e| undecodable(&e))?;
                let id = head.id.to_id();
                match index.get(&id) {
                    Some(&(seq, b, p)) if seq == head.seq && (b as usize, p) == (block, pos) => {
                        matched += 1
                    }
                    Some(&(seq, _, _)) if seq > head.seq => {}
                    other => {
                        return Err(corrupt(
                            &self.path,
                            off,
                            format!(
                                "row {pos} of block {block} (id {id}, seq {}) disagrees with the id index entry {other:?}",
                                head.seq
                            ),
                        ));
                    }
                }
                pos += 1;
                rows += 1;
            }
        }
        if rows != self.meta().rows || matched != index.len() as u64 {
            return Err(corrupt(
                &self.path,
                0,
                format!(
                    "read {rows} rows (footer {}), {matched} of {} id index entries point at their rows",
                    self.meta().rows, index.len()
                ),
            ));
        }
        Ok(())
    }
}
