//! The resource registry: every resource a run creates on this machine (namespace, link,
//! nft table or rule, process, container, Docker network…), and its directory on each
//! SSH host, is written to the run's state
//! file *before* it is created, so that teardown, and [`clean`] after a crash, can remove
//! it.
//!
//! The state file is JSON, named [`STATE_FILE`], in the run's directory:
//!
//! ```json
//! {"version":1,"run":"3fa9c1","owner":{"pid":4242,"start_time":991},
//!  "resources":[{"kind":"link","name":"flbr-3fa9c1"},{"kind":"namespace","name":"fl-3fa9c1-n1"}]}
//! ```
//!
//! Removal goes in reverse order of recording and tolerates resources that are already
//! gone, so it can be repeated until it succeeds.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::CleanupError;
use crate::ssh::HostSpec;

mod interrupt;
mod remove;
#[cfg(test)]
mod tests;

pub use interrupt::{InterruptGuard, teardown_on_interrupt};
pub use remove::{remove, start_time};

/// The name of a run's state file.
pub const STATE_FILE: &str = "faultline-resources.json";

/// How deep [`clean`] looks for state files below the directory it is given.
const CLEAN_DEPTH: usize = 4;

/// One resource on this machine (the controller's), and what it takes to remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Resource {
    /// A network namespace; removal first kills every process in it.
    Namespace {
        /// Its name (`ip netns list`).
        name: String,
    },
    /// A network interface in the host namespace (a bridge, or the host end of a veth
    /// pair, whose removal removes the other end too).
    Link {
        /// Its name (≤ 15 characters).
        name: String,
    },
    /// A whole nft table, in the host namespace or inside a network namespace.
    NftTable {
        /// Its family (`inet`, `ip`, `bridge`…).
        family: String,
        /// Its name.
        name: String,
        /// The network namespace holding it: a named namespace (`ip netns`), or
        /// `container:NAME` for a Docker container's (entered with `nsenter`); `None` for
        /// the host's.
        netns: Option<String>,
    },
    /// One rule added to a chain the run does not own (e.g. Docker's `ip filter
    /// FORWARD`), found again by its unique comment.
    NftRule {
        /// The table's family.
        family: String,
        /// The table.
        table: String,
        /// The chain.
        chain: String,
        /// The rule's comment, unique to the run.
        comment: String,
    },
    /// A process (and its process group); removed with SIGKILL only if the pid still
    /// names the same process (same start time), so a reused pid is left alone.
    Process {
        /// Its pid.
        pid: u32,
        /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22).
        start_time: u64,
    },
    /// A Docker container, removed with `docker rm -f`.
    Container {
        /// Its name or id.
        name: String,
    },
    /// A Docker network, removed with `docker network rm`.
    DockerNetwork {
        /// Its name or id.
        name: String,
    },
    /// A run's directory on an SSH host (`/tmp/faultline-RUN`: the nodes' binaries,
    /// data, logs), removed with `rm -rf` over a new SSH session; the directory and the
    /// host's name are checked again before ([`crate::ssh::check_run_dir`]).
    SshDir {
        /// The host, as in the hosts file.
        host: HostSpec,
        /// The known_hosts file its key is checked against.
        known_hosts: PathBuf,
        /// Whether a key missing from `known_hosts` is accepted.
        accept_unknown_host_keys: bool,
        /// The directory, `/tmp/faultline-RUN`.
        dir: PathBuf,
    },
    /// Anything else: a command that removes it, run on this machine, which must succeed
    /// (exit 0) also when the resource is already gone.
    Command {
        /// What it removes, for messages.
        description: String,
        /// The command (argv, no shell).
        argv: Vec<String>,
    },
}

impl Resource {
    /// A process resource for `pid`, with its current start time; `None` if `pid` is
    /// not running.
    pub fn process(pid: u32) -> Option<Resource> {
        start_time(pid).map(|start_time| Resource::Process { pid, start_time })
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Namespace { name } => write!(f, "namespace {name}"),
            Resource::Link { name } => write!(f, "link {name}"),
            Resource::NftTable {
                family,
                name,
                netns: Some(ns),
            } => write!(f, "nft table {family} {name} in namespace {ns}"),
            Resource::NftTable { family, name, .. } => write!(f, "nft table {family} {name}"),
            Resource::NftRule {
                family,
                table,
                chain,
                comment,
            } => write!(f, "nft rule \"{comment}\" in {family} {table} {chain}"),
            Resource::Process { pid, .. } => write!(f, "process {pid}"),
            Resource::Container { name } => write!(f, "container {name}"),
            Resource::DockerNetwork { name } => write!(f, "docker network {name}"),
            Resource::SshDir { host, dir, .. } => write!(
                f,
                "directory {} on SSH host {} ({}:{})",
                dir.display(),
                host.name,
                host.address,
                host.port
            ),
            Resource::Command { description, .. } => f.write_str(description),
        }
    }
}

/// The process that owns a state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Its pid.
    pub pid: u32,
    /// Its start time (see [`Resource::Process`]).
    pub start_time: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether this owner is still running.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The format's version: 1.
    pub version: u32,
    /// The run's id.
    pub run: String,
    /// The controller that created the resources.
    pub owner: Owner,
    /// The resources, in order of creation.
    pub resources: Vec<Resource>,
}

/// A run's registry of resources, persisted to its state file on every change. Shared
/// by every part of the run that creates resources (behind an `Arc`).
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    state: Mutex<State>,
    /// Set when teardown begins (under the same lock as the resources): from then on
    /// nothing more may be recorded, so an interrupted run cannot create a resource
    /// after its teardown ran.
    closed: std::sync::atomic::AtomicBool,
}

