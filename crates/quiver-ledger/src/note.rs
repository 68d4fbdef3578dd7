//! C2SP signed-note checkpoints (tlog-checkpoint + signed-note, Ed25519 signature type 0x01).
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <base64 root hash>\n
//! hash <blake3|sha256>\n          (extension line)
//! timestamp <unix milliseconds>\n  (extension line)
//! \n
//! — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n
//! ```
//!
//! The signature covers the note body (every line above the blank line, each with its `\n`).
//! The key id is the first 4 bytes of `SHA-256(name || "\n" || 0x01 || public key)`. See
//! `docs/format/checkpoint.md`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{LedgerError, Result};
use crate::hash::{Hash, HashAlg};

/// Signature-line prefix: U+2014 EM DASH then a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Signed-note signature type for Ed25519.
const ED25519_TYPE: u8 = 0x01;

/// An unsigned checkpoint: a signed tree head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Log origin (the database id); also the signing key's name.
    pub origin: String,
    /// Tree size (number of leaves).
    pub size: u64,
    /// Root hash of the tree of `size` leaves.
    pub root: Hash,
    /// Hash algorithm of the tree.
    pub alg: HashAlg,
    /// Signing time, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// A checkpoint with its signed-note text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// The parsed contents.
    pub checkpoint: Checkpoint,
    /// The full signed note, as stored and as served to verifiers.
    pub note: String,
}

/// Checks that `name` can be a signed-note key name and checkpoint origin.
pub fn validate_origin(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LedgerError::Malformed {
            what: "origin",
            reason: format!(
                "{name:?} must be 1..=255 bytes without whitespace, control characters or '+'"
            ),
        });
    }
    Ok(())
}

/// Signed-note key id for an Ed25519 key: first 4 bytes of `SHA-256(name || "\n" || 0x01 || pk)`.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_TYPE]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The signed-note verifier key string `<name>+<hex key id>+<base64(0x01 || pk)>`.
pub fn vkey(name: &str, key: &VerifyingKey) -> String {
    let mut raw = vec![ED25519_TYPE];
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, key)),
        B64.encode(raw)
    )
}

/// A parsed and validated signed-note verifier key (`<name>+<hex key id>+<base64(0x01 || pk)>`).
///
/// Parsing checks everything [c2sp.org/signed-note](https://c2sp.org/signed-note) and Go's
/// `note.NewVerifier` check: a valid key name, an 8-hex-digit key id, an Ed25519 (type 0x01)
/// key of 32 bytes, and a key id equal to [`key_id`] of the name and key. A note is then only
/// accepted through a signature line with exactly this name and key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NoteVerifier {
    /// Key name (for quiver: the log origin).
    pub(crate) name: String,
    /// The key id given in the vkey (checked against name and key).
    pub(crate) id: [u8; 4],
    /// The Ed25519 public key.
    pub(crate) key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses and validates a vkey string.
    pub(crate) fn parse(vkey: &str) -> Result<NoteVerifier> {
        let bad = |reason: String| LedgerError::Malformed {
            what: "vkey",
            reason,
        };
        let shape =
            "a vkey must be <name>+<8 hex digit key id>+<base64 of 0x01 and the 32 key bytes>";
        let (name, rest) = vkey
            .split_once('+')
            .ok_or_else(|| bad(format!("no '+' in {vkey:?}; {shape}")))?;
        let (id_hex, b64) = rest
            .split_once('+')
            .ok_or_else(|| bad(format!("only one '+' in {vkey:?}; {shape}")))?;
        validate_origin(name).map_err(|_| {
            bad(format!(
                "key name {name:?} must be 1..=255 bytes without whitespace, control characters or '+'"
            ))
        })?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "key id {id_hex:?} is not 8 hex digits; {shape}"
            )));
        }
        let mut id = [0u8; 4];
        hex::decode_to_slice(id_hex, &mut id)
            .map_err(|e| bad(format!("key id {id_hex:?}: {e}")))?;
        let raw = B64
            .decode(b64)
            .map_err(|e| bad(format!("key is not standard base64: {e}")))?;
        let pk = match raw.split_first() {
            Some((&ED25519_TYPE, pk)) => pk,
            Some((t, _)) => {
                return Err(bad(format!(
                    "key type {t:#04x} is not supported (only Ed25519, 0x01)"
                )))
            }
            None => return Err(bad("empty key".into())),
        };
        let arr: [u8; 32] = pk.try_into().map_err(|_| {
            bad(format!(
                "an Ed25519 key has 32 bytes after the type byte, got {}",
                pk.len()
            ))
        })?;
        let key = VerifyingKey::from_bytes(&arr)
            .map_err(|e| bad(format!("not a valid Ed25519 point: {e}")))?;
        let want = key_id(name, &key);
        if id != want {
            return Err(LedgerError::Malformed {
                what: "vkey key id",
                reason: format!(
                    "key id {id_hex} does not match the name {name:?} and the key (their key id \
                     is {}): wrong name, key id or key",
                    hex::encode(want)
                ),
            });
        }
        Ok(NoteVerifier {
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Opens `note` with this key: only a signature line with this key's name and key id counts
    /// (Go's `note.Open` with this verifier). Returns the note text.
    pub(crate) fn open<'a>(&self, note: &'a str) -> Result<&'a str> {
        open_note(&self.key, &self.name, note)
    }

    /// Verifies a checkpoint against this key: the checkpoint's origin must be the key name
    /// (quiver signs every checkpoint under the name = origin) and the note must carry a valid
    /// signature line with this key's name and key id.
    pub(crate) fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint> {
        let cp = verify_checkpoint(&self.key, note)?;
        if cp.origin != self.name {
            return Err(LedgerError::BadSignature {
                what: "checkpoint",
                reason: format!(
                    "checkpoint of origin {:?} is not signed by the key named {:?} (vkey {}+{})",
                    cp.origin,
                    self.name,
                    self.name,
                    hex::encode(self.id)
                ),
            });
        }
        self.open(note)?;
        Ok(cp)
    }
}

