//! Clients in any language (`--client-cmd "python3 client.py"`): the harness runs the
//! program once per logical process and speaks newline-delimited JSON with it over its
//! standard input and output, one request and one reply per operation. The protocol is
//! specified in `docs/your-client.md`; the `conformance` module checks a program against
//! it (`faultline client-test`).
//!
//! One program per process keeps clients simple (synchronous, one connection, no
//! multiplexing), and restarts follow Jepsen's process model: an operation whose
//! outcome is unknown (`info`: a time-out, a garbage line, the program exiting) retires
//! its process, and the thread continues as a fresh process with a fresh program.
//! Programs that fail before answering anything, [`MAX_STARTUP_FAILURES`] times in a
//! row, stop the run with a harness error: a client that cannot work must not produce
//! a history of nothing but `info` operations that checks as valid.

mod reply;

use reply::quote;
pub use reply::{micro_json, parse_reply};

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline_checker::{OpType, Process};
use faultline_generator::OpSpec;
use faultline_workloads::store::Micro;
use faultline_workloads::workload::Completion;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::session::{HarnessFailure, Session, SessionFactory, SessionFuture};

/// Programs in a row that may fail before their first reply before the run stops.
pub const MAX_STARTUP_FAILURES: u32 = 5;

/// Extra time a program has to answer its first request: its own start-up (an
/// interpreter loading, a connection opening) is not the database's latency.
pub const STARTUP_GRACE: Duration = Duration::from_secs(5);

/// The longest reply line read (longer is garbage).
const MAX_LINE: u64 = 64 << 20;

/// The external client of a run: the command, the nodes, the shared counters.
pub struct ExternalClient {
    command: String,
    timeout: Duration,
    startup_grace: Duration,
    nodes: Vec<(String, String)>,
    stderr_log: Option<Arc<Mutex<File>>>,
    startup_failures: AtomicU32,
    last_startup_failure: Mutex<String>,
    programs: AtomicU64,
    restarts: AtomicU64,
}

