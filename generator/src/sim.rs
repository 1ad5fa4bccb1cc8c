//! A deterministic, simulated driver: runs a generator against an imaginary system on
//! a simulated clock and returns the history it would record.
//!
//! It follows the same protocol as the real run loop: ask the generator for operations
//! while processes are free, invoke them, deliver completions in time order, retire a
//! process whose operation ends in `info` (history spec), and stop when the generator is
//! exhausted and nothing is in flight. Everything is drawn from seeded RNGs, so a
//! simulation is a pure function of its settings and the generator: tests use it to
//! check generators, and to show that the same seed replays the same operations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use faultline_checker::history::{Op, OpType, Process};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::basic::nanos;
use crate::context::Context;
use crate::generator::{GenOp, Generator};

/// Why a simulation stopped before the generator was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The generator is pending with no time to wake up at and nothing in flight: no
    /// event can ever come, so it would wait forever.
    #[error(
        "at {time} ns: the generator is pending, but nothing is in flight and no retry time was given"
    )]
    Stuck {
        /// The simulated time.
        time: u64,
    },
    /// The generator produced an operation for a process that is not free.
    #[error(
        "at {time} ns: the generator produced an operation for process {process}, which is not free"
    )]
    NotFree {
        /// The simulated time.
        time: u64,
        /// The process it named.
        process: Process,
    },
    /// The generator asked to be retried at a time that is not in the future.
    #[error(
        "at {time} ns: the generator asked to retry at {retry_at} ns, which is not in the future"
    )]
    RetryInThePast {
        /// The simulated time.
        time: u64,
        /// The time it asked for.
        retry_at: u64,
    },
}

/// Settings of a simulated run. Built with plain setters; see [`Simulation::run`].
#[derive(Debug, Clone)]
pub struct Simulation {
    seed: u64,
    concurrency: usize,
    nemesis: bool,
    latency: (u64, u64),
    fail_rate: f64,
    info_rate: f64,
    max_time: u64,
    max_events: usize,
}

impl Simulation {
    /// A simulation seeded with `seed`: one client, no nemesis, latencies uniform in
    /// 1–10 ms, every operation `ok`, at most one simulated hour and a million events.
    pub fn new(seed: u64) -> Simulation {
        Simulation {
            seed,
            concurrency: 1,
            nemesis: false,
            latency: (1_000_000, 10_000_000),
            fail_rate: 0.0,
            info_rate: 0.0,
            max_time: 3_600_000_000_000,
            max_events: 1_000_000,
        }
    }

    /// The number of client processes.
    pub fn concurrency(mut self, concurrency: usize) -> Simulation {
        self.concurrency = concurrency;
        self
    }

    /// Whether there is a nemesis process.
    pub fn nemesis(mut self, nemesis: bool) -> Simulation {
        self.nemesis = nemesis;
        self
    }

    /// Operation latencies, uniform in `min..=max`.
    pub fn latency(mut self, min: Duration, max: Duration) -> Simulation {
        let (min, max) = (nanos(min), nanos(max));
        self.latency = (min.min(max), max.max(min));
        self
    }

    /// The probability that a client operation fails (`fail`).
    pub fn fail_rate(mut self, p: f64) -> Simulation {
        self.fail_rate = p.clamp(0.0, 1.0);
        self
    }

    /// The probability that a client operation crashes (`info`; its process retires).
    pub fn info_rate(mut self, p: f64) -> Simulation {
        self.info_rate = p.clamp(0.0, 1.0);
        self
    }

    /// Stop at this simulated time even if the generator is not done.
    pub fn max_time(mut self, max: Duration) -> Simulation {
        self.max_time = nanos(max);
        self
    }

    /// Stop after this many history events even if the generator is not done.
    pub fn max_events(mut self, max: usize) -> Simulation {
        self.max_events = max;
        self
    }

