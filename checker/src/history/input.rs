//! Reading input safely: lines of bounded length, UTF-8 checked, memory accounted.
//!
//! Every reader of history files goes through [`LineSource`] and [`MemoryBudget`], so a
//! hostile input (`/dev/zero`, a 200 MB line, a file larger than memory) ends in a clear
//! error naming the line instead of an abort or an unbounded allocation.

use std::io::{BufRead, ErrorKind};

use serde_json::Value;

use super::op::Op;

/// The longest line (or, in EDN, the longest single operation) a reader accepts, in bytes.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// How many bytes of memory one byte of input may become while it is parsed, at most:
/// the worst case of JSON (`[[[[…` or `{"":0,…` becomes 32 to 100 bytes of values).
/// A line is admitted only when the memory used so far plus this many times its length
/// stays within the limit, so reading never goes past [`ReadLimits::memory_bytes`].
pub const WORST_EXPANSION: usize = 100;

/// What a reader may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest line accepted, in bytes.
    pub max_line_bytes: usize,
    /// The memory the history may take while it is read and held, in bytes.
    pub memory_bytes: usize,
}

impl Default for ReadLimits {
    /// Lines up to [`MAX_LINE_BYTES`]; memory up to three quarters of this machine's.
    fn default() -> ReadLimits {
        ReadLimits {
            max_line_bytes: MAX_LINE_BYTES,
            memory_bytes: default_memory_bytes(),
        }
    }
}

impl ReadLimits {
    /// The default limits with the memory set to `mib` MiB.
    pub fn with_memory_mib(mib: u64) -> ReadLimits {
        ReadLimits {
            memory_bytes: usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            ..ReadLimits::default()
        }
    }
}

/// Three quarters of the machine's memory (`MemTotal` in `/proc/meminfo`), or 8 GiB
/// where that cannot be read.
fn default_memory_bytes() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        });
    let bytes = total_kib.map_or(8 << 30, |kib| kib.saturating_mul(1024) / 4 * 3);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Why a line could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineError {
    /// The line is longer than the limit; nothing after it is read.
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// The line is not UTF-8; `offset` is the byte where it stops being so.
    NotUtf8 {
        /// The first bad byte's position in the line (0-based).
        offset: usize,
    },
    /// The input could not be read; nothing after it is read.
    Io(String),
}

impl LineError {
    /// The message for a `FILE:LINE:` error.
    pub(crate) fn message(&self) -> String {
        match self {
            LineError::TooLong { max } => format!(
                "the line is longer than {max} bytes, the most a history line may have (is this a history file? was a line cut or joined?)"
            ),
            LineError::NotUtf8 { offset } => format!(
                "not UTF-8 (the byte at column {} is not valid UTF-8): a history is UTF-8 text",
                offset + 1
            ),
            LineError::Io(message) => format!("cannot read: {message}"),
        }
    }

    /// True when reading must stop here.
    pub(crate) fn is_fatal(&self) -> bool {
        !matches!(self, LineError::NotUtf8 { .. })
    }
}

/// One line of input.
pub(crate) struct Line<'a> {
    /// Its number, from 1.
    pub(crate) number: usize,
    /// Its text without the line ending.
    pub(crate) text: Result<&'a str, LineError>,
    /// Whether it ended in a newline.
    pub(crate) complete: bool,
}

/// Lines of a [`BufRead`], each at most `max` bytes, numbered from 1, as UTF-8.
pub(crate) struct LineSource<R> {
    input: R,
    max: usize,
    line: usize,
    buffer: Vec<u8>,
    stopped: bool,
}

impl<R: BufRead> LineSource<R> {
    /// Lines of `input`, none longer than `max` bytes.
    pub(crate) fn new(input: R, max: usize) -> LineSource<R> {
        LineSource {
            input,
            max,
            line: 0,
            buffer: Vec::new(),
            stopped: false,
        }
    }

