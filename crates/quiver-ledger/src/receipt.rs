//! Batch receipts: one Ed25519 signature over a batch's sequence range and the tree head that
//! covers it.
//!
//! The signed message is the text
//! ```text
//! quiver receipt v1\n
//! <origin>\n
//! <alg>\n
//! id <id>\n
//! seqs <first_seq> <last_seq>\n
//! tree <tree_size> <base64 root>\n
//! timestamp <unix ms>\n
//! ```
//! Stored records (in `receipts.log`, a framed log) are 136 bytes: id, first_seq, last_seq,
//! tree_size, timestamp_ms (u64 LE each), root (32), signature (64); see `docs/format/ledger.md`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{LedgerError, Result};
use crate::hash::{Hash, HashAlg};

/// Stored receipt body length.
pub(crate) const RECORD_LEN: usize = 40 + 32 + 64;

/// A signed batch receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Receipt id (1-based, in issue order).
    pub id: u64,
    /// Log origin (the signing key's name).
    pub origin: String,
    /// Tree hash algorithm.
    pub alg: HashAlg,
    /// First sequence number of the batch.
    pub first_seq: u64,
    /// Last sequence number of the batch (inclusive).
    pub last_seq: u64,
    /// Tree size the root covers (`>= last_seq`).
    pub tree_size: u64,
    /// Root of the tree of `tree_size` leaves.
    pub root: Hash,
    /// Signing time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Ed25519 signature over [`Receipt::signed_message`], hex.
    #[serde(with = "sig_hex")]
    pub signature: [u8; 64],
}

mod sig_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let s = String::deserialize(d)?;
        let b = hex::decode(s).map_err(serde::de::Error::custom)?;
        b.try_into()
            .map_err(|_| serde::de::Error::custom("signature must be 64 bytes"))
    }
}

impl Receipt {
    /// The exact bytes the signature covers.
    pub fn signed_message(&self) -> String {
        format!(
            "quiver receipt v1\n{}\n{}\nid {}\nseqs {} {}\ntree {} {}\ntimestamp {}\n",
            self.origin,
            self.alg.name(),
            self.id,
            self.first_seq,
            self.last_seq,
            self.tree_size,
            B64.encode(self.root.0),
            self.timestamp_ms
        )
    }

    pub(crate) fn sign(mut self, key: &SigningKey) -> Receipt {
        self.signature = key.sign(self.signed_message().as_bytes()).to_bytes();
        self
    }

    pub(crate) fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        for (i, v) in [
            self.id,
            self.first_seq,
            self.last_seq,
            self.tree_size,
            self.timestamp_ms,
        ]
        .iter()
        .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b[40..72].copy_from_slice(&self.root.0);
        b[72..136].copy_from_slice(&self.signature);
        b
    }

    pub(crate) fn decode(
        origin: &str,
        alg: HashAlg,
        b: &[u8],
    ) -> std::result::Result<Receipt, String> {
        if b.len() != RECORD_LEN {
            return Err(format!(
                "receipt record is {} bytes, expected {RECORD_LEN}",
                b.len()
            ));
        }
        let u = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&b[40..72]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[72..136]);
        Ok(Receipt {
            id: u(0),
            origin: origin.to_string(),
            alg,
            first_seq: u(1),
            last_seq: u(2),
            tree_size: u(3),
            timestamp_ms: u(4),
            root: Hash(root),
            signature,
        })
    }
}

/// Verifies a receipt's signature and internal consistency against `key`.
pub fn verify_receipt(key: &VerifyingKey, r: &Receipt) -> Result<()> {
    if r.first_seq == 0 || r.first_seq > r.last_seq || r.last_seq > r.tree_size {
        return Err(LedgerError::BadSignature {
            what: "receipt",
            reason: format!(
                "inconsistent range: seqs {}..={} with tree size {}",
                r.first_seq, r.last_seq, r.tree_size
            ),
        });
    }
    let sig = Signature::from_bytes(&r.signature);
    key.verify_strict(r.signed_message().as_bytes(), &sig)
        .map_err(|e| LedgerError::BadSignature {
            what: "receipt",
            reason: format!("signature does not verify: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_encode_decode_verify() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let r = Receipt {
            id: 3,
            origin: "db".into(),
            alg: HashAlg::Blake3,
            first_seq: 10,
            last_seq: 19,
            tree_size: 25,
            root: Hash([1; 32]),
            timestamp_ms: 99,
            signature: [0; 64],
        }
        .sign(&key);
        let back = Receipt::decode("db", HashAlg::Blake3, &r.encode());
        assert_eq!(back.as_ref().ok(), Some(&r));
        assert!(verify_receipt(&key.verifying_key(), &r).is_ok());
        let mut bad = r.clone();
        bad.last_seq = 20;
        assert!(verify_receipt(&key.verifying_key(), &bad).is_err());
        let other = SigningKey::from_bytes(&[6; 32]);
        assert!(verify_receipt(&other.verifying_key(), &r).is_err());
        let json = serde_json::to_string(&r).unwrap_or_default();
        let parsed: Option<Receipt> = serde_json::from_str(&json).ok();
        assert_eq!(parsed, Some(r));
    }

    /// With a small-order public key (here the identity point), the signature R = identity,
    /// S = 0 passes plain Ed25519 verification of any message; strict verification, which
    /// every signature check here uses, refuses it.
    #[test]
    fn a_weak_key_forgery_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).expect("a curve point");
        let mut signature = [0u8; 64];
        signature[0] = 1;
        let r = Receipt {
            id: 1,
            origin: "db".into(),
            alg: HashAlg::Blake3,
            first_seq: 1,
            last_seq: 1,
            tree_size: 1,
            root: Hash([7; 32]),
            timestamp_ms: 1,
            signature,
        };
        let sig = Signature::from_bytes(&r.signature);
        use ed25519_dalek::Verifier;
        assert!(
            weak.verify(r.signed_message().as_bytes(), &sig).is_ok(),
            "the forgery the strict check exists for"
        );
        assert!(verify_receipt(&weak, &r).is_err());
    }
}
