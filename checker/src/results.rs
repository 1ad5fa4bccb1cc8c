//! Verdicts and the `results.json` document.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A checker's answer: valid, invalid, or unknown (it gave up within its limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Proven valid.
    Valid,
    /// Proven invalid.
    Invalid,
    /// Not decided: a time or memory limit was reached, or the checker could not run.
    Unknown,
}

impl Validity {
    /// Combines two answers: invalid beats unknown beats valid.
    pub fn merge(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// Jepsen's exit code: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// The JSON form: `true`, `false` or `"unknown"`.
    pub fn to_json(self) -> Value {
        match self {
            Validity::Valid => Value::Bool(true),
            Validity::Invalid => Value::Bool(false),
            Validity::Unknown => Value::from("unknown"),
        }
    }

    /// A word for people: `valid`, `invalid`, `unknown`.
    pub fn word(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// One checker's result: its verdict, the details for `results.json`, and a short
/// human-readable explanation.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The answer.
    pub valid: Validity,
    /// The checker's fields in `results.json` (without `valid`, which is added).
    pub details: Map<String, Value>,
    /// Lines for people, explaining the answer (anomalies, counterexamples).
    pub explanation: Vec<String>,
}

impl Verdict {
    /// The checker's object for `results.json`: `valid` first, then the details.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("valid".to_string(), self.valid.to_json());
        for (k, v) in &self.details {
            object.insert(k.clone(), v.clone());
        }
        Value::Object(object)
    }
}

/// The whole `results.json` document.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Each checker's verdict, by name.
    pub checkers: BTreeMap<String, Verdict>,
    /// Fields describing the run (seed, history file, …), written at the top level.
    pub extra: Map<String, Value>,
}

impl Results {
    /// The overall answer: the worst of the checkers' (valid when there are none).
    pub fn valid(&self) -> Validity {
        self.checkers
            .values()
            .fold(Validity::Valid, |acc, v| acc.merge(v.valid))
    }

    /// The `results.json` document.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("valid".to_string(), self.valid().to_json());
        for (k, v) in &self.extra {
            object.insert(k.clone(), v.clone());
        }
        let checkers = self
            .checkers
            .iter()
            .map(|(name, verdict)| (name.clone(), verdict.to_json()))
            .collect();
        object.insert("checkers".to_string(), Value::Object(checkers));
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_beats_unknown_beats_valid() {
        use Validity::*;
        assert_eq!(Valid.merge(Unknown), Unknown);
        assert_eq!(Unknown.merge(Invalid), Invalid);
        assert_eq!(Valid.merge(Valid), Valid);
        assert_eq!(Invalid.merge(Valid), Invalid);
    }

    #[test]
    fn results_json_has_top_level_worst_verdict() {
        let mut results = Results::default();
        for (name, valid) in [("a", Validity::Valid), ("b", Validity::Unknown)] {
            results.checkers.insert(
                name.to_string(),
                Verdict {
                    valid,
                    details: Map::new(),
                    explanation: vec![],
                },
            );
        }
        let json = results.to_json();
        assert_eq!(json["valid"], Value::from("unknown"));
        assert_eq!(json["checkers"]["a"]["valid"], Value::Bool(true));
    }
}
