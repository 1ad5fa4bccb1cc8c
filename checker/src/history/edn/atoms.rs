//! EDN's atoms: strings, characters, numbers, keywords, symbols, and where a token ends.

use serde_json::{Number, Value};

/// The end of a token (a number, keyword, symbol) starting at `start`.
pub(super) fn token_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < bytes.len()
        && !bytes[end].is_ascii_whitespace()
        && !matches!(
            bytes[end],
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
    {
        end += 1;
    }
    end
}

/// Reads a string's body from `start` (just after a quote) into `out`. Returns where the
/// closing quote ends, or `None` when the line ends first (the string goes on).
pub(super) fn read_string_body(
    text: &str,
    start: usize,
    out: &mut String,
) -> Result<Option<usize>, String> {
    let mut chars = text[start..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Ok(Some(start + offset + 1)),
            '\\' => {
                let Some((_, escaped)) = chars.next() else {
                    return Err("a string ends in a lone `\\`".into());
                };
                match escaped {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("`\\u{hex}` is not a character"))?;
                        out.push(code);
                    }
                    other => return Err(format!("`\\{other}` is not an escape EDN knows")),
                }
            }
            c => out.push(c),
        }
    }
    Ok(None)
}

/// Reads a character literal (`\a`, `\newline`, `\u0041`) at `start`.
pub(super) fn read_char(text: &str, start: usize) -> Result<(Value, usize), String> {
    let rest = &text[start + 1..];
    let Some(first) = rest.chars().next() else {
        return Err("a `\\` with no character after it".into());
    };
    // A single character, even a delimiter (`\(`), or a name.
    let name_end = token_end(rest.as_bytes(), first.len_utf8());
    let name = &rest[..name_end.max(first.len_utf8())];
    let c = match name {
        "newline" => '\n',
        "space" => ' ',
        "tab" => '\t',
        "return" => '\r',
        "backspace" => '\u{8}',
        "formfeed" => '\u{c}',
        _ if name.len() == first.len_utf8() => first,
        _ if name.starts_with('u') && name.len() == 5 => u32::from_str_radix(&name[1..], 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("`\\{name}` is not a character"))?,
        _ => return Err(format!("`\\{name}` is not a character")),
    };
    Ok((Value::String(c.to_string()), start + 1 + name.len()))
}

/// A number, keyword, symbol, `nil`, `true` or `false`.
pub(super) fn atom(token: &str) -> Result<Value, String> {
    match token {
        "nil" => return Ok(Value::Null),
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let bytes = token.as_bytes();
    let numeric = bytes[0].is_ascii_digit()
        || (matches!(bytes[0], b'+' | b'-') && bytes.get(1).is_some_and(u8::is_ascii_digit));
    if numeric {
        return number(token);
    }
    if let Some(keyword) = token.strip_prefix(':') {
        let keyword = keyword.strip_prefix(':').unwrap_or(keyword);
        if keyword.is_empty() {
            return Err("`:` with no keyword name".into());
        }
        return Ok(Value::String(keyword.to_string()));
    }
    Ok(Value::String(token.to_string()))
}

/// An EDN number, kept exact: integers must fit in 64 bits.
fn number(token: &str) -> Result<Value, String> {
    let digits = token.strip_prefix('+').unwrap_or(token);
    let integer = digits.strip_suffix('N').unwrap_or(digits);
    if integer.bytes().skip(1).all(|b| b.is_ascii_digit())
        && (integer.as_bytes()[0].is_ascii_digit() || integer.starts_with('-'))
    {
        if let Ok(n) = integer.parse::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = integer.parse::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(crate::history::input::oversized_integer_message(integer));
    }
    if token.contains('/') {
        return Err(format!(
            "the ratio {token} is not supported: write it as an integer or a decimal"
        ));
    }
    let decimal = digits.strip_suffix('M').unwrap_or(digits);
    decimal
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("`{token}` is not a number"))
}
