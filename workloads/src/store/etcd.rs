//! etcd 3.4's client, through its HTTP/JSON gateway (`POST /v3/kv/txn`, base64 keys and
//! values; see `shared/notes/etcd-api.md`). Values are stored as JSON text, so
//! `Write("x", 3)` stores `3` and `Append` stores a JSON list.
//!
//! A transaction of micro-ops runs with optimistic concurrency, in two requests:
//!
//! 1. one etcd txn of `request_range`s reads every key the transaction touches (one
//!    consistent snapshot; `"serializable": true` in [`ReadMode::Serializable`]), keeping
//!    each key's value and `mod_revision`;
//! 2. the micro-ops run locally, in order; a `cas` that compares false ends the call
//!    (`Fail` `cas-mismatch`), as do an `append` to a non-list (`not-a-list`) and an
//!    `add` to a non-integer (`not-an-integer`) or past 64 bits (`overflow`);
//! 3. if nothing is written the reads are the answer; otherwise one etcd txn commits:
//!    its compares require every touched key's `mod_revision` to be what was read
//!    (`create_revision` 0 for absent keys), its success branch puts every written key.
//!    If the compares fail, nothing was written: `Fail` `conflict`.
//!
//! | what happened | outcome |
//! |---|---|
//! | every node refused the connection (or the connect timed out) | `Fail` `unavailable` |
//! | the read step timed out, lost its connection, got HTTP 503 or a bad answer | `Fail` (reads have no effect) |
//! | the commit timed out or lost its connection after sending | `Info` `timeout` / `connection-lost` |
//! | the commit got HTTP 503 (gRPC 14), gRPC 4 or another 5xx | `Info` `unavailable` / `timeout` / `http-N` |
//! | the commit got an unparseable answer | `Info` `bad-response` |
//! | any step got HTTP 4xx (bad request: etcd refused it before acting) | `Fail` `rejected` |
//!
//! With [`Routing::Leader`] a refused connection fails over to the next node at once
//! (nothing was sent), and after an uncertain answer the next call starts at the next
//! node, so a client stuck with a partitioned node moves on. With [`Routing::Pinned`]
//! (Jepsen's) the client only ever talks to its own node's endpoint: etcd forwards
//! proposals to its leader itself, a refused connection is `Fail` `unavailable` and an
//! uncertain answer leaves the client where it is.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::staged::{KeyState, apply};
use super::{Micro, Routing, Store, StoreError, TxnFuture, TxnOk};

/// How the read step reads (`--read-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Linearizable reads, confirmed by the leader (etcd's default).
    #[default]
    Linearizable,
    /// Serializable reads (`"serializable": true`): served from the answering node's
    /// local state, possibly stale. Writes stay safe: a stale read fails the commit's
    /// compares (`conflict`). A read-only transaction may return stale values.
    Serializable,
}

/// A client of an etcd cluster, bound to one client thread. Keeps HTTP connections
/// alive between calls.
#[derive(Debug)]
pub struct EtcdStore {
    nodes: Vec<(String, String)>,
    current: usize,
    timeout: Duration,
    read_mode: ReadMode,
    routing: Routing,
    client: Result<reqwest::Client, String>,
}

