//! What travels between nodes, whichever protocol they run: a protocol byte, then
//! that protocol's message (a consensus message, or a cross-shard commit message
//! between shards' leaders). It sits above the consensus vocabulary and both cores, so
//! the vocabulary imports neither. On the wire every message is preceded by its shard
//! ([`encode_frame`]).

use crate::codec::{DecodeError, decode_message, encode_message};
use crate::commit::{self, ShardId};
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
    /// A commit protocol's message for the shard's leader (2PC) or home (3PC) on
    /// node `to`.
    Commit {
        /// The sender.
        from: NodeId,
        /// The recipient (the shard's leader as the sender knows it, or its home).
        to: NodeId,
        /// The message.
        message: commit::Message,
    },
}

impl PeerMessage {
    /// The sender.
    pub fn from(&self) -> NodeId {
        match self {
            PeerMessage::Raft(m) => m.from,
            PeerMessage::Paxos(m) => m.from,
            PeerMessage::Commit { from, .. } => *from,
        }
    }

    /// The recipient.
    pub fn to(&self) -> NodeId {
        match self {
            PeerMessage::Raft(m) => m.to,
            PeerMessage::Paxos(m) => m.to,
            PeerMessage::Commit { to, .. } => *to,
        }
    }

    /// Encodes the message for the wire: a protocol byte, then the message.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            PeerMessage::Raft(m) => (0, encode_message(m)),
            PeerMessage::Paxos(m) => (1, paxos::wire::encode(m)),
            PeerMessage::Commit { from, to, message } => {
                let mut body = Vec::with_capacity(64);
                body.extend_from_slice(&from.to_le_bytes());
                body.extend_from_slice(&to.to_le_bytes());
                // Cross-shard messages are few and small: JSON is enough.
                body.extend_from_slice(&serde_json::to_vec(message).unwrap_or_default());
                (2, body)
            }
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
            Some((2, rest)) => decode_commit(rest),
            _ => Err(DecodeError {
                what: "peer message",
                reason: "empty, or unknown protocol byte".into(),
            }),
        }
    }
}

fn decode_commit(buf: &[u8]) -> Result<PeerMessage, DecodeError> {
    let bad = |reason: String| DecodeError {
        what: "commit message",
        reason,
    };
    let id = |at: usize| -> Result<NodeId, DecodeError> {
        buf.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(NodeId::from_le_bytes)
            .ok_or_else(|| bad("too short".into()))
    };
    let (from, to) = (id(0)?, id(8)?);
    let message = serde_json::from_slice(&buf[16..]).map_err(|e| bad(e.to_string()))?;
    Ok(PeerMessage::Commit { from, to, message })
}

/// A frame's body as the transport sends it: the shard (`u32`, little-endian), then
/// the message ([`PeerMessage::encode`]). An unsharded node's messages are shard 0's.
pub fn encode_frame(shard: ShardId, message: &PeerMessage) -> Vec<u8> {
    let body = message.encode();
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&shard.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads what [`encode_frame`] wrote.
pub fn decode_frame(buf: &[u8]) -> Result<(ShardId, PeerMessage), DecodeError> {
    let (shard, rest) = buf.split_at_checked(4).ok_or_else(|| DecodeError {
        what: "peer frame",
        reason: "shorter than its shard number".into(),
    })?;
    let shard = ShardId::from_le_bytes([shard[0], shard[1], shard[2], shard[3]]);
    Ok((shard, PeerMessage::decode(rest)?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::{Decision, three_phase, two_phase};

    #[test]
    fn frames_carry_their_shard_and_commit_messages_round_trip() {
        let message = PeerMessage::Commit {
            from: 1,
            to: 3,
            message: commit::Message::TwoPhase(two_phase::Message::Vote {
                txn: u64::MAX - 7,
                from: 2,
                yes: true,
                reads: b"[[\"r\",\"x\",[1,2]]]".to_vec(),
            }),
        };
        let frame = encode_frame(5, &message);
        assert_eq!(decode_frame(&frame).unwrap(), (5, message.clone()));
        assert_eq!((message.from(), message.to()), (1, 3));
        let outcome = PeerMessage::Commit {
            from: 2,
            to: 1,
            message: commit::Message::TwoPhase(two_phase::Message::Outcome {
                txn: 9,
                decision: Decision::Abort,
            }),
        };
        assert_eq!(PeerMessage::decode(&outcome.encode()).unwrap(), outcome);
        let state = PeerMessage::Commit {
            from: 2,
            to: 1,
            message: commit::Message::ThreePhase(three_phase::Message::State {
                txn: 9,
                from: 0,
                phase: Some(three_phase::Phase::PreCommitted),
            }),
        };
        assert_eq!(PeerMessage::decode(&state.encode()).unwrap(), state);
        assert!(decode_frame(&[1, 0]).is_err());
        assert!(PeerMessage::decode(&[2, 1, 2, 3]).is_err());
        let mut garbage = outcome.encode();
        garbage.truncate(20);
        assert!(PeerMessage::decode(&garbage).is_err());
    }
}
