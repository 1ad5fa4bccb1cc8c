//! `faultline client-test`: checks a client program against the protocol
//! (`docs/your-client.md`) before it is used in a run. Starts the database (or uses one
//! already running, `--addr`), sends scripted operations and checks that every reply is
//! well-formed and right, per workload (`script`): a write is read back, a cas with the
//! wrong old value fails, transactions return their reads, a set holds what was added,
//! a counter moves by what was added, transfers move money, an unknown `f` fails. Exit
//! 0 when every check passes, 1 when one fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use faultline_checker::{OpType, Process};

use crate::client::ExternalClient;
use crate::config::{RunArgs, RunConfig};
use crate::error::UsageError;
use crate::output::say;
use crate::run::Prepared;

mod script;

use crate::session::Session;
use script::{Memo, Step, mismatch, script};

/// Flags of `faultline client-test`.
#[derive(Debug, Args)]
pub struct ClientTestArgs {
    /// The client program, as for `faultline run --client-cmd` [default: the db file's
    /// `client`].
    #[arg(long, value_name = "COMMAND")]
    pub client_cmd: Option<String>,
    /// The database, described in a TOML file (started for the test).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["db", "addr"])]
    pub db_file: Option<PathBuf>,
    /// A built-in database to start instead: kv or etcd.
    #[arg(long, conflicts_with = "addr")]
    pub db: Option<String>,
    /// Use a database already serving at HOST:PORT instead of starting one.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// The operations to test: register (read, write, cas), list-append or rw-register
    /// (txn), set (add, read), counter (add, read), bank (setup, transfer, read), lock
    /// (acquire, release) [default: register].
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
        let Some(command) = args.client_cmd.clone() else {
            return Err(UsageError(
                "--addr: give the client program with --client-cmd \"COMMAND\"".into(),
            )
            .into());
        };
        let client = ExternalClient::new(
            command,
            timeout,
            vec![("n1".to_string(), addr.clone())],
            None,
        )
        .context("cannot start the client")?;
        return check(Arc::new(client), &steps, &args.workload, None);
    }
    let config = RunConfig::resolve(&RunArgs {
        db: args.db.clone(),
        db_file: args.db_file.clone(),
        client_cmd: args.client_cmd.clone(),
        nodes: Some(args.nodes),
        nemesis: Some(vec!["none".into()]),
        store: args.store.clone(),
        name: Some("client-test".into()),
        op_timeout: Some(args.op_timeout),
        ..RunArgs::default()
    })?;
    let Some(command) = config.client_cmd.clone() else {
        return Err(UsageError(
            "client-test needs a client program: pass --client-cmd \"COMMAND\", or a --db-file with a `client` key".into(),
        )
        .into());
    };
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
    let log = run_dir.join("clients.log");
    let outcome = ExternalClient::new(command, timeout, deployment.client_addrs(), Some(&log))
        .with_context(|| format!("cannot create {}", log.display()))
        .and_then(|client| check(Arc::new(client), &steps, &args.workload, Some(&log)));
    let teardown = deployment.teardown();
    if let Err(e) = teardown {
        eprintln!("faultline: teardown incomplete ({e:#}); run `faultline clean`");
    }
    outcome
}

/// Sends the steps, one program for all; prints a line per check; 0 or 1.
fn check(
    client: Arc<ExternalClient>,
    steps: &[Step],
    workload: &str,
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
        let mut memo = Memo::default();
        for step in steps {
            let done = match session.invoke(Process::Client(process), &step.op).await {
                Ok(done) => done,
                Err(failure) => failure.completion,
            };
            match mismatch(step, &done, &mut memo) {
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
        if failures + 1 >= steps.len() {
            // Everything but the unknown `f` failed: most likely another workload.
            say!(
                "client-test: hint: every `{workload}` operation failed; if the program \
                 implements another workload, pass --workload (one of {})",
                script::WORKLOADS.join(", ")
            );
        }
        say!(
            "client-test: {failures} of {} checks failed (protocol: docs/your-client.md){}",
            steps.len(),
            log.map(|l| format!("; the program's stderr is in {}", l.display()))
                .unwrap_or_default()
        );
        Ok(1)
    }
}