    /// The next line, with whether it ended in a newline (a last line that does not
    /// may have been cut short).
    pub(crate) fn next(&mut self) -> Option<Line<'_>> {
        if self.stopped {
            return None;
        }
        match self.fill_line() {
            Ok(false) => None,
            Ok(true) => {
                let mut end = self.buffer.len();
                if end > 0 && self.buffer[end - 1] == b'\n' {
                    end -= 1;
                    if end > 0 && self.buffer[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                let text =
                    std::str::from_utf8(&self.buffer[..end]).map_err(|e| LineError::NotUtf8 {
                        offset: e.valid_up_to(),
                    });
                Some(Line {
                    number: self.line,
                    text,
                    complete: end < self.buffer.len(),
                })
            }
            Err(error) => {
                self.stopped = true;
                Some(Line {
                    number: self.line,
                    text: Err(error),
                    complete: false,
                })
            }
        }
    }

    /// Reads the next line into the buffer; `false` at the end of the input.
    fn fill_line(&mut self) -> Result<bool, LineError> {
        self.buffer.clear();
        self.line += 1;
        loop {
            let available = match self.input.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e.to_string())),
            };
            if available.is_empty() {
                return Ok(!self.buffer.is_empty());
            }
            let (take, complete) = match memchr::memchr(b'\n', available) {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            // The newline (and a carriage return before it) do not count.
            let content = self.buffer.len() + take - usize::from(complete);
            if content > self.max {
                return Err(LineError::TooLong { max: self.max });
            }
            self.buffer.extend_from_slice(&available[..take]);
            self.input.consume(take);
            if complete {
                return Ok(true);
            }
        }
    }
}

/// The memory a history takes as it is read: every event's estimated size, and a check
/// before each line that parsing it cannot pass the limit.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> MemoryBudget {
        MemoryBudget { limit, used: 0 }
    }

    /// Whether a line of `len` bytes may be parsed; the message says why not.
    pub(crate) fn admit(&self, len: usize) -> Result<(), String> {
        let peak = self
            .used
            .saturating_add(len.saturating_mul(WORST_EXPANSION));
        if peak <= self.limit {
            return Ok(());
        }
        Err(format!(
            "reading this line ({len} bytes) could take the history past its memory limit of {} MiB (about {} MiB used so far): raise --memory-limit, or check a smaller history",
            self.limit >> 20,
            self.used >> 20
        ))
    }

    /// Accounts for an event that is kept, whose fields' heap was estimated as `heap`
    /// bytes (see [`ValueStats`]), with room for the vectors that hold it.
    pub(crate) fn charge_heap(&mut self, heap: usize) {
        let held = 2 * (std::mem::size_of::<Op>() + std::mem::size_of::<usize>());
        self.used = self.used.saturating_add(held + heap);
    }

    /// Accounts for `bytes` more, exactly.
    pub(crate) fn charge_bytes(&mut self, bytes: usize) {
        self.used = self.used.saturating_add(bytes);
    }

    /// Accounts for an event that is kept, with room for the vectors that hold it.
    pub(crate) fn charge(&mut self, op: &Op) {
        let heap = op.f.capacity()
            + value_bytes(&op.value)
            + op.node.as_ref().map_or(0, String::capacity)
            + op.error.as_ref().map_or(0, String::capacity)
            + op.extra
                .iter()
                .map(|(k, v)| k.capacity() + ENTRY_BYTES + value_bytes(v))
                .sum::<usize>();
        self.charge_heap(heap);
    }
}

/// The size of a JSON value inline (`serde_json::Value`).
const VALUE_BYTES: usize = std::mem::size_of::<Value>();
/// What one entry of a JSON object costs besides its key and value (the map's nodes).
const ENTRY_BYTES: usize = VALUE_BYTES + 48;

/// The heap a JSON value holds, estimated from its shape.
pub(crate) fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity(),
        Value::Array(items) => {
            items.capacity() * VALUE_BYTES + items.iter().map(value_bytes).sum::<usize>()
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| k.capacity() + ENTRY_BYTES + value_bytes(v))
            .sum(),
    }
}

/// What one walk over a parsed line finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ValueStats {
    /// The heap the values hold, estimated as [`value_bytes`] does.
    pub(crate) bytes: usize,
    /// Whether any number is not an integer (so the text it came from may hold an
    /// integer too large for 64 bits, which JSON parsers round to a float).
    pub(crate) has_float: bool,
}

impl ValueStats {
    /// The stats of a JSON object's fields.
    pub(crate) fn of_object(map: &serde_json::Map<String, Value>) -> ValueStats {
        let mut stats = ValueStats::default();
        for (k, v) in map {
            stats.bytes += k.capacity() + ENTRY_BYTES;
            stats.add(v);
        }
        stats
    }

    fn add(&mut self, value: &Value) {
        match value {
            Value::Null | Value::Bool(_) => {}
            Value::Number(n) => self.has_float |= n.is_f64(),
            Value::String(s) => self.bytes += s.capacity(),
            Value::Array(items) => {
                self.bytes += items.capacity() * VALUE_BYTES;
                for item in items {
                    self.add(item);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    self.bytes += k.capacity() + ENTRY_BYTES;
                    self.add(v);
                }
            }
        }
    }
}

