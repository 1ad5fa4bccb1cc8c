//! `faultline run`: the whole test. Build it ([`test::Test`]: everything that can refuse
//! the run is checked before its directory exists) → create the hosts (the run's one
//! `Backend`) → deploy the database → run clients
//! and nemesis by the generator for the time limit → heal → let the cluster recover →
//! final operations → collect node logs → tear down → check → `results.json` →
//! Jepsen's exit code.
//!
//! Harness failures (a fault that cannot be applied, a host that stops answering) are
//! kept apart from what the system did: the run stops cleanly, still heals, still
//! collects logs and tears down, writes `results.json` with the failure, and exits 255.

pub(crate) mod binaries;
mod checking;
mod database;
mod deploy;
mod drive;
mod faults;
mod interpreter;
mod progress;
mod recorder;
mod shards;
mod test;
mod uncertainty;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use faultline_checker::nodelog::{CrashPatterns, NodeLog};
use faultline_checker::{History, Results, Validity};
use serde_json::Value;

pub(crate) use deploy::Prepared;
use test::Test;

use crate::check::logs as check_logs;
use crate::config::{RunArgs, RunConfig, faults_word};
use crate::error::UsageError;
use crate::junit::junit;
use crate::outcome::{Expect, Outcome, Planned, anomalies};
use crate::output::{note, say, say_raw};

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
    execute_noting(config, &mut None)
}

/// [`execute`], setting `made` to the run's directory as soon as it exists, so that a
/// caller learns where a crashed run wrote (a suite's runs at once cannot find it by
/// `latest`, which another run may move).
pub fn execute_noting(config: &RunConfig, made: &mut Option<PathBuf>) -> Result<Finished> {
    // The whole test, built; everything that can refuse the run happens before its
    // directory exists.
    let Test {
        hosts,
        ops,
        checker,
    } = Test::new(config)?;
    let node_names = hosts.node_names(config.nodes);
    let run_dir = create_run_dir(config)?;
    *made = Some(run_dir.clone());
    fs::write(
        run_dir.join("config.json"),
        serde_json::to_string_pretty(&shards::config_json(config, &node_names)?)? + "\n",
    )
    .with_context(|| format!("cannot write {}", run_dir.join("config.json").display()))?;
    note!(
        "faultline: {} on {} {} node(s){}, {} for {} s, faults: {} ({}), seed {}; writing {}",
        config.workload,
        config.nodes,
        config.db,
        match config.commit_protocol {
            Some(protocol) if config.shards > 1 =>
                format!(" in {} shards ({protocol})", config.shards),
            _ => String::new(),
        },
        config.concurrency,
        config.time_limit.as_secs_f64(),
        faults_word(&config.nemesis),
        match &config.nemesis_schedule {
            Some(path) => format!("schedule {}", path.display()),
            None => config.nemesis_mode.name().to_string(),
        },
        config.seed,
        run_dir.display()
    );

    let started = Instant::now();
    let deployment = hosts.deploy(config, &run_dir)?;
    point_latest(config, &run_dir);
    note!(
        "faultline: {} serving on {} node(s) after {:.1} s",
        config.db,
        deployment.nodes.len(),
        started.elapsed().as_secs_f64()
    );
    let cluster_run = deployment.registry.run();
    let driven = drive::drive(config, ops, &deployment, &run_dir);
    // Each shard's leader as the nodes see it at the end, before anything is torn down.
    let shard_leaders = match &deployment.kv {
        Some(kv) if config.shards > 1 => Some(shards::leaders(
            &shards::ask_nodes(kv, &deployment.nodes),
            config.shards,
        )),
        _ => None,
    };
    let log_problems = deployment.collect_logs(&run_dir);
    for problem in &log_problems {
        note!("faultline: node logs: {problem}");
    }
    let node_logs = node_logs(&deployment, &run_dir);
    let teardown = deployment.teardown();
    if let Err(e) = &teardown {
        note!(
            "faultline: teardown incomplete ({e:#}); run `faultline clean --store {}`",
            config.store.display()
        );
    }

    let history_path = run_dir.join("history.jsonl");
    let mut results = Results::default();
    // The nodes' own logs are judged beside the history, whatever becomes of the rest:
    // a violation makes the run invalid.
    let (logs, patterns) = node_logs;
    check_logs::check_into(&mut results, &logs, patterns);
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
    if let Some(leaders) = &shard_leaders {
        // The load from the history, by the store keys of the built-in client (a client
        // program names its own keys: no load then).
        let options = test::workload_options(config);
        let load = match (&driven, &config.client_cmd) {
            (Ok(done), None) => Some(shards::load(&done.ops, config.shards, |op| {
                faultline_workloads::workload::store_keys(&config.workload, &options, op)
            })),
            _ => None,
        };
        results.extra.insert(
            "shards".into(),
            shards::summary(config, &node_names, leaders, load.as_ref()),
        );
    }
    let drive::Driven {
        ops,
        stats,
        failure,
    } = match driven {
        Ok(done) => done,
        Err(failure) => {
            results
                .extra
                .insert("harness_error".into(), Value::from(format!("{failure:#}")));
            write_results(config, started, &run_dir, &results, Validity::Unknown)?;
            return Err(failure.context("the run stopped (harness failure)"));
        }
    };
    let uncertain = uncertainty::summary(&stats.uncertainty);
    let mut run = serde_json::to_value(&stats)?;
    if let Some(failure) = &failure {
        // Kept inside `run` too, as results.json always had it.
        run["harness_failure"] = Value::from(failure.clone());
    }
    results.extra.insert("run".into(), run);
    write_nemesis_log(&run_dir, &ops)?;
    if let Some(failure) = failure {
        results
            .extra
            .insert("harness_error".into(), Value::from(failure.clone()));
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
    say!("  uncertainty: {uncertain}");
    say!("  results: {}", run_dir.join("results.json").display());
    Ok(Finished { valid, run_dir })
}

/// The run's node logs (each node's log files, as the database names them, found in
/// `RUN_DIR/nodes/NODE/`) and the crash patterns to check them with (the default set
/// and the database's own).
fn node_logs(deployment: &deploy::Deployment, run_dir: &Path) -> (Vec<NodeLog>, CrashPatterns) {
    let files: Vec<(String, Vec<String>)> = deployment
        .nodes
        .iter()
        .map(|node| {
            let names = deployment
                .db
                .log_files(node)
                .iter()
                .filter_map(|path| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
            (node.name.clone(), names)
        })
        .collect();
    (
        check_logs::run_logs(run_dir, &files),
        check_logs::patterns(&deployment.db.log_patterns()),
    )
}

/// `STORE/NAME/TIME`, created (`TIME-1`, `TIME-2`… when runs of one test start in the
/// same second: each directory is made with an exclusive create, so two runs started at
/// once never share one). `latest` is not moved yet: see [`point_latest`].
pub(crate) fn create_run_dir(config: &RunConfig) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "");
    let test_dir = config.store.join(&config.name);
    fs::create_dir_all(&test_dir).map_err(|e| {
        UsageError(format!(
            "--store: cannot create {}: {e}",
            test_dir.display()
        ))
    })?;
    let mut dir = test_dir.join(&stamp);
    for n in 1.. {
        match fs::create_dir(&dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => {
                dir = test_dir.join(format!("{stamp}-{n}"));
            }
            Err(e) => {
                return Err(
                    UsageError(format!("--store: cannot create {}: {e}", dir.display())).into(),
                );
            }
        }
    }
    Ok(dir)
}

