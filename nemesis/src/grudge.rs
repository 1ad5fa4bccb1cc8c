//! Grudges: who drops whose traffic.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// For each node, the set of nodes whose traffic it drops (Jepsen's grudge). A partition
/// is applied by making each node drop inbound packets from the nodes in its set; a
/// healed network is a grudge with no cuts.
///
/// Invariants, kept by construction and verified by [`Grudge::check`]: a node never drops
/// its own traffic, and every node named in a set is one of the grudge's nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grudge {
    drops: BTreeMap<String, BTreeSet<String>>,
}

/// A grudge that breaks its invariants, or components that do not make a grudge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrudgeError {
    /// A node drops its own traffic.
    #[error("node {node} drops its own traffic")]
    DropsItself {
        /// The node.
        node: String,
    },
    /// A node drops traffic from a node the grudge does not know.
    #[error("node {node} drops traffic from {from}, which is not one of the nodes")]
    UnknownNode {
        /// The node holding the grudge.
        node: String,
        /// The unknown node.
        from: String,
    },
    /// A node appears twice among the components.
    #[error("node {node} appears more than once among the components")]
    DuplicateNode {
        /// The node.
        node: String,
    },
}

impl Grudge {
    /// A grudge over `nodes` in which nobody drops anything: the healed network.
    pub fn new<S: AsRef<str>>(nodes: &[S]) -> Grudge {
        let drops = nodes
            .iter()
            .map(|n| (n.as_ref().to_string(), BTreeSet::new()))
            .collect();
        Grudge { drops }
    }

    /// Makes `node` drop traffic from `from`, adding either to the nodes if new. A node
    /// never drops its own traffic: `cut(n, n)` does nothing.
    pub fn cut(&mut self, node: &str, from: &str) {
        self.drops.entry(from.to_string()).or_default();
        let set = self.drops.entry(node.to_string()).or_default();
        if node != from {
            set.insert(from.to_string());
        }
    }

    /// Makes `node` receive traffic from `from` again.
    pub fn uncut(&mut self, node: &str, from: &str) {
        if let Some(set) = self.drops.get_mut(node) {
            set.remove(from);
        }
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.drops.keys().map(String::as_str)
    }

    /// The nodes whose traffic `node` drops, in order (none for an unknown node).
    pub fn dropped_by(&self, node: &str) -> impl Iterator<Item = &str> {
        self.drops
            .get(node)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Whether `node` drops traffic from `from`.
    pub fn drops(&self, node: &str, from: &str) -> bool {
        self.drops.get(node).is_some_and(|set| set.contains(from))
    }

    /// The nodes whose traffic `node` receives, itself included (empty for an unknown
    /// node).
    pub fn view(&self, node: &str) -> BTreeSet<&str> {
        match self.drops.get(node) {
            None => BTreeSet::new(),
            Some(set) => self.nodes().filter(|n| !set.contains(*n)).collect(),
        }
    }

    /// Whether every cut goes both ways: `a` drops `b` exactly when `b` drops `a`.
    pub fn is_symmetric(&self) -> bool {
        self.cuts().all(|(node, from)| self.drops(from, node))
    }

    /// Whether nothing is cut.
    pub fn is_empty(&self) -> bool {
        self.drops.values().all(BTreeSet::is_empty)
    }

    /// Every cut as `(node, from)`: `node` drops traffic from `from`. In order.
    pub fn cuts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.drops
            .iter()
            .flat_map(|(node, set)| set.iter().map(move |from| (node.as_str(), from.as_str())))
    }

