//! Faultline's nemesis: the faults a test injects. For now, the network partition
//! topologies of Jepsen's `nemesis` namespace as pure functions over node names:
//! [`halves`], [`random_halves`], [`isolate`], [`majorities_ring`], [`bridge`],
//! [`one_way`], built on [`Grudge`] and [`complete_grudge`].
//!
//! A topology is a [`Partition`]: a [`Grudge`] (for each node, the nodes it drops traffic
//! from, which is what gets applied with nft on each host) and the JSON value the
//! nemesis records in the history, e.g. `{"isolated":[["n1","n2"],["n3","n4","n5"]]}`.
//! Nothing here does I/O; applying a grudge is the hosts layer's job.
//!
//! ```
//! use faultline_nemesis::{halves, majorities_ring};
//!
//! let nodes = ["n1", "n2", "n3", "n4", "n5"];
//! let split = halves(&nodes).unwrap();
//! assert_eq!(split.value.to_string(), r#"{"isolated":[["n1","n2"],["n3","n4","n5"]]}"#);
//! assert!(split.grudge.drops("n1", "n3") && split.grudge.drops("n3", "n1"));
//!
//! let ring = majorities_ring(&nodes).unwrap();
//! assert!(nodes.iter().all(|n| ring.grudge.view(n).len() >= 3));
//! ```
#![deny(missing_docs)]

mod grudge;
mod partition;

pub use grudge::{Grudge, GrudgeError, complete_grudge};
pub use partition::{
    Partition, TopologyError, bridge, halves, isolate, majorities_ring, one_way, random_halves,
    shuffled,
};
