//! Partition topologies (Jepsen's `partition-*` grudges) as pure functions over node
//! names.

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::grudge::{Grudge, complete_grudge};

/// A network partition: what to cut, and how the history describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// For each node, the nodes whose traffic it drops.
    pub grudge: Grudge,
    /// The components, when the partition splits the nodes into groups that talk only
    /// among themselves (`grudge` is then `complete_grudge(components)`); `None` for
    /// topologies that are not such a split (majorities ring, bridge, one-way).
    pub components: Option<Vec<Vec<String>>>,
    /// The nemesis's history value, e.g. `{"isolated":[["n1","n2"],["n3","n4","n5"]]}`.
    pub value: Value,
}

/// Why a topology cannot be built over the given nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// Too few nodes for this topology.
    #[error("{topology} needs at least {need} nodes, got {got}")]
    TooFewNodes {
        /// The topology.
        topology: &'static str,
        /// The minimum.
        need: usize,
        /// How many were given.
        got: usize,
    },
    /// A node named as an argument is not one of the nodes.
    #[error("{node} is not one of the nodes")]
    UnknownNode {
        /// The node.
        node: String,
    },
    /// A node is listed twice.
    #[error("node {node} is listed more than once")]
    DuplicateNode {
        /// The node.
        node: String,
    },
}

/// The nodes as owned strings, refusing duplicates and lists shorter than `need`.
fn node_list<S: AsRef<str>>(
    topology: &'static str,
    nodes: &[S],
    need: usize,
) -> Result<Vec<String>, TopologyError> {
    let mut seen = BTreeSet::new();
    for node in nodes {
        if !seen.insert(node.as_ref()) {
            return Err(TopologyError::DuplicateNode {
                node: node.as_ref().to_string(),
            });
        }
    }
    if nodes.len() < need {
        return Err(TopologyError::TooFewNodes {
            topology,
            need,
            got: nodes.len(),
        });
    }
    Ok(nodes.iter().map(|n| n.as_ref().to_string()).collect())
}

/// A split into components that talk only among themselves.
fn split(components: Vec<Vec<String>>) -> Partition {
    let grudge = complete_grudge(&components).unwrap_or_default();
    let value = json!({ "isolated": components });
    Partition {
        grudge,
        components: Some(components),
        value,
    }
}

/// The nodes in a random order drawn from `rng` (for the random variants of the
/// topologies: `bridge(&shuffled(nodes, rng))`).
pub fn shuffled<S: AsRef<str>, R: Rng + ?Sized>(nodes: &[S], rng: &mut R) -> Vec<String> {
    let mut nodes: Vec<String> = nodes.iter().map(|n| n.as_ref().to_string()).collect();
    nodes.shuffle(rng);
    nodes
}

/// Cuts the nodes into two halves in the given order, the smaller half first
/// (Jepsen's `partition-halves`): `n1 n2 | n3 n4 n5`. Needs 2 nodes.
pub fn halves<S: AsRef<str>>(nodes: &[S]) -> Result<Partition, TopologyError> {
    let mut first = node_list("halves", nodes, 2)?;
    let second = first.split_off(first.len() / 2);
    Ok(split(vec![first, second]))
}

/// Cuts the nodes into two random halves, the smaller first (Jepsen's
/// `partition-random-halves`). Needs 2 nodes.
pub fn random_halves<S: AsRef<str>, R: Rng + ?Sized>(
    nodes: &[S],
    rng: &mut R,
) -> Result<Partition, TopologyError> {
    node_list("random halves", nodes, 2)?;
    halves(&shuffled(nodes, rng))
}

/// Cuts `node` off from all the others (Jepsen's `partition-random-node` with a chosen
/// node; isolating the leader is this with the leader). Needs 2 nodes.
pub fn isolate<S: AsRef<str>>(nodes: &[S], node: &str) -> Result<Partition, TopologyError> {
    let mut rest = node_list("isolate", nodes, 2)?;
    let Some(i) = rest.iter().position(|n| n == node) else {
        return Err(TopologyError::UnknownNode {
            node: node.to_string(),
        });
    };
    let alone = rest.remove(i);
    Ok(split(vec![vec![alone], rest]))
}

