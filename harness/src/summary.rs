//! The short human summary `faultline check` prints.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use faultline_checker::nodelog;
use faultline_checker::results::Verdict;
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
    for (name, verdict) in &results.checkers {
        if name == nodelog::NAME {
            continue;
        }
        for field in SHOWN {
            if let Some(value) = verdict.details.get(field) {
                let _ = writeln!(out, "  {}: {}", field.replace('_', " "), show(value));
            }
        }
    }
    if let Some(verdict) = results.checkers.get(nodelog::NAME) {
        out.push_str(&node_logs(verdict));
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

/// The node-log check in a line: its verdict, what it read, what it found, e.g.
/// `  node logs: valid (5 nodes, 5 files, 1234 lines, 812 protocol events)` (with
/// `4 shards, ` after the nodes when the logs are sharded).
pub fn node_logs(verdict: &Verdict) -> String {
    let details = &verdict.details;
    let count = |field: &str| {
        details
            .get(field)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    let lines = details.get("lines").and_then(Value::as_u64).unwrap_or(0);
    let events: u64 = details
        .get("events")
        .and_then(Value::as_object)
        .map_or(0, |e| e.values().filter_map(Value::as_u64).sum());
    let shards = match count("shards") {
        0 => String::new(),
        n => format!("{n} shards, "),
    };
    let read = if count("files") == 0 {
        "no node logs".to_string()
    } else {
        format!(
            "{} nodes, {shards}{} files, {lines} lines, {events} protocol events",
            count("nodes"),
            count("files")
        )
    };
    let mut line = format!("  node logs: {} ({read})", verdict.valid.word());
    if let Some(totals) = details.get("anomaly_totals").and_then(Value::as_object) {
        let found: Vec<String> = totals.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        if !found.is_empty() {
            let _ = write!(line, ": {}", found.join(", "));
        }
    }
    line + "\n"
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

#[cfg(test)]
mod tests {
    use faultline_checker::nodelog::{NodeLog, NodeLogCheck};

    use super::*;

    #[test]
    fn node_logs_get_one_line_and_no_other_fields() {
        let checked = NodeLogCheck::default().check(&[NodeLog::lines(
            "n1",
            "nodes/n1/node.log",
            ["x protocol: role node=1 term=1 role=leader", "panic: boom"],
        )]);
        let line = node_logs(&checked.verdict);
        assert_eq!(
            line,
            "  node logs: invalid (1 nodes, 1 files, 2 lines, 1 protocol events): node-log-crash ×1\n"
        );
        let mut results = Results::default();
        results.record("node-logs", &checked);
        let text = render(
            Path::new("h.jsonl"),
            "linearizable",
            &results,
            Duration::ZERO,
        );
        assert!(text.contains(&line), "{text}");
        assert!(!text.contains("anomaly types"), "{text}");
        assert!(
            text.contains("  nodes/n1/node.log:2: panic: boom"),
            "{text}"
        );
        let sharded = NodeLogCheck::default().check(&[NodeLog::lines(
            "n1",
            "nodes/n1/node.log",
            [
                "x shard{shard=1}: protocol: role node=1 term=1 role=leader",
                "x a{x=1}:shard{shard=2}: protocol: role node=1 term=1 role=leader",
            ],
        )]);
        assert_eq!(
            node_logs(&sharded.verdict),
            "  node logs: valid (1 nodes, 2 shards, 1 files, 2 lines, 2 protocol events)\n"
        );
        let none = NodeLogCheck::default().check(&[]);
        assert_eq!(
            node_logs(&none.verdict),
            "  node logs: valid (no node logs)\n"
        );
    }
}
