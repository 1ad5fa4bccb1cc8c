//! Running a built [`Test`] on its deployment: the workload's setup, then the
//! interpreter (clients and the nemesis by the generator, on a single-threaded tokio
//! runtime), then healing what the nemesis left. Returns the history and the run's
//! figures ([`RunStats`]) and, apart, what went wrong in the harness.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use faultline_checker::{Op, OpType};
use faultline_workloads::store::Store;
use faultline_workloads::store::etcd::EtcdStore;
use faultline_workloads::store::kv::KvStore;
use faultline_workloads::store::postgres::PostgresStore;
use faultline_workloads::store::zookeeper::ZookeeperStore;
use serde::Serialize;
use serde_json::json;

use super::database::Clients;
use super::deploy::Deployment;
use super::interpreter::{Interpreter, Stats, StoreFactory, store_sessions};
use super::test::Operations;
use super::uncertainty::{Uncertainty, uncertainty};
use super::{faults, progress, recorder};
use crate::client::ExternalClient;
use crate::config::{Routing, RunConfig};

/// The run's figures, `results.json`'s `run` (field for field as before: readers such
/// as the report, the store's index and the benchmarks use them).
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// Seconds from the interpreter's start to its end.
    pub elapsed_seconds: f64,
    /// Client operations completed.
    pub client_ops: usize,
    /// Client operations completed per second.
    pub ops_per_second: f64,
    /// Completed `ok`.
    pub ok: u64,
    /// Completed `fail`.
    pub fail: u64,
    /// Completed `info`.
    pub info: u64,
    /// The controller's CPU time during the run.
    pub controller_cpu_seconds: f64,
    /// Time spent writing the history.
    pub history_write_seconds: f64,
    /// That time's share of the controller's CPU time.
    pub history_write_cpu_share: f64,
    /// Client programs started (with `--client-cmd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_programs: Option<u64>,
    /// Client programs restarted (with `--client-cmd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_restarts: Option<u64>,
    /// The `info` rates and in-flight-at-fault counts, from the history.
    #[serde(flatten)]
    pub uncertainty: Uncertainty,
}

/// What a run of the test produced.
pub struct Driven {
    /// The history, in order.
    pub ops: Vec<Op>,
    /// The run's figures.
    pub stats: RunStats,
    /// What stopped the run or made its history meaningless (a nemesis or healing
    /// failure, a client program that never succeeded): a harness failure.
    pub failure: Option<String>,
}

