//! `list-append` and `rw-register`: transactions over a small, rotating pool of keys
//! (Elle's generators), checked with Elle's dependency-graph cycle detection.
//!
//! Each transaction has 1 to `max_txn_length` micro-ops on keys drawn from
//! `active_keys` active keys; written values are unique per key (1, 2, 3, …); a key
//! written `max_writes_per_key` times is retired and replaced by a fresh one, which
//! keeps lists short and version orders easy to infer.

use std::collections::HashMap;
use std::sync::Arc;

use faultline_checker::checkers::Elle;
use faultline_checker::elle::{ElleOptions, ElleWorkload};
use faultline_checker::history::Process;
use faultline_generator::{Context, Generator, OpSpec, from_fn};
use serde_json::{Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient, WorkloadOptions};
use crate::store::{Micro, Store};

/// Which kind of transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    ListAppend,
    RwRegister,
}

impl Kind {
    fn write_f(self) -> &'static str {
        match self {
            Kind::ListAppend => "append",
            Kind::RwRegister => "w",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::ListAppend => "la",
            Kind::RwRegister => "rw",
        }
    }
}

/// The pool of active keys and what has been written to each.
struct Keys {
    active: Vec<u64>,
    next_key: u64,
    writes: HashMap<u64, u64>,
    max_writes: u64,
}

impl Keys {
    fn new(count: usize, max_writes: u64) -> Keys {
        let count = count.max(1) as u64;
        Keys {
            active: (0..count).collect(),
            next_key: count,
            writes: HashMap::new(),
            max_writes: max_writes.max(1),
        }
    }

    /// A micro-op for a random active key: a write of the key's next value, or a read.
    fn micro(&mut self, kind: Kind, ctx: &mut Context) -> Value {
        let slot = ctx.random_below(self.active.len() as u64) as usize;
        let key = self.active[slot];
        if ctx.random_below(2) == 0 {
            return json!(["r", key, null]);
        }
        let written = self.writes.entry(key).or_insert(0);
        *written += 1;
        let value = *written;
        if value >= self.max_writes {
            self.writes.remove(&key);
            self.active[slot] = self.next_key;
            self.next_key += 1;
        }
        json!([kind.write_f(), key, value])
    }
}

pub(super) fn workload(kind: Kind, options: &WorkloadOptions) -> Workload {
    let mut keys = Keys::new(options.active_keys, options.max_writes_per_key);
    let max_len = options.max_txn_length.max(1) as u64;
    let generator = from_fn(move |ctx| {
        let len = 1 + ctx.random_below(max_len);
        let txn: Vec<Value> = (0..len).map(|_| keys.micro(kind, ctx)).collect();
        Some(OpSpec::new("txn", Value::Array(txn)))
    });
    let (name, elle) = match kind {
        Kind::ListAppend => ("list-append", ElleWorkload::ListAppend),
        Kind::RwRegister => ("rw-register", ElleWorkload::RwRegister),
    };
    Workload {
        name,
        generator: generator.boxed(),
        final_generator: None,
        setup: Vec::new(),
        client: Box::new(TxnClient { kind }),
        checker: Arc::new(Elle::new(
            ElleOptions::new(elle).with_model(options.consistency_model),
        )),
    }
}

struct TxnClient {
    kind: Kind,
}

/// The store keys of the history's transaction `txn` (`[f, key, value]` triples) of
/// `kind`, as its client sends them; `None` when `txn` is not one of `kind`'s.
pub(super) fn store_keys(kind: Kind, txn: &Value) -> Option<Vec<String>> {
    let micros = TxnClient { kind }.micros(txn)?;
    Some(micros.iter().map(|m| m.key().to_string()).collect())
}

