//! One line of a history: an operation event.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// What an event says about its operation (`type` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The process began the operation.
    Invoke,
    /// The operation completed and took effect.
    Ok,
    /// The operation definitely did not take effect.
    Fail,
    /// The outcome is unknown: it may take effect at any time after its invocation, or never.
    Info,
}

impl OpType {
    /// Parses the file's spelling (`"invoke"`, `"ok"`, `"fail"`, `"info"`).
    pub fn parse(text: &str) -> Option<OpType> {
        match text {
            "invoke" => Some(OpType::Invoke),
            "ok" => Some(OpType::Ok),
            "fail" => Some(OpType::Fail),
            "info" => Some(OpType::Info),
            _ => None,
        }
    }

    /// The file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The logical client that issued an operation, or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client process, numbered from 0.
    Client(u64),
    /// The fault injector (`"nemesis"` in the file).
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => serializer.serialize_u64(*n),
            Process::Nemesis => serializer.serialize_str("nemesis"),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The object an operation acts on, when a workload spreads over independent keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An integer key.
    Int(i64),
    /// A string key.
    Str(String),
}

impl Key {
    /// Reads a key from JSON: a string or an integer; anything else is `None`.
    pub fn from_json(value: &Value) -> Option<Key> {
        match value {
            Value::String(s) => Some(Key::Str(s.clone())),
            Value::Number(n) => n.as_i64().map(Key::Int),
            _ => None,
        }
    }

    /// The key as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Key::Int(n) => Value::from(*n),
            Key::Str(s) => Value::from(s.as_str()),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Int(n) => serializer.serialize_i64(*n),
            Key::Str(s) => serializer.serialize_str(s),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

/// One operation event: a line of `history.jsonl`.
///
/// Field order when written is the spec's: `index`, `time`, `process`, `type`, `f`,
/// `key`, `value`, `node`, `error`, then any unknown fields, which are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Position in the history, dense from 0.
    pub index: u64,
    /// Nanoseconds since the test started (monotonic).
    pub time: i64,
    /// The logical client that issued the operation.
    pub process: Process,
    /// Invocation or completion, and how it completed.
    pub op_type: OpType,
    /// The operation's function, e.g. `read`, `write`, `cas`, `txn`.
    pub f: String,
    /// The independent key the operation acts on, if any.
    pub key: Option<Key>,
    /// The argument (on invoke) or the result (on ok).
    pub value: Value,
    /// The node the client talked to.
    pub node: Option<String>,
    /// Why the operation failed or is indeterminate.
    pub error: Option<String>,
    /// Fields the spec does not name; kept and ignored by checkers.
    pub extra: Map<String, Value>,
}

/// Written by hand rather than derived: a derived `flatten` of `extra` goes through
/// serde's buffering map path, which made writing a history several times slower.
impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let optional = [
            self.key.is_some(),
            self.node.is_some(),
            self.error.is_some(),
        ];
        let len = 6 + optional.iter().filter(|x| **x).count() + self.extra.len();
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("index", &self.index)?;
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("process", &self.process)?;
        map.serialize_entry("type", &self.op_type)?;
        map.serialize_entry("f", &self.f)?;
        if let Some(key) = &self.key {
            map.serialize_entry("key", key)?;
        }
        map.serialize_entry("value", &self.value)?;
        if let Some(node) = &self.node {
            map.serialize_entry("node", node)?;
        }
        if let Some(error) = &self.error {
            map.serialize_entry("error", error)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Op {
    /// A new event with no key, node, error or extra fields.
    pub fn new(
        index: u64,
        time: i64,
        process: Process,
        op_type: OpType,
        f: &str,
        value: Value,
    ) -> Op {
        Op {
            index,
            time,
            process,
            op_type,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            error: None,
            extra: Map::new(),
        }
    }

    /// The same event with `key` set.
    pub fn with_key(mut self, key: Key) -> Op {
        self.key = Some(key);
        self
    }

    /// True for client (non-nemesis) events.
    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }
}
