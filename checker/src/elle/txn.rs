//! Reading transactions out of a history: pairing, micro-op validation (with the
//! file and line of anything malformed), and a compact representation the
//! inference passes share.

use std::fmt;
use std::ops::Range;

use serde_json::Value;

use super::ElleWorkload;
use super::hash::FxHashMap;
use super::source::{Event, Source};
use super::value::MopValue;
use crate::history::{History, InputError, OpType};

/// How a transaction ended, as far as the checker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Committed.
    Ok,
    /// Unknown: may or may not have committed.
    Info,
    /// Definitely did not commit.
    Fail,
}

impl Outcome {
    /// The history spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Info => "info",
            Outcome::Fail => "fail",
        }
    }
}

/// What a micro-op does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MopKind {
    /// `r`: a read; its value is the observed state (null if unknown).
    Read,
    /// `append` (list-append) or `w` (rw-register).
    Write,
}

/// One micro-op, borrowing its value from the history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mop<'h> {
    /// Read or write.
    pub kind: MopKind,
    /// Interned key.
    pub key: u32,
    /// The appended/written value, or the read's observed value (may be null).
    pub value: MopValue<'h>,
}

/// A value that can be hashed: list elements and register values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Elem<'h> {
    /// The initial (nil) state of a register.
    Nil,
    /// An integer.
    Int(i64),
    /// A string.
    Str(&'h str),
}

impl<'h> Elem<'h> {
    /// The element a JSON value denotes, if it is one (null, integer or string).
    pub(crate) fn of(value: &'h Value) -> Option<Elem<'h>> {
        match value {
            Value::Null => Some(Elem::Nil),
            Value::Number(n) => n.as_i64().map(Elem::Int),
            Value::String(s) => Some(Elem::Str(s)),
            _ => None,
        }
    }
}

impl Elem<'_> {
    /// The element as JSON.
    pub(crate) fn to_json(self) -> Value {
        match self {
            Elem::Nil => Value::Null,
            Elem::Int(n) => Value::from(n),
            Elem::Str(s) => Value::from(s),
        }
    }
}

impl fmt::Display for Elem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Elem::Nil => f.write_str("nil"),
            Elem::Int(i) => write!(f, "{i}"),
            Elem::Str(s) => write!(f, "{}", Value::from(*s)),
        }
    }
}

/// A transaction: one client operation of the history.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// Committed, unknown or failed.
    pub outcome: Outcome,
    /// The client process.
    pub process: u64,
    /// Position of the invocation in the history.
    pub invoke: usize,
    /// Position of the completion, if any.
    pub completion: Option<usize>,
    /// Its micro-ops in [`Txns::mops`].
    pub mops: Range<u32>,
}

/// Sentinel for "no transaction" / "no node".
pub(crate) const NONE: u32 = u32::MAX;

/// Every transaction of a history, with micro-ops flattened and keys interned.
pub(crate) struct Txns<'h> {
    /// The history they came from.
    pub source: Source<'h>,
    /// Every client operation, in invocation order.
    pub txns: Vec<Txn>,
    /// All micro-ops, transaction by transaction.
    pub mops: Vec<Mop<'h>>,
    /// Interned keys, by id.
    pub keys: Vec<&'h Value>,
    /// Graph nodes (ok and info transactions): node id -> transaction id.
    pub nodes: Vec<u32>,
    /// Transaction id -> node id, or [`NONE`] for failed transactions.
    pub node_of: Vec<u32>,
    /// True when writes are spelled `append` (list-append), false for `w`.
    pub append_spelling: bool,
}