/// Points `STORE/NAME/latest` at `run_dir`, and `STORE/latest` too (the newest run of
/// any test): once the run has deployed, so a run that never started leaves them where
/// they were. Each link is replaced atomically (a new link renamed over the old one),
/// so runs deploying at once never leave a link missing.
pub(crate) fn point_latest(config: &RunConfig, run_dir: &Path) {
    let test_dir = config.store.join(&config.name);
    if let Some(name) = run_dir.file_name() {
        replace_link(Path::new(name), &test_dir.join("latest"));
    }
    if let (Some(test), Some(run)) = (test_dir.file_name(), run_dir.file_name()) {
        replace_link(&Path::new(test).join(run), &config.store.join("latest"));
    }
}

/// Makes `link` a symbolic link to `target`, replacing it atomically; best effort.
fn replace_link(target: &Path, link: &Path) {
    let Some(parent) = link.parent() else { return };
    let unique = format!(
        ".latest-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    )
    .replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '.',
        "",
    );
    let tmp = parent.join(unique);
    let _ = fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(target, &tmp).is_ok() && fs::rename(&tmp, link).is_err() {
        let _ = fs::remove_file(&tmp);
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
    let outcome = Outcome {
        planned: Planned {
            label: config.name.clone(),
            line: 0,
            config: config.clone(),
            expect: Expect::Valid,
            expect_anomaly: Vec::new(),
        },
        result: match json.get("harness_error").and_then(Value::as_str) {
            Some(error) => Err(error.to_string()),
            None => Ok(valid),
        },
        run_dir: Some(run_dir.to_path_buf()),
        duration: started.elapsed(),
        anomalies: anomalies(&json),
    };
    let began = SystemTime::now()
        .checked_sub(started.elapsed())
        .unwrap_or_else(SystemTime::now);
    let junit = junit(&config.name, began, &[outcome])?;
    let path = run_dir.join("junit.xml");
    fs::write(&path, junit).with_context(|| format!("cannot write {}", path.display()))?;
    // The report is a view of the files just written: failing to draw it must not
    // change the run's verdict.
    if let Err(e) = crate::report::render_run(run_dir) {
        note!("faultline: warning: no report.html: {e:#}");
    }
    Ok(())
}
