//! List-append anomalies found without cycles: G1a, G1b, internal, future-read,
//! incompatible-order, duplicate-elements, dirty-update and lost-update, as Elle
//! defines them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::anomaly::{Anomaly, obj, txn_name};
use super::hash::FxHashMap;
use super::list_append::AppendIndex;
use super::txn::{Elem, Mop, MopKind, NONE, Outcome, Txns};
use super::value::{List, MopValue};

/// Every non-cycle anomaly of a list-append history.
pub(crate) fn find(txns: &Txns<'_>, index: &AppendIndex<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let dup_keys = reads(txns, index, &mut found);
    per_txn(txns, index, &dup_keys, &mut found);
    incompatible_orders(txns, index, &mut found);
    dirty_updates(txns, index, &mut found);
    found
}

fn list(value: MopValue<'_>) -> List<'_> {
    value.list_or_empty()
}

fn render_list(items: List<'_>) -> String {
    items.to_json().to_string()
}

/// G1a, G1b and duplicate-elements: properties of single reads. Returns, per
/// key, whether its longest read repeats an element.
fn reads(txns: &Txns<'_>, index: &AppendIndex<'_>, found: &mut Vec<Anomaly>) -> Vec<bool> {
    // Keys whose longest read repeats an element need the slow duplicate check:
    // the version order is that read without repeats.
    let dup_keys: Vec<bool> = index
        .longest
        .iter()
        .zip(&index.order)
        .map(|(l, o)| !l.is_empty() && l.len() != o.len())
        .collect();
    // Per key (without repeats), positions appended by failed transactions.
    let mut failed_at: Vec<Vec<usize>> = vec![Vec::new(); txns.keys.len()];
    for (k, writers) in index.order_writer.iter().enumerate() {
        for (i, w) in writers.iter().enumerate() {
            if *w != NONE && txns.outcome(*w) == Outcome::Fail {
                failed_at[k].push(i);
            }
        }
    }
    for read in &index.reads {
        let mop = &txns.mops[read.mop as usize];
        let k = mop.key as usize;
        let items = list(mop.value);
        let ok = txns.outcome(read.txn) == Outcome::Ok;
        // Duplicates (ok and info reads).
        if !read.compatible || dup_keys[k] {
            let mut counts: BTreeMap<Elem<'_>, usize> = BTreeMap::new();
            for e in items.elems().flatten() {
                *counts.entry(e).or_default() += 1;
            }
            let dups: Vec<(Elem<'_>, usize)> = counts.into_iter().filter(|(_, c)| *c > 1).collect();
            if !dups.is_empty() {
                let described: Vec<String> = dups
                    .iter()
                    .map(|(e, c)| format!("{e} ({c} times)"))
                    .collect();
                let map: serde_json::Map<String, Value> = dups
                    .iter()
                    .map(|(e, c)| (e.to_string(), Value::from(*c)))
                    .collect();
                found.push(Anomaly::new(
                    "duplicate-elements",
                    obj([
                        ("op", txns.describe(read.txn)),
                        ("mop", txns.mop_json(mop)),
                        ("duplicates", Value::Object(map)),
                    ]),
                    format!(
                        "{} read key {} = {}, in which {} appear more than once; every value is appended once.",
                        txn_name(txns, read.txn),
                        txns.key_text(mop.key),
                        render_list(items),
                        described.join(", ")
                    ),
                ));
            }
        }
        if !ok {
            continue;
        }
        // G1a: an element appended by a failed transaction.
        let failed: Vec<(Value, u32)> = if read.compatible && !dup_keys[k] {
            failed_at[k]
                .iter()
                .take_while(|i| **i < items.len())
                .filter_map(|i| {
                    let writer = index.elem(mop.key, items.elem(*i)?)?.writer;
                    Some((items.json_at(*i), writer))
                })
                .collect()
        } else {
            (0..items.len())
                .filter_map(|i| {
                    let writer = index.elem(mop.key, items.elem(i)?)?.writer;
                    (writer != NONE && txns.outcome(writer) == Outcome::Fail)
                        .then(|| (items.json_at(i), writer))
                })
                .collect()
        };
        for (element, writer) in failed {
            found.push(Anomaly::new(
                "G1a",
                obj([
                    ("op", txns.describe(read.txn)),
                    ("mop", txns.mop_json(mop)),
                    ("writer", txns.describe(writer)),
                    ("element", element.clone()),
                ]),
                format!(
                    "{} read key {} = {}, which includes {element}, appended by {}: an aborted read.",
                    txn_name(txns, read.txn),
                    txns.key_text(mop.key),
                    render_list(items),
                    txn_name(txns, writer)
                ),
            ));
        }
        // G1b: the last element is an intermediate append of another transaction.
        if let Some(i) = items.len().checked_sub(1)
            && let Some(info) = index.info.get(read.last as usize)
            && info.intermediate
            && info.writer != read.txn
            && info.writer != NONE
        {
            let last = items.json_at(i);
            found.push(Anomaly::new(
                "G1b",
                obj([
                    ("op", txns.describe(read.txn)),
                    ("mop", txns.mop_json(mop)),
                    ("writer", txns.describe(info.writer)),
                    ("element", last.clone()),
                ]),
                format!(
                    "{} read key {} = {}, ending in {last}, but {} appended to {} again after {last}: an intermediate read.",
                    txn_name(txns, read.txn),
                    txns.key_text(mop.key),
                    render_list(items),
                    txn_name(txns, info.writer),
                    txns.key_text(mop.key)
                ),
            ));
        }
    }
    dup_keys
}

/// What a transaction expects a key to hold, from its own earlier micro-ops.
struct Expected<'h> {
    /// The read it last saw, if any (otherwise the prefix is unknown), and
    /// whether that read was a prefix of the key's longest read.
    base: Option<(List<'h>, bool)>,
    /// What it appended since.
    tail: Vec<MopValue<'h>>,
}

impl Expected<'_> {
    /// Does a read of `items` agree? `prefix` says `items` is a prefix of the
    /// key's (duplicate-free) longest read, as the base may be: then their common
    /// part is equal and need not be compared.
    fn matches(&self, items: List<'_>, prefix: bool) -> bool {
        // Appended values are integers or strings, so element equality is JSON's.
        let tail_ok = |rest: List<'_>| {
            rest.len() == self.tail.len()
                && rest
                    .elems()
                    .zip(&self.tail)
                    .all(|(a, b)| a.is_some() && a == b.elem())
        };
        match self.base {
            Some((base, base_prefix)) => {
                items.len() == base.len() + self.tail.len()
                    && ((prefix && base_prefix) || items.slice(0, base.len()) == base)
                    && tail_ok(items.slice(base.len(), items.len()))
            }
            None => {
                items.len() >= self.tail.len()
                    && tail_ok(items.slice(items.len() - self.tail.len(), items.len()))
            }
        }
    }

    fn to_json(&self) -> Value {
        let mut out: Vec<Value> = match self.base {
            Some((base, _)) => (0..base.len()).map(|i| base.json_at(i)).collect(),
            None => vec![Value::from("...")],
        };
        out.extend(self.tail.iter().map(|v| v.to_json()));
        Value::Array(out)
    }
}

