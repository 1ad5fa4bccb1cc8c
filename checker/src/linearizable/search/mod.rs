//! The exact search for a linearization of one key's operations.
//!
//! This is Wing & Gong's search with Lowe's just-in-time refinement: a configuration is
//! the set of completed operations linearized so far, the model state, and how many of
//! each kind of crashed operation have been used. An operation may be linearized next
//! when it was invoked before the earliest return among the completed operations not yet
//! linearized. Because every completed operation returning before that point is already
//! linearized, the set is (k, mask): k, the first unlinearized operation in return order,
//! and a bit mask over the few operations spanning its return.
//!
//! Reductions, each exact:
//! - Operations the model says it absorbs (reads that fit the current state, writes of an
//!   unobserved value over an unobserved value) are linearized at once: moving them
//!   earlier never invalidates a linearization.
//! - Completed operations with the same action are linearized in the order they
//!   returned: swapping two of them changes no state and breaks no real-time order. For
//!   the same reason a completed operation goes before a crashed one with its action.
//! - Crashed operations with the same action are interchangeable once invoked (none has
//!   a deadline), so only how many of each were used matters.
//! - A crashed operation is never followed by an overwriting one (a register write)
//!   before some operation observes the state: such a linearization stays valid with the
//!   crashed operations removed. The search carries this as a "debt" after each crashed
//!   move until something observes the state.
//! - The earliest-returning operation still to linearize must fit after some of the
//!   current candidates (no other operation can become a candidate before it is placed);
//!   when the model says it cannot, the configuration is dead.
//! - Queues with unique elements: an element may be enqueued only if no element still to
//!   be enqueued was dequeued (returned) before this element's dequeue was invoked —
//!   FIFO would put it behind, so its dequeue would have to come later.
//! - Queues without crashed dequeues: an element no dequeue returns is enqueued only
//!   after every element some dequeue returns, since nothing could remove it to let
//!   later elements out.
//! - Queues with unique elements, crashed dequeues or not: an element a completed
//!   dequeue returns leaves the queue only by that dequeue (a crashed dequeue that
//!   removed it would leave that dequeue nothing to return), so a crashed dequeue is
//!   never taken while such an element is at the head. A queued element is ahead of
//!   every element enqueued later, so it must leave before the dequeue of every
//!   observed element behind it, and of every element not yet enqueued (including one
//!   a crashed enqueue not yet used must enqueue), and before a pending dequeue of
//!   `null`. A configuration is dead when a queued observed element's dequeue was
//!   invoked after one of those dequeues returned, or when the other queued elements
//!   cannot each have their own crashed dequeue, unused and invoked before the dequeue
//!   they must leave ahead of returned (the j-th of them from the head needs j).
//! - Memoisation with dominance: a configuration that failed also fails with more crashed
//!   operations used, since using one is always optional.
//!
//! Two cheaper strategies bound the exact search from both sides ([`SearchMode`]):
//! - [`SearchMode::CrashedReusable`], a relaxation: each crashed operation, once invoked,
//!   may take effect any number of times. It allows more than the history does, so "not
//!   linearizable" from it is exact, and it needs no counts, which keeps it small where
//!   many crashed operations would multiply the exact search's configurations. A
//!   linearization it finds that takes no crashed operation more often than invoked is
//!   one of the history itself.
//! - [`SearchMode::CountsForgotten`], an incomplete search: the exact moves, but a
//!   configuration is remembered without its crashed-use counts, so a configuration seen
//!   once is not searched again with other counts. As small as the relaxation; a
//!   linearization it finds is exact, its "not linearizable" says nothing.
//!
//! The search stops with "unknown" when its deadline passes or the shared memory budget
//! is spent; it never guesses.

mod memo;
mod moves;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};

use super::model::{Action, Model, UNOBSERVED};
use super::prepare::KeyProblem;
use memo::MemoKey;

/// Shared limits for all the searches of one check.
#[derive(Debug)]
pub struct Limits {
    /// Give up after this instant.
    pub deadline: Instant,
    /// Give up when the searches together hold more than this many bytes of memo.
    pub memory_bytes: usize,
    /// Memo bytes currently held by all searches.
    pub memory_used: AtomicUsize,
}

