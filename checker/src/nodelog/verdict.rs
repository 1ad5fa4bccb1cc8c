//! The node-log check's `results.json` object and explanation.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::anomaly::{Found, Kind, Loc};
use super::invariants::Invariants;
use super::{NodeLog, Seen};
use crate::nodelog::patterns::CrashPatterns;
use crate::results::{Validity, Verdict};

/// The invariants checked when protocol events were seen.
const INVARIANTS: [Kind; 6] = [
    Kind::ElectionSafety,
    Kind::DoubleVote,
    Kind::StateMachineSafety,
    Kind::CommittedEntryTruncated,
    Kind::ForgottenVote,
    Kind::LostLogEntries,
];

/// The verdict: invalid with any anomaly, valid otherwise (never unknown).
pub(super) fn verdict(
    logs: &[NodeLog],
    names: &[String],
    patterns: &CrashPatterns,
    seen: &Seen,
    invariants: &Invariants,
    found: &Found,
    texts: &HashMap<Loc, String>,
) -> Verdict {
    let mut details = Map::new();
    let mut explanation = Vec::new();
    let events: u64 = seen.events.values().sum();
    let mut checked: Vec<&str> = Vec::new();
    if events > 0 {
        checked.extend(INVARIANTS.iter().map(|k| k.name()));
    }
    if !logs.is_empty() {
        checked.push(Kind::NodeLogCrash.name());
    }
    if logs.is_empty() {
        details.insert("note".into(), Value::from("no node logs"));
        explanation.push("node logs: none collected; nothing checked.".to_string());
    } else if events == 0 {
        details.insert(
            "note".into(),
            Value::from("no protocol events: crash patterns only"),
        );
    }
    details.insert("checked".into(), json!(checked));
    details.insert("nodes".into(), json!(names));
    details.insert(
        "files".into(),
        json!(logs.iter().map(|l| l.file.as_str()).collect::<Vec<_>>()),
    );
    details.insert("lines".into(), Value::from(seen.lines));
    details.insert("events".into(), json!(seen.events));
    details.insert(
        "nodes_with_events".into(),
        json!(
            seen.nodes_with_events
                .iter()
                .filter_map(|&n| names.get(n as usize))
                .collect::<Vec<_>>()
        ),
    );
    if events > 0 {
        details.insert(
            "terms_with_leader".into(),
            Value::from(invariants.terms_with_leader()),
        );
        details.insert(
            "applied_indices".into(),
            Value::from(invariants.applied_indices()),
        );
        if invariants.beyond_cap() > 0 {
            details.insert(
                "applied_not_compared".into(),
                Value::from(invariants.beyond_cap()),
            );
        }
    }
    if !seen.shards.is_empty() {
        details.insert("shards".into(), json!(seen.shards));
    }
    details.insert("crash_patterns".into(), json!(patterns.texts()));
    if seen.malformed > 0 {
        let mut malformed = Map::new();
        malformed.insert("count".into(), Value::from(seen.malformed));
        if let Some((at, reason)) = &seen.first_malformed {
            malformed.insert("first".into(), line_json(logs, names, texts, *at));
            malformed.insert("reason".into(), Value::from(reason.clone()));
        }
        details.insert("malformed_events".into(), Value::Object(malformed));
    }
    if !seen.unread.is_empty() {
        details.insert("unread".into(), json!(seen.unread));
        for problem in &seen.unread {
            explanation.push(format!("node logs: cannot read {problem}"));
        }
    }
    let types: Vec<&str> = found.counts().keys().map(|k| k.name()).collect();
    details.insert("anomaly_types".into(), json!(types));
    let mut totals = Map::new();
    for (kind, count) in found.counts() {
        totals.insert(kind.name().into(), Value::from(*count));
    }
    details.insert("anomaly_totals".into(), Value::Object(totals));
    let mut anomalies: Map<String, Value> = Map::new();
    let sharded = !seen.shards.is_empty();
    for anomaly in found.kept() {
        let evidence: Vec<Value> = anomaly
            .evidence
            .iter()
            .map(|&at| line_json(logs, names, texts, at))
            .collect();
        // Sharded logs name the shard; unsharded ones read as they always have.
        let shard = anomaly.shard.filter(|_| sharded);
        let message = match shard {
            Some(k) => format!("shard {k}: {}", anomaly.message),
            None => anomaly.message.clone(),
        };
        explanation.push(format!("{}: {message}", anomaly.kind.name()));
        for &at in &anomaly.evidence {
            explanation.push(format!("  {}", line_word(logs, texts, at)));
        }
        let entry = anomalies
            .entry(anomaly.kind.name())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            let mut object = json!({"message": message, "evidence": evidence});
            if let (Some(k), Value::Object(fields)) = (shard, &mut object) {
                fields.insert("shard".into(), Value::from(k));
            }
            list.push(object);
        }
    }
    details.insert("anomalies".into(), Value::Object(anomalies));
    Verdict {
        valid: if found.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        },
        details,
        explanation,
    }
}

/// A line of evidence: `{"node", "file", "line", "text"}`.
fn line_json(logs: &[NodeLog], names: &[String], texts: &HashMap<Loc, String>, at: Loc) -> Value {
    let log = logs.get(at.log as usize);
    let node = log
        .and_then(|l| names.iter().find(|n| **n == l.node))
        .map_or("?", String::as_str);
    json!({
        "node": node,
        "file": log.map_or("?", |l| l.file.as_str()),
        "line": at.line,
        "text": texts.get(&at).map_or("", String::as_str),
    })
}

/// `FILE:LINE: TEXT`, for the explanation.
fn line_word(logs: &[NodeLog], texts: &HashMap<Loc, String>, at: Loc) -> String {
    format!(
        "{}:{}: {}",
        logs.get(at.log as usize).map_or("?", |l| l.file.as_str()),
        at.line,
        texts.get(&at).map_or("", String::as_str)
    )
}