/// Runs the operations `ops` of the test `config` describes, and its nemesis, on
/// `deployment`, recording into `run_dir/history.jsonl`. An error stops the run
/// before a history exists.
pub fn drive(
    config: &RunConfig,
    ops: Operations,
    deployment: &Deployment,
    run_dir: &Path,
) -> Result<Driven> {
    let Operations {
        clients,
        client,
        setup,
        mut generator,
    } = ops;
    // A schedule aiming at the previous leader needs every leader seen.
    let track_leaders = config.schedule.as_ref().is_some_and(|steps| {
        steps.iter().any(|s| {
            s.value
                .to_string()
                .contains(faultline_nemesis::roles::PREVIOUS_LEADER)
        })
    });
    let faults_nemesis = faults::build(deployment, &config.nemesis, config.seed, track_leaders)?;
    let external = match &clients {
        Clients::Program(command) => Some(Arc::new(
            ExternalClient::new(
                command.clone(),
                config.op_timeout,
                deployment.client_addrs(),
                Some(&run_dir.join("clients.log")),
            )
            .with_context(|| format!("cannot create {}", run_dir.join("clients.log").display()))?,
        )),
        Clients::Kv | Clients::Etcd(_) | Clients::Postgres(_) | Clients::Zookeeper(_) => None,
    };
    let stores = store_factory(
        &clients,
        config.op_timeout,
        config.client_routing,
        deployment,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut recorder = recorder::Recorder::create(&run_dir.join("history.jsonl"))
        .with_context(|| format!("cannot create {}", run_dir.join("history.jsonl").display()))?;
    let stats = Arc::new(Stats::default());
    let cpu_before = cpu_time();
    let outcome = runtime.block_on(async {
        match &external {
            Some(external) => crate::client::run_setup(external, &setup).await?,
            None => run_setup(&stores, &setup).await?,
        }
        let planned = config.time_limit + config.recovery_time;
        let progress = progress::Progress::start(Arc::clone(&stats), planned);
        let interpreter = Interpreter {
            concurrency: config.concurrency,
            seed: config.seed,
            sessions: match &external {
                Some(external) => external.sessions(),
                None => store_sessions(Arc::from(client), stores),
            },
            faults: faults_nemesis,
            // A safety net: sessions enforce the time-out themselves (a program's first
            // request gets its start-up grace on top).
            op_timeout: config.op_timeout
                + Duration::from_secs(1)
                + if external.is_some() {
                    crate::client::STARTUP_GRACE
                } else {
                    Duration::ZERO
                },
            stats: Arc::clone(&stats),
        };
        let outcome = interpreter
            .run(&mut generator, &mut recorder, Instant::now())
            .await;
        progress.finish();
        outcome
    });
    let cpu = cpu_time().saturating_sub(cpu_before);
    // Heal whatever the nemesis left, even after a failure.
    let mut heal_error = None;
    let outcome = match outcome {
        Ok(mut outcome) => {
            if let Some(n) = outcome.faults.as_mut() {
                heal_error = n.heal().err().map(|e| e.to_string());
            }
            outcome
        }
        Err(e) => {
            let _ = recorder.finish();
            return Err(e);
        }
    };
    let (ops, writing) = recorder.finish().context("cannot write the history")?;
    let client_ops = ops
        .iter()
        .filter(|o| o.is_client() && o.op_type != OpType::Invoke)
        .count();
    let elapsed = outcome.elapsed.as_secs_f64();
    let ok = stats.ok.load(Ordering::Relaxed);
    let stats = RunStats {
        elapsed_seconds: elapsed,
        client_ops,
        ops_per_second: client_ops as f64 / elapsed.max(1e-9),
        ok,
        fail: stats.fail.load(Ordering::Relaxed),
        info: stats.info.load(Ordering::Relaxed),
        controller_cpu_seconds: cpu.as_secs_f64(),
        history_write_seconds: writing.as_secs_f64(),
        history_write_cpu_share: writing.as_secs_f64() / cpu.as_secs_f64().max(1e-9),
        client_programs: external.as_ref().map(|e| e.programs()),
        client_restarts: external.as_ref().map(|e| e.restarts()),
        uncertainty: uncertainty(&ops),
    };
    // A client program that never completed anything gives a history no checker can
    // fault: say so rather than report it valid.
    let client_failure = external
        .as_ref()
        .filter(|_| ok == 0 && client_ops > 0)
        .map(|external| {
            format!(
                "the client program `{}` completed none of its {client_ops} operations ok (see {} and the history's errors; check it with `faultline client-test`)",
                external.command(),
                run_dir.join("clients.log").display()
            )
        });
    let failure = outcome
        .harness_failure
        .or(client_failure)
        .or(heal_error.map(|e| format!("healing failed: {e}")));
    Ok(Driven {
        ops,
        stats,
        failure,
    })
}

/// How client threads connect with a built-in client: thread `t` starts at node `t %
/// nodes` (pinned: stays there, also as each new process after an `info`, as Jepsen
/// binds a node to the worker thread). (A client program connects by itself: its
/// factory is never called.)
fn store_factory(
    clients: &Clients,
    timeout: Duration,
    routing: Routing,
    deployment: &Deployment,
) -> StoreFactory {
    let addrs = deployment.client_addrs();
    match *clients {
        Clients::Etcd(mode) => Arc::new(move |thread| {
            Box::new(EtcdStore::new(addrs.clone(), thread, timeout, mode).with_routing(routing))
                as Box<dyn Store>
        }),
        Clients::Postgres(isolation) => Arc::new(move |thread| {
            Box::new(PostgresStore::new(
                addrs.clone(),
                thread,
                timeout,
                isolation,
            )) as Box<dyn Store>
        }),
        Clients::Zookeeper(mode) => Arc::new(move |thread| {
            Box::new(ZookeeperStore::new(&addrs, thread, timeout, mode)) as Box<dyn Store>
        }),
        Clients::Kv | Clients::Program(_) => Arc::new(move |thread| {
            Box::new(KvStore::new(addrs.clone(), thread, timeout).with_routing(routing))
                as Box<dyn Store>
        }),
    }
}

/// Waits until the database commits a write (a leader is elected), then runs the
/// workload's setup transactions; each is retried for up to 60 s.
async fn run_setup(
    stores: &StoreFactory,
    setup: &[Vec<faultline_workloads::store::Micro>],
) -> Result<()> {
    use faultline_workloads::store::Micro;
    let probe = vec![Micro::Write("faultline-ready".into(), json!(true))];
    let mut store = stores(0);
    for txn in std::iter::once(&probe).chain(setup) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match store.txn(txn).await {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Err(anyhow!(
                        "the database did not accept a write for 60 s (last: {e}); see the node logs"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// This process's CPU time (user + system) so far.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::new(
                    tv.tv_sec().max(0) as u64,
                    (tv.tv_usec().max(0) as u32) * 1000,
                )
            };
            t(usage.user_time()) + t(usage.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}
