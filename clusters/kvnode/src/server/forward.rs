//! Forwarding: a transaction sent with `"forward": true` to a node that is not the
//! leader is relayed to the leader's client address and the leader's answer is relayed
//! back, as Jepsen's clients bound to one node expect of the database. The node loop
//! never sees the relay: it answers `not-leader` as usual, and this module turns that
//! answer into a relay.
//!
//! | what happened | answer |
//! |---|---|
//! | this node is the leader, or any answer but `not-leader` | the node's own answer |
//! | `not-leader` and no leader (or its address) known | `fail` `no-leader` (nothing sent) |
//! | the leader's address could not be connected to in time | `fail` `forward-unavailable` (nothing sent) |
//! | the leader answered | its answer, unchanged (its `node`; a `not-leader` stays one) |
//! | no answer before the request time-out, the connection broke, or garbage | `info` `forward-timeout` / `forward-lost` / `forward-bad-response` (`fail` for a transaction of reads only: reads have no effect) |
//!
//! The whole relay is bounded by the node's request time-out, counted from the
//! request's arrival; connecting to the leader by at most half a second. Each relayed
//! request opens its own connection to the leader (the request is sent with `forward`
//! off, so it is never relayed twice).

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::{Instant, timeout_at};

use faultline_kv_proto::MicroOp;

use crate::protocol::{Body, Outcome, Request, Response};

/// The longest answer line accepted from the leader.
const MAX_LINE: usize = 64 << 20;

/// How long a relay waits for a connection to the leader. Nothing has been sent while
/// connecting, so giving up early is a definite `fail`; a leader that does not accept a
/// connection on a local network within this is cut off or gone, and the client's next
/// request finds the new leader instead of waiting out the whole request time-out.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Waits for the node loop's answer to `request` on `local`; relays the request to the
/// leader if that answer is `not-leader`; sends the final answer on `reply`. Gives up
/// (with the answers in the module docs) at `deadline`.
pub async fn answer(
    mut local: UnboundedReceiver<Response>,
    request: Request,
    reply: UnboundedSender<Response>,
    node: u64,
    deadline: Instant,
) {
    // The node loop always answers (at worst at its own time-out); a closed channel
    // means it stopped, and the client's connection goes with it.
    let Some(answer) = local.recv().await else {
        return;
    };
    let response = if is_not_leader(&answer) {
        match answer
            .leader_addr
            .as_deref()
            .filter(|_| answer.leader != Some(node))
        {
            Some(addr) => relay(addr, &request, node, deadline).await,
            None => Response::fail(
                request.id.clone(),
                node,
                "no-leader",
                "this node knows no leader to forward to; nothing was sent",
            ),
        }
    } else {
        answer
    };
    let _ = reply.send(response);
}

fn is_not_leader(answer: &Response) -> bool {
    answer.outcome == Outcome::Fail && answer.error.as_deref() == Some("not-leader")
}

/// Sends `request` (with `forward` off) to the client address `addr` and returns its
/// answer, or this node's verdict when none comes back by `deadline`.
pub async fn relay(addr: &str, request: &Request, node: u64, deadline: Instant) -> Response {
    let id = request.id.clone();
    let read_only = matches!(&request.body, Body::Txn(ops) if ops.iter().all(MicroOp::is_read));
    let unknown = |code: &str, message: String| {
        if read_only {
            Response::fail(id.clone(), node, code, message)
        } else {
            Response::info(id.clone(), node, code, message)
        }
    };
    let connect_by = deadline.min(Instant::now() + CONNECT_TIMEOUT);
    let stream = match timeout_at(connect_by, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Response::fail(
                id,
                node,
                "forward-unavailable",
                format!("cannot connect to the leader at {addr}: {e}; nothing was sent"),
            );
        }
        Err(_) => {
            return Response::fail(
                id,
                node,
                "forward-unavailable",
                format!("no connection to the leader at {addr} in time; nothing was sent"),
            );
        }
    };
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut line = request.clone().forwarded(false).to_line();
    line.push('\n');
    match timeout_at(deadline, write.write_all(line.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return unknown(
                "forward-lost",
                format!("the connection to the leader at {addr} broke while sending: {e}"),
            );
        }
        Err(_) => return unknown("forward-timeout", timed_out(addr)),
    }
    let mut lines = BufReader::new(read);
    loop {
        let mut buf = Vec::new();
        let read = timeout_at(deadline, lines.read_until(b'\n', &mut buf)).await;
        match read {
            Ok(Ok(0)) => {
                return unknown(
                    "forward-lost",
                    format!("the leader at {addr} closed the connection before answering"),
                );
            }
            Ok(Ok(_)) if buf.len() > MAX_LINE => {
                return unknown(
                    "forward-bad-response",
                    format!("the leader at {addr} sent an over-long line"),
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return unknown(
                    "forward-lost",
                    format!("the connection to the leader at {addr} broke: {e}"),
                );
            }
            Err(_) => return unknown("forward-timeout", timed_out(addr)),
        }
        match Response::from_line(buf.trim_ascii_end()) {
            Ok(answer) if answer.id == id => return answer,
            // Only our request went on this connection; anything else is not ours.
            Ok(_) => {}
            Err(e) => {
                return unknown(
                    "forward-bad-response",
                    format!("the leader at {addr} answered something unreadable: {e}"),
                );
            }
        }
    }
}

