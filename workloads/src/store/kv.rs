//! The bundled node's client: `faultline-kv`'s newline-delimited JSON over TCP (see
//! `clusters/kvnode/README.md`; requests and responses are `faultline_kv_proto`'s).
//!
//! One request in flight, a connection per node talked to. How a call picks its node is
//! the store's [`Routing`].
//!
//! [`Routing::Pinned`] (Jepsen's): every call goes to the client's own node
//! (`preferred % nodes.len()`) with `"forward": true`, so a node that is not the leader
//! relays it to its leader; no hint is followed and nothing fails over (a `not-leader`,
//! `no-leader` or refused connection is a `Fail`), and a time-out or a lost connection
//! is `Info`, as below.
//!
//! [`Routing::Leader`]: a read-only call starts at
//! the client's own node (`preferred % nodes.len()`), so that every node's read path is
//! exercised (a node that serves stale reads is caught); a call that writes starts at
//! the last node that accepted a write (at first the client's own). A call follows
//! `not-leader` hints (at most [`MAX_HOPS`] per call: a `not-leader` is definite, so
//! retrying elsewhere is safe) and fails over to the next node when a connect fails. The
//! whole call is bounded by the store's time-out.
//!
//! | what happened | outcome |
//! |---|---|
//! | the node answered `ok` / `fail` / `info` | that outcome, with the node's `error` code |
//! | no node could be connected to (refused, unreachable, connect time-out) | `Fail` `unavailable` |
//! | still `not-leader` after [`MAX_HOPS`] hops | `Fail` `not-leader` |
//! | no answer in time after the request was written | `Info` `timeout` |
//! | the connection broke while or after writing the request | `Info` `connection-lost` |
//! | an answer that cannot be parsed | `Info` `bad-response` |
//!
//! After an `Info` the connection is dropped; the next call reconnects.

use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::time::Duration;

use faultline_kv_proto::{MicroOp, Outcome, Request, Response};
use serde_json::{Value, json};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::{Micro, Routing, Store, StoreError, TxnFuture, TxnOk};

/// Most `not-leader` hints followed in one call.
pub const MAX_HOPS: usize = 3;

/// A client of a `faultline-kv` cluster, bound to one client thread.
#[derive(Debug)]
pub struct KvStore {
    nodes: Vec<(String, String)>,
    home: usize,
    leader: usize,
    current: usize,
    timeout: Duration,
    routing: Routing,
    conns: Vec<Option<Conn>>,
    next_id: u64,
}

#[derive(Debug)]
struct Conn {
    node: usize,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// True when the peer has closed the connection (or it broke) while it sat idle.
    /// Asks the socket itself (a non-blocking peek), not the runtime's cached
    /// readiness, which may not have seen the close yet. Bytes waiting (answers to
    /// abandoned requests) mean it is open; they are skipped later by id.
    fn is_closed(&self) -> bool {
        let mut byte = [MaybeUninit::<u8>::uninit()];
        match SockRef::from(&self.stream).peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
        }
    }

    /// The next line (without the newline); `None` at end of stream.
    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                return Ok(Some(line));
            }
            let mut tmp = [0u8; 8192];
            let n = self.stream.read(&mut tmp).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }
}

/// Where a `not-leader` answer sends us next.
enum Next {
    Node(usize),
    NoHint,
}

impl KvStore {
    /// A client of the cluster `nodes` (`(name, client address "host:port")`, e.g.
    /// `("n1", "127.0.0.1:8001")`), starting at node `preferred % nodes.len()`; every
    /// call is bounded by `timeout`. Routes [`Routing::Leader`]'s way unless
    /// [`KvStore::with_routing`] says otherwise. Connects lazily, on the first call.
    pub fn new(nodes: Vec<(String, String)>, preferred: usize, timeout: Duration) -> KvStore {
        let current = if nodes.is_empty() {
            0
        } else {
            preferred % nodes.len()
        };
        KvStore {
            conns: nodes.iter().map(|_| None).collect(),
            nodes,
            home: current,
            leader: current,
            current,
            timeout,
            routing: Routing::Leader,
            next_id: 0,
        }
    }

    /// The same store, routing calls as `routing` says.
    pub fn with_routing(mut self, routing: Routing) -> KvStore {
        self.routing = routing;
        self
    }

    /// The name of the node the next call starts at.
    pub fn current_node(&self) -> Option<&str> {
        self.nodes.get(self.current).map(|(name, _)| name.as_str())
    }

    fn name(&self, node: usize) -> Option<String> {
        self.nodes.get(node).map(|(name, _)| name.clone())
    }

    fn fail(&self, error: &str, node: Option<usize>) -> StoreError {
        StoreError::Fail {
            error: error.to_string(),
            node: node.and_then(|n| self.name(n)),
        }
    }

    fn info(&mut self, error: &str, node: usize) -> StoreError {
        if let Some(conn) = self.conns.get_mut(node) {
            *conn = None;
        }
        StoreError::Info {
            error: error.to_string(),
            node: self.name(node),
        }
    }

