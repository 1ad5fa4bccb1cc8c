//! What an anomaly looks like once found, and the reasons one transaction precedes
//! another (each step of a cycle), with Elle's wording.

use serde_json::{Map, Value};

use super::render::Drawing;
use super::txn::{Outcome, Txns};

/// One anomaly: its name, structured data for `results.json`, and words for people.
#[derive(Debug, Clone)]
pub(crate) struct Anomaly {
    /// Elle's name, e.g. `G1a` or `G-single-realtime`.
    pub name: String,
    /// Structured fields (`op`, `key`, `cycle`, `steps`, …).
    pub data: Map<String, Value>,
    /// A step-by-step explanation.
    pub text: String,
    /// For cycles: the picture.
    pub drawing: Option<Drawing>,
}

impl Anomaly {
    /// A non-cycle anomaly.
    pub(crate) fn new(name: &str, data: Map<String, Value>, text: String) -> Anomaly {
        Anomaly {
            name: name.to_string(),
            data,
            text,
            drawing: None,
        }
    }

    /// The JSON object for `results.json`: `type`, the data, and `explanation`.
    pub(crate) fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), Value::from(self.name.clone()));
        for (k, v) in &self.data {
            object.insert(k.clone(), v.clone());
        }
        object.insert("explanation".into(), Value::from(self.text.clone()));
        Value::Object(object)
    }
}

/// Builds a JSON object from pairs.
pub(crate) fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// "the ok txn at index 12 (process 3)".
pub(crate) fn txn_name(txns: &Txns<'_>, t: u32) -> String {
    let outcome = match txns.outcome(t) {
        Outcome::Ok => "committed",
        Outcome::Info => "indeterminate",
        Outcome::Fail => "failed",
    };
    match txns.event(t) {
        Some(e) => format!(
            "the {outcome} txn at index {} (process {})",
            e.index, e.process
        ),
        None => format!("the {outcome} txn #{t}"),
    }
}

/// Why `a` precedes `b` in one step of a cycle.
#[derive(Debug, Clone)]
pub(crate) enum Why {
    /// List-append ww: `b` appended `value2` right after `a`'s `value`.
    AppendWw {
        key: Value,
        value: Value,
        value2: Value,
    },
    /// List-append wr: `b` read a state ending in `a`'s append of `value`.
    AppendWr { key: Value, value: Value },
    /// List-append rw: `a` read the state before `b`'s append (`value` is the last
    /// element `a` saw, `None` for the empty initial state).
    AppendRw {
        key: Value,
        value: Option<Value>,
        value2: Value,
    },
    /// Register ww: `a` wrote `value`, `b` wrote `value2`, later in version order.
    RegisterWw {
        key: Value,
        value: Value,
        value2: Value,
    },
    /// Register wr: `b` read `a`'s write.
    RegisterWr { key: Value, value: Value },
    /// Register rw: `a` read `value`, `b` wrote the later `value2`.
    RegisterRw {
        key: Value,
        value: Value,
        value2: Value,
    },
    /// Same process, `a` first.
    Process { process: u64 },
    /// `a` completed (history index `a_index`) before `b` was invoked (`b_index`).
    Realtime {
        a_index: u64,
        b_index: u64,
        seconds: f64,
    },
}

impl Why {
    /// The relationship: `ww`, `wr`, `rw`, `process` or `realtime`.
    pub(crate) fn rel(&self) -> &'static str {
        match self {
            Why::AppendWw { .. } | Why::RegisterWw { .. } => "ww",
            Why::AppendWr { .. } | Why::RegisterWr { .. } => "wr",
            Why::AppendRw { .. } | Why::RegisterRw { .. } => "rw",
            Why::Process { .. } => "process",
            Why::Realtime { .. } => "realtime",
        }
    }

    /// The step in words, Elle's phrasing: why `a` < `b`.
    pub(crate) fn render(&self, a: &str, b: &str) -> String {
        match self {
            Why::AppendWw { key, value, value2 } => {
                format!("{b} appended {value2} after {a} appended {value} to {key}")
            }
            Why::AppendWr { key, value } => {
                format!("{b} observed {a}'s append of {value} to key {key}")
            }
            Why::AppendRw {
                key,
                value: None,
                value2,
            } => format!(
                "{a} observed the initial (nil) state of {key}, which {b} created by appending {value2}"
            ),
            Why::AppendRw {
                key,
                value: Some(_),
                value2,
            } => {
                format!("{a} did not observe {b}'s append of {value2} to {key}")
            }
            Why::RegisterWw { key, value, value2 } => format!(
                "{a} set key {key} to {value}, and {b} set it to {value2}, which came later in the version order"
            ),
            Why::RegisterWr { key, value } => {
                format!("{a} wrote {key} = {value}, which was read by {b}")
            }
            Why::RegisterRw { key, value, value2 } => format!(
                "{a} read key {key} = {value}, and {b} set it to {value2}, which came later in the version order"
            ),
            Why::Process { process } => format!("process {process} executed {a} before {b}"),
            Why::Realtime {
                a_index,
                b_index,
                seconds,
            } => {
                let gap = if *seconds > 0.0 {
                    format!(" {seconds:.3} seconds")
                } else {
                    " just".to_string()
                };
                format!(
                    "{a} completed at index {a_index},{gap} before the invocation of {b}, at index {b_index}"
                )
            }
        }
    }

    /// Structured fields for the step.
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.rel()));
        match self {
            Why::AppendWw { key, value, value2 }
            | Why::RegisterWw { key, value, value2 }
            | Why::RegisterRw { key, value, value2 } => {
                m.insert("key".into(), key.clone());
                m.insert("value".into(), value.clone());
                m.insert("value'".into(), value2.clone());
            }
            Why::AppendWr { key, value } | Why::RegisterWr { key, value } => {
                m.insert("key".into(), key.clone());
                m.insert("value".into(), value.clone());
            }
            Why::AppendRw { key, value, value2 } => {
                m.insert("key".into(), key.clone());
                m.insert("value".into(), value.clone().unwrap_or(Value::Null));
                m.insert("value'".into(), value2.clone());
            }
            Why::Process { process } => {
                m.insert("process".into(), Value::from(*process));
            }
            Why::Realtime {
                a_index, b_index, ..
            } => {
                m.insert("completed".into(), Value::from(*a_index));
                m.insert("invoked".into(), Value::from(*b_index));
            }
        }
        m
    }

    /// A short edge label for drawings, e.g. `rw x 3`.
    pub(crate) fn label(&self) -> String {
        match self {
            Why::AppendWw { key, value2, .. } | Why::RegisterWw { key, value2, .. } => {
                format!("ww {key} {value2}")
            }
            Why::AppendWr { key, value } | Why::RegisterWr { key, value } => {
                format!("wr {key} {value}")
            }
            Why::AppendRw { key, value2, .. } | Why::RegisterRw { key, value2, .. } => {
                format!("rw {key} {value2}")
            }
            Why::Process { process } => format!("process {process}"),
            Why::Realtime { .. } => "realtime".to_string(),
        }
    }
}
