//! `ledger.meta`: the hash algorithm and origin, fixed when the ledger is created.

use std::fs;
use std::path::Path;

use crate::error::{LedgerError, Result};
use crate::framed::FramedLog;
use crate::hash::HashAlg;

pub(crate) const META_FILE: &str = "ledger.meta";
const META_MAGIC: &[u8; 8] = b"QVLGMETA";

pub(crate) fn read_meta(path: &Path) -> Result<Option<(HashAlg, String)>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut meta = None;
    let mut each = |off: u64, b: &[u8]| {
        let alg = b
            .first()
            .and_then(|c| HashAlg::from_code(*c))
            .ok_or_else(|| LedgerError::corrupt(path, off, "unknown hash algorithm code"))?;
        let origin = std::str::from_utf8(&b[1..])
            .map_err(|_| LedgerError::corrupt(path, off, "origin is not UTF-8"))?;
        meta = Some((alg, origin.to_string()));
        Ok(())
    };
    // Read-only: the file is only ever replaced whole (temp file and
    // rename), never appended to, so there is no torn tail to cut, and a damaged one must be
    // reported, not rewritten.
    FramedLog::open(path, META_MAGIC, true, &mut each)?;
    match meta {
        Some(m) => Ok(Some(m)),
        None => Err(LedgerError::corrupt(path, 0, "no metadata record")),
    }
}

pub(crate) fn write_meta(dir: &Path, alg: HashAlg, origin: &str) -> Result<()> {
    let tmp = dir.join(format!("{META_FILE}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut none = |_: u64, _: &[u8]| Ok(());
    let mut log = FramedLog::open(&tmp, META_MAGIC, false, &mut none)?;
    let mut body = vec![alg.code()];
    body.extend_from_slice(origin.as_bytes());
    log.append(&body)?;
    log.sync()?;
    drop(log);
    let path = dir.join(META_FILE);
    fs::rename(&tmp, &path).map_err(|e| LedgerError::io(&path, e))?;
    crate::store::sync_dir(dir)
}
