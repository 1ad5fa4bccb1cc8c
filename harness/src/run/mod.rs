//! `faultline run`: the whole test. Check everything that can refuse the run (before
//! its directory exists) → set up hosts → deploy the database → run clients
//! and nemesis by the generator for the time limit → heal → let the cluster recover →
//! final operations → collect node logs → tear down → check → `results.json` →
//! Jepsen's exit code.
//!
//! Harness failures (a fault that cannot be applied, a host that stops answering) are
//! kept apart from what the system did: the run stops cleanly, still heals, still
//! collects logs and tears down, writes `results.json` with the failure, and exits 255.

mod checking;
mod config;
mod deploy;
mod interpreter;
mod progress;
mod recorder;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use faultline_checker::{History, Results, Validity};
use faultline_clusters::cleanup::teardown_on_interrupt;
use faultline_generator::{
    BoxGen, Generator, clients, clients_and_nemesis, nemesis, phases, rate, sleep, time_limit,
};
use faultline_nemesis::{
    ClockNemesis, Compose, DiskNemesis, Fault, KillNemesis, Nemesis, Net, NetnsNet, PacketNemesis,
    PartitionNemesis, PauseNemesis, PowerNemesis, StormNemesis,
};
use faultline_workloads::store::Store;
use faultline_workloads::store::etcd::{EtcdStore, ReadMode};
use faultline_workloads::store::kv::KvStore;
use faultline_workloads::workload::{self, Workload, WorkloadOptions};
use serde_json::{Value, json};

pub use config::{ClusterKind, RunArgs, RunConfig};
pub(crate) use config::{toml_error, with_run_settings};
pub(crate) use deploy::{Deployment, Prepared};
pub(crate) use interpreter::{HarnessFailure, Session, SessionFactory, SessionFuture};
use interpreter::{Interpreter, Stats, StoreFactory, store_sessions};

use crate::client::ExternalClient;

use crate::error::UsageError;
use crate::output::{say, say_raw};

/// The longest the final phase (e.g. final reads) may take.
const FINAL_PHASE_LIMIT: Duration = Duration::from_secs(120);

/// Runs a test from its flags; returns the verdict.
pub fn run(args: &RunArgs) -> Result<Validity> {
    let config = RunConfig::resolve(args)?;
    execute(&config).map(|done| done.valid)
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The verdict.
    pub valid: Validity,
    /// The run's directory in the store (`results.json`, `history.jsonl`, …).
    pub run_dir: PathBuf,
}

/// Runs a test with a resolved configuration (used by `faultline run`, and by suites).
/// A harness failure is an error (exit 255); `results.json` is written either way.
pub fn execute(config: &RunConfig) -> Result<Finished> {
    let workload =
        workload::by_name(&config.workload, &WorkloadOptions::default()).map_err(UsageError)?;
    // Everything that can refuse the run happens before its directory exists.
    let prepared = Prepared::new(config)?;
    let run_dir = create_run_dir(config)?;
    fs::write(
        run_dir.join("config.json"),
        serde_json::to_string_pretty(config)? + "\n",
    )
    .with_context(|| format!("cannot write {}", run_dir.join("config.json").display()))?;
    eprintln!(
        "faultline: {} on {} {} node(s), {} for {} s, faults: {}, seed {}; writing {}",
        config.workload,
        config.nodes,
        config.db,
        config.concurrency,
        config.time_limit.as_secs_f64(),
        if config.nemesis.is_empty() {
            "none".to_string()
        } else {
            config.nemesis.join(",")
        },
        config.seed,
        run_dir.display()
    );

    let started = Instant::now();
    let deployment = prepared.deploy(config, &run_dir)?;
    point_latest(config, &run_dir);
    eprintln!(
        "faultline: {} serving on {} node(s) after {:.1} s",
        config.db,
        deployment.nodes.len(),
        started.elapsed().as_secs_f64()
    );
    let guard = teardown_on_interrupt(Arc::clone(&deployment.registry))
        .context("cannot install the Ctrl-C handler")?;
    let checker = Arc::clone(&workload.checker);
    let cluster_run = deployment.registry.run();
    let driven = drive(config, &deployment, workload, &run_dir);
    let log_problems = deployment.collect_logs(&run_dir);
    for problem in &log_problems {
        eprintln!("faultline: node logs: {problem}");
    }
    let teardown = deployment.teardown();
    drop(guard);
    if let Err(e) = &teardown {
        eprintln!(
            "faultline: teardown incomplete ({e:#}); run `faultline clean --store {}`",
            config.store.display()
        );
    }

    let history_path = run_dir.join("history.jsonl");
    let mut results = Results::default();
    results
        .extra
        .insert("name".into(), Value::from(config.name.clone()));
    results
        .extra
        .insert("seed".into(), Value::from(config.seed));
    results
        .extra
        .insert("cluster_run".into(), Value::from(cluster_run));
    results.extra.insert(
        "history".into(),
        Value::from(history_path.display().to_string()),
    );
    let (ops, stats) = match driven {
        Ok(done) => done,
        Err(failure) => {
            results
                .extra
                .insert("harness_error".into(), Value::from(format!("{failure:#}")));
            write_results(config, started, &run_dir, &results, Validity::Unknown)?;
            return Err(failure.context("the run stopped (harness failure)"));
        }
    };
    results.extra.insert("run".into(), stats.clone());
    write_nemesis_log(&run_dir, &ops)?;
    if let Some(failure) = stats.get("harness_failure").and_then(Value::as_str) {
        results
            .extra
            .insert("harness_error".into(), Value::from(failure));
        write_results(config, started, &run_dir, &results, Validity::Unknown)?;
        return Err(anyhow!("the run stopped (harness failure): {failure}"));
    }

    let history = History::from_ops(&history_path.display().to_string(), ops)
        .context("the recorded history is malformed (a bug in faultline)")?;
    let checking = Instant::now();
    let checked = checking::check(&history, &*checker, config.check_time_limit, &run_dir)
        .context("cannot check the history")?;
    results.record(checker.name(), &checked);
    let valid = results.valid();
    write_results(config, started, &run_dir, &results, valid)?;
    say_raw!(
        "{}",
        crate::summary::render(&history_path, checker.name(), &results, checking.elapsed())
    );
    say!("  results: {}", run_dir.join("results.json").display());
    Ok(Finished { valid, run_dir })
}

