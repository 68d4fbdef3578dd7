//! The event generator of `quiver bench ingest`, shared word for word with the peers' harness
//! (`bench/compare` compiles this file with `#[path]`), so both sides do the same work.
//!
//! Self-contained on purpose: no crate imports, nothing but `core`/`std`.

/// Event types, one per event at random.
pub const TYPES: [&str; 8] = [
    "click",
    "view",
    "purchase",
    "login",
    "logout",
    "search",
    "error",
    "heartbeat",
];

/// Event sources (`svc-NN`), one per event at random.
pub const SOURCES: [&str; 16] = [
    "svc-00", "svc-01", "svc-02", "svc-03", "svc-04", "svc-05", "svc-06", "svc-07", "svc-08",
    "svc-09", "svc-10", "svc-11", "svc-12", "svc-13", "svc-14", "svc-15",
];

/// The JSON payload is `{"d":"<alphanumerics>"}`: this many bytes are not random.
pub const PAYLOAD_FIXED: usize = r#"{"d":""}"#.len();

/// Maps a random byte to one of the 62 alphanumerics: `b * 62 / 256` indexes `a-z A-Z 0-9`.
/// Arithmetic rather than a table lookup, so the loop over a payload vectorises.
pub fn alnum_of(b: u8) -> u8 {
    let x = ((b as u16 * 62) >> 8) as u8;
    if x < 26 {
        b'a' + x
    } else if x < 52 {
        b'A' + (x - 26)
    } else {
        b'0' + (x - 52)
    }
}

/// xorshift64*: a cheap generator so the benchmark measures the database, not the RNG.
pub struct Gen(pub u64);

impl Gen {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The type and source of the next event.
    pub fn kind(&mut self) -> (&'static str, &'static str) {
        let r = self.next_u64();
        (TYPES[(r % 8) as usize], SOURCES[((r >> 8) % 16) as usize])
    }

    /// Appends the JSON payload `{"d":"…"}` of exactly `payload_bytes` bytes (at least the
    /// fixed part): random bytes eight per draw, then one vectorised pass mapping them with
    /// [`alnum_of`].
    pub fn payload(&mut self, payload_bytes: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"d":""#);
        let start = out.len();
        out.resize(start + payload_bytes.saturating_sub(PAYLOAD_FIXED), 0);
        let mut chunks = out[start..].chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let r = self.next_u64().to_le_bytes();
            let k = tail.len();
            tail.copy_from_slice(&r[..k]);
        }
        for b in &mut out[start..] {
            *b = alnum_of(*b);
        }
        out.extend_from_slice(br#""}"#);
    }
}
