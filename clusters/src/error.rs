//! Errors of the hosts layer: each names the host, and the command or file.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::status::{ExitStatus, Signal};

/// Something went wrong reaching or driving a host. These are harness failures (rule 3
/// of the style guide): they stop a run cleanly, they are not operation outcomes.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The program to run does not exist on the host.
    #[error(
        "{host}: cannot run `{command}`: program `{program}` not found (is it installed and on PATH?)"
    )]
    ProgramNotFound {
        /// The host.
        host: String,
        /// The whole command.
        command: String,
        /// The missing program.
        program: String,
    },
    /// The command could not be started, or waited for.
    #[error("{host}: cannot run `{command}`: {source}")]
    Spawn {
        /// The host.
        host: String,
        /// The command.
        command: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The command was still running at its timeout, and was killed.
    #[error("{host}: `{command}` did not finish within {after:?}; killed it")]
    Timeout {
        /// The host.
        host: String,
        /// The command.
        command: String,
        /// The timeout.
        after: Duration,
    },
    /// The command exited unsuccessfully (from [`crate::Remote::run_ok`]).
    #[error("{host}: `{command}` failed with {status}: {stderr}")]
    Failed {
        /// The host.
        host: String,
        /// The command.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A file or directory could not be read, written or created.
    #[error("{host}: cannot {action} {}: {source}", path.display())]
    File {
        /// The host the file is on (or `localhost` for the controller's side of a copy).
        host: String,
        /// What was being done, e.g. `read`, `write`, `create directory`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A daemon is already running under this pid file.
    #[error("{host}: cannot start `{command}`: already running as pid {pid} (pid file {})", pid_file.display())]
    AlreadyRunning {
        /// The host.
        host: String,
        /// The daemon's command.
        command: String,
        /// The running process.
        pid: u32,
        /// The pid file.
        pid_file: PathBuf,
    },
    /// A pid file that does not hold a process id.
    #[error("{host}: pid file {} does not hold a pid: {content:?}", pid_file.display())]
    BadPidFile {
        /// The host.
        host: String,
        /// The pid file.
        pid_file: PathBuf,
        /// What it holds (truncated).
        content: String,
    },
    /// A signal could not be sent (other than to a process that is gone).
    #[error("{host}: cannot send {signal} to pid {pid}: {reason}")]
    Signal {
        /// The host.
        host: String,
        /// The process.
        pid: u32,
        /// The signal.
        signal: Signal,
        /// Why.
        reason: String,
    },
}

impl RemoteError {
    /// The host the error happened on.
    pub fn host(&self) -> &str {
        match self {
            RemoteError::ProgramNotFound { host, .. }
            | RemoteError::Spawn { host, .. }
            | RemoteError::Timeout { host, .. }
            | RemoteError::Failed { host, .. }
            | RemoteError::File { host, .. }
            | RemoteError::AlreadyRunning { host, .. }
            | RemoteError::BadPidFile { host, .. }
            | RemoteError::Signal { host, .. } => host,
        }
    }
}

/// A state file could not be used, or resources could not all be removed.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Reading or writing a state file or directory failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A state file that is not valid JSON of the expected shape.
    #[error("state file {} is corrupt: {reason}; fix or delete it, then remove its resources by hand", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The run directory already holds a state file.
    #[error("state file {} already exists: another run uses this directory (run `faultline clean` if it crashed)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A resource was to be recorded after the run's teardown began (e.g. on Ctrl-C):
    /// it must not be created, or nothing would remove it.
    #[error("{}: the run is being torn down; not creating {resource}", path.display())]
    Closed {
        /// The state file.
        path: PathBuf,
        /// The resource refused.
        resource: String,
    },
    /// Some resources could not be removed; they stay recorded for a later clean.
    #[error("{}: could not remove {} resource(s): {}", path.display(), failures.len(), failures.join("; "))]
    Incomplete {
        /// The state file (or directory cleaned).
        path: PathBuf,
        /// One line per resource: what, and why.
        failures: Vec<String>,
    },
}

impl CleanupError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: io::Error) -> Self {
        CleanupError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Setting up hosts or a database failed: a harness failure that stops the run.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A prerequisite is missing: what, and how to get it.
    #[error("{what}: {fix}")]
    Prerequisite {
        /// What is missing, e.g. "`nft` not found".
        what: String,
        /// What to do, e.g. "install it: apt-get install nftables".
        fix: String,
    },
    /// A bad setting (node count, address, path).
    #[error("{0}")]
    Config(String),
    /// A host command, file or daemon failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The resource registry failed.
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    /// A node did not become ready in time.
    #[error("{node}: {what} not ready after {after:?}: {last}; see its log {}", log.display())]
    NotReady {
        /// The node.
        node: String,
        /// The database and the address probed, e.g. `etcd at 10.201.7.2:2379`.
        what: String,
        /// How long we waited.
        after: Duration,
        /// The last probe's error.
        last: String,
        /// The node's log file.
        log: PathBuf,
    },
    /// A command on a node ran but failed (e.g. `nft -f`).
    #[error("{node}: `{command}` failed: {reason}")]
    Command {
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// Its error output.
        reason: String,
    },
    /// A node answered something unexpected.
    #[error("{node}: {message}")]
    Protocol {
        /// The node.
        node: String,
        /// What was wrong.
        message: String,
    },
}
