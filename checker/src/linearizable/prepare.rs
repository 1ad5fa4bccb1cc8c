//! Turning a history into independent search problems, one per key.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::kind::{ModelKind, NilReads, Semantics};
use super::model::{Action, NULL, UNOBSERVED, ValueId};
use super::multi::{Slots, parse_txn};
use crate::history::{History, InputError, Key, OpType, Operation, Process};

/// Marks an operation that never completed: it has no return.
pub const NEVER: u64 = u64::MAX;

/// One operation of a key, ready for the search.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What the operation does, for the model.
    pub action: Action,
    /// Position of the invocation in the history (real time order).
    pub call: u64,
    /// Position of the `ok` completion, or [`NEVER`] for crashed operations.
    pub ret: u64,
    /// The process that ran it.
    pub process: Process,
}

/// The operations of one key and the values they mention.
#[derive(Debug, Clone)]
pub struct KeyProblem {
    /// The key (`None` for histories without keys).
    pub key: Option<Key>,
    /// Operations that completed `ok`, in invocation order.
    pub completed: Vec<Entry>,
    /// Crashed (`info` or never completed) operations that can matter, in invocation order.
    pub crashed: Vec<Entry>,
    /// Crashed operations left out because no outcome could depend on them (reads, and
    /// writes of values nothing observed).
    pub crashed_ignored: usize,
    /// Operations that failed (they did not happen, and are not searched).
    pub failed: usize,
    /// The interned values: id → JSON value.
    pub values: Vec<Value>,
    /// Values merged into [`UNOBSERVED`] (written, never read), for explanations.
    pub unobserved: Vec<ValueId>,
    /// Queues whose elements are enqueued and dequeued at most once: for each element,
    /// the invocation and return of the completed dequeue that returned it.
    pub dequeue_windows: Option<HashMap<ValueId, (u64, u64)>>,
    /// The initial state's values: the register's (register, cas-register), or each
    /// slot's (multi-register); empty for other models.
    pub initial: Vec<ValueId>,
    /// Multi-register: each slot's key, as an interned value.
    pub slot_keys: Vec<ValueId>,
}

impl KeyProblem {
    /// A value shown as JSON text.
    pub fn show(&self, id: ValueId) -> String {
        if id == UNOBSERVED {
            let mut examples: Vec<String> = self
                .unobserved
                .iter()
                .take(3)
                .map(|&v| self.show(v))
                .collect();
            if self.unobserved.len() > 3 {
                examples.push("…".to_string());
            }
            return format!("a value no read returned ({})", examples.join(", "));
        }
        self.values
            .get(id as usize)
            .map_or_else(|| format!("#{id}"), ToString::to_string)
    }
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, ValueId>,
    values: Vec<Value>,
}

impl Interner {
    fn new() -> Interner {
        let mut interner = Interner::default();
        interner.intern(&Value::Null);
        interner
    }

    fn intern(&mut self, value: &Value) -> ValueId {
        let text = value.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = self.values.len() as ValueId;
        self.ids.insert(text, id);
        self.values.push(value.clone());
        id
    }
}

/// Splits the history by key and converts every client operation for `model`, with the
/// initial value and meaning of `null` reads of `semantics`. Failed operations are
/// dropped (they did not happen), and so are completed reads that say nothing (reads of
/// `null` when [`NilReads::Unknown`]).
pub fn prepare(
    history: &History,
    model: ModelKind,
    semantics: &Semantics,
) -> Result<Vec<KeyProblem>, InputError> {
    prepare_with(history, model, semantics, true)
}

/// [`prepare`], optionally keeping every operation (for the brute-force oracle).
pub(crate) fn prepare_with(
    history: &History,
    model: ModelKind,
    semantics: &Semantics,
    prune: bool,
) -> Result<Vec<KeyProblem>, InputError> {
    semantics.validate(model)?;
    let mut by_key: BTreeMap<Option<Key>, Vec<Operation<'_>>> = BTreeMap::new();
    for operation in history.operations() {
        by_key
            .entry(operation.invoke.key.clone())
            .or_default()
            .push(operation);
    }
    by_key
        .into_iter()
        .map(|(key, operations)| prepare_key(history, model, semantics, key, &operations, prune))
        .collect()
}

