//! The interpreter: drives a generator against real clients and a real nemesis, on the
//! wall clock, and records every event (Jepsen's `generator.interpreter`).
//!
//! One loop owns the generator, the context and the recorder. It asks the generator for
//! operations while processes are free, hands each to its worker (a task per client
//! thread, holding that thread's store connection; one task for the nemesis), and
//! records completions as they come back. A client operation that ends in `info` retires
//! its process: the thread continues as process `p + concurrency` with a fresh
//! [`Session`] (a new connection, or a new external client program). Operations still running when the run is stopped stay open in the
//! history, which the spec treats as `info`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use faultline_checker::{Op, OpType, Process};
use faultline_generator::{Context, GenOp, Generator, OpSpec};
use faultline_nemesis::Nemesis;
use faultline_workloads::store::Store;
use faultline_workloads::workload::{Completion, WorkloadClient};
use serde_json::Value;
use tokio::sync::mpsc;

use super::recorder::Recorder;
use crate::session::{Session, SessionFactory, SessionFuture};

/// Makes a fresh store for a client thread (`thread` spreads threads over nodes).
pub type StoreFactory = Arc<dyn Fn(usize) -> Box<dyn Store> + Send + Sync>;

/// A built-in client: a workload's [`WorkloadClient`] on a [`Store`].
pub struct StoreSession {
    /// How operations map onto transactions.
    pub client: Arc<dyn WorkloadClient>,
    /// The connection.
    pub store: Box<dyn Store>,
}

impl Session for StoreSession {
    fn invoke<'a>(&'a mut self, process: Process, op: &'a OpSpec) -> SessionFuture<'a> {
        Box::pin(async move { Ok(self.client.invoke(self.store.as_mut(), process, op).await) })
    }
}

/// Sessions of built-in clients: `client` on a fresh store from `stores`.
pub fn store_sessions(client: Arc<dyn WorkloadClient>, stores: StoreFactory) -> SessionFactory {
    Arc::new(move |thread, _process| {
        Box::new(StoreSession {
            client: Arc::clone(&client),
            store: stores(thread),
        }) as Box<dyn Session>
    })
}

/// Live counters, read by the progress display.
#[derive(Debug, Default)]
pub struct Stats {
    /// Client operations invoked.
    pub invoked: AtomicU64,
    /// Completed `ok`.
    pub ok: AtomicU64,
    /// Completed `fail`.
    pub fail: AtomicU64,
    /// Completed `info`.
    pub info: AtomicU64,
    /// The fault in place now, for people.
    pub fault: Mutex<String>,
}

/// How a run of the interpreter ended.
pub struct Outcome {
    /// The nemesis failed (the run was stopped), with the reason.
    pub harness_failure: Option<String>,
    /// The nemesis, back from its last operation (to heal what it did).
    pub faults: Option<Box<dyn Nemesis>>,
    /// When the interpreter started.
    pub elapsed: Duration,
}

/// What the interpreter needs.
pub struct Interpreter {
    /// Client threads.
    pub concurrency: usize,
    /// The generator's seed.
    pub seed: u64,
    /// Each process's client.
    pub sessions: SessionFactory,
    /// The nemesis, if any.
    pub faults: Option<Box<dyn Nemesis>>,
    /// A client operation's time limit (beyond the store's own).
    pub op_timeout: Duration,
    /// Shared counters.
    pub stats: Arc<Stats>,
}

enum Done {
    Client(Process, Completion, Option<String>),
    Nemesis(Result<Value, String>, Box<dyn Nemesis>),
}