impl Registry {
    /// Starts the registry of run `run` in `dir` (created if missing), writing an empty
    /// state file there. Refuses if the directory already holds a state file.
    pub fn create(dir: &Path, run: &str) -> Result<Registry, CleanupError> {
        fs::create_dir_all(dir).map_err(|e| CleanupError::io("create directory", dir, e))?;
        let path = dir.join(STATE_FILE);
        if path.exists() {
            return Err(CleanupError::Exists { path });
        }
        let registry = Registry {
            path,
            state: Mutex::new(State {
                version: 1,
                run: run.to_string(),
                owner: Owner::current(),
                resources: Vec::new(),
            }),
            closed: std::sync::atomic::AtomicBool::new(false),
        };
        registry.save(&registry.lock())?;
        Ok(registry)
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's id.
    pub fn run(&self) -> String {
        self.lock().run.clone()
    }

    /// The resources recorded and not yet removed, in order of creation.
    pub fn resources(&self) -> Vec<Resource> {
        self.lock().resources.clone()
    }

    /// Records `resource`; call it *before* creating the resource. The state file is
    /// written (atomically) before this returns.
    pub fn record(&self, resource: Resource) -> Result<(), CleanupError> {
        let mut state = self.lock();
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CleanupError::Closed {
                path: self.path.clone(),
                resource: resource.to_string(),
            });
        }
        state.resources.push(resource);
        self.save(&state)
    }

    /// Forgets `resource` (its last record), after it was removed some other way (e.g. a
    /// healed partition's table).
    pub fn forget(&self, resource: &Resource) -> Result<(), CleanupError> {
        let mut state = self.lock();
        if let Some(i) = state.resources.iter().rposition(|r| r == resource) {
            state.resources.remove(i);
        }
        self.save(&state)
    }

    /// Removes every recorded resource, last first, tolerating those already gone, and
    /// deletes the state file once all are gone. From its start, [`Registry::record`]
    /// refuses new resources. On failures, keeps the failed ones in the
    /// file (so a later [`clean`] retries them) and returns them all in one error.
    pub fn teardown(&self) -> Result<(), CleanupError> {
        let mut state = self.lock();
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut failed = Vec::new();
        while let Some(resource) = state.resources.pop() {
            if let Err(reason) = remove(&resource) {
                failed.push((resource, reason));
            }
        }
        if failed.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(CleanupError::io("remove", &self.path, e))
                }
                _ => Ok(()),
            };
        }
        state.resources = failed.iter().rev().map(|(r, _)| r.clone()).collect();
        self.save(&state)?;
        Err(CleanupError::Incomplete {
            path: self.path.clone(),
            failures: failed
                .iter()
                .map(|(r, why)| format!("{r}: {why}"))
                .collect(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, state: &State) -> Result<(), CleanupError> {
        write_state(&self.path, state)
    }
}

fn write_state(path: &Path, state: &State) -> Result<(), CleanupError> {
    let json = serde_json::to_string_pretty(state).map_err(|e| CleanupError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, json + "\n")
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| CleanupError::io("write", path, e))
}

/// Reads a state file.
pub fn read_state(path: &Path) -> Result<State, CleanupError> {
    let text = fs::read_to_string(path).map_err(|e| CleanupError::io("read", path, e))?;
    serde_json::from_str(&text).map_err(|e| CleanupError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// What [`clean`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// State files whose resources are now all gone (the files are deleted).
    pub cleaned: Vec<PathBuf>,
    /// How many resources were removed (or found already gone).
    pub removed: usize,
    /// State files left alone because their controller is still running.
    pub skipped: Vec<PathBuf>,
}

/// Removes whatever crashed or killed controllers left: every state file found in
/// `state_dir` or below it (up to 4 levels) whose owner is no longer running, or is this
/// process. Files of a live controller (another run in progress) are skipped. Errors
/// (after trying everything, including corrupt state files) list what could not be
/// removed; the failed resources stay in their files.
pub fn clean(state_dir: &Path) -> Result<CleanReport, CleanupError> {
    let mut files = Vec::new();
    find_state_files(state_dir, CLEAN_DEPTH, &mut files)?;
    files.sort();
    let me = Owner::current();
    let mut report = CleanReport::default();
    let mut failures = Vec::new();
    for path in files {
        let mut state = match read_state(&path) {
            Ok(state) => state,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        if state.owner != me && state.owner.is_alive() {
            report.skipped.push(path);
            continue;
        }
        let mut failed = Vec::new();
        while let Some(resource) = state.resources.pop() {
            match remove(&resource) {
                Ok(()) => report.removed += 1,
                Err(why) => {
                    failures.push(format!("{}: {resource}: {why}", path.display()));
                    failed.push(resource);
                }
            }
        }
        if failed.is_empty() {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    failures.push(CleanupError::io("remove", &path, e).to_string());
                }
                _ => report.cleaned.push(path),
            }
        } else {
            failed.reverse();
            state.resources = failed;
            if let Err(e) = write_state(&path, &state) {
                failures.push(e.to_string());
            }
        }
    }
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(CleanupError::Incomplete {
            path: state_dir.to_path_buf(),
            failures,
        })
    }
}

fn find_state_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), CleanupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(CleanupError::io("read directory", dir, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() && entry.file_name() == STATE_FILE {
            out.push(path);
        } else if kind.is_dir() && depth > 0 {
            // A subdirectory that vanished or cannot be read is not ours to worry about.
            let _ = find_state_files(&path, depth - 1, out);
        }
    }
    Ok(())
}
