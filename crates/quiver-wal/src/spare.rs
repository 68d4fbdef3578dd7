//! The spare file: with `preallocate`, the next WAL file is zero-filled and synced on a
//! background thread under the name [`SPARE`], and a rotation only renames it, writes the header
//! and syncs, instead of writing `file_size` zeros while every writer waits.

use crate::storage::Storage;
use crate::wal::Wal;
use parking_lot::Mutex;
use std::thread::JoinHandle;

/// Name of the prepared spare (not a `.log` name, so recovery never reads it).
pub const SPARE: &str = "next.spare";

/// The background job preparing the spare; `true` once it is zero-filled and synced.
#[derive(Default)]
pub(crate) struct SpareSlot(Mutex<Option<JoinHandle<bool>>>);

impl SpareSlot {
    /// Waits for a running preparation.
    pub fn join(&self) {
        if let Some(h) = self.0.lock().take() {
            let _ = h.join();
        }
    }
}

impl Wal {
    /// Starts preparing a spare (only with `preallocate`). If the thread cannot be spawned,
    /// the next rotation preallocates inline.
    pub(crate) fn start_spare(&self) {
        if !self.config.preallocate {
            return;
        }
        let storage = self.storage.clone();
        let size = self.config.file_size;
        let spawned = std::thread::Builder::new()
            .name("quiver-wal-spare".into())
            .spawn(move || prepare(&*storage, size));
        if let Ok(h) = spawned {
            *self.spare.0.lock() = Some(h);
        }
    }

    /// Waits for the spare and renames it to `name`. `false`: no spare, create `name` inline.
    pub(crate) fn take_spare(&self, name: &str) -> bool {
        let Some(h) = self.spare.0.lock().take() else {
            return false;
        };
        matches!(h.join(), Ok(true)) && self.storage.rename(SPARE, name).is_ok()
    }
}

/// Replaces any stale spare with a fresh zero-filled, synced one.
fn prepare(storage: &dyn Storage, size: u64) -> bool {
    let stale = storage.list().map(|names| names.iter().any(|n| n == SPARE));
    match stale {
        Ok(true) => {
            if storage.remove(SPARE).is_err() {
                return false;
            }
        }
        Ok(false) => {}
        Err(_) => return false,
    }
    let Ok(mut h) = storage.open_append(SPARE) else {
        return false;
    };
    h.preallocate(size).is_ok() && h.sync_data().is_ok()
}
