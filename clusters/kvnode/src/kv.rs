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

pub use faultline_kv_proto::txn::{MicroOp, TxnParseError, parse_txn, txn_to_json};

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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
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
        match self.run(txn) {
            Ok((results, overlay)) => {
                self.data.extend(overlay);
                TxnOutcome::Committed(results)
            }
            Err(aborted) => aborted,
        }
    }

    /// What applying `txn` would return, without applying it (a prepared part's
    /// reads, whose keys are locked until it commits).
    pub fn evaluate(&self, txn: &[MicroOp]) -> TxnOutcome {
        match self.run(txn) {
            Ok((results, _)) => TxnOutcome::Committed(results),
            Err(aborted) => aborted,
        }
    }

    /// Runs `txn` against the store: the results and the keys it would set, or why it
    /// aborts.
    #[allow(clippy::result_large_err)]
    fn run(&self, txn: &[MicroOp]) -> Result<(Vec<Value>, BTreeMap<String, Value>), TxnOutcome> {
        let mut overlay: BTreeMap<String, Value> = BTreeMap::new();
        let mut results = Vec::with_capacity(txn.len());
        for op in txn {
            let key = op.key_string();
            let current = overlay.get(&key).or_else(|| self.data.get(&key)).cloned();
            match op {
                MicroOp::Read { .. } => results.push(op.to_json(current.as_ref())),
                MicroOp::Write { value, .. } => {
                    overlay.insert(key, value.clone());
                    results.push(op.to_json(None));
                }
                MicroOp::Cas { old, new, .. } => {
                    if current.as_ref().unwrap_or(&Value::Null) != old {
                        return Err(TxnOutcome::Aborted {
                            code: "cas-mismatch",
                            message: format!(
                                "cas on {key}: expected {old}, found {}",
                                current.unwrap_or(Value::Null)
                            ),
                        });
                    }
                    overlay.insert(key, new.clone());
                    results.push(op.to_json(None));
                }
                MicroOp::Append { value, .. } => {
                    let mut list = match current {
                        None => Vec::new(),
                        Some(Value::Array(list)) => list,
                        Some(other) => {
                            return Err(TxnOutcome::Aborted {
                                code: "not-a-list",
                                message: format!(
                                    "append to {key}: its value {other} is not a list"
                                ),
                            });
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
                                return Err(TxnOutcome::Aborted {
                                    code: "not-an-integer",
                                    message: format!(
                                        "add to {key}: its value {v} is not an integer"
                                    ),
                                });
                            }
                        },
                    };
                    let Some(sum) = base.checked_add(*delta) else {
                        return Err(TxnOutcome::Aborted {
                            code: "overflow",
                            message: format!("add {delta} to {key} ({base}) overflows"),
                        });
                    };
                    overlay.insert(key, Value::from(sum));
                    results.push(op.to_json(None));
                }
            }
        }
        Ok((results, overlay))
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
