//! Leaf generators and sequencing: `once`, `repeat`, `from_fn`, `sleep`, `seq`, `cycle`,
//! `map`.

use std::collections::VecDeque;
use std::time::Duration;

use faultline_checker::history::Op;

use crate::context::Context;
use crate::generator::{BoxGen, GenOp, Generator, OpSpec};

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Emits `spec` once, on some free process. See [`once`].
#[derive(Debug, Clone)]
pub struct Once {
    spec: Option<OpSpec>,
}

/// A generator that emits `spec` once, on a free process chosen at random (waiting for
/// one if all are busy), then is exhausted. Jepsen's map-as-generator.
pub fn once(spec: OpSpec) -> Once {
    Once { spec: Some(spec) }
}

impl Generator for Once {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        if self.spec.is_none() {
            return GenOp::Exhausted;
        }
        match ctx.some_free_process() {
            None => GenOp::WAIT,
            Some(process) => match self.spec.take() {
                Some(op) => GenOp::Op { process, op },
                None => GenOp::Exhausted,
            },
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}

/// Emits `spec` forever. See [`repeat`].
#[derive(Debug, Clone)]
pub struct Repeat {
    spec: OpSpec,
}

/// A generator that emits `spec` forever, each time on a free process chosen at random.
/// Bound it with [`crate::limit`] or [`crate::time_limit`].
pub fn repeat(spec: OpSpec) -> Repeat {
    Repeat { spec }
}

impl Generator for Repeat {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        match ctx.some_free_process() {
            None => GenOp::WAIT,
            Some(process) => GenOp::Op {
                process,
                op: self.spec.clone(),
            },
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}

/// Calls a function for each operation. See [`from_fn`].
pub struct FromFn<F> {
    f: F,
    done: bool,
}

/// A generator that calls `f` each time a process is free and emits what it returns;
/// `None` exhausts it. `f` draws its randomness from the context
/// (e.g. [`Context::random_below`]), which keeps it deterministic.
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: FnMut(&mut Context) -> Option<OpSpec> + Send,
{
    FromFn { f, done: false }
}

impl<F> Generator for FromFn<F>
where
    F: FnMut(&mut Context) -> Option<OpSpec> + Send,
{
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        if self.done {
            return GenOp::Exhausted;
        }
        let Some(process) = ctx.some_free_process() else {
            return GenOp::WAIT;
        };
        match (self.f)(ctx) {
            Some(op) => GenOp::Op { process, op },
            None => {
                self.done = true;
                GenOp::Exhausted
            }
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}

/// Waits, then is exhausted. See [`sleep`].
#[derive(Debug, Clone)]
pub struct Sleep {
    duration: u64,
    deadline: Option<u64>,
}

/// A generator that emits nothing: once some process is free (as if that process took
/// the sleep, like Jepsen's `sleep`), it waits `duration` and is then exhausted. Useful
/// in [`seq`] and [`cycle`] to space nemesis operations.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        duration: nanos(duration),
        deadline: None,
    }
}

impl Generator for Sleep {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let deadline = match self.deadline {
            Some(deadline) => deadline,
            None if ctx.free_processes().is_empty() => return GenOp::WAIT,
            None => *self
                .deadline
                .insert(ctx.time().saturating_add(self.duration)),
        };
        if ctx.time() >= deadline {
            GenOp::Exhausted
        } else {
            GenOp::Pending {
                retry_at: Some(deadline),
            }
        }
    }

    fn update(&mut self, _: &mut Context, _: &Op) {}
}

/// Runs generators one after another. See [`seq`].
pub struct Seq {
    gens: VecDeque<BoxGen>,
}

/// A generator that emits everything from the first generator, then everything from the
/// second, and so on, without waiting for operations in flight (use [`crate::phases`]
/// for that). Updates go to the current generator.
pub fn seq(gens: Vec<BoxGen>) -> Seq {
    Seq { gens: gens.into() }
}

impl Generator for Seq {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        while let Some(inner) = self.gens.front_mut() {
            match inner.op(ctx) {
                GenOp::Exhausted => {
                    self.gens.pop_front();
                }
                answer => return answer,
            }
        }
        GenOp::Exhausted
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        if let Some(inner) = self.gens.front_mut() {
            inner.update(ctx, event);
        }
    }
}

/// Restarts a generator each time it is exhausted. See [`cycle`].
pub struct Cycle<F, G> {
    make: F,
    current: Option<G>,
    fresh: bool,
    done: bool,
}

/// A generator that runs `make()` until it is exhausted, then a new `make()`, forever:
/// e.g. a nemesis schedule `sleep, start, sleep, stop`. If a fresh generator is
/// exhausted at once, the cycle ends (rather than spinning).
pub fn cycle<F, G>(make: F) -> Cycle<F, G>
where
    F: FnMut() -> G + Send,
    G: Generator,
{
    Cycle {
        make,
        current: None,
        fresh: true,
        done: false,
    }
}

