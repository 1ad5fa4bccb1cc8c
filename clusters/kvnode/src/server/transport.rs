//! Peer networking: one outgoing TCP connection per peer, frames of
//! `[length: u32 LE][message]`. Both consensus cores tolerate loss, so while a peer is unreachable
//! its messages are dropped rather than queued.
//!
//! A partition that drops packets leaves TCP connections open, retransmitting with an
//! exponential back-off: after a 10 s partition the next retransmission may be 10 s
//! away, and the healed peer hears nothing meanwhile. So connects time out
//! ([`CONNECT_TIMEOUT`]), a connection whose data goes unacknowledged for
//! [`UNACKED_TIMEOUT`] is dropped (`TCP_USER_TIMEOUT`) and reopened, and keepalives end
//! the reading side of a connection whose peer went away.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::commit::ShardId;
use crate::consensus::NodeId;
use crate::peer::{PeerMessage, decode_frame, encode_frame};

use super::event::Event;
use super::router::Router;

/// Largest frame accepted (snapshots travel in one frame).
const MAX_FRAME: usize = 512 << 20;

/// How long a connect may take before it is retried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long sent data may stay unacknowledged before the connection is dropped and
/// reopened (also the keepalive's limit).
pub const UNACKED_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets the options that end a connection to a peer that stopped answering:
/// `TCP_USER_TIMEOUT` of [`UNACKED_TIMEOUT`], and keepalive probes every second after one
/// idle second.
fn bound_dead_peers(stream: &TcpStream) -> nix::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    let ms = u32::try_from(UNACKED_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
    setsockopt(stream, sockopt::TcpUserTimeout, &ms)?;
    setsockopt(stream, sockopt::KeepAlive, &true)?;
    setsockopt(stream, sockopt::TcpKeepIdle, &1)?;
    setsockopt(stream, sockopt::TcpKeepInterval, &1)?;
    setsockopt(stream, sockopt::TcpKeepCount, &2)
}

/// Sends messages to peers from the (synchronous) node loop.
#[derive(Debug, Clone)]
pub struct Transport {
    senders: BTreeMap<NodeId, UnboundedSender<Vec<u8>>>,
}

impl Transport {
    /// Starts one writer task per peer on the current tokio runtime.
    pub fn start(peers: &BTreeMap<NodeId, String>, runtime: &tokio::runtime::Handle) -> Transport {
        let mut senders = BTreeMap::new();
        for (id, addr) in peers {
            let (tx, rx) = unbounded_channel();
            runtime.spawn(peer_writer(*id, addr.clone(), rx));
            senders.insert(*id, tx);
        }
        Transport { senders }
    }

    /// Queues a message of shard `shard` for its peer (dropped if the peer is unknown
    /// or unreachable).
    pub fn send(&self, shard: ShardId, m: &PeerMessage) {
        if let Some(tx) = self.senders.get(&m.to()) {
            let body = encode_frame(shard, m);
            let mut frame = Vec::with_capacity(body.len() + 4);
            frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
            frame.extend_from_slice(&body);
            let _ = tx.send(frame);
        }
    }
}

async fn peer_writer(id: NodeId, addr: String, mut rx: UnboundedReceiver<Vec<u8>>) {
    let mut logged_down = false;
    loop {
        let connected = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await
        {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            )),
        };
        let stream = match connected {
            Ok(s) => s,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(peer = id, %addr, error = %e, "cannot connect to peer; retrying");
                    logged_down = true;
                }
                // Drop what queued up while the peer was unreachable.
                while let Ok(_frame) = rx.try_recv() {}
                tokio::time::sleep(Duration::from_millis(50)).await;
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        if logged_down {
            tracing::info!(peer = id, %addr, "connected to peer");
        }
        logged_down = false;
        let _ = stream.set_nodelay(true);
        if let Err(e) = bound_dead_peers(&stream) {
            tracing::warn!(peer = id, %addr, error = %e, "cannot set the peer connection's timeouts");
        }
        let mut writer = BufWriter::new(stream);
        loop {
            let Some(frame) = rx.recv().await else {
                return;
            };
            let mut result = writer.write_all(&frame).await;
            while result.is_ok()
                && let Ok(frame) = rx.try_recv()
            {
                result = writer.write_all(&frame).await;
            }
            if result.is_ok() {
                result = writer.flush().await;
            }
            if let Err(e) = result {
                tracing::warn!(peer = id, %addr, error = %e, "lost connection to peer");
                break;
            }
        }
    }
}

/// Accepts peer connections and feeds their messages to their shard's node loop.
pub async fn serve_peers(listener: TcpListener, events: Router) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let events = events.clone();
        tokio::spawn(async move {
            if let Err(e) = read_frames(stream, events).await {
                tracing::debug!(%from, error = %e, "peer connection closed");
            }
        });
    }
}

async fn read_frames(stream: TcpStream, events: Router) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    if let Err(e) = bound_dead_peers(&stream) {
        tracing::warn!(error = %e, "cannot set a peer connection's timeouts");
    }
    let mut stream = tokio::io::BufReader::new(stream);
    let mut len = [0u8; 4];
    loop {
        stream.read_exact(&mut len).await?;
        let n = u32::from_le_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(std::io::Error::other(format!(
                "frame of {n} bytes is too large"
            )));
        }
        let mut buf = vec![0u8; n];
        stream.read_exact(&mut buf).await?;
        let (shard, message) = decode_frame(&buf).map_err(std::io::Error::other)?;
        if events.send(Event::Peer(shard, message)).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt};

    #[test]
    fn peer_connections_give_up_on_a_silent_peer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
            let (client, (server, _)) = (client.unwrap(), accepted.unwrap());
            for stream in [&client, &server] {
                bound_dead_peers(stream).unwrap();
                assert_eq!(getsockopt(stream, sockopt::TcpUserTimeout).unwrap(), 2000);
                assert!(getsockopt(stream, sockopt::KeepAlive).unwrap());
                assert_eq!(getsockopt(stream, sockopt::TcpKeepIdle).unwrap(), 1);
                assert_eq!(getsockopt(stream, sockopt::TcpKeepCount).unwrap(), 2);
            }
        });
    }
}
