//! The short human summary `faultline check` prints.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use faultline_checker::{Results, Validity};
use serde_json::Value;

/// Fields of a checker's details worth a line in the summary, in order.
const SHOWN: [&str; 8] = [
    "model",
    "workload",
    "consistency_model",
    "keys",
    "ops",
    "crashed",
    "txns",
    "anomaly_types",
];

/// Renders the verdict, the checker and its main figures, the time taken, and (when not
/// valid) each checker's explanation.
pub fn render(history: &Path, checker: &str, results: &Results, elapsed: Duration) -> String {
    let mut out = String::new();
    let valid = results.valid();
    let _ = writeln!(out, "{}: {}", history.display(), valid.word());
    let _ = writeln!(out, "  checker: {checker}");
    for verdict in results.checkers.values() {
        for field in SHOWN {
            if let Some(value) = verdict.details.get(field) {
                let _ = writeln!(out, "  {}: {}", field.replace('_', " "), show(value));
            }
        }
    }
    let _ = writeln!(out, "  time: {:.3} s", elapsed.as_secs_f64());
    if valid != Validity::Valid {
        for verdict in results.checkers.values() {
            for line in &verdict.explanation {
                let _ = writeln!(out, "{}", format!("  {line}").trim_end());
            }
        }
    }
    out
}

/// A JSON value without quotes around strings, lists joined by commas.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
