//! rw-register inference, after Elle's `elle.rw-register`. Writes are unique per
//! key, so a read names its writer (wr edges). Versions cannot be ordered from
//! reads alone; the version order of each key is built from sources added one at
//! a time, each kept only if it leaves the order acyclic:
//!
//! 1. the initial state (nil) precedes every other value;
//! 2. (`wfr_keys`) within a transaction, writes follow reads: a value read before
//!    writing the key precedes the value written;
//! 3. (`sequential_keys`) each key is sequentially consistent: a process's later
//!    transaction sees or writes a later version than its earlier one did;
//! 4. (`linearizable_keys`) each key is linearizable: likewise for any transaction
//!    that completed before another began.
//!
//! Every version edge `v1 -> v2` of key `k` yields ww edges from the writer of
//! `v1` to the writer of `v2` and rw edges from each reader of `v1` to the writer
//! of `v2`.

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use super::anomaly::{Anomaly, Why, obj, txn_name};
use super::graph::{EdgeList, rel};
use super::hash::{FxHashMap, FxHashSet};
use super::txn::{Elem, MopKind, NONE, Outcome, Txns};
use crate::history::InputError;

/// How to infer version orders (Elle's options of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionInference {
    /// Assume writes follow reads within a transaction.
    pub wfr_keys: bool,
    /// Assume each key is sequentially consistent (use process order).
    pub sequential_keys: bool,
    /// Assume each key is linearizable (use real-time order).
    pub linearizable_keys: bool,
}

/// Values, their writers and readers, and the inferred version order.
pub(crate) struct RegisterIndex<'h> {
    values: FxHashMap<(u32, Elem<'h>), u32>,
    /// Per value id: its key.
    value_key: Vec<u32>,
    /// Per value id: the value.
    value_json: Vec<Value>,
    /// Per value id: the transaction that wrote it (any outcome), or NONE.
    writer: Vec<u32>,
    /// Per value id: whether that write was its transaction's last to the key.
    final_write: Vec<bool>,
    /// Per transaction: external writes (key, value id).
    ext_writes: Vec<Vec<(u32, u32)>>,
    /// Per transaction (ok only): external reads (key, value id).
    ext_reads: Vec<Vec<(u32, u32)>>,
    /// Version order edges (value ids).
    versions: FxHashSet<(u32, u32)>,
    /// Cyclic version orders found (and left out).
    pub cyclic: Vec<Anomaly>,
}

impl<'h> RegisterIndex<'h> {
    fn value_id(&mut self, k: u32, e: Elem<'h>, json: &Value) -> u32 {
        let next = self.value_key.len() as u32;
        let id = *self.values.entry((k, e)).or_insert(next);
        if id == next {
            self.value_key.push(k);
            self.value_json.push(json.clone());
            self.writer.push(NONE);
            self.final_write.push(false);
        }
        id
    }

    fn lookup(&self, k: u32, value: &'h Value) -> Option<u32> {
        self.values.get(&(k, Elem::of(value)?)).copied()
    }
}

