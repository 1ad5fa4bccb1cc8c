//! The replicated state machine: keys mapped to JSON values, changed only by
//! transactions of micro-ops `r`, `w`, `cas`, `append` and `add`, each applied atomically.
//!
//! A micro-op is a three-element JSON list `[f, key, value]`, as in the history format:
//! `["r","x",null]` reads (the result fills in the value, `null` when unset),
//! `["w","x",3]` writes, `["cas","x",[1,2]]` writes 2 if the value is 1 (`null` means
//! unset), `["append","x",5]` appends to a list (an unset key is an empty list) and
//! `["add","x",2]` adds an integer to the key's integer (an unset key is 0).
//! Keys are strings or integers; an integer key `3` and the string `"3"` are the same key.
//! If any `cas` compares false, an `append` meets a non-list or an `add` meets a
//! non-integer (or overflows), the whole transaction has no effect and fails.

use std::collections::BTreeMap;

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad transaction: micro-op {position}: {message}")]
pub struct TxnParseError {
    /// The position of the bad micro-op (0-based).
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

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

    fn key(&self) -> String {
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

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnOutcome {
    /// Applied; the micro-ops with read results filled in.
    Committed(Vec<Value>),
    /// No effect: a `cas` compared false, an `append` met a non-list or an `add` met a
    /// non-integer or overflowed.
    Aborted {
        /// A short code: `cas-mismatch`, `not-a-list`, `not-an-integer` or `overflow`.
        code: &'static str,
        /// For people.
        message: String,
    },
}

/// The key-value store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    data: BTreeMap<String, Value>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// Number of keys set.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Applies a transaction atomically: all of it, or (when aborted) none of it.
    pub fn apply(&mut self, txn: &[MicroOp]) -> TxnOutcome {
        let mut overlay: BTreeMap<String, Value> = BTreeMap::new();
        let mut results = Vec::with_capacity(txn.len());
        for op in txn {
            let key = op.key();
            let current = overlay.get(&key).or_else(|| self.data.get(&key)).cloned();
            match op {
                MicroOp::Read { .. } => results.push(op.to_json(current.as_ref())),
                MicroOp::Write { value, .. } => {
                    overlay.insert(key, value.clone());
                    results.push(op.to_json(None));
                }
                MicroOp::Cas { old, new, .. } => {
                    if current.as_ref().unwrap_or(&Value::Null) != old {
                        return TxnOutcome::Aborted {
                            code: "cas-mismatch",
                            message: format!(
                                "cas on {key}: expected {old}, found {}",
                                current.unwrap_or(Value::Null)
                            ),
                        };
                    }
                    overlay.insert(key, new.clone());
                    results.push(op.to_json(None));
                }
                MicroOp::Append { value, .. } => {
                    let mut list = match current {
                        None => Vec::new(),
                        Some(Value::Array(list)) => list,
                        Some(other) => {
                            return TxnOutcome::Aborted {
                                code: "not-a-list",
                                message: format!(
                                    "append to {key}: its value {other} is not a list"
                                ),
                            };
                        }
                    };
                    list.push(value.clone());
                    overlay.insert(key, Value::Array(list));
                    results.push(op.to_json(None));
                }
                MicroOp::Add { delta, .. } => {
                    let base = match &current {
                        None => 0,
                        Some(v) => match v.as_i64() {
                            Some(n) => n,
                            None => {
                                return TxnOutcome::Aborted {
                                    code: "not-an-integer",
                                    message: format!(
                                        "add to {key}: its value {v} is not an integer"
                                    ),
                                };
                            }
                        },
                    };
                    let Some(sum) = base.checked_add(*delta) else {
                        return TxnOutcome::Aborted {
                            code: "overflow",
                            message: format!("add {delta} to {key} ({base}) overflows"),
                        };
                    };
                    overlay.insert(key, Value::from(sum));
                    results.push(op.to_json(None));
                }
            }
        }
        self.data.extend(overlay);
        TxnOutcome::Committed(results)
    }

    /// Serializes the whole store (for snapshots).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.data).unwrap_or_default()
    }

    /// Restores a store from [`Store::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Store, serde_json::Error> {
        if bytes.is_empty() {
            return Ok(Store::default());
        }
        Ok(Store {
            data: serde_json::from_slice(bytes)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn txn(v: Value) -> Vec<MicroOp> {
        parse_txn(&v).unwrap()
    }

    #[test]
    fn micro_ops_see_earlier_writes_and_abort_atomically() {
        let mut s = Store::new();
        let out = s.apply(&txn(json!([
            ["w", "x", 1],
            ["r", "x", null],
            ["append", "l", 3],
            ["r", "l", null]
        ])));
        assert_eq!(
            out,
            TxnOutcome::Committed(vec![
                json!(["w", "x", 1]),
                json!(["r", "x", 1]),
                json!(["append", "l", 3]),
                json!(["r", "l", [3]])
            ])
        );
        let out = s.apply(&txn(json!([["w", "y", 9], ["cas", "x", [2, 3]]])));
        assert!(matches!(
            out,
            TxnOutcome::Aborted {
                code: "cas-mismatch",
                ..
            }
        ));
        assert_eq!(s.get("y"), None, "an aborted transaction has no effect");
        let out = s.apply(&txn(json!([["cas", "x", [1, 2]], ["cas", "z", [null, 0]]])));
        assert!(matches!(out, TxnOutcome::Committed(_)));
        assert_eq!(s.get("x"), Some(&json!(2)));
        assert!(matches!(
            s.apply(&txn(json!([["append", "x", 1]]))),
            TxnOutcome::Aborted {
                code: "not-a-list",
                ..
            }
        ));
    }

    #[test]
    fn add_accumulates_and_rejects_non_integers() {
        let mut s = Store::new();
        let out = s.apply(&txn(json!([
            ["add", "c", 2],
            ["add", "c", -5],
            ["r", "c", null]
        ])));
        assert_eq!(
            out,
            TxnOutcome::Committed(vec![
                json!(["add", "c", 2]),
                json!(["add", "c", -5]),
                json!(["r", "c", -3])
            ])
        );
        s.apply(&txn(json!([["w", "s", "x"], ["w", "m", i64::MAX]])));
        let out = s.apply(&txn(json!([["add", "c", 1], ["add", "s", 1]])));
        assert!(matches!(
            out,
            TxnOutcome::Aborted {
                code: "not-an-integer",
                ..
            }
        ));
        assert_eq!(s.get("c"), Some(&json!(-3)), "an aborted add has no effect");
        assert!(matches!(
            s.apply(&txn(json!([["add", "m", 1]]))),
            TxnOutcome::Aborted {
                code: "overflow",
                ..
            }
        ));
        assert!(parse_txn(&json!([["add", "c", 1.5]])).is_err());
        assert!(parse_txn(&json!([["add", "c", null]])).is_err());
    }

    #[test]
    fn snapshot_round_trip_and_bad_input() {
        let mut s = Store::new();
        s.apply(&txn(json!([["w", 3, {"a": [1]}]])));
        assert_eq!(s.get("3"), Some(&json!({"a": [1]})));
        assert_eq!(Store::from_bytes(&s.to_bytes()).unwrap(), s);
        assert!(parse_txn(&json!([["x", "k", 1]])).is_err());
        assert!(parse_txn(&json!([["cas", "k", 1]])).is_err());
        assert!(parse_txn(&json!([["r", [1], null]])).is_err());
    }
}
