//! The nemesis's errors: each names the node or host, and what failed.

use std::path::PathBuf;

use faultline_clusters::docker::DockerError;
use faultline_clusters::{ClusterError, RemoteError};

use crate::partition::TopologyError;

/// A fault could not be applied or lifted. These are harness failures (rule 3 of the
/// style guide): they stop a run cleanly (which still heals), they are not operation
/// outcomes.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A command on a node failed (e.g. `nft -f` in its namespace).
    #[error("{node}: `{command}` failed: {reason}")]
    Command {
        /// The node.
        node: String,
        /// The command, as a shell would read it.
        command: String,
        /// Its error output, or why it could not run.
        reason: String,
    },
    /// The hosts layer failed on a node (kill, start, pause, resume…).
    #[error("{node}: cannot {action}: {source}")]
    Node {
        /// The node.
        node: String,
        /// What was being done, e.g. `kill`, `pause`.
        action: &'static str,
        /// The hosts layer's error (names the host and command).
        source: Box<ClusterError>,
    },
    /// A killed node did not come back.
    #[error("{node}: did not come back after a restart (log: {}): {source}", log.display())]
    NotBack {
        /// The node.
        node: String,
        /// Its log file, on its host.
        log: PathBuf,
        /// Why (start failed, or it did not become ready in time).
        source: Box<ClusterError>,
    },
    /// A remote operation failed (uploading a ruleset…).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The hosts layer failed (e.g. an nft table could not be changed).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Docker failed on a node.
    #[error("{node}: {source}")]
    Docker {
        /// The node.
        node: String,
        /// Docker's error.
        source: Box<DockerError>,
    },
    /// A resource could not be recorded in the run's registry before its creation.
    #[error("cannot record {resource} in the run's state file: {reason}")]
    Record {
        /// The resource.
        resource: String,
        /// Why.
        reason: String,
    },
    /// The database lacks a capability this nemesis needs.
    #[error("database {db} has no {capability} capability; cannot build a {nemesis}")]
    Unsupported {
        /// The database's name.
        db: String,
        /// The missing capability, e.g. `pause`.
        capability: &'static str,
        /// The nemesis that needs it.
        nemesis: &'static str,
    },
    /// A nemesis cannot act on this database at all, and why.
    #[error("a {nemesis} cannot act on database {db}: {reason}")]
    Refused {
        /// The database's name.
        db: String,
        /// The nemesis.
        nemesis: &'static str,
        /// Why, and what would make it possible.
        reason: String,
    },
    /// A nemesis was asked for a fault function it does not handle.
    #[error("no nemesis handles f {f:?} (handled: {})", handled.join(", "))]
    UnknownF {
        /// The function asked for.
        f: String,
        /// The functions handled.
        handled: Vec<String>,
    },
    /// Two nemeses of a composition handle the same fault function.
    #[error("two composed nemeses both handle f {f:?}")]
    DuplicateF {
        /// The function.
        f: String,
    },
    /// An operation's value is not one the nemesis understands.
    #[error("{f}: bad value {value}: expected {expected}")]
    BadValue {
        /// The function.
        f: String,
        /// The value given.
        value: String,
        /// What is understood.
        expected: String,
    },
    /// A node is not one of the nemesis's nodes, or has no usable address.
    #[error("node {node}: {reason}")]
    BadNode {
        /// The node.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// A partition topology cannot be built over the nodes.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// Healing failed on several counts; every part was tried.
    #[error("heal failed: {}", .0.join("; "))]
    Heal(Vec<String>),
}

/// The first error of `results`, or all of them in one [`NemesisError::Heal`] when
/// there are several.
pub(crate) fn collect(results: Vec<Result<(), NemesisError>>) -> Result<(), NemesisError> {
    let mut errors: Vec<NemesisError> = results.into_iter().filter_map(Result::err).collect();
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(NemesisError::Heal(
            errors.iter().map(ToString::to_string).collect(),
        )),
    }
}
