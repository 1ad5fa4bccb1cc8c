//! Faultline's nemesis: the faults a test injects.
//!
//! - **Topologies** (pure): the network partitions of Jepsen's `nemesis` namespace as
//!   functions over node names: [`halves`], [`random_halves`], [`isolate`],
//!   [`majorities_ring`], [`bridge`], [`one_way`], built on [`Grudge`] and
//!   [`complete_grudge`]. A topology is a [`Partition`]: a grudge (for each node, the
//!   nodes it drops traffic from) and the JSON value the nemesis records in the history,
//!   e.g. `{"isolated":[["n1","n2"],["n3","n4","n5"]]}`.
//! - **Networks** ([`net`]): the [`Net`] trait applies a grudge for real, one nft table
//!   per node, with [`NftPartitions`] on any backend (the nft engine of
//!   `faultline_clusters::nft`, reaching each node as its backend says), and heals.
//! - **Nemeses**: the [`Nemesis`] protocol (`fs`, `invoke`, `heal`) with
//!   [`PartitionNemesis`], [`KillNemesis`], [`PauseNemesis`], [`PacketNemesis`] (loss,
//!   delay with jitter and bandwidth), [`ClockNemesis`] (per-node clocks under libfaketime),
//!   [`DiskNemesis`] (torn or corrupted write-ahead logs, full disks), [`PowerNemesis`]
//!   (power loss: unsynced writes lost), [`StormNemesis`] (crash-restart storms),
//!   [`ScenarioNemesis`] (multi-step scenarios aimed at consensus failure shapes:
//!   leader churn, kill after a vote, flapping partitions), the no-op [`Noop`] and
//!   [`Compose`]. Each draws its random choices from its own seeded RNG.
//! - **Schedules** ([`schedule()`], [`composed`], [`timeline()`], [`final_heal`]): pure
//!   generators of the nemesis process's operations (start a random enabled fault, stop
//!   it, …; one such cycle per [`FaultGroup`] at once; an explicit timeline from a
//!   schedule file or a recorded run, [`schedule::file`], [`schedule::replay`]) for the
//!   run loop.
//! - **Role targets** ([`roles`]): the leader, its followers, the previous leader, a
//!   minority holding the leader, resolved to nodes when a fault starts
//!   ([`RoleNemesis`]).
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
//!
//! Driving real faults (needs root; see `tests/netns_faults.rs`):
//!
//! ```no_run
//! # use std::{path::Path, sync::Arc, time::Duration};
//! use faultline_clusters::{KvDb, NetnsCluster, db::setup_all};
//! use faultline_nemesis::{Compose, KillNemesis, Nemesis, NftPartitions, PartitionNemesis};
//! use serde_json::json;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = NetnsCluster::create(Path::new("/tmp/run"), 5)?;
//! let nodes = cluster.nodes();
//! let db = Arc::new(KvDb::new("target/release/faultline-kv", &nodes).upload(false));
//! setup_all(&*db, &nodes, Duration::from_secs(10))?;
//! let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
//! let mut nemesis = Compose::new(vec![
//!     Box::new(PartitionNemesis::new(Arc::new(NftPartitions::new(&cluster.net_hosts())), &names, 42)),
//!     Box::new(KillNemesis::new(db, nodes, 42)),
//! ])?;
//! let info = nemesis.invoke("start-partition", &json!("majority"))?;
//! nemesis.invoke("kill", &json!("one"))?;
//! nemesis.heal()?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod clock;
mod delay;
pub mod delayer;
mod disk;
mod disk_full;
mod error;
mod fault;
mod grudge;
#[allow(clippy::module_inception)]
mod nemesis;
pub mod net;
mod packet;
mod partition;
mod partitioner;
mod power;
mod process;
pub mod roles;
mod scenario;
pub mod schedule;
mod storm;

pub use clock::{BUMP_CLOCK, ClockNemesis, MAX_RANDOM_BUMP_SECS, RESET_CLOCK, STROBE_CLOCK};
pub use disk::{
    CORRUPT_LOG, DiskNemesis, FILL_DISK, RESTORE_LOG, START_DISK, TRUNCATE_LOG, wal_records,
};
pub use disk_full::FILLER;
pub use error::NemesisError;
pub use fault::{BuildError, Target, UnknownFault, build, build_tracking};
pub use fault::{Fault, FaultGroup};
pub use grudge::{Grudge, GrudgeError, complete_grudge};
pub use nemesis::{Compose, Nemesis, Noop};
pub use net::{Net, NftPartitions};
pub use packet::{
    DELAYS_MS, LOSSES, MAX_DELAY_MS, PacketNemesis, RATES, START_PACKET, STOP_PACKET,
};
pub use partition::{
    Partition, TopologyError, bridge, halves, isolate, majorities_ring, one_way, random_halves,
    shuffled,
};
pub use partitioner::{PartitionNemesis, START_PARTITION, STOP_PARTITION, TOPOLOGIES};
pub use power::{POWER_LOSS, POWER_ON, POWER_TARGETS, PowerNemesis};
pub use process::{
    DEFAULT_READY_TIMEOUT, KILL, KillNemesis, PAUSE, PauseNemesis, RESUME, START, TARGETS,
};
pub use roles::{RoleNemesis, Roles};
pub use scenario::{
    DEFAULT_FIGURE8_DELAY, DEFAULT_FLAP_PERIOD, START_FIGURE8, START_FLAP, START_LEADER_CHURN,
    START_STALE_LEADER, START_VOTE_KILL, STOP_FIGURE8, STOP_FLAP, STOP_LEADER_CHURN,
    STOP_STALE_LEADER, STOP_VOTE_KILL, Scenario, ScenarioNemesis,
};
pub use schedule::{
    DEFAULT_INTERVAL, NemesisMode, Schedule, Step, Timeline, composed, final_heal, schedule,
    timeline,
};
pub use storm::{DEFAULT_STORM_PERIOD, START_STORM, STOP_STORM, STORM_TARGETS, StormNemesis};