fn timed_out(addr: &str) -> String {
    format!("no answer from the leader at {addr} within the request time-out")
}

/// True for a request to relay when this node is not the leader: a transaction with
/// `forward` on.
pub fn wanted(request: &Request) -> bool {
    request.forward && matches!(request.body, Body::Txn(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_request;
    use serde_json::json;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    fn write_request() -> Request {
        parse_request(r#"{"id":9,"txn":[["w","x",1]],"forward":true}"#, 2).unwrap()
    }

    fn read_request() -> Request {
        parse_request(r#"{"id":9,"txn":[["r","x",null]],"forward":true}"#, 2).unwrap()
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(300)
    }

    #[tokio::test]
    async fn the_leaders_answer_is_relayed_and_forward_is_not_passed_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let leader = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            while !got.ends_with(b"\n") {
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.unwrap();
                got.push(byte[0]);
            }
            let other = Response::ok_txn(json!(1), 3, vec![]).to_line();
            let ours = Response::ok_txn(json!(9), 3, vec![json!(["w", "x", 1])]).to_line();
            stream
                .write_all(format!("{other}\n{ours}\n").as_bytes())
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let answer = relay(&addr, &write_request(), 2, soon()).await;
        assert_eq!(answer.outcome, Outcome::Ok);
        assert_eq!(answer.node, 3);
        assert_eq!(answer.id, json!(9));
        let sent = leader.await.unwrap();
        assert!(!sent.contains("forward"), "{sent}");
    }

    #[tokio::test]
    async fn a_leader_that_never_answers_makes_a_write_info_and_a_read_fail() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Accepts and holds connections, never answering.
        let _holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let answer = relay(&addr, &write_request(), 2, soon()).await;
        assert_eq!(answer.outcome, Outcome::Info);
        assert_eq!(answer.error.as_deref(), Some("forward-timeout"));
        let answer = relay(&addr, &read_request(), 2, soon()).await;
        assert_eq!(answer.outcome, Outcome::Fail);
        assert_eq!(answer.error.as_deref(), Some("forward-timeout"));
    }

    #[tokio::test]
    async fn an_unreachable_leader_is_a_definite_failure() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap();
        let answer = relay(&addr, &write_request(), 2, soon()).await;
        assert_eq!(answer.outcome, Outcome::Fail);
        assert_eq!(answer.error.as_deref(), Some("forward-unavailable"));
    }

    #[tokio::test]
    async fn a_leader_that_accepts_no_connection_fails_fast() {
        // A listener whose accept queue is full drops new connection attempts, as a
        // cut-off leader does: the relay gives up after CONNECT_TIMEOUT, not at the
        // request's deadline.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        loop {
            let attempt = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                TcpStream::connect(addr),
            )
            .await;
            match attempt {
                Ok(Ok(stream)) if queued.len() < 16 => queued.push(stream),
                Ok(_) => panic!("the accept queue never filled"),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let deadline = started + std::time::Duration::from_secs(30);
        let answer = relay(&addr.to_string(), &write_request(), 2, deadline).await;
        assert_eq!(answer.outcome, Outcome::Fail);
        assert_eq!(answer.error.as_deref(), Some("forward-unavailable"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        drop(listener);
    }

    #[tokio::test]
    async fn not_leader_without_a_leader_is_no_leader_and_other_answers_pass() {
        let (reply_tx, mut reply_rx) = tokio::sync::mpsc::unbounded_channel();
        let (local_tx, local_rx) = tokio::sync::mpsc::unbounded_channel();
        local_tx
            .send(Response::not_leader(json!(9), 2, None, None))
            .unwrap();
        answer(local_rx, write_request(), reply_tx.clone(), 2, soon()).await;
        let got = reply_rx.recv().await.unwrap();
        assert_eq!(got.outcome, Outcome::Fail);
        assert_eq!(got.error.as_deref(), Some("no-leader"));

        let (local_tx, local_rx) = tokio::sync::mpsc::unbounded_channel();
        let ok = Response::ok_txn(json!(9), 2, vec![json!(["w", "x", 1])]);
        local_tx.send(ok.clone()).unwrap();
        answer(local_rx, write_request(), reply_tx, 2, soon()).await;
        assert_eq!(reply_rx.recv().await.unwrap(), ok);
    }

    #[test]
    fn only_transactions_with_forward_on_are_relayed() {
        assert!(wanted(&write_request()));
        assert!(!wanted(&write_request().forwarded(false)));
        assert!(!wanted(&Request::status(1).forwarded(true)));
    }
}
