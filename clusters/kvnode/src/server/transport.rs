//! Peer networking: one outgoing TCP connection per peer, frames of
//! `[length: u32 LE][message]`. Both consensus cores tolerate loss, so while a peer is unreachable
//! its messages are dropped rather than queued.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::consensus::NodeId;
use crate::peer::PeerMessage;

use super::event::Event;

/// Largest frame accepted (snapshots travel in one frame).
const MAX_FRAME: usize = 512 << 20;

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

    /// Queues a message for its peer (dropped if the peer is unknown or unreachable).
    pub fn send(&self, m: &PeerMessage) {
        if let Some(tx) = self.senders.get(&m.to()) {
            let body = m.encode();
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
        let stream = match TcpStream::connect(&addr).await {
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

/// Accepts peer connections and feeds their messages to the node loop.
pub async fn serve_peers(listener: TcpListener, events: Sender<Event>) {
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

async fn read_frames(stream: TcpStream, events: Sender<Event>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
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
        let message = PeerMessage::decode(&buf).map_err(std::io::Error::other)?;
        if events.send(Event::Peer(message)).is_err() {
            return Ok(());
        }
    }
}