impl ExternalClient {
    /// Runs `command` (through `sh -c`, in the harness's working directory) for each
    /// process; `nodes` are each node's name and client address; an operation not
    /// answered within `timeout` is `info`. The programs' standard error is appended to
    /// `stderr_log` (each line prefixed with its process), if given.
    pub fn new(
        command: impl Into<String>,
        timeout: Duration,
        nodes: Vec<(String, String)>,
        stderr_log: Option<&Path>,
    ) -> std::io::Result<ExternalClient> {
        let stderr_log = match stderr_log {
            Some(path) => Some(Arc::new(Mutex::new(
                File::options().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        Ok(ExternalClient {
            command: command.into(),
            timeout,
            startup_grace: STARTUP_GRACE,
            nodes,
            stderr_log,
            startup_failures: AtomicU32::new(0),
            last_startup_failure: Mutex::new(String::new()),
            programs: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        })
    }

    /// Extra time for a program's first request ([`STARTUP_GRACE`] by default).
    #[cfg(test)]
    pub fn startup_grace(mut self, grace: Duration) -> ExternalClient {
        self.startup_grace = grace;
        self
    }

    /// The command.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Programs started so far.
    pub fn programs(&self) -> u64 {
        self.programs.load(Ordering::Relaxed)
    }

    /// Programs that died, hung or answered garbage, and were replaced.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// A session for `process`, talking to node `process mod nodes` (as Jepsen does).
    pub fn session(self: &Arc<Self>, process: Process) -> ExternalSession {
        let p = match process {
            Process::Client(p) => p,
            Process::Nemesis => 0,
        };
        let node = if self.nodes.is_empty() {
            (String::new(), String::new())
        } else {
            self.nodes[(p % self.nodes.len() as u64) as usize].clone()
        };
        ExternalSession {
            shared: Arc::clone(self),
            process: p,
            node,
            program: None,
            answered: false,
        }
    }

    /// Sessions for the interpreter.
    pub fn sessions(self: &Arc<Self>) -> SessionFactory {
        let me = Arc::clone(self);
        Arc::new(move |_thread, process| Box::new(me.session(process)) as Box<dyn Session>)
    }

    fn startup_failed(&self, reason: &str) {
        self.startup_failures.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut last) = self.last_startup_failure.lock() {
            *last = reason.to_string();
        }
    }
}

/// A running client program.
struct Program {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Program {
    fn drop(&mut self) {
        // The whole process group: `sh -c` and whatever it started.
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.start_kill();
    }
}

/// One process's client program.
pub struct ExternalSession {
    shared: Arc<ExternalClient>,
    process: u64,
    node: (String, String),
    program: Option<Program>,
    answered: bool,
}

/// How an exchange with the program went wrong.
enum Trouble {
    /// Unknown outcome; the program is replaced.
    Info(String),
    /// The program never got going: counts towards the startup failures.
    Startup(String),
}

impl ExternalSession {
    /// The request line for `op`.
    pub(crate) fn request(&self, op: &OpSpec) -> String {
        let mut request = Map::new();
        request.insert("process".into(), json!(self.process));
        request.insert("f".into(), json!(op.f));
        if let Some(key) = &op.key {
            request.insert("key".into(), key.to_json());
        }
        request.insert("value".into(), op.value.clone());
        request.insert("node".into(), json!(self.node.0));
        request.insert("addr".into(), json!(self.node.1));
        Value::Object(request).to_string()
    }

    async fn start(&mut self) -> Result<(), HarnessFailureReason> {
        let failures = self.shared.startup_failures.load(Ordering::SeqCst);
        if failures >= MAX_STARTUP_FAILURES {
            let last = self
                .shared
                .last_startup_failure
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default();
            return Err(HarnessFailureReason(format!(
                "the client program `{}` failed {failures} times in a row before answering a request (last: {last}); check it with `faultline client-test`",
                self.shared.command
            )));
        }
        if failures > 0 {
            let backoff =
                Duration::from_millis(100 << (failures - 1).min(5)).min(Duration::from_secs(2));
            tokio::time::sleep(backoff).await;
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&self.shared.command)
            .env("FAULTLINE_PROCESS", self.process.to_string())
            .env("FAULTLINE_NODE", &self.node.0)
            .env("FAULTLINE_ADDR", &self.node.1)
            .env(
                "FAULTLINE_NODES",
                self.shared
                    .nodes
                    .iter()
                    .map(|(name, addr)| format!("{name}={addr}"))
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if self.shared.stderr_log.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.shared.startup_failed(&format!(
                    "cannot start `sh -c {:?}`: {e}",
                    self.shared.command
                ));
                return Ok(());
            }
        };
        self.shared.programs.fetch_add(1, Ordering::Relaxed);
        if let (Some(stderr), Some(log)) = (child.stderr.take(), self.shared.stderr_log.clone()) {
            let process = self.process;
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut file) = log.lock() {
                        let _ = writeln!(file, "[process {process}] {line}");
                    }
                }
            });
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            self.shared.startup_failed("no pipes to the program");
            return Ok(());
        };
        self.program = Some(Program {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        });
        Ok(())
    }

    /// Sends `op` and reads its reply line, within the time-out.
    async fn exchange(&mut self, op: &OpSpec) -> Result<String, Trouble> {
        let command = self.shared.command.clone();
        let first = !self.answered;
        let timeout = self.shared.timeout
            + if first {
                self.shared.startup_grace
            } else {
                Duration::ZERO
            };
        let deadline = Instant::now() + timeout;
        let startup_or_info = |message: String| {
            if first {
                Trouble::Startup(message)
            } else {
                Trouble::Info(message)
            }
        };
        let line = self.request(op) + "\n";
        let Some(program) = self.program.as_mut() else {
            return Err(Trouble::Info(format!(
                "client-unavailable: the client program `{command}` could not be started"
            )));
        };
        let talk = async {
            program.stdin.write_all(line.as_bytes()).await?;
            program.stdin.flush().await?;
            let mut buf = Vec::new();
            (&mut program.stdout)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)
                .await?;
            Ok::<Vec<u8>, std::io::Error>(buf)
        };
        match tokio::time::timeout_at(deadline.into(), talk).await {
            Err(_) => Err(Trouble::Info(format!(
                "timeout: the client program `{command}` did not answer within {:.1} s",
                timeout.as_secs_f64()
            ))),
            Ok(Err(e)) => {
                let status = exit_status(program).await;
                Err(startup_or_info(format!(
                    "client-exited: the client program `{command}` {status} ({e}) before answering"
                )))
            }
            Ok(Ok(buf)) if buf.is_empty() => {
                let status = exit_status(program).await;
                Err(startup_or_info(format!(
                    "client-exited: the client program `{command}` {status} before answering"
                )))
            }
            Ok(Ok(buf)) if !buf.ends_with(b"\n") => Err(startup_or_info(format!(
                "client-garbage: the client program `{command}` sent {} without a newline",
                quote(&buf)
            ))),
            Ok(Ok(buf)) => match String::from_utf8(buf) {
                Ok(text) => Ok(text.trim_end_matches(['\n', '\r']).to_string()),
                Err(e) => Err(startup_or_info(format!(
                    "client-garbage: the client program `{command}` sent a line that is not UTF-8: {}",
                    quote(e.as_bytes())
                ))),
            },
        }
    }
}

/// A reason to stop the run.
struct HarnessFailureReason(String);

/// How the program ended, briefly waited for: `exited with exit code 1`, or `closed its
/// output`.
async fn exit_status(program: &mut Program) -> String {
    match tokio::time::timeout(Duration::from_millis(500), program.child.wait()).await {
        Ok(Ok(status)) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            _ => "exited".to_string(),
        },
        _ => "closed its standard output".to_string(),
    }
}

