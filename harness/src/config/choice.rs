//! Settings with a fixed set of values, parsed once into the types of the crates that
//! own them: the database (`Database`, in `database.rs`), faultline-kv's
//! [`Consensus`], [`CommitProtocol`] and [`Bug`]s, etcd's [`ReadMode`], PostgreSQL's [`Isolation`], the clients' [`Routing`], the `ClusterKind`, and the faults
//! ([`Fault`]). An unknown value is an error naming the flag (or file key) and every
//! allowed value.

use clap::ValueEnum;
use faultline_clusters::ClusterKind;
use faultline_clusters::db::Capabilities;
use faultline_nemesis::Fault;

use crate::error::UsageError;

pub use faultline_clusters::db::{Bug, CommitProtocol, Consensus};
pub use faultline_workloads::store::Routing;
pub use faultline_workloads::store::etcd::ReadMode;
pub use faultline_workloads::store::postgres::Isolation;

/// The names of `T`'s values, in order.
pub(crate) fn names<T: ValueEnum>() -> Vec<String> {
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
pub(crate) fn choice<T: ValueEnum>(origin: &str, value: &str) -> Result<T, UsageError> {
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
                .filter(|f| f.in_all(can, cluster) && f.refusal(can, cluster).is_none()),
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
