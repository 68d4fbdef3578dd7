use serde::{Deserialize, Serialize};
use std::fmt;

/// Maximum length of a string id in bytes.
pub const MAX_ID_BYTES: usize = 1024;

/// A record id: an unsigned integer or a string (UUIDs are strings).
///
/// Ordering puts every integer id before every string id, which is also the order of the
/// encoded form (tag byte first), so sorted segment id indexes agree with `Ord`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// Integer id.
    U64(u64),
    /// String id (1..=1024 bytes of UTF-8).
    Str(String),
}

impl Id {
    /// Checks the id is acceptable to store.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Id::U64(_) => Ok(()),
            Id::Str(s) if s.is_empty() => Err(crate::CoreError::InvalidId {
                reason: "empty string id".into(),
            }),
            Id::Str(s) if s.len() > MAX_ID_BYTES => Err(crate::CoreError::InvalidId {
                reason: format!(
                    "string id is {} bytes, the maximum is {MAX_ID_BYTES}",
                    s.len()
                ),
            }),
            Id::Str(_) => Ok(()),
        }
    }
}

impl From<u64> for Id {
    fn from(v: u64) -> Self {
        Id::U64(v)
    }
}

impl From<&str> for Id {
    fn from(v: &str) -> Self {
        Id::Str(v.to_owned())
    }
}

impl From<String> for Id {
    fn from(v: String) -> Self {
        Id::Str(v)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::U64(v) => write!(f, "{v}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}
