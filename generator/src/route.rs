//! Generators that choose among generators or route processes to them: `any`, `mix`,
//! `on_processes`, `clients`, `nemesis`, `each_thread`, `synchronize`, `phases`.

use std::collections::BTreeMap;

use faultline_checker::history::{Op, Process};

use crate::basic::{Seq, seq};
use crate::context::Context;
use crate::generator::{BoxGen, GenOp, Generator, earliest};

/// How [`Any`] picks the child it asks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    RoundRobin,
    Random,
}

/// Several generators at once. See [`any`] and [`mix`].
pub struct Any {
    gens: Vec<Option<BoxGen>>,
    next: usize,
    choice: Choice,
}

/// A generator that takes operations from whichever of `gens` has one, asking them in
/// turn (round robin, so none starves). Pending when none has an operation; exhausted
/// when all are. Updates go to every generator (Jepsen's `any`).
pub fn any(gens: Vec<BoxGen>) -> Any {
    Any {
        gens: gens.into_iter().map(Some).collect(),
        next: 0,
        choice: Choice::RoundRobin,
    }
}

/// A random mixture (Jepsen's `mix`): each operation comes from one of `gens` chosen
/// uniformly with the context's RNG; if that one has nothing now, the others are asked
/// in turn. Exhausted generators drop out. Updates go to every generator.
pub fn mix(gens: Vec<BoxGen>) -> Any {
    Any {
        choice: Choice::Random,
        ..any(gens)
    }
}

impl Generator for Any {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let n = self.gens.len();
        if n == 0 {
            return GenOp::Exhausted;
        }
        let start = match self.choice {
            Choice::RoundRobin => self.next,
            Choice::Random => ctx.random_below(n as u64) as usize,
        };
        let mut retry_at = None;
        let mut live = false;
        for i in (0..n).map(|k| (start + k) % n) {
            let Some(inner) = &mut self.gens[i] else {
                continue;
            };
            match inner.op(ctx) {
                GenOp::Op { process, op } => {
                    self.next = (i + 1) % n;
                    return GenOp::Op { process, op };
                }
                GenOp::Pending { retry_at: t } => {
                    live = true;
                    retry_at = earliest(retry_at, t);
                }
                GenOp::Exhausted => self.gens[i] = None,
            }
        }
        if live {
            GenOp::Pending { retry_at }
        } else {
            GenOp::Exhausted
        }
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        for inner in self.gens.iter_mut().flatten() {
            inner.update(ctx, event);
        }
    }
}

/// A generator confined to some processes. See [`on_processes`].
pub struct OnProcesses<F, G> {
    keep: F,
    inner: G,
}

/// A generator like `inner` that only the processes for which `keep` is true use: `inner`
/// sees a context restricted to them and receives only their events (Jepsen's `on`).
pub fn on_processes<F, G>(keep: F, inner: G) -> OnProcesses<F, G>
where
    F: Fn(Process) -> bool + Send,
    G: Generator,
{
    OnProcesses { keep, inner }
}

impl<F, G> Generator for OnProcesses<F, G>
where
    F: Fn(Process) -> bool + Send,
    G: Generator,
{
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let inner = &mut self.inner;
        ctx.restrict(&self.keep, |ctx| inner.op(ctx))
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        if (self.keep)(event.process) {
            let inner = &mut self.inner;
            ctx.restrict(&self.keep, |ctx| inner.update(ctx, event));
        }
    }
}

fn is_client(process: Process) -> bool {
    matches!(process, Process::Client(_))
}

fn is_nemesis(process: Process) -> bool {
    process == Process::Nemesis
}

/// `inner` for the client processes only.
pub fn clients<G: Generator>(inner: G) -> OnProcesses<fn(Process) -> bool, G> {
    on_processes(is_client as fn(Process) -> bool, inner)
}

/// `inner` for the nemesis only.
pub fn nemesis<G: Generator>(inner: G) -> OnProcesses<fn(Process) -> bool, G> {
    on_processes(is_nemesis as fn(Process) -> bool, inner)
}

/// Client operations from `client_gen` and nemesis operations from `nemesis_gen`, at the
/// same time (Jepsen's two-argument `clients`/`nemesis`). Exhausted when both are.
pub fn clients_and_nemesis<C, N>(client_gen: C, nemesis_gen: N) -> Any
where
    C: Generator + 'static,
    N: Generator + 'static,
{
    any(vec![
        clients(client_gen).boxed(),
        nemesis(nemesis_gen).boxed(),
    ])
}

