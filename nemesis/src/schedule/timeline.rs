//! An explicit timeline for the nemesis process: [`Step`]s at fixed times, from a
//! schedule file or a recorded run.

use faultline_checker::history::{Op, Process};
use faultline_generator::{Context, GenOp, Generator, OpSpec};
use serde_json::Value;

/// One operation of the nemesis at a fixed time.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Nanoseconds from the start of the run's workload.
    pub time: u64,
    /// The nemesis `f`, e.g. `start-partition`, `kill`, `truncate-log`.
    pub f: String,
    /// The invocation's value: what the nemesis is asked to do (null: its own choice).
    pub value: Value,
}

/// The generator of [`timeline`].
#[derive(Debug, Clone)]
pub struct Timeline {
    steps: Vec<Step>,
    next: usize,
}

/// A nemesis generator performing `steps` in time order, each at its time or, when the
/// nemesis is still busy with the previous one, as soon as it is free (never early,
/// never skipped); exhausted after the last. Its operations are for
/// [`Process::Nemesis`] only, like [`super::schedule()`]'s.
pub fn timeline(mut steps: Vec<Step>) -> Timeline {
    steps.sort_by_key(|s| s.time);
    Timeline { steps, next: 0 }
}

impl Timeline {
    /// The steps, in time order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

impl Generator for Timeline {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let Some(step) = self.steps.get(self.next) else {
            return GenOp::Exhausted;
        };
        if !ctx.is_free(Process::Nemesis) {
            return GenOp::WAIT;
        }
        if ctx.time() < step.time {
            return GenOp::Pending {
                retry_at: Some(step.time),
            };
        }
        self.next += 1;
        GenOp::Op {
            process: Process::Nemesis,
            op: OpSpec::new(step.f.clone(), step.value.clone()),
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_generator::sim::{Simulation, invocations};
    use faultline_generator::{Generator, nemesis};
    use serde_json::json;

    #[test]
    fn steps_run_at_their_times_in_order() {
        let step = |s: u64, f: &str, value| Step {
            time: s * 1_000_000_000,
            f: f.into(),
            value,
        };
        let mut test = nemesis(timeline(vec![
            step(9, "stop-partition", Value::Null),
            step(5, "start-partition", json!("halves")),
            step(5, "kill", json!(["n1"])),
        ]))
        .boxed();
        let history = Simulation::new(1).nemesis(true).run(&mut test).unwrap();
        let ops: Vec<(String, Value, i64)> = invocations(&history)
            .into_iter()
            .map(|op| (op.f, op.value, op.time))
            .collect();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[0],
            ("start-partition".into(), json!("halves"), 5e9 as i64)
        );
        // The second waits for the first to complete (1-10 ms in the simulation).
        assert_eq!((ops[1].0.as_str(), &ops[1].1), ("kill", &json!(["n1"])));
        assert!(ops[1].2 > 5e9 as i64 && ops[1].2 < 5.02e9 as i64);
        assert_eq!(ops[2].2, 9e9 as i64);
    }
}
