//! The faults a run can have, in one place: the [`Fault`] vocabulary (names, the `f`s
//! that start and stop each), which faults a run may have ([`Fault::refusal`], from
//! what the database can do, [`Capabilities`], and where its nodes run,
//! [`ClusterKind`]; the configuration checks a run's faults with it before anything is
//! deployed, and the nemeses refuse with the same reasons when built), and the nemesis
//! each one is ([`build`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use faultline_clusters::db::{Capabilities, faketime_installed};
use faultline_clusters::{Backend, ClusterKind, Db, Node};

use crate::error::NemesisError;
use crate::nemesis::{Compose, Nemesis};
use crate::net::NftPartitions;
use crate::roles::{RoleNemesis, Roles};
use crate::{
    ClockNemesis, DiskNemesis, KillNemesis, PacketNemesis, PartitionNemesis, PauseNemesis,
    PowerNemesis, ScenarioNemesis, StormNemesis,
};

use crate::clock::{BUMP_CLOCK, RESET_CLOCK, STROBE_CLOCK};
use crate::disk::{CORRUPT_LOG, FILL_DISK, RESTORE_LOG, START_DISK, TRUNCATE_LOG};
use crate::packet::{START_PACKET, STOP_PACKET};
use crate::partitioner::{START_PARTITION, STOP_PARTITION};
use crate::power::{POWER_LOSS, POWER_ON};
use crate::process::{KILL, PAUSE, RESUME, START};
use crate::scenario::{
    START_FIGURE8, START_FLAP, START_LEADER_CHURN, START_STALE_LEADER, START_VOTE_KILL,
    STOP_FIGURE8, STOP_FLAP, STOP_LEADER_CHURN, STOP_STALE_LEADER, STOP_VOTE_KILL, Scenario,
};
use crate::storm::{START_STORM, STOP_STORM};

/// A kind of fault a schedule can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// A network partition (`start-partition` / `stop-partition`).
    Partition,
    /// Crashing nodes (`kill` / `start`).
    Kill,
    /// Pausing nodes (`pause` / `resume`).
    Pause,
    /// Packet loss, delay with jitter or a bandwidth limit between nodes
    /// (`start-packet` / `stop-packet`; the nemesis picks which).
    Packet,
    /// Moving nodes' clocks (`bump-clock` / `reset-clock`).
    Clock,
    /// A crashed node's log losing its tail, or a full disk under a running node
    /// (`start-disk`, which picks `truncate-log` or `fill-disk`, / `restore-log`;
    /// corruption in the middle, `corrupt-log`, is never scheduled: ask for it
    /// explicitly).
    Disk,
    /// Power loss: crashed nodes lose their unsynced writes (`power-loss` /
    /// `power-on`).
    Power,
    /// A crash-restart storm: nodes bounced (killed and restarted at once) again and
    /// again until it stops (`start-storm` / `stop-storm`).
    Storm,
    /// Scenario: the leader isolated with one follower, killed, a new term elected,
    /// the old leader back as the new one replicates, again and again
    /// (`start-leader-churn` / `stop-leader-churn`; aims at `old-term-commit`).
    LeaderChurn,
    /// Scenario: elections provoked and a node killed and restarted right after it
    /// granted its vote (`start-vote-kill` / `stop-vote-kill`; aims at `forget-vote`).
    VoteKill,
    /// Scenario: a new random partition every few hundred milliseconds
    /// (`start-flap` / `stop-flap`; aims at leader-change edge cases).
    Flap,
    /// Scenario: the leader frozen and cut off while a new one is elected, then woken
    /// behind a bridge with a quorum of its own (`start-stale-leader` /
    /// `stop-stale-leader`; aims at `paxos-accept-stale-ballot`).
    StaleLeader,
    /// Scenario: Raft's figure 8 played out, an old term's entries counted and then
    /// overwritten (`start-figure8` / `stop-figure8`; aims at `old-term-commit`).
    Figure8,
}

impl Fault {
    /// Every fault, in order.
    pub const ALL: [Fault; 13] = [
        Fault::Partition,
        Fault::Kill,
        Fault::Pause,
        Fault::Packet,
        Fault::Clock,
        Fault::Disk,
        Fault::Power,
        Fault::Storm,
        Fault::LeaderChurn,
        Fault::VoteKill,
        Fault::Flap,
        Fault::StaleLeader,
        Fault::Figure8,
    ];