    /// Verifies the invariants (see the type's documentation).
    pub fn check(&self) -> Result<(), GrudgeError> {
        for (node, from) in self.cuts() {
            if node == from {
                return Err(GrudgeError::DropsItself {
                    node: node.to_string(),
                });
            }
            if !self.drops.contains_key(from) {
                return Err(GrudgeError::UnknownNode {
                    node: node.to_string(),
                    from: from.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The grudge as JSON for the history: each node that drops anything, mapped to the
    /// nodes it drops, e.g. `{"n1":["n3","n4"],"n3":["n1"]}`.
    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> = self
            .drops
            .iter()
            .filter(|(_, set)| !set.is_empty())
            .map(|(node, set)| {
                (
                    node.clone(),
                    Value::from(set.iter().cloned().collect::<Vec<_>>()),
                )
            })
            .collect();
        Value::Object(map)
    }
}

/// The grudge in which no node can talk to any node outside its component (Jepsen's
/// `complete-grudge`): every node drops traffic from every node of the other components.
/// A node may appear in only one component.
pub fn complete_grudge<S: AsRef<str>>(components: &[Vec<S>]) -> Result<Grudge, GrudgeError> {
    let mut component_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, component) in components.iter().enumerate() {
        for node in component {
            if component_of.insert(node.as_ref(), i).is_some() {
                return Err(GrudgeError::DuplicateNode {
                    node: node.as_ref().to_string(),
                });
            }
        }
    }
    let nodes: Vec<&str> = component_of.keys().copied().collect();
    let mut grudge = Grudge::new(&nodes);
    for (node, i) in &component_of {
        for (from, j) in &component_of {
            if i != j {
                grudge.cut(node, from);
            }
        }
    }
    Ok(grudge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_grudge_cuts_every_pair_across_components() {
        let grudge = complete_grudge(&[vec!["a", "b"], vec!["c"], vec!["d", "e"]]).unwrap();
        grudge.check().unwrap();
        assert!(grudge.is_symmetric());
        let nodes: Vec<&str> = grudge.nodes().collect();
        assert_eq!(nodes, ["a", "b", "c", "d", "e"]);
        assert_eq!(grudge.dropped_by("a").collect::<Vec<_>>(), ["c", "d", "e"]);
        assert_eq!(
            grudge.dropped_by("c").collect::<Vec<_>>(),
            ["a", "b", "d", "e"]
        );
        assert_eq!(grudge.view("d"), BTreeSet::from(["d", "e"]));
        // 2*3 + 1*4 + 2*3 directed cuts.
        assert_eq!(grudge.cuts().count(), 16);
    }

    #[test]
    fn one_component_is_the_healed_network() {
        let grudge = complete_grudge(&[vec!["a", "b", "c"]]).unwrap();
        assert!(grudge.is_empty());
        assert_eq!(grudge, Grudge::new(&["c", "b", "a"]));
        assert_eq!(grudge.to_json(), serde_json::json!({}));
    }

    #[test]
    fn a_node_in_two_components_is_refused() {
        let err = complete_grudge(&[vec!["a", "b"], vec!["b", "c"]]);
        assert_eq!(err, Err(GrudgeError::DuplicateNode { node: "b".into() }));
    }

    #[test]
    fn cut_never_makes_a_node_drop_itself() {
        let mut grudge = Grudge::new(&["a", "b"]);
        grudge.cut("a", "a");
        assert!(grudge.is_empty());
        grudge.cut("a", "b");
        assert!(!grudge.is_symmetric());
        assert_eq!(grudge.to_json(), serde_json::json!({"a": ["b"]}));
        grudge.uncut("a", "b");
        assert!(grudge.is_empty());
    }

    #[test]
    fn check_reports_broken_invariants() {
        let mut drops = BTreeMap::new();
        drops.insert("a".to_string(), BTreeSet::from(["a".to_string()]));
        assert_eq!(
            Grudge { drops }.check(),
            Err(GrudgeError::DropsItself { node: "a".into() })
        );
        let mut drops = BTreeMap::new();
        drops.insert("a".to_string(), BTreeSet::from(["z".to_string()]));
        let err = Grudge { drops }.check();
        assert_eq!(
            err,
            Err(GrudgeError::UnknownNode {
                node: "a".into(),
                from: "z".into()
            })
        );
    }
}