impl<'h> Txns<'h> {
    /// The transactions with their graph nodes numbered: every ok and info one.
    pub(crate) fn assemble(
        source: Source<'h>,
        txns: Vec<Txn>,
        mops: Vec<Mop<'h>>,
        keys: Vec<&'h Value>,
        workload: ElleWorkload,
    ) -> Txns<'h> {
        let mut nodes = Vec::with_capacity(txns.len());
        let mut node_of = Vec::with_capacity(txns.len());
        for (t, txn) in txns.iter().enumerate() {
            if txn.outcome == Outcome::Fail {
                node_of.push(NONE);
            } else {
                node_of.push(nodes.len() as u32);
                nodes.push(t as u32);
            }
        }
        Txns {
            source,
            txns,
            mops,
            keys,
            nodes,
            node_of,
            append_spelling: workload == ElleWorkload::ListAppend,
        }
    }

    /// The micro-ops of transaction `t`.
    pub(crate) fn mops_of(&self, t: u32) -> &[Mop<'h>] {
        match self.txns.get(t as usize) {
            Some(txn) => self
                .mops
                .get(txn.mops.start as usize..txn.mops.end as usize)
                .unwrap_or(&[]),
            None => &[],
        }
    }

    /// The transaction behind graph node `n`.
    pub(crate) fn txn_of_node(&self, n: u32) -> u32 {
        self.nodes.get(n as usize).copied().unwrap_or(NONE)
    }

    /// Transaction `t`.
    pub(crate) fn txn(&self, t: u32) -> Option<&Txn> {
        self.txns.get(t as usize)
    }

    /// The outcome of transaction `t` (fail if unknown).
    pub(crate) fn outcome(&self, t: u32) -> Outcome {
        self.txn(t).map_or(Outcome::Fail, |x| x.outcome)
    }

    /// The history event best describing `t`: its completion, else its invocation.
    pub(crate) fn event(&self, t: u32) -> Option<Event> {
        let txn = self.txn(t)?;
        self.source.event(txn.completion.unwrap_or(txn.invoke))
    }

    /// The invocation event of `t`.
    pub(crate) fn invoke_event(&self, t: u32) -> Option<Event> {
        self.source.event(self.txn(t)?.invoke)
    }

    /// The line of the file that the invocation of `t` came from.
    pub(crate) fn invoke_line(&self, t: u32) -> Option<usize> {
        self.txn(t).map(|txn| self.source.line_of(txn.invoke))
    }

    /// Renders `t` as JSON for explanations: index, process, type and micro-ops.
    pub(crate) fn describe(&self, t: u32) -> Value {
        let mut object = serde_json::Map::new();
        if let Some(event) = self.event(t) {
            object.insert("index".into(), Value::from(event.index));
            object.insert(
                "process".into(),
                serde_json::to_value(event.process).unwrap_or(Value::Null),
            );
            object.insert("type".into(), Value::from(self.outcome(t).as_str()));
        }
        let mops: Vec<Value> = self.mops_of(t).iter().map(|m| self.mop_json(m)).collect();
        object.insert("value".into(), Value::Array(mops));
        Value::Object(object)
    }

    /// A micro-op as `[f, key, value]`.
    pub(crate) fn mop_json(&self, mop: &Mop<'h>) -> Value {
        let f = match (mop.kind, self.workload_is_append()) {
            (MopKind::Read, _) => "r",
            (MopKind::Write, true) => "append",
            (MopKind::Write, false) => "w",
        };
        Value::Array(vec![
            Value::from(f),
            self.key_json(mop.key),
            mop.value.to_json(),
        ])
    }

    fn workload_is_append(&self) -> bool {
        self.append_spelling
    }

    /// Key `k` as JSON.
    pub(crate) fn key_json(&self, k: u32) -> Value {
        self.keys
            .get(k as usize)
            .map_or(Value::Null, |v| (*v).clone())
    }

    /// Key `k` as text.
    pub(crate) fn key_text(&self, k: u32) -> String {
        self.key_json(k).to_string()
    }
}

/// A hashable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyRef<'h> {
    Int(i64),
    Str(&'h str),
}

/// Parses every client operation of `history` as a transaction of `workload`.
pub(crate) fn parse<'h>(
    history: &'h History,
    workload: ElleWorkload,
) -> Result<Txns<'h>, InputError> {
    use rayon::prelude::*;
    // Pair invocations with completions (an invocation with none counts as info).
    let ops = history.ops();
    let mut pairs: Vec<(usize, Option<usize>)> = Vec::with_capacity(ops.len() / 2 + 1);
    let mut open: FxHashMap<u64, usize> = FxHashMap::default();
    for (position, op) in ops.iter().enumerate() {
        let crate::history::Process::Client(process) = op.process else {
            continue;
        };
        if op.op_type == OpType::Invoke {
            open.insert(process, pairs.len());
            pairs.push((position, None));
        } else if let Some(slot) = open.remove(&process)
            && let Some(pair) = pairs.get_mut(slot)
        {
            pair.1 = Some(position);
        }
    }
    drop(open);
    // Parse in parallel chunks, each with its own key numbering.
    let chunks: Vec<Result<Chunk<'h>, InputError>> = pairs
        .par_chunks(1 << 14)
        .map(|chunk| parse_chunk(history, workload, chunk))
        .collect();
    let mut txns = Vec::with_capacity(pairs.len());
    let mut mops: Vec<Mop<'h>> = Vec::with_capacity(
        chunks
            .iter()
            .map(|c| c.as_ref().map_or(0, |c| c.mops.len()))
            .sum(),
    );
    let mut keys: Vec<&'h Value> = Vec::new();
    let mut key_ids: FxHashMap<KeyRef<'h>, u32> = FxHashMap::default();
    for chunk in chunks {
        let chunk = chunk?;
        let remap: Vec<u32> = chunk
            .keys
            .iter()
            .map(|(key_ref, value)| {
                let next = keys.len() as u32;
                let id = *key_ids.entry(*key_ref).or_insert(next);
                if id == next {
                    keys.push(value);
                }
                id
            })
            .collect();
        let base = mops.len() as u32;
        mops.extend(chunk.mops.into_iter().map(|mut m| {
            m.key = remap[m.key as usize];
            m
        }));
        txns.extend(chunk.txns.into_iter().map(|mut t| {
            t.mops = t.mops.start + base..t.mops.end + base;
            t
        }));
    }
    Ok(Txns::assemble(
        Source::History(history),
        txns,
        mops,
        keys,
        workload,
    ))
}

