//! Exact, fast refutations that need no search: a register read (or cas) whose value no
//! operation could have left in place for it.
//!
//! For an observer `o` of value `v` (a completed read of `v`, or a completed cas expecting
//! `v`), some producer of `v` must be the last state change before `o`: a completed or
//! crashed write or cas writing `v`, invoked before `o` returned, or the initial value (`null` unless given).
//! A producer `p` is ruled out when a completed operation `s` writing another value was
//! invoked after `p` returned and returned before `o` was invoked: `s` then takes effect
//! after `p` and before `o`. Crashed producers have no return, so they are never ruled
//! out. If every producer is ruled out, no linearization exists.

use std::collections::HashMap;

use super::model::{Action, NULL, ValueId};
use super::prepare::{KeyProblem, NEVER};

/// Why an observer cannot be linearized.
#[derive(Debug, Clone)]
pub struct Refutation {
    /// The observer (index into `KeyProblem::completed`).
    pub observer: usize,
    /// The value it needed.
    pub value: ValueId,
    /// A completed operation that overwrote the value after the last producer returned
    /// and before the observer began, if there was a producer at all.
    pub overwritten_by: Option<usize>,
}

fn produced(action: &Action) -> Option<ValueId> {
    match action {
        Action::Write(v) | Action::Cas(_, v) => Some(*v),
        _ => None,
    }
}

/// The latest-invoked completed change among a prefix, and the latest one writing a
/// different value than that: enough to answer "latest change to a value other than v".
#[derive(Clone, Copy, Default)]
struct TopTwo {
    best: Option<(u64, ValueId, usize)>,
    other: Option<(u64, ValueId, usize)>,
}

impl TopTwo {
    fn add(mut self, call: u64, value: ValueId, op: usize) -> TopTwo {
        let candidate = (call, value, op);
        match self.best {
            Some(best) if best.0 >= call => {
                if best.1 != value && self.other.is_none_or(|o| o.0 < call) {
                    self.other = Some(candidate);
                }
            }
            Some(best) => {
                if best.1 != value {
                    self.other = Some(best);
                }
                self.best = Some(candidate);
            }
            None => self.best = Some(candidate),
        }
        self
    }

    fn excluding(&self, value: ValueId) -> Option<(u64, ValueId, usize)> {
        match self.best {
            Some(best) if best.1 != value => Some(best),
            _ => self.other,
        }
    }
}

/// Finds the first observer (in return order) no producer can serve, if any.
/// O(n log n) in the key's operations.
pub fn refute_register(problem: &KeyProblem) -> Option<Refutation> {
    let completed = &problem.completed;
    let initial = problem.initial.first().copied().unwrap_or(NULL);
    // Completed state changes in return order, with running top-two by invocation.
    let mut changes: Vec<(u64, u64, ValueId, usize)> = completed
        .iter()
        .enumerate()
        .filter_map(|(i, e)| produced(&e.action).map(|v| (e.ret, e.call, v, i)))
        .collect();
    changes.sort_unstable();
    let mut prefix = Vec::with_capacity(changes.len() + 1);
    prefix.push(TopTwo::default());
    for &(_, call, value, op) in &changes {
        let last = prefix.last().copied().unwrap_or_default();
        prefix.push(last.add(call, value, op));
    }
    // Producers of each value (completed and crashed), by invocation, with running
    // maximum return.
    let mut producers: HashMap<ValueId, Vec<(u64, u64, Option<usize>)>> = HashMap::new();
    for (i, e) in completed.iter().enumerate() {
        if let Some(v) = produced(&e.action) {
            producers
                .entry(v)
                .or_default()
                .push((e.call, e.ret, Some(i)));
        }
    }
    for e in &problem.crashed {
        if let Some(v) = produced(&e.action) {
            producers.entry(v).or_default().push((e.call, NEVER, None));
        }
    }
    let mut best_return: HashMap<ValueId, Vec<(u64, Option<usize>)>> = HashMap::new();
    for (value, list) in producers.iter_mut() {
        list.sort_unstable();
        let mut running: Vec<(u64, Option<usize>)> = Vec::with_capacity(list.len());
        for &(_, ret, op) in list.iter() {
            let next = match running.last() {
                Some(&(best, best_op)) if best >= ret => (best, best_op),
                _ => (ret, op),
            };
            running.push(next);
        }
        best_return.insert(*value, running);
    }
    let mut observers: Vec<usize> = (0..completed.len())
        .filter(|&i| matches!(completed[i].action, Action::Read(_) | Action::Cas(..)))
        .collect();
    observers.sort_by_key(|&i| completed[i].ret);
    for o in observers {
        let entry = &completed[o];
        let needed = match entry.action {
            Action::Read(v) | Action::Cas(v, _) => v,
            _ => continue,
        };
        let returned_before = changes.partition_point(|c| c.0 < entry.call);
        let separator = prefix[returned_before].excluding(needed);
        let latest_separator_call = separator.map(|c| c.0);
        let survives = |ret: u64| latest_separator_call.is_none_or(|call| ret > call);
        let initial_serves = needed == initial && latest_separator_call.is_none();
        let list = producers.get(&needed).map_or(&[][..], Vec::as_slice);
        let invoked = list.partition_point(|p| p.0 < entry.ret);
        let producer_serves = match best_return
            .get(&needed)
            .and_then(|r| invoked.checked_sub(1).map(|i| r[i]))
        {
            // The best producer is the observer itself (a cas writing what it expects):
            // look for another, the slow way.
            Some((_, Some(op))) if op == o => list[..invoked]
                .iter()
                .any(|p| p.2 != Some(o) && survives(p.1)),
            Some((ret, _)) => survives(ret),
            None => false,
        };
        if !(initial_serves || producer_serves) {
            let any_producer = needed == initial || invoked > 0;
            return Some(Refutation {
                observer: o,
                value: needed,
                overwritten_by: if any_producer {
                    separator.map(|c| c.2)
                } else {
                    None
                },
            });
        }
    }
    None
}

/// Queues: a completed dequeue of an element needs an enqueue of it (completed or
/// crashed) invoked before the dequeue returned. The first dequeue without one, if any.
/// Dequeues of `null` (an empty queue, or Knossos's queued `null`) are left to the search.
pub fn refute_queue(problem: &KeyProblem) -> Option<Refutation> {
    let mut first_enqueue: HashMap<ValueId, u64> = HashMap::new();
    for entry in problem.completed.iter().chain(&problem.crashed) {
        if let Action::Enqueue(element) = entry.action {
            let call = first_enqueue.entry(element).or_insert(entry.call);
            *call = (*call).min(entry.call);
        }
    }
    problem
        .completed
        .iter()
        .enumerate()
        .find_map(|(observer, entry)| match entry.action {
            Action::Dequeue(element)
                if element != NULL
                    && first_enqueue
                        .get(&element)
                        .is_none_or(|&call| call >= entry.ret) =>
            {
                Some(Refutation {
                    observer,
                    value: element,
                    overwritten_by: None,
                })
            }
            _ => None,
        })
}
