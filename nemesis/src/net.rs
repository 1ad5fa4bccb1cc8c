//! Network faults: the [`Net`] trait applies a [`Grudge`] for real, as one nft table per
//! node (`table inet faultline_RUN` with an input chain at priority -10 dropping `ip
//! saddr { … }`), created atomically with `nft -f`, and heals by deleting the tables.
//!
//! One implementation for every backend, [`NftPartitions`], over the nft engine of
//! [`faultline_clusters::nft`]: a backend says how each node's namespace is reached
//! ([`NetHosts`]: `ip netns exec` for local hosts, `nsenter` for containers, SSH for
//! machines). Tables on the controller's machine are recorded in the run's registry
//! before creation, so teardown removes them even if nothing heals; tables on remote
//! machines are not, and the nemesis's heal must remove them.

use std::net::IpAddr;
use std::sync::Arc;

use faultline_clusters::nft::{NetHosts, NftNet, ruleset, table_name};

use crate::error::{NemesisError, collect};
use crate::grudge::Grudge;

pub use faultline_clusters::nft::{FAMILY, each};

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

/// The results of the nft engine as one nemesis result (every node tried).
pub(crate) fn all(
    results: Vec<Result<(), faultline_clusters::ClusterError>>,
) -> Result<(), NemesisError> {
    collect(
        results
            .into_iter()
            .map(|r| r.map_err(NemesisError::from))
            .collect(),
    )
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

/// Partitions on any backend: a table `inet faultline_RUN` per node, through the nft
/// engine ([`NftNet`]), rulesets uploaded to each node's `partition.nft` first.
pub struct NftPartitions {
    nft: NftNet,
}

impl NftPartitions {
    /// Partitions among `hosts` (a backend's [`NetHosts`]), by node name.
    pub fn new(hosts: &NetHosts) -> NftPartitions {
        NftPartitions {
            nft: NftNet::new(hosts, table_name(&hosts.run), "partition.nft"),
        }
    }

    /// The nft table's name (family `inet`), the same on every node.
    pub fn table(&self) -> &str {
        self.nft.table()
    }
}

impl Net for NftPartitions {
    fn drop(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        let nodes: Vec<(String, IpAddr)> = self
            .nft
            .hosts()
            .iter()
            .map(|h| (h.name.clone(), h.ip))
            .collect();
        let plan = plan(grudge, &nodes)?;
        let table = self.nft.table();
        let rulesets: Vec<Option<String>> = plan
            .iter()
            .map(|addrs| (!addrs.is_empty()).then(|| ruleset(table, addrs, false)))
            .collect();
        all(self.nft.apply(&rulesets))
    }

    /// Deletes the table on every node where this net may have created one. (A table
    /// left on a remote machine by an earlier controller that crashed is not known here.)
    fn heal(&self) -> Result<(), NemesisError> {
        all(self.nft.heal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{isolate, one_way};

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
