//! Stores: what a workload's client talks to. Every workload maps its operations onto
//! one primitive, an atomic transaction of micro-ops ([`Micro`]), so each database needs
//! one client ([`Store`]): the bundled node's ([`kv::KvStore`]), etcd's
//! ([`etcd::EtcdStore`]), PostgreSQL's ([`postgres::PostgresStore`]) and ZooKeeper's
//! ([`zookeeper::ZookeeperStore`]).
//!
//! A store is bound to one client thread; it connects lazily and reconnects as it must.
//! Its answers follow the history spec: `Ok` took effect, [`StoreError::Fail`] certainly
//! did not, [`StoreError::Info`] may or may not have.

pub mod etcd;
pub mod kv;
pub mod postgres;
pub mod zookeeper;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

/// How a client thread chooses the node it talks to (`--client-routing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Jepsen's: each client thread talks only to its own node, which forwards to its
    /// leader (faultline-kv: `"forward": true`; etcd forwards by itself). Hints are
    /// never followed and nothing fails over, so a partition or a crash between the
    /// node and its leader leaves operations indeterminate (`info`).
    #[default]
    Pinned,
    /// Follow `not-leader` hints to the leader and fail over to the next node when a
    /// connection is refused: fewer indeterminate operations.
    Leader,
}

/// One step of a transaction. Keys are strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Micro {
    /// Reads the key's value (`null` when unset).
    Read(String),
    /// Writes the value.
    Write(String, Value),
    /// Writes `new` if the value equals `old` (`null` = unset); otherwise the whole
    /// transaction aborts with [`StoreError::Fail`] and error `cas-mismatch`.
    Cas(String, Value, Value),
    /// Appends the value to the key's list (unset = empty list).
    Append(String, Value),
    /// Adds the integer to the key's integer (unset = 0).
    Add(String, i64),
}

impl Micro {
    /// The key the micro-op acts on.
    pub fn key(&self) -> &str {
        match self {
            Micro::Read(k)
            | Micro::Write(k, _)
            | Micro::Cas(k, _, _)
            | Micro::Append(k, _)
            | Micro::Add(k, _) => k,
        }
    }
}

/// A committed transaction's results.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnOk {
    /// One value per micro-op, in order: a read's value; for the others, `null`.
    pub values: Vec<Value>,
    /// The node that answered (e.g. `n2`).
    pub node: String,
}

/// Why a transaction did not complete `ok`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Certainly no effect (e.g. `cas-mismatch`, `not-leader` when no retry was left,
    /// connection refused before sending).
    #[error("{error}")]
    Fail {
        /// A short, stable reason, e.g. `cas-mismatch`, `unavailable`.
        error: String,
        /// The node that answered, when one did.
        node: Option<String>,
    },
    /// Unknown outcome (time-out, connection lost after sending).
    #[error("{error}")]
    Info {
        /// A short, stable reason, e.g. `timeout`, `connection-lost`.
        error: String,
        /// The node the request went to.
        node: Option<String>,
    },
}

/// What [`Store::txn`] returns.
pub type TxnFuture<'a> = Pin<Box<dyn Future<Output = Result<TxnOk, StoreError>> + Send + 'a>>;

/// A database client bound to one client thread (Jepsen's `Client`, reduced to one
/// primitive). Implementations bound every call in time and never panic on bad answers.
pub trait Store: Send {
    /// Runs `ops` atomically, in order (later micro-ops see earlier ones).
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a>;
}
