//! The values the Multi-Paxos core consumes and emits: ballots, accepted values,
//! messages, configuration and the [`Ready`] batch.

use std::fmt;

use crate::consensus::{Entry, NodeId, ReadState, Snapshot};
use crate::events::Term;

/// Node ids must stay below this so a ballot packs into one `u64`.
pub const MAX_NODE_ID: NodeId = 1 << 16;

/// A proposal number: a round, made unique per proposer by its node id. Ordered by
/// round, then node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ballot {
    /// The round; a proposer picks one above every round it has seen.
    pub round: u64,
    /// The proposer.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot below every real one (nothing promised).
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// The ballot as one number (`round << 16 | node`), ordered like the ballot. Used
    /// as the "term" of values and in status reports.
    pub fn packed(self) -> u64 {
        (self.round << 16) | (self.node & (MAX_NODE_ID - 1))
    }
}

impl Ballot {
    /// The ballot as protocol events print it (`ROUND.NODE`).
    pub fn event_term(self) -> Term {
        Term::Ballot {
            round: self.round,
            node: self.node,
        }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// One acceptor's accepted value for a slot. `entry.index` is the slot; `entry.term`
/// is the packed ballot under which the value was first proposed (its origin, kept
/// when a later leader adopts it), so a proposer can tell its own value from another;
/// empty `entry.data` is a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The ballot in which the acceptor accepted the value.
    pub ballot: Ballot,
    /// The value.
    pub entry: Entry,
}

/// The body of a message between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// Phase 1a: promise `Message::ballot` and report what you accepted from `from_slot` on.
    Prepare {
        /// The first slot the proposer does not know to be chosen.
        from_slot: u64,
    },
    /// Phase 1b: a promise for `Message::ballot`.
    Promise {
        /// Every value accepted in a slot at or after the prepare's `from_slot`.
        accepted: Vec<Accepted>,
        /// The acceptor's snapshot, when it covers `from_slot` (those slots' values
        /// were compacted away; they are chosen and in the snapshot).
        snapshot: Option<Snapshot>,
    },
    /// The ballot was refused: the acceptor promised `promised`, which is higher.
    Nack {
        /// The acceptor's promised ballot.
        promised: Ballot,
    },
    /// Phase 2a for consecutive slots from `first` (empty: a heartbeat), plus what the
    /// leader knows to be chosen.
    Accept {
        /// The slot of `values[0]` (the leader's next slot for this peer if empty).
        first: u64,
        /// The values, one per slot from `first`.
        values: Vec<Entry>,
        /// Every slot up to here is chosen.
        commit: u64,
        /// The leader's read confirmation round, echoed in the answer.
        read_seq: u64,
    },
    /// Phase 2b: the acceptor accepted `Message::ballot`'s values.
    Accepted {
        /// The `first` of the request (for gap detection).
        first: u64,
        /// Every slot up to here is chosen at this acceptor or accepted in the ballot.
        upto: u64,
        /// The read round echoed from the request.
        read_seq: u64,
    },
    /// Catch-up for a replica behind the leader's snapshot: install it.
    InstallSnapshot {
        /// The snapshot (all slots up to its index are chosen).
        snapshot: Snapshot,
        /// The leader's read round.
        read_seq: u64,
    },
}

/// A message between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The ballot the message is about.
    pub ballot: Ballot,
    /// What it says.
    pub body: MessageBody,
}

impl Message {
    /// A short name for the message's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self.body {
            MessageBody::Prepare { .. } => "prepare",
            MessageBody::Promise { .. } => "promise",
            MessageBody::Nack { .. } => "nack",
            MessageBody::Accept { .. } => "accept",
            MessageBody::Accepted { .. } => "accepted",
            MessageBody::InstallSnapshot { .. } => "install-snapshot",
        }
    }
}

/// Planted Multi-Paxos bugs. All off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PaxosBugs {
    /// A new leader ignores the values reported in the promises and proposes its own
    /// values (and client commands) in those slots.
    pub ignore_promise: bool,
    /// An acceptor checks its promise only on prepare: it accepts an accept request
    /// whose ballot is below the ballot it promised, so a deposed leader can still get
    /// values chosen over the new leader's.
    pub accept_stale_ballot: bool,
}

/// How a node behaves. Times are in ticks.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node (1 to 65535).
    pub id: NodeId,
    /// Every acceptor, including this node.
    pub voters: Vec<NodeId>,
    /// Minimum failure-detection timeout; the actual one is drawn from
    /// `[election_tick, 2 * election_tick)` after every attempt (randomized back-off).
    pub election_tick: u32,
    /// A leader sends heartbeats (empty accepts) every `heartbeat_tick` ticks.
    pub heartbeat_tick: u32,
    /// Most values in one `Accept` message.
    pub max_accept_values: usize,
    /// Most slots sent but not yet acknowledged to one acceptor.
    pub max_inflight: u64,
    /// Seed for the randomized timeouts.
    pub seed: u64,
    /// Planted bugs.
    pub bugs: PaxosBugs,
}

impl Config {
    /// A configuration with the usual values: failure detection 10 ticks, heartbeat 2.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_tick: 10,
            heartbeat_tick: 2,
            max_accept_values: 256,
            max_inflight: 8192,
            seed: id,
            bugs: PaxosBugs::default(),
        }
    }
}

/// The durable state a node restarts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    /// The highest ballot promised.
    pub promised: Ballot,
    /// Accepted values in slots after the snapshot, in slot order.
    pub accepted: Vec<Accepted>,
    /// Every slot up to here is known chosen (a hint; may lag).
    pub commit: u64,
}

/// What the application must do, in this order: persist `snapshot`, `accepted`,
/// `promised` and `commit` durably (fsync) before sending anything; then log `votes`
/// and send `messages`; then install `snapshot` and apply `chosen` to the state machine in
/// order; serve `read_states` once applied far enough; fail `failed_reads`; then call
/// [`Core::advance`](crate::consensus::Core::advance).
#[derive(Debug, Clone, Default)]
pub struct Ready {
    /// A snapshot received from another node, to persist and install.
    pub snapshot: Option<Snapshot>,
    /// A new promised ballot, to persist.
    pub promised: Option<Ballot>,
    /// Newly accepted values, to persist (each replaces the slot's earlier one).
    pub accepted: Vec<Accepted>,
    /// A new chosen-prefix hint, to persist (need not be fsynced on its own).
    pub commit: Option<u64>,
    /// Messages to send after persisting.
    pub messages: Vec<Message>,
    /// Chosen values to apply, in slot order (`term` is the value's origin ballot).
    pub chosen: Vec<Entry>,
    /// Reads that may now be served.
    pub read_states: Vec<ReadState>,
    /// Contexts of reads that will never be confirmed: definitely not served.
    pub failed_reads: Vec<u64>,
    /// Promises made by this ready (ballot, its proposer), its own included: log them
    /// once it is persisted (see [`CoreReady::votes`](crate::consensus::CoreReady::votes)).
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
        &self.chosen
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
