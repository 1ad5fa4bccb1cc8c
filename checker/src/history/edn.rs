//! Importing Jepsen's `history.edn`.
//!
//! Accepted layouts: one operation map per line (what Jepsen writes), or a single vector
//! (or list) of maps. Keywords become strings (`:read` → `"read"`), `:process :nemesis`
//! becomes `"nemesis"`, sets and lists become arrays, map keys that are not keywords or
//! strings are written as EDN text (`{0 100}` → `{"0": 100}`), and tagged records such
//! as `#jepsen.history.Op{…}` are read as their map.
//!
//! Older Jepsen and Knossos histories may lack `:index` and `:time`: the index is then
//! the operation's position, and a missing time is taken to be the index, so that the
//! file's order is the real-time order (which is what such histories mean).
//!
//! Independent histories (`jepsen.independent`) carry `[k v]` tuples as values. A history
//! is read as independent when every client operation's value is a two-element vector;
//! the tuple then becomes `key` and `value`. Ordinary register histories never look like
//! that, because their reads are invoked with `nil`.

use std::path::Path;

use edn_format::{Keyword, Value as Edn};
use serde_json::{Map, Number, Value};

use super::parse::op_from_object;
use super::{History, HistoryError, InputError, MAX_REPORTED_PROBLEMS, Validator};

/// Reads and validates an EDN history file.
pub fn read_edn_file(path: &Path) -> Result<History, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::Io {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })?;
    read_edn_str(&path.display().to_string(), &text)
}

/// Reads and validates an EDN history held in memory; `source_name` names it in errors.
pub fn read_edn_str(source_name: &str, text: &str) -> Result<History, InputError> {
    let maps = split_maps(source_name, text)?;
    let mut objects = Vec::with_capacity(maps.len());
    for (position, (line, edn)) in maps.into_iter().enumerate() {
        let object = op_object(edn, position).map_err(|m| InputError::at(source_name, line, m))?;
        objects.push((line, object));
    }
    lift_independent_tuples(&mut objects);
    let mut problems = Vec::new();
    let mut more = 0;
    let mut ops = Vec::with_capacity(objects.len());
    let mut lines = Vec::with_capacity(objects.len());
    let mut validator = Validator::new();
    for (line, object) in objects {
        let messages = match op_from_object(object) {
            Ok(op) => {
                let messages = validator.check(&op, line);
                ops.push(op);
                lines.push(line);
                messages
            }
            Err(message) => {
                validator.skip_line();
                vec![message]
            }
        };
        for message in messages {
            if problems.len() < MAX_REPORTED_PROBLEMS {
                problems.push(HistoryError {
                    source_name: source_name.to_string(),
                    line,
                    message,
                });
            } else {
                more += 1;
            }
        }
    }
    if problems.is_empty() {
        Ok(History::from_parts(source_name.to_string(), ops, lines))
    } else {
        Err(InputError::Invalid { problems, more })
    }
}

/// Splits the text into operation maps, each with the line it starts on (or, inside a
/// single vector, its 1-based position).
fn split_maps(source_name: &str, text: &str) -> Result<Vec<(usize, Edn)>, InputError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('(') {
        let first_line = text.len() - trimmed.len();
        let line_of_start = text[..first_line].matches('\n').count() + 1;
        let whole = edn_format::parse_str(text).map_err(|e| {
            InputError::at(
                source_name,
                line_of_start + e.col.saturating_sub(1),
                format!("not valid EDN: {}", e.error),
            )
        })?;
        return match whole {
            Edn::Vector(items) | Edn::List(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i + 1, v))
                .collect()),
            _ => Err(InputError::at(
                source_name,
                line_of_start,
                "expected a vector of operation maps",
            )),
        };
    }
    let mut maps = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let (start, mut chunk) = match pending.take() {
            Some((start, chunk)) => (start, chunk),
            None if line.trim().is_empty() || line.trim_start().starts_with(';') => continue,
            None => (number, String::new()),
        };
        chunk.push_str(line);
        chunk.push('\n');
        match edn_format::parse_str(&chunk) {
            Ok(value) => maps.push((start, value)),
            // A map written over several lines: keep reading until it closes.
            Err(e) if matches!(e.error, edn_format::ParserError::UnexpectedEndOfInput) => {
                pending = Some((start, chunk));
            }
            Err(e) => {
                return Err(InputError::at(
                    source_name,
                    start + e.col.saturating_sub(1),
                    format!("not valid EDN: {}", e.error),
                ));
            }
        }
    }
    if let Some((start, _)) = pending {
        return Err(InputError::at(
            source_name,
            start,
            "not valid EDN: the map starting here never closes (was the file truncated?)",
        ));
    }
    Ok(maps)
}

