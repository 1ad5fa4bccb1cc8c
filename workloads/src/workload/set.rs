//! `set`: adds of unique elements, with reads along the way and final reads after the
//! faults are healed; an acknowledged add that later reads miss is lost.
//!
//! Each add and read is a [`Recipe`]: an append to a list and a read of it on most
//! stores, a child znode per element on ZooKeeper.
//!
//! Elements go to independent keys (a fresh set every `ops_per_key` operations of a
//! group), which keeps every read small; the final reads read every key used.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use faultline_checker::checkers::SetFull;
use faultline_checker::history::{Key, Process};
use faultline_generator::{
    Generator, OpSpec, clients, each_thread, from_fn, independent, limit, once, repeat, seq,
    until_ok,
};
use serde_json::{Value, json};

use super::{Completion, InvokeFuture, Workload, WorkloadClient, WorkloadOptions};
use crate::store::{Recipe, Store};

/// The prefix of a set's store key (`set` and the independent key).
pub(super) const KEY_PREFIX: &str = "set";

pub(super) fn workload(options: &WorkloadOptions) -> Workload {
    let highest_key = Arc::new(AtomicI64::new(-1));
    let seen = Arc::clone(&highest_key);
    let per_key = options.ops_per_key.max(2);
    let reads_at_end = per_key / 10 + 1;
    let next_element = Arc::new(AtomicI64::new(0));
    let generator = independent(
        options.threads_per_key,
        (0..).map(Key::Int),
        per_key,
        move |key| {
            if let Key::Int(k) = key {
                seen.fetch_max(*k, Ordering::Relaxed);
            }
            let next = Arc::clone(&next_element);
            seq(vec![
                limit(
                    per_key - reads_at_end,
                    from_fn(move |ctx| {
                        Some(if ctx.random_below(10) == 0 {
                            OpSpec::new("read", Value::Null)
                        } else {
                            OpSpec::new("add", json!(next.fetch_add(1, Ordering::Relaxed)))
                        })
                    }),
                )
                .boxed(),
                repeat(OpSpec::new("read", Value::Null)).boxed(),
            ])
        },
    );
    // After the faults: one successful read of every key, from each thread.
    let final_reads = clients(each_thread(move |_| {
        let last = highest_key.load(Ordering::Relaxed);
        seq((0..=last)
            .map(|k| until_ok(once(OpSpec::new("read", Value::Null).with_key(Key::Int(k)))).boxed())
            .collect())
    }));
    Workload {
        name: "set",
        generator: generator.boxed(),
        final_generator: Some(final_reads.boxed()),
        setup: Vec::new(),
        client: Box::new(SetClient),
        checker: Arc::new(SetFull::default()),
    }
}

struct SetClient;

impl WorkloadClient for SetClient {
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        _process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a> {
        Box::pin(async move {
            let key = super::store_key(KEY_PREFIX, op.key.as_ref());
            match op.f.as_str() {
                "add" => {
                    let add = Recipe::SetAdd {
                        key,
                        element: op.value.clone(),
                    };
                    super::run_recipe(store, &op.value, &add, |_| op.value.clone()).await
                }
                "read" => {
                    let read = Recipe::SetRead { key };
                    super::run_recipe(store, &op.value, &read, |mut v| match v.pop() {
                        Some(Value::Null) | None => json!([]),
                        Some(list) => list,
                    })
                    .await
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
    use faultline_checker::history::OpType;
    use faultline_generator::sim::Simulation;

    #[test]
    fn adds_are_unique_and_every_key_gets_final_reads() {
        let options = WorkloadOptions {
            ops_per_key: 20,
            threads_per_key: 2,
            ..WorkloadOptions::default()
        };
        let mut w = workload(&options);
        let main = Simulation::new(5)
            .concurrency(4)
            .max_events(400)
            .run(&mut w.generator)
            .unwrap();
        let adds: Vec<_> = main
            .iter()
            .filter(|o| o.op_type == OpType::Invoke && o.f == "add")
            .map(|o| o.value.clone())
            .collect();
        let unique: std::collections::HashSet<_> = adds.iter().map(|v| v.to_string()).collect();
        assert_eq!(unique.len(), adds.len());
        let keys: std::collections::BTreeSet<_> =
            main.iter().filter_map(|o| o.key.clone()).collect();
        let mut finals = w.final_generator.unwrap();
        let last = Simulation::new(5).concurrency(4).run(&mut finals).unwrap();
        let read_keys: std::collections::BTreeSet<_> =
            last.iter().filter_map(|o| o.key.clone()).collect();
        assert!(keys.len() > 2);
        assert_eq!(keys, read_keys);
    }

    #[test]
    fn reads_return_the_elements() {
        let w = workload(&WorkloadOptions::default());
        let mut store = MemStore::default();
        let p = Process::Client(0);
        let read = OpSpec::new("read", Value::Null).with_key(Key::Int(3));
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &read)).value,
            json!([])
        );
        let add = OpSpec::new("add", json!(9)).with_key(Key::Int(3));
        block_on(w.client.invoke(&mut store, p, &add));
        assert_eq!(
            block_on(w.client.invoke(&mut store, p, &read)).value,
            json!([9])
        );
    }
}
