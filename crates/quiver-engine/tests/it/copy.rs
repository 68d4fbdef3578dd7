//! Copying a data directory, shared with the `fuzz_readers` test binary.

use std::path::Path;

/// Copies the directory tree `from` to `to`: a crashed process's data directory opened
/// elsewhere while that process (the test) still holds its lock, or a fixture to damage.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}