/// Transactions parsed from a run of the history, keys numbered locally.
struct Chunk<'h> {
    txns: Vec<Txn>,
    mops: Vec<Mop<'h>>,
    keys: Vec<(KeyRef<'h>, &'h Value)>,
}

fn parse_chunk<'h>(
    history: &'h History,
    workload: ElleWorkload,
    pairs: &[(usize, Option<usize>)],
) -> Result<Chunk<'h>, InputError> {
    let ops = history.ops();
    let write_f = match workload {
        ElleWorkload::ListAppend => "append",
        ElleWorkload::RwRegister => "w",
    };
    let mut txns = Vec::with_capacity(pairs.len());
    let mut mops: Vec<Mop<'h>> = Vec::with_capacity(pairs.len() * 3);
    let mut keys: Vec<(KeyRef<'h>, &'h Value)> = Vec::new();
    let mut key_ids: FxHashMap<KeyRef<'h>, u32> = FxHashMap::default();
    let at = |position: usize, msg: String| history.error_at(position, msg);
    for &(invoke_pos, completion_pos) in pairs {
        let Some(invoke) = ops.get(invoke_pos) else {
            continue;
        };
        let completion = completion_pos.and_then(|c| ops.get(c));
        let crate::history::Process::Client(process) = invoke.process else {
            continue;
        };
        // Elle looks only at `value`: `f` may be "txn", absent (EDN imports name it
        // "txn") or anything else.
        let outcome = match completion.map(|c| c.op_type) {
            Some(OpType::Ok) => Outcome::Ok,
            Some(OpType::Fail) => Outcome::Fail,
            _ => Outcome::Info,
        };
        let invoke_mops = as_txn(&invoke.value).ok_or_else(|| {
            at(
                invoke_pos,
                format!(
                    "a txn's `value` must be a list of micro-ops, got {}",
                    short(&invoke.value)
                ),
            )
        })?;
        // The value that describes what happened: the completion's for ok (and for
        // info when it has one), the invocation's otherwise.
        let (source, value_mops): (usize, &'h [Value]) = match (outcome, completion, completion_pos)
        {
            (Outcome::Ok, Some(c), Some(cp)) => (
                cp,
                as_txn(&c.value).ok_or_else(|| {
                    at(
                        cp,
                        format!(
                            "an ok txn's `value` must be a list of micro-ops, got {}",
                            short(&c.value)
                        ),
                    )
                })?,
            ),
            (Outcome::Info, Some(c), Some(cp)) if c.value.is_array() => {
                (cp, as_txn(&c.value).unwrap_or(invoke_mops))
            }
            _ => (invoke_pos, invoke_mops),
        };
        let invoke_line = history.line_of(invoke_pos);
        if value_mops.len() != invoke_mops.len() {
            return Err(at(
                source,
                format!(
                    "the completion has {} micro-ops but its invocation (line {invoke_line}) had {}",
                    value_mops.len(),
                    invoke_mops.len()
                ),
            ));
        }
        let start = mops.len() as u32;
        for (i, (mop, inv)) in value_mops.iter().zip(invoke_mops).enumerate() {
            let before = parse_mop(inv, write_f, &mut keys, &mut key_ids)
                .map_err(|m| at(invoke_pos, format!("micro-op {i}: {m}")))?;
            if before.kind == MopKind::Write {
                check_mop_value(&before, Outcome::Fail, workload)
                    .map_err(|m| at(invoke_pos, format!("micro-op {i}: {m}")))?;
            }
            let parsed = if source == invoke_pos {
                before
            } else {
                // The completion must repeat the invocation's function, key and
                // written value; only reads are filled in.
                let same = match (mop.as_array(), inv.as_array()) {
                    (Some(m), Some(v)) if m.len() == 3 => {
                        m[0] == v[0]
                            && m[1] == v[1]
                            && (before.kind == MopKind::Read || m[2] == v[2])
                    }
                    _ => false,
                };
                if !same {
                    return Err(at(
                        source,
                        format!(
                            "micro-op {i} is {} but the invocation on line {invoke_line} had {}",
                            short(mop),
                            short(inv)
                        ),
                    ));
                }
                Mop {
                    kind: before.kind,
                    key: before.key,
                    value: MopValue::Json(committed_read(&mop[2], before.kind, outcome, workload)),
                }
            };
            check_mop_value(&parsed, outcome, workload)
                .map_err(|m| at(source, format!("micro-op {i}: {m}")))?;
            mops.push(parsed);
        }
        txns.push(Txn {
            outcome,
            process,
            invoke: invoke_pos,
            completion: completion_pos,
            mops: start..mops.len() as u32,
        });
    }
    Ok(Chunk { txns, mops, keys })
}

