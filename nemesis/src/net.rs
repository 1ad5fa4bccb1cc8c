//! Network faults per backend: the [`Net`] trait applies a [`Grudge`] for real, as one
//! nft table per node (`table inet faultline_RUN` with an input chain at priority -10
//! dropping `ip saddr { … }`), created atomically with `nft -f`, and heals by deleting
//! the tables.
//!
//! Backends: [`NetnsNet`] (local namespaces: nft inside each node's namespace through
//! its [`Remote`], tables recorded in the run's [`Registry`] before creation),
//! [`DockerNet`] (containers, over [`faultline_clusters::docker::DockerNet`]) and
//! [`SshNet`] (nft on real machines through their [`Remote`]; the tables live there, so
//! the controller's registry cannot remove them: the nemesis's heal must).

use std::fs;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use faultline_clusters::docker::DockerNet as ContainerNet;
use faultline_clusters::docker::{DockerCluster, container_pid};
use faultline_clusters::{
    Cmd, DaemonSpec, ExitStatus, Localhost, NetnsCluster, Node, Output, Registry, Remote,
    RemoteError, Resource, Signal,
};

use crate::error::{NemesisError, collect};
use crate::grudge::Grudge;

/// The nft family of partition tables.
pub const FAMILY: &str = "inet";

/// How long one nft command may take.
const NFT_TIMEOUT: Duration = Duration::from_secs(20);

/// Network partitions on real nodes (Jepsen's `net` protocol, reduced to what a
/// partition nemesis needs).
///
/// Implementations apply the grudge on every node, in parallel where they can, and
/// record what they create in the run's registry *before* creating it when the
/// resource lives on the controller's machine. Neither method touches processes, and
/// neither cuts the controller off from the nodes.
pub trait Net: Send + Sync {
    /// Replaces the current partition with exactly `grudge`: afterwards node `A` drops
    /// every packet *from* each node in `grudge.dropped_by(A)` (inbound only, so a
    /// one-way grudge stays one-way), and nothing else. Nodes the grudge does not name,
    /// or names with an empty set, drop nothing. A node of the grudge that this net
    /// does not know is an error, before anything is changed.
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError>;

    /// Removes every partition this net made: all traffic flows again. Idempotent;
    /// tolerates nodes (namespaces, containers) that are already gone.
    fn heal(&self) -> Result<(), NemesisError>;
}

impl<T: Net + ?Sized> Net for Arc<T> {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        (**self).drop(grudge)
    }

    fn heal(&self) -> Result<(), NemesisError> {
        (**self).heal()
    }
}

impl<T: Net + ?Sized> Net for Box<T> {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        (**self).drop(grudge)
    }

    fn heal(&self) -> Result<(), NemesisError> {
        (**self).heal()
    }
}

/// An nft identifier from a run id: `faultline_RUN` (shared with Docker's partitions).
pub use faultline_clusters::docker::table_name;

/// The ruleset that makes a node drop every packet from `addrs` (input hook, priority
/// -10, inbound only), replacing any earlier version of `table` in one transaction.
pub fn ruleset(table: &str, addrs: &[IpAddr]) -> String {
    faultline_clusters::docker::ruleset(table, addrs, false)
}

/// The address of `node` as an IP: parsed, or resolved on the controller.
fn resolve(name: &str, addr: &str) -> Result<IpAddr, NemesisError> {
    if let Ok(ip) = addr.parse() {
        return Ok(ip);
    }
    let bad = |reason: String| NemesisError::BadNode {
        node: name.to_string(),
        reason,
    };
    (addr, 0)
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve its address {addr}: {e}")))?
        .next()
        .map(|s| s.ip())
        .ok_or_else(|| bad(format!("its address {addr} resolves to nothing")))
}

