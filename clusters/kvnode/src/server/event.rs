//! What the node loop reacts to: messages from peers (`transport`), client requests
//! (`clients`), and the stop signal; the loop itself is `driver`.

use tokio::sync::mpsc::UnboundedSender;

use crate::peer::PeerMessage;
use crate::protocol::{Request, Response};

/// What the node loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// A message from a peer.
    Peer(PeerMessage),
    /// A client request and where to send its response.
    Client(Request, UnboundedSender<Response>),
    /// Stop (SIGTERM).
    Shutdown,
}
