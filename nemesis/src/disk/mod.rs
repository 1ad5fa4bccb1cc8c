//! [`DiskNemesis`]: damage to a crashed node's write-ahead log, then a restart: a torn
//! tail (recoverable: the node must come back with every acknowledged write) or
//! corruption in the middle (the node must refuse to start, naming the file); and a
//! full disk under a running node (see [`crate::disk_full`]): it must not acknowledge
//! what it could not write.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faultline_clusters::{ClusterError, Db, Node, Registry};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::disk_full::{FullDisks, mount_point};
use crate::error::{NemesisError, collect};
use crate::nemesis::{Nemesis, unknown_f};
use crate::process::DEFAULT_READY_TIMEOUT;

mod log;

/// The `f` that crashes a node, cuts the tail of its log and restarts it.
pub const TRUNCATE_LOG: &str = "truncate-log";
/// The `f` that crashes a node, flips bytes in the middle of its log and restarts it
/// (which must fail).
pub const CORRUPT_LOG: &str = "corrupt-log";
/// The `f` that fills a running node's disk.
pub const FILL_DISK: &str = "fill-disk";
/// The `f` that starts a random disk fault among those available (`truncate-log`, and
/// `fill-disk` where enabled); schedules use it.
pub const START_DISK: &str = "start-disk";
/// The `f` that undoes every disk fault: repairs every corrupted log, frees every full
/// disk, and restarts every node that is down.
pub const RESTORE_LOG: &str = "restore-log";

/// How long one file command may take.
const FILE_TIMEOUT: Duration = Duration::from_secs(60);

/// The byte ranges (start, length) of the whole records of a faultline-kv log image, in
/// order (a torn tail is not included).
pub use faultline_kv_proto::wal::record_spans as wal_records;
/// A node whose log this nemesis damaged, or whose disk it filled, and that is not yet
/// back.
struct Damaged {
    node: usize,
    /// For a corruption: where, and the original bytes, to put back.
    original: Option<(u64, Vec<u8>)>,
    /// Whether its disk is full.
    full: bool,
}

/// Damages write-ahead logs of crashed nodes (for `faultline-kv`, whose log is
/// `DIR/data/wal`):
///
/// - `truncate-log` (null, `{"node":"n2"}`, `{"node":"n2","torn_bytes":N}` or
///   `{"node":"n2","bytes":N}`): crashes the node (a random one by default), damages the
///   tail of its log, restarts it and waits until it serves. By default a torn write:
///   the first N bytes (random unless given, short of a whole record) of a copy of its
///   last record are appended, as a crash in the middle of writing a record leaves them;
///   the node never acknowledged that record, so it must come back with everything it
///   had made durable. With `bytes`, the last N bytes are cut instead: data the node
///   had fsynced is lost (beyond what a correct node is built to survive, if the record
///   held entries of a commit quorum), and a `log-damaged` line in the node's log tells
///   the node-log check so. Returns `{"node","file","size","torn_bytes"|"truncated_bytes",
///   "restarted":true}`; a node that does not come back is reported
///   (`"restarted":false` with `"error"`), not an error, and stays down until
///   `restore-log`.
/// - `corrupt-log` (null or `{"node":"n2","bytes":N}`, N from 1 to 64, default 4;
///   opt-in: schedules never choose it): SIGKILLs the node, flips N bytes inside a record
///   in the middle of its log (valid records follow it), starts it and waits until it
///   exits. Returns `{"node","file","offset","bytes","refused":true,"log":LINE}` where
///   LINE is the node's own message naming the file and offset: refusing is the expected
///   outcome, not a harness failure. A node that serves anyway is reported with
///   `"refused":false`: a finding about the database.
/// - `fill-disk` (null or `{"node":"n2"}`; needs [`DiskNemesis::disk_full`]): fills the
///   running node's data directory so its next write fails with `ENOSPC`. The first time
///   for a node, its data directory is moved onto a tmpfs first (a kill and a restart).
///   Returns `{"node","dir","mount","filler_bytes","moved":BOOL}`. The node must not
///   acknowledge what it cannot write; faultline-kv crashes, naming the file.
/// - `start-disk` (null only): a random one of `truncate-log` and (where enabled)
///   `fill-disk` with a null value; returns that fault's value with `"fault":F`.
/// - `restore-log` (and [`Nemesis::heal`]): puts the original bytes of every corrupted
///   log back (the node was down since, so the log is exactly as before), frees every
///   full disk and restarts its node afresh (it may be exiting on a write that failed
///   just before), restarts every other damaged or crashed node and waits until each
///   serves.
///   Returns `{"restored":[…]}`.
pub struct DiskNemesis {
    db: Arc<dyn Db>,
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
    damaged: Vec<Damaged>,
    ready_timeout: Duration,
    full_disks: Option<FullDisks>,
    /// Which nodes' data directories are on a tmpfs of ours.
    mounted: Vec<bool>,
}