/// Why a request did not come back with a 200 answer.
#[derive(Debug)]
enum PostError {
    /// Certainly not sent: no node accepted a connection (or time ran out first).
    Unsent(&'static str),
    /// etcd refused the request before acting on it (HTTP 4xx).
    Rejected(usize, String),
    /// Sent; the outcome is unknown (time-out, connection lost, 503, bad answer).
    Unknown(usize, String),
}

impl EtcdStore {
    /// A client of the cluster `nodes` (`(name, client address "host:port")`, e.g.
    /// `("n1", "127.0.0.1:2379")`), starting at node `preferred % nodes.len()`; every call
    /// is bounded by `timeout`. Routes [`Routing::Leader`]'s way unless
    /// [`EtcdStore::with_routing`] says otherwise. Connects lazily.
    pub fn new(
        nodes: Vec<(String, String)>,
        preferred: usize,
        timeout: Duration,
        read_mode: ReadMode,
    ) -> EtcdStore {
        let current = if nodes.is_empty() {
            0
        } else {
            preferred % nodes.len()
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"));
        EtcdStore {
            nodes,
            current,
            timeout,
            read_mode,
            routing: Routing::Leader,
            client,
        }
    }

    /// The same store, routing calls as `routing` says.
    pub fn with_routing(mut self, routing: Routing) -> EtcdStore {
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

    /// POSTs `body` to `/v3/{method}`, from the current node on, failing over on
    /// refused connections; the parsed 200 answer and the node that gave it.
    async fn post(
        &mut self,
        method: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(Value, usize), PostError> {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(_) => return Err(PostError::Unsent("client-error")),
        };
        let body = body.to_string();
        let tries = match self.routing {
            Routing::Pinned => 1,
            Routing::Leader => self.nodes.len(),
        };
        for _ in 0..tries {
            let node = self.current;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let url = format!("http://{}/v3/{method}", self.nodes[node].1);
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone())
                .timeout(remaining)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if e.is_connect() => {
                    if self.routing == Routing::Leader {
                        self.current = (node + 1) % self.nodes.len();
                    }
                    continue;
                }
                Err(e) if e.is_timeout() => return Err(self.unknown(node, "timeout")),
                Err(_) => return Err(self.unknown(node, "connection-lost")),
            };
            let status = response.status().as_u16();
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) if e.is_timeout() => return Err(self.unknown(node, "timeout")),
                Err(_) => return Err(self.unknown(node, "connection-lost")),
            };
            let parsed = serde_json::from_slice::<Value>(&bytes);
            if status == 200 {
                return match parsed {
                    Ok(answer) => Ok((answer, node)),
                    Err(_) => Err(self.unknown(node, "bad-response")),
                };
            }
            let code = parsed
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_i64))
                .unwrap_or(-1);
            return Err(match (status, code) {
                (_, 14) | (503, _) => self.unknown(node, "unavailable"),
                (_, 4) | (408, _) => self.unknown(node, "timeout"),
                (400..=499, _) => PostError::Rejected(node, "rejected".into()),
                _ => self.unknown(node, &format!("http-{status}")),
            });
        }
        Err(PostError::Unsent("unavailable"))
    }

    /// An unknown outcome at `node`; the next call starts at the next node (pinned: at
    /// the same).
    fn unknown(&mut self, node: usize, error: &str) -> PostError {
        if self.routing == Routing::Leader {
            self.current = (node + 1) % self.nodes.len();
        }
        PostError::Unknown(node, error.to_string())
    }

    async fn run(&mut self, ops: &[Micro]) -> Result<TxnOk, StoreError> {
        if self.nodes.is_empty() {
            return Err(self.fail("unavailable", None));
        }
        let deadline = Instant::now() + self.timeout;
        let mut keys: Vec<&str> = Vec::new();
        for op in ops {
            if !keys.contains(&op.key()) {
                keys.push(op.key());
            }
        }

        // 1. Read every touched key in one snapshot. Reads have no effect: any failure
        //    here is a `Fail`.
        let serializable = self.read_mode == ReadMode::Serializable;
        let ranges: Vec<Value> = keys
            .iter()
            .map(|k| {
                let mut range = json!({"key": B64.encode(k)});
                if serializable {
                    range["serializable"] = json!(true);
                }
                json!({"request_range": range})
            })
            .collect();
        let (answer, read_node) = match self
            .post("kv/txn", &json!({"success": ranges}), deadline)
            .await
        {
            Ok(ok) => ok,
            Err(PostError::Unsent(error)) => return Err(self.fail(error, None)),
            Err(PostError::Rejected(node, error) | PostError::Unknown(node, error)) => {
                return Err(self.fail(&error, Some(node)));
            }
        };
        let mut state = match read_snapshot(&keys, &answer) {
            Some(state) => state,
            None => return Err(self.fail("bad-response", Some(read_node))),
        };

        // 2. Run the micro-ops locally.
        let mut values = Vec::with_capacity(ops.len());
        for op in ops {
            let Some(key) = state.get_mut(op.key()) else {
                return Err(self.fail("bad-response", Some(read_node)));
            };
            match apply(op, key) {
                Ok(value) => values.push(value),
                Err(error) => return Err(self.fail(error, Some(read_node))),
            }
        }

        // 3. Commit the writes, if any, on condition that nothing touched changed.
        let puts: Vec<Value> = keys
            .iter()
            .filter_map(|k| {
                let s = &state[*k];
                let text = s.value.as_ref().unwrap_or(&Value::Null).to_string();
                s.written.then(
                    || json!({"request_put": {"key": B64.encode(k), "value": B64.encode(text)}}),
                )
            })
            .collect();
        if puts.is_empty() {
            return Ok(TxnOk {
                values,
                node: self.name(read_node).unwrap_or_default(),
            });
        }
        let compares: Vec<Value> = keys
            .iter()
            .map(|k| match state[*k].version {
                0 => json!({"key": B64.encode(k), "target": "CREATE", "result": "EQUAL",
                            "create_revision": "0"}),
                rev => json!({"key": B64.encode(k), "target": "MOD", "result": "EQUAL",
                              "mod_revision": rev.to_string()}),
            })
            .collect();
        let body = json!({"compare": compares, "success": puts});
        match self.post("kv/txn", &body, deadline).await {
            Ok((answer, node)) => {
                if answer.get("succeeded").and_then(Value::as_bool) == Some(true) {
                    Ok(TxnOk {
                        values,
                        node: self.name(node).unwrap_or_default(),
                    })
                } else {
                    Err(self.fail("conflict", Some(node)))
                }
            }
            Err(PostError::Unsent(error)) => Err(self.fail(error, None)),
            Err(PostError::Rejected(node, error)) => Err(self.fail(&error, Some(node))),
            Err(PostError::Unknown(node, error)) => Err(StoreError::Info {
                error,
                node: self.name(node),
            }),
        }
    }
}

