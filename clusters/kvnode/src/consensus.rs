//! One interface over the two consensus cores, so the server (and the simulation)
//! drive Raft or Multi-Paxos the same way: [`Core`] takes the events, [`CoreReady`]
//! carries the work, [`PeerMessage`] travels between nodes.

use crate::codec::{DecodeError, decode_message, encode_message};
use crate::paxos::{self, Paxos};
use crate::raft::{self, ConfigError, Entry, NodeId, NotLeader, Raft, ReadState, Snapshot, Status};

/// Which consensus protocol a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// Raft (the default).
    #[default]
    Raft,
    /// Multi-Paxos.
    Paxos,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Raft => "raft",
            Protocol::Paxos => "paxos",
        })
    }
}

/// A message between nodes of either protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage {
    /// A Raft message.
    Raft(raft::Message),
    /// A Multi-Paxos message.
    Paxos(paxos::Message),
}

impl PeerMessage {
    /// The sender.
    pub fn from(&self) -> NodeId {
        match self {
            PeerMessage::Raft(m) => m.from,
            PeerMessage::Paxos(m) => m.from,
        }
    }

    /// The recipient.
    pub fn to(&self) -> NodeId {
        match self {
            PeerMessage::Raft(m) => m.to,
            PeerMessage::Paxos(m) => m.to,
        }
    }

    /// Encodes the message for the wire: a protocol byte, then the message.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            PeerMessage::Raft(m) => (0, encode_message(m)),
            PeerMessage::Paxos(m) => (1, paxos::wire::encode(m)),
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    /// Decodes what [`PeerMessage::encode`] wrote.
    pub fn decode(buf: &[u8]) -> Result<PeerMessage, DecodeError> {
        match buf.split_first() {
            Some((0, rest)) => decode_message(rest).map(PeerMessage::Raft),
            Some((1, rest)) => paxos::wire::decode(rest).map(PeerMessage::Paxos),
            _ => Err(DecodeError {
                what: "peer message",
                reason: "empty, or unknown protocol byte".into(),
            }),
        }
    }
}

/// A consensus core of either protocol.
#[derive(Debug)]
pub enum Core {
    /// A Raft node.
    Raft(Raft),
    /// A Multi-Paxos node.
    Paxos(Paxos),
}

/// The work a [`Core`] hands to the application (see [`raft::Ready`] and
/// [`paxos::Ready`] for the order in which to do it).
#[derive(Debug)]
pub enum CoreReady {
    /// From a Raft node.
    Raft(raft::Ready),
    /// From a Multi-Paxos node.
    Paxos(paxos::Ready),
}

impl Core {
    /// Which protocol this core runs.
    pub fn protocol(&self) -> Protocol {
        match self {
            Core::Raft(_) => Protocol::Raft,
            Core::Paxos(_) => Protocol::Paxos,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        match self {
            Core::Raft(r) => r.id(),
            Core::Paxos(p) => p.id(),
        }
    }

    /// A summary of the node's state.
    pub fn status(&self) -> Status {
        match self {
            Core::Raft(r) => r.status(),
            Core::Paxos(p) => p.status(),
        }
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        match self {
            Core::Raft(r) => r.tick(),
            Core::Paxos(p) => p.tick(),
        }
    }

    /// Handles a message from a peer (messages of the other protocol are dropped).
    pub fn step(&mut self, m: PeerMessage) {
        match (self, m) {
            (Core::Raft(r), PeerMessage::Raft(m)) => r.step(m),
            (Core::Paxos(p), PeerMessage::Paxos(m)) => p.step(m),
            (core, m) => tracing::warn!(
                protocol = %core.protocol(),
                from = m.from(),
                "dropping a message of the other consensus protocol"
            ),
        }
    }

    /// Proposes a command; `(index, term)` identify its outcome: it took effect iff
    /// the entry applied at `index` has term `term`.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), NotLeader> {
        match self {
            Core::Raft(r) => r.propose(data),
            Core::Paxos(p) => p.propose(data),
        }
    }

    /// Asks for a linearizable read identified by `ctx`.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        match self {
            Core::Raft(r) => r.read_index(ctx),
            Core::Paxos(p) => p.read_index(ctx),
        }
    }

    /// Whether [`Core::ready`] has anything to do.
    pub fn has_ready(&self) -> bool {
        match self {
            Core::Raft(r) => r.has_ready(),
            Core::Paxos(p) => p.has_ready(),
        }
    }

    /// The work for the application.
    pub fn ready(&mut self) -> CoreReady {
        match self {
            Core::Raft(r) => CoreReady::Raft(r.ready()),
            Core::Paxos(p) => CoreReady::Paxos(p.ready()),
        }
    }

    /// Records that a `CoreReady` was handled.
    pub fn advance(&mut self, ready: &CoreReady) {
        match (self, ready) {
            (Core::Raft(r), CoreReady::Raft(rd)) => r.advance(rd),
            (Core::Paxos(p), CoreReady::Paxos(rd)) => p.advance(rd),
            _ => tracing::error!("a ready of the other consensus protocol was ignored"),
        }
    }

    /// Takes a local snapshot at `index` (applied) and forgets the log up to it.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ConfigError> {
        match self {
            Core::Raft(r) => r.compact(index, data),
            Core::Paxos(p) => p.compact(index, data),
        }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        match self {
            Core::Raft(r) => r.snapshot(),
            Core::Paxos(p) => p.snapshot(),
        }
    }
}

impl CoreReady {
    /// Whether the messages may go out before the state is persisted (a Raft leader
    /// counts itself only after persisting; Paxos always persists first).
    pub fn send_before_persist(&self, core: &Core) -> bool {
        matches!(self, CoreReady::Raft(_)) && core.status().role == crate::raft::Role::Leader
    }

    /// Takes the messages to send.
    pub fn take_messages(&mut self) -> Vec<PeerMessage> {
        match self {
            CoreReady::Raft(r) => std::mem::take(&mut r.messages)
                .into_iter()
                .map(PeerMessage::Raft)
                .collect(),
            CoreReady::Paxos(p) => std::mem::take(&mut p.messages)
                .into_iter()
                .map(PeerMessage::Paxos)
                .collect(),
        }
    }

    /// A snapshot to install.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        match self {
            CoreReady::Raft(r) => r.snapshot.as_ref(),
            CoreReady::Paxos(p) => p.snapshot.as_ref(),
        }
    }

    /// Committed (chosen) entries to apply, in order.
    pub fn committed(&self) -> &[Entry] {
        match self {
            CoreReady::Raft(r) => &r.committed_entries,
            CoreReady::Paxos(p) => &p.chosen,
        }
    }

    /// Reads that may now be served.
    pub fn read_states(&self) -> &[ReadState] {
        match self {
            CoreReady::Raft(r) => &r.read_states,
            CoreReady::Paxos(p) => &p.read_states,
        }
    }

    /// Reads that will never be served.
    pub fn failed_reads(&self) -> &[u64] {
        match self {
            CoreReady::Raft(r) => &r.failed_reads,
            CoreReady::Paxos(p) => &p.failed_reads,
        }
    }
}