impl Session for ExternalSession {
    fn invoke<'a>(&'a mut self, _process: Process, op: &'a OpSpec) -> SessionFuture<'a> {
        Box::pin(async move {
            if self.program.is_none()
                && let Err(HarnessFailureReason(reason)) = self.start().await
            {
                return Err(HarnessFailure {
                    completion: Completion::info(op.value.clone(), "client-unavailable", None),
                    reason,
                });
            }
            let node = self.node.0.clone();
            let trouble = match self.exchange(op).await {
                Ok(line) => match parse_reply(op, &line, &node) {
                    Ok(completion) => {
                        self.answered = true;
                        self.shared.startup_failures.store(0, Ordering::SeqCst);
                        if completion.op_type == OpType::Info {
                            // The process is retired; so is its program.
                            self.program = None;
                        }
                        return Ok(completion);
                    }
                    Err(why) => {
                        let message = format!(
                            "client-garbage: the client program `{}` answered {}: {why}",
                            self.shared.command,
                            quote(line.as_bytes())
                        );
                        if self.answered {
                            Trouble::Info(message)
                        } else {
                            Trouble::Startup(message)
                        }
                    }
                },
                Err(trouble) => trouble,
            };
            // Whatever happened, this program is done: the process is retired.
            self.program = None;
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            let message = match trouble {
                Trouble::Info(m) => m,
                Trouble::Startup(m) => {
                    self.shared.startup_failed(&m);
                    m
                }
            };
            Ok(Completion::info(
                op.value.clone(),
                message,
                Some(node).filter(|n| !n.is_empty()),
            ))
        })
    }
}

/// Runs the workload's setup transactions (e.g. the bank's opening balances) through a
/// client program: one `setup` request each, whose value is the list of micro-ops,
/// retried for up to 60 s until it is `ok`.
pub async fn run_setup(client: &Arc<ExternalClient>, setup: &[Vec<Micro>]) -> anyhow::Result<()> {
    let process = Process::Client(0);
    for txn in setup {
        let op = OpSpec::new("setup", Value::Array(txn.iter().map(micro_json).collect()));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut session = client.session(process);
        loop {
            let done = session
                .invoke(process, &op)
                .await
                .map_err(|f| anyhow::anyhow!(f.reason))?;
            match done.op_type {
                OpType::Ok => break,
                _ if Instant::now() < deadline => {
                    if done.op_type == OpType::Info {
                        session = client.session(process);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => {
                    return Err(anyhow::anyhow!(
                        "the client program `{}` did not complete the workload's setup request in 60 s (last: {} {}); see docs/your-client.md",
                        client.command,
                        done.op_type,
                        done.error.unwrap_or_default()
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn client(script: &str, timeout_ms: u64) -> Arc<ExternalClient> {
        Arc::new(
            ExternalClient::new(
                format!("python3 -c '{script}'"),
                Duration::from_millis(timeout_ms),
                vec![("n1".into(), "127.0.0.1:1".into())],
                None,
            )
            .unwrap()
            .startup_grace(Duration::ZERO),
        )
    }

    const ECHO: &str = "import sys, json\nfor l in sys.stdin:\n    r = json.loads(l)\n    print(json.dumps({\"type\": \"ok\", \"value\": r[\"value\"]}), flush=True)";

    #[test]
    fn a_program_answers_and_misbehaving_ones_become_info() {
        run(async {
            let c = client(ECHO, 5000);
            let mut s = c.session(Process::Client(0));
            let done = s
                .invoke(Process::Client(0), &OpSpec::new("write", json!(1)))
                .await
                .unwrap();
            assert_eq!((done.op_type, done.value), (OpType::Ok, json!(1)));
            let done = s
                .invoke(Process::Client(0), &OpSpec::new("write", json!(2)))
                .await
                .unwrap();
            assert_eq!(done.op_type, OpType::Ok);
            assert_eq!(c.programs(), 1);

            let c = client("import time\ntime.sleep(30)", 300);
            let started = Instant::now();
            let done = c
                .session(Process::Client(0))
                .invoke(Process::Client(0), &OpSpec::new("read", Value::Null))
                .await
                .unwrap();
            assert_eq!(done.op_type, OpType::Info);
            assert!(done.error.unwrap().starts_with("timeout"));
            assert!(started.elapsed() < Duration::from_secs(3));

            let c = client(
                "print(\"hello\", flush=True)\nimport time\ntime.sleep(30)",
                5000,
            );
            let done = c
                .session(Process::Client(0))
                .invoke(Process::Client(0), &OpSpec::new("read", Value::Null))
                .await
                .unwrap();
            let error = done.error.unwrap();
            assert!(
                error.contains("client-garbage") && error.contains("\"hello\""),
                "{error}"
            );

            let c = client("import sys\nsys.exit(3)", 5000);
            for i in 0..MAX_STARTUP_FAILURES {
                let done = c
                    .session(Process::Client(i.into()))
                    .invoke(Process::Client(0), &OpSpec::new("read", Value::Null))
                    .await
                    .unwrap();
                let error = done.error.unwrap();
                assert!(error.contains("exited with code 3"), "{error}");
            }
            let failure = c
                .session(Process::Client(9))
                .invoke(Process::Client(9), &OpSpec::new("read", Value::Null))
                .await
                .unwrap_err();
            assert!(
                failure.reason.contains("failed 5 times in a row"),
                "{}",
                failure.reason
            );
        });
    }
}