    /// The `f` that starts this fault.
    pub fn start_f(self) -> &'static str {
        match self {
            Fault::Partition => START_PARTITION,
            Fault::Kill => KILL,
            Fault::Pause => PAUSE,
            Fault::Packet => START_PACKET,
            Fault::Clock => BUMP_CLOCK,
            Fault::Disk => START_DISK,
            Fault::Power => POWER_LOSS,
            Fault::Storm => START_STORM,
            Fault::LeaderChurn
            | Fault::VoteKill
            | Fault::Flap
            | Fault::StaleLeader
            | Fault::Figure8 => self.scenario_fs()[0],
        }
    }

    /// The `f` that stops this fault.
    pub fn stop_f(self) -> &'static str {
        match self {
            Fault::Partition => STOP_PARTITION,
            Fault::Kill => START,
            Fault::Pause => RESUME,
            Fault::Packet => STOP_PACKET,
            Fault::Clock => RESET_CLOCK,
            Fault::Disk => RESTORE_LOG,
            Fault::Power => POWER_ON,
            Fault::Storm => STOP_STORM,
            Fault::LeaderChurn
            | Fault::VoteKill
            | Fault::Flap
            | Fault::StaleLeader
            | Fault::Figure8 => self.scenario_fs()[1],
        }
    }

    /// The fault's name on command lines (`partition`, `kill`, `pause`, `packet`,
    /// `clock`, `disk`, `power`, `storm`, `leader-churn`, `vote-kill`, `flap`,
    /// `stale-leader`, `figure8`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Packet => "packet",
            Fault::Clock => "clock",
            Fault::Disk => "disk",
            Fault::Power => "power",
            Fault::Storm => "storm",
            Fault::LeaderChurn => "leader-churn",
            Fault::VoteKill => "vote-kill",
            Fault::Flap => "flap",
            Fault::StaleLeader => "stale-leader",
            Fault::Figure8 => "figure8",
        }
    }

    /// The scenario nemesis this fault is, if it is one.
    pub fn scenario(self) -> Option<Scenario> {
        match self {
            Fault::LeaderChurn => Some(Scenario::LeaderChurn),
            Fault::VoteKill => Some(Scenario::VoteKill),
            Fault::Flap => Some(Scenario::Flap),
            Fault::StaleLeader => Some(Scenario::StaleLeader),
            Fault::Figure8 => Some(Scenario::Figure8),
            _ => None,
        }
    }

    fn scenario_fs(self) -> [&'static str; 2] {
        self.scenario().map_or(["", ""], Scenario::fs)
    }

    /// The fault named `name` (see [`Fault::name`]), for command lines.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Every `f` this fault's nemesis handles: the start and stop `f`s first, then any
    /// others it understands (e.g. `truncate-log`), so a recorded `f` finds its fault.
    pub fn fs(self) -> &'static [&'static str] {
        match self {
            Fault::Partition => &[START_PARTITION, STOP_PARTITION],
            Fault::Kill => &[KILL, START],
            Fault::Pause => &[PAUSE, RESUME],
            Fault::Packet => &[START_PACKET, STOP_PACKET],
            Fault::Clock => &[BUMP_CLOCK, RESET_CLOCK, STROBE_CLOCK],
            Fault::Disk => &[
                START_DISK,
                RESTORE_LOG,
                TRUNCATE_LOG,
                CORRUPT_LOG,
                FILL_DISK,
            ],
            Fault::Power => &[POWER_LOSS, POWER_ON],
            Fault::Storm => &[START_STORM, STOP_STORM],
            Fault::LeaderChurn => &[START_LEADER_CHURN, STOP_LEADER_CHURN],
            Fault::VoteKill => &[START_VOTE_KILL, STOP_VOTE_KILL],
            Fault::Flap => &[START_FLAP, STOP_FLAP],
            Fault::StaleLeader => &[START_STALE_LEADER, STOP_STALE_LEADER],
            Fault::Figure8 => &[START_FIGURE8, STOP_FIGURE8],
        }
    }

    /// The fault whose nemesis handles `f` (see [`Fault::fs`]).
    pub fn of_f(f: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|fault| fault.fs().contains(&f))
    }

    /// What this fault acts on ([`FaultGroup`]): faults of one group never overlap in
    /// a composed schedule, faults of different groups do.
    pub fn group(self) -> FaultGroup {
        match self {
            // Each kills, stops or restarts nodes (or swaps their data directories).
            Fault::Kill | Fault::Pause | Fault::Disk | Fault::Power | Fault::Storm => {
                FaultGroup::Process
            }
            Fault::Partition => FaultGroup::Network,
            Fault::Packet => FaultGroup::Packet,
            Fault::Clock => FaultGroup::Clock,
            Fault::LeaderChurn
            | Fault::VoteKill
            | Fault::Flap
            | Fault::StaleLeader
            | Fault::Figure8 => FaultGroup::Scenario,
        }
    }
}

