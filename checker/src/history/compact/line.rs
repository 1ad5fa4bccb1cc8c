//! One JSONL line parsed straight into its typed fields: no `serde_json::Value` for
//! the event, nor for a transaction's micro-ops (only a nemesis value, or a client
//! value that is not micro-ops, is kept as JSON). Stricter than the general reader on
//! purpose: whatever it cannot take exactly as that reader would (a duplicate field,
//! a number that is not an integer anywhere in the line, a malformed field) is
//! refused, and the caller falls back to the general reader, which explains it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::history::op::{Key, Op, OpType, Process};

/// A parsed line: the event without its value, and the value.
#[derive(Debug)]
pub(crate) struct ParsedLine {
    /// The event, its `value` left `null`.
    pub(crate) op: Op,
    /// The event's `value` (`null` when absent).
    pub(crate) value: ValueField,
}

/// An event's `value`.
#[derive(Debug, PartialEq)]
pub(crate) enum ValueField {
    /// A list of `append`/`r` micro-ops with integer elements.
    Txn(Vec<RawMop>),
    /// Anything but a list (a list that is not such micro-ops is refused).
    Other(Value),
}

/// A micro-op `[f, key, value]` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMop {
    /// True for `append`, false for `r`.
    pub(crate) append: bool,
    /// The key.
    pub(crate) key: RawKey,
    /// The element or the list.
    pub(crate) value: RawValue,
}

/// A micro-op's key: a string or a (64-bit) integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawKey {
    /// A string key.
    Str(String),
    /// An integer key.
    Int(i64),
}

/// A micro-op's value: `null`, an integer, or a list of integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawValue {
    /// `null`.
    Null,
    /// An integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
}

/// Parses one non-blank line; the error says why the compact reader cannot take it.
pub(crate) fn parse_line(text: &str) -> Result<ParsedLine, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = LineSeed.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(parsed)
}

/// True when a number in `value` is not an integer: its text may have held an integer
/// beyond 64 bits, which the general reader refuses.
pub(crate) fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// The fields the format names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Index,
    Time,
    Process,
    Type,
    F,
    Key,
    Value,
    Node,
    Error,
    Other,
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
        Ok(match name {
            "index" => Field::Index,
            "time" => Field::Time,
            "process" => Field::Process,
            "type" => Field::Type,
            "f" => Field::F,
            "key" => Field::Key,
            "value" => Field::Value,
            "node" => Field::Node,
            "error" => Field::Error,
            _ => Field::Other,
        })
    }
}

/// `process`: an integer >= 0 or `"nemesis"`.
struct ProcessField(Process);