/// Why a search did not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// The time limit passed.
    Time,
    /// The memory ceiling was reached.
    Memory,
    /// An incomplete search spent its budget of configurations (never the answer of
    /// a check: the exact search follows).
    Budget,
}

/// Where the search got furthest before every path failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Completed operations (indices into `KeyProblem::completed`) that every path
    /// linearized: all those returning before the blocking operation returned.
    pub linearized_prefix: usize,
    /// The completed operation that no path could linearize in time.
    pub blocking: usize,
    /// Other completed operations that could still be linearized at that point.
    pub concurrent: Vec<usize>,
    /// The states (described by the model) the longest prefixes can end in.
    pub states: Vec<String>,
    /// A direct reason, when the failure was found without a search.
    pub reason: Option<String>,
    /// For a direct reason: the completed operation that overwrote the value needed.
    pub overwritten_by: Option<usize>,
}

/// The result of one search.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A linearization exists.
    Linearizable,
    /// None exists; the failure says where paths end.
    NotLinearizable(Failure),
    /// The search stopped before deciding.
    Unknown(GaveUp),
}

/// The result with the work it took.
#[derive(Debug, Clone)]
pub struct SearchReport {
    /// The answer.
    pub outcome: Outcome,
    /// Configurations visited.
    pub configurations: u64,
    /// Whether the outcome holds for the history itself: always for the exact search; for
    /// the relaxation, unless it found a linearization that took some crashed operation
    /// more often than invoked (one within the counts is a linearization of the history,
    /// as crashed operations of one action are interchangeable once invoked); for the
    /// incomplete search, only when it found a linearization.
    pub exact: bool,
}

/// How a search treats crashed operations (the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchMode {
    /// The exact search: decides either way.
    Exact,
    /// The relaxation: its "not linearizable" is exact, and so is a linearization it
    /// finds within the crashed operations invoked ([`SearchReport::exact`]).
    CrashedReusable,
    /// Incomplete: its linearizations are exact, its "not linearizable" is not
    /// ([`SearchReport::exact`] is false then). It tries the moves in `order` and gives
    /// up after remembering `budget` configurations.
    CountsForgotten {
        /// The order in which each configuration's moves are tried.
        order: MoveOrder,
        /// Configurations to remember before giving up.
        budget: u64,
    },
}

/// The order in which a search tries the moves from a configuration. Which moves exist
/// never depends on it, only how soon a linearization is found: each order has
/// histories on which it goes a long way down a wrong path, so the incomplete search
/// is restarted with the next order and a larger budget (`refine` in the parent module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveOrder {
    /// Moves that let the deadline operation fit first, then moves that observe the
    /// current state, then the rest in return order.
    Informed,
    /// Moves that let the deadline operation fit first, then the rest in return order.
    Enabling,
    /// Return order (completed operations), then crashed classes.
    Returned,
    /// As `Informed`, but crashed operations only after every completed one.
    CrashedLast,
}

#[derive(Clone, Copy, Debug)]
enum Move {
    Completed(u32),
    Crashed(u16),
}

struct Undo<S> {
    linearized: Vec<u32>,
    k: usize,
    state: S,
    class: Option<u16>,
    debt: bool,
    /// The relaxation: this crashed move took an operation beyond those invoked.
    overdrew: bool,
}

struct Frame<S> {
    moves: Vec<Move>,
    next: usize,
    undo: Option<Undo<S>>,
}

