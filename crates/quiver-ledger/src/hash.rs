//! Hash algorithms and the RFC 9162 §2.1 domain separation.
//!
//! `leaf = H(0x00 || body)`, `node = H(0x01 || left || right)`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest;

use crate::error::LedgerError;

/// A 32-byte tree hash (leaf, node or root).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Hash, LedgerError> {
        let bytes = hex::decode(s.trim()).map_err(|e| LedgerError::Malformed {
            what: "hash",
            reason: format!("not hex: {e}"),
        })?;
        Self::from_slice(&bytes)
    }

    /// Takes exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Hash, LedgerError> {
        let arr: [u8; 32] = b.try_into().map_err(|_| LedgerError::Malformed {
            what: "hash",
            reason: format!("expected 32 bytes, got {}", b.len()),
        })?;
        Ok(Hash(arr))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The tree's hash function, fixed when a ledger is created.
///
/// The default is BLAKE3: batched sixteen inputs per AVX-512 pass (`blake3x16`) it hashes
/// ledger leaves several times faster than SHA-NI's SHA-256 (see `docs/format/ledger.md`,
/// "Measured"). On CPUs without AVX-512 it falls back to the `blake3` crate, one block at a
/// time, where SHA-256 with SHA-NI can be the faster choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// BLAKE3 (32-byte output).
    #[default]
    Blake3,
    /// SHA-256 (Certificate Transparency's hash; matches RFC 6962 test vectors).
    Sha256,
}

impl HashAlg {
    /// On-disk code: 1 = BLAKE3, 2 = SHA-256.
    pub fn code(self) -> u8 {
        match self {
            HashAlg::Blake3 => 1,
            HashAlg::Sha256 => 2,
        }
    }

    /// Inverse of [`HashAlg::code`].
    pub fn from_code(c: u8) -> Option<HashAlg> {
        match c {
            1 => Some(HashAlg::Blake3),
            2 => Some(HashAlg::Sha256),
            _ => None,
        }
    }

    /// Name used in text formats: `blake3` or `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Blake3 => "blake3",
            HashAlg::Sha256 => "sha256",
        }
    }

    /// `H(parts[0] || parts[1] || ...)`.
    fn digest(self, parts: &[&[u8]]) -> Hash {
        match self {
            HashAlg::Blake3 => {
                let mut h = blake3::Hasher::new();
                for p in parts {
                    h.update(p);
                }
                Hash(*h.finalize().as_bytes())
            }
            HashAlg::Sha256 => {
                let mut h = sha2::Sha256::new();
                for p in parts {
                    h.update(p);
                }
                Hash(h.finalize().into())
            }
        }
    }

    /// Hash of the empty tree: `H()` (RFC 9162 §2.1.1).
    pub fn empty_root(self) -> Hash {
        self.digest(&[])
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlg {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "blake3" => Ok(HashAlg::Blake3),
            "sha256" | "sha-256" => Ok(HashAlg::Sha256),
            other => Err(LedgerError::Malformed {
                what: "hash algorithm",
                reason: format!("unknown algorithm {other:?}; use blake3 or sha256"),
            }),
        }
    }
}

/// Leaf hash `H(0x00 || body)`.
pub fn leaf_hash(alg: HashAlg, body: &[u8]) -> Hash {
    alg.digest(&[&[0u8], body])
}

/// Interior node hash `H(0x01 || left || right)`.
pub fn node_hash(alg: HashAlg, left: &Hash, right: &Hash) -> Hash {
    alg.digest(&[&[1u8], &left.0, &right.0])
}

/// Leaf hashes of many bodies, in order: the same values as [`leaf_hash`] on each, computed
/// sixteen at a time for BLAKE3 on AVX-512 CPUs (see `blake3x16`).
pub fn leaf_hashes(alg: HashAlg, bodies: &[&[u8]]) -> Vec<Hash> {
    let mut out = Vec::with_capacity(bodies.len());
    prefixed_many_into(alg, 0, bodies, &mut out);
    out
}

/// Appends to `out` the parent hashes `H(0x01 || children[2i] || children[2i + 1])` of
/// consecutive pairs.
///
/// # Panics
/// If `children` has odd length (a caller bug).
pub(crate) fn parent_hashes_into(alg: HashAlg, children: &[Hash], out: &mut Vec<Hash>) {
    assert!(children.len().is_multiple_of(2), "odd number of children");
    let pairs: Vec<[u8; 64]> = children
        .chunks_exact(2)
        .map(|p| {
            let mut b = [0u8; 64];
            b[..32].copy_from_slice(&p[0].0);
            b[32..].copy_from_slice(&p[1].0);
            b
        })
        .collect();
    let msgs: Vec<&[u8]> = pairs.iter().map(|b| b.as_slice()).collect();
    prefixed_many_into(alg, 1, &msgs, out);
}

/// Appends `H(prefix || m)` for every `m` of `msgs` to `out`.
fn prefixed_many_into(alg: HashAlg, prefix: u8, msgs: &[&[u8]], out: &mut Vec<Hash>) {
    match alg {
        HashAlg::Blake3 => {
            let at = out.len();
            out.resize(at + msgs.len(), Hash::default());
            crate::blake3x16::hash_prefixed_many(prefix, msgs, &mut out[at..]);
        }
        HashAlg::Sha256 => out.extend(msgs.iter().map(|m| alg.digest(&[&[prefix], m]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_empty_and_leaf_match_rfc6962() {
        assert_eq!(
            HashAlg::Sha256.empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 test data: the leaf hash of the empty string.
        assert_eq!(
            leaf_hash(HashAlg::Sha256, b"").to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn domain_separation_differs() {
        for alg in [HashAlg::Blake3, HashAlg::Sha256] {
            let a = leaf_hash(alg, b"x");
            let n = node_hash(alg, &a, &a);
            let mut body = vec![];
            body.extend_from_slice(&a.0);
            body.extend_from_slice(&a.0);
            assert_ne!(leaf_hash(alg, &body), n);
        }
    }

    #[test]
    fn alg_codes_and_names_round_trip() {
        for alg in [HashAlg::Blake3, HashAlg::Sha256] {
            assert_eq!(HashAlg::from_code(alg.code()), Some(alg));
            assert_eq!(alg.name().parse::<HashAlg>().ok(), Some(alg));
        }
        assert!(HashAlg::from_code(0).is_none());
        assert!("md5".parse::<HashAlg>().is_err());
    }

    #[test]
    fn hash_hex_round_trip_and_bad_input() {
        let h = leaf_hash(HashAlg::Blake3, b"abc");
        assert_eq!(Hash::from_hex(&h.to_hex()).ok(), Some(h));
        assert!(Hash::from_hex("zz").is_err());
        assert!(Hash::from_hex("abcd").is_err());
    }
}
