use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Distance metric of a vector space.
///
/// `Cosine` vectors are normalised at insert and then scored as `Dot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance; smaller is closer.
    L2,
    /// Inner product; larger is closer.
    Dot,
    /// Cosine similarity (dot of unit vectors); larger is closer.
    Cosine,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::L2 => "l2",
            Metric::Dot => "dot",
            Metric::Cosine => "cosine",
        })
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "l2" => Ok(Metric::L2),
            "dot" | "ip" => Ok(Metric::Dot),
            "cosine" | "angular" => Ok(Metric::Cosine),
            other => Err(format!(
                "unknown metric {other:?}: expected l2, dot or cosine"
            )),
        }
    }
}