fn prepare_key(
    history: &History,
    model: ModelKind,
    semantics: &Semantics,
    key: Option<Key>,
    operations: &[Operation<'_>],
    prune: bool,
) -> Result<KeyProblem, InputError> {
    let mut interner = Interner::new();
    let mut slots = Slots::default();
    let mut conversion = Conversion {
        model,
        semantics,
        prune,
        interner: &mut interner,
        slots: &mut slots,
    };
    let mut completed = Vec::new();
    let mut crashed = Vec::new();
    let mut crashed_ignored = 0;
    let mut failed = 0;
    for operation in operations {
        let outcome = operation.outcome();
        if outcome == OpType::Fail {
            failed += 1;
            continue;
        }
        let done = outcome == OpType::Ok;
        let Some(action) = conversion.action_of(history, operation, done)? else {
            // A completed read that says nothing is no operation at all.
            crashed_ignored += usize::from(!done);
            continue;
        };
        let entry = Entry {
            action,
            call: operation.invoke.index,
            ret: operation
                .completion
                .filter(|_| done)
                .map_or(NEVER, |c| c.index),
            process: operation.invoke.process,
        };
        if done {
            completed.push(entry);
        } else {
            crashed.push(entry);
        }
    }
    let before = crashed.len();
    let dequeue_windows = (model == ModelKind::FifoQueue)
        .then(|| unique_dequeue_windows(&completed, &crashed))
        .flatten();
    let mut unobserved = Vec::new();
    let crashed = if prune {
        let crashed = keep_relevant_crashed(model, &completed, crashed);
        unobserved = merge_unobserved_values(model, &mut completed, &crashed);
        crashed
    } else {
        crashed
    };
    crashed_ignored += before - crashed.len();
    let (initial, slot_keys) = match model {
        ModelKind::Register | ModelKind::CasRegister => {
            (vec![interner.intern(&semantics.initial_value)], Vec::new())
        }
        ModelKind::MultiRegister => slots
            .keys
            .iter()
            .map(|k| {
                (
                    interner.intern(&semantics.initial_of_key(k)),
                    interner.intern(k),
                )
            })
            .unzip(),
        _ => (Vec::new(), Vec::new()),
    };
    Ok(KeyProblem {
        key,
        completed,
        crashed,
        crashed_ignored,
        failed,
        values: interner.values,
        unobserved,
        dequeue_windows,
        initial,
        slot_keys,
    })
}

/// What converting one key's operations needs.
struct Conversion<'a> {
    model: ModelKind,
    semantics: &'a Semantics,
    prune: bool,
    interner: &'a mut Interner,
    slots: &'a mut Slots,
}

