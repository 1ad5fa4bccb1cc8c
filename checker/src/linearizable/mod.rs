//! The linearizability checker: is there a total order of the operations, consistent
//! with real time, in which every operation does what a sequential object would do?
//!
//! Operations on different keys are checked separately (P-compositionality), on all
//! cores. Failed operations did not happen. Crashed (`info`) operations may take effect
//! at any time after their invocation, or never. Verdicts are exact: `unknown` (with the
//! reason) when the time limit or memory ceiling stops the search, never a guess.

mod explain;
mod kind;
mod model;
mod multi;
mod precheck;
mod prepare;
mod search;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_knossos;

use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{Map, Value};

pub use kind::{ModelKind, NilReads, Semantics};
pub use model::{Action, FifoQueue, MicroOp, Model, Mutex, Register, Set, UnorderedQueue, ValueId};
pub use multi::MultiRegister;
pub use prepare::{Entry, KeyProblem, NEVER, prepare};
pub use search::{Failure, GaveUp, Limits, MoveOrder, Outcome, SearchMode, SearchReport, search};

use crate::history::{History, InputError};
use crate::results::{Validity, Verdict};

/// How to check.
#[derive(Debug, Clone)]
pub struct LinearizableOptions {
    /// The model; `None` picks one from the operations (see [`ModelKind::infer`]).
    pub model: Option<ModelKind>,
    /// Give up (answer `unknown`) after this long. Default 300 s.
    pub time_limit: Duration,
    /// Give up when the searches' memo tables together exceed this many bytes.
    /// Default 4 GiB.
    pub memory_limit_bytes: usize,
    /// Run the register precheck, which refutes reads no write could have served without
    /// searching. Default on; turning it off only serves to measure the search.
    pub precheck: bool,
    /// The initial value, and what a read of `null` says. Default: unset, and a read of
    /// `null` says the register is `null` (Faultline's spec).
    pub semantics: Semantics,
}

impl Default for LinearizableOptions {
    fn default() -> Self {
        LinearizableOptions {
            model: None,
            time_limit: Duration::from_secs(300),
            memory_limit_bytes: 4 << 30,
            precheck: true,
            semantics: Semantics::default(),
        }
    }
}

/// One key's answer.
#[derive(Debug, Clone)]
pub struct KeyResult {
    /// The key's operations.
    pub problem: KeyProblem,
    /// The search's answer.
    pub report: SearchReport,
}

/// Checks every key of `history` and returns the merged verdict.
pub fn check(history: &History, options: &LinearizableOptions) -> Result<Verdict, InputError> {
    let model = match options.model {
        Some(model) => model,
        None => ModelKind::infer(history)?,
    };
    let started = Instant::now();
    let results = check_keys(prepare(history, model, &options.semantics)?, model, options);
    Ok(explain::verdict(
        history,
        model,
        &results,
        started.elapsed(),
    ))
}

/// Searches each problem, in parallel, under shared limits.
pub fn check_keys(
    problems: Vec<KeyProblem>,
    model: ModelKind,
    options: &LinearizableOptions,
) -> Vec<KeyResult> {
    let limits = Limits {
        deadline: Instant::now() + options.time_limit,
        memory_bytes: options.memory_limit_bytes,
        memory_used: AtomicUsize::new(0),
    };
    // Largest first, so the long searches start early.
    let mut problems = problems;
    problems.sort_by_key(|p| std::cmp::Reverse(p.completed.len() + p.crashed.len()));
    let nil_reads_unknown = options.semantics.nil_reads == NilReads::Unknown;
    let mut results: Vec<KeyResult> = problems
        .into_par_iter()
        .map(|problem| {
            let register = |cas: bool| Register {
                cas,
                initial: problem.initial.first().copied().unwrap_or(model::NULL),
                nil_reads_unknown,
            };
            let report = match model {
                ModelKind::Register
                | ModelKind::CasRegister
                | ModelKind::FifoQueue
                | ModelKind::UnorderedQueue
                    if let Some(failure) =
                        options.precheck.then(|| refute(&problem, model)).flatten() =>
                {
                    SearchReport {
                        outcome: Outcome::NotLinearizable(failure),
                        configurations: 0,
                        exact: true,
                    }
                }
                ModelKind::Register => refine(&register(false), &problem, &limits),
                ModelKind::CasRegister => refine(&register(true), &problem, &limits),
                ModelKind::Mutex => refine(&Mutex, &problem, &limits),
                ModelKind::Set => refine(&Set, &problem, &limits),
                // As for the FIFO queue: repeated crashed enqueues grow it without end.
                ModelKind::UnorderedQueue => {
                    search(&UnorderedQueue, &problem, &limits, SearchMode::Exact)
                }
                ModelKind::MultiRegister => refine(
                    &MultiRegister {
                        initial: problem.initial.clone().into_boxed_slice(),
                        keys: problem.slot_keys.clone().into_boxed_slice(),
                        nil_reads_unknown,
                    },
                    &problem,
                    &limits,
                ),
                // Repeating a crashed enqueue grows the queue without end: no relaxation.
                ModelKind::FifoQueue => search(
                    &FifoQueue {
                        unique_elements: problem.dequeue_windows.is_some(),
                    },
                    &problem,
                    &limits,
                    SearchMode::Exact,
                ),
            };
            KeyResult { problem, report }
        })
        .collect();
    results.sort_by(|a, b| a.problem.key.cmp(&b.problem.key));
    results
}

