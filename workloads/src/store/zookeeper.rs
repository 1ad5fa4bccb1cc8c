//! ZooKeeper's client, with the `zookeeper-client` crate (async, on tokio). Each key is
//! a znode at the root, `/faultline-KEY` (characters other than letters, digits, `-`
//! and `_` written `%XX`), holding the key's value as JSON text; its `version` orders
//! the writes to it. Each client thread keeps one session, with one server in its
//! connection string (Jepsen's binding of a worker to a node): a partition leaves the
//! client with its server, whatever side that is on.
//!
//! A transaction of micro-ops runs like etcd's, with optimistic concurrency:
//!
//! - a single `write` is a blind `setData` (any version), or a `create` when the znode
//!   does not exist yet;
//! - anything else reads every touched key in one `multiRead` (`getData` each; absent
//!   keys are `null`), after a `sync` when the transaction only reads and the read mode
//!   is [`ReadMode::Linearizable`]; runs the micro-ops locally (a `cas` that compares
//!   false ends the call: `Fail` `cas-mismatch`); and, if it wrote, commits one `multi`:
//!   a `check` of the version read for each key only read (a `create` and `delete`
//!   for one read as absent), a `setData` at the version read for each key written,
//!   a `create` for each key written that was absent. A
//!   stale read makes the commit fail as a whole (`BadVersion`, `NodeExists`): `Fail`
//!   `conflict`.
//!
//! With [`ReadMode::Serializable`] reads are plain `getData` from the connected server:
//! sequentially consistent by ZooKeeper's own account, not linearizable (a follower
//! serves what it has applied so far, and a cut-off follower keeps serving until it
//! notices). With [`ReadMode::Linearizable`] a read-only transaction first `sync`s its
//! server with the leader. (`sync` is not itself a quorum operation, so a leader that
//! has lost its quorum without knowing it could still answer: see `docs/zookeeper.md`.)
//!
//! | what happened | outcome |
//! |---|---|
//! | no session could be established in time | `Fail` `unavailable` (after 100 ms at least) |
//! | the `sync` or the reads failed or timed out | `Fail` (reads have no effect) |
//! | the commit answered `BadVersion`, `NodeExists` or `NoNode` | `Fail` `conflict` |
//! | the commit answered another error of ZooKeeper's that is certain (`BadArguments`, `MarshallingError`…) | `Fail` `rejected` |
//! | the commit timed out, lost its connection, or its session expired | `Info` |
//!
//! After a lost connection, an expired session or the client's own session error (a
//! server that stopped answering) the session is dropped and a new one is made by the
//! next call.
//!
//! The set and lock workloads' operations ([`Recipe`]s) are ZooKeeper's own recipes
//! rather than a versioned `multi` on one znode:
//!
//! - a set is the znode `/faultline-KEY` with one child per element,
//!   `/faultline-KEY/e-ELEMENT` (the element's JSON text, escaped): `add` is a `create`
//!   of the child (`NodeExists`: already there, `ok`), `read` a `getChildren` (after a
//!   `sync` in [`ReadMode::Linearizable`]). Concurrent adds to one set do not conflict.
//!   An add whose `create` timed out or lost its connection is `Info`, one that
//!   ZooKeeper refused `Fail`.
//! - a lock is the znode `/faultline-KEY` with an ephemeral sequential child per
//!   process that wants it (`lock-0000000007`); the lowest holds it, the others wait
//!   for the one before theirs to go, and `release` deletes the holder's child
//!   (the outcomes are documented on the store's `acquire` and `release`). The children belong to the
//!   session: when it ends, the lock is lost, and another client may take it while its
//!   holder has not been told. That hazard is ZooKeeper's and is not hidden.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::etcd::ReadMode;
use super::staged::{KeyState, apply};
use super::{Micro, Recipe, Store, StoreError, TxnFuture, TxnOk};

mod recipes;

/// How long a failed connection attempt takes at least: a killed or cut-off server
/// refuses at once, and clients would otherwise fill the history with failures.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// How a set's child znode's name begins (`e-` and the element's JSON text, escaped).
const ELEMENT_PREFIX: &str = "e-";

/// How a lock's child znode's name begins (ZooKeeper appends ten digits).
const LOCK_PREFIX: &str = "lock-";