struct Search<'p, M: Model> {
    model: &'p M,
    problem: &'p KeyProblem,
    /// Completed operation ids in return order.
    ret_order: Vec<u32>,
    /// For each k, the completed operations invoked before and returning at or after
    /// the return of `ret_order[k]`, in return order.
    span: Vec<Box<[u32]>>,
    /// Crashed operation classes: one action each, and the sorted invocation positions.
    class_actions: Vec<Action>,
    class_calls: Vec<Vec<u64>>,
    /// Each completed operation's action, as a small number.
    completed_action: Vec<u32>,
    /// For each crashed class, the completed operations' action number with its action.
    crashed_twin: Vec<Option<u32>>,
    /// Scratch: the generation in which each action number was last offered as a move.
    offered: Vec<u64>,
    generation: u64,
    // The current configuration.
    linearized: Vec<bool>,
    k: usize,
    state: M::State,
    used: Vec<u16>,
    /// A crashed operation was just linearized and nothing has observed its effect yet.
    debt: bool,
    /// How crashed operations are treated, and (incomplete search) the move order and
    /// budget.
    mode: SearchMode,
    /// Scratch for ordering moves: each with its rank.
    ranked: Vec<((bool, bool, bool), Move)>,
    /// The relaxation: how often each crashed class was taken on the current path, and
    /// how many of those moves took more than had been invoked. A path that ends with
    /// none overdrawn is a linearization of the history itself.
    drawn: Vec<u32>,
    overdrawn: u32,
    /// Queues without crashed dequeues: enqueues of dequeued elements not yet linearized.
    /// `None` when the rule does not apply.
    observed_enqueues_left: Option<usize>,
    /// The crashed class of dequeues whose result is unknown, if any (the queue rule
    /// counts how many of them are left).
    unknown_dequeue_class: Option<u16>,
    /// Queues with unique elements: the crashed classes that enqueue an element some
    /// completed dequeue returns, with that dequeue's return, by return.
    crashed_enqueues: Vec<(u64, u16)>,
    // Memo: failed (or in-progress) configurations, with the crashed-use vectors seen.
    seen: FxHashSet<MemoKey<M::State>>,
    seen_with_crashed: FxHashMap<MemoKey<M::State>, Vec<Box<[u16]>>>,
    memory_local: usize,
    memory_reported: usize,
    deepest_k: usize,
    deepest_states: Vec<M::State>,
}

/// Searches for a linearization of `problem` under `model` in `mode`;
/// [`SearchReport::exact`] says whether the outcome holds for the history.
pub fn search<M: Model>(
    model: &M,
    problem: &KeyProblem,
    limits: &Limits,
    mode: SearchMode,
) -> SearchReport {
    let mut search = Search::new(model, problem, mode);
    let outcome = search.run(limits);
    limits
        .memory_used
        .fetch_sub(search.memory_reported, Ordering::Relaxed);
    let exact = match (mode, &outcome) {
        (SearchMode::Exact, _) | (_, Outcome::Unknown(_)) => true,
        (SearchMode::CrashedReusable, Outcome::Linearizable) => search.overdrawn == 0,
        (SearchMode::CrashedReusable, Outcome::NotLinearizable(_)) => true,
        (SearchMode::CountsForgotten { .. }, outcome) => matches!(outcome, Outcome::Linearizable),
    };
    SearchReport {
        outcome,
        exact,
        configurations: (search.seen.len()
            + search
                .seen_with_crashed
                .values()
                .map(Vec::len)
                .sum::<usize>()) as u64,
    }
}

