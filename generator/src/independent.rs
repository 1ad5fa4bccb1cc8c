//! Independent keys: groups of client threads, each working through keys one at a time
//! (Jepsen's `independent/concurrent-generator`).

use faultline_checker::history::{Key, Op, Process};

use crate::context::Context;
use crate::generator::{BoxGen, GenOp, Generator, earliest};
use crate::limit::limit;

/// One group's state.
struct Group {
    /// The key and its generator, while the group works on a key.
    current: Option<(Key, BoxGen)>,
    /// No more keys for this group.
    done: bool,
}

/// Independent keys. See [`independent`].
pub struct Independent<F> {
    group_size: usize,
    keys: Box<dyn Iterator<Item = Key> + Send>,
    per_key_ops: u64,
    make: F,
    groups: Vec<Group>,
    next: usize,
}

/// A generator that splits the client threads into groups of `group_size` threads
/// (`thread / group_size`; the last group may be smaller) and gives each group its own
/// key at a time, taken in order from `keys`. On its key a group runs `make(&key)`,
/// limited to `per_key_ops` operations, each tagged with the key; when that is
/// exhausted the group takes the next key. Exhausted when the keys run out and every
/// group has finished its last key. Updates reach a group's generator only for events
/// on its current key from its own threads. The nemesis gets nothing.
///
/// This is how a linearizability checker's cost is kept small: each key's history is
/// short and involves `group_size` threads.
pub fn independent<F, G>(
    group_size: usize,
    keys: impl IntoIterator<Item = Key, IntoIter: Send + 'static>,
    per_key_ops: u64,
    make: F,
) -> Independent<F>
where
    F: FnMut(&Key) -> G + Send,
    G: Generator + 'static,
{
    Independent {
        group_size: group_size.max(1),
        keys: Box::new(keys.into_iter()),
        per_key_ops,
        make,
        groups: Vec::new(),
        next: 0,
    }
}

/// The group of a client process: its thread (`p % concurrency`) over the group size.
fn group_of(process: Process, concurrency: usize, group_size: usize) -> Option<usize> {
    match process {
        Process::Client(p) if concurrency > 0 => {
            Some((p % concurrency as u64) as usize / group_size)
        }
        Process::Client(_) | Process::Nemesis => None,
    }
}

impl<F, G> Generator for Independent<F>
where
    F: FnMut(&Key) -> G + Send,
    G: Generator + 'static,
{
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let concurrency = ctx.concurrency();
        let size = self.group_size;
        if self.groups.is_empty() {
            let n = concurrency.div_ceil(size);
            self.groups = (0..n)
                .map(|_| Group {
                    current: None,
                    done: false,
                })
                .collect();
        }
        let n = self.groups.len();
        // Only a group with a free thread can start an operation; asking only those keeps
        // a call cheap with many groups (a busy group is asked again after its next
        // completion, which is an event).
        let mut free = vec![false; n];
        for p in ctx.free_processes() {
            if let Some(g) = group_of(*p, concurrency, size).filter(|g| *g < n) {
                free[g] = true;
            }
        }
        let mut retry_at = None;
        for k in 0..n {
            let g = (self.next + k) % n;
            if !free[g] {
                continue;
            }
            let group = &mut self.groups[g];
            while !group.done {
                let (key, inner) = match &mut group.current {
                    Some((key, inner)) => (key, inner),
                    None => match self.keys.next() {
                        Some(key) => {
                            let inner = limit(self.per_key_ops, (self.make)(&key)).boxed();
                            let (key, inner) = group.current.insert((key, inner));
                            (key, inner)
                        }
                        None => {
                            group.done = true;
                            break;
                        }
                    },
                };
                let in_group = move |p: Process| group_of(p, concurrency, size) == Some(g);
                match ctx.restrict(in_group, |ctx| inner.op(ctx)) {
                    GenOp::Op { process, op } => {
                        self.next = (g + 1) % n;
                        return GenOp::Op {
                            process,
                            op: op.with_key(key.clone()),
                        };
                    }
                    GenOp::Pending { retry_at: t } => {
                        retry_at = earliest(retry_at, t);
                        break;
                    }
                    GenOp::Exhausted => group.current = None,
                }
            }
        }
        if self.groups.iter().all(|g| g.done) {
            GenOp::Exhausted
        } else {
            GenOp::Pending { retry_at }
        }
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        let concurrency = ctx.concurrency();
        let size = self.group_size;
        let Some(g) = group_of(event.process, concurrency, size) else {
            return;
        };
        let Some(Group {
            current: Some((key, inner)),
            ..
        }) = self.groups.get_mut(g)
        else {
            return;
        };
        if event.key.as_ref() == Some(&*key) {
            let in_group = move |p: Process| group_of(p, concurrency, size) == Some(g);
            ctx.restrict(in_group, |ctx| inner.update(ctx, event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Simulation, invocations};
    use crate::{OpSpec, repeat};
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn groups_work_through_keys_with_their_own_threads() {
        let keys = (0..10).map(Key::Int);
        let mut inner = independent(2, keys, 5, |_key| repeat(OpSpec::new("write", json!(1))));
        let history = Simulation::new(3).concurrency(6).run(&mut inner).unwrap();
        let ops = invocations(&history);
        assert_eq!(ops.len(), 50, "10 keys x 5 ops");
        let mut threads_by_key: BTreeMap<Key, Vec<u64>> = BTreeMap::new();
        for op in &ops {
            let Process::Client(p) = op.process else {
                panic!("nemesis op")
            };
            let key = op.key.clone().expect("every op has a key");
            threads_by_key.entry(key).or_default().push(p % 6);
        }
        assert_eq!(threads_by_key.len(), 10);
        for (key, threads) in threads_by_key {
            assert_eq!(threads.len(), 5, "key {key}");
            let group = threads[0] / 2;
            assert!(
                threads.iter().all(|t| t / 2 == group),
                "key {key} spans groups: {threads:?}"
            );
        }
    }

    #[test]
    fn a_small_last_group_and_an_infinite_key_space() {
        let mut inner = crate::limit(
            40,
            independent(2, (0..).map(Key::Int), 3, |_key| {
                repeat(OpSpec::new("read", json!(null)))
            }),
        );
        let history = Simulation::new(8).concurrency(5).run(&mut inner).unwrap();
        let ops = invocations(&history);
        assert_eq!(ops.len(), 40);
        // Threads 0-1, 2-3 and 4 form three groups; each key stays in one group, and
        // a group moves to a fresh key after 3 operations.
        let mut group_of_key: BTreeMap<Key, BTreeSet<u64>> = BTreeMap::new();
        for op in &ops {
            let Process::Client(p) = op.process else {
                panic!("nemesis op")
            };
            let key = op.key.clone().expect("every op has a key");
            group_of_key.entry(key).or_default().insert(p % 5 / 2);
        }
        assert!(group_of_key.values().all(|groups| groups.len() == 1));
        let groups: BTreeSet<u64> = group_of_key.values().flatten().copied().collect();
        assert_eq!(groups, BTreeSet::from([0, 1, 2]));
        assert!(group_of_key.len() >= 40 / 3);
    }
}