/// True when `s` (trimmed) is to be read as a vkey rather than as a bare key: it contains '+'
/// and is not exactly the 44 characters of a base64-encoded 32-byte key (which may contain
/// '+'; a vkey is always longer).
pub(crate) fn is_vkey(s: &str) -> bool {
    let s = s.trim();
    s.contains('+') && s.len() != 44
}

/// Parses a public key given as a signed-note vkey, 64 hex digits or base64 of 32 bytes.
/// A vkey is fully validated (name, key id, key type and length; see [`NoteVerifier`]); its
/// name and key id are checked against the key but not returned here.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey> {
    let s = s.trim();
    if is_vkey(s) {
        return Ok(NoteVerifier::parse(s)?.key);
    }
    let bad = |reason: String| LedgerError::Malformed {
        what: "public key",
        reason,
    };
    let raw: Vec<u8> = if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(s).map_err(|e| bad(format!("bad hex: {e}")))?
    } else {
        B64.decode(s)
            .map_err(|e| bad(format!("not hex, base64 or a vkey: {e}")))?
    };
    let arr: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("expected 32 key bytes, got {}", raw.len())))?;
    VerifyingKey::from_bytes(&arr).map_err(|e| bad(format!("not a valid Ed25519 point: {e}")))
}

/// The note body that gets signed.
pub(crate) fn body(cp: &Checkpoint) -> String {
    format!(
        "{}\n{}\n{}\nhash {}\ntimestamp {}\n",
        cp.origin,
        cp.size,
        B64.encode(cp.root.0),
        cp.alg.name(),
        cp.timestamp_ms
    )
}

/// Signs `cp` with `key` (key name = origin) and returns the full note.
pub(crate) fn sign_checkpoint(key: &SigningKey, cp: &Checkpoint) -> SignedCheckpoint {
    SignedCheckpoint {
        checkpoint: cp.clone(),
        note: sign_note(key, &cp.origin, &body(cp)),
    }
}