/// What a fault acts on, for composed schedules: one timer per group, the faults of a
/// group take turns, groups overlap.
///
/// - `Process`: the nodes' processes and their data (kill, pause, disk, power, storm
///   all stop or restart nodes; two of them at once would fight over the same
///   process: a paused node killed, a restarted node under a damaged log).
/// - `Network`: the partition table `faultline_RUN` (nft, priority -10).
/// - `Packet`: loss in its own table `faultline_RUN_pkt` (priority -5), delay through
///   iptables and NFQUEUE, bandwidth through tc: nothing the partition table holds,
///   so a partition and packet loss may overlap.
/// - `Clock`: the libfaketime offset file of each node, independent of the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultGroup {
    /// Faults that stop, restart or damage node processes.
    Process,
    /// Network partitions.
    Network,
    /// Packet loss, delay and bandwidth.
    Packet,
    /// Clocks.
    Clock,
    /// Scenarios: they partition, kill and delay packets, so in a composed schedule they
    /// run on their own timer but take turns with the faults of the process, network
    /// and packet groups; clock faults still overlap them.
    Scenario,
}

impl FaultGroup {
    /// The group's name, for logs and docs.
    pub fn name(self) -> &'static str {
        match self {
            FaultGroup::Process => "process",
            FaultGroup::Network => "network",
            FaultGroup::Packet => "packet",
            FaultGroup::Clock => "clock",
            FaultGroup::Scenario => "scenario",
        }
    }
}

impl Fault {
    /// Why `fault` cannot be injected into a database that can do `can` on `cluster`,
    /// or `None` when it can. Pure but for looking for libfaketime on this machine.
    pub fn refusal(self, can: &Capabilities, cluster: ClusterKind) -> Option<String> {
        let needs = |support: Result<(), &'static str>| support.err().map(str::to_string);
        match self {
            Fault::Clock => needs(can.fake_clock).or_else(|| {
                (cluster.faketime_from_controller() && !faketime_installed()).then(|| {
                    "the node image takes libfaketime from this machine, which has none \
                     (apt-get install libfaketime)"
                        .to_string()
                })
            }),
            Fault::Disk => needs(can.kv_log),
            Fault::Power => needs(can.lazyfs).or_else(|| {
                (!cluster.shares_filesystem()).then(|| {
                    "faultline-lazyfs mounts each node's data directory on the controller, so \
                     only local namespaces (which share its filesystem) can lose unsynced \
                     writes; use --cluster local"
                        .to_string()
                })
            }),
            Fault::VoteKill | Fault::Figure8 => needs(can.elections).or_else(|| needs(can.peers)),
            Fault::Partition
            | Fault::Packet
            | Fault::LeaderChurn
            | Fault::Flap
            | Fault::StaleLeader => needs(can.peers),
            Fault::Kill | Fault::Pause | Fault::Storm => None,
        }
    }

    /// Whether `all` includes this fault on `cluster` (when it is not refused): every one
    /// but `storm` (it keeps restarting nodes for as long as it lasts), the scenarios
    /// `leader-churn` and `flap` (no planted bug needs them that `vote-kill`,
    /// `stale-leader` and `figure8` do not catch, and each would take a share of the
    /// scenarios' turns) and, on SSH hosts, `clock` (it needs libfaketime installed
    /// there); those only when named. `stale-leader` is in only where the database
    /// reports its elections (`can.elections`, the bundled node), as `vote-kill` and
    /// `figure8` need to be run at all: elsewhere it would aim by guesswork. The
    /// scenarios that are in take turns with the process, network and packet faults
    /// ([`crate::composed`]).
    pub fn in_all(self, can: &Capabilities, cluster: ClusterKind) -> bool {
        match self {
            Fault::Storm | Fault::LeaderChurn | Fault::Flap => false,
            Fault::StaleLeader => can.elections.is_ok(),
            Fault::Clock => cluster != ClusterKind::Ssh,
            _ => true,
        }
    }
}

