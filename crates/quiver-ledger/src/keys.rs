//! The node's Ed25519 signing key: `<keys_dir>/node.ed25519`, created on first open, mode 0600.
//!
//! Layout (80 bytes, little-endian; `docs/format/ledger.md`):
//! magic `QVEDKEY1` (8) | version u16 = 1 | key type u16 = 1 (Ed25519) | secret seed (32) |
//! public key (32) | crc32c of the previous 76 bytes (u32).
//!
//! The secret never appears in `Debug` output, logs or errors.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::error::{LedgerError, Result};

/// File name of the node key inside the keys directory.
pub const KEY_FILE: &str = "node.ed25519";
const MAGIC: &[u8; 8] = b"QVEDKEY1";
const VERSION: u16 = 1;
const KEY_TYPE_ED25519: u16 = 1;
const LEN: usize = 80;

fn key_err(file: &Path, reason: impl Into<String>) -> LedgerError {
    LedgerError::Key {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

fn encode(key: &SigningKey) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&VERSION.to_le_bytes());
    b[10..12].copy_from_slice(&KEY_TYPE_ED25519.to_le_bytes());
    b[12..44].copy_from_slice(key.as_bytes());
    b[44..76].copy_from_slice(key.verifying_key().as_bytes());
    let crc = crc32c::crc32c(&b[..76]);
    b[76..80].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(file: &Path, b: &[u8]) -> Result<SigningKey> {
    if b.len() != LEN {
        return Err(key_err(
            file,
            format!("expected {LEN} bytes, found {}", b.len()),
        ));
    }
    if &b[..8] != MAGIC {
        return Err(key_err(file, "bad magic: not a quiver node key"));
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    let ty = u16::from_le_bytes([b[10], b[11]]);
    if version != VERSION || ty != KEY_TYPE_ED25519 {
        return Err(key_err(
            file,
            format!("unsupported version {version} / key type {ty}"),
        ));
    }
    let stored = u32::from_le_bytes([b[76], b[77], b[78], b[79]]);
    let got = crc32c::crc32c(&b[..76]);
    if stored != got {
        return Err(LedgerError::Checksum {
            file: file.to_path_buf(),
            offset: 76,
            expected: stored,
            got,
        });
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&b[12..44]);
    let key = SigningKey::from_bytes(&seed);
    if key.verifying_key().as_bytes()[..] != b[44..76] {
        return Err(key_err(file, "stored public key does not match the secret"));
    }
    Ok(key)
}

/// Path of the key file in `keys_dir`.
pub fn key_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join(KEY_FILE)
}

/// Loads the key, failing if it is missing.
pub(crate) fn load(keys_dir: &Path) -> Result<SigningKey> {
    let path = key_path(keys_dir);
    let f = File::open(&path).map_err(|e| LedgerError::io(&path, e))?;
    let mut buf = Vec::with_capacity(LEN);
    f.take(LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| LedgerError::io(&path, e))?;
    decode(&path, &buf)
}

/// Loads the key, creating it (mode 0600, fsynced, atomically renamed into place) if missing.
pub(crate) fn load_or_create(keys_dir: &Path) -> Result<SigningKey> {
    let path = key_path(keys_dir);
    if path.exists() {
        return load(keys_dir);
    }
    crate::store::create_dir_durable(keys_dir)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let tmp = keys_dir.join(format!("{KEY_FILE}.tmp"));
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| LedgerError::io(&tmp, e))?;
    #[cfg(unix)]
    {
        // The mode passed to open is masked by the umask; set it explicitly.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| LedgerError::io(&tmp, e))?;
    }
    f.write_all(&encode(&key))
        .and_then(|()| f.sync_all())
        .map_err(|e| LedgerError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| LedgerError::io(&path, e))?;
    crate::store::sync_dir(keys_dir)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_corruption() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let b = encode(&key);
        let p = Path::new("k");
        assert_eq!(
            decode(p, &b).ok().map(|k| k.to_bytes()),
            Some(key.to_bytes())
        );
        for i in [0usize, 9, 20, 50, 79] {
            let mut c = b;
            c[i] ^= 1;
            assert!(decode(p, &c).is_err(), "flip at {i}");
        }
        assert!(decode(p, &b[..40]).is_err());
    }
}