    /// A live connection to the current node, failing over to the next nodes when a
    /// connect fails (pinned: never). `Err` when no node could be reached (nothing was
    /// sent).
    async fn connect(&mut self, deadline: Instant) -> Result<(), StoreError> {
        let tries = match self.routing {
            Routing::Pinned => 1,
            Routing::Leader => self.nodes.len(),
        };
        for _ in 0..tries {
            if let Some(conn) = &self.conns[self.current] {
                if !conn.is_closed() {
                    return Ok(());
                }
                self.conns[self.current] = None;
            }
            let addr = &self.nodes[self.current].1;
            match timeout_at(deadline, TcpStream::connect(addr.as_str())).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    self.conns[self.current] = Some(Conn {
                        node: self.current,
                        stream,
                        buf: Vec::new(),
                    });
                    return Ok(());
                }
                Ok(Err(_)) => self.current = (self.current + 1) % self.nodes.len(),
                Err(_) => break,
            }
        }
        let node = (self.routing == Routing::Pinned).then_some(self.current);
        Err(self.fail("unavailable", node))
    }

    /// Where a `not-leader` answer points: the node whose client address is
    /// `leader_addr`, else the node named `n{leader}`.
    fn hinted(&self, answer: &Response) -> Next {
        if let Some(addr) = answer.leader_addr.as_deref()
            && let Some(i) = self.nodes.iter().position(|(_, a)| a == addr)
        {
            return Next::Node(i);
        }
        if let Some(id) = answer.leader {
            let name = format!("n{id}");
            if let Some(i) = self.nodes.iter().position(|(n, _)| *n == name) {
                return Next::Node(i);
            }
        }
        Next::NoHint
    }

    async fn run(&mut self, ops: &[Micro]) -> Result<TxnOk, StoreError> {
        if self.nodes.is_empty() {
            return Err(self.fail("unavailable", None));
        }
        let deadline = Instant::now() + self.timeout;
        let txn: Vec<MicroOp> = ops.iter().map(micro_op).collect();
        let mut hops = 0;
        let read_only = ops.iter().all(|op| matches!(op, Micro::Read(_)));
        let pinned = self.routing == Routing::Pinned;
        self.current = if read_only || pinned {
            self.home
        } else {
            self.leader
        };
        loop {
            self.connect(deadline).await?;
            let Some(conn) = self.conns[self.current].as_mut() else {
                return Err(self.fail("unavailable", None));
            };
            let node = conn.node;
            self.next_id += 1;
            let id = self.next_id;
            let mut line = Request::txn(id, txn.clone()).forwarded(pinned).to_line();
            line.push('\n');
            let answer = match exchange(conn, &line, id, deadline).await {
                Ok(answer) => answer,
                Err(code) => return Err(self.info(code, node)),
            };
            let Ok(answer) = Response::from_value(answer) else {
                return Err(self.info("bad-response", node));
            };
            let error = answer.error.clone().unwrap_or_else(|| "unknown".into());
            match answer.outcome {
                Outcome::Ok => {
                    if !read_only {
                        self.leader = node;
                    }
                    return self.ok(ops, &answer, node);
                }
                Outcome::Fail if error == "not-leader" => {
                    if pinned || hops >= MAX_HOPS {
                        return Err(self.fail("not-leader", Some(node)));
                    }
                    hops += 1;
                    self.current = match self.hinted(&answer) {
                        Next::Node(i) if i != node => i,
                        _ => (node + 1) % self.nodes.len(),
                    };
                }
                Outcome::Fail => return Err(self.fail(&error, Some(node))),
                Outcome::Info => {
                    return Err(StoreError::Info {
                        error,
                        node: self.name(node),
                    });
                }
            }
        }
    }

    /// The values of an `ok` answer: reads' values, `null` for the other micro-ops.
    fn ok(&mut self, ops: &[Micro], answer: &Response, node: usize) -> Result<TxnOk, StoreError> {
        let results = answer.txn.as_ref().and_then(Value::as_array);
        let Some(results) = results.filter(|r| r.len() == ops.len()) else {
            // It committed, but we cannot say what it read.
            return Err(self.info("bad-response", node));
        };
        let values = ops
            .iter()
            .zip(results)
            .map(|(op, result)| match op {
                Micro::Read(_) => result.get(2).cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            })
            .collect();
        Ok(TxnOk {
            values,
            node: self.name(node).unwrap_or_default(),
        })
    }
}

/// Writes `line` and waits for the answer with id `id`, until `deadline`. `Err` is the
/// `Info` code: once writing starts the request may reach the node.
async fn exchange(
    conn: &mut Conn,
    line: &str,
    id: u64,
    deadline: Instant,
) -> Result<Value, &'static str> {
    match timeout_at(deadline, conn.stream.write_all(line.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err("connection-lost"),
        Err(_) => return Err("timeout"),
    }
    loop {
        let line = match timeout_at(deadline, conn.read_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None) | Err(_)) => return Err("connection-lost"),
            Err(_) => return Err("timeout"),
        };
        let Ok(answer) = serde_json::from_slice::<Value>(&line) else {
            return Err("bad-response");
        };
        if answer.get("id") == Some(&json!(id)) {
            return Ok(answer);
        }
        // An answer to a request abandoned earlier: skip it.
    }
}

