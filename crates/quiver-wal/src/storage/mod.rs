//! The small storage seam under the WAL: a real directory ([`FsStorage`]), an in-memory one
//! that can produce crash images ([`MemStorage`]), and a fault injector ([`FaultyStorage`]).

mod faulty;
mod fs;
mod mem;

pub use faulty::{FaultPlan, FaultyStorage};
pub use fs::FsStorage;
pub use mem::MemStorage;

use crate::error::Result;

/// A flat directory of WAL files.
pub trait Storage: Send + Sync + 'static {
    /// Names of the files in the directory (any order).
    fn list(&self) -> Result<Vec<String>>;
    /// Opens `name` for writing at explicit offsets, creating it (empty) if missing.
    /// The creation is durable only after [`Storage::sync_dir`].
    fn open_append(&self, name: &str) -> Result<Box<dyn WalFile>>;
    /// Reads the whole file.
    fn read_all(&self, name: &str) -> Result<Vec<u8>>;
    /// Deletes a file (durable after [`Storage::sync_dir`]).
    fn remove(&self, name: &str) -> Result<()>;
    /// Makes creations and removals of files durable (fsync of the directory).
    fn sync_dir(&self) -> Result<()>;
    /// Cuts a file to `len` bytes and makes the new length durable.
    fn truncate(&self, name: &str, len: u64) -> Result<()>;
    /// Opens an existing file for writes that are durable when they return (`O_DSYNC`), so a
    /// commit needs no separate fdatasync. `Ok(None)` where the backend has no such mode (the
    /// WAL then fdatasyncs after each write as usual).
    fn open_dsync(&self, name: &str) -> Result<Option<Box<dyn WalFile>>> {
        let _ = name;
        Ok(None)
    }

    /// Opens an existing file for direct, synchronous appends (`O_DIRECT | O_DSYNC`): each
    /// write goes straight to the device and is durable when it returns. `Ok(None)` where the
    /// backend or file system has no such mode (older tmpfs); the WAL then uses
    /// [`Storage::open_dsync`] or `fdatasync` as configured.
    fn open_direct(&self, name: &str) -> Result<Option<Box<dyn WalFile>>> {
        let _ = name;
        Ok(None)
    }

    /// Atomically renames `from` to `to` (durable after [`Storage::sync_dir`]). Used to put a
    /// background-preallocated spare file in place; the default reports it unsupported, and
    /// the WAL then preallocates new files inline.
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let _ = to;
        Err(crate::WalError::io(
            "rename",
            from,
            std::io::Error::from(std::io::ErrorKind::Unsupported),
        ))
    }
}

/// An open WAL file.
pub trait WalFile: Send {
    /// Writes all of `buf` at byte `off` (one `pwrite(2)` loop; no user-space buffering).
    fn write_all_at(&mut self, off: u64, buf: &[u8]) -> std::io::Result<()>;
    /// Makes the written data durable (`fdatasync(2)`).
    fn sync_data(&mut self) -> std::io::Result<()>;
    /// Extends the file with zeros to at least `len` bytes, with the blocks really allocated and
    /// written, so later overwrites followed by `fdatasync` need no metadata update.
    /// Durable after [`WalFile::sync_data`].
    fn preallocate(&mut self, len: u64) -> std::io::Result<()>;
    /// Starts writing `len` bytes at `off` back to the device without waiting for them
    /// (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux): a hint that keeps a later
    /// [`WalFile::sync_data`] short. Makes nothing durable; the default does nothing.
    fn start_writeback(&mut self, off: u64, len: u64) -> std::io::Result<()> {
        let _ = (off, len);
        Ok(())
    }
}