/// internal, future-read and lost-update: properties of one committed transaction.
fn per_txn(txns: &Txns<'_>, index: &AppendIndex<'_>, dup_keys: &[bool], found: &mut Vec<Anomaly>) {
    // lost-update: (key, state read) -> transactions that read it, then appended.
    let mut lost: FxHashMap<(u32, LostKey), Vec<u32>> = FxHashMap::default();
    // A read is a clean prefix when it is a prefix of its key's longest read and
    // that read has no duplicates: then its length says everything.
    let clean = |m: u32, k: u32| -> bool {
        index.read(m).is_some_and(|r| r.compatible)
            && !dup_keys.get(k as usize).copied().unwrap_or(true)
    };
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        let t = t as u32;
        let mops = txns.mops_of(t);
        let base = txn.mops.start;
        if mops.len() < 2 {
            continue;
        }
        let mut state: Vec<(u32, Expected<'_>)> = Vec::new();
        let mut internal_done = false;
        let mut future_done = false;
        let mut first_read: Vec<(u32, u32)> = Vec::new();
        let mut written: Vec<u32> = Vec::new();
        for (i, mop) in mops.iter().enumerate() {
            let k = mop.key;
            let m = base + i as u32;
            match mop.kind {
                MopKind::Write => {
                    match state.iter_mut().find(|(key, _)| *key == k) {
                        Some((_, e)) => e.tail.push(mop.value),
                        None => state.push((
                            k,
                            Expected {
                                base: None,
                                tail: vec![mop.value],
                            },
                        )),
                    }
                    if !future_done {
                        let pos = index
                            .mop_elem
                            .get(m as usize)
                            .and_then(|e| index.info.get(*e as usize))
                            .map_or(NONE, |e| e.pos);
                        let saw = mops[..i].iter().enumerate().find(|(j, r)| {
                            r.kind == MopKind::Read
                                && r.key == k
                                && if clean(base + *j as u32, k) {
                                    pos != NONE && (pos as usize) < list(r.value).len()
                                } else {
                                    mop.value.elem().is_some_and(|e| list(r.value).contains(e))
                                }
                        });
                        if let Some((_, read)) = saw {
                            future_done = true;
                            found.push(future_read(txns, t, read, mop));
                        }
                    }
                    // As Elle: the first append after a read of the key counts.
                    if !written.contains(&k)
                        && let Some((_, rm)) = first_read.iter().find(|(key, _)| *key == k)
                    {
                        written.push(k);
                        let key = match index.read(*rm) {
                            Some(r) if r.compatible => LostKey::Prefix(
                                txns.mops
                                    .get(*rm as usize)
                                    .map_or(0, |x| list(x.value).len())
                                    as u32,
                            ),
                            _ => LostKey::Mop(*rm),
                        };
                        lost.entry((k, key)).or_default().push(t);
                    }
                }
                MopKind::Read => {
                    let items = list(mop.value);
                    let prefix = clean(m, k);
                    if !first_read.iter().any(|(key, _)| *key == k) {
                        first_read.push((k, m));
                    }
                    match state.iter_mut().find(|(key, _)| *key == k) {
                        Some((_, e)) => {
                            if !internal_done && !e.matches(items, prefix) {
                                internal_done = true;
                                found.push(Anomaly::new(
                                    "internal",
                                    obj([
                                        ("op", txns.describe(t)),
                                        ("mop", txns.mop_json(mop)),
                                        ("expected", e.to_json()),
                                    ]),
                                    format!(
                                        "{} read key {} = {}, but its own earlier micro-ops imply {} (\"...\" is an unknown prefix).",
                                        txn_name(txns, t),
                                        txns.key_text(k),
                                        render_list(items),
                                        e.to_json()
                                    ),
                                ));
                            }
                            *e = Expected {
                                base: Some((items, prefix)),
                                tail: Vec::new(),
                            };
                        }
                        None => state.push((
                            k,
                            Expected {
                                base: Some((items, prefix)),
                                tail: Vec::new(),
                            },
                        )),
                    }
                }
            }
        }
    }
    let mut groups: Vec<((u32, LostKey), Vec<u32>)> =
        lost.into_iter().filter(|(_, ts)| ts.len() > 1).collect();
    groups.sort_by_key(|(_, ts)| ts.first().copied());
    for ((k, key), ts) in groups {
        let value = match key {
            LostKey::Prefix(n) => index
                .longest
                .get(k as usize)
                .map_or(Value::Array(Vec::new()), |l| {
                    l.slice(0, n as usize).to_json()
                }),
            LostKey::Mop(m) => txns
                .mops
                .get(m as usize)
                .map_or(Value::Null, |mop| mop.value.to_json()),
        };
        let names: Vec<String> = ts.iter().map(|t| txn_name(txns, *t)).collect();
        found.push(Anomaly::new(
            "lost-update",
            obj([
                ("key", txns.key_json(k)),
                ("value", value.clone()),
                ("txns", Value::Array(ts.iter().map(|t| txns.describe(*t)).collect())),
            ]),
            format!(
                "{} all read key {} = {value} and then appended to it: all committed, so one update was lost.",
                names.join(", "),
                txns.key_text(k)
            ),
        ));
    }
}