impl TxnClient {
    /// The store's micro-ops for the history's `[f, key, value]` triples.
    fn micros(&self, txn: &Value) -> Option<Vec<Micro>> {
        txn.as_array()?
            .iter()
            .map(|m| {
                let [f, k, v] = m.as_array()?.as_slice() else {
                    return None;
                };
                let key = match k {
                    Value::Number(n) => format!("{}{n}", self.kind.prefix()),
                    Value::String(s) => format!("{}{s}", self.kind.prefix()),
                    _ => return None,
                };
                match (self.kind, f.as_str()?) {
                    (_, "r") => Some(Micro::Read(key)),
                    (Kind::ListAppend, "append") => Some(Micro::Append(key, v.clone())),
                    (Kind::RwRegister, "w") => Some(Micro::Write(key, v.clone())),
                    _ => None,
                }
            })
            .collect()
    }
}

impl WorkloadClient for TxnClient {
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        _process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a> {
        Box::pin(async move {
            let Some(micros) = self.micros(&op.value) else {
                return Completion::malformed(op);
            };
            let kind = self.kind;
            super::run_txn(store, &op.value, &micros, |values| {
                // The invocation's micro-ops with reads filled in. A list-append read
                // of a missing key (the store's null) is the empty list, as in Elle.
                let invoked = op.value.as_array().cloned().unwrap_or_default();
                let filled = invoked
                    .into_iter()
                    .zip(values)
                    .map(|(m, read)| match m.as_array().map(Vec::as_slice) {
                        Some([f, k, _]) if f == "r" => match (kind, read) {
                            (Kind::ListAppend, Value::Null) => json!([f, k, []]),
                            (_, read) => json!([f, k, read]),
                        },
                        _ => m,
                    })
                    .collect();
                Value::Array(filled)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::testing::{MemStore, block_on};
    use faultline_checker::history::OpType;
    use faultline_generator::sim::Simulation;

    #[test]
    fn appended_values_are_unique_per_key_and_keys_rotate() {
        let options = WorkloadOptions {
            max_writes_per_key: 4,
            ..WorkloadOptions::default()
        };
        let mut w = workload(Kind::ListAppend, &options);
        let history = Simulation::new(3)
            .concurrency(4)
            .max_events(2000)
            .run(&mut w.generator)
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut max_key = 0;
        for op in history.iter().filter(|o| o.op_type == OpType::Invoke) {
            for m in op.value.as_array().unwrap() {
                let m = m.as_array().unwrap();
                max_key = max_key.max(m[1].as_u64().unwrap());
                if m[0] == "append" {
                    assert!(seen.insert((m[1].clone(), m[2].clone())), "{m:?} twice");
                    assert!(m[2].as_u64().unwrap() <= 4);
                }
            }
        }
        assert!(max_key > 8, "keys rotate: highest key {max_key}");
    }

    #[test]
    fn reads_are_filled_in() {
        for kind in [Kind::ListAppend, Kind::RwRegister] {
            let w = workload(kind, &WorkloadOptions::default());
            let mut store = MemStore::default();
            let p = Process::Client(0);
            let write = OpSpec::new("txn", json!([[kind.write_f(), 1, 7], ["r", 1, null]]));
            let done = block_on(w.client.invoke(&mut store, p, &write));
            let expected = match kind {
                Kind::ListAppend => json!([["append", 1, 7], ["r", 1, [7]]]),
                Kind::RwRegister => json!([["w", 1, 7], ["r", 1, 7]]),
            };
            assert_eq!((done.op_type, done.value), (OpType::Ok, expected));
            // A missing key: list-append records the empty list, rw-register null.
            let missing = OpSpec::new("txn", json!([["r", 2, null]]));
            let done = block_on(w.client.invoke(&mut store, p, &missing));
            let expected = match kind {
                Kind::ListAppend => json!([["r", 2, []]]),
                Kind::RwRegister => json!([["r", 2, null]]),
            };
            assert_eq!((done.op_type, done.value), (OpType::Ok, expected));
            let bad = OpSpec::new("txn", json!([["append", 1, 7]]));
            if kind == Kind::RwRegister {
                assert_eq!(
                    block_on(w.client.invoke(&mut store, p, &bad)).op_type,
                    OpType::Fail
                );
            }
        }
    }
}
