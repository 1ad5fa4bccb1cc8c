//! `lock`: a lock per independent key, taken and released by client processes; the
//! linearizable mutex model proves that no two processes held a lock at once.
//!
//! `acquire` and `release` are [`Recipe`]s. On most stores `acquire` is a
//! compare-and-set of the lock from unset to the process's id, `release` one from the
//! process's id back to unset, so only the holder can release, and an `acquire` of a
//! held lock fails at once. On ZooKeeper they are its lock recipe (an ephemeral
//! sequential znode per waiter; an `acquire` waits its turn, up to the operation's
//! time-out). Either way the history is the same: `ok` acquires and releases, checked
//! by the mutex model. A key whose holder crashed stays locked (on ZooKeeper, until its
//! session ends): groups move to a fresh key every `ops_per_key` operations.

use std::sync::Arc;

use faultline_checker::checkers::Linearizable;
use faultline_checker::history::{Key, Process};
use faultline_checker::linearizable::ModelKind;
use faultline_generator::{Generator, OpSpec, from_fn, independent};
use serde_json::{Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient, WorkloadOptions};
use crate::store::{Recipe, Store};

/// The prefix of a lock's store key (`lock` and the independent key).
pub(super) const KEY_PREFIX: &str = "lock";

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
            let key = super::store_key(KEY_PREFIX, op.key.as_ref());
            let owner = match process {
                Process::Client(p) => json!(p),
                Process::Nemesis => return Completion::malformed(op),
            };
            let recipe = match op.f.as_str() {
                "acquire" => Recipe::Acquire { key, owner },
                "release" => Recipe::Release { key, owner },
                _ => return Completion::malformed(op),
            };
            super::run_recipe(store, &op.value, &recipe, |_| Value::Null).await
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
