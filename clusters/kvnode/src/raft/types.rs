//! The values only Raft consumes and emits: hard state, messages, configuration and
//! the [`Ready`] batch (the shared vocabulary is in [`crate::consensus::types`]).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::consensus::{Entry, NodeId, ReadState, Snapshot};
use crate::events::Term;

/// What must be durable before a node answers a vote or acknowledges entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// Whom it voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
    /// The highest index known committed (may lag; it is only a hint on restart).
    pub commit: u64,
}

/// The body of a message between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// Would you vote for me in `Message::term` (which the sender has not entered)?
    PreVote {
        /// The candidate's last log index.
        last_index: u64,
        /// The candidate's last log term.
        last_term: u64,
    },
    /// Answer to a pre-vote.
    PreVoteResponse {
        /// Whether the pre-vote is granted.
        granted: bool,
    },
    /// Vote for me in `Message::term`.
    Vote {
        /// The candidate's last log index.
        last_index: u64,
        /// The candidate's last log term.
        last_term: u64,
    },
    /// Answer to a vote request.
    VoteResponse {
        /// Whether the vote is granted.
        granted: bool,
    },
    /// Append `entries` after `prev_index`, whose term must be `prev_term`.
    Append {
        /// Index of the entry before `entries`.
        prev_index: u64,
        /// Term of that entry.
        prev_term: u64,
        /// The entries, consecutive from `prev_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: u64,
        /// The leader's read round at sending time, echoed in the response.
        read_seq: u64,
    },
    /// Answer to `Append` or `InstallSnapshot`.
    AppendResponse {
        /// True when the log check failed.
        reject: bool,
        /// On success the highest index known to match; on rejection the rejected `prev_index`.
        index: u64,
        /// On rejection, where the leader should probe next (fast back-off).
        hint_index: u64,
        /// On rejection, the follower's term at `hint_index` (0 when unknown).
        hint_term: u64,
        /// The read round echoed from the request.
        read_seq: u64,
    },
    /// Leader liveness; carries a commit index safe for the follower to adopt.
    Heartbeat {
        /// `min(leader commit, follower's match index)`.
        commit: u64,
        /// The leader's read round.
        read_seq: u64,
    },
    /// Answer to a heartbeat.
    HeartbeatResponse {
        /// The read round echoed from the heartbeat.
        read_seq: u64,
    },
    /// Replace your log with this snapshot (you are too far behind).
    InstallSnapshot {
        /// The snapshot.
        snapshot: Snapshot,
        /// The leader's read round.
        read_seq: u64,
    },
}

/// A message between two nodes. The sender's `term` drives the term rules of Raft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The sender's term (for `PreVote`, the term it would campaign in).
    pub term: u64,
    /// What the message says.
    pub body: MessageBody,
}

impl Message {
    /// A short name for the message's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self.body {
            MessageBody::PreVote { .. } => "pre-vote",
            MessageBody::PreVoteResponse { .. } => "pre-vote-response",
            MessageBody::Vote { .. } => "vote",
            MessageBody::VoteResponse { .. } => "vote-response",
            MessageBody::Append { .. } => "append",
            MessageBody::AppendResponse { .. } => "append-response",
            MessageBody::Heartbeat { .. } => "heartbeat",
            MessageBody::HeartbeatResponse { .. } => "heartbeat-response",
            MessageBody::InstallSnapshot { .. } => "install-snapshot",
        }
    }
}

/// Planted consensus bugs, each a small deviation from Raft. All off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreBugs {
    /// Any node answers reads at its own commit index, without asking a quorum.
    pub stale_read: bool,
    /// A leader commits entries of earlier terms by counting replicas (Raft figure 8).
    pub old_term_commit: bool,
    /// The vote is never put in the hard state to persist.
    pub forget_vote: bool,
    /// Reads are served locally while a lease timed by [`Config::wall_clock`] from the
    /// last quorum contact lasts, even after stepping down; nothing bounds clock drift.
    pub lease_read_skew: bool,
    /// The leader commits entries once they are in its own durable log, without a quorum.
    pub ack_before_commit: bool,
}