impl<'p, M: Model> Search<'p, M> {
    fn new(model: &'p M, problem: &'p KeyProblem, mode: SearchMode) -> Self {
        let completed = &problem.completed;
        let n = completed.len();
        let mut ret_order: Vec<u32> = (0..n as u32).collect();
        ret_order.sort_by_key(|&i| completed[i as usize].ret);
        // Sweep in return order, keeping the operations invoked so far and not yet returned.
        let mut span = Vec::with_capacity(n);
        let mut active: Vec<u32> = Vec::new();
        let mut next_call = 0usize; // completed is in invocation order
        for &d in &ret_order {
            let deadline = completed[d as usize].ret;
            while next_call < n && completed[next_call].call < deadline {
                active.push(next_call as u32);
                next_call += 1;
            }
            active.retain(|&i| completed[i as usize].ret >= deadline);
            let mut ops = active.clone();
            ops.sort_by_key(|&i| completed[i as usize].ret);
            span.push(ops.into_boxed_slice());
        }
        let mut class_of: FxHashMap<&Action, usize> = FxHashMap::default();
        let mut class_actions = Vec::new();
        let mut class_calls: Vec<Vec<u64>> = Vec::new();
        for entry in &problem.crashed {
            let class = *class_of.entry(&entry.action).or_insert_with(|| {
                class_actions.push(entry.action.clone());
                class_calls.push(Vec::new());
                class_actions.len() - 1
            });
            class_calls[class].push(entry.call);
        }
        let mut action_number: FxHashMap<&Action, u32> = FxHashMap::default();
        let completed_action: Vec<u32> = completed
            .iter()
            .map(|e| {
                let next = action_number.len() as u32;
                *action_number.entry(&e.action).or_insert(next)
            })
            .collect();
        let crashed_twin = class_actions
            .iter()
            .map(|a| action_number.get(a).copied())
            .collect();
        let offered = vec![0; action_number.len()];
        let is_observed_enqueue = |a: &Action| matches!(a, Action::Enqueue(v) if *v != UNOBSERVED);
        let queue_rule = completed
            .iter()
            .any(|e| matches!(e.action, Action::Enqueue(_)))
            && !problem
                .crashed
                .iter()
                .any(|e| e.action == Action::DequeueUnknown);
        let observed_enqueues_left = queue_rule.then(|| {
            completed
                .iter()
                .chain(problem.crashed.iter())
                .filter(|e| is_observed_enqueue(&e.action))
                .count()
        });
        let unknown_dequeue_class = class_actions
            .iter()
            .position(|a| *a == Action::DequeueUnknown)
            .map(|class| class as u16);
        let mut crashed_enqueues: Vec<(u64, u16)> = class_actions
            .iter()
            .enumerate()
            .filter_map(|(class, action)| match (action, &problem.dequeue_windows) {
                (Action::Enqueue(e), Some(windows)) => {
                    windows.get(e).map(|&(_, ret)| (ret, class as u16))
                }
                _ => None,
            })
            .collect();
        crashed_enqueues.sort_unstable();
        let classes = class_actions.len();
        let init = model.init();
        Search {
            model,
            problem,
            ret_order,
            span,
            class_actions,
            class_calls,
            completed_action,
            crashed_twin,
            offered,
            generation: 0,
            observed_enqueues_left,
            unknown_dequeue_class,
            crashed_enqueues,
            linearized: vec![false; n],
            k: 0,
            state: init.clone(),
            used: vec![0; classes],
            debt: false,
            mode,
            ranked: Vec::new(),
            drawn: vec![0; classes],
            overdrawn: 0,
            seen: FxHashSet::default(),
            seen_with_crashed: FxHashMap::default(),
            memory_local: 0,
            memory_reported: 0,
            deepest_k: 0,
            deepest_states: vec![init],
        }
    }

    /// The relaxation: crashed operations never run out.
    fn crashed_reusable(&self) -> bool {
        self.mode == SearchMode::CrashedReusable
    }

    /// The memo leaves out the crashed-use counts (the incomplete search, or the
    /// relaxation, which has none).
    fn counts_forgotten(&self) -> bool {
        self.mode != SearchMode::Exact
    }

    /// The order in which each configuration's moves are tried.
    fn order(&self) -> MoveOrder {
        match self.mode {
            SearchMode::CountsForgotten { order, .. } => order,
            _ => MoveOrder::Informed,
        }
    }

    /// Give up after remembering this many configurations.
    fn budget(&self) -> u64 {
        match self.mode {
            SearchMode::CountsForgotten { budget, .. } => budget,
            _ => u64::MAX,
        }
    }

    fn done(&self) -> bool {
        self.k >= self.ret_order.len()
    }

    fn undo(&mut self, undo: Undo<M::State>) {
        let problem = self.problem;
        for x in undo.linearized {
            self.linearized[x as usize] = false;
            self.count_enqueue(Some(&problem.completed[x as usize].action), true);
        }
        if let Some(class) = undo.class {
            let action = self.class_actions[class as usize].clone();
            self.count_enqueue(Some(&action), true);
        }
        self.k = undo.k;
        self.state = undo.state;
        self.debt = undo.debt;
        if let Some(class) = undo.class {
            if self.crashed_reusable() {
                self.drawn[class as usize] -= 1;
                self.overdrawn -= u32::from(undo.overdrew);
            } else {
                self.used[class as usize] -= 1;
            }
        }
    }

