use serde::{Deserialize, Serialize};
use std::fmt;

/// Maximum length of a string id in bytes.
pub const MAX_ID_BYTES: usize = 1024;

/// A record id: an unsigned integer or a string (UUIDs are strings).
///
/// Ordering puts every integer id before every string id, which is also the order of the
/// encoded form (tag byte first), so sorted segment id indexes agree with `Ord`.
///
/// In JSON an id is a number (`0..=u64::MAX`) or a string. It is read with a visitor rather
/// than an untagged enum so that a wrong value is named in the error ("invalid value: integer
/// `-4`, expected an id: …", not "data did not match any variant").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Id {
    /// Integer id.
    U64(u64),
    /// String id (1..=1024 bytes of UTF-8).
    Str(String),
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id: an integer from 0 to 18446744073709551615, or a string")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id::U64(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Id, E> {
                u64::try_from(v)
                    .map(Id::U64)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Id {
    /// Checks the id is acceptable to store: [`CoreError::InvalidId`](crate::CoreError::InvalidId)
    /// for an empty string id, [`CoreError::TooLarge`](crate::CoreError::TooLarge) for one over
    /// [`MAX_ID_BYTES`].
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Id::U64(_) => Ok(()),
            Id::Str(s) if s.is_empty() => Err(crate::CoreError::InvalidId {
                reason: "empty string id".into(),
            }),
            Id::Str(s) if s.len() > MAX_ID_BYTES => Err(crate::CoreError::TooLarge {
                field: "string id",
                size: s.len(),
                max: MAX_ID_BYTES,
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

#[cfg(test)]
mod tests {
    use super::{Id, MAX_ID_BYTES};
    use crate::CoreError;

    #[test]
    fn string_id_limits_are_typed_errors() {
        assert!(Id::Str("a".repeat(MAX_ID_BYTES)).validate().is_ok());
        assert!(Id::Str("é".repeat(MAX_ID_BYTES / 2)).validate().is_ok());
        assert!(matches!(
            Id::Str(String::new()).validate(),
            Err(CoreError::InvalidId { .. })
        ));
        for over in [
            "a".repeat(MAX_ID_BYTES + 1),
            format!("{}é", "a".repeat(MAX_ID_BYTES - 1)),
        ] {
            match Id::Str(over.clone()).validate() {
                Err(CoreError::TooLarge { field, size, max }) => {
                    assert_eq!((field, size, max), ("string id", over.len(), MAX_ID_BYTES))
                }
                other => panic!("{} bytes: {other:?}", over.len()),
            }
        }
    }

    #[test]
    fn ids_read_from_json_and_wrong_values_are_named() {
        let read = |s: &str| serde_json::from_str::<Id>(s);
        assert_eq!(read("7").unwrap(), Id::U64(7));
        assert_eq!(read("18446744073709551615").unwrap(), Id::U64(u64::MAX));
        assert_eq!(read(r#""a\"b""#).unwrap(), Id::Str("a\"b".into()));
        for (bad, words) in [
            ("-4", "integer `-4`, expected an id"),
            ("2.5", "floating point `2.5`, expected an id"),
            ("null", "null, expected an id"),
            ("[1]", "sequence, expected an id"),
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains(words), "{bad}: {e}");
        }
        // What serialises reads back.
        for id in [Id::U64(3), Id::Str("x".into())] {
            assert_eq!(read(&serde_json::to_string(&id).unwrap()).unwrap(), id);
        }
    }
}
