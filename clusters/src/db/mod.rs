//! Databases: the [`Db`] trait (Jepsen's `DB` with `Kill` and `LogFiles`), its optional
//! capabilities [`Pause`] and [`Primaries`], and five implementations: the bundled
//! [`KvDb`] (`faultline-kv`), [`EtcdDb`], [`PostgresDb`] (a single primary),
//! [`ZookeeperDb`] (an ensemble), and [`FileDb`] (any database, described in a TOML file).
//!
//! A `Db` is built with the cluster's [`Node`]s (so it knows every peer) and then driven
//! one node at a time. Each node keeps everything in its directory on its host:
//! `data/`, `node.log`, `node.pid`.

mod capability;
mod elections;
mod etcd;
mod file;
mod http;
mod kv;
mod kv_status;
mod lazyfs;
mod line;
mod postgres;
mod zookeeper;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use capability::{
    Capabilities, FAKETIME_LIBS, FakeClock, Pause, Primaries, Support, faketime_env,
    faketime_installed,
};
pub use elections::{ElectionTiming, Elections, NodeView};
pub use etcd::EtcdDb;
pub use file::{DbFile, FileDb, PLACEHOLDERS, Ready, Stop};
pub use http::http_post;
pub use kv::{Bug, CommitProtocol, Consensus, KvDb};
pub use kv_status::{ShardStatus, leads_any_shard, shard_statuses};
pub use lazyfs::{Lazyfs, PowerLoss};
pub use line::request_line;
pub(crate) use line::resolve;
pub use postgres::{PostgresDb, startup_probe};
pub use zookeeper::{SLF4J_SIMPLE_JAR, ZOOKEEPER_JAR, ZookeeperDb, four_letter_word};

use crate::error::ClusterError;
use crate::remote::{Cmd, Remote, Signal};

/// One node of a cluster: a host and where the database lives on it.
#[derive(Clone)]
pub struct Node {
    /// Its id, from 1 (the database's member id where it has one).
    pub id: u32,
    /// Its name, e.g. `n1`.
    pub name: String,
    /// The address (IP or host name) its peers and the controller reach it at.
    pub addr: String,
    /// Its directory on the host (data, log, pid file).
    pub dir: PathBuf,
    /// The host.
    pub remote: Arc<dyn Remote>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("dir", &self.dir)
            .field("host", &self.remote.host())
            .finish()
    }
}

impl Node {
    /// The node's data directory: `DIR/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The node's log file: `DIR/node.log`.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// The node's pid file: `DIR/node.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("node.pid")
    }
}

/// A database under test (Jepsen's `DB`, `Kill` and `LogFiles` in one small trait).
///
/// Every method acts on one node and is bounded in time; errors name the node. Methods
/// must not touch other nodes, and must not inject faults.
pub trait Db: Send + Sync {
    /// The database's name, e.g. `faultline-kv`.
    fn name(&self) -> &str;

    /// What this kind of database can do (the same facts as its kind's constant, e.g.
    /// [`KvDb::CAPABILITIES`]); the faults of a run are checked against them. By
    /// default, none of the extras ([`Capabilities::NONE`]).
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// Installs the database on `node` (binary, configuration, empty data directory) and
    /// starts it. Does not wait for it to be ready ([`Db::await_ready`]).
    fn setup(&self, node: &Node) -> Result<(), ClusterError>;

    /// Stops the node (SIGKILL) and wipes its data directory. Keeps its log file.
    /// Succeeds if it was not set up.
    fn teardown(&self, node: &Node) -> Result<(), ClusterError> {
        self.kill(node)?;
        node.remote.run_ok(
            &Cmd::new("rm")
                .args(["-rf", &node.data_dir().to_string_lossy()])
                .timeout(Duration::from_secs(60)),
        )?;
        Ok(())
    }

    /// Starts the (set up, stopped) node, keeping its data. Does not wait for it to be
    /// ready. Starting a running node is an error.
    fn start(&self, node: &Node) -> Result<(), ClusterError>;

    /// Kills the node with SIGKILL and waits until it is gone (at most 10 s).
    /// Killing a stopped node succeeds.
    fn kill(&self, node: &Node) -> Result<(), ClusterError> {
        kill_and_wait(node)
    }