/// The first integer literal in JSON text that does not fit in 64 bits (signed, or
/// unsigned when positive), outside strings. Such integers would be rounded to floats,
/// so that 2^70 and 2^70+1 compare equal; they are refused instead.
pub(crate) fn oversized_integer(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                i += 1;
            }
            let token = &text[start..i];
            let integer = !token.contains(['.', 'e', 'E']);
            if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                return Some(token);
            }
            continue;
        }
        i += 1;
    }
    None
}

/// The message for an integer too large to keep exactly.
pub(crate) fn oversized_integer_message(token: &str) -> String {
    let shown = if token.len() > 40 {
        format!("{}… ({} digits)", &token[..40], token.len())
    } else {
        token.to_string()
    };
    format!(
        "the integer {shown} does not fit in 64 bits: Faultline keeps integers exact and cannot compare it (write it as a string if it is an identifier)"
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;

    fn lines(text: &[u8], max: usize) -> Vec<(usize, Result<String, LineError>)> {
        let mut source = LineSource::new(Cursor::new(text.to_vec()), max);
        let mut out = Vec::new();
        while let Some(line) = source.next() {
            out.push((line.number, line.text.map(str::to_string)));
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_endings_stripped() {
        assert_eq!(
            lines(b"a\r\nb\n\nc", 10),
            vec![
                (1, Ok("a".into())),
                (2, Ok("b".into())),
                (3, Ok(String::new())),
                (4, Ok("c".into()))
            ]
        );
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_byte_more_stops_reading() {
        assert_eq!(lines(b"abcd\nx\n", 4)[0], (1, Ok("abcd".into())));
        assert_eq!(
            lines(b"ab\nabcde\nx\n", 4),
            vec![
                (1, Ok("ab".into())),
                (2, Err(LineError::TooLong { max: 4 }))
            ]
        );
    }

    #[test]
    fn an_endless_line_stops_at_the_limit() {
        // /dev/zero: NUL bytes and no newline, forever.
        let zeros = std::io::repeat(0).take(u64::MAX);
        let mut source = LineSource::new(std::io::BufReader::new(zeros), 1 << 16);
        let first = source.next().map(|line| (line.number, line.text));
        assert_eq!(first, Some((1, Err(LineError::TooLong { max: 1 << 16 }))));
        assert!(source.next().is_none());
    }

    #[test]
    fn invalid_utf8_names_the_column_and_reading_goes_on() {
        let got = lines(b"ok\nab\xffc\nnext\n", 100);
        assert_eq!(got[1], (2, Err(LineError::NotUtf8 { offset: 2 })));
        assert_eq!(got[2], (3, Ok("next".into())));
    }

    #[test]
    fn oversized_integers_are_found_outside_strings_only() {
        assert_eq!(
            oversized_integer(r#"{"a":1180591620717411303424}"#),
            Some("1180591620717411303424")
        );
        assert_eq!(
            oversized_integer(r#"{"a":-9223372036854775809}"#),
            Some("-9223372036854775809")
        );
        assert_eq!(oversized_integer(r#"{"a":18446744073709551615}"#), None);
        assert_eq!(oversized_integer(r#"{"a":-9223372036854775808}"#), None);
        assert_eq!(oversized_integer(r#"{"a":"1180591620717411303424"}"#), None);
        assert_eq!(oversized_integer(r#"{"a\"1":1.5e300,"b":[1,2]}"#), None);
    }

    #[test]
    fn the_budget_refuses_a_line_that_could_pass_the_limit() {
        let budget = MemoryBudget::new(1000 * WORST_EXPANSION);
        assert!(budget.admit(1000).is_ok());
        let message = budget.admit(1001).unwrap_err();
        assert!(message.contains("--memory-limit"), "{message}");
    }

    #[test]
    fn value_sizes_grow_with_the_value() {
        let small: Value = serde_json::from_str("[1,2]").unwrap();
        let large: Value = serde_json::from_str("[1,2,3,4,5,6,7,8,9,10,11,12]").unwrap();
        assert!(value_bytes(&large) > value_bytes(&small));
        let object = |text: &str| match serde_json::from_str(text).unwrap() {
            Value::Object(map) => ValueStats::of_object(&map),
            _ => unreachable!(),
        };
        assert!(object(r#"{"a":[1,[2.5]]}"#).has_float);
        assert!(!object(r#"{"a":[1,2]}"#).has_float);
        assert_eq!(
            object(r#"{"value":[1,2]}"#).bytes,
            "value".len() + ENTRY_BYTES + value_bytes(&small)
        );
    }
}