/// Signs `text` (which must end with a newline) as a C2SP signed note by key `name`.
pub fn sign_note(key: &SigningKey, name: &str, text: &str) -> String {
    let sig = key.sign(text.as_bytes());
    let mut blob = key_id(name, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    format!("{text}\n{SIG_PREFIX}{name} {}\n", B64.encode(blob))
}

fn parse_decimal(s: &str) -> Result<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(LedgerError::note(format!(
            "{s:?} is not a canonical decimal"
        )));
    }
    s.parse()
        .map_err(|_| LedgerError::note(format!("{s:?} does not fit in u64")))
}

/// Parses a checkpoint body (without signatures).
pub(crate) fn parse_body(text: &str) -> Result<Checkpoint> {
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .ok_or_else(|| LedgerError::note("body must end with a newline"))?
        .split('\n')
        .collect();
    if lines.len() < 3 {
        return Err(LedgerError::note("need origin, size and root lines"));
    }
    let origin = lines[0].to_string();
    validate_origin(&origin).map_err(|e| LedgerError::note(e.to_string()))?;
    let size = parse_decimal(lines[1])?;
    let root_bytes = B64
        .decode(lines[2])
        .map_err(|e| LedgerError::note(format!("root is not base64: {e}")))?;
    let root = Hash::from_slice(&root_bytes).map_err(|e| LedgerError::note(e.to_string()))?;
    let (mut alg, mut ts) = (None, None);
    for ext in &lines[3..] {
        if ext.is_empty() {
            return Err(LedgerError::note("empty line inside the body"));
        }
        // Each extension once: a second line would leave readers to pick one.
        if let Some(v) = ext.strip_prefix("hash ") {
            let a = v
                .parse::<HashAlg>()
                .map_err(|e| LedgerError::note(e.to_string()))?;
            if alg.replace(a).is_some() {
                return Err(LedgerError::note("two `hash` extension lines"));
            }
        } else if let Some(v) = ext.strip_prefix("timestamp ") {
            if ts.replace(parse_decimal(v)?).is_some() {
                return Err(LedgerError::note("two `timestamp` extension lines"));
            }
        }
    }
    Ok(Checkpoint {
        origin,
        size,
        root,
        alg: alg.ok_or_else(|| LedgerError::note("missing `hash` extension line"))?,
        timestamp_ms: ts.ok_or_else(|| LedgerError::note("missing `timestamp` extension line"))?,
    })
}

/// Opens a C2SP signed note: checks that a signature line of key (`name`, `key`) is present
/// and verifies, and returns the note text (through its final newline). Lines of other keys
/// (other name or key id) are ignored, as the signed-note spec requires.
pub fn open_note<'a>(key: &VerifyingKey, name: &str, note: &'a str) -> Result<&'a str> {
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(LedgerError::note("control characters other than newline"));
    }
    // As Go's note.Open: the signature block follows the last blank line.
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| LedgerError::note("no blank line before the signatures"))?;
    let text = &note[..split + 1];
    let sigs = &note[split + 2..];
    if !sigs.ends_with('\n') {
        return Err(LedgerError::note("signature block must end with a newline"));
    }
    let want_id = key_id(name, key);
    for line in sigs.strip_suffix('\n').unwrap_or(sigs).split('\n') {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| LedgerError::note(format!("bad signature line {line:?}")))?;
        let (line_name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| LedgerError::note(format!("bad signature line {line:?}")))?;
        let blob = B64
            .decode(b64)
            .map_err(|e| LedgerError::note(format!("signature is not base64: {e}")))?;
        if line_name != name || blob.len() < 4 || blob[..4] != want_id {
            continue;
        }
        let sig = Signature::from_slice(&blob[4..]).map_err(|e| LedgerError::BadSignature {
            what: "checkpoint",
            reason: format!("malformed Ed25519 signature: {e}"),
        })?;
        return key
            .verify_strict(text.as_bytes(), &sig)
            .map(|()| text)
            .map_err(|e| LedgerError::BadSignature {
                what: "checkpoint",
                reason: format!("signature does not verify: {e}"),
            });
    }
    Err(LedgerError::BadSignature {
        what: "checkpoint",
        reason: "no signature by the trusted key (key id mismatch)".into(),
    })
}