    fn new_undo(&self, class: Option<u16>) -> Undo<M::State> {
        Undo {
            linearized: Vec::new(),
            k: self.k,
            state: self.state.clone(),
            class,
            debt: self.debt,
            overdrew: false,
        }
    }

    fn run(&mut self, limits: &Limits) -> Outcome {
        let mut root = self.new_undo(None);
        self.close_over_reads(&mut root);
        if self.done() {
            return Outcome::Linearizable;
        }
        self.note_depth();
        self.remember();
        let mut stack = vec![Frame {
            moves: self.moves(),
            next: 0,
            undo: None,
        }];
        let mut steps = 0u64;
        while let Some(top) = stack.last_mut() {
            steps += 1;
            if steps.is_multiple_of(1024) {
                limits
                    .memory_used
                    .fetch_add(self.memory_local - self.memory_reported, Ordering::Relaxed);
                self.memory_reported = self.memory_local;
                if let Some(reason) = gave_up(limits) {
                    return Outcome::Unknown(reason);
                }
                if self.seen.len() as u64 > self.budget() {
                    return Outcome::Unknown(GaveUp::Budget);
                }
            }
            let Some(&next) = top.moves.get(top.next) else {
                if let Some(frame) = stack.pop()
                    && let Some(undo) = frame.undo
                {
                    self.undo(undo);
                }
                continue;
            };
            top.next += 1;
            let mut undo = match next {
                Move::Completed(x) => {
                    let Some(state) = self
                        .model
                        .step(&self.state, &self.problem.completed[x as usize].action)
                    else {
                        continue;
                    };
                    let mut undo = self.new_undo(None);
                    self.state = state;
                    self.debt = false;
                    self.linearize(x, &mut undo);
                    undo
                }
                Move::Crashed(class) => {
                    let Some(state) = self
                        .model
                        .step(&self.state, &self.class_actions[class as usize])
                    else {
                        continue;
                    };
                    if state == self.state {
                        continue; // changes nothing: never needed
                    }
                    let mut undo = self.new_undo(Some(class));
                    let action = self.class_actions[class as usize].clone();
                    self.count_enqueue(Some(&action), false);
                    self.state = state;
                    if self.crashed_reusable() {
                        undo.overdrew = self.invoked(class) <= self.drawn[class as usize] as usize;
                        self.overdrawn += u32::from(undo.overdrew);
                        self.drawn[class as usize] += 1;
                    } else {
                        self.used[class as usize] += 1;
                    }
                    self.debt = true;
                    undo
                }
            };
            self.close_over_reads(&mut undo);
            if self.done() {
                return Outcome::Linearizable;
            }
            self.note_depth();
            if !self.remember() {
                self.undo(undo);
                continue;
            }
            let moves = self.moves();
            stack.push(Frame {
                moves,
                next: 0,
                undo: Some(undo),
            });
        }
        Outcome::NotLinearizable(self.failure())
    }

    fn failure(&self) -> Failure {
        let k = self.deepest_k.min(self.ret_order.len().saturating_sub(1));
        let blocking = self.ret_order[k] as usize;
        let concurrent = self.span[k]
            .iter()
            .map(|&x| x as usize)
            .filter(|&x| x != blocking)
            .collect();
        let show = |id| self.problem.show(id);
        Failure {
            linearized_prefix: k,
            blocking,
            concurrent,
            states: self
                .deepest_states
                .iter()
                .map(|s| self.model.describe(s, &show))
                .collect(),
            reason: None,
            overwritten_by: None,
        }
    }
}

fn gave_up(limits: &Limits) -> Option<GaveUp> {
    if Instant::now() >= limits.deadline {
        Some(GaveUp::Time)
    } else if limits.memory_used.load(Ordering::Relaxed) > limits.memory_bytes {
        Some(GaveUp::Memory)
    } else {
        None
    }
}
