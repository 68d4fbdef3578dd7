use crate::{CoreError, Id, Result};

/// A sequence number: the position of a committed entry in the database's single log,
/// starting at 1. Sequence order is arrival order and ledger leaf order (leaf index = seq - 1).
pub type SeqNo = u64;

/// An inclusive range of sequence numbers acknowledged together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SeqRange {
    /// First sequence number of the range.
    pub first: SeqNo,
    /// Last sequence number of the range (inclusive).
    pub last: SeqNo,
}

impl SeqRange {
    /// Number of entries in the range.
    pub fn len(&self) -> u64 {
        self.last + 1 - self.first
    }
    /// Always false: an acknowledged range holds at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The most components a record's vector may have (65 536, as in Qdrant): 256 KiB of `f32`.
pub const MAX_VECTOR_DIM: usize = 1 << 16;

/// How an event's timestamp was written by the client, so it can be given back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampFormat {
    /// Integer nanoseconds since the Unix epoch.
    #[default]
    Nanos,
    /// An RFC 3339 string (given back in UTC with nanosecond precision).
    Rfc3339,
}

/// A record or an event.
///
/// A record is an id, an optional vector and an optional JSON payload. An event adds a
/// timestamp (nanoseconds since the Unix epoch), and optionally a type and a source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// The record's id; writing the same id again overwrites (newest sequence wins).
    pub id: Option<Id>,
    /// Event timestamp in ns since the Unix epoch; `None` for plain records.
    pub timestamp_ns: Option<i64>,
    /// How the timestamp was given.
    pub timestamp_format: TimestampFormat,
    /// Event type.
    pub event_type: Option<String>,
    /// Event source.
    pub source: Option<String>,
    /// Optional dense vector.
    pub vector: Option<Vec<f32>>,
    /// Optional payload, as JSON text (validated on construction paths that parse it).
    pub payload: Option<String>,
}

impl Record {
    /// A record with an id and nothing else.
    pub fn new(id: impl Into<Id>) -> Self {
        Record {
            id: Some(id.into()),
            ..Default::default()
        }
    }

    /// The record's id. Every stored record has one; `Record::default()` does not.
    pub fn id(&self) -> Result<&Id> {
        self.id.as_ref().ok_or(CoreError::InvalidId {
            reason: "record has no id".into(),
        })
    }

    /// Sets the JSON payload from a value.
    pub fn with_payload(mut self, v: &serde_json::Value) -> Self {
        self.payload = Some(v.to_string());
        self
    }

    /// Sets the vector.
    pub fn with_vector(mut self, v: Vec<f32>) -> Self {
        self.vector = Some(v);
        self
    }

    /// Makes it an event at `ts_ns`.
    pub fn with_timestamp(mut self, ts_ns: i64) -> Self {
        self.timestamp_ns = Some(ts_ns);
        self
    }

    /// Sets the event type.
    pub fn with_type(mut self, t: impl Into<String>) -> Self {
        self.event_type = Some(t.into());
        self
    }

    /// Sets the event source.
    pub fn with_source(mut self, s: impl Into<String>) -> Self {
        self.source = Some(s.into());
        self
    }

    /// Whether this record is an event (has a timestamp).
    pub fn is_event(&self) -> bool {
        self.timestamp_ns.is_some()
    }

    /// The payload parsed as a JSON value.
    ///
    /// The stored payload is JSON text checked for syntax only (any depth, any number), and
    /// given back byte for byte. A `serde_json::Value` holds less: this fails with
    /// [`CoreError::InvalidJson`] for payloads nested deeper than 128 levels or with numbers
    /// beyond `f64` (e.g. `1e400`), which are still stored and returned as text.
    pub fn payload_value(&self) -> Result<Option<serde_json::Value>> {
        self.payload
            .as_deref()
            .map(|p| {
                serde_json::from_str(p).map_err(|e| CoreError::InvalidJson {
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Checks the record against limits: id, vector length (1..=[`MAX_VECTOR_DIM`], and the
    /// dimension when `expected_dim` is given) and finiteness, payload size and JSON validity.
    pub fn validate(&self, expected_dim: Option<usize>, max_payload: usize) -> Result<()> {
        self.id()?.validate()?;
        if let Some(v) = &self.vector {
            if v.is_empty() {
                return Err(CoreError::EmptyVector);
            }
            if v.len() > MAX_VECTOR_DIM {
                return Err(CoreError::VectorTooLong {
                    dim: v.len(),
                    max: MAX_VECTOR_DIM,
                });
            }
            if let Some(d) = expected_dim {
                if v.len() != d {
                    return Err(CoreError::DimensionMismatch {
                        expected: d,
                        got: v.len(),
                    });
                }
            }
            if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(CoreError::NonFiniteComponent { index, value });
            }
        }
        for (field, s) in [
            ("event type", &self.event_type),
            ("event source", &self.source),
        ] {
            if let Some(s) = s {
                if s.len() > u16::MAX as usize {
                    return Err(CoreError::TooLarge {
                        field,
                        size: s.len(),
                        max: u16::MAX as usize,
                    });
                }
            }
        }
        if let Some(p) = &self.payload {
            if p.len() > max_payload {
                return Err(CoreError::TooLarge {
                    field: "payload",
                    size: p.len(),
                    max: max_payload,
                });
            }
            // The payload field is public text: make sure it is one JSON value before it is
            // stored. The fast check answers yes or no with the same rules as serde_json's
            // ignore path; only a no asks serde_json, so the reason is its message.
            let serde_check = || serde_json::from_str::<serde::de::IgnoredAny>(p);
            let valid = crate::json_syntax::is_valid(p);
            debug_assert_eq!(
                valid,
                serde_check().is_ok(),
                "json_syntax disagrees on {p:?}"
            );
            if !valid {
                serde_check().map_err(|e| CoreError::InvalidJson {
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }
}

/// One write operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert or overwrite a record or event.
    Put(Record),
    /// Delete by id (a tombstone).
    Delete(Id),
}

impl Op {
    /// The id this operation writes.
    pub fn id(&self) -> Result<&Id> {
        match self {
            Op::Put(r) => r.id(),
            Op::Delete(id) => Ok(id),
        }
    }
}

/// A committed operation with its sequence number: what the WAL frames, the ledger hashes
/// and segments store.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Sequence number assigned at commit.
    pub seq: SeqNo,
    /// The operation.
    pub op: Op,
}

/// Whether timestamp `t` lies in the time range `[from, to)` of a scan. `to = i64::MAX`
/// leaves the range open at the top, so it includes `i64::MAX` itself: a half-open bound
/// could not reach the last representable timestamp, which ingest accepts.
#[inline]
pub fn in_time_range(t: i64, from: i64, to: i64) -> bool {
    t >= from && (t < to || to == i64::MAX)
}
