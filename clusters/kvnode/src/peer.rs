//! What travels between nodes, whichever protocol they run: a protocol byte, then
//! that protocol's message. It sits above the consensus vocabulary and both cores, so
//! the vocabulary imports neither.

use crate::codec::{DecodeError, decode_message, encode_message};
use crate::consensus::{Core, NodeId};
use crate::paxos;
use crate::raft;

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

impl From<raft::Message> for PeerMessage {
    fn from(m: raft::Message) -> PeerMessage {
        PeerMessage::Raft(m)
    }
}

impl From<paxos::Message> for PeerMessage {
    fn from(m: paxos::Message) -> PeerMessage {
        PeerMessage::Paxos(m)
    }
}

impl TryFrom<PeerMessage> for raft::Message {
    type Error = PeerMessage;

    fn try_from(m: PeerMessage) -> Result<raft::Message, PeerMessage> {
        match m {
            PeerMessage::Raft(m) => Ok(m),
            other => Err(other),
        }
    }
}

impl TryFrom<PeerMessage> for paxos::Message {
    type Error = PeerMessage;

    fn try_from(m: PeerMessage) -> Result<paxos::Message, PeerMessage> {
        match m {
            PeerMessage::Paxos(m) => Ok(m),
            other => Err(other),
        }
    }
}

/// A core whose messages travel between nodes as [`PeerMessage`]s: every core the
/// server drives.
pub trait PeerCore:
    Core<Message: Into<PeerMessage> + TryFrom<PeerMessage, Error = PeerMessage>>
{
}

impl<C> PeerCore for C
where
    C: Core,
    C::Message: Into<PeerMessage> + TryFrom<PeerMessage, Error = PeerMessage>,
{
}
