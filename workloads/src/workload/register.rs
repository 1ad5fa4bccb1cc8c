//! `register`: reads, writes and compare-and-sets on independent keys, checked for
//! linearizability with the cas-register model, key by key.

use std::sync::Arc;

use faultline_checker::checkers::Linearizable;
use faultline_checker::history::{Key, Process};
use faultline_checker::linearizable::ModelKind;
use faultline_generator::{Generator, OpSpec, from_fn, independent};
use serde_json::{Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient, WorkloadOptions};
use crate::store::{Micro, Store};

/// The prefix of a register's store key (`r` and the independent key).
pub(super) const KEY_PREFIX: &str = "r";

pub(super) fn workload(options: &WorkloadOptions) -> Workload {
    let values = options.value_count.max(1);
    let generator = independent(
        options.threads_per_key,
        (0..).map(Key::Int),
        options.ops_per_key,
        move |_key| {
            from_fn(move |ctx| {
                Some(match ctx.random_below(5) {
                    0 | 1 => OpSpec::new("read", Value::Null),
                    2 | 3 => OpSpec::new("write", json!(ctx.random_below(values))),
                    _ => OpSpec::new(
                        "cas",
                        json!([ctx.random_below(values), ctx.random_below(values)]),
                    ),
                })
            })
        },
    );
    Workload {
        name: "register",
        generator: generator.boxed(),
        final_generator: None,
        setup: Vec::new(),
        client: Box::new(RegisterClient),
        checker: Arc::new(Linearizable::new(ModelKind::CasRegister)),
    }
}

struct RegisterClient;

impl WorkloadClient for RegisterClient {
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        _process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a> {
        Box::pin(async move {
            let key = super::store_key(KEY_PREFIX, op.key.as_ref());
            let micro = match (op.f.as_str(), &op.value) {
                ("read", _) => Micro::Read(key),
                ("write", v) => Micro::Write(key, v.clone()),
                ("cas", Value::Array(pair)) if pair.len() == 2 => {
                    Micro::Cas(key, pair[0].clone(), pair[1].clone())
                }
                _ => return Completion::malformed(op),
            };
            let is_read = matches!(micro, Micro::Read(_));
            super::run_txn(store, &op.value, &[micro], |mut values| {
                if is_read {
                    values.pop().unwrap_or(Value::Null)
                } else {
                    op.value.clone()
                }
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

    #[test]
    fn reads_writes_and_cas_map_to_the_store() {
        let w = workload(&WorkloadOptions::default());
        let mut store = MemStore::default();
        let p = Process::Client(0);
        let write = OpSpec::new("write", json!(3)).with_key(Key::Int(1));
        let done = block_on(w.client.invoke(&mut store, p, &write));
        assert_eq!((done.op_type, done.value), (OpType::Ok, json!(3)));
        let read = OpSpec::new("read", Value::Null).with_key(Key::Int(1));
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &read)).value,
            json!(3)
        );
        let other = OpSpec::new("read", Value::Null).with_key(Key::Int(2));
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &other)).value,
            Value::Null
        );
        let cas = OpSpec::new("cas", json!([3, 4])).with_key(Key::Int(1));
        let done = block_on(w.client.invoke(&mut store, p, &cas));
        assert_eq!((done.op_type, done.value), (OpType::Ok, json!([3, 4])));
        let done = block_on(w.client.invoke(&mut store, p, &cas));
        assert_eq!(done.op_type, OpType::Fail);
        assert_eq!(done.error.as_deref(), Some("cas-mismatch"));
        let bad = OpSpec::new("cas", json!(1)).with_key(Key::Int(1));
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &bad)).op_type,
            OpType::Fail
        );
    }
}
