//! `faultline client-test`: checks a client program against the protocol
//! (`docs/your-client.md`) before it is used in a run. Starts the database (or uses one
//! already running, `--addr`), sends scripted operations and checks that every reply is
//! well-formed and right: a write is read back, a cas with the wrong old value fails,
//! an unknown `f` fails, transactions return their reads. Exit 0 when every check
//! passes, 1 when one fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use faultline_checker::history::Key;
use faultline_checker::{OpType, Process};
use faultline_clusters::cleanup::teardown_on_interrupt;
use faultline_generator::OpSpec;
use serde_json::{Value, json};

use crate::client::ExternalClient;
use crate::config::{RunArgs, RunConfig};
use crate::error::UsageError;
use crate::output::say;
use crate::run::Prepared;
use crate::session::Session;

/// Flags of `faultline client-test`.
#[derive(Debug, Args)]
pub struct ClientTestArgs {
    /// The client program, as for `faultline run --client-cmd`.
    #[arg(long, value_name = "COMMAND")]
    pub client_cmd: String,
    /// The database, described in a TOML file (started for the test).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["db", "addr"])]
    pub db_file: Option<PathBuf>,
    /// A built-in database to start instead: kv or etcd.
    #[arg(long, conflicts_with = "addr")]
    pub db: Option<String>,
    /// Use a database already serving at HOST:PORT instead of starting one.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// The operations to test: register (read, write, cas) or list-append (txn)
    /// [default: register].
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Nodes to start [default: 1].
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Seconds the program may take to answer one request [default: 5].
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub op_timeout: f64,
    /// The store directory the database's files and the programs' `clients.log` go to
    /// [default: store].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// One scripted step: an operation and what its reply must be.
struct Step {
    what: &'static str,
    op: OpSpec,
    expect: Expect,
}

enum Expect {
    Ok(Value),
    /// `ok` with a read value that is null (or, for lists, empty).
    OkEmpty,
    Fail,
}

fn script(workload: &str, key: i64) -> Result<Vec<Step>, UsageError> {
    let k = |i: i64| Key::Int(key + i);
    let step = |what, f: &str, value: Value, key: Key, expect| Step {
        what,
        op: OpSpec::new(f, value).with_key(key),
        expect,
    };
    let mut steps = match workload {
        "register" => vec![
            step(
                "write answers ok",
                "write",
                json!(1),
                k(0),
                Expect::Ok(json!(1)),
            ),
            step(
                "a read returns the value written",
                "read",
                Value::Null,
                k(0),
                Expect::Ok(json!(1)),
            ),
            step(
                "cas with the wrong old value fails",
                "cas",
                json!([2, 3]),
                k(0),
                Expect::Fail,
            ),
            step(
                "cas with the right old value succeeds",
                "cas",
                json!([1, 2]),
                k(0),
                Expect::Ok(json!([1, 2])),
            ),
            step(
                "a read returns the value cas wrote",
                "read",
                Value::Null,
                k(0),
                Expect::Ok(json!(2)),
            ),
            step(
                "a read of a key never written is null",
                "read",
                Value::Null,
                k(1),
                Expect::OkEmpty,
            ),
            step(
                "keys are independent",
                "write",
                json!(4),
                k(2),
                Expect::Ok(json!(4)),
            ),
            step(
                "the first key kept its value",
                "read",
                Value::Null,
                k(0),
                Expect::Ok(json!(2)),
            ),
        ],
        "list-append" => {
            let (a, b) = (format!("{key}a"), format!("{key}b"));
            vec![
                step(
                    "a txn appends and reads its own appends",
                    "txn",
                    json!([["append", a, 1], ["append", a, 2], ["r", a, null]]),
                    Key::Int(key),
                    Expect::Ok(json!([
                        ["append", a, 1],
                        ["append", a, 2],
                        ["r", a, [1, 2]]
                    ])),
                ),
                step(
                    "a later txn reads the list, and a key never written as empty",
                    "txn",
                    json!([["r", a, null], ["r", b, null]]),
                    Key::Int(key),
                    Expect::Ok(json!([["r", a, [1, 2]], ["r", b, []]])),
                ),
                step(
                    "appends to several keys in one txn",
                    "txn",
                    json!([
                        ["append", b, 3],
                        ["append", a, 4],
                        ["r", a, null],
                        ["r", b, null]
                    ]),
                    Key::Int(key),
                    Expect::Ok(json!([
                        ["append", b, 3],
                        ["append", a, 4],
                        ["r", a, [1, 2, 4]],
                        ["r", b, [3]]
                    ])),
                ),
            ]
        }
        other => {
            return Err(UsageError(format!(
                "--workload: `{other}`; client-test knows register and list-append"
            )));
        }
    };
    steps.push(step(
        "an unknown f fails with an error",
        "faultline-unknown-f",
        json!(1),
        k(3),
        Expect::Fail,
    ));
    Ok(steps)
}

/// Why `done` does not meet `expect` (the read of an unset list may be `null` or `[]`).
fn mismatch(step: &Step, done: &faultline_workloads::workload::Completion) -> Option<String> {
    let got = format!(
        "{}{}{}",
        done.op_type,
        if done.op_type == OpType::Ok {
            format!(" {}", done.value)
        } else {
            String::new()
        },
        done.error
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    let same = |want: &Value, got: &Value| {
        want == got
            || match (want, got) {
                (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
                    w.iter().zip(g).all(|(w, g)| match (w, g) {
                        (Value::Array(w), Value::Array(g)) if w.len() == 3 && g.len() == 3 => {
                            w[0] == g[0]
                                && w[1] == g[1]
                                && (w[2] == g[2] || (empty(&w[2]) && empty(&g[2])))
                        }
                        _ => w == g,
                    })
                }
                _ => false,
            }
    };
    let ok = match &step.expect {
        Expect::Ok(want) => done.op_type == OpType::Ok && same(want, &done.value),
        Expect::OkEmpty => done.op_type == OpType::Ok && empty(&done.value),
        Expect::Fail => {
            done.op_type == OpType::Fail && done.error.as_ref().is_some_and(|e| !e.is_empty())
        }
    };
    if ok {
        return None;
    }
    let want = match &step.expect {
        Expect::Ok(v) => format!("ok {v}"),
        Expect::OkEmpty => "ok null".to_string(),
        Expect::Fail => "fail with an error".to_string(),
    };
    Some(format!("expected {want}, got {got}"))
}

/// Runs `faultline client-test`; its exit code.
pub fn run(args: &ClientTestArgs) -> Result<i32> {
    let key = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        % 1_000_000_000) as i64
        * 10;
    let steps = script(&args.workload, key)?;
    if !(args.op_timeout.is_finite() && args.op_timeout > 0.0 && args.op_timeout < 3600.0) {
        return Err(UsageError(format!(
            "--op-timeout: {}; must be seconds, above 0",
            args.op_timeout
        ))
        .into());
    }
    let timeout = Duration::from_secs_f64(args.op_timeout);
    if let Some(addr) = &args.addr {
        let client = ExternalClient::new(
            args.client_cmd.clone(),
            timeout,
            vec![("n1".to_string(), addr.clone())],
            None,
        )
        .context("cannot start the client")?;
        return check(Arc::new(client), &steps, None);
    }
    let config = RunConfig::resolve(&RunArgs {
        db: args.db.clone(),
        db_file: args.db_file.clone(),
        client_cmd: Some(args.client_cmd.clone()),
        nodes: Some(args.nodes),
        nemesis: Some(vec!["none".into()]),
        store: args.store.clone(),
        name: Some("client-test".into()),
        op_timeout: Some(args.op_timeout),
        ..RunArgs::default()
    })?;
    let prepared = Prepared::new(&config)?;
    let run_dir = crate::run::create_run_dir(&config)?;
    eprintln!(
        "faultline: starting {} on {} node(s) in {}",
        config.db,
        config.nodes,
        run_dir.display()
    );
    let deployment = prepared.deploy(&config, &run_dir)?;
    crate::run::point_latest(&config, &run_dir);
    let guard = teardown_on_interrupt(Arc::clone(&deployment.registry))
        .context("cannot install the Ctrl-C handler")?;
    let log = run_dir.join("clients.log");
    let outcome = ExternalClient::new(
        args.client_cmd.clone(),
        timeout,
        deployment.client_addrs(),
        Some(&log),
    )
    .with_context(|| format!("cannot create {}", log.display()))
    .and_then(|client| check(Arc::new(client), &steps, Some(&log)));
    let teardown = deployment.teardown();
    drop(guard);
    if let Err(e) = teardown {
        eprintln!("faultline: teardown incomplete ({e:#}); run `faultline clean`");
    }
    outcome
}

/// Sends the steps, one program for all; prints a line per check; 0 or 1.
fn check(
    client: Arc<ExternalClient>,
    steps: &[Step],
    log: Option<&std::path::Path>,
) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let failures = runtime.block_on(async {
        let mut process = 0u64;
        let mut session = client.session(Process::Client(process));
        let mut failures = 0;
        for step in steps {
            let done = match session.invoke(Process::Client(process), &step.op).await {
                Ok(done) => done,
                Err(failure) => failure.completion,
            };
            match mismatch(step, &done) {
                None => say!("ok    {}", step.what),
                Some(why) => {
                    failures += 1;
                    say!("FAIL  {}: {}", step.what, why);
                    say!("      request: {}", session.request(&step.op));
                }
            }
            if done.op_type == OpType::Info {
                // The program is gone; the next step gets a new one, as in a run.
                process += 1;
                session = client.session(Process::Client(process));
            }
        }
        failures
    });
    if failures == 0 {
        say!(
            "client-test: all {} checks passed: `{}` speaks the protocol",
            steps.len(),
            client.command()
        );
        Ok(0)
    } else {
        say!(
            "client-test: {failures} of {} checks failed (protocol: docs/your-client.md){}",
            steps.len(),
            log.map(|l| format!("; the program's stderr is in {}", l.display()))
                .unwrap_or_default()
        );
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_exist_for_both_workloads_and_end_with_an_unknown_f() {
        for w in ["register", "list-append"] {
            let steps = script(w, 10).unwrap();
            assert_eq!(steps.last().unwrap().op.f, "faultline-unknown-f");
        }
        assert!(script("bank", 1).is_err());
    }
}
