//! A streaming EDN reader: the operation maps of a file, each with the line it starts
//! on, read line by line with an explicit stack (no recursion, nesting bounded).
//!
//! Written here rather than taken from a crate because a history reader needs what the
//! EDN crates do not give: line numbers for every form, several forms on one line, input
//! larger than memory read as a stream, bounded nesting instead of a stack overflow, and
//! a refusal of every byte it does not understand.
//!
//! Values become JSON as `docs/checking-jepsen.md` tabulates: keywords and symbols
//! become strings without their colon (`:ns/name` → `"ns/name"`), sets and lists become
//! arrays, map keys that are not keywords, symbols or strings become their JSON text,
//! characters become one-character strings, tagged elements (`#jepsen.history.Op{…}`,
//! `#inst "…"`) become what they tag, `#_` discards the next form, metadata is dropped.

use serde_json::{Map, Value};

use super::atoms::{atom, read_char, read_string_body, token_end};

/// Nesting deeper than this is refused.
pub(crate) const MAX_DEPTH: usize = 128;

/// How the file holds its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Nothing read yet.
    Unknown,
    /// One operation map after another (what Jepsen writes).
    Maps,
    /// One vector or list of operation maps: inside it.
    InVector,
    /// The vector has closed: only comments and white space may follow.
    Closed,
}

/// What a collection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Vector,
    Set,
    Map,
}

impl Kind {
    fn closer(self) -> char {
        match self {
            Kind::List => ')',
            Kind::Vector => ']',
            Kind::Set | Kind::Map => '}',
        }
    }
}

/// Something that applies to the next complete form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Prefix {
    /// `#_`: the form is dropped.
    Discard,
    /// `#tag`: the form is kept as it is.
    Tag,
    /// `^`: the form is metadata, and dropped.
    Meta,
}

/// An open collection.
#[derive(Debug)]
struct Frame {
    kind: Kind,
    items: Vec<Value>,
    map: Map<String, Value>,
    key: Option<String>,
    prefixes: Vec<Prefix>,
}

/// The reader's state between lines.
#[derive(Debug)]
pub(crate) struct FormReader {
    layout: Layout,
    stack: Vec<Frame>,
    /// Prefixes waiting at the top level (or directly inside the history vector).
    top_prefixes: Vec<Prefix>,
    /// An open string: its text so far.
    string: Option<String>,
    /// The line the operation being read started on.
    start_line: usize,
    /// Bytes of the operation being read, over all its lines.
    pending_bytes: usize,
    max_form_bytes: usize,
}

/// One operation map read, with the line it starts on.
pub(crate) type Form = (usize, Value);

impl FormReader {
    /// A reader that refuses an operation longer than `max_form_bytes`.
    pub(crate) fn new(max_form_bytes: usize) -> FormReader {
        FormReader {
            layout: Layout::Unknown,
            stack: Vec::new(),
            top_prefixes: Vec::new(),
            string: None,
            start_line: 0,
            pending_bytes: 0,
            max_form_bytes,
        }
    }

    /// True when no operation is half read.
    fn idle(&self) -> bool {
        self.stack.is_empty() && self.string.is_none() && self.top_prefixes.is_empty()
    }