/// The most of an `acquire`'s time kept back from waiting for the lock, to withdraw
/// its znode when the wait times out.
const WITHDRAW_RESERVE: Duration = Duration::from_secs(1);

/// The session time-out asked for (the server bounds it to 2 to 20 ticks: 2 s to 20 s
/// with `tickTime=1000`).
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// A client of one ZooKeeper server, bound to one client thread.
pub struct ZookeeperStore {
    name: String,
    addr: String,
    timeout: Duration,
    read_mode: ReadMode,
    client: Option<zk::Client>,
    /// The locks this session holds: key → the holder and its znode.
    held: HashMap<String, Held>,
    /// Locks held by a session since dropped: key → the holder, until it hears so.
    lost: HashMap<String, Value>,
}

/// A lock held by this store's session: the process it was taken for and its
/// ephemeral sequential znode (`/faultline-KEY/lock-0000000007`).
#[derive(Debug, Clone, PartialEq)]
struct Held {
    owner: Value,
    node: String,
}

impl std::fmt::Debug for ZookeeperStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZookeeperStore")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

/// Why a step did not succeed.
#[derive(Debug)]
enum StepError {
    /// ZooKeeper's answer (or the client's: `ConnectionLoss`, `SessionExpired`…).
    Zk(zk::Error),
    /// The call's time ran out.
    Timeout,
}

impl ZookeeperStore {
    /// A client of the server `nodes[preferred % nodes.len()]` (`(name, "host:port")`),
    /// every call bounded by `timeout`. Connects lazily.
    pub fn new(
        nodes: &[(String, String)],
        preferred: usize,
        timeout: Duration,
        read_mode: ReadMode,
    ) -> ZookeeperStore {
        let (name, addr) = match nodes.len() {
            0 => (String::new(), String::new()),
            n => nodes[preferred % n].clone(),
        };
        ZookeeperStore {
            name,
            addr,
            timeout,
            read_mode,
            client: None,
            held: HashMap::new(),
            lost: HashMap::new(),
        }
    }

    /// Drops the session, for the next call to make a new one. Its ephemeral znodes go
    /// with it (when the server hears it close, or when it expires): its locks are lost.
    fn drop_session(&mut self) {
        self.client = None;
        for (key, held) in self.held.drain() {
            self.lost.insert(key, held.owner);
        }
    }

    fn fail(&self, error: impl Into<String>) -> StoreError {
        StoreError::Fail {
            error: error.into(),
            node: Some(self.name.clone()),
        }
    }