/// Identifies the value a read saw: a prefix (by length) of the key's longest
/// read, or (for reads that are not a prefix of it) the read itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LostKey {
    Prefix(u32),
    Mop(u32),
}

fn future_read(txns: &Txns<'_>, t: u32, read: &Mop<'_>, append: &Mop<'_>) -> Anomaly {
    Anomaly::new(
        "future-read",
        obj([
            ("op", txns.describe(t)),
            ("mop", txns.mop_json(read)),
            ("element", append.value.to_json()),
        ]),
        format!(
            "{} read key {} = {}, which includes {}, before appending {} itself.",
            txn_name(txns, t),
            txns.key_text(read.key),
            read.value,
            append.value,
            append.value
        ),
    )
}

/// incompatible-order: two reads of a key that are not prefixes of one another.
fn incompatible_orders(txns: &Txns<'_>, index: &AppendIndex<'_>, found: &mut Vec<Anomaly>) {
    let mut keys: Vec<u32> = index
        .reads
        .iter()
        .filter(|r| !r.compatible)
        .map(|r| txns.mops[r.mop as usize].key)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for k in keys {
        let mut values: Vec<List<'_>> = index
            .reads
            .iter()
            .map(|r| &txns.mops[r.mop as usize])
            .filter(|m| m.key == k)
            .map(|m| list(m.value))
            .filter(|l| !l.is_empty())
            .collect();
        values.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.elems().cmp(b.elems())));
        values.dedup();
        if let Some(pair) = values.windows(2).find(|w| !w[0].is_prefix_of(w[1])) {
            let (a, b) = (pair[0], pair[1]);
            found.push(Anomaly::new(
                "incompatible-order",
                obj([
                    ("key", txns.key_json(k)),
                    ("values", Value::Array(vec![a.to_json(), b.to_json()])),
                ]),
                format!(
                    "reads of key {} disagree on the order of appends: {} is not a prefix of {}, so no single order of appends explains both.",
                    txns.key_text(k),
                    render_list(a),
                    render_list(b)
                ),
            ));
        }
    }
}

