//! What the node loop of a shard reacts to: messages from peers (`transport`), client
//! requests (`clients`), cross-shard commit messages from the node's other shards,
//! and the stop signal; the loop itself is `driver`, and `router` hands each event to
//! its shard's loop.

use tokio::sync::mpsc::UnboundedSender;

use crate::commit::{self, ShardId};
use crate::peer::PeerMessage;
use crate::protocol::{Request, Response};

/// What the node loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A message from a peer, for a shard.
    Peer(ShardId, PeerMessage),
    /// A commit protocol's message for this shard: from another shard on this node
    /// (`relayed` false: a 2PC replica that does not lead relays it to the leader), or
    /// from a peer (`relayed` true: never relayed again).
    Commit {
        /// The message.
        message: commit::Message,
        /// Whether it already crossed the network once.
        relayed: bool,
    },
    /// A client request and where to send its response.
    Client(Request, UnboundedSender<Response>),
    /// Stop (SIGTERM).
    Shutdown,
}