/// The register or queue precheck's refutation as a failure, if it finds one.
fn refute(problem: &KeyProblem, model: ModelKind) -> Option<Failure> {
    let queue = matches!(model, ModelKind::FifoQueue | ModelKind::UnorderedQueue);
    let refutation = if queue {
        precheck::refute_queue(problem)?
    } else {
        precheck::refute_register(problem)?
    };
    let observer = &problem.completed[refutation.observer];
    let concurrent = problem
        .completed
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            *i != refutation.observer && e.call < observer.ret && e.ret > observer.call
        })
        .map(|(i, _)| i)
        .collect();
    let value = problem.show(refutation.value);
    let reason = match refutation.overwritten_by {
        None if queue => format!("no operation invoked before it returned enqueues {value}"),
        None => format!("no operation invoked before it returned writes {value}"),
        Some(_) => format!(
            "every write of {value} invoked before it returned was overwritten before it began (see the overwriting operation)"
        ),
    };
    Some(Failure {
        linearized_prefix: problem
            .completed
            .iter()
            .filter(|e| e.ret < observer.call)
            .count(),
        blocking: refutation.observer,
        concurrent,
        states: Vec::new(),
        reason: Some(reason),
        overwritten_by: refutation.overwritten_by,
    })
}

/// Configurations each incomplete search of the first round may remember; each round
/// doubles it.
const FIRST_BUDGET: u64 = 50_000;

/// The incomplete searches give way to the exact one once they have remembered this
/// many configurations in all.
const INCOMPLETE_CONFIGURATIONS: u64 = 4_000_000;

/// The move orders of the incomplete search, two to a round, run at once. No order
/// finds every linearization soon (each has histories on which it goes a long way
/// down a wrong path), but among them, soon one does.
const ORDER_PAIRS: [[MoveOrder; 2]; 2] = [
    [MoveOrder::Informed, MoveOrder::CrashedLast],
    [MoveOrder::Enabling, MoveOrder::Returned],
];

/// Decides one key. First the relaxation in which crashed operations never run out:
/// small, and exact when it finds no linearization, or one within the crashed
/// operations invoked. If it found one only beyond them: the incomplete search that
/// forgets crashed-use counts (as small, and exact when it finds a linearization), in
/// rounds of two move orders run at once, each round with twice the budget of the one
/// before; then the exact search.
fn refine<M: Model>(model: &M, problem: &KeyProblem, limits: &Limits) -> SearchReport {
    if problem.crashed.is_empty() {
        return search(model, problem, limits, SearchMode::Exact);
    }
    let relaxed = search(model, problem, limits, SearchMode::CrashedReusable);
    let mut configurations = relaxed.configurations;
    if relaxed.exact {
        return relaxed;
    }
    let mut round = 0usize;
    while configurations < INCOMPLETE_CONFIGURATIONS {
        let budget = FIRST_BUDGET << (round / ORDER_PAIRS.len()).min(20);
        let [first, second] = ORDER_PAIRS[round % ORDER_PAIRS.len()]
            .map(|order| SearchMode::CountsForgotten { order, budget });
        round += 1;
        let (a, b) = rayon::join(
            || search(model, problem, limits, first),
            || search(model, problem, limits, second),
        );
        configurations += a.configurations + b.configurations;
        for report in [a, b] {
            match report.outcome {
                // A linearization, or the time or memory is spent: that is the answer.
                Outcome::Linearizable | Outcome::Unknown(GaveUp::Time | GaveUp::Memory) => {
                    return SearchReport {
                        configurations,
                        ..report
                    };
                }
                // Every path within the budget failed, or the budget was spent.
                Outcome::NotLinearizable(_) | Outcome::Unknown(GaveUp::Budget) => {}
            }
        }
    }
    let mut exact = search(model, problem, limits, SearchMode::Exact);
    exact.configurations += configurations;
    exact
}

/// The merged validity of per-key results.
pub fn validity(results: &[KeyResult]) -> Validity {
    results.iter().fold(Validity::Valid, |acc, r| {
        acc.merge(match r.report.outcome {
            Outcome::Linearizable => Validity::Valid,
            Outcome::NotLinearizable(_) => Validity::Invalid,
            Outcome::Unknown(_) => Validity::Unknown,
        })
    })
}

pub(crate) fn object(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