    /// Runs `inner` to exhaustion (or to the time or event limit) and returns the history.
    /// The generator's context is seeded with the simulation's seed; the simulated
    /// system (latencies, outcomes) draws from a second RNG derived from it.
    pub fn run(&self, inner: &mut dyn Generator) -> Result<Vec<Op>, SimError> {
        let mut ctx = Context::new(self.seed, self.concurrency, self.nemesis);
        let mut system = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed_5eed_5eed_5eed);
        let mut history: Vec<Op> = Vec::new();
        // Completions in flight, soonest first; ties broken by invocation order.
        let mut in_flight: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
        let mut exhausted = false;
        loop {
            let now = ctx.time();
            let mut wake = None;
            while !exhausted && !ctx.free_processes().is_empty() && history.len() < self.max_events
            {
                match inner.op(&mut ctx) {
                    GenOp::Op { process, op } => {
                        if !ctx.is_free(process) {
                            return Err(SimError::NotFree { time: now, process });
                        }
                        let event = op.invoke(history.len() as u64, now, process);
                        ctx.set_busy(process);
                        inner.update(&mut ctx, &event);
                        let (min, max) = self.latency;
                        let done = now.saturating_add(system.random_range(min..=max));
                        in_flight.push(Reverse((done, history.len() as u64, history.len())));
                        history.push(event);
                    }
                    GenOp::Pending { retry_at } => {
                        if let Some(t) = retry_at.filter(|t| *t <= now) {
                            return Err(SimError::RetryInThePast {
                                time: now,
                                retry_at: t,
                            });
                        }
                        wake = retry_at;
                        break;
                    }
                    GenOp::Exhausted => exhausted = true,
                }
            }
            let next_completion = in_flight.peek().map(|Reverse((t, _, _))| *t);
            let next = match (next_completion, wake.filter(|_| !exhausted)) {
                (Some(c), Some(w)) => c.min(w),
                (Some(c), None) => c,
                (None, Some(w)) => w,
                (None, None) if exhausted => return Ok(history),
                (None, None)
                    if ctx.free_processes().is_empty() || history.len() >= self.max_events =>
                {
                    return Ok(history);
                }
                (None, None) => return Err(SimError::Stuck { time: now }),
            };
            if next > self.max_time || history.len() >= self.max_events {
                return Ok(history);
            }
            ctx.set_time(next);
            if next_completion == Some(next) {
                if let Some(Reverse((_, _, at))) = in_flight.pop() {
                    let completion =
                        self.complete(&history[at], next, history.len() as u64, &mut system);
                    match (completion.op_type, completion.process) {
                        (OpType::Info, Process::Client(_)) => {
                            ctx.retire(completion.process);
                        }
                        _ => ctx.set_free(completion.process),
                    }
                    inner.update(&mut ctx, &completion);
                    history.push(completion);
                }
            }
        }
    }

    /// The completion of `invoke` at `time`: the nemesis always logs `info`; a client's
    /// outcome is drawn from the fail and info rates, `ok` echoing the invoked value.
    fn complete(&self, invoke: &Op, time: u64, index: u64, rng: &mut ChaCha8Rng) -> Op {
        let op_type = if invoke.process == Process::Nemesis {
            OpType::Info
        } else {
            let roll: f64 = rng.random();
            if roll < self.info_rate {
                OpType::Info
            } else if roll < self.info_rate + self.fail_rate {
                OpType::Fail
            } else {
                OpType::Ok
            }
        };
        let mut op = invoke.clone();
        op.index = index;
        op.time = i64::try_from(time).unwrap_or(i64::MAX);
        op.op_type = op_type;
        op
    }
}

/// The invocations of a history, in order.
pub fn invocations(history: &[Op]) -> Vec<Op> {
    history
        .iter()
        .filter(|op| op.op_type == OpType::Invoke)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OpSpec, limit, repeat};
    use serde_json::json;

    struct Stuck;

    impl Generator for Stuck {
        fn op(&mut self, _: &mut Context) -> GenOp {
            GenOp::WAIT
        }
        fn update(&mut self, _: &mut Context, _: &Op) {}
    }

    struct Busy;

    impl Generator for Busy {
        fn op(&mut self, _: &mut Context) -> GenOp {
            GenOp::Op {
                process: Process::Client(7),
                op: OpSpec::new("read", json!(null)),
            }
        }
        fn update(&mut self, _: &mut Context, _: &Op) {}
    }

    #[test]
    fn a_generator_waiting_for_nothing_is_reported() {
        assert_eq!(
            Simulation::new(1).run(&mut Stuck),
            Err(SimError::Stuck { time: 0 })
        );
    }

    #[test]
    fn an_op_for_a_busy_process_is_reported() {
        let err = Simulation::new(1).run(&mut Busy);
        assert_eq!(
            err,
            Err(SimError::NotFree {
                time: 0,
                process: Process::Client(7)
            })
        );
    }

    #[test]
    fn histories_are_well_formed() {
        let mut inner = limit(500, repeat(OpSpec::new("read", json!(null))));
        let history = Simulation::new(2)
            .concurrency(4)
            .info_rate(0.1)
            .fail_rate(0.1)
            .run(&mut inner)
            .unwrap();
        assert_eq!(history.len(), 1000);
        let mut busy = std::collections::BTreeSet::new();
        for (i, op) in history.iter().enumerate() {
            assert_eq!(op.index, i as u64);
            if i > 0 {
                assert!(op.time >= history[i - 1].time);
            }
            if op.op_type == OpType::Invoke {
                assert!(busy.insert(op.process), "{} invoked twice", op.process);
            } else {
                assert!(busy.remove(&op.process));
            }
        }
        // Crashed processes never come back.
        let crashed: Vec<Process> = history
            .iter()
            .filter(|op| op.op_type == OpType::Info)
            .map(|op| op.process)
            .collect();
        for p in crashed {
            let last = history.iter().rposition(|op| op.process == p);
            assert_eq!(history[last.unwrap_or(0)].op_type, OpType::Info);
        }
    }

    #[test]
    fn limits_stop_an_endless_generator() {
        let mut inner = repeat(OpSpec::new("read", json!(null)));
        let history = Simulation::new(1).max_events(10).run(&mut inner).unwrap();
        assert_eq!(history.len(), 10);
        let history = Simulation::new(1)
            .max_time(Duration::from_millis(100))
            .run(&mut inner)
            .unwrap();
        assert!(history.last().is_some_and(|op| op.time <= 100_000_000));
    }
}
