//! The backend of a run, chosen once: where the nodes run and everything that depends
//! on it. A [`Backend`] gives the nodes, how network faults reach them ([`NetHosts`],
//! for the one nft engine and packet shaping), where programs are found on the hosts,
//! log collection and teardown; the harness and the nemesis never ask which kind it is.
//!
//! [`Planned`] is a backend that passed every check that can refuse a run (tools, root,
//! the Docker daemon, SSH hosts connected) and has created nothing yet;
//! [`Planned::create`] creates it. Adding a backend: a [`ClusterKind`] variant, a
//! [`Planned`] variant and its check, and a [`Backend`] implementation (see
//! `local.rs`, `docker.rs`, `ssh.rs` here).

mod docker;
mod local;
mod ssh;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cleanup::Registry;
use crate::db::{Db, Node};
use crate::docker::ImageContent;
use crate::error::ClusterError;
use crate::nft::NetHosts;
use crate::ssh::SshHost;

pub use ssh::SshCluster;

/// Where the nodes run (`--cluster`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterKind {
    /// Network namespaces on this machine.
    Local,
    /// Docker containers.
    Docker,
    /// Machines over SSH.
    Ssh,
}

impl ClusterKind {
    /// The kind's name, e.g. `local`.
    pub fn name(self) -> &'static str {
        match self {
            ClusterKind::Local => "local",
            ClusterKind::Docker => "docker",
            ClusterKind::Ssh => "ssh",
        }
    }

    /// Whether the nodes' directories are on the controller's filesystem (local
    /// namespaces), so the controller can mount filesystems under them (faultline-lazyfs,
    /// a tmpfs for full disks).
    pub fn shares_filesystem(self) -> bool {
        self == ClusterKind::Local
    }

    /// Whether the node image takes libfaketime from the controller (Docker), so clocks
    /// can be moved only when it is installed here.
    pub fn faketime_from_controller(self) -> bool {
        self == ClusterKind::Docker
    }
}

/// A program on the hosts: where it is, and whether it must be uploaded there from the
/// controller first (into each node's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Its path: on the controller when `upload`, else on the hosts.
    pub path: PathBuf,
    /// Whether the database must upload it.
    pub upload: bool,
}

/// The hosts of a run, created (Jepsen's `os` and `net` for one kind of host).
///
/// Every method is bounded in time. None starts or stops the database.
pub trait Backend: Send + Sync {
    /// Which kind of backend this is (for the configuration and messages only).
    fn kind(&self) -> ClusterKind;

    /// The nodes, `n1` first.
    fn nodes(&self) -> Vec<Node>;

    /// Whether the nodes' directories are on the controller's filesystem, so the
    /// controller can mount filesystems under them ([`ClusterKind::shares_filesystem`]).
    fn shares_filesystem(&self) -> bool {
        self.kind().shares_filesystem()
    }

    /// The run's registry: every resource of the run is recorded there before it is
    /// created.
    fn registry(&self) -> &Arc<Registry>;

    /// How network faults reach each node (for partitions, packet loss, delay and
    /// bandwidth limits). Creates nothing.
    fn net(&self) -> Result<NetHosts, ClusterError>;

    /// Where `local`, a program on the controller given to [`Planned::docker`] (or
    /// any, elsewhere), is found on the hosts.
    fn program(&self, local: &Path) -> Program;

    /// Copies every node's log files (as `db` names them) into `DIR/nodes/NODE/`.
    /// Returns the problems, which do not stop a run.
    fn collect_logs(&self, db: &dyn Db, run_dir: &Path) -> Vec<String> {
        download_logs(&self.nodes(), db, run_dir)
    }

    /// Removes the hosts and every resource they recorded. The database must have been
    /// torn down first.
    fn teardown(self: Box<Self>) -> Result<(), ClusterError>;
}

/// Downloads every node's log files into `DIR/nodes/NODE/`; the problems.
fn download_logs(nodes: &[Node], db: &dyn Db, run_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for node in nodes {
        let dir = run_dir.join("nodes").join(&node.name);
        if let Err(e) = fs::create_dir_all(&dir) {
            problems.push(format!("{}: {e}", dir.display()));
            continue;
        }
        for log in db.log_files(node) {
            let name = log
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| "node.log".into());
            if let Err(e) = node.remote.download(&log, &dir.join(name)) {
                problems.push(format!(
                    "{}: cannot fetch {}: {e}",
                    node.name,
                    log.display()
                ));
            }
        }
    }
    problems
}

/// A backend that passed every check that can refuse a run, before anything exists.
pub enum Planned {
    /// Network namespaces here.
    Local,
    /// Containers from an image holding `image`.
    Docker {
        /// What the image holds: the programs the nodes run, on its `PATH`, and what
        /// else the database needs.
        image: ImageContent,
    },
    /// SSH machines, connected.
    Ssh {
        /// The hosts, one per node.
        hosts: Vec<SshHost>,
    },
}

impl Planned {
    /// Local namespaces: root, `ip`, `nft` and the rest are checked.
    pub fn local() -> Result<Planned, ClusterError> {
        crate::netns::check_prerequisites()?;
        Ok(Planned::Local)
    }

    /// Containers holding `image`: the Docker CLI and daemon are checked.
    pub fn docker(image: ImageContent) -> Result<Planned, ClusterError> {
        crate::docker::check_prerequisites().map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Planned::Docker { image })
    }

    /// SSH machines, one per node, already connected.
    pub fn ssh(hosts: Vec<SshHost>) -> Planned {
        Planned::Ssh { hosts }
    }

    /// The kind of backend planned.
    pub fn kind(&self) -> ClusterKind {
        match self {
            Planned::Local => ClusterKind::Local,
            Planned::Docker { .. } => ClusterKind::Docker,
            Planned::Ssh { .. } => ClusterKind::Ssh,
        }
    }

    /// The names the `nodes` nodes will have, in the order of their ids (1 first):
    /// `n1…nN` on local namespaces and containers, the hosts file's names over SSH.
    pub fn node_names(&self, nodes: usize) -> Vec<String> {
        match self {
            Planned::Ssh { hosts } => hosts
                .iter()
                .take(nodes)
                .map(|h| h.spec().name.clone())
                .collect(),
            Planned::Local | Planned::Docker { .. } => {
                (1..=nodes).map(|i| format!("n{i}")).collect()
            }
        }
    }

    /// Creates `nodes` hosts `n1…` for the run whose directory is `run_dir` (the
    /// registry's state file goes there). On failure, removes what it created.
    pub fn create(self, run_dir: &Path, nodes: usize) -> Result<Box<dyn Backend>, ClusterError> {
        Ok(match self {
            Planned::Local => Box::new(local::create(run_dir, nodes)?),
            Planned::Docker { image } => Box::new(docker::create(run_dir, nodes, &image)?),
            Planned::Ssh { hosts } => Box::new(SshCluster::create(run_dir, hosts)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_docker_nodes_are_named_n1_onwards() {
        assert_eq!(Planned::Local.node_names(3), ["n1", "n2", "n3"]);
        let docker = Planned::Docker {
            image: ImageContent::default(),
        };
        assert_eq!(docker.node_names(2), ["n1", "n2"]);
        assert!(Planned::ssh(Vec::new()).node_names(3).is_empty());
    }
}