/// What a run's nemesis acts on: its hosts and its database.
pub struct Target<'a> {
    /// The hosts (for network faults, and whether their disks are this machine's).
    pub backend: &'a dyn Backend,
    /// The database.
    pub db: Arc<dyn Db>,
    /// Its nodes, `n1` first.
    pub nodes: Vec<Node>,
    /// The packet delayer on the controller (`faultline-delayer`), if there is one:
    /// without it, packet faults are loss and bandwidth only.
    pub delayer: Option<PathBuf>,
}

/// Why the nemesis of a run could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A fault's nemesis refused the database (a capability it lacks): the run's
    /// configuration is at fault.
    #[error("{fault}: {source}")]
    Refused {
        /// The fault.
        fault: Fault,
        /// The refusal.
        source: Box<NemesisError>,
    },
    /// Setting a fault up failed (e.g. the hosts could not be reached).
    #[error("{what}: {source}")]
    Failed {
        /// What was being set up.
        what: &'static str,
        /// Why it failed.
        source: Box<NemesisError>,
    },
}

/// The nemesis of `faults` on `target`, one member per fault, composed; each member
/// draws from its own RNG, seeded from `seed` and its place. Role targets in operation
/// values (`leader`, `followers`, …: [`crate::roles`]) are resolved to nodes where the
/// database can say who leads. `None` without faults.
pub fn build(
    faults: &[Fault],
    target: &Target,
    seed: u64,
) -> Result<Option<Box<dyn Nemesis>>, BuildError> {
    build_tracking(faults, target, seed, false)
}

/// [`build`], asking who leads before every operation when `track_leaders` (for
/// schedules that aim at the `previous-leader`: [`crate::RoleNemesis::track_leaders`]).
pub fn build_tracking(
    faults: &[Fault],
    target: &Target,
    seed: u64,
    track_leaders: bool,
) -> Result<Option<Box<dyn Nemesis>>, BuildError> {
    if faults.is_empty() {
        return Ok(None);
    }
    let mut members = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let seed = seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
        members.push(fault.member(faults, target, seed)?);
    }
    let compose = Compose::new(members).map_err(|source| BuildError::Failed {
        what: "cannot compose the nemesis",
        source: Box::new(source),
    })?;
    if target.db.primaries().is_none() {
        return Ok(Some(Box::new(compose)));
    }
    let roles = Roles::new(Arc::clone(&target.db), target.nodes.clone(), seed ^ 0x7015);
    Ok(Some(Box::new(
        RoleNemesis::new(Box::new(compose), roles).track_leaders(track_leaders),
    )))
}

impl Fault {
    /// This fault's nemesis on `target` (`all`: the run's faults, for those that
    /// depend on others).
    fn member(
        self,
        all: &[Fault],
        target: &Target,
        seed: u64,
    ) -> Result<Box<dyn Nemesis>, BuildError> {
        let db = || Arc::clone(&target.db);
        let nodes = || target.nodes.clone();
        let refused = |source| BuildError::Refused {
            fault: self,
            source: Box::new(source),
        };
        let failed = |what| {
            move |source| BuildError::Failed {
                what,
                source: Box::new(source),
            }
        };
        let net = |what| {
            target
                .backend
                .net()
                .map_err(|e| failed(what)(NemesisError::from(e)))
        };
        Ok(match self {
            Fault::Partition => {
                let net = net("cannot set up network faults")?;
                let names: Vec<String> = target.nodes.iter().map(|n| n.name.clone()).collect();
                let partitions =
                    PartitionNemesis::new(Arc::new(NftPartitions::new(&net)), &names, seed);
                // Isolating the leader, where the database can say who leads.
                Box::new(if target.db.primaries().is_some() {
                    partitions
                        .with_primaries(db(), nodes())
                        .map_err(failed("cannot set up leader partitions"))?
                } else {
                    partitions
                })
            }
            Fault::Kill => Box::new(KillNemesis::new(db(), nodes(), seed)),
            Fault::Pause => Box::new(PauseNemesis::new(db(), nodes(), seed).map_err(refused)?),
            Fault::Packet => {
                let packet = PacketNemesis::new(&net("cannot set up packet faults")?, seed);
                Box::new(match &target.delayer {
                    Some(delayer) => packet.delayer(delayer),
                    None => packet,
                })
            }
            Fault::Clock => Box::new(ClockNemesis::new(db(), nodes(), seed).map_err(refused)?),
            Fault::Disk => {
                let disk = DiskNemesis::new(db(), nodes(), seed).map_err(refused)?;
                // Full disks need the nodes' directories on this machine, and cannot
                // replace a data directory that is a faultline-lazyfs mount (`power`).
                Box::new(
                    if target.backend.shares_filesystem() && !all.contains(&Fault::Power) {
                        disk.disk_full(Arc::clone(target.backend.registry()))
                    } else {
                        disk
                    },
                )
            }
            Fault::Power => Box::new(PowerNemesis::new(db(), nodes(), seed).map_err(refused)?),
            Fault::Storm => Box::new(StormNemesis::new(db(), nodes(), seed)),
            Fault::LeaderChurn
            | Fault::VoteKill
            | Fault::Flap
            | Fault::StaleLeader
            | Fault::Figure8 => {
                let net = net("cannot set up the scenario's network faults")?;
                let scenario = self.scenario().ok_or_else(|| {
                    failed("no scenario")(NemesisError::UnknownF {
                        f: self.name().to_string(),
                        handled: Vec::new(),
                    })
                })?;
                let nemesis = ScenarioNemesis::new(
                    scenario,
                    db(),
                    nodes(),
                    Arc::new(NftPartitions::new(&net)),
                    seed,
                )
                .map_err(refused)?;
                Box::new(match &target.delayer {
                    Some(program) => nemesis.delayer(&net, program.clone()),
                    None => nemesis,
                })
            }
        })
    }
}

