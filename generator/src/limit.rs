//! Generators that end another early: `limit`, `time_limit`, `until_ok`.

use std::collections::BTreeSet;
use std::time::Duration;

use faultline_checker::history::{Op, OpType, Process};

use crate::basic::nanos;
use crate::context::Context;
use crate::generator::{GenOp, Generator, earliest};

/// At most `n` operations. See [`limit`].
pub struct Limit<G> {
    remaining: u64,
    inner: G,
}

/// A generator like `inner` that emits at most `n` operations. Updates pass through.
pub fn limit<G: Generator>(n: u64, inner: G) -> Limit<G> {
    Limit {
        remaining: n,
        inner,
    }
}

impl<G: Generator> Generator for Limit<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        if self.remaining == 0 {
            return GenOp::Exhausted;
        }
        let answer = self.inner.op(ctx);
        if let GenOp::Op { .. } = answer {
            self.remaining -= 1;
        }
        answer
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        self.inner.update(ctx, event);
    }
}

/// Operations for a while. See [`time_limit`].
pub struct TimeLimit<G> {
    duration: u64,
    cutoff: Option<u64>,
    inner: G,
}

/// A generator like `inner` that emits operations only during `duration`, counted from
/// the first time it is asked for one (for a phase, when the phase begins). Operations
/// in flight at the cutoff are not affected.
pub fn time_limit<G: Generator>(duration: Duration, inner: G) -> TimeLimit<G> {
    TimeLimit {
        duration: nanos(duration),
        cutoff: None,
        inner,
    }
}

impl<G: Generator> Generator for TimeLimit<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let now = ctx.time();
        let cutoff = *self.cutoff.get_or_insert(now.saturating_add(self.duration));
        if now >= cutoff {
            return GenOp::Exhausted;
        }
        match self.inner.op(ctx) {
            // Wake up at the cutoff at the latest, to report exhaustion on time.
            GenOp::Pending { retry_at } => GenOp::Pending {
                retry_at: earliest(retry_at, Some(cutoff)),
            },
            answer => answer,
        }
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        self.inner.update(ctx, event);
    }
}

/// Operations until one succeeds. See [`until_ok`].
pub struct UntilOk<G> {
    inner: G,
    done: bool,
    active: BTreeSet<Process>,
}

/// A generator like `inner` that stops as soon as one of *its* operations completes `ok`
/// (Jepsen's `until-ok`): e.g. the final read of a set workload, retried through
/// failures. Combine with [`crate::each_thread`] to get one success per thread.
pub fn until_ok<G: Generator>(inner: G) -> UntilOk<G> {
    UntilOk {
        inner,
        done: false,
        active: BTreeSet::new(),
    }
}

impl<G: Generator> Generator for UntilOk<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        if self.done {
            return GenOp::Exhausted;
        }
        let answer = self.inner.op(ctx);
        if let GenOp::Op { process, .. } = &answer {
            self.active.insert(*process);
        }
        answer
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        self.inner.update(ctx, event);
        if !self.active.contains(&event.process) {
            return;
        }
        match event.op_type {
            OpType::Invoke => {}
            OpType::Ok => {
                self.active.remove(&event.process);
                self.done = true;
            }
            OpType::Fail | OpType::Info => {
                self.active.remove(&event.process);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Simulation, invocations};
    use crate::{OpSpec, repeat};
    use serde_json::json;

    fn read() -> OpSpec {
        OpSpec::new("read", json!(null))
    }

    #[test]
    fn limit_counts_only_operations() {
        let mut inner = limit(3, repeat(read()));
        let mut ctx = Context::new(1, 1, false);
        assert!(matches!(inner.op(&mut ctx), GenOp::Op { .. }));
        ctx.set_busy(Process::Client(0));
        assert_eq!(inner.op(&mut ctx), GenOp::WAIT);
        ctx.set_free(Process::Client(0));
        assert!(matches!(inner.op(&mut ctx), GenOp::Op { .. }));
        assert!(matches!(inner.op(&mut ctx), GenOp::Op { .. }));
        assert_eq!(inner.op(&mut ctx), GenOp::Exhausted);
    }

    #[test]
    fn time_limit_stops_emitting_at_the_cutoff() {
        let mut inner = time_limit(Duration::from_secs(2), repeat(read()));
        let history = Simulation::new(7).concurrency(3).run(&mut inner).unwrap();
        let ops = invocations(&history);
        assert!(ops.len() > 100);
        assert!(ops.iter().all(|op| op.time < 2_000_000_000));
        assert!(ops.last().is_some_and(|op| op.time > 1_900_000_000));
    }

    #[test]
    fn time_limit_wakes_at_the_cutoff_when_pending() {
        let mut inner = time_limit(Duration::from_secs(1), repeat(read()));
        let mut ctx = Context::new(1, 1, false);
        ctx.set_busy(Process::Client(0));
        assert_eq!(
            inner.op(&mut ctx),
            GenOp::Pending {
                retry_at: Some(1_000_000_000)
            }
        );
        ctx.set_time(1_000_000_000);
        assert_eq!(inner.op(&mut ctx), GenOp::Exhausted);
    }

    #[test]
    fn until_ok_retries_through_failures_then_stops() {
        // Every operation fails with probability 0.8: the generator keeps going until
        // the first ok, then stops; operations already in flight still complete.
        let mut inner = until_ok(repeat(read()));
        let history = Simulation::new(3)
            .concurrency(1)
            .fail_rate(0.8)
            .run(&mut inner)
            .unwrap();
        let completions: Vec<_> = history
            .iter()
            .filter(|op| op.op_type != OpType::Invoke)
            .collect();
        assert!(completions.len() > 1, "seed 3 should fail at least once");
        assert_eq!(
            completions
                .iter()
                .filter(|op| op.op_type == OpType::Ok)
                .count(),
            1
        );
        assert_eq!(completions.last().map(|op| op.op_type), Some(OpType::Ok));
    }
}
