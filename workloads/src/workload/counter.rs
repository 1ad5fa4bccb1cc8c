//! `counter`: increments and reads of one counter; every read must lie between the sum
//! of the increments certainly applied and the sum of those possibly applied.

use std::sync::Arc;

use faultline_checker::checkers::Counter;
use faultline_checker::history::Process;
use faultline_generator::{Generator, OpSpec, clients, each_thread, from_fn, once, until_ok};
use serde_json::{Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient};
use crate::store::{Micro, Store};

/// The counter's store key.
pub(super) const KEY: &str = "counter";

pub(super) fn workload() -> Workload {
    let generator = from_fn(|ctx| {
        Some(if ctx.random_below(4) == 0 {
            OpSpec::new("read", Value::Null)
        } else {
            OpSpec::new("add", json!(1 + ctx.random_below(5)))
        })
    });
    let final_reads = clients(each_thread(|_| {
        until_ok(once(OpSpec::new("read", Value::Null)))
    }));
    Workload {
        name: "counter",
        generator: generator.boxed(),
        final_generator: Some(final_reads.boxed()),
        setup: Vec::new(),
        client: Box::new(CounterClient),
        checker: Arc::new(Counter::new()),
    }
}

struct CounterClient;

impl WorkloadClient for CounterClient {
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        _process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a> {
        Box::pin(async move {
            match (op.f.as_str(), op.value.as_i64()) {
                ("read", _) => {
                    super::run_txn(store, &op.value, &[Micro::Read(KEY.into())], |mut v| {
                        // An unset counter is 0.
                        match v.pop() {
                            Some(Value::Null) | None => json!(0),
                            Some(total) => total,
                        }
                    })
                    .await
                }
                ("add", Some(delta)) => {
                    let add = [Micro::Add(KEY.into(), delta)];
                    super::run_txn(store, &op.value, &add, |_| op.value.clone()).await
                }
                _ => Completion::malformed(op),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::testing::{MemStore, block_on};

    #[test]
    fn adds_accumulate_and_reads_start_at_zero() {
        let w = workload();
        let mut store = MemStore::default();
        let p = Process::Client(0);
        let read = OpSpec::new("read", Value::Null);
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &read)).value,
            json!(0)
        );
        for d in [2, 3] {
            block_on(
                w.client
                    .invoke(&mut store, p, &OpSpec::new("add", json!(d))),
            );
        }
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &read)).value,
            json!(5)
        );
    }
}
