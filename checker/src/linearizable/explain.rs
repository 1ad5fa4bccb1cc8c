//! Turning search results into `results.json` fields and sentences people can follow.

use std::time::Duration;

use serde_json::Value;

use super::kind::ModelKind;
use super::prepare::{Entry, KeyProblem, NEVER};
use super::search::{Failure, GaveUp, Outcome};
use super::{KeyResult, object, validity};
use crate::history::{History, Op};
use crate::results::Verdict;

/// How many invalid keys are explained in full.
const MAX_EXPLAINED: usize = 10;
/// How many concurrent operations are listed in an explanation.
const MAX_CONCURRENT: usize = 12;

/// The verdict for a checked history.
pub fn verdict(
    history: &History,
    model: ModelKind,
    results: &[KeyResult],
    elapsed: Duration,
) -> Verdict {
    let valid = validity(results);
    let mut invalid_keys = Vec::new();
    let mut unknown = Vec::new();
    let mut failures = Vec::new();
    let mut explanation = Vec::new();
    for result in results {
        let key = key_json(&result.problem);
        match &result.report.outcome {
            Outcome::Linearizable => {}
            Outcome::NotLinearizable(failure) => {
                invalid_keys.push(key.clone());
                if failures.len() < MAX_EXPLAINED {
                    let (json, text) = explain_failure(history, &result.problem, failure);
                    failures.push(json);
                    explanation.extend(text);
                }
            }
            Outcome::Unknown(reason) => {
                unknown.push(key.clone());
                let why = match reason {
                    GaveUp::Time => "the time limit was reached",
                    GaveUp::Memory => "the memory ceiling was reached",
                    GaveUp::Budget => "the search's budget was spent",
                };
                explanation.push(format!("{}: undecided: {why}", key_name(&result.problem)));
            }
        }
    }
    if invalid_keys.len() > MAX_EXPLAINED {
        explanation.push(format!(
            "... and {} more keys that cannot be linearized",
            invalid_keys.len() - MAX_EXPLAINED
        ));
    }
    let count = |f: fn(&KeyProblem) -> usize| results.iter().map(|r| f(&r.problem)).sum::<usize>();
    let mut details = object(vec![
        ("model", Value::from(model.name())),
        ("keys", Value::from(results.len())),
        (
            "ops",
            Value::from(count(|p| {
                p.completed.len() + p.crashed.len() + p.crashed_ignored
            })),
        ),
        (
            "crashed",
            Value::from(count(|p| p.crashed.len() + p.crashed_ignored)),
        ),
        ("crashed_ignored", Value::from(count(|p| p.crashed_ignored))),
        (
            "configurations",
            Value::from(results.iter().map(|r| r.report.configurations).sum::<u64>()),
        ),
        (
            "seconds",
            Value::from((elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
        ),
    ]);
    if !invalid_keys.is_empty() {
        details.insert("invalid_keys".into(), Value::Array(invalid_keys));
        details.insert("failures".into(), Value::Array(failures));
    }
    if !unknown.is_empty() {
        details.insert("unknown_keys".into(), Value::Array(unknown));
        let reasons: Vec<&str> = results
            .iter()
            .filter_map(|r| match &r.report.outcome {
                Outcome::Unknown(GaveUp::Time) => Some("time limit reached"),
                Outcome::Unknown(GaveUp::Memory) => Some("memory ceiling reached"),
                Outcome::Unknown(GaveUp::Budget) => Some("search budget spent"),
                _ => None,
            })
            .collect();
        let mut distinct = reasons.clone();
        distinct.dedup();
        details.insert("unknown_reason".into(), Value::from(distinct.join("; ")));
    }
    Verdict {
        valid,
        details,
        explanation,
    }
}

fn key_json(problem: &KeyProblem) -> Value {
    problem.key.as_ref().map_or(Value::Null, |k| k.to_json())
}

fn key_name(problem: &KeyProblem) -> String {
    match &problem.key {
        Some(key) => format!("key {key}"),
        None => "the history".to_string(),
    }
}

fn op_at(history: &History, index: u64) -> Option<&Op> {
    history.ops().get(history.position_of_index(index))
}

/// A completed operation in words, e.g. `process 3 read → 5 (lines 10–12)`.
fn describe(history: &History, entry: &Entry) -> String {
    let invoke = op_at(history, entry.call);
    let completion = (entry.ret != NEVER)
        .then(|| op_at(history, entry.ret))
        .flatten();
    let f = invoke.map_or("?", |op| op.f.as_str());
    let argument = invoke.map(|op| &op.value).filter(|v| !v.is_null());
    let result = completion.map(|op| &op.value);
    let mut text = format!("process {} {f}", entry.process);
    match (f, argument, result) {
        ("read" | "dequeue", _, Some(value)) => text.push_str(&format!(" → {value}")),
        (_, Some(arg), _) => text.push_str(&format!(" {arg}")),
        _ => {}
    }
    let line = |index: u64| history.line_of(history.position_of_index(index));
    if entry.ret == NEVER {
        text.push_str(&format!(" (invoked line {}, crashed)", line(entry.call)));
    } else {
        text.push_str(&format!(
            " (lines {}–{})",
            line(entry.call),
            line(entry.ret)
        ));
    }
    text
}

fn op_json(history: &History, entry: &Entry) -> Value {
    let invoke = op_at(history, entry.call);
    let completion = (entry.ret != NEVER)
        .then(|| op_at(history, entry.ret))
        .flatten();
    Value::Object(object(vec![
        ("process", Value::from(entry.process.to_string())),
        ("f", Value::from(invoke.map_or("?", |op| op.f.as_str()))),
        ("value", invoke.map_or(Value::Null, |op| op.value.clone())),
        (
            "result",
            completion.map_or(Value::Null, |op| op.value.clone()),
        ),
        ("invoke_index", Value::from(entry.call)),
        ("complete_index", Value::from(entry.ret)),
        ("description", Value::from(describe(history, entry))),
    ]))
}

fn explain_failure(
    history: &History,
    problem: &KeyProblem,
    failure: &Failure,
) -> (Value, Vec<String>) {
    let blocking = &problem.completed[failure.blocking];
    let concurrent: Vec<&Entry> = failure
        .concurrent
        .iter()
        .filter_map(|&i| problem.completed.get(i))
        .collect();
    let mut text = Vec::new();
    match &failure.reason {
        Some(reason) => {
            text.push(format!(
                "{}: not linearizable. {} cannot take effect: {reason}.",
                key_name(problem),
                describe(history, blocking)
            ));
            if let Some(overwriter) = failure
                .overwritten_by
                .and_then(|i| problem.completed.get(i))
            {
                text.push(format!(
                    "  overwritten by: {}",
                    describe(history, overwriter)
                ));
            }
        }
        None => {
            text.push(format!(
                "{}: not linearizable. The {} operations that completed before {} returned can be ordered, \
                 but every such order ends in a state from which it cannot take effect.",
                key_name(problem),
                failure.linearized_prefix,
                describe(history, blocking)
            ));
            text.push(format!(
                "  states the longest linearizable prefixes can end in: {}",
                failure.states.join("; ")
            ));
        }
    }
    if !concurrent.is_empty() {
        text.push("  operations concurrent with it:".to_string());
        for entry in concurrent.iter().take(MAX_CONCURRENT) {
            text.push(format!("    {}", describe(history, entry)));
        }
        if concurrent.len() > MAX_CONCURRENT {
            text.push(format!(
                "    ... and {} more",
                concurrent.len() - MAX_CONCURRENT
            ));
        }
    }
    if !problem.crashed.is_empty() {
        text.push(format!(
            "  {} crashed operations on this key were allowed to take effect at any time after their invocation, or never.",
            problem.crashed.len()
        ));
    }
    let json = Value::Object(object(vec![
        ("key", key_json(problem)),
        ("op", op_json(history, blocking)),
        (
            "linearized_prefix_ops",
            Value::from(failure.linearized_prefix),
        ),
        ("final_states", Value::from(failure.states.clone())),
        (
            "reason",
            failure.reason.clone().map_or(Value::Null, Value::from),
        ),
        (
            "concurrent",
            Value::Array(concurrent.iter().map(|e| op_json(history, e)).collect()),
        ),
        ("explanation", Value::from(text.join("\n"))),
    ]));
    (json, text)
}