impl DiskNemesis {
    /// Log damage among `nodes` of `db`, random choices drawn from a ChaCha8 RNG seeded
    /// with `seed`. Refused for databases without faultline-kv's log layout (the
    /// `kv_log` capability).
    pub fn new(db: Arc<dyn Db>, nodes: Vec<Node>, seed: u64) -> Result<DiskNemesis, NemesisError> {
        if let Err(reason) = db.capabilities().kv_log {
            return Err(NemesisError::Refused {
                db: db.name().to_string(),
                nemesis: "disk nemesis",
                reason: reason.into(),
            });
        }
        Ok(DiskNemesis {
            db,
            mounted: vec![false; nodes.len()],
            nodes,
            rng: ChaCha8Rng::seed_from_u64(seed),
            damaged: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            full_disks: None,
        })
    }

    /// Enables `fill-disk`, for nodes whose directories are directories of the
    /// controller (local namespace hosts): tmpfs mounts made on the controller and
    /// recorded in `registry` (the run's) before they are made.
    pub fn disk_full(mut self, registry: Arc<Registry>) -> DiskNemesis {
        self.full_disks = Some(FullDisks::new(registry));
        self
    }

    /// How long a restarted node has to serve again.
    pub fn ready_timeout(mut self, timeout: Duration) -> DiskNemesis {
        self.ready_timeout = timeout;
        self
    }

    /// The names of the nodes whose log was damaged and that are not back yet.
    pub fn damaged(&self) -> Vec<String> {
        self.damaged
            .iter()
            .map(|d| self.nodes[d.node].name.clone())
            .collect()
    }

    /// The node's log file, on its host.
    pub fn wal(node: &Node) -> PathBuf {
        node.data_dir().join("wal")
    }

    /// The targeted node: `value["node"]`, or a random one not already damaged.
    fn target(&mut self, f: &str, value: &Value) -> Result<usize, NemesisError> {
        let bad = || NemesisError::BadValue {
            f: f.to_string(),
            value: value.to_string(),
            expected: "null or {\"node\": NAME, \"bytes\": N} (each optional)".into(),
        };
        match value {
            Value::Null => {}
            Value::Object(o) if o.keys().all(|k| k == "node" || k == "bytes") => {}
            _ => return Err(bad()),
        }
        let i = match value.get("node") {
            None | Some(Value::Null) => {
                let free: Vec<usize> = (0..self.nodes.len())
                    .filter(|i| !self.damaged.iter().any(|d| d.node == *i))
                    .collect();
                if free.is_empty() {
                    return Err(NemesisError::BadNode {
                        node: "*".into(),
                        reason: "every node's log is already damaged; restore-log first".into(),
                    });
                }
                free[self.rng.random_range(0..free.len())]
            }
            Some(name) => name
                .as_str()
                .and_then(|name| self.nodes.iter().position(|n| n.name == name))
                .ok_or_else(bad)?,
        };
        if self.damaged.iter().any(|d| d.node == i) {
            return Err(NemesisError::BadNode {
                node: self.nodes[i].name.clone(),
                reason: "its log is already damaged; restore-log first".into(),
            });
        }
        Ok(i)
    }

    fn cmd_error(node: &Node, what: String, reason: String) -> NemesisError {
        NemesisError::Command {
            node: node.name.clone(),
            command: what,
            reason,
        }
    }

    /// Starts node `i` and waits until it serves.
    fn restart(&self, i: usize) -> Result<(), ClusterError> {
        let node = &self.nodes[i];
        if !node.remote.is_running(&node.pid_file())? {
            self.db.start(node)?;
        }
        self.db.await_ready(node, self.ready_timeout)
    }

