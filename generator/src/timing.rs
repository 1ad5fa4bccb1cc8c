//! Generators that space operations in time: `stagger` (random) and `rate` (even).

use std::time::Duration;

use faultline_checker::history::Op;
use rand::RngExt;

use crate::basic::nanos;
use crate::context::Context;
use crate::generator::{GenOp, Generator};

/// The time before which a spaced generator issues nothing: what `stagger` and `rate`
/// share. They differ only in how the next time follows an issued operation.
#[derive(Default)]
struct Gate {
    next: Option<u64>,
}

impl Gate {
    /// Pending until the gate's time; then asks `inner`, and when it issues an operation
    /// moves the gate to `next_after(ctx, now, previous gate time)`.
    fn op<G: Generator>(
        &mut self,
        ctx: &mut Context,
        inner: &mut G,
        next_after: impl FnOnce(&mut Context, u64, Option<u64>) -> u64,
    ) -> GenOp {
        let now = ctx.time();
        if let Some(next) = self.next.filter(|next| now < *next) {
            return GenOp::Pending {
                retry_at: Some(next),
            };
        }
        let answer = inner.op(ctx);
        if let GenOp::Op { .. } = answer {
            self.next = Some(next_after(ctx, now, self.next));
        }
        answer
    }
}

/// Random spacing. See [`stagger`].
pub struct Stagger<G> {
    max_gap: u64,
    gate: Gate,
    inner: G,
}

/// A generator like `inner` whose operations are spaced by uniformly random gaps in
/// `[0, 2 * mean)`, drawn from the context's seeded RNG: about one operation per `mean`
/// over the whole generator, not per process (Jepsen's pure `stagger`). It does not
/// catch up on operations it could not issue while every process was busy.
pub fn stagger<G: Generator>(mean: Duration, inner: G) -> Stagger<G> {
    Stagger {
        max_gap: nanos(mean).saturating_mul(2),
        gate: Gate::default(),
        inner,
    }
}

impl<G: Generator> Generator for Stagger<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let max_gap = self.max_gap;
        self.gate.op(ctx, &mut self.inner, |ctx, now, _| {
            let gap = if max_gap == 0 {
                0
            } else {
                ctx.rng().random_range(0..max_gap)
            };
            now.saturating_add(gap)
        })
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        self.inner.update(ctx, event);
    }
}

/// Even spacing. See [`rate`].
pub struct Rate<G> {
    interval: u64,
    gate: Gate,
    inner: G,
}

/// A generator like `inner` that emits at most `per_second` operations per second in
/// total, evenly spaced. When it falls behind (every process busy), it resumes without
/// bursting to catch up: at most one operation is issued late. A rate that is not
/// positive and finite means no limit.
pub fn rate<G: Generator>(per_second: f64, inner: G) -> Rate<G> {
    let interval = if per_second.is_finite() && per_second > 0.0 {
        (1e9 / per_second).round() as u64
    } else {
        0
    };
    Rate {
        interval,
        gate: Gate::default(),
        inner,
    }
}

impl<G: Generator> Generator for Rate<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let interval = self.interval;
        self.gate.op(ctx, &mut self.inner, |_, now, previous| {
            previous.unwrap_or(now).saturating_add(interval).max(now)
        })
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        self.inner.update(ctx, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Simulation, invocations};
    use crate::{OpSpec, repeat, time_limit};
    use serde_json::json;

    fn read() -> OpSpec {
        OpSpec::new("read", json!(null))
    }

    #[test]
    fn stagger_averages_the_mean_interval() {
        let mut inner = time_limit(
            Duration::from_secs(10),
            stagger(Duration::from_millis(10), repeat(read())),
        );
        let history = Simulation::new(11).concurrency(10).run(&mut inner).unwrap();
        let n = invocations(&history).len();
        // 10 s at one per 10 ms on average: about 1000.
        assert!((850..1150).contains(&n), "{n} operations");
    }

    #[test]
    fn stagger_gaps_vary_and_stay_below_twice_the_mean() {
        let mut inner = time_limit(
            Duration::from_secs(1),
            stagger(Duration::from_millis(10), repeat(read())),
        );
        let history = Simulation::new(5)
            .concurrency(10)
            .latency(Duration::from_micros(10), Duration::from_micros(20))
            .run(&mut inner)
            .unwrap();
        let times: Vec<i64> = invocations(&history).iter().map(|op| op.time).collect();
        let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g < 20_000_000));
        assert!(gaps.iter().any(|g| *g < 5_000_000) && gaps.iter().any(|g| *g > 15_000_000));
    }

    #[test]
    fn rate_spaces_operations_evenly() {
        let mut inner = time_limit(Duration::from_secs(2), rate(500.0, repeat(read())));
        let history = Simulation::new(1)
            .concurrency(10)
            .latency(Duration::from_micros(100), Duration::from_micros(200))
            .run(&mut inner)
            .unwrap();
        let times: Vec<i64> = invocations(&history).iter().map(|op| op.time).collect();
        assert_eq!(times.len(), 1000);
        assert!(times.windows(2).all(|w| w[1] - w[0] == 2_000_000));
    }

    #[test]
    fn rate_does_not_burst_after_falling_behind() {
        // One process and 50 ms latency against 1000/s: the process is the bottleneck,
        // and operations follow each completion, never two at the same instant.
        let mut inner = time_limit(Duration::from_secs(1), rate(1000.0, repeat(read())));
        let history = Simulation::new(1)
            .concurrency(1)
            .latency(Duration::from_millis(50), Duration::from_millis(50))
            .run(&mut inner)
            .unwrap();
        let n = invocations(&history).len();
        assert!((19..=21).contains(&n), "{n} operations");
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let mut inner = time_limit(Duration::from_millis(10), rate(0.0, repeat(read())));
        let history = Simulation::new(1)
            .concurrency(2)
            .latency(Duration::from_millis(1), Duration::from_millis(1))
            .run(&mut inner)
            .unwrap();
        assert_eq!(invocations(&history).len(), 20);
    }
}
