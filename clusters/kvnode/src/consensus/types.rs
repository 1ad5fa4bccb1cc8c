//! The vocabulary every consensus core speaks: node ids, log entries (Raft's entries,
//! Paxos' chosen values), snapshots, roles, the status summary, reads and the errors a
//! core returns. Protocol-specific values (Raft's hard state and messages, Paxos'
//! ballots and accepted values) stay with their protocol.

use std::fmt;

/// A node's identity in the cluster. `0` is reserved for "nobody".
pub type NodeId = u64;

/// One log entry. An entry with empty `data` is a no-op (a new leader appends one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, from 1.
    pub index: u64,
    /// The leader's term when the entry was created.
    pub term: u64,
    /// The application's command; empty for a no-op.
    pub data: Vec<u8>,
}

/// A snapshot's position and the cluster it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The voters at that point.
    pub voters: Vec<NodeId>,
}

/// A state-machine snapshot: the application's bytes and where in the log they stand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Position of the snapshot.
    pub meta: SnapshotMeta,
    /// The application's serialized state.
    pub data: Vec<u8>,
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes before starting an election.
    PreCandidate,
    /// Asking for votes in its own term.
    Candidate,
    /// Leads the current term.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// Why a configuration or restored state cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration is inconsistent.
    #[error("invalid raft configuration: {0}")]
    Invalid(String),
    /// The durable state does not form a valid log.
    #[error("invalid restored raft state: {0}")]
    BadState(String),
}

/// This node cannot serve the request because it is not the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not the leader (leader hint: {leader:?})")]
pub struct NotLeader {
    /// The leader this node believes in, if any.
    pub leader: Option<NodeId>,
}

/// A read that may be served once the state machine has applied `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The application's context given to [`crate::consensus::Core::read_index`].
    pub ctx: u64,
    /// Serve the read once applied up to here.
    pub index: u64,
}

/// A summary of a node's state, for clients, logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: u64,
    /// The leader it believes in.
    pub leader: Option<NodeId>,
    /// Its vote in `term`.
    pub vote: Option<NodeId>,
    /// Its commit index.
    pub commit: u64,
    /// The highest index handed out for applying.
    pub applied: u64,
    /// Its last log index.
    pub last_index: u64,
    /// The index its latest snapshot covers.
    pub snapshot_index: u64,
}
