//! What became of one test run, as the suite and `junit.xml` see it: the run as planned
//! ([`Planned`]: its configuration and the verdict it should reach), its [`Outcome`], and
//! the checkers' findings of a `results.json` in one line ([`anomalies`]).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use faultline_checker::Validity;
use serde::Deserialize;
use serde_json::Value;

use crate::config::RunConfig;

/// The verdict a run is expected to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The checkers find nothing (the default).
    #[default]
    Valid,
    /// The checkers find an anomaly (e.g. a planted bug is caught).
    Invalid,
    /// The checkers give up.
    Unknown,
}

impl Expect {
    /// The verdict in a word: `valid`, `invalid`, `unknown`.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
            Expect::Unknown => "unknown",
        }
    }

    fn met_by(self, valid: Validity) -> bool {
        matches!(
            (self, valid),
            (Expect::Valid, Validity::Valid)
                | (Expect::Invalid, Validity::Invalid)
                | (Expect::Unknown, Validity::Unknown)
        )
    }
}

/// One run, resolved and checked: a suite's, or a lone `faultline run` (a suite of one).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The run's label (its test name, with the seed for seeded matrix runs).
    pub label: String,
    /// The suite file's line that describes it.
    pub line: usize,
    /// The run's configuration.
    pub config: RunConfig,
    /// The verdict it should reach.
    pub expect: Expect,
    /// Texts of which the checkers' anomalies must contain one (`expect-anomaly`; none:
    /// any anomaly will do): the bug a planted-bug run must catch, not just any anomaly.
    pub expect_anomaly: Vec<String>,
}

/// What became of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run.
    pub planned: Planned,
    /// The verdict, or the harness failure.
    pub result: std::result::Result<Validity, String>,
    /// The run's directory, when it got one.
    pub run_dir: Option<PathBuf>,
    /// Wall-clock time of the whole run (deploy to teardown and check).
    pub duration: Duration,
    /// What the checkers found, in a line (e.g. `elle: G-single, G1c`).
    pub anomalies: String,
}

impl Outcome {
    /// Whether the run met its expectation.
    pub fn passed(&self) -> bool {
        matches!(self.result, Ok(v) if self.planned.expect.met_by(v)) && self.anomaly_found()
    }

    /// Whether one of the expected anomalies, if any is named, is among those found.
    fn anomaly_found(&self) -> bool {
        let wanted = &self.planned.expect_anomaly;
        wanted.is_empty() || wanted.iter().any(|w| self.anomalies.contains(w.as_str()))
    }

    /// What was expected, in words: `invalid`, `invalid with `G1c``, or `invalid with
    /// `G1c` or `G0``.
    pub(crate) fn expected_words(&self) -> String {
        let word = self.planned.expect.word();
        if self.planned.expect_anomaly.is_empty() {
            return word.to_string();
        }
        let wanted: Vec<String> = self
            .planned
            .expect_anomaly
            .iter()
            .map(|w| format!("`{w}`"))
            .collect();
        format!("{word} with {}", wanted.join(" or "))
    }

    /// The failure message for an unmet expectation, if any.
    pub fn failure(&self) -> Option<String> {
        match &self.result {
            Ok(v) if !self.passed() => {
                let mut message = format!("expected {}, got {}", self.expected_words(), v.word());
                if !self.anomalies.is_empty() {
                    let _ = write!(message, ": {}", self.anomalies);
                }
                Some(message)
            }
            _ => None,
        }
    }
}

/// What the checkers of a `results.json` found, in one line: Elle's anomaly types,
/// the keys a linearizability check failed on, error counts by kind (bank), non-zero
/// `*_count` figures (set, counter), or why the answer is unknown.
pub fn anomalies(results: &Value) -> String {
    let mut parts = Vec::new();
    let Some(checkers) = results.get("checkers").and_then(Value::as_object) else {
        return String::new();
    };
    for (name, verdict) in checkers {
        if verdict.get("valid") == Some(&Value::Bool(true)) {
            continue;
        }
        let mut found: Vec<String> = Vec::new();
        if let Some(types) = verdict.get("anomaly_types").and_then(Value::as_array) {
            found.extend(types.iter().map(|t| t.as_str().unwrap_or("?").to_string()));
        }
        if let Some(keys) = verdict.get("invalid_keys") {
            let n = keys
                .as_array()
                .map(Vec::len)
                .or_else(|| keys.as_u64().map(|n| n as usize))
                .unwrap_or(0);
            if n > 0 {
                found.push(format!("not linearizable on {n} key(s)"));
            }
        }
        if let Some(errors) = verdict.get("errors").and_then(Value::as_object) {
            for (kind, detail) in errors {
                let count = detail
                    .get("count")
                    .and_then(Value::as_u64)
                    .or_else(|| detail.as_array().map(|a| a.len() as u64))
                    .or_else(|| detail.as_u64());
                match count {
                    Some(n) => found.push(format!("{kind} ×{n}")),
                    None => found.push(kind.clone()),
                }
            }
        }
        if let Some(fields) = verdict.as_object() {
            for (field, value) in fields {
                if field.ends_with("_count") && value.as_u64().is_some_and(|n| n > 0) {
                    found.push(format!("{} {value}", field.trim_end_matches("_count")));
                }
            }
        }
        if let Some(reason) = verdict.get("unknown_reason").and_then(Value::as_str) {
            found.push(reason.lines().next().unwrap_or("").to_string());
        }
        if found.is_empty() {
            found.push(
                match &verdict["valid"] {
                    Value::Bool(false) => "invalid",
                    _ => "unknown",
                }
                .to_string(),
            );
        }
        parts.push(format!("{name}: {}", found.join(", ")));
    }
    if let Some(error) = results.get("harness_error").and_then(Value::as_str) {
        parts.push(format!(
            "harness error: {}",
            error.lines().next().unwrap_or("")
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// An outcome for tests, with characters that need escaping.
    pub(crate) fn outcome(
        expect: Expect,
        result: std::result::Result<Validity, String>,
    ) -> Outcome {
        let config = RunConfig::resolve(&crate::config::RunArgs::default()).unwrap();
        Outcome {
            planned: Planned {
                label: "a<&>\"b\u{1}".into(),
                line: 1,
                config,
                expect,
                expect_anomaly: Vec::new(),
            },
            result,
            run_dir: None,
            duration: Duration::from_millis(1500),
            anomalies: "elle: G-single, <G1c>".into(),
        }
    }

    #[test]
    fn anomalies_are_named_per_checker() {
        let results = json!({"valid": false, "checkers": {
            "elle": {"valid": false, "anomaly_types": ["G-single", "G1c"]},
            "bank": {"valid": false, "errors": {"wrong-total": {"count": 3}}},
            "set": {"valid": false, "lost_count": 2, "stale_count": 0},
            "linearizable": {"valid": true}
        }});
        assert_eq!(
            anomalies(&results),
            "elle: G-single, G1c; bank: wrong-total ×3; set: lost 2"
        );
    }
}
