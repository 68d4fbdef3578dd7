//! A JSON syntax check that builds nothing and allocates nothing for payloads nested up to
//! [`INLINE_DEPTH`] levels.
//!
//! [`is_valid`] accepts exactly the texts that `serde_json::from_str::<IgnoredAny>` accepts
//! (serde_json 1.0.154), which is RFC 8259 JSON with these readings:
//!
//! - whitespace is space, `\t`, `\n` and `\r` only, allowed before and after the one value;
//!   anything else after it is an error, and so is empty input;
//! - numbers are `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` with no range check
//!   (`1e400` is accepted);
//! - strings reject raw bytes below `0x20` and accept the escapes `\" \\ \/ \b \f \n \r \t`
//!   and `\uXXXX` with any four hex digits: a lone surrogate (`"\ud800"`) is accepted, as
//!   serde_json's ignore path decodes no code points;
//! - no nesting limit: the open containers are a bit stack, so any depth is checked
//!   without recursion.
//!
//! It says only yes or no. [`crate::Record::validate`] asks serde_json for the reason when the
//! answer is no, so error messages stay serde_json's. The differential tests in
//! `tests/it/json_syntax.rs` hold the two to the same answers.
//!
//! The hot case is a long string: it is scanned for `"`, `\` or a control byte 16, then 32
//! bytes at a time with SSE2 on x86_64 (part of its baseline), eight at a time in a `u64`
//! elsewhere.

/// Nesting levels kept in the inline bit stack before it spills to the heap.
pub const INLINE_DEPTH: usize = 64 * INLINE_WORDS;

const INLINE_WORDS: usize = 4;

/// Whether `text` is exactly one JSON value, with optional whitespace around it, by the rules
/// of `serde_json::from_str::<serde::de::IgnoredAny>`.
pub fn is_valid(text: &str) -> bool {
    check(text.as_bytes()).is_some()
}

/// The kind of an open container, as one bit of [`Nesting`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

/// The stack of open containers, one bit per level (1 = object): inline for the first
/// [`INLINE_DEPTH`] levels, in `spill` beyond.
struct Nesting {
    depth: usize,
    inline: [u64; INLINE_WORDS],
    spill: Vec<u64>,
}

impl Nesting {
    fn new() -> Self {
        Nesting {
            depth: 0,
            inline: [0; INLINE_WORDS],
            spill: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, c: Container) {
        let (word, bit) = (self.depth / 64, self.depth % 64);
        let w = if word < INLINE_WORDS {
            &mut self.inline[word]
        } else {
            let k = word - INLINE_WORDS;
            if k == self.spill.len() {
                self.spill.push(0);
            }
            &mut self.spill[k]
        };
        match c {
            Container::Object => *w |= 1 << bit,
            Container::Array => *w &= !(1 << bit),
        }
        self.depth += 1;
    }

    /// The innermost open container, if any.
    #[inline]
    fn top(&self) -> Option<Container> {
        let d = self.depth.checked_sub(1)?;
        let (word, bit) = (d / 64, d % 64);
        let w = if word < INLINE_WORDS {
            self.inline[word]
        } else {
            self.spill[word - INLINE_WORDS]
        };
        Some(if w >> bit & 1 == 1 {
            Container::Object
        } else {
            Container::Array
        })
    }

    #[inline]
    fn pop(&mut self) {
        self.depth -= 1;
    }
}

/// The whole check; `None` means invalid. Every index handed between the helpers is at most
/// `b.len()`.
fn check(b: &[u8]) -> Option<()> {
    let mut nest = Nesting::new();
    let mut i = 0;
    'value: loop {
        // A value starts at i (after whitespace).
        i = skip_ws(b, i);
        match *b.get(i)? {
            b'"' => i = string_end(b, i + 1)?,
            b'-' | b'0'..=b'9' => i = number_end(b, i)?,
            b't' => i = literal_end(b, i, b"true")?,
            b'f' => i = literal_end(b, i, b"false")?,
            b'n' => i = literal_end(b, i, b"null")?,
            b'[' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    nest.push(Container::Array);
                    continue 'value;
                }
            }
            b'{' => {
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    nest.push(Container::Object);
                    i = key_end(b, i)?;
                    continue 'value;
                }
            }
            _ => return None,
        }
        // A value ended at i: close containers until a comma or the end of the text.
        loop {
            i = skip_ws(b, i);
            let Some(top) = nest.top() else {
                return (i == b.len()).then_some(());
            };
            match (*b.get(i)?, top) {
                (b',', Container::Array) => {
                    i += 1;
                    continue 'value;
                }
                (b',', Container::Object) => {
                    i = key_end(b, skip_ws(b, i + 1))?;
                    continue 'value;
                }
                (b']', Container::Array) | (b'}', Container::Object) => {
                    nest.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// An object key and its colon starting at `i`: the index after the colon.
#[inline]
fn key_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, string_end(b, i + 1)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

#[inline]
fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    let end = i + word.len();
    (b.get(i..end)? == word).then_some(end)
}

#[inline]
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// A number starting at `i` (a `-` or a digit): the index after it. What follows is left to
/// the caller, so `01` reads as `0` followed by a stray `1`, an error either way.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits_end(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = digits_end(b, start);
        if i == start {
            return None;
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let start = i;
        i = digits_end(b, start);
        if i == start {
            return None;
        }
    }
    Some(i)
}

/// The rest of a string whose opening quote is just before `i`: the index after the closing
/// quote.
#[inline]
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let (j, closes) = find_special(b, i);
        if closes {
            return Some(j + 1);
        }
        i = j;
        match *b.get(i)? {
            b'\\' => {
                i = match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i + 2,
                    b'u' => {
                        let hex = b.get(i + 2..i + 6)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        i + 6
                    }
                    _ => return None,
                }
            }
            // A raw control byte.
            _ => return None,
        }
    }
}