/// The empty list: what a committed list-append read of `null` observed.
static EMPTY_LIST: Value = Value::Array(Vec::new());

/// A completion's micro-op value as the checker reads it. A committed list-append read
/// of `null` (a missing key) observed the empty list, as in Elle and the history spec;
/// reads in `info` completions (and invocations' placeholders) stay `null`: no
/// information.
fn committed_read(
    value: &Value,
    kind: MopKind,
    outcome: Outcome,
    workload: ElleWorkload,
) -> &Value {
    match (value, kind, outcome, workload) {
        (Value::Null, MopKind::Read, Outcome::Ok, ElleWorkload::ListAppend) => &EMPTY_LIST,
        _ => value,
    }
}

fn as_txn(value: &Value) -> Option<&[Value]> {
    value.as_array().map(Vec::as_slice)
}

fn parse_mop<'h>(
    mop: &'h Value,
    write_f: &str,
    keys: &mut Vec<(KeyRef<'h>, &'h Value)>,
    key_ids: &mut FxHashMap<KeyRef<'h>, u32>,
) -> Result<Mop<'h>, String> {
    let parts = match mop.as_array() {
        Some(parts) if parts.len() == 3 => parts,
        _ => return Err(format!("expected [f, key, value], got {}", short(mop))),
    };
    let (f, key, value) = (&parts[0], &parts[1], &parts[2]);
    let kind = match f.as_str() {
        Some("r") => MopKind::Read,
        Some(w) if w == write_f => MopKind::Write,
        _ => {
            return Err(format!(
                "micro-op function must be \"r\" or \"{write_f}\", got {}",
                short(f)
            ));
        }
    };
    let key_ref = match key {
        Value::String(s) => KeyRef::Str(s),
        Value::Number(n) => KeyRef::Int(
            n.as_i64()
                .ok_or_else(|| format!("key must be a string or an integer, got {}", short(key)))?,
        ),
        _ => {
            return Err(format!(
                "key must be a string or an integer, got {}",
                short(key)
            ));
        }
    };
    let next = keys.len() as u32;
    let id = *key_ids.entry(key_ref).or_insert(next);
    if id == next {
        keys.push((key_ref, key));
    }
    Ok(Mop {
        kind,
        key: id,
        value: MopValue::Json(value),
    })
}

fn check_mop_value(mop: &Mop<'_>, outcome: Outcome, workload: ElleWorkload) -> Result<(), String> {
    let scalar = |v: &Value| matches!(Elem::of(v), Some(Elem::Int(_) | Elem::Str(_)));
    let value = mop.value.json();
    match mop.kind {
        MopKind::Write if !scalar(value) => Err(format!(
            "written values must be integers or strings, got {}",
            short(value)
        )),
        MopKind::Read if outcome != Outcome::Fail => match workload {
            // Elements are checked where they are used (the version order and
            // reads that disagree with it): every other read equals a prefix of
            // the key's longest read.
            ElleWorkload::ListAppend => match value {
                Value::Null | Value::Array(_) => Ok(()),
                other => Err(format!(
                    "a list-append read is a list (or null), got {}",
                    short(other)
                )),
            },
            ElleWorkload::RwRegister => {
                if value.is_null() || scalar(value) {
                    Ok(())
                } else {
                    Err(format!(
                        "a register read is an integer, a string or null, got {}",
                        short(value)
                    ))
                }
            }
        },
        _ => Ok(()),
    }
}

/// A short rendering of a JSON value for messages.
pub(crate) fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        text
    } else {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