/// The node's micro-op for ours.
fn micro_op(op: &Micro) -> MicroOp {
    let key = |k: &String| Value::String(k.clone());
    match op {
        Micro::Read(k) => MicroOp::Read { key: key(k) },
        Micro::Write(k, v) => MicroOp::Write {
            key: key(k),
            value: v.clone(),
        },
        Micro::Cas(k, old, new) => MicroOp::Cas {
            key: key(k),
            old: old.clone(),
            new: new.clone(),
        },
        Micro::Append(k, v) => MicroOp::Append {
            key: key(k),
            value: v.clone(),
        },
        Micro::Add(k, d) => MicroOp::Add {
            key: key(k),
            delta: *d,
        },
    }
}

/// The node's `[f, key, value]` form of a micro-op.
#[cfg(test)]
fn micro_json(op: &Micro) -> Value {
    micro_op(op).to_json(None)
}

impl Store for KvStore {
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a> {
        Box::pin(self.run(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_ops_render_in_the_node_format() {
        let ops = [
            Micro::Read("x".into()),
            Micro::Write("x".into(), json!(3)),
            Micro::Cas("x".into(), json!(null), json!(1)),
            Micro::Append("l".into(), json!(5)),
            Micro::Add("c".into(), -2),
        ];
        let rendered: Vec<Value> = ops.iter().map(micro_json).collect();
        assert_eq!(
            Value::Array(rendered),
            json!([
                ["r", "x", null],
                ["w", "x", 3],
                ["cas", "x", [null, 1]],
                ["append", "l", 5],
                ["add", "c", -2]
            ])
        );
    }

    #[tokio::test]
    async fn no_reachable_node_is_a_definite_failure() {
        // A port nobody listens on: bind, note the port, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap();
        let mut store = KvStore::new(
            vec![("n1".into(), addr.clone()), ("n2".into(), addr)],
            5,
            Duration::from_secs(2),
        );
        assert_eq!(store.current_node(), Some("n2"));
        let err = store.txn(&[Micro::Read("x".into())]).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Fail { ref error, .. } if error == "unavailable"),
            "{err:?}"
        );
    }

    /// A fake node at the returned address: answers each request line with
    /// `answer(id)` (none: silence), and sends every line it got on the channel.
    async fn fake_node(
        answer: fn(Value) -> Option<Response>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let id = serde_json::from_str::<Value>(&line).unwrap()["id"].clone();
                        let _ = tx.send(line);
                        if let Some(r) = answer(id) {
                            let out = format!("{}\n", r.to_line());
                            write.write_all(out.as_bytes()).await.unwrap();
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn pinned_asks_its_node_to_forward_and_never_follows_hints() {
        let (home, mut got) =
            fake_node(|id| Some(Response::not_leader(id, 1, Some(2), None))).await;
        let (other, mut other_got) =
            fake_node(|id| Some(Response::ok_txn(id, 2, vec![json!(["w", "x", 1])]))).await;
        let nodes = vec![("n1".to_string(), home), ("n2".to_string(), other)];
        let mut store =
            KvStore::new(nodes.clone(), 0, Duration::from_secs(2)).with_routing(Routing::Pinned);
        let err = store
            .txn(&[Micro::Write("x".into(), json!(1))])
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Fail {
                error: "not-leader".into(),
                node: Some("n1".into())
            }
        );
        assert!(got.recv().await.unwrap().contains(r#""forward":true"#));
        assert!(other_got.try_recv().is_err(), "pinned followed a hint");
        // The leader routing follows the hint, without asking to forward.
        let mut store = KvStore::new(nodes, 0, Duration::from_secs(2));
        let ok = store.txn(&[Micro::Write("x".into(), json!(1))]).await;
        assert_eq!(ok.unwrap().node, "n2");
        assert!(!got.recv().await.unwrap().contains("forward"));
    }

    #[tokio::test]
    async fn pinned_is_info_when_its_node_does_not_answer_in_time() {
        let (home, _got) = fake_node(|_| None).await;
        let (other, _) =
            fake_node(|id| Some(Response::ok_txn(id, 2, vec![json!(["w", "x", 1])]))).await;
        let nodes = vec![("n1".to_string(), home), ("n2".to_string(), other)];
        let mut store =
            KvStore::new(nodes, 2, Duration::from_millis(300)).with_routing(Routing::Pinned);
        let err = store
            .txn(&[Micro::Write("x".into(), json!(1))])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Info { ref error, ref node } if error == "timeout" && node.as_deref() == Some("n1")),
            "{err:?}"
        );
    }
}