/// Builds the index and version order; checks writes are unique per key.
pub(crate) fn index<'h>(
    txns: &Txns<'h>,
    inference: VersionInference,
) -> Result<RegisterIndex<'h>, InputError> {
    let mut ix = RegisterIndex {
        values: FxHashMap::default(),
        value_key: Vec::new(),
        value_json: Vec::new(),
        writer: Vec::new(),
        final_write: Vec::new(),
        ext_writes: vec![Vec::new(); txns.txns.len()],
        ext_reads: vec![Vec::new(); txns.txns.len()],
        versions: FxHashSet::default(),
        cyclic: Vec::new(),
    };
    for (t, txn) in txns.txns.iter().enumerate() {
        let mops = txns.mops_of(t as u32);
        let mut written: Vec<u32> = Vec::new();
        let mut read: Vec<u32> = Vec::new();
        for (i, mop) in mops.iter().enumerate() {
            let Some(e) = Elem::of(mop.value.json()) else {
                continue;
            };
            match mop.kind {
                MopKind::Write => {
                    let id = ix.value_id(mop.key, e, mop.value.json());
                    if ix.writer[id as usize] != NONE {
                        let other = ix.writer[id as usize];
                        let line = txns.invoke_line(other);
                        return Err(txns.source.error_at(
                            txn.invoke,
                            format!(
                                "value {} is written to key {} more than once (also by the txn invoked on line {}); rw-register needs unique values per key",
                                mop.value.json(),
                                txns.key_text(mop.key),
                                line.map_or("?".to_string(), |l| l.to_string())
                            ),
                        ));
                    }
                    ix.writer[id as usize] = t as u32;
                    let last = !mops[i + 1..]
                        .iter()
                        .any(|m| m.kind == MopKind::Write && m.key == mop.key);
                    ix.final_write[id as usize] = last;
                    if last {
                        ix.ext_writes[t].push((mop.key, id));
                    }
                    written.push(mop.key);
                }
                MopKind::Read => {
                    if txn.outcome != Outcome::Ok {
                        continue;
                    }
                    let id = ix.value_id(mop.key, e, mop.value.json());
                    if !written.contains(&mop.key) && !read.contains(&mop.key) {
                        read.push(mop.key);
                        ix.ext_reads[t].push((mop.key, id));
                    }
                }
            }
        }
    }
    // Version order sources, each kept only if the order stays acyclic.
    let mut sources: Vec<(&str, Vec<(u32, u32)>)> =
        vec![("initial-state", initial_state(txns, &mut ix))];
    if inference.wfr_keys {
        sources.push(("wfr-keys", wfr(txns, &ix)));
    }
    if inference.sequential_keys {
        sources.push(("sequential-keys", sequential(txns, &ix)));
    }
    if inference.linearizable_keys {
        sources.push(("linearizable-keys", linearizable(txns, &ix)));
    }
    let mut used: Vec<&str> = Vec::new();
    for (name, edges) in sources {
        let mut candidate = ix.versions.clone();
        candidate.extend(edges.iter().copied().filter(|(a, b)| a != b));
        let cycles = version_cycles(&candidate);
        if cycles.is_empty() {
            ix.versions = candidate;
            used.push(name);
        } else {
            for scc in cycles {
                let k = scc.first().map_or(0, |v| ix.value_key[*v as usize]);
                let values: Vec<Value> = scc
                    .iter()
                    .map(|v| ix.value_json[*v as usize].clone())
                    .collect();
                let mut srcs: Vec<Value> = used.iter().map(|s| Value::from(*s)).collect();
                srcs.push(Value::from(name));
                ix.cyclic.push(Anomaly::new(
                    "cyclic-versions",
                    obj([
                        ("key", txns.key_json(k)),
                        ("scc", Value::Array(values.clone())),
                        ("sources", Value::Array(srcs)),
                    ]),
                    format!(
                        "the version order of key {} inferred from {} is cyclic among values {}; that source was left out.",
                        txns.key_text(k),
                        name,
                        Value::Array(values)
                    ),
                ));
            }
        }
    }
    Ok(ix)
}

fn initial_state(txns: &Txns<'_>, ix: &mut RegisterIndex<'_>) -> Vec<(u32, u32)> {
    let mut edges = Vec::new();
    let mut nil_of: FxHashMap<u32, u32> = FxHashMap::default();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        let pairs: Vec<(u32, u32)> = ix.ext_writes[t]
            .iter()
            .chain(&ix.ext_reads[t])
            .copied()
            .collect();
        for (k, v) in pairs {
            if ix.value_json[v as usize].is_null() {
                continue;
            }
            let nil = match nil_of.get(&k) {
                Some(n) => *n,
                None => {
                    let n = ix.value_id(k, Elem::Nil, &Value::Null);
                    nil_of.insert(k, n);
                    n
                }
            };
            edges.push((nil, v));
        }
    }
    edges
}

