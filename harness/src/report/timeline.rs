//! Per-process timelines: every operation as a bar from its invocation to its
//! completion, one row per process; and the linearizability counterexample, the
//! operations on the failing key around the operation that could not take effect.

use std::collections::BTreeSet;

use faultline_checker::history::Operation;
use faultline_checker::{OpType, Process};
use serde::Serialize;
use serde_json::Value;

use super::plots::{Bar, FaultInterval, Legend, Plot, Tick, outcome_class, truncate};

/// The most operations drawn on the whole-run timeline.
pub const MAX_TIMELINE_OPS: usize = 2_000;
/// The most operations drawn around a counterexample.
const MAX_COUNTEREXAMPLE_OPS: usize = 200;
/// The most counterexamples drawn.
const MAX_COUNTEREXAMPLES: usize = 3;

/// A linearizability counterexample, drawn.
#[derive(Debug, Clone, Serialize)]
pub struct Counterexample {
    /// The key, as text.
    pub key: String,
    /// The checker's explanation.
    pub explanation: String,
    /// The timeline around the blocking operation.
    pub plot: Plot,
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// What an operation was, for a tooltip: `p3 cas [1,2] key 7 → ok (1.20 ms)`.
fn describe(o: &Operation<'_>) -> String {
    let mut text = format!("process {} {}", o.invoke.process, o.invoke.f);
    if let Some(key) = &o.invoke.key {
        text.push_str(&format!(" key {key}"));
    }
    if !o.invoke.value.is_null() {
        text.push_str(&format!(" {}", truncate(&o.invoke.value.to_string(), 120)));
    }
    match o.completion {
        Some(c) => {
            text.push_str(&format!(" → {}", c.op_type));
            if c.op_type == OpType::Ok && !c.value.is_null() && c.value != o.invoke.value {
                text.push_str(&format!(" {}", truncate(&c.value.to_string(), 120)));
            }
            if let Some(error) = &c.error {
                text.push_str(&format!(" ({})", truncate(error, 120)));
            }
            text.push_str(&format!(
                ", {:.2} ms",
                (c.time - o.invoke.time) as f64 / 1e6
            ));
        }
        None => text.push_str(" → never completed"),
    }
    text
}

/// Bars for `ops` (with a class suffix from `extra_class`), one row per process,
/// between `from` and `to` seconds.
fn draw(
    plot: &mut Plot,
    ops: &[&Operation<'_>],
    faults: &[FaultInterval],
    from: f64,
    to: f64,
    extra_class: &dyn Fn(&Operation<'_>) -> &'static str,
) {
    let x = plot.time_axis(from, to, faults);
    let processes: Vec<u64> = ops
        .iter()
        .filter_map(|o| match o.invoke.process {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let row = ((plot.bottom - plot.top) / processes.len().max(1) as f64).min(18.0);
    let label_every = (10.0 / row).ceil().max(1.0) as usize;
    for (i, p) in processes.iter().enumerate() {
        if i % label_every == 0 {
            plot.y_ticks.push(Tick {
                pos: super::plots::round(plot.top + row * (i as f64 + 0.5)),
                label: format!("p{p}"),
            });
        }
    }
    plot.y_label = "process".to_string();
    for o in ops {
        let Process::Client(p) = o.invoke.process else {
            continue;
        };
        let Ok(i) = processes.binary_search(&p) else {
            continue;
        };
        let start = seconds(o.invoke.time);
        let end = o.completion.map_or(to, |c| seconds(c.time));
        let outcome = o.completion.map_or(OpType::Info, |c| c.op_type);
        let a = x.at(start);
        let b = x.at(end);
        let extra = extra_class(o);
        plot.bars.push(Bar {
            x: a,
            y: super::plots::round(plot.top + row * i as f64 + row * 0.15),
            w: super::plots::round((b - a).max(1.0)),
            h: super::plots::round((row * 0.7).max(1.0)),
            class: if extra.is_empty() {
                outcome_class(outcome).to_string()
            } else {
                format!("{} {extra}", outcome_class(outcome))
            },
            title: describe(o),
        });
    }
}

fn timeline_height(processes: usize) -> f64 {
    (processes as f64 * 14.0).clamp(120.0, 600.0)
}

fn process_count(ops: &[&Operation<'_>]) -> usize {
    ops.iter()
        .map(|o| o.invoke.process)
        .collect::<BTreeSet<_>>()
        .len()
}

/// The whole run's operations per process: the first [`MAX_TIMELINE_OPS`] of them.
pub fn timeline(operations: &[Operation<'_>], faults: &[FaultInterval]) -> Plot {
    let drawn: Vec<&Operation<'_>> = operations.iter().take(MAX_TIMELINE_OPS).collect();
    let mut plot = Plot::new(
        "timeline",
        "Operations per process",
        timeline_height(process_count(&drawn)),
    );
    let from = drawn.first().map_or(0.0, |o| seconds(o.invoke.time));
    let to = drawn
        .iter()
        .map(|o| o.completion.map_or(o.invoke.time, |c| c.time))
        .max()
        .map_or(from + 1.0, seconds);
    draw(&mut plot, &drawn, faults, from, to, &|_| "");
    if operations.len() > drawn.len() {
        plot.note = format!(
            "The first {} of {} operations are drawn; {} left out.",
            drawn.len(),
            operations.len(),
            operations.len() - drawn.len()
        );
    }
    plot.legend = legend(&[("ok", "ok"), ("fail", "fail"), ("info", "info")]);
    plot
}

fn legend(entries: &[(&'static str, &str)]) -> Vec<Legend> {
    entries
        .iter()
        .map(|(class, label)| Legend {
            class,
            label: label.to_string(),
        })
        .collect()
}

/// The counterexamples in the linearizable checker's `failures`: each failing key's
/// operations around the blocking operation (highlighted), with the concurrent ones
/// marked.
pub fn counterexamples(
    checker: &Value,
    operations: &[Operation<'_>],
    faults: &[FaultInterval],
) -> Vec<Counterexample> {
    let Some(failures) = checker.get("failures").and_then(Value::as_array) else {
        return Vec::new();
    };
    failures
        .iter()
        .take(MAX_COUNTEREXAMPLES)
        .enumerate()
        .filter_map(|(n, failure)| counterexample(n, failure, operations, faults))
        .collect()
}

fn counterexample(
    n: usize,
    failure: &Value,
    operations: &[Operation<'_>],
    faults: &[FaultInterval],
) -> Option<Counterexample> {
    let key = failure.get("key").cloned().unwrap_or(Value::Null);
    let op = failure.get("op")?;
    let blocking_index = op.get("invoke_index").and_then(Value::as_u64)?;
    let concurrent: BTreeSet<u64> = failure
        .get("concurrent")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("invoke_index").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default();
    let same_key =
        |o: &&Operation<'_>| o.invoke.key.as_ref().map_or(Value::Null, |k| k.to_json()) == key;
    let on_key: Vec<&Operation<'_>> = operations.iter().filter(same_key).collect();
    let centre = on_key
        .iter()
        .position(|o| o.invoke.index == blocking_index)?;
    let blocking = on_key[centre];
    let mut from = seconds(blocking.invoke.time);
    let mut to = blocking.completion.map_or(from, |c| seconds(c.time));
    for o in &on_key {
        if concurrent.contains(&o.invoke.index) {
            from = from.min(seconds(o.invoke.time));
            to = to.max(o.completion.map_or(to, |c| seconds(c.time)));
        }
    }
    let margin = ((to - from) * 0.5).max(0.005);
    let (from, to) = ((from - margin).max(0.0), to + margin);
    let mut drawn: Vec<&Operation<'_>> = on_key
        .iter()
        .copied()
        .filter(|o| {
            let end = o.completion.map_or(f64::MAX, |c| seconds(c.time));
            seconds(o.invoke.time) <= to && end >= from
        })
        .collect();
    let total = drawn.len();
    if total > MAX_COUNTEREXAMPLE_OPS {
        // Keep the operations nearest the blocking one.
        let at = drawn
            .iter()
            .position(|o| o.invoke.index == blocking_index)
            .unwrap_or(0);
        let lo = at.saturating_sub(MAX_COUNTEREXAMPLE_OPS / 2);
        drawn = drawn[lo..(lo + MAX_COUNTEREXAMPLE_OPS).min(total)].to_vec();
    }
    let key_text = match &key {
        Value::String(s) => s.clone(),
        Value::Null => "(no key)".to_string(),
        other => other.to_string(),
    };
    let mut plot = Plot::new(
        &format!("counterexample-{n}"),
        &format!("Counterexample on key {key_text}"),
        timeline_height(process_count(&drawn)).min(320.0),
    );
    draw(&mut plot, &drawn, faults, from, to, &|o| {
        if o.invoke.index == blocking_index {
            "blocking"
        } else if concurrent.contains(&o.invoke.index) {
            "concurrent"
        } else {
            ""
        }
    });
    if total > drawn.len() {
        plot.note = format!(
            "{} of the {total} operations on this key in the window are drawn.",
            drawn.len()
        );
    }
    plot.legend = legend(&[
        ("blocking", "cannot take effect"),
        ("concurrent", "concurrent with it"),
        ("ok", "other ok"),
        ("fail", "fail"),
        ("info", "info"),
    ]);
    Some(Counterexample {
        key: key_text,
        explanation: failure
            .get("explanation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        plot,
    })
}