/// Whether `c` ends a run of plain string bytes: `"`, `\` or a control byte.
#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// The first index `>= i` of a byte that [`is_special`], or `b.len()`, and whether that byte
/// is `"`. Needs `i <= b.len()`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn find_special(b: &[u8], i: usize) -> (usize, bool) {
    sse2::find_special(b, i)
}

/// The first index `>= i` of a byte that [`is_special`], or `b.len()`, and whether that byte
/// is `"`. Needs `i <= b.len()`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn find_special(b: &[u8], i: usize) -> (usize, bool) {
    let j = find_special_swar(b, i);
    (j, b.get(j) == Some(&b'"'))
}

/// [`find_special`] eight bytes at a time in a `u64` (the portable path; tested on every
/// target).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn find_special_swar(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGHS: u64 = ONES << 7;
    // A byte's high bit is set in `zero_bytes(x)` where the byte of x is 0, and the lowest
    // set high bit is always exact (a borrow only carries upwards from a true zero byte).
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x;
    while let Some(chunk) = b[i..].first_chunk::<8>() {
        let x = u64::from_le_bytes(*chunk);
        // Bytes below 0x20: x - 0x20 borrows exactly there (for the lowest such byte).
        let ctrl = x.wrapping_sub(ONES * 0x20) & !x;
        let hits =
            (ctrl | zero_bytes(x ^ (ONES * u64::from(b'"'))) | zero_bytes(x ^ (ONES * 0x5c)))
                & HIGHS;
        if hits != 0 {
            return i + hits.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    find_special_bytewise(b, i)
}

#[inline]
fn find_special_bytewise(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| is_special(c))
        .map_or(b.len(), |k| i + k)
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Bit k of `.0` set where byte k of the `N` (16 or 32) bytes at `chunk` is `"`, `\\` or
    /// below `0x20`; of `.1` where it is `"`.
    #[inline]
    #[expect(
        unsafe_code,
        reason = "SSE2 intrinsics and SIMD loads from a byte array"
    )]
    fn special_masks<const N: usize>(chunk: &[u8; N]) -> (u32, u32) {
        const { assert!(N == 16 || N == 32) };
        let (mut special, mut quotes) = (0, 0);
        for half in 0..N / 16 {
            // SAFETY: SSE2 is part of the x86_64 baseline, so every intrinsic here is
            // available; the load reads bytes 16 * half .. 16 * half + 16 of `chunk`, within
            // its N bytes, and `_mm_loadu_si128` needs no alignment.
            let (s, q) = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().add(16 * half).cast());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // Unsigned c <= 0x1f exactly when max(c, 0x1f) == 0x1f.
                let ceiling = _mm_set1_epi8(0x1f);
                let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(v, ceiling), ceiling);
                let special = _mm_or_si128(_mm_or_si128(quote, backslash), ctrl);
                (
                    _mm_movemask_epi8(special) as u32,
                    _mm_movemask_epi8(quote) as u32,
                )
            };
            special |= s << (16 * half);
            quotes |= q << (16 * half);
        }
        (special, quotes)
    }

    /// The answer for masks of the bytes from `i` on, when `special` is not zero.
    #[inline]
    fn first(i: usize, special: u32, quotes: u32) -> (usize, bool) {
        let k = special.trailing_zeros();
        (i + k as usize, quotes >> k & 1 == 1)
    }

    /// [`super::find_special`] 16 bytes first (most strings are short, and one 16-byte mask
    /// has the shortest latency), then 32, then 16 at a time; a tail shorter than 16 bytes is
    /// read as the last 16 bytes of `b`, ignoring those before `i`.
    #[inline]
    pub(super) fn find_special(b: &[u8], mut i: usize) -> (usize, bool) {
        if let Some(chunk) = b[i..].first_chunk::<16>() {
            let (s, q) = special_masks(chunk);
            if s != 0 {
                return first(i, s, q);
            }
            i += 16;
        }
        while let Some(chunk) = b[i..].first_chunk::<32>() {
            let (s, q) = special_masks(chunk);
            if s != 0 {
                return first(i, s, q);
            }
            i += 32;
        }
        if let Some(chunk) = b[i..].first_chunk::<16>() {
            let (s, q) = special_masks(chunk);
            if s != 0 {
                return first(i, s, q);
            }
            i += 16;
        }
        if i == b.len() {
            return (i, false);
        }
        match b.last_chunk::<16>() {
            Some(last) => {
                // The last chunk starts at b.len() - 16 < i: drop its bytes before i.
                let (s, q) = special_masks(last);
                let shift = i + 16 - b.len();
                let (s, q) = (s >> shift, q >> shift);
                if s != 0 {
                    first(i, s, q)
                } else {
                    (b.len(), false)
                }
            }
            None => {
                let j = super::find_special_bytewise(b, i);
                (j, b.get(j) == Some(&b'"'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_special_reference(b: &[u8], i: usize) -> usize {
        (i..b.len()).find(|&k| is_special(b[k])).unwrap_or(b.len())
    }

    #[test]
    fn every_scan_agrees_with_the_bytewise_reference() {
        // Every length up to 40, every start, a special byte (or none) at every position,
        // with high bytes around it so signed compares would show.
        for len in 0..72 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                    let mut b: Vec<u8> = (0..len)
                        .map(|k| [b'a', 0x20, 0x7f, 0x80, 0xff][k % 5])
                        .collect();
                    if at < len {
                        b[at] = special;
                    }
                    for i in 0..=len {
                        let want = find_special_reference(&b, i);
                        let closes = b.get(want) == Some(&b'"');
                        assert_eq!(
                            find_special(&b, i),
                            (want, closes),
                            "len {len} at {at} from {i}"
                        );
                        assert_eq!(
                            find_special_swar(&b, i),
                            want,
                            "swar len {len} at {at} from {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nesting_spills_past_the_inline_words_and_comes_back() {
        let mut n = Nesting::new();
        let kinds: Vec<Container> = (0..1000)
            .map(|k| {
                if k % 3 == 0 {
                    Container::Object
                } else {
                    Container::Array
                }
            })
            .collect();
        for &c in &kinds {
            n.push(c);
            assert!(n.top() == Some(c));
        }
        for &c in kinds.iter().rev() {
            assert!(n.top() == Some(c));
            n.pop();
        }
        assert!(n.top().is_none());
    }
}
