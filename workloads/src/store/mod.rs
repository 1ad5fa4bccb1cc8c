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
mod staged;
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

/// An operation of the set and lock workloads, which some databases have a way of their
/// own to do (ZooKeeper's recipes: a child znode per element of a set, a lock of
/// ephemeral sequential znodes). Each also has a generic form, one micro-op
/// ([`Recipe::generic`]), which is what every store but ZooKeeper's runs.
///
/// Why a hook of its own rather than the ZooKeeper store recognising micro-ops by their
/// shape: a lone `Append` is also a one-micro-op list-append transaction, and a `Cas`
/// from `null` also a register's, so the shape alone cannot tell a set or a lock from
/// them, and guessing from key names would tie the store to the workloads' key prefixes.
/// [`Store::recipe`] has a default that runs the generic form, so the other stores
/// (and the workloads' test store) are unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipe {
    /// Adds `element` to the set `key` (generic: `Append(key, element)`). Adding an
    /// element that is already there is `ok`.
    SetAdd {
        /// The set.
        key: String,
        /// The element.
        element: Value,
    },
    /// Reads the set `key` (generic: `Read(key)`): the only value is the list of its
    /// elements, or `null` for a set never added to.
    SetRead {
        /// The set.
        key: String,
    },
    /// Takes the lock `key` for `owner` (generic: `Cas(key, null, owner)`); `Fail` when
    /// it cannot be had.
    Acquire {
        /// The lock.
        key: String,
        /// The process taking it.
        owner: Value,
    },
    /// Releases the lock `key` that `owner` holds (generic: `Cas(key, owner, null)`);
    /// `Fail` when `owner` does not hold it.
    Release {
        /// The lock.
        key: String,
        /// The process releasing it.
        owner: Value,
    },
}

impl Recipe {
    /// The recipe as one micro-op, for stores without a way of their own.
    pub fn generic(&self) -> Micro {
        match self {
            Recipe::SetAdd { key, element } => Micro::Append(key.clone(), element.clone()),
            Recipe::SetRead { key } => Micro::Read(key.clone()),
            Recipe::Acquire { key, owner } => Micro::Cas(key.clone(), Value::Null, owner.clone()),
            Recipe::Release { key, owner } => Micro::Cas(key.clone(), owner.clone(), Value::Null),
        }
    }
}

/// What [`Store::txn`] returns.
pub type TxnFuture<'a> = Pin<Box<dyn Future<Output = Result<TxnOk, StoreError>> + Send + 'a>>;

/// A database client bound to one client thread (Jepsen's `Client`, reduced to one
/// primitive). Implementations bound every call in time and never panic on bad answers.
pub trait Store: Send {
    /// Runs `ops` atomically, in order (later micro-ops see earlier ones).
    fn txn<'a>(&'a mut self, ops: &'a [Micro]) -> TxnFuture<'a>;

    /// Runs a set or lock operation: by default its generic form through
    /// [`Store::txn`]; a store with a way of its own overrides this (ZooKeeper's).
    /// Answers like `txn` with one value.
    fn recipe<'a>(&'a mut self, recipe: &'a Recipe) -> TxnFuture<'a> {
        Box::pin(async move {
            let ops = [recipe.generic()];
            self.txn(&ops).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recipes_have_one_micro_op_as_their_generic_form() {
        let k = || "k".to_string();
        assert_eq!(
            Recipe::SetAdd {
                key: k(),
                element: json!(3)
            }
            .generic(),
            Micro::Append(k(), json!(3))
        );
        assert_eq!(Recipe::SetRead { key: k() }.generic(), Micro::Read(k()));
        assert_eq!(
            Recipe::Acquire {
                key: k(),
                owner: json!(2)
            }
            .generic(),
            Micro::Cas(k(), Value::Null, json!(2))
        );
        assert_eq!(
            Recipe::Release {
                key: k(),
                owner: json!(2)
            }
            .generic(),
            Micro::Cas(k(), json!(2), Value::Null)
        );
    }
}
