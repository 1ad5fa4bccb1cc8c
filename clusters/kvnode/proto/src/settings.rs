//! The node's settings that the harness chooses for it: the consensus protocol
//! (`--consensus`) and the planted bugs (`--bug`). One definition for the node's flags,
//! the harness's flags and files, and `config.json` (kebab-case names); the `clap`
//! feature derives `clap::ValueEnum` for the command lines.

use std::fmt;

/// Which consensus protocol a node runs (`--consensus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Raft (the default).
    #[default]
    Raft,
    /// Multi-Paxos.
    Paxos,
}

impl Protocol {
    /// The protocol's `--consensus` value.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Raft => "raft",
            Protocol::Paxos => "paxos",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a transaction touching several shards commits (`--commit-protocol`; only with
/// `--shards` above 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CommitProtocol {
    /// Two-phase commit over the replicated shards: prepares and the decision are
    /// records in the shards' logs (the default).
    #[default]
    #[serde(rename = "2pc")]
    #[cfg_attr(feature = "clap", value(name = "2pc"))]
    TwoPhase,
    /// Classic three-phase commit: each shard's part on one node (its preferred one),
    /// not replicated, with the textbook's timeouts.
    #[serde(rename = "3pc")]
    #[cfg_attr(feature = "clap", value(name = "3pc"))]
    ThreePhase,
}

impl CommitProtocol {
    /// The protocol's `--commit-protocol` value.
    pub fn name(self) -> &'static str {
        match self {
            CommitProtocol::TwoPhase => "2pc",
            CommitProtocol::ThreePhase => "3pc",
        }
    }
}

impl fmt::Display for CommitProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A planted bug (all off by default), for checking that the checkers catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Any node answers reads from its local state, without confirming leadership.
    StaleRead,
    /// Acknowledge before the log is durable: the write-ahead log is never fsynced; a
    /// power loss (or any crash in a run with the power fault) reveals it.
    NoFsync,
    /// Commit entries of earlier terms by counting replicas (Raft figure 8).
    OldTermCommit,
    /// The vote is not persisted, so a restarted node can vote twice in a term; a crash
    /// right after a vote reveals it.
    ForgetVote,
    /// Multi-Paxos: a new leader proposes its own values without adopting the values
    /// already accepted by the promising quorum.
    PaxosIgnorePromise,
    /// Raft: the leader serves reads locally on a lease timed by its own wall clock from
    /// the last quorum contact, trusting the lease even after it steps down; nothing
    /// bounds clock drift, so a clock step back (clock fault) keeps a deposed leader
    /// serving stale reads. Turns lease reads on by itself.
    LeaseReadSkew,
    /// Raft: the leader commits, applies and acknowledges a write once it is in its own
    /// durable log, before a quorum has it; a leader cut off by a partition, or killed,
    /// loses acknowledged writes.
    AckBeforeCommit,
    /// Multi-Paxos: an acceptor checks its promise only on prepare and accepts values
    /// under a lower ballot than it promised, so a deposed leader that has not noticed
    /// (paused, or cut off, while a new one was elected) can still get values chosen
    /// over the new leader's.
    PaxosAcceptStaleBallot,
    /// Two-phase commit (`--shards` above 1): a participant shard that stays prepared
    /// past its query timeout commits its part on its own instead of asking the
    /// coordinator shard, so a transaction the coordinator aborted (its votes late, a
    /// participant cut off or killed) takes effect on some shards and not on others.
    #[serde(rename = "2pc-presumed-commit")]
    #[cfg_attr(feature = "clap", value(name = "2pc-presumed-commit"))]
    TwoPcPresumedCommit,
}

impl Bug {
    /// The bug's `--bug` value, e.g. `stale-read`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::NoFsync => "no-fsync",
            Bug::OldTermCommit => "old-term-commit",
            Bug::ForgetVote => "forget-vote",
            Bug::PaxosIgnorePromise => "paxos-ignore-promise",
            Bug::LeaseReadSkew => "lease-read-skew",
            Bug::AckBeforeCommit => "ack-before-commit",
            Bug::PaxosAcceptStaleBallot => "paxos-accept-stale-ballot",
            Bug::TwoPcPresumedCommit => "2pc-presumed-commit",
        }
    }

    /// The consensus protocol whose code holds the bug; `None` for a bug that both
    /// protocols share (the storage's, or the cross-shard commit's).
    pub fn protocol(self) -> Option<Protocol> {
        match self {
            Bug::StaleRead
            | Bug::OldTermCommit
            | Bug::ForgetVote
            | Bug::LeaseReadSkew
            | Bug::AckBeforeCommit => Some(Protocol::Raft),
            Bug::PaxosIgnorePromise | Bug::PaxosAcceptStaleBallot => Some(Protocol::Paxos),
            Bug::NoFsync | Bug::TwoPcPresumedCommit => None,
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_names() {
        for bug in [
            Bug::StaleRead,
            Bug::NoFsync,
            Bug::OldTermCommit,
            Bug::ForgetVote,
            Bug::PaxosIgnorePromise,
            Bug::LeaseReadSkew,
            Bug::AckBeforeCommit,
            Bug::PaxosAcceptStaleBallot,
            Bug::TwoPcPresumedCommit,
        ] {
            assert_eq!(serde_json::to_value(bug).unwrap(), bug.name());
        }
        for protocol in [Protocol::Raft, Protocol::Paxos] {
            assert_eq!(serde_json::to_value(protocol).unwrap(), protocol.name());
        }
        for protocol in [CommitProtocol::TwoPhase, CommitProtocol::ThreePhase] {
            assert_eq!(serde_json::to_value(protocol).unwrap(), protocol.name());
        }
    }
}
