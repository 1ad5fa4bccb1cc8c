//! SSH machines as a [`Backend`]: each node in `/tmp/faultline-RUN/NAME` on its host.

use std::path::Path;
use std::sync::Arc;

use super::{Backend, ClusterKind, Program};
use crate::cleanup::Registry;
use crate::db::Node;
use crate::error::ClusterError;
use crate::nft::NetHosts;
use crate::remote::Remote;
use crate::ssh::{self, SshHost};

/// Nodes on SSH machines, one per host. Their run directories are recorded in the
/// registry (removed at teardown); nft tables there are not (on the machines, the
/// nemesis heals them).
pub struct SshCluster {
    nodes: Vec<Node>,
    registry: Arc<Registry>,
}

impl SshCluster {
    /// The nodes on `hosts` (connected), each in `/tmp/faultline-RUN/NAME`, for a new
    /// run whose state file goes in `run_dir`; the run's directory on every host is
    /// recorded first, so teardown and `faultline clean` remove it.
    pub fn create(run_dir: &Path, hosts: Vec<SshHost>) -> Result<SshCluster, ClusterError> {
        let registry = Arc::new(crate::reserve::new_registry(
            run_dir,
            Path::new(crate::reserve::DIR),
            |_| true,
        )?);
        let run = registry.run();
        let bad_run = |e: String| ClusterError::Config(format!("run id {e}"));
        let dir = ssh::run_dir(&run).map_err(bad_run)?;
        let mut nodes = Vec::new();
        for (i, host) in hosts.into_iter().enumerate() {
            registry.record(host.run_dir_resource(&run).map_err(bad_run)?)?;
            let spec = host.spec().clone();
            nodes.push(Node {
                id: (i + 1) as u32,
                name: spec.name.clone(),
                addr: spec.address.clone(),
                dir: dir.join(&spec.name),
                remote: Arc::new(host) as Arc<dyn Remote>,
            });
        }
        Ok(SshCluster { nodes, registry })
    }
}

impl Backend for SshCluster {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Ssh
    }

    fn nodes(&self) -> Vec<Node> {
        self.nodes.clone()
    }

    fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Through each node's SSH session; no bandwidth limits (the interface is unknown).
    fn net(&self) -> Result<NetHosts, ClusterError> {
        NetHosts::remote(&self.nodes, &self.registry.run())
    }

    /// Uploaded to each node's directory.
    fn program(&self, local: &Path) -> Program {
        Program {
            path: local.to_path_buf(),
            upload: true,
        }
    }

    /// The registry's teardown (by the caller, after this) removes the run directories.
    fn teardown(self: Box<Self>) -> Result<(), ClusterError> {
        Ok(())
    }
}
