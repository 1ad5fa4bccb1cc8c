//! A brute-force linearizability oracle for tests: tries every order of every subset of
//! crashed operations, with none of the search's reductions.

use super::model::Model;
use super::prepare::{Entry, KeyProblem};

/// True when some order of the completed operations and any subset of the crashed ones,
/// consistent with real time, is legal for `model`. Exponential: small inputs only.
pub fn linearizable<M: Model>(model: &M, problem: &KeyProblem) -> bool {
    let ops: Vec<&Entry> = problem
        .completed
        .iter()
        .chain(problem.crashed.iter())
        .collect();
    let mut used = vec![false; ops.len()];
    explore(model, &ops, &mut used, &model.init())
}

fn explore<M: Model>(model: &M, ops: &[&Entry], used: &mut [bool], state: &M::State) -> bool {
    let pending_completed = |used: &[bool]| {
        ops.iter()
            .zip(used)
            .any(|(op, &u)| !u && op.ret != super::NEVER)
    };
    if !pending_completed(used) {
        return true;
    }
    for i in 0..ops.len() {
        if used[i] {
            continue;
        }
        // i may go next only if no unused operation returned before i was invoked.
        let blocked = ops
            .iter()
            .zip(used.iter())
            .any(|(other, &u)| !u && other.ret < ops[i].call);
        if blocked {
            continue;
        }
        if let Some(next) = model.step(state, &ops[i].action) {
            used[i] = true;
            let found = explore(model, ops, used, &next);
            used[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}