fn wfr(txns: &Txns<'_>, ix: &RegisterIndex<'_>) -> Vec<(u32, u32)> {
    let mut edges = Vec::new();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for (k, r) in &ix.ext_reads[t] {
            if ix.value_json[*r as usize].is_null() {
                continue;
            }
            if let Some((_, w)) = ix.ext_writes[t].iter().find(|(wk, _)| wk == k) {
                edges.push((*r, *w));
            }
        }
    }
    edges
}

/// The last version `t` interacted with on `k` (ok: its write, else its read;
/// info: its write).
fn final_value(txns: &Txns<'_>, ix: &RegisterIndex<'_>, t: usize, k: u32) -> Option<u32> {
    let w = ix.ext_writes[t]
        .iter()
        .find(|(x, _)| *x == k)
        .map(|(_, v)| *v);
    match txns.txns[t].outcome {
        Outcome::Ok => w.or_else(|| {
            ix.ext_reads[t]
                .iter()
                .find(|(x, _)| *x == k)
                .map(|(_, v)| *v)
        }),
        Outcome::Info => w,
        Outcome::Fail => None,
    }
}

/// The first version `t` interacted with on `k` (ok: its read, else its write;
/// info: its write).
fn first_value(txns: &Txns<'_>, ix: &RegisterIndex<'_>, t: usize, k: u32) -> Option<u32> {
    let w = ix.ext_writes[t]
        .iter()
        .find(|(x, _)| *x == k)
        .map(|(_, v)| *v);
    match txns.txns[t].outcome {
        Outcome::Ok => ix.ext_reads[t]
            .iter()
            .find(|(x, _)| *x == k)
            .map(|(_, v)| *v)
            .or(w),
        Outcome::Info => w,
        Outcome::Fail => None,
    }
}

fn keys_of(ix: &RegisterIndex<'_>, t: usize) -> Vec<u32> {
    let mut ks: Vec<u32> = ix.ext_writes[t]
        .iter()
        .chain(&ix.ext_reads[t])
        .map(|(k, _)| *k)
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

fn sequential(txns: &Txns<'_>, ix: &RegisterIndex<'_>) -> Vec<(u32, u32)> {
    let mut edges = Vec::new();
    let mut last: FxHashMap<(u64, u32), usize> = FxHashMap::default();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for k in keys_of(ix, t) {
            if let Some(prev) = last.insert((txn.process, k), t)
                && let (Some(a), Some(b)) =
                    (final_value(txns, ix, prev, k), first_value(txns, ix, t, k))
            {
                edges.push((a, b));
            }
        }
    }
    edges
}

fn linearizable(txns: &Txns<'_>, ix: &RegisterIndex<'_>) -> Vec<(u32, u32)> {
    // Per key: (invoke position, completion position or MAX, txn), by invocation.
    let mut per_key: FxHashMap<u32, Vec<(usize, usize, usize)>> = FxHashMap::default();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        let done = match (txn.outcome, txn.completion) {
            (Outcome::Ok, Some(c)) => c,
            _ => usize::MAX,
        };
        for k in keys_of(ix, t) {
            per_key.entry(k).or_default().push((txn.invoke, done, t));
        }
    }
    let mut edges = Vec::new();
    for (k, mut list) in per_key {
        list.sort_unstable();
        for &(_, done, a) in &list {
            if done == usize::MAX {
                continue;
            }
            let Some(va) = final_value(txns, ix, a, k) else {
                continue;
            };
            let start = list.partition_point(|(inv, _, _)| *inv <= done);
            let mut horizon = usize::MAX;
            for &(inv, c_done, b) in &list[start..] {
                if inv > horizon {
                    break;
                }
                horizon = horizon.min(c_done);
                if let Some(vb) = first_value(txns, ix, b, k) {
                    edges.push((va, vb));
                }
            }
        }
    }
    edges
}