/// Verifies a signed-note checkpoint against `key` (key name = the checkpoint's origin) and
/// returns its contents. Witness cosignatures and other keys' lines are ignored.
pub fn verify_checkpoint(key: &VerifyingKey, note: &str) -> Result<Checkpoint> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| LedgerError::note("no blank line before the signatures"))?;
    let cp = parse_body(&note[..split + 1])?;
    open_note(key, &cp.origin, note)?;
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "quiver.example/db1".into(),
            size: 42,
            root: Hash([7; 32]),
            alg: HashAlg::Sha256,
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = key(1);
        let s = sign_checkpoint(&k, &cp());
        assert!(s.note.contains("\n\n\u{2014} quiver.example/db1 "));
        let got = verify_checkpoint(&k.verifying_key(), &s.note);
        assert_eq!(got.ok(), Some(cp()));
    }

    #[test]
    fn wrong_key_and_tampered_body_rejected() {
        let k = key(1);
        let s = sign_checkpoint(&k, &cp());
        assert!(matches!(
            verify_checkpoint(&key(2).verifying_key(), &s.note),
            Err(LedgerError::BadSignature { .. })
        ));
        let tampered = s.note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            verify_checkpoint(&k.verifying_key(), &tampered),
            Err(LedgerError::BadSignature { .. })
        ));
    }

    /// A body that names its hash or timestamp twice is malformed, whichever value comes
    /// last.
    #[test]
    fn duplicated_extension_lines_are_refused() {
        let body = "quiver.example/db1\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        assert!(parse_body(&format!("{body}hash blake3\ntimestamp 5\n")).is_ok());
        for ext in [
            "hash blake3\nhash sha256\ntimestamp 5\n",
            "hash blake3\ntimestamp 5\ntimestamp 6\n",
            "hash sha256\nhash sha256\ntimestamp 5\n",
        ] {
            assert!(parse_body(&format!("{body}{ext}")).is_err(), "{ext:?}");
        }
    }

    #[test]
    fn garbage_notes_are_errors_not_panics() {
        let k = key(1).verifying_key();
        for text in [
            "",
            "\n\n",
            "a\n\n",
            "o\n01\nAAAA\n\n\u{2014} o AAAA\n",
            "o\n1\n!!!\n\n",
            "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhash sha256\ntimestamp 1\n\nnot a sig\n",
        ] {
            assert!(verify_checkpoint(&k, text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn foreign_signature_lines_are_ignored() {
        let k = key(1);
        let s = sign_checkpoint(&k, &cp());
        // A witness cosignature (another name and key) before ours changes nothing.
        let w = key(9);
        let mut blob = key_id("witness.example", &w.verifying_key()).to_vec();
        blob.extend_from_slice(&[0u8; 64]);
        let extra = format!("{SIG_PREFIX}witness.example {}\n", B64.encode(blob));
        let (body, sigs) = s.note.split_at(s.note.rfind("\n\n").unwrap_or(0) + 2);
        let note = format!("{body}{extra}{sigs}");
        assert_eq!(
            verify_checkpoint(&k.verifying_key(), &note).ok(),
            Some(cp())
        );
        // Our key under another name is not our key: only the foreign line is left.
        let only_foreign = format!("{body}{extra}");
        assert!(verify_checkpoint(&k.verifying_key(), &only_foreign).is_err());
        // Control characters are rejected.
        assert!(
            verify_checkpoint(&k.verifying_key(), &s.note.replacen("hash", "ha\tsh", 1)).is_err()
        );
    }

    /// The golang.org/x/mod/sumdb/note example (PeterNeumann key): our key id, vkey, signing
    /// and verification agree byte for byte with Go's reference implementation.
    #[test]
    fn go_sumdb_note_vector() {
        let skey_b64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let raw = B64.decode(skey_b64).unwrap_or_default();
        assert_eq!(raw.len(), 33);
        assert_eq!(raw[0], ED25519_TYPE);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&raw[1..]);
        let key = SigningKey::from_bytes(&seed);
        let vk = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert_eq!(parse_public_key(vk).ok(), Some(key.verifying_key()));
        assert_eq!(vkey("PeterNeumann", &key.verifying_key()), vk);
        assert_eq!(
            hex::encode(key_id("PeterNeumann", &key.verifying_key())),
            "c74f20a3"
        );
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let want = format!(
            "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        assert_eq!(sign_note(&key, "PeterNeumann", text), want);
        assert_eq!(
            open_note(&key.verifying_key(), "PeterNeumann", &want).ok(),
            Some(text)
        );
        let forged = want.replace("cryptography", "cryptographY");
        assert!(open_note(&key.verifying_key(), "PeterNeumann", &forged).is_err());
        assert!(open_note(&key.verifying_key(), "Peter", &want).is_err());
    }

    /// A vkey is validated in full, and a note only opens through a signature line with the
    /// vkey's name and key id (Go's note.NewVerifier and note.Open).
    #[test]
    fn note_verifier_checks_name_and_key_id() {
        let k = key(4);
        let pk = k.verifying_key();
        let v = NoteVerifier::parse(&vkey("quiver.example/db1", &pk)).expect("genuine vkey");
        assert_eq!(v.name, "quiver.example/db1");
        assert_eq!(v.key, pk);
        assert_eq!(v.id, key_id("quiver.example/db1", &pk));
        let s = sign_checkpoint(&k, &cp());
        assert_eq!(v.verify_checkpoint(&s.note).ok(), Some(cp()));

        // The same key under another (valid) name: the checkpoint's origin and signature line
        // name differ from it, so nothing verifies.
        let other = NoteVerifier::parse(&vkey("other.example", &pk)).expect("valid vkey");
        assert!(matches!(
            other.verify_checkpoint(&s.note),
            Err(LedgerError::BadSignature { .. })
        ));
        assert!(other.open(&s.note).is_err());
        // A note signed under the other name still does not match the checkpoint's origin.
        let renamed = sign_note(&k, "other.example", &body(&cp()));
        assert!(other.open(&renamed).is_ok());
        assert!(matches!(
            other.verify_checkpoint(&renamed),
            Err(LedgerError::BadSignature { .. })
        ));

        // Mismatched key ids and malformed vkeys: typed errors.
        let b64 = B64.encode([&[ED25519_TYPE][..], pk.as_bytes()].concat());
        let id = hex::encode(key_id("quiver.example/db1", &pk));
        for (bad, what) in [
            (format!("x+y+{b64}"), "vkey"),
            (format!("other.name+00000000+{b64}"), "vkey key id"),
            (format!("other.name+{id}+{b64}"), "vkey key id"),
            (
                format!("quiver.example/db1+{}+{b64}", "0".repeat(8)),
                "vkey key id",
            ),
            (
                format!("quiver.example/db1+{}+{b64}", id.to_uppercase()),
                "",
            ),
            (format!("quiver.example/db1+{id}"), "vkey"),
            (format!("a\tb+{id}+{b64}"), "vkey"),
            (
                format!("quiver.example/db1+{id}+{}", B64.encode(pk.as_bytes())),
                "vkey",
            ),
            (
                format!("quiver.example/db1+{id}+{}", B64.encode([2u8; 33])),
                "vkey",
            ),
            (format!("quiver.example/db1+{id}+not base64"), "vkey"),
        ] {
            match (NoteVerifier::parse(&bad), what) {
                (Ok(_), "") => {}
                (Err(LedgerError::Malformed { what: w, .. }), _) if w == what => {}
                (r, _) => panic!("{bad:?}: {r:?}"),
            }
        }
        // A bare base64 key may contain '+' and is not taken for a vkey.
        assert!(!is_vkey(&B64.encode([0xfb; 32])));
        assert!(B64.encode([0xfb; 32]).contains('+'));
        assert_eq!(parse_public_key(&B64.encode(pk.as_bytes())).ok(), Some(pk));
    }

    #[test]
    fn vkey_parses_back() {
        let k = key(3).verifying_key();
        let v = vkey("n", &k);
        assert_eq!(parse_public_key(&v).ok(), Some(k));
        assert_eq!(parse_public_key(&hex::encode(k.as_bytes())).ok(), Some(k));
        assert_eq!(parse_public_key(&B64.encode(k.as_bytes())).ok(), Some(k));
        assert!(parse_public_key("nope").is_err());
    }
}
