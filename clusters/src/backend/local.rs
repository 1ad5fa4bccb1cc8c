//! Local hosts as a [`Backend`]: a network namespace per node ([`NetnsCluster`]).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::{Backend, ClusterKind, Program};
use crate::cleanup::Registry;
use crate::db::{Db, Node};
use crate::error::ClusterError;
use crate::netns::NetnsCluster;
use crate::nft::{NetHost, NetHosts};
use crate::remote::Remote;

/// `nodes` namespaces for the run in `run_dir`.
pub(super) fn create(run_dir: &Path, nodes: usize) -> Result<NetnsCluster, ClusterError> {
    NetnsCluster::create(&run_dir.join("nodes"), nodes)
}

impl NetnsCluster {
    /// How network faults reach each namespace: commands through the host itself,
    /// files in its directory, tables recorded in the run's registry before creation;
    /// bandwidth can be limited on each `eth0`.
    pub fn net_hosts(&self) -> NetHosts {
        NetHosts {
            hosts: self
                .hosts()
                .iter()
                .map(|h| NetHost {
                    name: h.host().to_string(),
                    ip: IpAddr::V4(h.addr()),
                    net: Arc::clone(h) as Arc<dyn Remote>,
                    dir: h.dir().to_path_buf(),
                    prefix: String::new(),
                    netns: Some(h.netns().to_string()),
                    upload_programs: false,
                })
                .collect(),
            registry: Some(Arc::clone(self.registry())),
            run: self.run_id().to_string(),
            shapeable: true,
        }
    }
}

impl Backend for NetnsCluster {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Local
    }

    fn nodes(&self) -> Vec<Node> {
        NetnsCluster::nodes(self)
    }

    fn registry(&self) -> &Arc<Registry> {
        NetnsCluster::registry(self)
    }

    fn net(&self) -> Result<NetHosts, ClusterError> {
        Ok(self.net_hosts())
    }

    /// The namespaces share this machine's filesystem: programs run where they are.
    fn program(&self, local: &Path) -> Program {
        Program {
            path: local.to_path_buf(),
            upload: false,
        }
    }

    /// The logs are in the run's directory already (`nodes/NODE/`).
    fn collect_logs(&self, _: &dyn Db, _: &Path) -> Vec<String> {
        Vec::new()
    }

    fn teardown(self: Box<Self>) -> Result<(), ClusterError> {
        NetnsCluster::teardown(*self)
    }
}