/// Converts one operation map into the JSON object the JSONL reader would see.
fn op_object(edn: Edn, position: usize) -> Result<Map<String, Value>, String> {
    let edn = match edn {
        Edn::TaggedElement(_, inner) => *inner,
        other => other,
    };
    let Edn::Map(entries) = edn else {
        return Err(format!(
            "expected an operation map, got {}",
            edn_format::emit_str(&edn)
        ));
    };
    let mut object = Map::new();
    for (key, value) in entries {
        let name = map_key(&key);
        let converted = match name.as_str() {
            "process" => match &value {
                Edn::Keyword(k) if k.name() == "nemesis" => Value::from("nemesis"),
                _ => to_json(&value),
            },
            "type" | "f" => Value::from(atom_text(&value)),
            "error" | "node" => match &value {
                Edn::Nil => Value::Null,
                Edn::String(s) => Value::from(s.as_str()),
                other => Value::from(atom_text(other)),
            },
            _ => to_json(&value),
        };
        object.insert(name, converted);
    }
    object
        .entry("index")
        .or_insert_with(|| Value::from(position as u64));
    if !object.contains_key("time") {
        let index = object
            .get("index")
            .cloned()
            .unwrap_or(Value::from(position as u64));
        object.insert("time".to_string(), index);
    }
    Ok(object)
}

/// Moves `[k v]` tuples into `key` and `value` when every client operation has one.
fn lift_independent_tuples(objects: &mut [(usize, Map<String, Value>)]) {
    let is_client = |o: &Map<String, Value>| o.get("process").is_some_and(Value::is_u64);
    let is_tuple = |o: &Map<String, Value>| {
        matches!(o.get("value"), Some(Value::Array(items)) if items.len() == 2
            && matches!(items[0], Value::String(_) | Value::Number(_)))
    };
    let mut clients = objects
        .iter()
        .map(|(_, o)| o)
        .filter(|o| is_client(o))
        .peekable();
    if clients.peek().is_none()
        || !clients.all(is_tuple)
        || objects.iter().any(|(_, o)| o.contains_key("key"))
    {
        return;
    }
    for (_, object) in objects.iter_mut().filter(|(_, o)| is_client(o)) {
        if let Some(Value::Array(mut items)) = object.remove("value") {
            let value = items.pop().unwrap_or(Value::Null);
            let key = items.pop().unwrap_or(Value::Null);
            object.insert("key".to_string(), key);
            object.insert("value".to_string(), value);
        }
    }
}

fn keyword_text(keyword: &Keyword) -> String {
    match keyword.namespace() {
        Some(ns) => format!("{ns}/{}", keyword.name()),
        None => keyword.name().to_string(),
    }
}

/// Text for atoms used as names: keywords and symbols without their colon.
fn atom_text(value: &Edn) -> String {
    match value {
        Edn::Keyword(k) => keyword_text(k),
        Edn::Symbol(s) => s.name().to_string(),
        Edn::String(s) => s.clone(),
        other => edn_format::emit_str(other),
    }
}

fn map_key(value: &Edn) -> String {
    match value {
        Edn::Keyword(_) | Edn::Symbol(_) | Edn::String(_) => atom_text(value),
        other => edn_format::emit_str(other),
    }
}

/// Converts an EDN value to JSON, as described in the module documentation.
pub fn to_json(value: &Edn) -> Value {
    match value {
        Edn::Nil => Value::Null,
        Edn::Boolean(b) => Value::Bool(*b),
        Edn::Integer(n) => Value::from(*n),
        Edn::Float(f) => Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number),
        Edn::BigInt(n) => n
            .to_string()
            .parse::<i64>()
            .map_or_else(|_| Value::from(n.to_string()), Value::from),
        Edn::Keyword(_) | Edn::Symbol(_) | Edn::String(_) => Value::from(atom_text(value)),
        Edn::Vector(items) | Edn::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Edn::Set(items) => Value::Array(items.iter().map(to_json).collect()),
        Edn::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (map_key(k), to_json(v)))
                .collect(),
        ),
        Edn::TaggedElement(_, inner) => to_json(inner),
        other => Value::from(edn_format::emit_str(other)),
    }
}