/// Strongly connected components (two or more values) of a version graph.
fn version_cycles(edges: &FxHashSet<(u32, u32)>) -> Vec<Vec<u32>> {
    let mut ids: FxHashMap<u32, NodeIndex> = FxHashMap::default();
    let mut g: DiGraph<u32, ()> = DiGraph::new();
    let mut sorted: Vec<(u32, u32)> = edges.iter().copied().collect();
    sorted.sort_unstable();
    for (a, b) in sorted {
        let na = *ids.entry(a).or_insert_with(|| g.add_node(a));
        let nb = *ids.entry(b).or_insert_with(|| g.add_node(b));
        g.add_edge(na, nb, ());
    }
    let mut out: Vec<Vec<u32>> = kosaraju_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut vs: Vec<u32> = c.iter().map(|n| g[*n]).collect();
            vs.sort_unstable();
            vs
        })
        .collect();
    out.sort();
    out
}

/// ww, wr and rw edges between graph nodes.
pub(crate) fn edges(txns: &Txns<'_>, ix: &RegisterIndex<'_>) -> EdgeList {
    let mut edges = EdgeList::default();
    let node = |t: u32| txns.node_of.get(t as usize).copied().unwrap_or(NONE);
    let ext_writer = |v: u32| -> u32 {
        let w = ix.writer[v as usize];
        if w != NONE && ix.final_write[v as usize] && txns.outcome(w) != Outcome::Fail {
            w
        } else {
            NONE
        }
    };
    // readers of each value (ext reads of ok txns)
    let mut readers: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (t, reads) in ix.ext_reads.iter().enumerate() {
        for (_, v) in reads {
            readers.entry(*v).or_default().push(t as u32);
            let w = ext_writer(*v);
            if w != NONE && w != t as u32 {
                edges.push(node(w), node(t as u32), rel::WR);
            }
        }
    }
    let mut versions: Vec<(u32, u32)> = ix.versions.iter().copied().collect();
    versions.sort_unstable();
    for (v1, v2) in versions {
        let w2 = ext_writer(v2);
        if w2 == NONE {
            continue;
        }
        let w1 = ext_writer(v1);
        if w1 != NONE {
            edges.push(node(w1), node(w2), rel::WW);
        }
        for r in readers.get(&v1).into_iter().flatten() {
            edges.push(node(*r), node(w2), rel::RW);
        }
    }
    edges
}

/// Explains why transaction `a` precedes `b` by relationship `r`.
pub(crate) fn explain(
    txns: &Txns<'_>,
    ix: &RegisterIndex<'_>,
    a: u32,
    b: u32,
    r: u8,
) -> Option<Why> {
    let (ai, bi) = (a as usize, b as usize);
    let v = |id: u32| ix.value_json[id as usize].clone();
    match r {
        rel::WW => ix.ext_writes.get(ai)?.iter().find_map(|(k, v1)| {
            let (_, v2) = ix
                .ext_writes
                .get(bi)?
                .iter()
                .find(|(k2, v2)| k2 == k && ix.versions.contains(&(*v1, *v2)))?;
            Some(Why::RegisterWw {
                key: txns.key_json(*k),
                value: v(*v1),
                value2: v(*v2),
            })
        }),
        rel::WR => ix.ext_writes.get(ai)?.iter().find_map(|(k, v1)| {
            ix.ext_reads
                .get(bi)?
                .iter()
                .find(|(k2, v2)| k2 == k && v2 == v1)?;
            Some(Why::RegisterWr {
                key: txns.key_json(*k),
                value: v(*v1),
            })
        }),
        rel::RW => ix.ext_reads.get(ai)?.iter().find_map(|(k, v1)| {
            let (_, v2) = ix
                .ext_writes
                .get(bi)?
                .iter()
                .find(|(k2, v2)| k2 == k && ix.versions.contains(&(*v1, *v2)))?;
            Some(Why::RegisterRw {
                key: txns.key_json(*k),
                value: v(*v1),
                value2: v(*v2),
            })
        }),
        _ => None,
    }
}