/// For each of `nodes` (name, address), the addresses it must drop under `grudge`;
/// an error if the grudge names a node not among them.
fn plan(grudge: &Grudge, nodes: &[(String, IpAddr)]) -> Result<Vec<Vec<IpAddr>>, NemesisError> {
    let ip_of = |name: &str| nodes.iter().find(|(n, _)| n == name).map(|(_, ip)| *ip);
    for node in grudge.nodes() {
        if ip_of(node).is_none() {
            return Err(NemesisError::BadNode {
                node: node.to_string(),
                reason: "the grudge names it, but the network does not know it".into(),
            });
        }
    }
    Ok(nodes
        .iter()
        .map(|(name, _)| grudge.dropped_by(name).filter_map(ip_of).collect())
        .collect())
}

/// Runs `f` on every item in parallel; all the results, in order.
pub(crate) fn each<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(move || f(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// One node of an [`NftNet`]: where to run nft, and whether its table may exist.
pub(crate) struct NftNode {
    pub(crate) name: String,
    pub(crate) ip: IpAddr,
    pub(crate) remote: Arc<dyn Remote>,
    /// Where the ruleset is uploaded on the host before `nft -f`.
    ruleset_path: PathBuf,
    /// The registry entry of its table, when the table lives on the controller's machine.
    resource: Option<Resource>,
    /// Whether its table may exist (recorded, if it has a resource).
    installed: Mutex<bool>,
}

/// Rulesets applied with nft through each node's [`Remote`], one table per node: the
/// shared engine of [`NetnsNet`], [`SshNet`] and the packet nemesis.
pub(crate) struct NftNet {
    pub(crate) table: String,
    registry: Option<Arc<Registry>>,
    pub(crate) nodes: Vec<NftNode>,
}

impl NftNet {
    /// Tables named `table` in every namespace of `cluster` (recorded in its registry
    /// before creation), rulesets uploaded to `DIR/file` on each host.
    pub(crate) fn netns(cluster: &NetnsCluster, table: String, file: &str) -> NftNet {
        let nodes = cluster
            .hosts()
            .iter()
            .map(|h| NftNode {
                name: h.host().to_string(),
                ip: IpAddr::V4(h.addr()),
                remote: Arc::clone(h) as Arc<dyn Remote>,
                ruleset_path: h.dir().join(file),
                resource: Some(Resource::NftTable {
                    family: FAMILY.to_string(),
                    name: table.clone(),
                    netns: Some(h.netns().to_string()),
                }),
                installed: Mutex::new(false),
            })
            .collect();
        NftNet {
            table,
            registry: Some(Arc::clone(cluster.registry())),
            nodes,
        }
    }

    /// Tables named `table` on `nodes` reached through their remotes (not recorded:
    /// they are not on the controller's machine), rulesets uploaded to `DIR/file`.
    pub(crate) fn remote(
        nodes: &[Node],
        table: String,
        file: &str,
    ) -> Result<NftNet, NemesisError> {
        let nodes = nodes
            .iter()
            .map(|n| {
                Ok(NftNode {
                    name: n.name.clone(),
                    ip: resolve(&n.name, &n.addr)?,
                    remote: Arc::clone(&n.remote),
                    ruleset_path: n.dir.join(file),
                    resource: None,
                    installed: Mutex::new(false),
                })
            })
            .collect::<Result<Vec<_>, NemesisError>>()?;
        Ok(NftNet {
            table,
            registry: None,
            nodes,
        })
    }

    /// Tables named `table` in every container of `cluster`, entered with `nsenter` from
    /// the controller (recorded in `registry` as `container:NAME` before creation),
    /// rulesets written to the controller's temp directory.
    pub(crate) fn docker(
        cluster: &DockerCluster,
        registry: Arc<Registry>,
        table: String,
        file: &str,
    ) -> Result<NftNet, NemesisError> {
        let nodes = cluster
            .hosts()
            .iter()
            .map(|h| {
                let container = h.container().to_string();
                Ok(NftNode {
                    name: h.host().to_string(),
                    ip: resolve(h.host(), h.address())?,
                    remote: Arc::new(Nsenter {
                        container: container.clone(),
                        local: Localhost::new(),
                    }),
                    ruleset_path: std::env::temp_dir()
                        .join(format!("{container}-{}-{file}", std::process::id())),
                    resource: Some(Resource::NftTable {
                        family: FAMILY.to_string(),
                        name: table.clone(),
                        netns: Some(format!("container:{container}")),
                    }),
                    installed: Mutex::new(false),
                })
            })
            .collect::<Result<Vec<_>, NemesisError>>()?;
        Ok(NftNet {
            table,
            registry: Some(registry),
            nodes,
        })
    }

    /// Installs `rulesets[i]` on node `i` (replacing its table in one transaction), or
    /// deletes its table where it is `None`; in parallel.
    pub(crate) fn apply(&self, rulesets: &[Option<String>]) -> Result<(), NemesisError> {
        let work: Vec<(&NftNode, &Option<String>)> = self.nodes.iter().zip(rulesets).collect();
        collect(each(&work, |(node, ruleset)| match ruleset {
            Some(text) => self.install(node, text),
            None => self.uninstall(node),
        }))
    }

    fn install(&self, node: &NftNode, text: &str) -> Result<(), NemesisError> {
        let mut installed = node.installed.lock().unwrap_or_else(|p| p.into_inner());
        if !*installed {
            if let (Some(registry), Some(resource)) = (&self.registry, &node.resource) {
                registry
                    .record(resource.clone())
                    .map_err(|e| NemesisError::Record {
                        resource: resource.to_string(),
                        reason: e.to_string(),
                    })?;
            }
            *installed = true;
        }
        let local = std::env::temp_dir().join(format!(
            "{}-{}-{}.nft",
            self.table,
            node.name,
            std::process::id()
        ));
        let write = fs::write(&local, text).map_err(|e| NemesisError::Command {
            node: node.name.clone(),
            command: format!("write {}", local.display()),
            reason: e.to_string(),
        });
        let uploaded = write.and_then(|()| {
            node.remote
                .upload(&local, &node.ruleset_path)
                .map_err(NemesisError::from)
        });
        let _ = fs::remove_file(&local);
        uploaded?;
        let path = node.ruleset_path.to_string_lossy().into_owned();
        let cmd = Cmd::new("nft").args(["-f", &path]).timeout(NFT_TIMEOUT);
        let out = node.remote.run(&cmd);
        let _ = node
            .remote
            .run(&Cmd::new("rm").args(["-f", &path]).timeout(NFT_TIMEOUT));
        let out = out?;
        if out.success() {
            return Ok(());
        }
        Err(NemesisError::Command {
            node: node.name.clone(),
            command: format!("{cmd} (table {FAMILY} {})", self.table),
            reason: out.stderr.trim().to_string(),
        })
    }

    fn uninstall(&self, node: &NftNode) -> Result<(), NemesisError> {
        let mut installed = node.installed.lock().unwrap_or_else(|p| p.into_inner());
        if !*installed {
            return Ok(());
        }
        let cmd = Cmd::new("nft")
            .args(["delete", "table", FAMILY, &self.table])
            .timeout(NFT_TIMEOUT);
        let out = node.remote.run(&cmd)?;
        const GONE: [&str; 2] = ["No such file", "Cannot open network namespace"];
        if !out.success() && !GONE.iter().any(|g| out.stderr.contains(g)) {
            return Err(NemesisError::Command {
                node: node.name.clone(),
                command: cmd.to_string(),
                reason: out.stderr.trim().to_string(),
            });
        }
        if let (Some(registry), Some(resource)) = (&self.registry, &node.resource) {
            let _ = registry.forget(resource);
        }
        *installed = false;
        Ok(())
    }

    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        let nodes: Vec<(String, IpAddr)> =
            self.nodes.iter().map(|n| (n.name.clone(), n.ip)).collect();
        let plan = plan(grudge, &nodes)?;
        let rulesets: Vec<Option<String>> = plan
            .iter()
            .map(|addrs| (!addrs.is_empty()).then(|| ruleset(&self.table, addrs)))
            .collect();
        self.apply(&rulesets)
    }

    pub(crate) fn heal(&self) -> Result<(), NemesisError> {
        collect(each(&self.nodes, |node| self.uninstall(node)))
    }
}

/// A container's network namespace, entered from the controller: commands run as
/// `nsenter -t PID -n …` (the container's init pid, looked up each time; a container
/// that is gone answers like a deleted namespace), files stay on the controller.
struct Nsenter {
    container: String,
    local: Localhost,
}

impl Remote for Nsenter {
    fn host(&self) -> &str {
        &self.container
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let pid = container_pid(&self.container).map_err(|e| RemoteError::Spawn {
            host: self.container.clone(),
            command: cmd.to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let Some(pid) = pid else {
            return Ok(Output {
                status: ExitStatus::Code(1),
                stdout: String::new(),
                stderr: format!(
                    "Cannot open network namespace: container {} is gone",
                    self.container
                ),
            });
        };
        let wrapped = Cmd::new("nsenter")
            .args(["-t".to_string(), pid.to_string(), "-n".to_string()])
            .args(cmd.argv().iter().cloned())
            .timeout(cmd.time_limit());
        self.local.run(&wrapped)
    }

    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError> {
        self.local.upload(local, remote)
    }

    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError> {
        self.local.download(remote, local)
    }

    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError> {
        Err(RemoteError::Spawn {
            host: self.container.clone(),
            command: spec.cmd.to_string(),
            source: std::io::Error::other("no daemons through nsenter"),
        })
    }

    fn signal(&self, _: &Path, _: Signal) -> Result<bool, RemoteError> {
        Ok(false)
    }

    fn is_running(&self, _: &Path) -> Result<bool, RemoteError> {
        Ok(false)
    }
}

/// Partitions on a [`NetnsCluster`]: nft inside each node's namespace (`ip netns exec`,
/// through the node's [`Remote`]); each table is recorded in the run's registry as
/// `Resource::NftTable { netns: Some(NAMESPACE) }` before it is created, so teardown
/// removes it even if nothing heals.
pub struct NetnsNet {
    inner: NftNet,
}

impl NetnsNet {
    /// Partitions for every host of `cluster`, by host name (`n1`…).
    pub fn new(cluster: &NetnsCluster) -> NetnsNet {
        NetnsNet {
            inner: NftNet::netns(cluster, table_name(cluster.run_id()), "partition.nft"),
        }
    }

    /// The nft table's name (family `inet`), the same in every namespace.
    pub fn table(&self) -> &str {
        &self.inner.table
    }
}

impl Net for NetnsNet {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        self.inner.drop(grudge)
    }

    fn heal(&self) -> Result<(), NemesisError> {
        self.inner.heal()
    }
}

/// Partitions on machines reached over SSH (or any [`Remote`] whose commands run in the
/// node's network namespace): the ruleset is uploaded to the node's directory and
/// loaded with `nft -f` there (root, or `sudo` per the hosts file). The tables are on
/// the nodes, not the controller, so they are not in the registry: heal before the run
/// ends (the nemesis's `heal` does), or delete `table inet faultline_RUN` by hand.
pub struct SshNet {
    inner: NftNet,
}

impl SshNet {
    /// Partitions for `nodes` (by name, with their addresses, parsed or resolved on the
    /// controller), in a table named after `run`.
    pub fn new(nodes: &[Node], run: &str) -> Result<SshNet, NemesisError> {
        Ok(SshNet {
            inner: NftNet::remote(nodes, table_name(run), "partition.nft")?,
        })
    }

    /// The nft table's name (family `inet`).
    pub fn table(&self) -> &str {
        &self.inner.table
    }
}

impl Net for SshNet {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        self.inner.drop(grudge)
    }

    /// Deletes the table on every node where this net may have created one. (A table
    /// left by an earlier controller that crashed is not known here.)
    fn heal(&self) -> Result<(), NemesisError> {
        self.inner.heal()
    }
}

/// Partitions on a [`DockerCluster`], through the container faults of
/// [`faultline_clusters::docker::DockerNet`] (nft in each container's namespace entered
/// with `nsenter`, tables recorded in the run's registry).
pub struct DockerNet {
    nodes: Vec<(String, IpAddr)>,
    nets: Vec<ContainerNet>,
}

impl DockerNet {
    /// Partitions for every container of `cluster`, by node name.
    pub fn new(cluster: &DockerCluster) -> Result<DockerNet, NemesisError> {
        let nodes = cluster
            .hosts()
            .iter()
            .map(|h| Ok((h.host().to_string(), resolve(h.host(), h.address())?)))
            .collect::<Result<Vec<_>, NemesisError>>()?;
        Ok(DockerNet {
            nodes,
            nets: cluster.nets(),
        })
    }
}

impl Net for DockerNet {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        let plan = plan(grudge, &self.nodes)?;
        let indices: Vec<usize> = (0..self.nodes.len()).collect();
        collect(each(&indices, |&i| {
            let (net, addrs) = (&self.nets[i], &plan[i]);
            let result = if addrs.is_empty() {
                net.heal()
            } else {
                net.drop_inbound_from(addrs)
            };
            result.map_err(|source| NemesisError::Docker {
                node: self.nodes[i].0.clone(),
                source: Box::new(source),
            })
        }))
    }

    fn heal(&self) -> Result<(), NemesisError> {
        let work: Vec<(&(String, IpAddr), &ContainerNet)> =
            self.nodes.iter().zip(&self.nets).collect();
        collect(each(&work, |((name, _), net)| {
            net.heal().map_err(|source| NemesisError::Docker {
                node: name.clone(),
                source: Box::new(source),
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{isolate, one_way};

    #[test]
    fn the_ruleset_drops_inbound_only_and_replaces_the_table() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "fd00::3".parse().unwrap()];
        let r = ruleset("faultline_t", &addrs);
        assert!(r.starts_with("table inet faultline_t {}\ndelete table inet faultline_t\n"));
        assert!(r.contains("ip saddr { 10.0.0.2 } drop"));
        assert!(r.contains("ip6 saddr { fd00::3 } drop"));
        assert!(r.contains("type filter hook input priority -10; policy accept;"));
        assert!(!r.contains("daddr") && !r.contains("output"));
        assert_eq!(table_name("ab-12"), "faultline_ab_12");
    }

    #[test]
    fn the_plan_follows_the_grudge_and_refuses_unknown_nodes() {
        let nodes: Vec<(String, IpAddr)> = (1..=3)
            .map(|i| (format!("n{i}"), format!("10.0.0.{i}").parse().unwrap()))
            .collect();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let p = isolate(&["n1", "n2", "n3"], "n1").unwrap();
        let plan = plan(&p.grudge, &nodes).unwrap();
        assert_eq!(plan[0], [ip("10.0.0.2"), ip("10.0.0.3")]);
        assert_eq!(plan[1], [ip("10.0.0.1")]);
        let p = one_way(&["n1", "n2", "n3"], &["n1"], &["n2"]).unwrap();
        let plan = super::plan(&p.grudge, &nodes).unwrap();
        assert!(plan[0].is_empty() && plan[2].is_empty());
        assert_eq!(plan[1], [ip("10.0.0.1")]);
        let p = isolate(&["n1", "n9"], "n9").unwrap();
        assert!(matches!(
            super::plan(&p.grudge, &nodes),
            Err(NemesisError::BadNode { node, .. }) if node == "n9"
        ));
    }
}