    /// Reads line `number`, appending the operations that end on it to `out`.
    pub(crate) fn feed(
        &mut self,
        number: usize,
        text: &str,
        out: &mut Vec<Form>,
    ) -> Result<(), String> {
        if !self.idle() {
            self.pending_bytes += text.len() + 1;
            if self.pending_bytes > self.max_form_bytes {
                return Err(format!(
                    "the operation starting on line {} is longer than {} bytes (a bracket or quote that never closes?)",
                    self.start_line, self.max_form_bytes
                ));
            }
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        if let Some(mut open) = self.string.take() {
            open.push('\n');
            match read_string_body(text, 0, &mut open)? {
                Some(end) => {
                    i = end;
                    self.deliver(Value::String(open), out)?;
                }
                None => {
                    self.string = Some(open);
                    return Ok(());
                }
            }
        }
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_whitespace() || b == b',' {
                i += 1;
                continue;
            }
            if b == b';' {
                break;
            }
            if self.idle() {
                self.begin(number, text.len() - i)?;
            }
            match b {
                b'(' | b'[' | b'{' => {
                    let kind = match b {
                        b'(' => Kind::List,
                        b'[' => Kind::Vector,
                        _ => Kind::Map,
                    };
                    self.open(kind)?;
                    i += 1;
                }
                b')' | b']' | b'}' => {
                    self.close(b as char, out)?;
                    i += 1;
                }
                b'"' => {
                    let mut body = String::new();
                    match read_string_body(text, i + 1, &mut body)? {
                        Some(end) => {
                            i = end;
                            self.deliver(Value::String(body), out)?;
                        }
                        None => {
                            self.string = Some(body);
                            return Ok(());
                        }
                    }
                }
                b'#' => i = self.dispatch(text, i)?,
                b'^' => {
                    self.prefixes().push(Prefix::Meta);
                    i += 1;
                }
                b'\\' => {
                    let (value, end) = read_char(text, i)?;
                    i = end;
                    self.deliver(value, out)?;
                }
                _ => {
                    let end = token_end(bytes, i);
                    let value = atom(&text[i..end])?;
                    i = end;
                    self.deliver(value, out)?;
                }
            }
        }
        Ok(())
    }

