//! The one `unsafe` site of the crate: read-only memory maps of node files.

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

/// Maps the first `len` bytes of `file` read-only.
///
/// Only the writable ledger maps its node files. It only ever appends past the mapped range,
/// and drops every map before it shrinks a file (`TreeStore::truncate_level`), so mapped bytes
/// never change or disappear while mapped. Read-only openers (CLI tools) use `pread` instead.
#[expect(
    unsafe_code,
    reason = "memory-mapping an append-only node file for µs-scale proof reads"
)]
pub(crate) fn map_prefix(file: &File, len: u64) -> std::io::Result<Mmap> {
    // SAFETY: the mapped range [0, len) lies inside the file (len <= file length when called),
    // this process never writes into or truncates that range while the map is alive (appends go
    // past it; truncation drops the map first), and the data directory is owned by one writer
    // process. The bytes are only read through `&[u8]`.
    unsafe { MmapOptions::new().len(len as usize).map(file) }
}
