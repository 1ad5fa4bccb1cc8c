//! Turning one JSON object into an [`Op`], with messages that say which field is wrong.

use serde_json::{Map, Value};

use super::op::{Key, Op, OpType, Process};

/// Describes a JSON value's type for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn take_required(object: &mut Map<String, Value>, field: &str) -> Result<Value, String> {
    object
        .remove(field)
        .ok_or_else(|| format!("missing required field `{field}`"))
}

/// Builds an op from a parsed JSON object, checking each field's type.
pub(crate) fn op_from_object(mut object: Map<String, Value>) -> Result<Op, String> {
    let index = match take_required(&mut object, "index")? {
        Value::Number(n) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        other => {
            return Err(format!(
                "`index` must be an integer >= 0, got {}",
                describe(&other)
            ));
        }
    };
    let time = match take_required(&mut object, "time")? {
        Value::Number(n) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
        other => {
            return Err(format!(
                "`time` must be an integer (nanoseconds), got {}",
                describe(&other)
            ));
        }
    };
    let process = match take_required(&mut object, "process")? {
        Value::Number(n) if n.as_u64().is_some() => Process::Client(n.as_u64().unwrap_or_default()),
        Value::String(s) if s == "nemesis" => Process::Nemesis,
        other => {
            return Err(format!(
                "`process` must be an integer >= 0 or \"nemesis\", got {}",
                describe(&other)
            ));
        }
    };
    let op_type = match take_required(&mut object, "type")? {
        Value::String(s) => OpType::parse(&s).ok_or_else(|| {
            format!("`type` must be one of \"invoke\", \"ok\", \"fail\", \"info\", got \"{s}\"")
        })?,
        other => return Err(format!("`type` must be a string, got {}", describe(&other))),
    };
    let f = match take_required(&mut object, "f")? {
        Value::String(s) if !s.is_empty() => s,
        other => {
            return Err(format!(
                "`f` must be a non-empty string, got {}",
                describe(&other)
            ));
        }
    };
    let key = match object.remove("key") {
        None | Some(Value::Null) => None,
        Some(value) => Some(Key::from_json(&value).ok_or_else(|| {
            format!(
                "`key` must be a string or an integer, got {}",
                describe(&value)
            )
        })?),
    };
    let value = object.remove("value").unwrap_or(Value::Null);
    let node = optional_string(&mut object, "node")?;
    let error = optional_string(&mut object, "error")?;
    Ok(Op {
        index,
        time,
        process,
        op_type,
        f,
        key,
        value,
        node,
        error,
        extra: object,
    })
}

fn optional_string(object: &mut Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "`{field}` must be a string, got {}",
            describe(&other)
        )),
    }
}

/// A short description of a value: its type and, when short, the value itself.
pub(crate) fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 40 {
        format!("{} ({text})", json_type(value))
    } else {
        json_type(value).to_string()
    }
}