impl Conversion<'_> {
    /// The model's action for one operation; `None` for operations whose outcome cannot
    /// matter: crashed reads (and crashed dequeues of the unordered queue), and, when
    /// pruning, completed reads that say nothing.
    fn action_of(
        &mut self,
        history: &History,
        operation: &Operation<'_>,
        done: bool,
    ) -> Result<Option<Action>, InputError> {
        let model = self.model;
        let invoke = operation.invoke;
        let position = |index: u64| history.position_of_index(index);
        let result = operation.completion.map(|c| (&c.value, position(c.index)));
        let f = invoke.f.as_str();
        let wrong_f = || {
            history.error_at(
                position(invoke.index),
                format!(
                    "the {model} model has no operation `{f}` (it knows {})",
                    known_fs(model)
                ),
            )
        };
        let nil_unknown = self.semantics.nil_reads == NilReads::Unknown;
        let interner = &mut *self.interner;
        let action = match (model, f) {
            (ModelKind::Register | ModelKind::CasRegister, "read") => match result {
                Some((Value::Null, _)) if done && nil_unknown && self.prune => return Ok(None),
                Some((value, _)) if done => Action::Read(interner.intern(value)),
                _ => return Ok(None),
            },
            (ModelKind::Register | ModelKind::CasRegister, "write") => {
                Action::Write(interner.intern(&invoke.value))
            }
            (ModelKind::CasRegister, "cas") => match &invoke.value {
                Value::Array(pair) if pair.len() == 2 => {
                    Action::Cas(interner.intern(&pair[0]), interner.intern(&pair[1]))
                }
                other => {
                    return Err(history.error_at(
                        position(invoke.index),
                        format!("a cas value must be [old, new], got {other}"),
                    ));
                }
            },
            (ModelKind::Mutex, "acquire") => Action::Acquire,
            (ModelKind::Mutex, "release") => Action::Release,
            (ModelKind::Set, "add") => Action::Add(interner.intern(&invoke.value)),
            (ModelKind::Set, "read") => match result {
                Some((Value::Array(items), _)) if done => {
                    let mut elements: Vec<ValueId> =
                        items.iter().map(|v| interner.intern(v)).collect();
                    elements.sort_unstable();
                    elements.dedup();
                    Action::ReadSet(elements.into_boxed_slice())
                }
                Some((other, line)) if done => {
                    return Err(history
                        .error_at(line, format!("a set read must return a list, got {other}")));
                }
                _ => return Ok(None),
            },
            (ModelKind::FifoQueue | ModelKind::UnorderedQueue, "enqueue") => {
                Action::Enqueue(interner.intern(&invoke.value))
            }
            (ModelKind::FifoQueue | ModelKind::UnorderedQueue, "dequeue") => match result {
                Some((value, _)) if done => Action::Dequeue(interner.intern(value)),
                _ if model == ModelKind::UnorderedQueue => return Ok(None),
                _ => Action::DequeueUnknown,
            },
            // Knossos looks only at the value: `f` is "txn", or anything.
            (ModelKind::MultiRegister, _) => {
                let (value, line) = match result {
                    Some((value, line)) if done => (value, line),
                    _ => (&invoke.value, position(invoke.index)),
                };
                let slots = &mut *self.slots;
                let mops = parse_txn(value, done, &mut |k| slots.slot(k), &mut |v| {
                    interner.intern(v)
                })
                .map_err(|message| history.error_at(line, message))?;
                if mops.is_empty() && !done {
                    return Ok(None);
                }
                Action::Txn(mops)
            }
            _ => return Err(wrong_f()),
        };
        Ok(Some(action))
    }
}

fn known_fs(model: ModelKind) -> &'static str {
    match model {
        ModelKind::Register => "read, write",
        ModelKind::CasRegister => "read, write, cas",
        ModelKind::Mutex => "acquire, release",
        ModelKind::Set => "add, read",
        ModelKind::FifoQueue | ModelKind::UnorderedQueue => "enqueue, dequeue",
        ModelKind::MultiRegister => "transactions of read and write micro-ops",
    }
}

/// For a queue whose elements are each enqueued at most once and dequeued at most once:
/// each dequeued element's dequeue window (invocation, return). `None` otherwise.
fn unique_dequeue_windows(
    completed: &[Entry],
    crashed: &[Entry],
) -> Option<HashMap<ValueId, (u64, u64)>> {
    let mut enqueued = HashSet::new();
    for entry in completed.iter().chain(crashed) {
        if let Action::Enqueue(v) = entry.action
            && !enqueued.insert(v)
        {
            return None;
        }
    }
    let mut windows = HashMap::new();
    for entry in completed {
        if let Action::Dequeue(v) = entry.action
            && v != NULL
            && windows.insert(v, (entry.call, entry.ret)).is_some()
        {
            return None;
        }
    }
    Some(windows)
}

/// Register values that completed operations observe (reads' results, cas' expected
/// values), closed under "a crashed cas(o, n) with n observed makes o observed".
fn observed_register_values(completed: &[Entry], crashed: &[Entry]) -> HashSet<ValueId> {
    let mut observed: HashSet<ValueId> = completed
        .iter()
        .filter_map(|e| match e.action {
            Action::Read(v) | Action::Cas(v, _) => Some(v),
            _ => None,
        })
        .collect();
    loop {
        let before = observed.len();
        for entry in crashed {
            if let Action::Cas(old, new) = entry.action
                && observed.contains(&new)
            {
                observed.insert(old);
            }
        }
        if observed.len() == before {
            return observed;
        }
    }
}