/// A wall clock in milliseconds (the node: `SystemTime`; the simulation: its virtual
/// time plus a per-node skew). Only the `lease-read-skew` bug reads it.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl WallClock {
    /// A clock reading `now` (milliseconds).
    pub fn new(now: impl Fn() -> u64 + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(now))
    }

    /// The system's wall clock: milliseconds since the Unix epoch (0 before it).
    pub fn system() -> WallClock {
        WallClock::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        })
    }

    /// The time now, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl Default for WallClock {
    fn default() -> WallClock {
        WallClock::system()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WallClock")
    }
}

/// How a node behaves. Times are in ticks; the application decides how long a tick is.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// Every voter, including this node (used only when there is no snapshot).
    pub voters: Vec<NodeId>,
    /// Minimum election timeout; the actual one is drawn from `[election_tick, 2 * election_tick)`.
    pub election_tick: u32,
    /// A leader sends heartbeats every `heartbeat_tick` ticks.
    pub heartbeat_tick: u32,
    /// Most entries in one `Append` message.
    pub max_append_entries: usize,
    /// Most entries sent but not yet acknowledged to one follower.
    pub max_inflight_entries: u64,
    /// Serve reads from a leader lease (quorum heard from within the last election
    /// timeout) without a confirmation round. Only safe with bounded clock drift.
    pub lease_read: bool,
    /// Seed for the randomized election timeouts.
    pub seed: u64,
    /// Planted bugs.
    pub bugs: CoreBugs,
    /// The wall clock the `lease-read-skew` bug times its lease with.
    pub wall_clock: WallClock,
    /// How long that lease lasts after a quorum answered, in wall-clock milliseconds
    /// (the node: half the minimum election timeout).
    pub wall_lease_ms: u64,
}

impl Config {
    /// A configuration with the usual values: election 10 ticks, heartbeat 2 ticks.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_tick: 10,
            heartbeat_tick: 2,
            max_append_entries: 256,
            max_inflight_entries: 8192,
            lease_read: false,
            seed: id,
            bugs: CoreBugs::default(),
            wall_clock: WallClock::system(),
            wall_lease_ms: 50,
        }
    }
}

/// What the application must do, in this order: persist `snapshot`, `entries` and
/// `hard_state` (durably, before anything else), then log `votes` and send `messages`
/// (a leader may send first: [`Core::sends_before_persisting`](crate::consensus::Core::sends_before_persisting)), then apply
/// `snapshot` and `committed_entries` to the state machine, serve `read_states` once
/// applied far enough, fail `failed_reads`; then call [`Core::advance`](crate::consensus::Core::advance).
#[derive(Debug, Clone, Default)]
pub struct Ready {
    /// A snapshot received from the leader, to persist and install.
    pub snapshot: Option<Snapshot>,
    /// Entries to persist; storage drops any entries at or after the first one's index.
    pub entries: Vec<Entry>,
    /// Changed term/vote/commit, to persist.
    pub hard_state: Option<HardState>,
    /// Messages to send after persisting.
    pub messages: Vec<Message>,
    /// Entries to apply to the state machine, in order.
    pub committed_entries: Vec<Entry>,
    /// Reads that may now be served.
    pub read_states: Vec<ReadState>,
    /// Contexts of reads that will never be confirmed (leadership lost): definitely not served.
    pub failed_reads: Vec<u64>,
    /// Votes cast by this ready (term, candidate), its own included: log them once it
    /// is persisted (see [`CoreReady::votes`](crate::consensus::CoreReady::votes)).
    pub votes: Vec<(Term, NodeId)>,
}

impl crate::consensus::CoreReady for Ready {
    type Message = Message;

    fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    fn committed(&self) -> &[Entry] {
        &self.committed_entries
    }

    fn read_states(&self) -> &[ReadState] {
        &self.read_states
    }

    fn failed_reads(&self) -> &[u64] {
        &self.failed_reads
    }

    fn votes(&self) -> &[(Term, NodeId)] {
        &self.votes
    }
}
