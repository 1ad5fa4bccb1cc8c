//! Client connections: newline-delimited JSON requests in, responses out (possibly
//! out of order when a client pipelines; match them by `id`). A transaction asking to
//! be forwarded (`"forward": true`) gets its answer through [`super::forward`], which
//! relays it to the leader when the node loop answers `not-leader`.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::unbounded_channel;
use tokio::time::Instant;

use crate::protocol::{Response, parse_request};

use super::event::Event;
use super::forward;
use super::router::Router;

/// Accepts client connections for node `node`; forwarded requests are bounded by
/// `request_timeout` from their arrival.
pub async fn serve_clients(
    listener: TcpListener,
    events: Router,
    node: u64,
    request_timeout: Duration,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "client accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let events = events.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream, events, node, request_timeout).await {
                tracing::debug!(%from, error = %e, "client connection closed");
            }
        });
    }
}

async fn serve_one(
    stream: TcpStream,
    events: Router,
    node: u64,
    request_timeout: Duration,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (tx, mut rx) = unbounded_channel::<Response>();
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::new(write);
        while let Some(response) = rx.recv().await {
            let mut line = response.to_line();
            line.push('\n');
            out.write_all(line.as_bytes()).await?;
            if rx.is_empty() {
                out.flush().await?;
            }
        }
        out.flush().await
    });
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        match parse_request(&line, node) {
            Ok(request) if forward::wanted(&request) => {
                let deadline = Instant::now() + request_timeout;
                let (local_tx, local_rx) = unbounded_channel::<Response>();
                let relayed = request.clone();
                if events.send(Event::Client(request, local_tx)).is_err() {
                    break;
                }
                tokio::spawn(forward::answer(
                    local_rx,
                    relayed,
                    tx.clone(),
                    node,
                    deadline,
                ));
            }
            Ok(request) => {
                if events.send(Event::Client(request, tx.clone())).is_err() {
                    break;
                }
            }
            Err(response) => {
                let _ = tx.send(*response);
            }
        }
    }
    drop(tx);
    writer.await.map_err(std::io::Error::other)?
}
