//! Protocol events: the log lines a node-log checker reads (start, role, vote, commit,
//! apply, snapshot, truncate), one function per event, shared by both cores and the
//! node loop so the format has one definition.
//!
//! `vote` is logged by the node loop, not by the cores: a core records the vote it
//! decides in its next ready ([`crate::consensus::CoreReady::votes`]) and the loop logs
//! it right after persisting that ready, before the grant (or promise) is sent. A node
//! killed between deciding and persisting never cast that vote, so no line claims it.
//!
//! Each event is a `tracing` event with target `protocol` at INFO whose message is the
//! event's name and whose fields are `key=value` tokens without spaces, so with the
//! node's text formatter a line reads
//! `2026-12-05T12:00:00.123456Z  INFO protocol: role node=3 term=5 role=leader`.
//! Parsers find ` protocol: `; the first word after it names the event. `term` is
//! Raft's term (a decimal integer) or a Multi-Paxos ballot (`ROUND.NODE`); `apply`
//! lists the 32-bit FNV-1a hash of each applied entry's payload ([`fnv1a32`]) as 8
//! lowercase hex digits, at most [`MAX_HASHES_PER_LINE`] per line.

use std::fmt;

use tracing::Level;

use crate::consensus::{Entry, NodeId, Role};

/// The `tracing` target of protocol events.
pub const TARGET: &str = "protocol";

/// Most hashes on one `apply` line; longer batches are split.
pub const MAX_HASHES_PER_LINE: usize = 256;

/// The 32-bit FNV-1a hash of `bytes` (offset basis 0x811c9dc5, prime 0x01000193).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// A term as events print it: Raft's term, a Paxos ballot, or unknown (`-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// Raft's term, printed as a decimal integer.
    Number(u64),
    /// A Multi-Paxos ballot, printed as `ROUND.NODE`.
    Ballot {
        /// The ballot's round.
        round: u64,
        /// The ballot's proposer.
        node: NodeId,
    },
    /// Not known (printed `-`).
    Unknown,
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Number(t) => write!(f, "{t}"),
            Term::Ballot { round, node } => write!(f, "{round}.{node}"),
            Term::Unknown => f.write_str("-"),
        }
    }
}

/// A vote or nothing, printed as the node id or `none`.
struct Voted(Option<NodeId>);

impl fmt::Display for Voted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("none"),
        }
    }
}

/// Entries' payload hashes, comma-separated, printed without allocating.
struct Hashes<'a>(&'a [Entry]);

impl fmt::Display for Hashes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{:08x}", fnv1a32(&e.data))?;
        }
        Ok(())
    }
}

/// Whether protocol events are logged at all (so callers can skip work).
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, Level::INFO)
}

/// `start`: once at startup, after recovery from disk; `last` is the last index of the
/// recovered log (its snapshot's when no entries follow), where the core has a log
/// whose applied entries are all its own durable ones (Raft; Multi-Paxos learns chosen
/// values it may not have accepted, so it says none and `last=` is left out).
pub fn start(node: NodeId, term: Term, voted_for: Option<NodeId>, commit: u64, last: Option<u64>) {
    match last {
        Some(last) => tracing::info!(
            target: TARGET,
            node = %node,
            term = %term,
            "voted-for" = %Voted(voted_for),
            commit = %commit,
            last = %last,
            "start"
        ),
        None => tracing::info!(
            target: TARGET,
            node = %node,
            term = %term,
            "voted-for" = %Voted(voted_for),
            commit = %commit,
            "start"
        ),
    }
}

/// `role`: the node's role or term changed.
pub fn role(node: NodeId, term: Term, role: Role) {
    tracing::info!(target: TARGET, node = %node, term = %term, role = %role, "role");
}

/// `vote`: the node granted its vote in `term` to `candidate` (Paxos: promised the
/// ballot `term` to its proposer). Logged once the ready that cast it is persisted
/// (even when the planted `forget-vote` bug left the vote out of what was persisted:
/// the grant is sent all the same).
pub fn vote(node: NodeId, term: Term, candidate: NodeId) {
    tracing::info!(target: TARGET, node = %node, term = %term, "for" = %candidate, "vote");
}

/// `commit`: the commit index advanced to `index`, whose entry has term `term`.
pub fn commit(node: NodeId, index: u64, term: Term) {
    tracing::info!(target: TARGET, node = %node, index = %index, term = %term, "commit");
}

/// `apply`: `entries` (consecutive, in order) were applied to the state machine; one
/// line per [`MAX_HASHES_PER_LINE`] entries.
pub fn apply(node: NodeId, entries: &[Entry]) {
    if entries.is_empty() || !enabled() {
        return;
    }
    for chunk in entries.chunks(MAX_HASHES_PER_LINE) {
        let from = chunk.first().map_or(0, |e| e.index);
        tracing::info!(
            target: TARGET,
            node = %node,
            from = %from,
            hashes = %Hashes(chunk),
            "apply"
        );
    }
}

/// `snapshot`: a snapshot up to `index` was installed (the entries it covers are not
/// applied one by one).
pub fn snapshot(node: NodeId, index: u64) {
    tracing::info!(target: TARGET, node = %node, index = %index, "snapshot");
}

/// `truncate`: the node deleted its log entries from `from` on (a conflict with the
/// leader); `commit` is its commit index at that moment.
pub fn truncate(node: NodeId, from: u64, commit: u64) {
    tracing::info!(target: TARGET, node = %node, from = %from, commit = %commit, "truncate");
}

#[cfg(test)]
pub(crate) mod tests;