    /// The session, made now if there is none; `Fail` `unavailable` when none can be
    /// made before `deadline`.
    async fn session(&mut self, deadline: Instant) -> Result<zk::Client, StoreError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        if self.addr.is_empty() {
            return Err(self.fail("unavailable"));
        }
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        let connect = zk::Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_connection_timeout(remaining.min(Duration::from_secs(2)))
            .with_fail_eagerly()
            .connect(&self.addr);
        match tokio::time::timeout(remaining, connect).await {
            Ok(Ok(client)) => {
                self.client = Some(client.clone());
                Ok(client)
            }
            _ => {
                tokio::time::sleep_until(started + CONNECT_BACKOFF).await;
                Err(self.fail("unavailable"))
            }
        }
    }

    /// `step` within the call's `deadline`; a lost connection or an ended session
    /// drops the session, for the next call to make a new one.
    async fn step<T>(
        &mut self,
        deadline: Instant,
        step: impl Future<Output = Result<T, zk::Error>>,
    ) -> Result<T, StepError> {
        let result = match tokio::time::timeout_at(deadline, step).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => StepError::Zk(e),
            Err(_) => StepError::Timeout,
        };
        if matches!(
            result,
            StepError::Timeout
                | StepError::Zk(
                    zk::Error::ConnectionLoss
                        | zk::Error::SessionExpired
                        | zk::Error::ClientClosed
                        | zk::Error::SessionMoved
                        | zk::Error::AuthFailed
                        | zk::Error::Custom(_)
                )
        ) {
            self.drop_session();
        }
        Err(result)
    }

    async fn run(&mut self, ops: &[Micro]) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = self.session(deadline).await?;
        if let [Micro::Write(key, value)] = ops {
            return self.blind_write(&client, key, value, deadline).await;
        }
        let mut keys: Vec<&str> = Vec::new();
        for op in ops {
            if !keys.contains(&op.key()) {
                keys.push(op.key());
            }
        }
        let paths: HashMap<&str, String> = keys.iter().map(|k| (*k, path(k))).collect();

        // 1. Read every touched key in one request (after a sync, for linearizable
        //    read-only transactions). Reads have no effect: any failure is a `Fail`.
        let read_only = ops.iter().all(|op| matches!(op, Micro::Read(_)));
        if read_only && self.read_mode == ReadMode::Linearizable {
            if let Err(e) = self.step(deadline, client.sync("/")).await {
                return Err(self.fail(format!("sync: {}", reason(&e))));
            }
        }
        let mut reader = client.new_multi_reader();
        for key in &keys {
            if let Err(e) = reader.add_get_data(&paths[key]) {
                return Err(self.fail(format!("bad-key: {e}")));
            }
        }
        let results = match self.step(deadline, reader.commit()).await {
            Ok(results) => results,
            Err(e) => return Err(self.fail(reason(&e))),
        };
        let mut state = match snapshot(&keys, results) {
            Ok(state) => state,
            Err(error) => return Err(self.fail(error)),
        };

        // 2. Run the micro-ops locally.
        let mut values = Vec::with_capacity(ops.len());
        for op in ops {
            let Some(key) = state.get_mut(op.key()) else {
                return Err(self.fail("bad-response"));
            };
            match apply(op, key) {
                Ok(value) => values.push(value),
                Err(error) => return Err(self.fail(error)),
            }
        }
        if state.values().all(|s| !s.written) {
            return Ok(TxnOk {
                values,
                node: self.name.clone(),
            });
        }

        // 3. Commit the writes on condition that nothing touched changed.
        let create = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let mut writer = client.new_multi_writer();
        for key in &keys {
            let s = &state[*key];
            let p = &paths[key];
            let data = s
                .value
                .as_ref()
                .unwrap_or(&Value::Null)
                .to_string()
                .into_bytes();
            let added = match (s.written, s.version) {
                (false, Some(version)) => writer.add_check_version(p, version),
                // Read as absent, not written: multi has no check for absence, but
                // creating and deleting the znode fails (`NodeExists`) if it exists.
                (false, None) => writer
                    .add_create(p, &data, &create)
                    .and_then(|()| writer.add_delete(p, None)),
                (true, Some(version)) => writer.add_set_data(p, &data, Some(version)),
                (true, None) => writer.add_create(p, &data, &create),
            };
            if let Err(e) = added {
                return Err(self.fail(format!("bad-key: {e}")));
            }
        }
        let commit = writer.commit();
        let commit = async move { commit.await.map_err(zk::Error::from) };
        match self.step(deadline, commit).await {
            Ok(_) => Ok(TxnOk {
                values,
                node: self.name.clone(),
            }),
            Err(StepError::Zk(
                zk::Error::BadVersion | zk::Error::NodeExists | zk::Error::NoNode,
            )) => Err(self.fail("conflict")),
            Err(e) => Err(self.commit_error(&e)),
        }
    }

    /// `value` written to `key` whatever it held: `setData` at any version, or
    /// `create` when the znode does not exist (and `setData` again if another client
    /// created it in between).
    async fn blind_write(
        &mut self,
        client: &zk::Client,
        key: &str,
        value: &Value,
        deadline: Instant,
    ) -> Result<TxnOk, StoreError> {
        let p = path(key);
        let data = value.to_string().into_bytes();
        let create = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let done = || TxnOk {
            values: vec![Value::Null],
            node: String::new(),
        };
        let mut result = self
            .step(deadline, client.set_data(&p, &data, None))
            .await
            .map(drop);
        if let Err(StepError::Zk(zk::Error::NoNode)) = result {
            result = match self.step(deadline, client.create(&p, &data, &create)).await {
                Err(StepError::Zk(zk::Error::NodeExists)) => self
                    .step(deadline, client.set_data(&p, &data, None))
                    .await
                    .map(drop),
                other => other.map(drop),
            };
        }
        match result {
            Ok(_) => Ok(TxnOk {
                node: self.name.clone(),
                ..done()
            }),
            Err(e) => Err(self.commit_error(&e)),
        }
    }

    /// One value, answered by this store's server.
    fn one(&self, value: Value) -> TxnOk {
        TxnOk {
            values: vec![value],
            node: self.name.clone(),
        }
    }

    /// The outcome of a write step that did not succeed: `Fail` when ZooKeeper said it
    /// did nothing, else `Info`.
    fn commit_error(&self, e: &StepError) -> StoreError {
        match e {
            StepError::Zk(
                zk::Error::BadArguments(_)
                | zk::Error::MarshallingError
                | zk::Error::NoAuth
                | zk::Error::InvalidAcl
                | zk::Error::Unimplemented
                | zk::Error::NotReadOnly
                | zk::Error::QuotaExceeded,
            ) => self.fail(format!("rejected: {}", reason(e))),
            _ => StoreError::Info {
                error: reason(e),
                node: Some(self.name.clone()),
            },
        }
    }
}