/// G1a, G1b, internal and lost-update.
pub(crate) fn anomalies(txns: &Txns<'_>, ix: &RegisterIndex<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let mut lost: FxHashMap<(u32, u32), Vec<u32>> = FxHashMap::default();
    for (t, txn) in txns.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        let t = t as u32;
        let mut state: Vec<(u32, &Value)> = Vec::new();
        let mut internal_done = false;
        let mut first_read: Vec<(u32, u32)> = Vec::new();
        let mut written: Vec<u32> = Vec::new();
        for mop in txns.mops_of(t) {
            let k = mop.key;
            match mop.kind {
                MopKind::Write => {
                    match state.iter_mut().find(|(key, _)| *key == k) {
                        Some(s) => s.1 = mop.value.json(),
                        None => state.push((k, mop.value.json())),
                    }
                    if !written.contains(&k)
                        && let Some((_, v)) = first_read.iter().find(|(key, _)| *key == k)
                    {
                        written.push(k);
                        lost.entry((k, *v)).or_default().push(t);
                    }
                }
                MopKind::Read => {
                    let Some(id) = ix.lookup(k, mop.value.json()) else {
                        continue;
                    };
                    if !first_read.iter().any(|(key, _)| *key == k) {
                        first_read.push((k, id));
                    }
                    match state.iter_mut().find(|(key, _)| *key == k) {
                        Some(s) => {
                            if !internal_done && s.1 != mop.value.json() {
                                internal_done = true;
                                found.push(Anomaly::new(
                                    "internal",
                                    obj([
                                        ("op", txns.describe(t)),
                                        ("mop", txns.mop_json(mop)),
                                        ("expected", s.1.clone()),
                                    ]),
                                    format!(
                                        "{} read key {} = {}, but its own earlier micro-ops imply {}.",
                                        txn_name(txns, t),
                                        txns.key_text(k),
                                        mop.value.json(),
                                        s.1
                                    ),
                                ));
                            }
                            s.1 = mop.value.json();
                        }
                        None => state.push((k, mop.value.json())),
                    }
                    let w = ix.writer[id as usize];
                    if w == NONE || w == t || mop.value.json().is_null() {
                        continue;
                    }
                    if txns.outcome(w) == Outcome::Fail {
                        found.push(Anomaly::new(
                            "G1a",
                            obj([
                                ("op", txns.describe(t)),
                                ("mop", txns.mop_json(mop)),
                                ("writer", txns.describe(w)),
                            ]),
                            format!(
                                "{} read key {} = {}, written by {}: an aborted read.",
                                txn_name(txns, t),
                                txns.key_text(k),
                                mop.value.json(),
                                txn_name(txns, w)
                            ),
                        ));
                    }
                    if !ix.final_write[id as usize] {
                        found.push(Anomaly::new(
                            "G1b",
                            obj([
                                ("op", txns.describe(t)),
                                ("mop", txns.mop_json(mop)),
                                ("writer", txns.describe(w)),
                            ]),
                            format!(
                                "{} read key {} = {}, which {} overwrote within the same transaction: an intermediate read.",
                                txn_name(txns, t),
                                txns.key_text(k),
                                mop.value.json(),
                                txn_name(txns, w)
                            ),
                        ));
                    }
                }
            }
        }
    }
    let mut groups: Vec<((u32, u32), Vec<u32>)> =
        lost.into_iter().filter(|(_, ts)| ts.len() > 1).collect();
    groups.sort_by_key(|(_, ts)| ts.first().copied());
    for ((k, v), ts) in groups {
        let value = ix.value_json[v as usize].clone();
        let names: Vec<String> = ts.iter().map(|t| txn_name(txns, *t)).collect();
        found.push(Anomaly::new(
            "lost-update",
            obj([
                ("key", txns.key_json(k)),
                ("value", value.clone()),
                ("txns", Value::Array(ts.iter().map(|t| txns.describe(*t)).collect())),
            ]),
            format!(
                "{} all read key {} = {value} and then wrote it: all committed, so one update was lost.",
                names.join(", "),
                txns.key_text(k)
            ),
        ));
    }
    found
}
