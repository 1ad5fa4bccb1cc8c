//! Which [`Fault`] a run may have: the one place that decides it, from what the
//! database can do ([`Capabilities`]) and where its nodes run ([`ClusterKind`]). The
//! configuration checks a run's faults with it before anything is deployed, and the
//! nemeses refuse with the same reasons when built.

use std::fmt;
use std::str::FromStr;

use faultline_clusters::ClusterKind;
use faultline_clusters::db::{Capabilities, faketime_installed};

use crate::schedule::Fault;

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
            Fault::Partition | Fault::Kill | Fault::Pause | Fault::Packet | Fault::Storm => None,
        }
    }

    /// Whether `all` includes this fault on `cluster` (when it is not refused): every one
    /// but `storm` (it keeps restarting nodes for as long as it lasts) and, on SSH hosts,
    /// `clock` (it needs libfaketime installed there); both only when named.
    pub fn in_all(self, cluster: ClusterKind) -> bool {
        match self {
            Fault::Storm => false,
            Fault::Clock => cluster != ClusterKind::Ssh,
            _ => true,
        }
    }
}

/// A name that is no fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault `{0}`; expected one of partition, kill, pause, packet, clock, disk, power, storm"
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
        assert!(!Fault::Storm.in_all(local) && !Fault::Clock.in_all(ClusterKind::Ssh));
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
