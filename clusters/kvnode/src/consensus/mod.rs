//! What every consensus core shares: the vocabulary ([`types`]: entries, snapshots,
//! roles, status, reads), logical time (`timer`), the leader's read queue
//! (`read_queue`), and one interface, so the server drives Raft or Multi-Paxos the
//! same way: a [`Core`] takes events (tick, step, propose, read) and hands out its
//! work as a [`CoreReady`] (persist, send, apply, serve reads), then is told to
//! advance, as raft-rs keeps its messages apart from `RawNode` (what travels between
//! nodes is `crate::peer::PeerMessage`, above both protocols).
//!
//! A core does no I/O: the application owns time, the network and the disk, and
//! drives it like this:
//!
//! 1. feed it events: [`Core::tick`] at a fixed interval, [`Core::step`] for each
//!    message from a peer, [`Core::propose`] for commands and [`Core::read_index`]
//!    for reads;
//! 2. when [`Core::has_ready`], take its ready work and handle it in order: persist
//!    what it says durably; send the messages (before persisting only when
//!    [`Core::sends_before_persisting`]); once it is persisted, log the votes it cast
//!    ([`CoreReady::votes`]: a core never logs a vote itself, since a vote counts only
//!    once durable); apply the snapshot and the committed entries to the state
//!    machine; serve the confirmed reads;
//! 3. call [`Core::advance`] with the same ready work.

pub(crate) mod read_queue;
pub(crate) mod timer;
pub mod types;

pub use timer::{quorum, quorum_value};
pub use types::{
    ConfigError, Entry, NodeId, NotLeader, ReadState, Role, Snapshot, SnapshotMeta, Status,
};

pub use faultline_kv_proto::Protocol;

use crate::events::Term;

/// A consensus core: a deterministic state machine without I/O (see the module docs
/// for the driving loop). Implemented by [`crate::raft::Raft`] and [`crate::paxos::Paxos`].
pub trait Core {
    /// What travels between nodes of this protocol (on the wire inside a
    /// `crate::peer::PeerMessage`: see `crate::peer::PeerCore`).
    type Message;
    /// The work the core hands to the application.
    type Ready: CoreReady<Message = Self::Message>;

    /// Which protocol this core runs.
    const PROTOCOL: Protocol;

    /// This node's id.
    fn id(&self) -> NodeId;

    /// A summary of the node's state.
    fn status(&self) -> Status;

    /// Advances time by one tick. Must be called at a fixed interval, never while a
    /// ready is being handled.
    fn tick(&mut self);

    /// Handles a message from a peer (messages for another node or from a stranger
    /// are ignored).
    fn step(&mut self, m: Self::Message);

    /// Proposes a command; `(index, term)` identify its outcome: it took effect iff
    /// the entry applied at `index` has term `term`. Fails on a node that does not lead.
    fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader>;

    /// Asks for a linearizable read identified by `ctx`; it comes back in a later
    /// ready's [`CoreReady::read_states`] (serve it once applied that far) or
    /// [`CoreReady::failed_reads`].
    fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader>;

    /// Whether [`Core::ready`] has anything to do.
    fn has_ready(&self) -> bool;

    /// The work for the application. Handle it fully, then call [`Core::advance`]
    /// with it before stepping or ticking again.
    fn ready(&mut self) -> Self::Ready;

    /// Records that a ready was handled: its state is durable and its committed
    /// entries applied.
    fn advance(&mut self, ready: &Self::Ready);

    /// Takes a local snapshot at `index` (applied) and forgets the log up to it.
    fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ConfigError>;

    /// The latest snapshot.
    fn snapshot(&self) -> Option<&Snapshot>;

    /// The term of the entry at `index` as protocol events print it (Raft: its term;
    /// Paxos: the ballot in which this node holds the chosen value), if known.
    fn event_term_at(&self, index: u64) -> Term;

    /// Logs the `start` protocol event (once, after recovery from disk).
    fn log_start(&self);

    /// Whether the current ready's messages may go out before its state is persisted
    /// (a Raft leader counts itself only after persisting, Raft thesis §10.2.1;
    /// everyone else, and every Paxos node, persists first).
    fn sends_before_persisting(&self) -> bool;
}

/// The protocol-independent view of a core's ready work.
pub trait CoreReady {
    /// What travels between nodes.
    type Message;

    /// Takes the messages to send.
    fn take_messages(&mut self) -> Vec<Self::Message>;

    /// A snapshot to persist and install.
    fn snapshot(&self) -> Option<&Snapshot>;

    /// Committed (chosen) entries to apply, in order.
    fn committed(&self) -> &[Entry];

    /// Reads that may now be served.
    fn read_states(&self) -> &[ReadState];

    /// Reads that will never be served.
    fn failed_reads(&self) -> &[u64];

    /// Votes cast by this ready: log them once it is persisted. Each is the term (Raft's
    /// term; Paxos: the promised ballot) and the candidate (Paxos: the ballot's
    /// proposer), in the order decided. A vote is durable, and its grant may go out,
    /// only once the ready's state is persisted, so logging it earlier could record a
    /// vote a crashed node never cast. Listed even when the state persisted does not
    /// hold it (the `forget-vote` bug), since the grant is still sent.
    fn votes(&self) -> &[(Term, NodeId)];
}