/// A name that is no fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault `{0}`; expected one of partition, kill, pause, packet, clock, disk, power, storm, leader-churn, vote-kill, flap, stale-leader, figure8"
)]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Fault, UnknownFault> {
        Fault::from_name(name).ok_or_else(|| UnknownFault(name.to_string()))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl clap::ValueEnum for Fault {
    fn value_variants<'a>() -> &'a [Self] {
        &Fault::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_clusters::{EtcdDb, FileDb, KvDb};

    #[test]
    fn the_rules_follow_capabilities_and_backends() {
        let local = ClusterKind::Local;
        for fault in Fault::ALL {
            assert_eq!(fault.refusal(&KvDb::CAPABILITIES, local), None, "{fault}");
        }
        let etcd = &EtcdDb::CAPABILITIES;
        assert!(
            Fault::Clock
                .refusal(etcd, local)
                .unwrap()
                .starts_with("etcd is a Go program")
        );
        assert!(Fault::Disk.refusal(etcd, local).is_some());
        assert!(Fault::Power.refusal(&FileDb::CAPABILITIES, local).is_some());
        assert!(
            Fault::Power
                .refusal(&KvDb::CAPABILITIES, ClusterKind::Docker)
                .unwrap()
                .contains("--cluster local")
        );
        let kv = &KvDb::CAPABILITIES;
        assert!(!Fault::Storm.in_all(kv, local) && !Fault::Clock.in_all(kv, ClusterKind::Ssh));
        assert!(
            Fault::VoteKill
                .refusal(etcd, local)
                .unwrap()
                .contains("terms and votes")
        );
        assert_eq!(Fault::LeaderChurn.refusal(etcd, local), None);
        assert!(!Fault::Flap.in_all(kv, local) && Fault::VoteKill.in_all(kv, local));
        assert_eq!("vote-kill".parse::<Fault>(), Ok(Fault::VoteKill));
        assert_eq!(Fault::LeaderChurn.start_f(), "start-leader-churn");
        assert_eq!(Fault::Flap.stop_f(), "stop-flap");
        assert_eq!("stale-leader".parse::<Fault>(), Ok(Fault::StaleLeader));
        assert_eq!(Fault::of_f("stop-stale-leader"), Some(Fault::StaleLeader));
        assert!(Fault::StaleLeader.in_all(kv, local) && Fault::Figure8.in_all(kv, local));
        assert!(!Fault::StaleLeader.in_all(etcd, local) && !Fault::LeaderChurn.in_all(kv, local));
        assert_eq!(Fault::of_f("start-figure8"), Some(Fault::Figure8));
        assert!(Fault::Figure8.refusal(etcd, local).is_some());
        assert_eq!(Fault::StaleLeader.group(), FaultGroup::Scenario);
        assert_eq!("kill".parse::<Fault>(), Ok(Fault::Kill));
        assert!(
            "flood"
                .parse::<Fault>()
                .unwrap_err()
                .to_string()
                .contains("unknown fault `flood`")
        );
    }
}