    /// Checks at the end of the input that nothing is left open.
    pub(crate) fn finish(&self) -> Result<(), (usize, String)> {
        let at = self.start_line;
        if self.string.is_some() {
            return Err((
                at,
                "a string that starts in the operation on this line never closes (was the file truncated?)".into(),
            ));
        }
        if let Some(frame) = self.stack.last() {
            return Err((
                at,
                format!(
                    "the operation starting on this line never closes: `{}` expected (was the file truncated?)",
                    frame.kind.closer()
                ),
            ));
        }
        if !self.top_prefixes.is_empty() {
            return Err((at, "a `#_`, tag or `^` here has no form after it".into()));
        }
        if self.layout == Layout::InVector {
            return Err((
                at,
                "the vector of operations never closes: `]` expected (was the file truncated?)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Starts a new operation (or the history vector) at `line`.
    fn begin(&mut self, line: usize, rest_of_line: usize) -> Result<(), String> {
        if self.layout == Layout::Closed {
            return Err(
                "more after the vector of operations closed: a file holds either one vector of operations or one map after another".into(),
            );
        }
        self.start_line = line;
        self.pending_bytes = rest_of_line;
        Ok(())
    }

    /// The prefixes that apply to the next form at the current level.
    fn prefixes(&mut self) -> &mut Vec<Prefix> {
        match self.stack.last_mut() {
            Some(frame) => &mut frame.prefixes,
            None => &mut self.top_prefixes,
        }
    }

    /// Handles `#`: sets, discards, tags, symbolic values, namespaced maps.
    fn dispatch(&mut self, text: &str, i: usize) -> Result<usize, String> {
        let bytes = text.as_bytes();
        match bytes.get(i + 1) {
            Some(b'{') => {
                self.open(Kind::Set)?;
                Ok(i + 2)
            }
            Some(b'_') => {
                self.prefixes().push(Prefix::Discard);
                Ok(i + 2)
            }
            Some(b'#') => {
                let end = token_end(bytes, i + 2);
                Err(format!(
                    "`{}`: symbolic numbers (##Inf, ##-Inf, ##NaN) have no exact value to compare",
                    &text[i..end]
                ))
            }
            Some(b':') => {
                // A namespaced map, `#:ns{…}`: read as the map.
                let end = token_end(bytes, i + 2);
                Ok(end)
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let end = token_end(bytes, i + 1);
                self.prefixes().push(Prefix::Tag);
                Ok(end)
            }
            _ => Err(format!(
                "`{}` is not EDN: `#` must start a set `#{{`, a discard `#_` or a tag `#name`",
                &text[i..token_end(bytes, i + 1).max(i + 1)]
            )),
        }
    }

    /// Opens a collection.
    fn open(&mut self, kind: Kind) -> Result<(), String> {
        let top = self.stack.is_empty();
        if top && self.top_prefixes.is_empty() {
            if self.layout == Layout::Unknown && matches!(kind, Kind::Vector | Kind::List) {
                self.layout = Layout::InVector;
                return Ok(());
            }
            if self.layout == Layout::Maps && matches!(kind, Kind::Vector | Kind::List) {
                return Err(
                    "expected an operation map, got a vector: a file holds either one vector of operations or one map after another".into(),
                );
            }
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "nested deeper than {MAX_DEPTH} levels: no history operation is that deep"
            ));
        }
        self.stack.push(Frame {
            kind,
            items: Vec::new(),
            map: Map::new(),
            key: None,
            prefixes: Vec::new(),
        });
        Ok(())
    }

    /// Closes the innermost collection with `closer`.
    fn close(&mut self, closer: char, out: &mut Vec<Form>) -> Result<(), String> {
        let Some(frame) = self.stack.pop() else {
            if self.layout == Layout::InVector && closer != '}' && self.top_prefixes.is_empty() {
                self.layout = Layout::Closed;
                return Ok(());
            }
            return Err(format!("`{closer}` closes nothing"));
        };
        if frame.kind.closer() != closer {
            return Err(format!(
                "`{closer}` where `{}` was expected",
                frame.kind.closer()
            ));
        }
        if !frame.prefixes.is_empty() {
            return Err(format!(
                "a `#_`, tag or `^` before `{closer}` has no form after it"
            ));
        }
        let value = match frame.kind {
            Kind::List | Kind::Vector | Kind::Set => Value::Array(frame.items),
            Kind::Map => {
                if let Some(key) = frame.key {
                    return Err(format!(
                        "the map's key `{key}` has no value (a map holds key-value pairs)"
                    ));
                }
                Value::Object(frame.map)
            }
        };
        self.deliver(value, out)
    }

    /// Gives a complete form to the level it belongs to, through any prefixes.
    fn deliver(&mut self, value: Value, out: &mut Vec<Form>) -> Result<(), String> {
        loop {
            match self.prefixes().pop() {
                None => break,
                Some(Prefix::Tag) => {}
                Some(Prefix::Discard | Prefix::Meta) => return Ok(()),
            }
        }
        let Some(frame) = self.stack.last_mut() else {
            return self.emit(value, out);
        };
        if frame.kind != Kind::Map {
            frame.items.push(value);
            return Ok(());
        }
        match frame.key.take() {
            None => frame.key = Some(key_text(value)),
            Some(key) => {
                frame.map.insert(key, value);
            }
        }
        Ok(())
    }

    /// A complete top-level form: an operation.
    fn emit(&mut self, value: Value, out: &mut Vec<Form>) -> Result<(), String> {
        match self.layout {
            Layout::Unknown => self.layout = Layout::Maps,
            Layout::Closed => {
                return Err("more after the vector of operations closed".into());
            }
            Layout::Maps | Layout::InVector => {}
        }
        out.push((self.start_line, value));
        self.pending_bytes = 0;
        Ok(())
    }
}

/// A map key as text: strings (from keywords, symbols and strings) as they are, any
/// other value as its JSON text (`{0 100}` → `"0"`).
fn key_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Form>, (usize, String)> {
        let mut reader = FormReader::new(1 << 20);
        let mut out = Vec::new();
        for (n, line) in text.split('\n').enumerate() {
            reader.feed(n + 1, line, &mut out).map_err(|m| (n + 1, m))?;
        }
        reader.finish()?;
        Ok(out)
    }

    fn values(text: &str) -> Vec<String> {
        read(text)
            .unwrap()
            .into_iter()
            .map(|(line, v)| format!("{line}:{v}"))
            .collect()
    }

    #[test]
    fn several_maps_on_one_line_are_all_read() {
        assert_eq!(
            values("{:a 1} {:b 2}\n{:c 3}"),
            vec![r#"1:{"a":1}"#, r#"1:{"b":2}"#, r#"2:{"c":3}"#]
        );
    }

    #[test]
    fn a_vector_of_maps_gives_each_element_its_own_line() {
        assert_eq!(
            values("; a comment\n[{:a 1}\n {:b \"x\"} {:c nil}]\n; after"),
            vec![r#"2:{"a":1}"#, r#"3:{"b":"x"}"#, r#"3:{"c":null}"#]
        );
    }

    #[test]
    fn junk_and_stray_closers_are_refused() {
        assert_eq!(
            read("{:a 1} }").unwrap_err(),
            (1, "`}` closes nothing".into())
        );
        assert_eq!(read("{:a 1]").unwrap_err().1, "`]` where `}` was expected");
        assert!(
            read("[{:a 1}] {:b 2}")
                .unwrap_err()
                .1
                .contains("after the vector")
        );
        assert!(
            read("[{:a 1}]]")
                .unwrap_err()
                .1
                .contains("after the vector")
        );
        assert!(read("{:a 1 :b}").unwrap_err().1.contains("has no value"));
        assert!(
            read("{:a 1} [{:b 2}]")
                .unwrap_err()
                .1
                .contains("got a vector")
        );
    }

    #[test]
    fn truncation_is_reported_at_the_operation_start() {
        assert_eq!(
            read("{:a 1}\n{:b [1 2\n3").unwrap_err().0,
            2,
            "the unclosed map starts on line 2"
        );
        assert!(read("[{:a 1}").unwrap_err().1.contains("never closes"));
        assert!(read("{:a \"abc").unwrap_err().1.contains("string"));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{{:a {}}}", "[".repeat(10_000));
        let error = read(&deep).unwrap_err();
        assert!(error.1.contains("nested deeper"), "{error:?}");
        let ok = format!("{{:a {}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(read(&ok).unwrap().len(), 1);
    }

    #[test]
    fn edn_atoms_become_json() {
        assert_eq!(
            values(
                r#"{:k :ns/kw, :s sym, :c \a, :n \newline, :t true, :x -5, :y 5N, :f 1.5, :m 2.5M, "str" "q\"\n", 3 #{1 2}, [1] (2)}"#
            ),
            vec![
                r#"1:{"k":"ns/kw","s":"sym","c":"a","n":"\n","t":true,"x":-5,"y":5,"f":1.5,"m":2.5,"str":"q\"\n","3":[1,2],"[1]":[2]}"#
            ]
        );
    }

    #[test]
    fn tags_discards_and_metadata() {
        assert_eq!(
            values(
                r#"#jepsen.history.Op{:a #inst "2020-01-01", :b #_ 1 2, :c ^:m [3], #_ #_ :d 4}"#
            ),
            vec![r#"1:{"a":"2020-01-01","b":2,"c":[3]}"#]
        );
        assert_eq!(values("#_ {:x 1} {:y 2}"), vec![r#"1:{"y":2}"#]);
        assert!(read("{:a #_}").unwrap_err().1.contains("no form after it"));
    }

    #[test]
    fn numbers_stay_exact() {
        assert_eq!(
            values("{:a 18446744073709551615}"),
            vec![r#"1:{"a":18446744073709551615}"#]
        );
        let error = read("{:a 1180591620717411303424}").unwrap_err().1;
        assert!(error.contains("does not fit in 64 bits"), "{error}");
        assert!(read("{:a 1180591620717411303424N}").is_err());
        assert!(read("{:a 1/3}").unwrap_err().1.contains("ratio"));
        assert!(read("{:a ##Inf}").is_err());
    }

    #[test]
    fn strings_may_span_lines() {
        assert_eq!(
            values("{:a \"x\ny\" :b 1}"),
            vec![r#"1:{"a":"x\ny","b":1}"#]
        );
    }

    #[test]
    fn an_operation_longer_than_the_limit_is_refused() {
        let mut reader = FormReader::new(10);
        let mut out = Vec::new();
        reader.feed(1, "{:a", &mut out).unwrap();
        let error = reader.feed(2, "[1 2 3 4 5 6 7 8]", &mut out).unwrap_err();
        assert!(error.contains("line 1"), "{error}");
    }
}