/// Each key's value and `mod_revision` from a txn answer of one `response_range` per
/// key, in order; `None` if the answer does not have that shape or a value is not JSON.
fn read_snapshot(keys: &[&str], answer: &Value) -> Option<HashMap<String, KeyState<i64>>> {
    let responses = answer.get("responses").and_then(Value::as_array)?;
    if responses.len() != keys.len() {
        return None;
    }
    let mut state = HashMap::with_capacity(keys.len());
    for (key, response) in keys.iter().zip(responses) {
        let range = response.get("response_range")?;
        let kv = range
            .get("kvs")
            .and_then(Value::as_array)
            .and_then(|kvs| kvs.first());
        let (mod_revision, value) = match kv {
            None => (0, None),
            Some(kv) => {
                let rev = kv.get("mod_revision").and_then(int)?;
                let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
                let bytes = B64.decode(raw).ok()?;
                (rev, Some(serde_json::from_slice::<Value>(&bytes).ok()?))
            }
        };
        state.insert(
            key.to_string(),
            KeyState {
                version: mod_revision,
                value,
                written: false,
            },
        );
    }
    Some(state)
}

/// An etcd 64-bit integer: a string (`"5"`) or a number.
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

impl Store for EtcdStore {
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a> {
        Box::pin(self.run(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_parse_revisions_as_strings_or_numbers() {
        let answer = json!({"header": {"revision": "7"}, "succeeded": true, "responses": [
            {"response_range": {"header": {}}},
            {"response_range": {"kvs": [{"key": B64.encode("b"), "mod_revision": "6",
                                         "value": B64.encode("[1,2]")}], "count": "1"}},
            {"response_range": {"kvs": [{"key": B64.encode("c"), "mod_revision": 3,
                                         "value": B64.encode("5")}], "count": "1"}}
        ]});
        let state = read_snapshot(&["a", "b", "c"], &answer).unwrap();
        assert_eq!(state["a"].version, 0);
        assert_eq!(state["a"].value, None);
        assert_eq!(state["b"].version, 6);
        assert_eq!(state["b"].value, Some(json!([1, 2])));
        assert_eq!(state["c"].version, 3);
        assert!(read_snapshot(&["a"], &answer).is_none(), "wrong shape");
    }

    #[tokio::test]
    async fn pinned_stays_on_its_node_when_it_refuses() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap();
        let nodes = vec![
            ("n1".to_string(), refused.clone()),
            ("n2".to_string(), refused),
        ];
        let mut store = EtcdStore::new(
            nodes.clone(),
            0,
            Duration::from_secs(2),
            ReadMode::Linearizable,
        )
        .with_routing(Routing::Pinned);
        let err = store.txn(&[Micro::Read("x".into())]).await.unwrap_err();
        assert!(matches!(err, StoreError::Fail { .. }), "{err:?}");
        assert_eq!(store.current_node(), Some("n1"));
        let mut store = EtcdStore::new(nodes, 0, Duration::from_secs(2), ReadMode::Linearizable);
        let _ = store.txn(&[Micro::Read("x".into())]).await.unwrap_err();
        assert_eq!(
            store.current_node(),
            Some("n1"),
            "failed over twice, back home"
        );
    }
}
