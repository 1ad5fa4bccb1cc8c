//! The shard of a protocol event: a node hosting several consensus groups logs each
//! group's events inside a `tracing` span `shard{shard=K}`, which tracing's text format
//! writes before the target:
//! `2026-12-05T12:00:00.123456Z  INFO shard{shard=2}: protocol: role node=3 term=5 role=leader`.
//! Other spans may enclose it (`a{x=1}:shard{shard=2}: protocol: …`); only a span named
//! exactly `shard` with a `shard=` field counts, the innermost one if several do.

/// The shard named by the spans at the end of `head` (a line up to ` protocol: `):
/// `Ok(Some(K))` for a span `shard{… shard=K …}`, `Ok(None)` without one, and the
/// reason when its `shard=` is not a non-negative integer.
pub(super) fn shard(head: &str) -> Result<Option<u32>, String> {
    // Spans are written `name{fields}:` (or `name:` without fields) one after the
    // other, innermost last: read them from the end.
    let mut rest = head;
    while let Some(span) = rest.strip_suffix(':') {
        let (before_fields, fields) = match span.strip_suffix('}') {
            Some(inner) => match opening_brace(inner) {
                Some(open) => (&inner[..open], Some(&inner[open + 1..])),
                None => return Ok(None),
            },
            None => (span, None),
        };
        let name_at = name_start(before_fields);
        let name = &before_fields[name_at..];
        if name.is_empty() {
            return Ok(None);
        }
        if name == "shard"
            && let Some(fields) = fields
            && let Some(value) = field(fields, "shard")
        {
            return value.parse().map(Some).map_err(|_| {
                format!("span `shard{{{fields}}}`: `shard={value}` is not a non-negative integer")
            });
        }
        rest = &before_fields[..name_at];
    }
    Ok(None)
}

/// Where the `{` matching the `}` just past the end of `inner` is: braces nest, and
/// braces inside a quoted string (a `?`-formatted field) do not count.
fn opening_brace(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let (mut depth, mut quoted) = (0usize, false);
    for (i, &b) in bytes.iter().enumerate().rev() {
        if b == b'"' && !escaped(&bytes[..i]) {
            quoted = !quoted;
            continue;
        }
        if quoted {
            continue;
        }
        match b {
            b'}' => depth += 1,
            b'{' if depth == 0 => return Some(i),
            b'{' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Whether a character after `before` is escaped: an odd number of `\` ends `before`.
fn escaped(before: &[u8]) -> bool {
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Where the span name that ends `text` starts: letters, digits, `_`, `-`, `.`, and
/// `::` between them (a module path).
fn name_start(text: &str) -> usize {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut start = text.len();
    loop {
        start = text[..start]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_name(c))
            .last()
            .map_or(start, |(i, _)| i);
        let Some(path) = text[..start].strip_suffix("::") else {
            return start;
        };
        if !path.chars().next_back().is_some_and(is_name) || start == text.len() {
            return start;
        }
        start = path.len();
    }
}

/// The value of `key=` among a span's fields (space-separated `key=value`), if any.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    fields
        .split_ascii_whitespace()
        .filter_map(|f| f.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-12-05T12:00:00.123456Z  INFO";

    fn of(spans: &str) -> Result<Option<u32>, String> {
        shard(&format!("{TS} {spans}"))
    }

    #[test]
    fn a_shard_span_names_the_shard() {
        assert_eq!(of("shard{shard=2}:"), Ok(Some(2)));
        assert_eq!(of("shard{shard=0}:"), Ok(Some(0)));
        assert_eq!(of("shard{epoch=3 shard=11}:"), Ok(Some(11)));
    }

    #[test]
    fn no_span_or_other_spans_are_no_shard() {
        assert_eq!(shard(TS), Ok(None));
        assert_eq!(shard("x"), Ok(None));
        assert_eq!(shard(""), Ok(None));
        assert_eq!(of("a{x=1}:"), Ok(None));
        assert_eq!(of("shard{id=2}:"), Ok(None), "no `shard=` field");
        assert_eq!(of("shards{shard=2}:"), Ok(None), "not named `shard`");
        assert_eq!(of("myshard{shard=2}:"), Ok(None), "not named `shard`");
        assert_eq!(of("shard:"), Ok(None), "no fields");
    }

    #[test]
    fn other_spans_around_the_shard_span_are_skipped() {
        assert_eq!(of("a{x=1}:shard{shard=2}:"), Ok(Some(2)));
        assert_eq!(of("shard{shard=2}:a{x=1}:"), Ok(Some(2)));
        assert_eq!(of("outer:shard{shard=4}:inner:"), Ok(Some(4)));
        assert_eq!(of("srv::conn{peer=\"n{2}\"}:shard{shard=5}:"), Ok(Some(5)));
        assert_eq!(
            of("shard{shard=6}:req{q=\"a\\\"}: shard{shard=9}:\"}:"),
            Ok(Some(6)),
            "a quoted field holding braces and a fake span"
        );
        assert_eq!(of("shard{shard=6}:x::y{n=1}:"), Ok(Some(6)));
        assert_eq!(
            of("shard{shard=1}:shard{shard=3}:"),
            Ok(Some(3)),
            "innermost"
        );
    }

    #[test]
    fn a_malformed_shard_value_says_why() {
        for bad in ["x", "-1", "", "2.5", "\"2\"", "99999999999"] {
            let Err(why) = of(&format!("a{{x=1}}:shard{{shard={bad}}}:")) else {
                panic!("`shard={bad}` accepted");
            };
            assert!(why.contains(&format!("`shard={bad}`")), "{why}");
            assert!(why.contains("not a non-negative integer"), "{why}");
        }
    }
}