/// Every node sees a majority (itself included), but no two nodes see the same one
/// (Jepsen's `majorities-ring`). The nodes form a ring in the given order (shuffle them
/// for a random ring) and each sees its `k` nearest neighbours on both sides, the
/// smallest `k` that makes a majority; the cuts are then symmetric. With 3 nodes that
/// would be everyone, so each node instead sees itself and its successor, as Jepsen's
/// ring does: a one-way cut per pair. Needs 3 nodes.
pub fn majorities_ring<S: AsRef<str>>(nodes: &[S]) -> Result<Partition, TopologyError> {
    let ring = node_list("majorities ring", nodes, 3)?;
    let n = ring.len();
    let majority = n / 2 + 1;
    let k = majority / 2;
    let mut grudge = Grudge::new(&ring);
    for (i, node) in ring.iter().enumerate() {
        let sees: BTreeSet<usize> = if n == 3 {
            BTreeSet::from([i, (i + 1) % n])
        } else {
            (0..=2 * k).map(|d| (i + n - k + d) % n).collect()
        };
        for (j, other) in ring.iter().enumerate() {
            if !sees.contains(&j) {
                grudge.cut(node, other);
            }
        }
    }
    let value = json!({ "grudge": grudge.to_json() });
    Ok(Partition {
        grudge,
        components: None,
        value,
    })
}

/// Two halves that cannot talk to each other, and one node in the middle that talks to
/// both (Jepsen's `bridge`): with `n1 … n5`, `n1 n2 | n4 n5` and `n3` the bridge, the
/// first node of the second half. Needs 3 nodes.
pub fn bridge<S: AsRef<str>>(nodes: &[S]) -> Result<Partition, TopologyError> {
    let all = node_list("bridge", nodes, 3)?;
    let mut left = all.clone();
    let mut right = left.split_off(left.len() / 2);
    let middle = right.remove(0);
    let mut grudge = Grudge::new(&all);
    for a in &left {
        for b in &right {
            grudge.cut(a, b);
            grudge.cut(b, a);
        }
    }
    let value = json!({ "isolated": [left, right], "bridge": middle });
    Ok(Partition {
        grudge,
        components: None,
        value,
    })
}