    fn fill(&mut self, value: &Value) -> Result<Value, NemesisError> {
        if self.full_disks.is_none() {
            return Err(NemesisError::BadValue {
                f: FILL_DISK.into(),
                value: value.to_string(),
                expected: "nothing: disk-full is not enabled on these hosts (local \
                           namespace hosts only)"
                    .into(),
            });
        }
        if value.get("bytes").is_some() {
            return Err(NemesisError::BadValue {
                f: FILL_DISK.into(),
                value: value.to_string(),
                expected: "null or {\"node\": NAME}".into(),
            });
        }
        let i = self.target(FILL_DISK, value)?;
        let node = self.nodes[i].clone();
        let moved = !self.mounted[i];
        if moved {
            self.db.kill(&node).map_err(|e| NemesisError::Node {
                node: node.name.clone(),
                action: "kill",
                source: Box::new(e),
            })?;
            // From here on, heal restarts it whatever happens.
            self.damaged.push(Damaged {
                node: i,
                original: None,
                full: true,
            });
            self.disks()?.mount(&node)?;
            self.mounted[i] = true;
            self.restart(i).map_err(|e| NemesisError::NotBack {
                node: node.name.clone(),
                log: node.log_file(),
                source: Box::new(e),
            })?;
        } else {
            self.damaged.push(Damaged {
                node: i,
                original: None,
                full: true,
            });
        }
        let filler = self.disks()?.fill(&node)?;
        Ok(json!({
            "node": node.name,
            "dir": node.data_dir().display().to_string(),
            "mount": mount_point(&node).display().to_string(),
            "filler_bytes": filler,
            "moved": moved,
        }))
    }

    fn disks(&self) -> Result<&FullDisks, NemesisError> {
        self.full_disks
            .as_ref()
            .ok_or_else(|| NemesisError::BadNode {
                node: "*".into(),
                reason: "disk-full is not enabled".into(),
            })
    }

    fn start_random(&mut self, value: &Value) -> Result<Value, NemesisError> {
        if !value.is_null() {
            return Err(NemesisError::BadValue {
                f: START_DISK.into(),
                value: value.to_string(),
                expected: "null (ask for truncate-log or fill-disk to choose)".into(),
            });
        }
        let mut kinds = vec![TRUNCATE_LOG];
        if self.full_disks.is_some() {
            kinds.push(FILL_DISK);
        }
        let f = kinds[self.rng.random_range(0..kinds.len())];
        let mut result = self.invoke(f, &Value::Null)?;
        if let Value::Object(o) = &mut result {
            o.insert("fault".into(), json!(f));
        }
        Ok(result)
    }

    /// Repairs and restarts every damaged node; the names of those back.
    fn restore(&mut self) -> Result<Vec<String>, NemesisError> {
        let mut results = Vec::new();
        let mut restored = Vec::new();
        let damaged = std::mem::take(&mut self.damaged);
        for d in damaged {
            let node = &self.nodes[d.node];
            let step = || -> Result<(), NemesisError> {
                if d.full {
                    if let Some(disks) = &self.full_disks {
                        disks.free(node)?;
                    }
                    // A node whose write failed just before the space came back may be
                    // on its way out: stop it for sure and start it afresh, rather than
                    // wait on a process about to exit (seen in the nightly suite).
                    self.db.kill(node).map_err(|e| NemesisError::Node {
                        node: node.name.clone(),
                        action: "kill",
                        source: Box::new(e),
                    })?;
                }
                if let Some((offset, bytes)) = &d.original {
                    self.db.kill(node).map_err(|e| NemesisError::Node {
                        node: node.name.clone(),
                        action: "kill",
                        source: Box::new(e),
                    })?;
                    self.write_at(d.node, *offset, bytes)?;
                }
                self.restart(d.node).map_err(|e| NemesisError::NotBack {
                    node: node.name.clone(),
                    log: node.log_file(),
                    source: Box::new(e),
                })
            };
            match step() {
                Ok(()) => {
                    restored.push(node.name.clone());
                    results.push(Ok(()));
                }
                Err(e) => {
                    results.push(Err(e));
                    self.damaged.push(d);
                }
            }
        }
        collect(results).map(|()| restored)
    }
}

impl Nemesis for DiskNemesis {
    fn fs(&self) -> &[&'static str] {
        &[
            TRUNCATE_LOG,
            CORRUPT_LOG,
            FILL_DISK,
            START_DISK,
            RESTORE_LOG,
        ]
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match f {
            TRUNCATE_LOG => self.truncate(value),
            CORRUPT_LOG => self.corrupt(value),
            FILL_DISK => self.fill(value),
            START_DISK => self.start_random(value),
            RESTORE_LOG => Ok(json!({ "restored": self.restore()? })),
            _ => Err(unknown_f(f, self.fs())),
        }
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        self.restore().map(drop)
    }
}
