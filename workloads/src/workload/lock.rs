//! `lock`: a lock per independent key, taken and released by client processes; the
//! linearizable mutex model proves that no two processes held a lock at once.
//!
//! `acquire` is a compare-and-set of the lock from unset to the process's id; `release`
//! one from the process's id back to unset, so only the holder can release. A key whose
//! holder crashed stays locked: groups move to a fresh key every `ops_per_key`
//! operations.

use std::sync::Arc;

use faultline_checker::checkers::Linearizable;
use faultline_checker::history::{Key, Process};
use faultline_checker::linearizable::ModelKind;
use faultline_generator::{Generator, OpSpec, from_fn, independent};
use serde_json::{Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient, WorkloadOptions};
use crate::store::{Micro, Store};

pub(super) fn workload(options: &WorkloadOptions) -> Workload {
    let generator = independent(
        options.threads_per_key,
        (0..).map(Key::Int),
        options.ops_per_key,
        |_key| {
            from_fn(|ctx| {
                let f = if ctx.random_below(2) == 0 {
                    "acquire"
                } else {
                    "release"
                };
                Some(OpSpec::new(f, Value::Null))
            })
        },
    );
    Workload {
        name: "lock",
        generator: generator.boxed(),
        final_generator: None,
        setup: Vec::new(),
        client: Box::new(LockClient),
        checker: Arc::new(Linearizable::new(ModelKind::Mutex)),
    }
}

struct LockClient;

impl WorkloadClient for LockClient {
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a> {
        Box::pin(async move {
            let key = super::store_key("lock", op.key.as_ref());
            let owner = match process {
                Process::Client(p) => json!(p),
                Process::Nemesis => return Completion::malformed(op),
            };
            let cas = match op.f.as_str() {
                "acquire" => Micro::Cas(key, Value::Null, owner),
                "release" => Micro::Cas(key, owner, Value::Null),
                _ => return Completion::malformed(op),
            };
            super::run_txn(store, &op.value, &[cas], |_| Value::Null).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::testing::{MemStore, block_on};
    use faultline_checker::history::OpType;

    #[test]
    fn only_the_holder_releases() {
        let w = workload(&WorkloadOptions::default());
        let mut store = MemStore::default();
        let (a, b) = (Process::Client(0), Process::Client(1));
        let op = |f| OpSpec::new(f, Value::Null).with_key(Key::Int(0));
        let run = |store: &mut MemStore, p, f| block_on(w.client.invoke(store, p, &op(f))).op_type;
        assert_eq!(run(&mut store, a, "acquire"), OpType::Ok);
        assert_eq!(run(&mut store, b, "acquire"), OpType::Fail);
        assert_eq!(run(&mut store, b, "release"), OpType::Fail);
        assert_eq!(run(&mut store, a, "release"), OpType::Ok);
        assert_eq!(run(&mut store, b, "acquire"), OpType::Ok);
    }
}
