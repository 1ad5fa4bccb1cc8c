//! Settings with a fixed set of values, parsed once into the types of the crates that
//! own them: the database ([`Database`]), faultline-kv's [`Consensus`] and [`Bug`]s,
//! etcd's [`ReadMode`], the [`ClusterKind`], and the faults ([`Fault`]). An unknown
//! value is an error naming the flag (or file key) and every allowed value.

use std::fmt;

use clap::ValueEnum;
use faultline_clusters::db::Capabilities;
use faultline_clusters::{ClusterKind, EtcdDb, FileDb, KvDb};
use faultline_nemesis::Fault;
use serde::Serialize;

use crate::error::UsageError;

pub use faultline_clusters::db::{Bug, Consensus};
pub use faultline_workloads::store::etcd::ReadMode;

/// The database under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The bundled faultline-kv (`--db kv`).
    Kv,
    /// etcd, from this machine's `PATH` (`--db etcd`).
    Etcd,
    /// Any other, described in a `--db-file`: its name there.
    File(String),
}

/// The values of `--db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BuiltIn {
    Kv,
    Etcd,
}

impl Database {
    /// The built-in database named `value` (`--db`).
    pub fn built_in(origin: &str, value: &str) -> Result<Database, UsageError> {
        Ok(match choice::<BuiltIn>(origin, value)? {
            BuiltIn::Kv => Database::Kv,
            BuiltIn::Etcd => Database::Etcd,
        })
    }

    /// Its name: `kv`, `etcd`, or the one in its file.
    pub fn name(&self) -> &str {
        match self {
            Database::Kv => "kv",
            Database::Etcd => "etcd",
            Database::File(name) => name,
        }
    }

    /// What it can do, before it is built: which faults it may have.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Database::Kv => KvDb::CAPABILITIES,
            Database::Etcd => EtcdDb::CAPABILITIES,
            Database::File(_) => FileDb::CAPABILITIES,
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Database {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The names of `T`'s values, in order.
fn names<T: ValueEnum>() -> Vec<String> {
    T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|p| p.get_name().to_string())
        .collect()
}

/// The error for `value`, not one of `allowed`.
fn unknown(origin: &str, value: &str, allowed: &[String]) -> UsageError {
    UsageError(format!(
        "{origin}: unknown value `{value}`; expected one of {}",
        allowed.join(", ")
    ))
}

/// The value of `T` named `value`; else an error naming `origin` and every name.
pub fn choice<T: ValueEnum>(origin: &str, value: &str) -> Result<T, UsageError> {
    T::from_str(value, false).map_err(|_| unknown(origin, value, &names::<T>()))
}

/// What `--nemesis` lists: faults, `all` (every one the database and backend support)
/// or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultName {
    /// One fault.
    One(Fault),
    /// Every fault supported.
    All,
    /// No fault.
    None,
}

impl FaultName {
    /// The entry `value` of `--nemesis`.
    pub fn parse(origin: &str, value: &str) -> Result<FaultName, UsageError> {
        match value {
            "all" => Ok(FaultName::All),
            "none" => Ok(FaultName::None),
            _ => value.parse().map(FaultName::One).map_err(|_| {
                let mut allowed = names::<Fault>();
                allowed.extend(["all".to_string(), "none".to_string()]);
                unknown(origin, value, &allowed)
            }),
        }
    }
}

/// The faults `names` stand for with a database that can do `can` on `cluster`: `all`
/// expanded to every fault included in it ([`Fault::in_all`]) that is not refused,
/// followed by the other faults named, in order, once each.
pub fn expand(names: &[FaultName], can: &Capabilities, cluster: ClusterKind) -> Vec<Fault> {
    let mut faults = Vec::new();
    if names.contains(&FaultName::All) {
        faults.extend(
            Fault::ALL
                .into_iter()
                .filter(|f| f.in_all(cluster) && f.refusal(can, cluster).is_none()),
        );
    }
    for name in names {
        if let FaultName::One(fault) = name
            && !faults.contains(fault)
        {
            faults.push(*fault);
        }
    }
    faults
}