/// dirty-update: a committed append directly after a failed one in version order.
fn dirty_updates(txns: &Txns<'_>, index: &AppendIndex<'_>, found: &mut Vec<Anomaly>) {
    for (k, order) in index.order.iter().enumerate() {
        let writers = &index.order_writer[k];
        // (last writer's outcome, its txn, values since the last clean state)
        let mut t1: (Outcome, u32) = (Outcome::Ok, NONE);
        let mut vs: Vec<Value> = Vec::new();
        for (v, &t2) in order.iter().zip(writers) {
            if t2 == NONE {
                continue;
            }
            let o2 = txns.outcome(t2);
            vs.push(v.to_json());
            match (t1.0, o2) {
                (Outcome::Fail, Outcome::Ok) => {
                    found.push(Anomaly::new(
                        "dirty-update",
                        obj([
                            ("key", txns.key_json(k as u32)),
                            ("values", Value::Array(vs.clone())),
                            (
                                "txns",
                                Value::Array(vec![txns.describe(t1.1), Value::from("..."), txns.describe(t2)]),
                            ),
                        ]),
                        format!(
                            "key {}: {} appended to a state written by {}, which failed: values {} passed through an aborted write.",
                            txns.key_text(k as u32),
                            txn_name(txns, t2),
                            txn_name(txns, t1.1),
                            Value::Array(vs.clone())
                        ),
                    ));
                    t1 = (o2, t2);
                    vs = vec![v.to_json()];
                }
                (_, Outcome::Ok) | (Outcome::Ok | Outcome::Info, Outcome::Fail) => {
                    t1 = (o2, t2);
                    vs = vec![v.to_json()];
                }
                _ => {}
            }
        }
    }
}