/// One generator per client thread. See [`each_thread`].
pub struct EachThread<F, G> {
    make: F,
    gens: BTreeMap<usize, Option<G>>,
    next: usize,
}

/// A generator that gives each client thread its own copy of a generator, made by
/// `make(thread)` when the thread first asks (Jepsen's `each-thread`). Each copy sees a
/// context with just its thread's current process, and receives that process's events.
/// Since a thread keeps its number when its process crashes and is replaced, the
/// thread's generator carries on. The nemesis is not a thread and gets nothing.
/// Exhausted when every thread's copy is.
pub fn each_thread<F, G>(make: F) -> EachThread<F, G>
where
    F: FnMut(usize) -> G + Send,
    G: Generator,
{
    EachThread {
        make,
        gens: BTreeMap::new(),
        next: 0,
    }
}

impl<F, G> Generator for EachThread<F, G>
where
    F: FnMut(usize) -> G + Send,
    G: Generator,
{
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        let free: Vec<(usize, Process)> = ctx
            .free_processes()
            .iter()
            .filter_map(|p| ctx.thread(*p).map(|t| (t, *p)))
            .collect();
        let n = free.len();
        let start = if n == 0 { 0 } else { self.next % n };
        let mut retry_at = None;
        for k in 0..n {
            let (thread, process) = free[(start + k) % n];
            let slot = self
                .gens
                .entry(thread)
                .or_insert_with(|| Some((self.make)(thread)));
            let Some(inner) = slot else { continue };
            match ctx.restrict(|p| p == process, |ctx| inner.op(ctx)) {
                GenOp::Op { process, op } => {
                    self.next = start + k + 1;
                    return GenOp::Op { process, op };
                }
                GenOp::Pending { retry_at: t } => retry_at = earliest(retry_at, t),
                GenOp::Exhausted => *slot = None,
            }
        }
        let threads: Vec<usize> = ctx
            .all_processes()
            .iter()
            .filter_map(|p| ctx.thread(*p))
            .collect();
        let all_done = threads
            .iter()
            .all(|t| matches!(self.gens.get(t), Some(None)));
        if all_done {
            GenOp::Exhausted
        } else {
            GenOp::Pending { retry_at }
        }
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        let process = event.process;
        let Some(thread) = ctx.thread(process) else {
            return;
        };
        if let Some(Some(inner)) = self.gens.get_mut(&thread) {
            // After an `info` the event's process is retired; the thread's generator
            // sees its replacement (or nothing, if the thread is not in this context).
            let current = ctx
                .all_processes()
                .iter()
                .copied()
                .find(|p| ctx.thread(*p) == Some(thread));
            let current = current.unwrap_or(process);
            ctx.restrict(|p| p == current, |ctx| inner.update(ctx, event));
        }
    }
}

/// Waits for quiescence, then runs a generator. See [`synchronize`].
pub struct Synchronize<G> {
    started: bool,
    inner: G,
}

/// A generator that waits until every process in its context is free, then behaves as
/// `inner` from then on.
pub fn synchronize<G: Generator>(inner: G) -> Synchronize<G> {
    Synchronize {
        started: false,
        inner,
    }
}

impl<G: Generator> Generator for Synchronize<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        if !self.started {
            if ctx.free_processes().len() < ctx.all_processes().len() {
                return GenOp::WAIT;
            }
            self.started = true;
        }
        self.inner.op(ctx)
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        if self.started {
            self.inner.update(ctx, event);
        }
    }
}

