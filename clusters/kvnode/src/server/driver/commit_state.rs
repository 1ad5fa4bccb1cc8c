//! A shard loop's commit protocol, whichever it is: 2PC over the replicated shard or
//! 3PC at its home, behind the few questions the loop asks of either.

use crate::commit::two_phase::{self, Durable};

use super::three_pc::ThreePc;

/// The shard's side of its commit protocol.
#[derive(Debug)]
pub enum Commit {
    /// Two-phase commit over the replicated shard.
    TwoPhase(Box<two_phase::Shard>),
    /// Three-phase commit at the shard's home.
    ThreePhase(Box<ThreePc>),
}

impl Commit {
    /// Whether this replica acts for the shard (2PC: leads it; 3PC: its one-node group
    /// elected it).
    pub(in crate::server) fn leading(&self) -> bool {
        match self {
            Commit::TwoPhase(shard) => shard.leading(),
            Commit::ThreePhase(three) => three.leading,
        }
    }

    pub(super) fn set_leader(&mut self, leading: bool) {
        match self {
            Commit::TwoPhase(shard) => shard.set_leader(leading),
            Commit::ThreePhase(three) => three.leading = leading,
        }
    }

    /// Whether a single-shard transaction on `key` must wait (see the module docs).
    pub(super) fn is_busy(&self, key: &str) -> bool {
        match self {
            Commit::TwoPhase(shard) => shard.is_busy(key),
            Commit::ThreePhase(three) => three.is_busy(key),
        }
    }

    /// Whether a single-shard transaction on `key` must abort when applied. Only
    /// 2PC's locks are built by the log, and so the same when the log is replayed;
    /// 3PC's live on their own disk, and a transaction never reaches its shard's log
    /// while they hold its keys (the leader holds it back, and a can-commit is
    /// refused while it is in flight).
    pub(super) fn is_locked(&self, key: &str) -> bool {
        match self {
            Commit::TwoPhase(shard) => shard.is_locked(key),
            Commit::ThreePhase(_) => false,
        }
    }

    /// What a snapshot of the shard must carry besides the store: 2PC's records;
    /// 3PC's committed parts applied (as `finished`).
    pub(super) fn durable(&self) -> Option<Durable> {
        match self {
            Commit::TwoPhase(shard) => Some(shard.durable()),
            Commit::ThreePhase(three) => Some(Durable {
                finished: three.applied_parts.clone(),
                ..Durable::default()
            }),
        }
    }

    /// Restores what a snapshot carried.
    pub(super) fn restore(&mut self, state: Durable) {
        match self {
            Commit::TwoPhase(shard) => shard.restore(state),
            Commit::ThreePhase(three) => three.applied_parts = state.finished,
        }
    }
}

/// How a sharded node's loop commits cross-shard transactions.
#[derive(Debug)]
pub enum CommitSettings {
    /// Two-phase commit with these timeouts.
    TwoPhase(two_phase::Config),
    /// Three-phase commit at the shard's home, its disk already read.
    ThreePhase(Box<ThreePc>),
}
