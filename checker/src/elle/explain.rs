//! Explaining a cycle in words, step by step (Elle's "Let … Then … a
//! contradiction!"), with structured data and a drawing.

use serde_json::{Map, Value};

use super::anomaly::{Anomaly, Why};
use super::bfs::FoundCycle;
use super::render::{DrawEdge, DrawNode, Drawing};
use super::spec::Label;
use super::txn::{MopKind, Txns};

/// Explains the data dependency `a -> b` (transaction ids) of relationship bit `r`.
pub(crate) type PairExplainer<'a> = dyn Fn(u32, u32, u8) -> Option<Why> + Sync + 'a;

/// Builds the anomaly for a cycle.
pub(crate) fn explain_cycle(
    txns: &Txns<'_>,
    pair: &PairExplainer<'_>,
    cycle: &FoundCycle,
) -> Anomaly {
    let n = cycle.nodes.len();
    let names: Vec<String> = (1..=n).map(|i| format!("T{i}")).collect();
    let ts: Vec<u32> = cycle.nodes.iter().map(|v| txns.txn_of_node(*v)).collect();
    let mut text = String::from("Let:\n");
    let mut cycle_json = Vec::with_capacity(n);
    for (name, t) in names.iter().zip(&ts) {
        let description = txns.describe(*t);
        text.push_str(&format!("  {name} = {description}\n"));
        let mut entry = Map::new();
        entry.insert("name".into(), Value::from(name.clone()));
        if let Value::Object(fields) = description {
            entry.extend(fields);
        }
        cycle_json.push(Value::Object(entry));
    }
    text.push_str("\nThen:\n");
    let mut steps = Vec::with_capacity(n);
    let mut edges = Vec::with_capacity(n);
    for i in 0..n {
        let j = (i + 1) % n;
        let (a, b) = (ts[i], ts[j]);
        let label = cycle.labels.get(i).copied().unwrap_or(Label::Ww);
        let why = why(txns, pair, a, b, label);
        let (an, bn) = (&names[i], &names[j]);
        let words = match &why {
            Some(w) => w.render(an, bn),
            None => format!("{bn} depends on {an} ({})", rel_name(label)),
        };
        if i + 1 == n {
            text.push_str(&format!(
                "  - However, {an} < {bn}, because {words}: a contradiction!"
            ));
        } else {
            text.push_str(&format!("  - {an} < {bn}, because {words}.\n"));
        }
        let mut step = why.as_ref().map(Why::to_json).unwrap_or_default();
        step.insert("type".into(), Value::from(rel_name(label)));
        step.insert("from".into(), Value::from(an.clone()));
        step.insert("to".into(), Value::from(bn.clone()));
        step.insert("explanation".into(), Value::from(words));
        steps.push(Value::Object(step));
        edges.push(DrawEdge {
            from: i,
            to: j,
            rel: rel_name(label),
            label: why
                .as_ref()
                .map_or_else(|| rel_name(label).to_string(), Why::label),
        });
    }
    let nodes = names
        .iter()
        .zip(&ts)
        .map(|(name, t)| DrawNode {
            name: name.clone(),
            detail: node_detail(txns, *t),
        })
        .collect();
    let mut data = Map::new();
    data.insert("cycle".into(), Value::Array(cycle_json));
    data.insert("steps".into(), Value::Array(steps));
    Anomaly {
        name: cycle.name.clone(),
        data,
        text,
        drawing: Some(Drawing {
            title: cycle.name.clone(),
            nodes,
            edges,
        }),
    }
}

fn rel_name(label: Label) -> &'static str {
    match label {
        Label::Ww => "ww",
        Label::Wr => "wr",
        Label::Rw => "rw",
        Label::Process => "process",
        Label::Realtime => "realtime",
    }
}

fn why(txns: &Txns<'_>, pair: &PairExplainer<'_>, a: u32, b: u32, label: Label) -> Option<Why> {
    match label {
        Label::Ww | Label::Wr | Label::Rw => pair(a, b, label.bit()),
        Label::Process => Some(Why::Process {
            process: txns.txn(a)?.process,
        }),
        Label::Realtime => {
            let done = txns.event(a)?;
            let invoked = txns.invoke_event(b)?;
            Some(Why::Realtime {
                a_index: done.index,
                b_index: invoked.index,
                seconds: (invoked.time - done.time) as f64 / 1e9,
            })
        }
    }
}

fn node_detail(txns: &Txns<'_>, t: u32) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(e) = txns.event(t) {
        lines.push(format!(
            "index {} · process {} · {}",
            e.index,
            e.process,
            txns.outcome(t).as_str()
        ));
    }
    for mop in txns.mops_of(t) {
        let v = match (mop.kind, mop.value.list()) {
            (MopKind::Read, Some(items)) if items.len() > 4 => {
                let tail: Vec<String> = (items.len() - 3..items.len())
                    .map(|i| items.json_at(i).to_string())
                    .collect();
                format!("[… {}]", tail.join(" "))
            }
            _ => mop.value.to_string(),
        };
        let f = match mop.kind {
            MopKind::Read => "r",
            MopKind::Write if txns.append_spelling => "append",
            MopKind::Write => "w",
        };
        lines.push(format!("{f} {} {v}", txns.key_text(mop.key)));
    }
    lines
}
