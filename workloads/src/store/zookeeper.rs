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

    /// Creates the persistent znode `parent` if it does not exist (another client may
    /// make it first). It is no element and no lock: when its creation's outcome is
    /// unknown the caller has still done nothing, so every error is a `Fail`.
    async fn ensure_parent(
        &mut self,
        client: &zk::Client,
        parent: &str,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match self
            .step(deadline, client.create(parent, b"", &persistent))
            .await
        {
            Ok(_) | Err(StepError::Zk(zk::Error::NodeExists)) => Ok(()),
            Err(e) => Err(self.fail(format!("parent: {}", reason(&e)))),
        }
    }

    /// Adds `element` to the set `key`: a `create` of the child znode
    /// `/faultline-KEY/e-ELEMENT` (of the set's znode first, when it is the first
    /// element). `NodeExists` means the element is already there (an earlier add whose
    /// outcome was unknown took effect): `ok`.
    async fn set_add(&mut self, key: &str, element: &Value) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = self.session(deadline).await?;
        let parent = path(key);
        let child = format!("{parent}/{}", element_name(element));
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let mut result = self
            .step(deadline, client.create(&child, b"", &persistent))
            .await
            .map(drop);
        if let Err(StepError::Zk(zk::Error::NoNode)) = result {
            self.ensure_parent(&client, &parent, deadline).await?;
            result = self
                .step(deadline, client.create(&child, b"", &persistent))
                .await
                .map(drop);
        }
        match result {
            Ok(()) | Err(StepError::Zk(zk::Error::NodeExists)) => Ok(self.one(Value::Null)),
            Err(e) => Err(self.commit_error(&e)),
        }
    }

    /// The elements of the set `key`: `getChildren` of its znode (after a `sync` in
    /// [`ReadMode::Linearizable`]); `null` when the set's znode does not exist.
    async fn set_read(&mut self, key: &str) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = self.session(deadline).await?;
        if self.read_mode == ReadMode::Linearizable {
            if let Err(e) = self.step(deadline, client.sync("/")).await {
                return Err(self.fail(format!("sync: {}", reason(&e))));
            }
        }
        let children = match self.step(deadline, client.list_children(&path(key))).await {
            Ok(children) => children,
            Err(StepError::Zk(zk::Error::NoNode)) => return Ok(self.one(Value::Null)),
            Err(e) => return Err(self.fail(reason(&e))),
        };
        let mut elements = Vec::with_capacity(children.len());
        for child in &children {
            match element_of(child) {
                Some(element) => elements.push(element),
                None => return Err(self.fail("bad-value")),
            }
        }
        Ok(self.one(Value::Array(elements)))
    }

    /// Takes the lock `key` for `owner` with ZooKeeper's lock recipe: `create` an
    /// ephemeral sequential child `/faultline-KEY/lock-N`, list the children, and hold
    /// the lock when ours is the lowest; otherwise watch the child just before ours
    /// and look again when it changes (it went away), until the call's time is nearly
    /// out. Then our child is withdrawn (`delete`): `Fail` `busy` when that is certain,
    /// `Info` when the delete's outcome is unknown (our child may still be there, and
    /// may even have become the lowest, until the session ends).
    ///
    /// The lock belongs to the session: if the session ends (expires on a partition or
    /// a pause, or is dropped after a lost connection) ZooKeeper deletes the child and
    /// another client can take the lock while `owner` believes it still holds it. That
    /// is ZooKeeper's documented hazard and is left in plain view: the mutex checker
    /// may find two holders. `owner`'s next `acquire` or `release` of it then fails
    /// `lock-lost` (once), when this store saw the session go; a `release` also when
    /// ZooKeeper answers that the child is gone.
    async fn acquire(&mut self, key: &str, owner: &Value) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        if self.held.contains_key(key) {
            return Err(self.fail("already-held"));
        }
        if self.lost.get(key) == Some(owner) {
            // The holder hears first that its lock went with its session.
            self.lost.remove(key);
            return Err(self.fail("lock-lost"));
        }
        let client = self.session(deadline).await?;
        let parent = path(key);
        let prefix = format!("{parent}/{LOCK_PREFIX}");
        let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let mut created = self
            .step(deadline, client.create(&prefix, b"", &ephemeral))
            .await;
        if let Err(StepError::Zk(zk::Error::NoNode)) = created {
            self.ensure_parent(&client, &parent, deadline).await?;
            created = self
                .step(deadline, client.create(&prefix, b"", &ephemeral))
                .await;
        }
        let sequence = match created {
            Ok((_, sequence)) => sequence,
            // Nothing certain was made: a definite error is a `Fail`, a lost answer
            // an `Info` (the session is dropped, and the child with it).
            Err(e) => return Err(self.commit_error(&e)),
        };
        let ours = sequence.into_i64();
        let node = format!("{prefix}{sequence}");
        let wait_until = deadline - (self.timeout / 5).min(WITHDRAW_RESERVE);
        let why = loop {
            let children = match self.step(wait_until, client.list_children(&parent)).await {
                Ok(children) => children,
                Err(e) => break reason(&e),
            };
            let before = match predecessor(&children, ours) {
                Ok(None) => {
                    self.lost.remove(key);
                    self.held.insert(
                        key.to_string(),
                        Held {
                            owner: owner.clone(),
                            node,
                        },
                    );
                    return Ok(self.one(Value::Null));
                }
                Ok(Some(before)) => before,
                // Our child is gone: its session ended (and every lock it held), and
                // this acquire holds nothing.
                Err(()) => {
                    self.drop_session();
                    return Err(self.fail("session-ended"));
                }
            };
            let watched = self
                .step(
                    wait_until,
                    client.check_and_watch_stat(&format!("{parent}/{before}")),
                )
                .await;
            match watched {
                // Gone already: look again.
                Ok((None, _)) => continue,
                Ok((Some(_), watcher)) => {
                    if tokio::time::timeout_at(wait_until, watcher.changed())
                        .await
                        .is_err()
                    {
                        break "busy".to_string();
                    }
                }
                Err(e) => break reason(&e),
            }
        };
        // Withdraw: our child must not take the lock after we gave up.
        if self.client.is_none() {
            // The session was dropped: the child goes with it, but not yet for sure.
            return Err(StoreError::Info {
                error: why,
                node: Some(self.name.clone()),
            });
        }
        match self.step(deadline, client.delete(&node, None)).await {
            Ok(()) | Err(StepError::Zk(zk::Error::NoNode)) => Err(self.fail(why)),
            Err(e) => Err(StoreError::Info {
                error: format!("{why}, then withdrawing: {}", reason(&e)),
                node: Some(self.name.clone()),
            }),
        }
    }

    /// Releases the lock `key` that `owner` holds: `delete` of our child. `Fail`
    /// `not-held` when `owner` does not hold it through this session, `lock-lost` when
    /// it did but the session (and so the child) has gone since.
    async fn release(&mut self, key: &str, owner: &Value) -> Result<TxnOk, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let node = match self.held.get(key) {
            Some(held) if held.owner == *owner => held.node.clone(),
            _ => {
                let lost = self.lost.get(key) == Some(owner);
                if lost {
                    self.lost.remove(key);
                }
                return Err(self.fail(if lost { "lock-lost" } else { "not-held" }));
            }
        };
        let client = self.session(deadline).await?;
        match self.step(deadline, client.delete(&node, None)).await {
            Ok(()) => {
                self.held.remove(key);
                Ok(self.one(Value::Null))
            }
            // The child is gone without our delete: the session that owned it ended.
            Err(StepError::Zk(zk::Error::NoNode | zk::Error::SessionExpired)) => {
                self.drop_session();
                self.lost.remove(key);
                Err(self.fail("lock-lost"))
            }
            Err(e) => {
                let error = self.commit_error(&e);
                if matches!(error, StoreError::Info { .. }) {
                    // Dropped with the session (or about to be): no longer ours.
                    self.held.remove(key);
                    self.lost.remove(key);
                }
                Err(error)
            }
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

/// The name of a set's child znode for `element`: `e-` and its JSON text, escaped.
fn element_name(element: &Value) -> String {
    format!("{ELEMENT_PREFIX}{}", escape(&element.to_string()))
}

/// The element a set's child znode holds, from its name; `None` for a name that
/// [`element_name`] did not write.
fn element_of(name: &str) -> Option<Value> {
    let text = unescape(name.strip_prefix(ELEMENT_PREFIX)?)?;
    serde_json::from_str(&text).ok()
}

/// The sequence number of a lock's child znode (`lock-0000000007` → 7); `None` for
/// any other name.
fn lock_sequence(name: &str) -> Option<i64> {
    let digits = name.strip_prefix(LOCK_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where `ours` (a sequence number) stands among a lock's `children`: `Ok(None)` when
/// it is the lowest (the lock is ours), `Ok(Some(name))` for the child just before it
/// (the one to wait for), `Err(())` when ours is not among them (our znode is gone:
/// its session ended). Names that are not lock children are ignored.
fn predecessor(children: &[String], ours: i64) -> Result<Option<String>, ()> {
    if !children.iter().any(|c| lock_sequence(c) == Some(ours)) {
        return Err(());
    }
    Ok(children
        .iter()
        .filter_map(|c| lock_sequence(c).map(|n| (n, c)))
        .filter(|(n, _)| *n < ours)
        .max_by_key(|(n, _)| *n)
        .map(|(_, c)| c.clone()))
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
mod tests {
    use super::*;
    use serde_json::json;

    fn fresh() -> KeyState<Option<i32>> {
        KeyState {
            version: None,
            value: None,
            written: false,
        }
    }

    #[test]
    fn keys_become_root_znodes_escaped() {
        assert_eq!(path("x"), "/faultline-x");
        assert_eq!(path("k-1_2"), "/faultline-k-1_2");
        assert_eq!(path("a/b.c"), "/faultline-a%2Fb%2Ec");
        assert_eq!(path("é"), "/faultline-%C3%A9");
    }

    #[test]
    fn set_elements_round_trip_through_child_names() {
        for element in [json!(12), json!(-3), json!("a/b c"), json!([1, "é"])] {
            let name = element_name(&element);
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_%".contains(&b)),
                "{name}"
            );
            assert_eq!(element_of(&name), Some(element));
        }
        assert_eq!(element_name(&json!(7)), "e-7");
        assert_eq!(element_of("lock-0000000001"), None, "not an element");
        assert_eq!(element_of("e-%4"), None, "a cut escape");
        assert_eq!(element_of("e-%ZZ"), None, "not hex");
        assert_eq!(element_of("e-nope"), None, "not JSON");
        assert_eq!(unescape("a%2Fb"), Some("a/b".into()));
    }

    #[test]
    fn lock_children_are_ordered_by_sequence() {
        assert_eq!(lock_sequence("lock-0000000007"), Some(7));
        assert_eq!(lock_sequence("lock-2147483648000"), Some(2_147_483_648_000));
        assert_eq!(lock_sequence("lock-"), None);
        assert_eq!(lock_sequence("lock-12a"), None);
        assert_eq!(lock_sequence("e-12"), None);
        let children: Vec<String> = [
            "lock-0000000010",
            "lock-0000000003",
            "e-1",
            "lock-0000000007",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        assert_eq!(predecessor(&children, 3), Ok(None), "the lowest holds it");
        assert_eq!(
            predecessor(&children, 7),
            Ok(Some("lock-0000000003".into()))
        );
        assert_eq!(
            predecessor(&children, 10),
            Ok(Some("lock-0000000007".into())),
            "the one just before, not the lowest"
        );
        assert_eq!(predecessor(&children, 5), Err(()), "ours is gone");
        assert_eq!(predecessor(&[], 1), Err(()));
    }

    #[test]
    fn a_dropped_session_loses_its_locks() {
        let mut store = ZookeeperStore::new(
            &[("n1".into(), "127.0.0.1:1".into())],
            0,
            Duration::from_secs(1),
            ReadMode::Linearizable,
        );
        let held = Held {
            owner: json!(4),
            node: "/faultline-lock0/lock-0000000001".into(),
        };
        store.held.insert("lock0".into(), held);
        store.drop_session();
        assert!(store.held.is_empty());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let release = |owner| Recipe::Release {
            key: "lock0".into(),
            owner,
        };
        let err = |e: &str| StoreError::Fail {
            error: e.into(),
            node: Some("n1".into()),
        };
        // Another process's release is not the holder's; the holder hears once.
        let other = runtime.block_on(store.recipe(&release(json!(5))));
        assert_eq!(other.unwrap_err(), err("not-held"));
        let holder = runtime.block_on(store.recipe(&release(json!(4))));
        assert_eq!(holder.unwrap_err(), err("lock-lost"));
        let again = runtime.block_on(store.recipe(&release(json!(4))));
        assert_eq!(again.unwrap_err(), err("not-held"));
        // An acquire by the holder hears it too, before any request is sent (the
        // server here refuses connections, which would be `unavailable`).
        store.lost.insert("lock0".into(), json!(4));
        let acquire = Recipe::Acquire {
            key: "lock0".into(),
            owner: json!(4),
        };
        let heard = runtime.block_on(store.recipe(&acquire));
        assert_eq!(heard.unwrap_err(), err("lock-lost"));
        assert!(store.lost.is_empty());
    }

    #[test]
    fn snapshots_read_versions_and_absent_keys() {
        let stat = |version| zk::Stat {
            czxid: 1,
            mzxid: 1,
            pzxid: 1,
            ctime: 0,
            mtime: 0,
            version,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 0,
            num_children: 0,
        };
        let state = snapshot(
            &["a", "b"],
            vec![
                zk::MultiReadResult::Error {
                    err: zk::Error::NoNode,
                },
                zk::MultiReadResult::Data {
                    data: b"[1,2]".to_vec(),
                    stat: stat(4),
                },
            ],
        )
        .unwrap();
        assert_eq!(state["a"], fresh());
        assert_eq!(state["b"].version, Some(4));
        assert_eq!(state["b"].value, Some(json!([1, 2])));
        assert!(snapshot(&["a"], Vec::new()).is_err(), "wrong shape");
        let bad = snapshot(
            &["a"],
            vec![zk::MultiReadResult::Data {
                data: b"not json".to_vec(),
                stat: stat(1),
            }],
        );
        assert_eq!(bad.unwrap_err(), "bad-value");
    }

    #[test]
    fn reasons_are_short_and_stable() {
        assert_eq!(reason(&StepError::Timeout), "timeout");
        assert_eq!(
            reason(&StepError::Zk(zk::Error::ConnectionLoss)),
            "connection-lost"
        );
        assert_eq!(reason(&StepError::Zk(zk::Error::BadVersion)), "bad-version");
        assert_eq!(kebab("NoNode"), "no-node");
        assert_eq!(kebab("UnexpectedErrorCode(3)"), "unexpected-error-code");
    }

    #[test]
    fn an_unreachable_server_fails_the_call_unavailable() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let nodes = vec![("n1".to_string(), refused)];
        let mut store =
            ZookeeperStore::new(&nodes, 0, Duration::from_secs(2), ReadMode::Linearizable);
        let started = std::time::Instant::now();
        let err = runtime
            .block_on(store.txn(&[Micro::Write("x".into(), json!(1))]))
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::Fail {
                error: "unavailable".into(),
                node: Some("n1".into())
            }
        );
        assert!(started.elapsed() >= CONNECT_BACKOFF);
    }
}