/// Replaces every value a completed operation puts into the object that no operation
/// ever observes with [`UNOBSERVED`], and returns the values merged.
///
/// Exact, because every operation behaves alike on all of them: register reads and cas
/// never expect them; set reads never contain them (and a set holds one `UNOBSERVED` as
/// well as many); queue dequeues never return them, and a crashed dequeue removes the
/// head whatever it is. Merged, they become the same action, which the search orders.
fn merge_unobserved_values(
    model: ModelKind,
    completed: &mut [Entry],
    crashed: &[Entry],
) -> Vec<ValueId> {
    let observed: HashSet<ValueId> = match model {
        ModelKind::Register | ModelKind::CasRegister => {
            observed_register_values(completed, crashed)
        }
        ModelKind::Set => completed
            .iter()
            .filter_map(|e| match &e.action {
                Action::ReadSet(items) => Some(items.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect(),
        ModelKind::FifoQueue | ModelKind::UnorderedQueue => completed
            .iter()
            .filter_map(|e| match e.action {
                Action::Dequeue(v) => Some(v),
                _ => None,
            })
            .collect(),
        ModelKind::Mutex | ModelKind::MultiRegister => return Vec::new(),
    };
    let mut merged = Vec::new();
    for entry in completed.iter_mut() {
        match &mut entry.action {
            Action::Write(v) | Action::Cas(_, v) | Action::Add(v) | Action::Enqueue(v)
                if !observed.contains(v) =>
            {
                if !merged.contains(v) {
                    merged.push(*v);
                }
                *v = UNOBSERVED;
            }
            _ => {}
        }
    }
    merged
}

/// Drops crashed operations that no valid linearization needs.
///
/// Register: let O be the values completed operations observe (reads' results, cas'
/// expected values), closed under "a kept crashed cas(o, n) with n in O puts o in O".
/// A crashed write or cas whose new value is outside O is dropped. Removing all of them
/// from a valid linearization keeps it valid: by induction, after every kept operation the
/// state is unchanged wherever the original state was in O, and every kept operation that
/// depends on the state requires a value in O.
/// Set: a crashed add of an element no read returns is dropped (if it took effect, it
/// did so after every read). Queue: a crashed enqueue of an element no completed dequeue
/// returned is dropped: while it is at the head only crashed dequeues can remove it, and
/// dropping it together with the one that did changes no completed operation's result.
fn keep_relevant_crashed(model: ModelKind, completed: &[Entry], crashed: Vec<Entry>) -> Vec<Entry> {
    match model {
        ModelKind::Register | ModelKind::CasRegister => {
            let observed = observed_register_values(completed, &crashed);
            crashed
                .into_iter()
                .filter(|e| match e.action {
                    Action::Write(v) | Action::Cas(_, v) => observed.contains(&v),
                    _ => true,
                })
                .collect()
        }
        ModelKind::Set => {
            let read: HashSet<ValueId> = completed
                .iter()
                .filter_map(|e| match &e.action {
                    Action::ReadSet(items) => Some(items.iter().copied()),
                    _ => None,
                })
                .flatten()
                .collect();
            crashed
                .into_iter()
                .filter(|e| !matches!(e.action, Action::Add(v) if !read.contains(&v)))
                .collect()
        }
        ModelKind::FifoQueue | ModelKind::UnorderedQueue => {
            let dequeued: HashSet<ValueId> = completed
                .iter()
                .filter_map(|e| match e.action {
                    // A fifo-queue's dequeue of null found it empty; an unordered
                    // queue's took a queued null.
                    Action::Dequeue(v) if v != NULL || model == ModelKind::UnorderedQueue => {
                        Some(v)
                    }
                    _ => None,
                })
                .collect();
            crashed
                .into_iter()
                .filter(|e| !matches!(e.action, Action::Enqueue(v) if !dequeued.contains(&v)))
                .collect()
        }
        ModelKind::Mutex | ModelKind::MultiRegister => crashed,
    }
}
