//! A transaction's micro-ops: `[f, key, value]` JSON lists, as in the history format.
//! `["r","x",null]` reads (the result fills in the value, `null` when unset),
//! `["w","x",3]` writes, `["cas","x",[1,2]]` writes 2 if the value is 1 (`null` means
//! unset), `["append","x",5]` appends to a list and `["add","x",2]` adds an integer.
//! Keys are strings or integers.

use std::fmt;

use serde_json::Value;

/// One micro-op of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MicroOp {
    /// Read a key.
    Read {
        /// The key as the client spelled it.
        key: Value,
    },
    /// Write a value.
    Write {
        /// The key.
        key: Value,
        /// The new value.
        value: Value,
    },
    /// Compare and set.
    Cas {
        /// The key.
        key: Value,
        /// Expected current value (`null`: unset).
        old: Value,
        /// New value.
        new: Value,
    },
    /// Append to a list.
    Append {
        /// The key.
        key: Value,
        /// The element appended.
        value: Value,
    },
    /// Add to an integer.
    Add {
        /// The key.
        key: Value,
        /// The integer added (may be negative).
        delta: i64,
    },
}

/// A transaction that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnParseError {
    /// The position of the bad micro-op (0-based).
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TxnParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad transaction: micro-op {}: {}",
            self.position, self.message
        )
    }
}

impl std::error::Error for TxnParseError {}

impl MicroOp {
    /// Parses `[f, key, value]`.
    pub fn from_json(value: &Value, position: usize) -> Result<MicroOp, TxnParseError> {
        let err = |message: &str| TxnParseError {
            position,
            message: message.to_string(),
        };
        let Some([f, key, arg]) = value.as_array().map(Vec::as_slice) else {
            return Err(err("expected a list [f, key, value]"));
        };
        if !(key.is_string() || key.is_i64() || key.is_u64()) {
            return Err(err("the key must be a string or an integer"));
        }
        let key = key.clone();
        match f.as_str() {
            Some("r") => Ok(MicroOp::Read { key }),
            Some("w") => Ok(MicroOp::Write {
                key,
                value: arg.clone(),
            }),
            Some("append") => Ok(MicroOp::Append {
                key,
                value: arg.clone(),
            }),
            Some("add") => match arg.as_i64() {
                Some(delta) => Ok(MicroOp::Add { key, delta }),
                None => Err(err("add needs an integer delta")),
            },
            Some("cas") => match arg.as_array().map(Vec::as_slice) {
                Some([old, new]) => Ok(MicroOp::Cas {
                    key,
                    old: old.clone(),
                    new: new.clone(),
                }),
                _ => Err(err("cas needs [old, new]")),
            },
            _ => Err(err("f must be one of r, w, cas, append, add")),
        }
    }

    /// The `[f, key, value]` form, with `value` as given (the read result for reads).
    pub fn to_json(&self, read_result: Option<&Value>) -> Value {
        match self {
            MicroOp::Read { key } => Value::Array(vec![
                "r".into(),
                key.clone(),
                read_result.cloned().unwrap_or(Value::Null),
            ]),
            MicroOp::Write { key, value } => {
                Value::Array(vec!["w".into(), key.clone(), value.clone()])
            }
            MicroOp::Cas { key, old, new } => Value::Array(vec![
                "cas".into(),
                key.clone(),
                Value::Array(vec![old.clone(), new.clone()]),
            ]),
            MicroOp::Append { key, value } => {
                Value::Array(vec!["append".into(), key.clone(), value.clone()])
            }
            MicroOp::Add { key, delta } => {
                Value::Array(vec!["add".into(), key.clone(), Value::from(*delta)])
            }
        }
    }

    /// The key as the store names it: a string key as is, an integer key in decimal
    /// (so `3` and `"3"` are the same key).
    pub fn key_string(&self) -> String {
        let key = match self {
            MicroOp::Read { key }
            | MicroOp::Write { key, .. }
            | MicroOp::Cas { key, .. }
            | MicroOp::Append { key, .. }
            | MicroOp::Add { key, .. } => key,
        };
        match key {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// True for reads.
    pub fn is_read(&self) -> bool {
        matches!(self, MicroOp::Read { .. })
    }
}

/// Parses a transaction: a JSON list of micro-ops.
pub fn parse_txn(value: &Value) -> Result<Vec<MicroOp>, TxnParseError> {
    let Some(items) = value.as_array() else {
        return Err(TxnParseError {
            position: 0,
            message: "a transaction is a list of micro-ops".into(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| MicroOp::from_json(v, i))
        .collect()
}

/// The JSON form of a transaction (what goes into a log entry).
pub fn txn_to_json(txn: &[MicroOp]) -> Value {
    Value::Array(txn.iter().map(|op| op.to_json(None)).collect())
}