/// `STORE/NAME/TIME`, created. `latest` is not moved yet: see [`point_latest`].
pub(crate) fn create_run_dir(config: &RunConfig) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "");
    let test_dir = config.store.join(&config.name);
    let mut dir = test_dir.join(&stamp);
    for n in 1.. {
        if !dir.exists() {
            break;
        }
        dir = test_dir.join(format!("{stamp}-{n}"));
    }
    fs::create_dir_all(&dir)
        .map_err(|e| UsageError(format!("--store: cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Points `STORE/NAME/latest` at `run_dir`, and `STORE/latest` too (the newest run of
/// any test): once the run has deployed, so a run that never started leaves them where
/// they were.
pub(crate) fn point_latest(config: &RunConfig, run_dir: &Path) {
    let test_dir = config.store.join(&config.name);
    let latest = test_dir.join("latest");
    let _ = fs::remove_file(&latest);
    if let Some(name) = run_dir.file_name() {
        let _ = std::os::unix::fs::symlink(name, &latest);
    }
    let store_latest = config.store.join("latest");
    let _ = fs::remove_file(&store_latest);
    if let (Some(test), Some(run)) = (test_dir.file_name(), run_dir.file_name()) {
        let _ = std::os::unix::fs::symlink(Path::new(test).join(run), &store_latest);
    }
}

/// Writes `nemesis.jsonl`: the nemesis's lines of the history (what was done, when).
fn write_nemesis_log(run_dir: &Path, ops: &[faultline_checker::Op]) -> Result<()> {
    let mut text = String::new();
    for op in ops.iter().filter(|op| !op.is_client()) {
        text.push_str(&serde_json::to_string(op)?);
        text.push('\n');
    }
    let path = run_dir.join("nemesis.jsonl");
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `results.json`, then `junit.xml` (the run as one test case, expected valid)
/// and `report.html`.
fn write_results(
    config: &RunConfig,
    started: Instant,
    run_dir: &Path,
    results: &Results,
    valid: Validity,
) -> Result<()> {
    let mut json = results.to_json();
    json["valid"] = valid.to_json();
    let path = run_dir.join("results.json");
    fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    let outcome = crate::suite::Outcome {
        planned: crate::suite::Planned {
            label: config.name.clone(),
            line: 0,
            config: config.clone(),
            expect: crate::suite::Expect::Valid,
            expect_anomaly: None,
        },
        result: match json.get("harness_error").and_then(Value::as_str) {
            Some(error) => Err(error.to_string()),
            None => Ok(valid),
        },
        run_dir: Some(run_dir.to_path_buf()),
        duration: started.elapsed(),
        anomalies: crate::suite::anomalies(&json),
    };
    let began = SystemTime::now()
        .checked_sub(started.elapsed())
        .unwrap_or_else(SystemTime::now);
    let junit = crate::suite::junit(&config.name, began, &[outcome])?;
    let path = run_dir.join("junit.xml");
    fs::write(&path, junit).with_context(|| format!("cannot write {}", path.display()))?;
    // The report is a view of the files just written: failing to draw it must not
    // change the run's verdict.
    if let Err(e) = crate::report::render_run(run_dir) {
        eprintln!("faultline: warning: no report.html: {e:#}");
    }
    Ok(())
}

/// Runs the clients and the nemesis; returns the history and the run's figures.
fn drive(
    config: &RunConfig,
    deployment: &Deployment,
    workload: Workload,
    run_dir: &Path,
) -> Result<(Vec<faultline_checker::Op>, Value)> {
    let faults: Vec<Fault> = config
        .nemesis
        .iter()
        .filter_map(|name| Fault::from_name(name))
        .collect();
    let faults_nemesis = build_nemesis(config, deployment, &faults)?;
    let external = match &config.client_cmd {
        Some(command) => Some(Arc::new(
            ExternalClient::new(
                command.clone(),
                config.op_timeout,
                deployment.client_addrs(),
                Some(&run_dir.join("clients.log")),
            )
            .with_context(|| format!("cannot create {}", run_dir.join("clients.log").display()))?,
        )),
        None => None,
    };
    let stores = store_factory(config, deployment);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let Workload {
        generator,
        final_generator,
        setup,
        client,
        ..
    } = workload;
    let mut recorder = recorder::Recorder::create(&run_dir.join("history.jsonl"))
        .with_context(|| format!("cannot create {}", run_dir.join("history.jsonl").display()))?;
    let stats = Arc::new(Stats::default());
    let cpu_before = cpu_time();
    let outcome = runtime.block_on(async {
        match &external {
            Some(external) => crate::client::run_setup(external, &setup).await?,
            None => run_setup(&stores, &setup).await?,
        }
        let clients_gen: BoxGen = if config.rate > 0.0 {
            rate(config.rate, generator).boxed()
        } else {
            generator
        };
        let nemesis_gen = faultline_nemesis::schedule(&faults, config.nemesis_interval);
        let mut gens: Vec<BoxGen> = vec![
            time_limit(
                config.time_limit,
                clients_and_nemesis(clients_gen, nemesis_gen),
            )
            .boxed(),
        ];
        if !faults.is_empty() {
            gens.push(nemesis(faultline_nemesis::final_heal(&faults)).boxed());
        }
        gens.push(sleep(config.recovery_time).boxed());
        if let Some(finals) = final_generator {
            gens.push(time_limit(FINAL_PHASE_LIMIT, clients(finals)).boxed());
        }
        let mut test = phases(gens);
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
            .run(&mut test, &mut recorder, Instant::now())
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
        .filter(|o| o.is_client() && o.op_type != faultline_checker::OpType::Invoke)
        .count();
    let elapsed = outcome.elapsed.as_secs_f64();
    let mut stats_json = json!({
        "elapsed_seconds": elapsed,
        "client_ops": client_ops,
        "ops_per_second": client_ops as f64 / elapsed.max(1e-9),
        "ok": stats.ok.load(std::sync::atomic::Ordering::Relaxed),
        "fail": stats.fail.load(std::sync::atomic::Ordering::Relaxed),
        "info": stats.info.load(std::sync::atomic::Ordering::Relaxed),
        "controller_cpu_seconds": cpu.as_secs_f64(),
        "history_write_seconds": writing.as_secs_f64(),
        "history_write_cpu_share": writing.as_secs_f64() / cpu.as_secs_f64().max(1e-9),
    });
    // A client program that never completed anything gives a history no checker can
    // fault: say so rather than report it valid.
    let mut client_failure = None;
    if let Some(external) = &external {
        stats_json["client_programs"] = Value::from(external.programs());
        stats_json["client_restarts"] = Value::from(external.restarts());
        let ok = stats.ok.load(std::sync::atomic::Ordering::Relaxed);
        if ok == 0 && client_ops > 0 {
            client_failure = Some(format!(
                "the client program `{}` completed none of its {client_ops} operations ok (see {} and the history's errors; check it with `faultline client-test`)",
                external.command(),
                run_dir.join("clients.log").display()
            ));
        }
    }
    let failure = outcome
        .harness_failure
        .or(client_failure)
        .or(heal_error.map(|e| format!("healing failed: {e}")));
    if let Some(failure) = failure {
        stats_json["harness_failure"] = Value::from(failure);
    }
    Ok((ops, stats_json))
}

/// The nemesis for the enabled faults, on this deployment's backend.
fn build_nemesis(
    config: &RunConfig,
    deployment: &Deployment,
    faults: &[Fault],
) -> Result<Option<Box<dyn Nemesis>>> {
    if faults.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = deployment.nodes.iter().map(|n| n.name.clone()).collect();
    let mut members: Vec<Box<dyn Nemesis>> = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let seed = config.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
        let member: Box<dyn Nemesis> = match fault {
            Fault::Partition => {
                let net = deployment.net().context("cannot set up network faults")?;
                let partitions = PartitionNemesis::new(net, &names, seed);
                // Isolating the leader, where the database can say who leads.
                Box::new(if deployment.db.primaries().is_some() {
                    partitions
                        .with_primaries(Arc::clone(&deployment.db), deployment.nodes.clone())
                        .context("cannot set up leader partitions")?
                } else {
                    partitions
                })
            }
            Fault::Kill => Box::new(KillNemesis::new(
                Arc::clone(&deployment.db),
                deployment.nodes.clone(),
                seed,
            )),
            Fault::Pause => Box::new(
                PauseNemesis::new(Arc::clone(&deployment.db), deployment.nodes.clone(), seed)
                    .map_err(|e| UsageError(format!("--nemesis pause: {e}")))?,
            ),
            Fault::Packet => Box::new({
                let packet = match deployment.kind {
                    ClusterKind::Local => PacketNemesis::netns(
                        deployment
                            .local()
                            .ok_or_else(|| anyhow!("no local cluster"))?,
                        seed,
                    ),
                    ClusterKind::Ssh => {
                        PacketNemesis::remote(&deployment.nodes, &deployment.registry.run(), seed)
                            .map_err(|e| anyhow!(e))?
                    }
                    ClusterKind::Docker => PacketNemesis::docker(
                        deployment
                            .docker()
                            .ok_or_else(|| anyhow!("no docker cluster"))?,
                        Arc::clone(&deployment.registry),
                        seed,
                    )
                    .map_err(|e| anyhow!(e))?,
                };
                match deploy::delayer_binary() {
                    Some(delayer) => packet.delayer(delayer),
                    None => packet,
                }
            }),
            Fault::Clock => Box::new(
                ClockNemesis::new(Arc::clone(&deployment.db), deployment.nodes.clone(), seed)
                    .map_err(|e| UsageError(format!("--nemesis clock: {e}")))?,
            ),
            Fault::Disk => {
                let disk =
                    DiskNemesis::new(Arc::clone(&deployment.db), deployment.nodes.clone(), seed)
                        .map_err(|e| UsageError(format!("--nemesis disk: {e}")))?;
                // Full disks need the nodes' directories on this machine, and cannot
                // replace a data directory that is a faultline-lazyfs mount (`power`).
                let lazyfs = faults.contains(&Fault::Power);
                Box::new(match deployment.kind {
                    ClusterKind::Local if !lazyfs => {
                        disk.disk_full(Arc::clone(&deployment.registry))
                    }
                    _ => disk,
                })
            }
            Fault::Power => Box::new(
                PowerNemesis::new(Arc::clone(&deployment.db), deployment.nodes.clone(), seed)
                    .map_err(|e| UsageError(format!("--nemesis power: {e}")))?,
            ),
            Fault::Storm => Box::new(StormNemesis::new(
                Arc::clone(&deployment.db),
                deployment.nodes.clone(),
                seed,
            )),
        };
        members.push(member);
    }
    Ok(Some(Box::new(
        Compose::new(members).map_err(|e| anyhow!(e))?,
    )))
}

/// How client threads connect: thread `t` starts at node `t % nodes`.
fn store_factory(config: &RunConfig, deployment: &Deployment) -> StoreFactory {
    let addrs = deployment.client_addrs();
    let timeout = config.op_timeout;
    match config.db.as_str() {
        "etcd" => {
            let mode = if config.read_mode == "serializable" {
                ReadMode::Serializable
            } else {
                ReadMode::Linearizable
            };
            Arc::new(move |thread| {
                Box::new(EtcdStore::new(addrs.clone(), thread, timeout, mode)) as Box<dyn Store>
            })
        }
        _ => Arc::new(move |thread| {
            Box::new(KvStore::new(addrs.clone(), thread, timeout)) as Box<dyn Store>
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

impl Deployment {
    /// Network faults for this backend.
    fn net(&self) -> Result<Arc<dyn Net>> {
        Ok(match self.kind {
            ClusterKind::Local => Arc::new(NetnsNet::new(
                self.local().ok_or_else(|| anyhow!("no local cluster"))?,
            )),
            ClusterKind::Docker => Arc::new(
                faultline_nemesis::DockerNet::new(
                    self.docker().ok_or_else(|| anyhow!("no docker cluster"))?,
                )
                .map_err(|e| anyhow!(e))?,
            ),
            ClusterKind::Ssh => Arc::new(
                faultline_nemesis::SshNet::new(&self.nodes, &self.registry.run())
                    .map_err(|e| anyhow!(e))?,
            ),
        })
    }
}