impl Interpreter {
    /// Runs `generator` to exhaustion (or until stopped), recording into `recorder`.
    pub async fn run(
        mut self,
        generator: &mut dyn Generator,
        recorder: &mut Recorder,
        start: Instant,
    ) -> Result<Outcome> {
        let mut ctx = Context::new(self.seed, self.concurrency, self.faults.is_some());
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let workers: Vec<mpsc::UnboundedSender<(Process, OpSpec)>> = (0..self.concurrency)
            .map(|thread| self.spawn_worker(thread, done_tx.clone()))
            .collect();
        let mut faults = self.faults.take();
        // Each busy process's invocation, for its completion's `f`, `key` and value.
        let mut open: HashMap<Process, Op> = HashMap::new();
        let mut in_flight = 0usize;
        let mut exhausted = false;
        let mut harness_failure = None;
        let now = |start: Instant| u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        loop {
            let stopping = harness_failure.is_some();
            ctx.set_time(now(start));
            let mut wake = None;
            while !exhausted && !stopping && !ctx.free_processes().is_empty() {
                match generator.op(&mut ctx) {
                    GenOp::Op { process, op } => {
                        if !ctx.is_free(process) {
                            return Err(anyhow!(
                                "the generator gave an operation to process {process}, which is busy (a bug in the workload's generator)"
                            ));
                        }
                        let time = ctx.time();
                        let event = op.invoke(recorder.next_index(), time, process);
                        ctx.set_busy(process);
                        generator.update(&mut ctx, &event);
                        open.insert(process, event.clone());
                        recorder.record(event).context("cannot write the history")?;
                        in_flight += 1;
                        match process {
                            Process::Client(p) => {
                                self.stats.invoked.fetch_add(1, Ordering::Relaxed);
                                let thread = (p % self.concurrency as u64) as usize;
                                workers[thread]
                                    .send((process, op))
                                    .map_err(|_| anyhow!("client thread {thread} is gone"))?;
                            }
                            Process::Nemesis => {
                                let mut nemesis = faults.take().ok_or_else(|| {
                                    anyhow!("the nemesis was given two operations at once")
                                })?;
                                if let Ok(mut fault) = self.stats.fault.lock() {
                                    *fault = describe_fault(&op);
                                }
                                let tx = done_tx.clone();
                                tokio::task::spawn_blocking(move || {
                                    let result =
                                        nemesis.invoke(&op.f, &op.value).map_err(|e| e.to_string());
                                    let _ = tx.send(Done::Nemesis(result, nemesis));
                                });
                            }
                        }
                    }
                    GenOp::Pending { retry_at } => {
                        wake = retry_at;
                        break;
                    }
                    GenOp::Exhausted => exhausted = true,
                }
            }
            if in_flight == 0 && (exhausted || stopping) {
                break;
            }
            if in_flight == 0 && wake.is_none() && !exhausted {
                return Err(anyhow!(
                    "the generator is waiting with nothing running and no time to wake up at (a bug in the workload's generator)"
                ));
            }
            let sleep_until = wake
                .filter(|_| !stopping)
                .map(|t| start + Duration::from_nanos(t))
                .unwrap_or_else(|| Instant::now() + super::recorder::FLUSH_INTERVAL);
            let done = tokio::select! {
                done = done_rx.recv() => done,
                () = tokio::time::sleep_until(sleep_until.into()) => None,
            };
            recorder.tick().context("cannot write the history")?;
            let Some(done) = done else { continue };
            in_flight -= 1;
            ctx.set_time(now(start));
            let time = i64::try_from(ctx.time()).unwrap_or(i64::MAX);
            let index = recorder.next_index();
            let (event, process) = match done {
                Done::Client(process, completion, failure) => {
                    if let Some(reason) = failure
                        && harness_failure.is_none()
                    {
                        harness_failure = Some(reason);
                    }
                    let counter = match completion.op_type {
                        OpType::Ok => &self.stats.ok,
                        OpType::Fail => &self.stats.fail,
                        _ => &self.stats.info,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let invoke = take_invoke(&mut open, process)?;
                    let mut event = Op::new(
                        index,
                        time,
                        process,
                        completion.op_type,
                        &invoke.f,
                        completion.value,
                    );
                    event.key = invoke.key.clone();
                    event.node = completion.node;
                    event.error = completion.error;
                    (event, process)
                }
                Done::Nemesis(result, nemesis) => {
                    faults = Some(nemesis);
                    let invoke = take_invoke(&mut open, Process::Nemesis)?;
                    let mut event = Op::new(
                        index,
                        time,
                        Process::Nemesis,
                        OpType::Info,
                        &invoke.f,
                        Value::Null,
                    );
                    match result {
                        Ok(value) => event.value = value,
                        Err(reason) => {
                            event.value = invoke.value.clone();
                            event.error = Some(reason.clone());
                            harness_failure = Some(format!("the nemesis failed: {reason}"));
                        }
                    }
                    if (event.f.starts_with("stop") || event.f == "start" || event.f == "resume")
                        && let Ok(mut fault) = self.stats.fault.lock()
                    {
                        fault.clear();
                    }
                    (event, Process::Nemesis)
                }
            };
            match (event.op_type, process) {
                (OpType::Info, Process::Client(_)) => {
                    ctx.retire(process);
                }
                _ => ctx.set_free(process),
            }
            generator.update(&mut ctx, &event);
            recorder.record(event).context("cannot write the history")?;
        }
        Ok(Outcome {
            harness_failure,
            faults,
            elapsed: start.elapsed(),
        })
    }

    /// A client thread: performs its operations one at a time, with a fresh session for
    /// each new process (after a crash, the process's connection is not reused).
    fn spawn_worker(
        &self,
        thread: usize,
        done: mpsc::UnboundedSender<Done>,
    ) -> mpsc::UnboundedSender<(Process, OpSpec)> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Process, OpSpec)>();
        let sessions = Arc::clone(&self.sessions);
        let limit = self.op_timeout;
        tokio::spawn(async move {
            let mut current: Option<(Process, Box<dyn Session>)> = None;
            while let Some((process, op)) = rx.recv().await {
                if current.as_ref().is_none_or(|(p, _)| *p != process) {
                    // The old session (and any program it runs) goes before the new one.
                    drop(current.take());
                    current = Some((process, sessions(thread, process)));
                }
                let Some((_, session)) = current.as_mut() else {
                    continue;
                };
                let (completion, failure) =
                    match tokio::time::timeout(limit, session.invoke(process, &op)).await {
                        Ok(Ok(completion)) => (completion, None),
                        Ok(Err(failure)) => (failure.completion, Some(failure.reason)),
                        Err(_) => (Completion::info(op.value.clone(), "timeout", None), None),
                    };
                if done
                    .send(Done::Client(process, completion, failure))
                    .is_err()
                {
                    break;
                }
            }
        });
        tx
    }
}

/// The invocation of `process`'s open operation, which is completing.
fn take_invoke(open: &mut HashMap<Process, Op>, process: Process) -> Result<Op> {
    open.remove(&process)
        .ok_or_else(|| anyhow!("a completion for process {process}, which has no open operation"))
}

/// A few words on a fault being applied, for the progress line.
fn describe_fault(op: &OpSpec) -> String {
    match &op.value {
        Value::Null => op.f.clone(),
        Value::String(s) => format!("{} {s}", op.f),
        v => format!("{} {v}", op.f),
    }
}