    /// Waits until the node serves clients: its client port accepts connections and a
    /// request answers. The error names the node and its log file.
    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError>;

    /// Where clients connect to the node (`addr:port`).
    fn client_addr(&self, node: &Node) -> String;

    /// The node's log files, on its host.
    fn log_files(&self, node: &Node) -> Vec<PathBuf> {
        vec![node.log_file()]
    }

    /// Crash patterns of this database's logs, beyond the node-log check's default set
    /// (panics, fatal errors, data races, sanitizers, segfaults): case-sensitive
    /// substrings, a leading `^` anchoring one at the line's start. A log line holding
    /// one is a `node-log-crash` anomaly (`docs/checkers.md`, "Node logs").
    fn log_patterns(&self) -> Vec<String> {
        Vec::new()
    }

    /// The pause capability, if the database has it.
    fn pause(&self) -> Option<&dyn Pause> {
        None
    }

    /// The leader discovery capability, if the database has a leader.
    fn primaries(&self) -> Option<&dyn Primaries> {
        None
    }

    /// Election introspection (each node's role, term and vote; the election timing),
    /// if the database reports them.
    fn elections(&self) -> Option<&dyn Elections> {
        None
    }

    /// The per-node clock capability, if the database's nodes run under a fake clock.
    fn fake_clock(&self) -> Option<&dyn FakeClock> {
        None
    }

    /// The power-loss capability, if the nodes' data directories can lose unsynced
    /// writes (see [`Lazyfs`]).
    fn power_loss(&self) -> Option<&dyn PowerLoss> {
        None
    }
}

/// Sets up `db` on every node in parallel, then waits for all to be ready.
pub fn setup_all(db: &dyn Db, nodes: &[Node], timeout: Duration) -> Result<(), ClusterError> {
    let each = |f: &(dyn Fn(&Node) -> Result<(), ClusterError> + Sync)| {
        thread::scope(|s| {
            let handles: Vec<_> = nodes.iter().map(|n| s.spawn(move || f(n))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ClusterError::Config("a setup thread panicked".into()))
                    })
                })
                .collect::<Result<Vec<()>, ClusterError>>()
        })
    };
    each(&|n| db.setup(n))?;
    each(&|n| db.await_ready(n, timeout))?;
    Ok(())
}

/// Tears `db` down on every node in parallel; returns the first error after trying all.
pub fn teardown_all(db: &dyn Db, nodes: &[Node]) -> Result<(), ClusterError> {
    let results: Vec<Result<(), ClusterError>> = thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| s.spawn(move || db.teardown(n)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ClusterError::Config("a teardown thread panicked".into()))
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

pub(crate) fn kill_and_wait(node: &Node) -> Result<(), ClusterError> {
    let pid_file = node.pid_file();
    node.remote.signal(&pid_file, Signal::Kill)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.remote.is_running(&pid_file)? {
        if Instant::now() >= deadline {
            return Err(ClusterError::Protocol {
                node: node.name.clone(),
                message: format!(
                    "still running 10 s after SIGKILL (pid file {})",
                    pid_file.display()
                ),
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Polls `probe` until it succeeds or `timeout` passes; the error names the node, the
/// address and the log file, and carries the last probe's error.
pub(crate) fn wait_until(
    db: &str,
    node: &Node,
    addr: &str,
    timeout: Duration,
    probe: impl FnMut() -> Result<(), String>,
) -> Result<(), ClusterError> {
    wait_until_every(db, node, addr, timeout, Duration::from_millis(20), probe)
}

/// [`wait_until`], probing every `interval`.
pub(crate) fn wait_until_every(
    db: &str,
    node: &Node,
    addr: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<(), String>,
) -> Result<(), ClusterError> {
    let start = Instant::now();
    loop {
        let last = match probe() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let exited = !node.remote.is_running(&node.pid_file()).unwrap_or(true);
        if exited || start.elapsed() >= timeout {
            let last = if exited {
                format!("the process exited ({last})")
            } else {
                last
            };
            return Err(ClusterError::NotReady {
                node: node.name.clone(),
                what: format!("{db} at {addr}"),
                after: start.elapsed(),
                last,
                log: node.log_file(),
            });
        }
        thread::sleep(interval);
    }
}