impl<'de> de::Deserialize<'de> for ProcessField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ProcessField, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProcessField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer >= 0 or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ProcessField, E> {
                Ok(ProcessField(Process::Client(n)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProcessField, E> {
                match s {
                    "nemesis" => Ok(ProcessField(Process::Nemesis)),
                    _ => Err(E::custom(
                        "`process` must be an integer >= 0 or \"nemesis\"",
                    )),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `type`: one of the four spellings.
struct TypeField(OpType);

impl<'de> de::Deserialize<'de> for TypeField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TypeField, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TypeField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"invoke\", \"ok\", \"fail\" or \"info\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TypeField, E> {
                OpType::parse(s)
                    .map(TypeField)
                    .ok_or_else(|| E::custom("unknown `type`"))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// `node` and `error`: a string or `null`, not kept (checkers ignore them).
struct OptionalText;

impl<'de> de::Deserialize<'de> for OptionalText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OptionalText, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OptionalText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<OptionalText, E> {
                Ok(OptionalText)
            }
            fn visit_unit<E: de::Error>(self) -> Result<OptionalText, E> {
                Ok(OptionalText)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for ValueField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ValueField, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of micro-ops, or anything but a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ValueField, A::Error> {
                let mut mops = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(mop) = seq.next_element::<RawMop>()? {
                    mops.push(mop);
                }
                Ok(ValueField::Txn(mops))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueField, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ValueField::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<ValueField, E> {
                Ok(ValueField::Other(Value::Null))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<ValueField, E> {
                Ok(ValueField::Other(Value::Bool(b)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ValueField, E> {
                Ok(ValueField::Other(Value::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ValueField, E> {
                Ok(ValueField::Other(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ValueField, E> {
                Err(E::custom("a number that is not an integer"))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ValueField, E> {
                Ok(ValueField::Other(Value::from(s)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for RawMop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawMop, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMop;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[\"append\" or \"r\", key, value]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawMop, A::Error> {
                let missing = || de::Error::custom("a micro-op has fewer than 3 elements");
                let append = seq.next_element::<MopF>()?.ok_or_else(missing)?.0;
                let key = seq.next_element::<RawKey>()?.ok_or_else(missing)?;
                let value = seq.next_element::<RawValue>()?.ok_or_else(missing)?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("a micro-op has more than 3 elements"));
                }
                Ok(RawMop { append, key, value })
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// A micro-op's function: `append` (true) or `r`.
struct MopF(bool);

impl<'de> de::Deserialize<'de> for MopF {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MopF, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MopF;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"append\" or \"r\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MopF, E> {
                match s {
                    "append" => Ok(MopF(true)),
                    "r" => Ok(MopF(false)),
                    _ => Err(E::custom("a micro-op function other than append and r")),
                }
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> de::Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawKey, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a 64-bit integer")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawKey, E> {
                Ok(RawKey::Str(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawKey, E> {
                Ok(RawKey::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawKey, E> {
                i64::try_from(n)
                    .map(RawKey::Int)
                    .map_err(|_| E::custom("a key beyond 64 bits"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawValue, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a 64-bit integer or a list of them")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
                Ok(RawValue::Null)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawValue, E> {
                Ok(RawValue::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawValue, E> {
                i64::try_from(n)
                    .map(RawValue::Int)
                    .map_err(|_| E::custom("an integer beyond 64 bits"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(n) = seq.next_element::<i64>()? {
                    items.push(n);
                }
                Ok(RawValue::Ints(items))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The whole line: a JSON object.
struct LineSeed;

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = ParsedLine;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ParsedLine, D::Error> {
        deserializer.deserialize_map(LineVisitor)
    }
}

struct LineVisitor;

/// Sets a field once; a repeated field is refused (the general reader keeps the last).
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(format!("duplicate field `{name}`")));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Visitor<'de> for LineVisitor {
    type Value = ParsedLine;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedLine, A::Error> {
        let (mut index, mut time, mut process, mut op_type, mut f) = (None, None, None, None, None);
        let (mut key, mut value, mut node, mut error) = (None, None, None, None);
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Index => once(&mut index, map.next_value::<u64>()?, "index")?,
                Field::Time => once(&mut time, map.next_value::<i64>()?, "time")?,
                Field::Process => {
                    once(&mut process, map.next_value::<ProcessField>()?.0, "process")?
                }
                Field::Type => once(&mut op_type, map.next_value::<TypeField>()?.0, "type")?,
                Field::F => once(&mut f, map.next_value::<String>()?, "f")?,
                Field::Key => once(&mut key, map.next_value::<Value>()?, "key")?,
                Field::Value => once(&mut value, map.next_value::<ValueField>()?, "value")?,
                Field::Node => once(&mut node, map.next_value::<OptionalText>()?, "node")?,
                Field::Error => once(&mut error, map.next_value::<OptionalText>()?, "error")?,
                Field::Other => {
                    // Kept by the general reader and ignored by checkers; only a
                    // number that is not an integer matters (see `has_float`).
                    if has_float(&map.next_value::<Value>()?) {
                        return Err(de::Error::custom("a number that is not an integer"));
                    }
                }
            }
        }
        let missing = |name: &str| de::Error::custom(format!("missing field `{name}`"));
        let f = f.ok_or_else(|| missing("f"))?;
        if f.is_empty() {
            return Err(de::Error::custom("empty `f`"));
        }
        let key = match key {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                Key::from_json(&value).ok_or_else(|| de::Error::custom("`key` of a bad type"))?,
            ),
        };
        let value = value.unwrap_or(ValueField::Other(Value::Null));
        if let ValueField::Other(value) = &value
            && has_float(value)
        {
            return Err(de::Error::custom("a number that is not an integer"));
        }
        let mut op = Op::new(
            index.ok_or_else(|| missing("index"))?,
            time.ok_or_else(|| missing("time"))?,
            process.ok_or_else(|| missing("process"))?,
            op_type.ok_or_else(|| missing("type"))?,
            "",
            Value::Null,
        );
        op.f = f;
        op.key = key;
        Ok(ParsedLine { op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_parses_into_its_fields() {
        let line = r#"{"index":3,"time":5,"process":2,"type":"ok","f":"txn","key":"k","value":[["r","x",[1]]],"node":"n1","extra":{"a":[1]}}"#;
        let parsed = parse_line(line).unwrap();
        assert_eq!(parsed.op.index, 3);
        assert_eq!(parsed.op.time, 5);
        assert_eq!(parsed.op.process, Process::Client(2));
        assert_eq!(parsed.op.op_type, OpType::Ok);
        assert_eq!(parsed.op.f, "txn");
        assert_eq!(parsed.op.key, Some(Key::Str("k".into())));
        let read = RawMop {
            append: false,
            key: RawKey::Str("x".into()),
            value: RawValue::Ints(vec![1]),
        };
        assert_eq!(parsed.value, ValueField::Txn(vec![read]));
        let nemesis =
            parse_line(r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"kill"}"#)
                .unwrap();
        assert_eq!(nemesis.op.process, Process::Nemesis);
        assert_eq!(nemesis.value, ValueField::Other(Value::Null));
    }

    #[test]
    fn what_the_general_reader_must_explain_is_refused() {
        for line in [
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[1.5]}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","x":1e400}"#,
            r#"{"index":0,"index":0,"time":0,"process":0,"type":"ok","f":"txn"}"#,
            r#"{"index":0,"time":0,"process":-1,"type":"ok","f":"txn"}"#,
            r#"{"index":0,"time":0,"process":0,"type":"done","f":"txn"}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":""}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","node":3}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","key":[1]}"#,
            r#"{"time":0,"process":0,"type":"ok","f":"txn"}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn"} x"#,
            r#"[1]"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[["w","x",1]]}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[["r","x",["a"]]]}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[["r","x",1,2]]}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[["r","x"]]}"#,
            r#"{"index":0,"time":0,"process":0,"type":"ok","f":"txn","value":[1]}"#,
        ] {
            assert!(parse_line(line).is_err(), "{line}");
        }
    }
}