/// A one-way cut: the nodes in `to` drop traffic from the nodes in `from`, while traffic
/// from `to` to `from` still flows. `from` and `to` must be non-empty, disjoint, and
/// among `nodes`.
pub fn one_way<S: AsRef<str>, F: AsRef<str>, T: AsRef<str>>(
    nodes: &[S],
    from: &[F],
    to: &[T],
) -> Result<Partition, TopologyError> {
    let all = node_list("one-way", nodes, 2)?;
    let from = node_list("one-way (from)", from, 1)?;
    let to = node_list("one-way (to)", to, 1)?;
    for node in from.iter().chain(&to) {
        if !all.contains(node) {
            return Err(TopologyError::UnknownNode { node: node.clone() });
        }
    }
    if let Some(node) = from.iter().find(|n| to.contains(n)) {
        return Err(TopologyError::DuplicateNode { node: node.clone() });
    }
    let mut grudge = Grudge::new(&all);
    for receiver in &to {
        for sender in &from {
            grudge.cut(receiver, sender);
        }
    }
    let value = json!({ "one-way": { "from": from, "to": to } });
    Ok(Partition {
        grudge,
        components: None,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// The invariants every topology keeps: a valid grudge over exactly the nodes, and
    /// every node sees itself.
    fn assert_well_formed(p: &Partition, nodes: &[String]) {
        p.grudge.check().unwrap();
        let grudge_nodes: Vec<&str> = p.grudge.nodes().collect();
        let mut sorted: Vec<&str> = nodes.iter().map(String::as_str).collect();
        sorted.sort();
        assert_eq!(grudge_nodes, sorted);
        for node in nodes {
            assert!(
                p.grudge.view(node).contains(node.as_str()),
                "{node} must see itself"
            );
        }
        if let Some(components) = &p.components {
            assert_eq!(complete_grudge(components).unwrap(), p.grudge);
            assert!(p.grudge.is_symmetric());
        }
    }

    #[test]
    fn halves_put_the_smaller_half_first() {
        let nodes = names(5);
        let p = halves(&nodes).unwrap();
        assert_well_formed(&p, &nodes);
        assert_eq!(
            p.value,
            json!({"isolated": [["n1", "n2"], ["n3", "n4", "n5"]]})
        );
        assert!(p.grudge.drops("n1", "n5") && p.grudge.drops("n5", "n1"));
        assert!(!p.grudge.drops("n1", "n2"));
        assert_eq!(
            halves(&names(4)).unwrap().value,
            json!({"isolated": [["n1", "n2"], ["n3", "n4"]]})
        );
    }

    #[test]
    fn random_halves_depend_on_the_seed_only() {
        let nodes = names(7);
        let a = random_halves(&nodes, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let b = random_halves(&nodes, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
        assert_well_formed(&a, &nodes);
        let sizes: Vec<usize> = a.components.iter().flatten().map(Vec::len).collect();
        assert_eq!(sizes, [3, 4]);
        let differs = (2..20)
            .any(|seed| random_halves(&nodes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap() != a);
        assert!(differs);
    }

    #[test]
    fn isolate_cuts_one_node_off() {
        let nodes = names(5);
        let p = isolate(&nodes, "n3").unwrap();
        assert_well_formed(&p, &nodes);
        assert_eq!(
            p.value,
            json!({"isolated": [["n3"], ["n1", "n2", "n4", "n5"]]})
        );
        assert_eq!(p.grudge.view("n3"), BTreeSet::from(["n3"]));
        assert_eq!(
            isolate(&nodes, "n9"),
            Err(TopologyError::UnknownNode { node: "n9".into() })
        );
    }

    #[test]
    fn majorities_ring_every_node_sees_a_different_majority() {
        for n in 3..=15 {
            let nodes = names(n);
            let p = majorities_ring(&nodes).unwrap();
            assert_well_formed(&p, &nodes);
            let views: Vec<BTreeSet<&str>> = nodes.iter().map(|node| p.grudge.view(node)).collect();
            for (node, view) in nodes.iter().zip(&views) {
                assert!(
                    view.len() > n / 2,
                    "n={n}: {node} sees {view:?}, not a majority"
                );
                assert!(view.len() < n, "n={n}: {node} sees everyone");
            }
            let distinct: BTreeSet<&BTreeSet<&str>> = views.iter().collect();
            assert_eq!(distinct.len(), n, "n={n}: two nodes see the same majority");
            assert_eq!(p.grudge.is_symmetric(), n > 3, "n={n}");
            assert!(p.value["grudge"].is_object());
        }
    }

    #[test]
    fn majorities_ring_of_five_is_jepsens_ring() {
        let p = majorities_ring(&names(5)).unwrap();
        // Ring n1..n5: each node sees its two neighbours.
        assert_eq!(p.grudge.view("n1"), BTreeSet::from(["n1", "n2", "n5"]));
        assert_eq!(p.grudge.view("n3"), BTreeSet::from(["n2", "n3", "n4"]));
        assert_eq!(
            majorities_ring(&names(2)),
            Err(TopologyError::TooFewNodes {
                topology: "majorities ring",
                need: 3,
                got: 2
            })
        );
    }

    #[test]
    fn bridge_node_sees_everyone_and_the_halves_see_only_it() {
        let nodes = names(5);
        let p = bridge(&nodes).unwrap();
        assert_well_formed(&p, &nodes);
        assert!(p.grudge.is_symmetric());
        assert_eq!(
            p.value,
            json!({"isolated": [["n1", "n2"], ["n4", "n5"]], "bridge": "n3"})
        );
        assert_eq!(p.grudge.view("n3").len(), 5);
        assert!(nodes.iter().all(|n| p.grudge.view(n).contains("n3")));
        assert_eq!(p.grudge.view("n1"), BTreeSet::from(["n1", "n2", "n3"]));
        assert_eq!(p.grudge.view("n5"), BTreeSet::from(["n3", "n4", "n5"]));
        let small = bridge(&names(3)).unwrap();
        assert_eq!(
            small.value,
            json!({"isolated": [["n1"], ["n3"]], "bridge": "n2"})
        );
    }

    #[test]
    fn one_way_cuts_only_one_direction() {
        let nodes = names(3);
        let p = one_way(&nodes, &["n1"], &["n2", "n3"]).unwrap();
        assert_well_formed(&p, &nodes);
        assert!(!p.grudge.is_symmetric());
        assert!(p.grudge.drops("n2", "n1") && p.grudge.drops("n3", "n1"));
        assert!(!p.grudge.drops("n1", "n2") && !p.grudge.drops("n2", "n3"));
        assert_eq!(
            p.value,
            json!({"one-way": {"from": ["n1"], "to": ["n2", "n3"]}})
        );
        assert!(matches!(
            one_way(&nodes, &["n1"], &["n1"]),
            Err(TopologyError::DuplicateNode { .. })
        ));
        assert!(matches!(
            one_way(&nodes, &["n7"], &["n1"]),
            Err(TopologyError::UnknownNode { .. })
        ));
        let none: [&str; 0] = [];
        assert!(matches!(
            one_way(&nodes, &none, &["n1"]),
            Err(TopologyError::TooFewNodes { .. })
        ));
    }

    #[test]
    fn duplicates_and_tiny_clusters_are_refused() {
        assert_eq!(
            halves(&["n1", "n1"]),
            Err(TopologyError::DuplicateNode { node: "n1".into() })
        );
        assert!(matches!(
            halves(&["n1"]),
            Err(TopologyError::TooFewNodes {
                need: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            bridge(&["n1", "n2"]),
            Err(TopologyError::TooFewNodes { need: 3, .. })
        ));
    }
}
