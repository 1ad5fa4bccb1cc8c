//! Cross-shard atomic commit: the protocols that make a transaction touching several
//! shards take effect on every one of them or on none.
//!
//! - [`two_phase`]: two-phase commit in which every step that must survive a crash is
//!   a record in a shard's replicated log: a participant's prepare (its keys locked)
//!   in the participant shard's log, the commit/abort decision in the coordinator
//!   shard's log. A crashed coordinator's in-doubt transactions are resolved by asking
//!   the coordinator shard, whose log holds the decision or then records an abort,
//!   never by guessing.
//!
//! - [`three_phase`]: classic three-phase commit, each shard's part on one node, its
//!   phases on that node's disk: non-blocking when nodes only crash, unsafe under
//!   partitions.
//!
//! Like the consensus cores, these are state machines without I/O: the caller feeds
//! them applied log records, messages and ticks, and carries out what they put in an
//! outbox (records to propose, messages to send, outcomes to report). The seeded
//! simulation in `sim` (tests) drives them through crashes, message loss and
//! partitions and checks atomicity.

pub mod three_phase;
pub mod two_phase;

#[cfg(test)]
mod sim;

/// A cross-shard transaction's id, unique in the cluster.
pub type TxnId = u64;

/// A shard: one consensus group.
pub type ShardId = u32;

/// The transactions in `waits` whose deadline (`at` of their entry) has come by
/// `now`, in order: what a tick acts on.
fn due<V>(
    waits: &std::collections::BTreeMap<TxnId, V>,
    now: u64,
    at: impl Fn(&V) -> u64,
) -> Vec<TxnId> {
    waits
        .iter()
        .filter(|(_, wait)| at(wait) <= now)
        .map(|(txn, _)| *txn)
        .collect()
}

/// A commit protocol's message between shards, as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "protocol", content = "body")]
pub enum Message {
    /// Two-phase commit's.
    #[serde(rename = "2pc")]
    TwoPhase(two_phase::Message),
    /// Three-phase commit's.
    #[serde(rename = "3pc")]
    ThreePhase(three_phase::Message),
}

/// A transaction's outcome.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Its effects take place on every participant.
    Commit,
    /// It has no effect anywhere.
    Abort,
}