/// Phases: each generator runs to exhaustion and every operation it started completes
/// before the next begins (Jepsen's `phases`): e.g. the main phase, then healing, then
/// the final reads.
pub fn phases(gens: Vec<BoxGen>) -> Seq {
    seq(gens
        .into_iter()
        .map(|inner| synchronize(inner).boxed())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Simulation, invocations};
    use crate::{OpSpec, limit, once, repeat, time_limit, until_ok};
    use faultline_checker::history::OpType;
    use serde_json::json;
    use std::time::Duration;

    fn op(f: &str) -> OpSpec {
        OpSpec::new(f, json!(null))
    }

    #[test]
    fn any_takes_from_all_until_all_are_exhausted() {
        let mut inner = any(vec![
            limit(5, repeat(op("a"))).boxed(),
            limit(3, repeat(op("b"))).boxed(),
        ]);
        let history = Simulation::new(1).concurrency(2).run(&mut inner).unwrap();
        let fs: Vec<String> = invocations(&history)
            .iter()
            .map(|op| op.f.clone())
            .collect();
        assert_eq!(fs.iter().filter(|f| *f == "a").count(), 5);
        assert_eq!(fs.iter().filter(|f| *f == "b").count(), 3);
        assert_eq!(&fs[..2], ["a", "b"], "round robin");
    }

    #[test]
    fn mix_draws_each_generator_about_equally() {
        let gens = (0..4)
            .map(|i| repeat(op(&format!("f{i}"))).boxed())
            .collect();
        let mut inner = limit(4000, mix(gens));
        let history = Simulation::new(9).concurrency(4).run(&mut inner).unwrap();
        let ops = invocations(&history);
        for i in 0..4 {
            let n = ops.iter().filter(|op| op.f == format!("f{i}")).count();
            assert!((850..1150).contains(&n), "f{i}: {n}");
        }
    }

    #[test]
    fn clients_and_nemesis_route_to_the_right_processes() {
        let clients_gen = time_limit(Duration::from_secs(1), repeat(op("read")));
        let nemesis_gen = limit(3, repeat(op("kill")));
        let mut inner = clients_and_nemesis(clients_gen, nemesis_gen);
        let history = Simulation::new(1)
            .concurrency(3)
            .nemesis(true)
            .run(&mut inner)
            .unwrap();
        let ops = invocations(&history);
        assert!(
            ops.iter()
                .filter(|op| op.f == "read")
                .all(|op| op.is_client())
        );
        let kills: Vec<_> = ops.iter().filter(|op| op.f == "kill").collect();
        assert_eq!(kills.len(), 3);
        assert!(kills.iter().all(|op| op.process == Process::Nemesis));
    }

    #[test]
    fn each_thread_gives_every_thread_its_own_generator() {
        let mut inner = each_thread(|thread| limit(2, repeat(op(&format!("t{thread}")))));
        let history = Simulation::new(1).concurrency(3).run(&mut inner).unwrap();
        let ops = invocations(&history);
        assert_eq!(ops.len(), 6);
        for op in &ops {
            let Process::Client(p) = op.process else {
                panic!("nemesis op")
            };
            assert_eq!(op.f, format!("t{}", p % 3));
        }
    }

    #[test]
    fn each_thread_until_ok_survives_crashed_processes() {
        // Final reads: every thread reads until one of its reads is ok, even though
        // many operations crash and their processes are replaced.
        let mut inner = clients(each_thread(|_| until_ok(repeat(op("read")))));
        let history = Simulation::new(4)
            .concurrency(3)
            .info_rate(0.5)
            .run(&mut inner)
            .unwrap();
        let oks: Vec<_> = history
            .iter()
            .filter(|op| op.op_type == OpType::Ok)
            .collect();
        assert_eq!(oks.len(), 3);
        let mut threads: Vec<u64> = oks
            .iter()
            .filter_map(|op| match op.process {
                Process::Client(p) => Some(p % 3),
                Process::Nemesis => None,
            })
            .collect();
        threads.sort();
        assert_eq!(threads, [0, 1, 2]);
        assert!(history.iter().any(|op| op.op_type == OpType::Info));
    }

    #[test]
    fn phases_wait_for_operations_in_flight() {
        let mut inner = phases(vec![
            limit(7, repeat(op("write"))).boxed(),
            once(op("read")).boxed(),
        ]);
        let history = Simulation::new(2).concurrency(4).run(&mut inner).unwrap();
        let read_at = history.iter().position(|op| op.f == "read").unwrap_or(0);
        let writes_done = history
            .iter()
            .filter(|op| op.f == "write" && op.op_type != OpType::Invoke)
            .count();
        assert_eq!(
            history[..read_at]
                .iter()
                .filter(|op| op.f == "write" && op.op_type != OpType::Invoke)
                .count(),
            writes_done
        );
        assert_eq!(writes_done, 7);
    }

    #[test]
    fn synchronize_waits_for_every_process() {
        let mut ctx = Context::new(1, 2, false);
        ctx.set_busy(Process::Client(1));
        let mut inner = synchronize(once(op("read")));
        assert_eq!(inner.op(&mut ctx), GenOp::WAIT);
        ctx.set_free(Process::Client(1));
        assert!(matches!(inner.op(&mut ctx), GenOp::Op { .. }));
    }
}