impl<F, G> Generator for Cycle<F, G>
where
    F: FnMut() -> G + Send,
    G: Generator,
{
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        while !self.done {
            let inner = match &mut self.current {
                Some(inner) => inner,
                None => {
                    self.fresh = true;
                    self.current.insert((self.make)())
                }
            };
            match inner.op(ctx) {
                GenOp::Exhausted if self.fresh => self.done = true,
                GenOp::Exhausted => self.current = None,
                answer => {
                    self.fresh = false;
                    return answer;
                }
            }
        }
        GenOp::Exhausted
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        if let Some(inner) = &mut self.current {
            inner.update(ctx, event);
        }
    }
}

/// Transforms operations. See [`map`].
pub struct Map<F, G> {
    f: F,
    inner: G,
}

/// A generator like `inner` whose operations are passed through `f` (e.g. to rename `f`
/// for a composed nemesis). Pending and exhaustion pass through untouched.
pub fn map<F, G>(f: F, inner: G) -> Map<F, G>
where
    F: FnMut(OpSpec) -> OpSpec + Send,
    G: Generator,
{
    Map { f, inner }
}

impl<F, G> Generator for Map<F, G>
where
    F: FnMut(OpSpec) -> OpSpec + Send,
    G: Generator,
{
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        match self.inner.op(ctx) {
            GenOp::Op { process, op } => GenOp::Op {
                process,
                op: (self.f)(op),
            },
            answer => answer,
        }
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        self.inner.update(ctx, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit;
    use crate::sim::Simulation;
    use crate::sim::invocations;
    use faultline_checker::history::Process;
    use serde_json::json;

    fn read() -> OpSpec {
        OpSpec::new("read", json!(null))
    }

    #[test]
    fn once_emits_exactly_one_op() {
        let history = Simulation::new(1)
            .concurrency(3)
            .run(&mut once(read()))
            .unwrap();
        assert_eq!(invocations(&history).len(), 1);
        assert_eq!(history.len(), 2);
    }

    #[test]
    fn once_waits_for_a_free_process() {
        let mut ctx = Context::new(1, 1, false);
        ctx.set_busy(Process::Client(0));
        let mut inner = once(read());
        assert_eq!(inner.op(&mut ctx), GenOp::WAIT);
        ctx.set_free(Process::Client(0));
        assert!(matches!(
            inner.op(&mut ctx),
            GenOp::Op {
                process: Process::Client(0),
                ..
            }
        ));
        assert_eq!(inner.op(&mut ctx), GenOp::Exhausted);
    }

    #[test]
    fn repeat_and_from_fn_keep_all_processes_busy() {
        let history = Simulation::new(1)
            .concurrency(4)
            .run(&mut limit(100, repeat(read())))
            .unwrap();
        let ops = invocations(&history);
        assert_eq!(ops.len(), 100);
        let mut n = 0;
        let mut inner = from_fn(move |_| {
            n += 1;
            (n <= 10).then(|| OpSpec::new("write", json!(n)))
        });
        let history = Simulation::new(1).concurrency(4).run(&mut inner).unwrap();
        let values: Vec<_> = invocations(&history)
            .iter()
            .map(|op| op.value.clone())
            .collect();
        assert_eq!(values, (1..=10).map(|n| json!(n)).collect::<Vec<_>>());
    }

    #[test]
    fn sleep_delays_what_follows_in_a_seq() {
        let mut inner = seq(vec![
            once(read()).boxed(),
            sleep(Duration::from_secs(5)).boxed(),
            once(OpSpec::new("write", json!(1))).boxed(),
        ]);
        let history = Simulation::new(1).concurrency(2).run(&mut inner).unwrap();
        let ops = invocations(&history);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].f, "read");
        assert_eq!(ops[1].f, "write");
        assert!(ops[1].time - ops[0].time >= 5_000_000_000);
    }

    #[test]
    fn cycle_restarts_and_stops_on_an_empty_generator() {
        let mut inner = limit(
            7,
            cycle(|| {
                seq(vec![
                    once(OpSpec::new("start", json!(null))).boxed(),
                    once(OpSpec::new("stop", json!(null))).boxed(),
                ])
            }),
        );
        let history = Simulation::new(1).concurrency(1).run(&mut inner).unwrap();
        let fs: Vec<_> = invocations(&history)
            .iter()
            .map(|op| op.f.clone())
            .collect();
        assert_eq!(
            fs,
            ["start", "stop", "start", "stop", "start", "stop", "start"]
        );
        let mut empty = cycle(|| seq(Vec::new()));
        assert_eq!(empty.op(&mut Context::new(1, 1, false)), GenOp::Exhausted);
    }

    #[test]
    fn map_rewrites_ops() {
        let mut inner = map(
            |mut op: OpSpec| {
                op.f = format!("kill-{}", op.f);
                op
            },
            once(read()),
        );
        let history = Simulation::new(1).concurrency(1).run(&mut inner).unwrap();
        assert_eq!(invocations(&history)[0].f, "kill-read");
    }
}