/// A short, stable reason for `e`: `timeout`, `connection-lost`, `session-expired`, or
/// ZooKeeper's error in kebab case.
fn reason(e: &StepError) -> String {
    match e {
        StepError::Timeout | StepError::Zk(zk::Error::Timeout) => "timeout".into(),
        StepError::Zk(zk::Error::ConnectionLoss) => "connection-lost".into(),
        StepError::Zk(zk::Error::SessionExpired) => "session-expired".into(),
        // The client's own session errors, e.g. "no response from connection in 2000ms".
        StepError::Zk(zk::Error::Custom(_)) => "session-error".into(),
        StepError::Zk(e) => kebab(&format!("{e:?}")),
    }
}

/// `NoNode` → `no-node`; anything after the variant's name dropped.
fn kebab(debug: &str) -> String {
    let name: String = debug
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The znode of `key`: `/faultline-KEY`, with every character but ASCII letters,
/// digits, `-` and `_` written `%XX` (per UTF-8 byte).
fn path(key: &str) -> String {
    format!("/faultline-{}", escape(key))
}

/// `text` with every character but ASCII letters, digits, `-` and `_` written `%XX`
/// (per UTF-8 byte): a valid znode name.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text [`escape`] wrote, or `None` when `name` is not its output.
fn unescape(name: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(name.len());
    let mut rest = name.as_bytes();
    while let [first, tail @ ..] = rest {
        if *first == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(*first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Each key's version and value from a `multiRead` answer of one `getData` per key,
/// in order; the error names what was wrong.
fn snapshot(
    keys: &[&str],
    results: Vec<zk::MultiReadResult>,
) -> Result<HashMap<String, KeyState<Option<i32>>>, String> {
    if results.len() != keys.len() {
        return Err("bad-response".into());
    }
    let mut state = HashMap::with_capacity(keys.len());
    for (key, result) in keys.iter().zip(results) {
        let (version, value) = match result {
            zk::MultiReadResult::Data { data, stat } => {
                let value = serde_json::from_slice::<Value>(&data)
                    .map_err(|_| String::from("bad-value"))?;
                (Some(stat.version), Some(value))
            }
            zk::MultiReadResult::Error {
                err: zk::Error::NoNode,
            } => (None, None),
            zk::MultiReadResult::Error { err } => {
                return Err(reason(&StepError::Zk(err)));
            }
            _ => return Err("bad-response".into()),
        };
        state.insert(
            key.to_string(),
            KeyState {
                version,
                value,
                written: false,
            },
        );
    }
    Ok(state)
}

impl Store for ZookeeperStore {
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a> {
        Box::pin(self.run(ops))
    }

    /// ZooKeeper's own recipes (see the module's documentation): a set is a znode with
    /// a child per element, a lock a znode with an ephemeral sequential child per
    /// waiter.
    fn recipe<'a>(&'a mut self, recipe: &'a Recipe) -> TxnFuture<'a> {
        Box::pin(async move {
            match recipe {
                Recipe::SetAdd { key, element } => self.set_add(key, element).await,
                Recipe::SetRead { key } => self.set_read(key).await,
                Recipe::Acquire { key, owner } => self.acquire(key, owner).await,
                Recipe::Release { key, owner } => self.release(key, owner).await,
            }
        })
    }
}

#[cfg(test)]
mod tests;
