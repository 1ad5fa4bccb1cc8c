//! Workloads: what the clients do and how it is checked. A [`Workload`] is a generator of
//! client operations (history spec's `f` and `value`), a [`WorkloadClient`] that performs
//! each operation as transactions on a [`Store`], optional setup transactions and a final
//! generator (run after the faults are healed), and the [`Checker`] that judges the
//! history, built. [`store_keys`] tells which store keys a history's operation touched.
//!
//! | workload | operations | checker |
//! |---|---|---|
//! | `register` | `read`/`write`/`cas` on independent keys | linearizable, cas-register |
//! | `list-append` | `txn` of `append`/`r` | Elle, list-append |
//! | `rw-register` | `txn` of `w`/`r` | Elle, rw-register |
//! | `bank` | `transfer`/`read` over a few accounts | bank: constant total, no negative balance |
//! | `set` | `add` then final `read`s | set: lost, unexpected, recovered elements |
//! | `counter` | `add`/`read` | counter: reads within acknowledged/attempted bounds |
//! | `lock` | `acquire`/`release` on independent keys | linearizable, mutex |

mod bank;
mod counter;
mod keys;
mod lock;
mod register;
mod set;
mod txn;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use faultline_checker::Checker;
use faultline_checker::elle::ConsistencyModel;
use faultline_checker::history::{Key, OpType, Process};
use faultline_generator::{BoxGen, OpSpec};
use serde_json::Value;

use crate::store::{Micro, Recipe, Store, StoreError, TxnOk};

pub use keys::store_keys;

/// The workloads Elle checks, which take a consistency model
/// ([`WorkloadOptions::consistency_model`]).
pub const ELLE_WORKLOADS: &[&str] = &["list-append", "rw-register"];

/// Every workload's name, for flags and messages.
pub const NAMES: &[&str] = &[
    "register",
    "list-append",
    "rw-register",
    "bank",
    "set",
    "counter",
    "lock",
];

/// How a completed operation ended, ready for the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `ok`, `fail` or `info`.
    pub op_type: OpType,
    /// The result on `ok` (the invocation's value otherwise).
    pub value: Value,
    /// The node that answered.
    pub node: Option<String>,
    /// Why, on `fail` or `info`.
    pub error: Option<String>,
}

impl Completion {
    /// An `ok` completion with `value`, answered by `node`.
    pub fn ok(value: Value, node: String) -> Completion {
        Completion {
            op_type: OpType::Ok,
            value,
            node: Some(node),
            error: None,
        }
    }

    /// A `fail` completion: certainly no effect.
    pub fn fail(value: Value, error: impl Into<String>, node: Option<String>) -> Completion {
        Completion {
            op_type: OpType::Fail,
            value,
            node,
            error: Some(error.into()),
        }
    }

    /// An `info` completion: unknown outcome.
    pub fn info(value: Value, error: impl Into<String>, node: Option<String>) -> Completion {
        Completion {
            op_type: OpType::Info,
            value,
            node,
            error: Some(error.into()),
        }
    }

    /// The completion of a store error, keeping the invocation's value.
    pub fn from_error(value: Value, error: StoreError) -> Completion {
        match error {
            StoreError::Fail { error, node } => Completion::fail(value, error, node),
            StoreError::Info { error, node } => Completion::info(value, error, node),
        }
    }

    /// A completion for an operation the client could not express (a bug in a
    /// generator): `fail`, since nothing was sent.
    pub fn malformed(op: &OpSpec) -> Completion {
        Completion::fail(
            op.value.clone(),
            format!("malformed-operation: cannot perform {} {}", op.f, op.value),
            None,
        )
    }
}

/// What [`WorkloadClient::invoke`] returns.
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Completion> + Send + 'a>>;

/// Performs a workload's operations on a store (Jepsen's `Client`, minus the
/// connection, which the [`Store`] owns).
pub trait WorkloadClient: Send + Sync {
    /// Performs `op` for `process` with `store`. Never panics: a store error becomes a
    /// `fail` or `info` completion.
    fn invoke<'a>(
        &'a self,
        store: &'a mut dyn Store,
        process: Process,
        op: &'a OpSpec,
    ) -> InvokeFuture<'a>;
}

/// Settings shared by workloads; each uses the ones that concern it.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Client threads per independent key (register, lock).
    pub threads_per_key: usize,
    /// Operations on one key before its group moves to a fresh key (register, lock).
    pub ops_per_key: u64,
    /// Distinct values written to a register (register).
    pub value_count: u64,
    /// Active keys at a time (list-append, rw-register).
    pub active_keys: usize,
    /// Micro-ops per transaction, at most (list-append, rw-register).
    pub max_txn_length: usize,
    /// Writes to one key before it is replaced by a fresh one (list-append, rw-register).
    pub max_writes_per_key: u64,
    /// Accounts (bank).
    pub accounts: usize,
    /// The bank's total (bank).
    pub total: i64,
    /// The model Elle checks against (list-append, rw-register).
    pub consistency_model: ConsistencyModel,
}

impl Default for WorkloadOptions {
    fn default() -> WorkloadOptions {
        WorkloadOptions {
            threads_per_key: 5,
            ops_per_key: 200,
            value_count: 5,
            active_keys: 8,
            max_txn_length: 4,
            max_writes_per_key: 32,
            accounts: 5,
            total: 100,
            consistency_model: ConsistencyModel::default(),
        }
    }
}

/// A workload, ready to run.
pub struct Workload {
    /// Its name (one of [`NAMES`]).
    pub name: &'static str,
    /// Client operations for as long as the run lasts (the run limits it in time).
    pub generator: BoxGen,
    /// Client operations after the faults are healed (e.g. final reads), if any.
    pub final_generator: Option<BoxGen>,
    /// Transactions to run once, before any client operation (e.g. opening balances).
    pub setup: Vec<Vec<Micro>>,
    /// How operations are performed.
    pub client: Box<dyn WorkloadClient>,
    /// How the history is checked (shared: the run keeps it while the rest of the
    /// workload is consumed by the interpreter).
    pub checker: Arc<dyn Checker>,
}

/// The workload called `name`, or an error listing the names.
pub fn by_name(name: &str, options: &WorkloadOptions) -> Result<Workload, String> {
    Ok(match name {
        "register" => register::workload(options),
        "list-append" => txn::workload(txn::Kind::ListAppend, options),
        "rw-register" => txn::workload(txn::Kind::RwRegister, options),
        "bank" => bank::workload(options)?,
        "set" => set::workload(options),
        "counter" => counter::workload(),
        "lock" => lock::workload(options),
        _ => {
            return Err(format!(
                "unknown workload `{name}`: expected one of {}",
                NAMES.join(", ")
            ));
        }
    })
}

/// Runs `ops` on `store` and completes with `ok(values)` on success.
async fn run_txn(
    store: &mut dyn Store,
    invoked: &Value,
    ops: &[Micro],
    ok: impl FnOnce(Vec<Value>) -> Value,
) -> Completion {
    match store.txn(ops).await {
        Ok(TxnOk { values, node }) => Completion::ok(ok(values), node),
        Err(error) => Completion::from_error(invoked.clone(), error),
    }
}

/// Runs a set or lock `recipe` on `store` and completes with `ok(values)` on success.
async fn run_recipe(
    store: &mut dyn Store,
    invoked: &Value,
    recipe: &Recipe,
    ok: impl FnOnce(Vec<Value>) -> Value,
) -> Completion {
    match store.recipe(recipe).await {
        Ok(TxnOk { values, node }) => Completion::ok(ok(values), node),
        Err(error) => Completion::from_error(invoked.clone(), error),
    }
}

/// The store key of an independent history key under `prefix`.
fn store_key(prefix: &str, key: Option<&Key>) -> String {
    match key {
        Some(Key::Int(i)) => format!("{prefix}{i}"),
        Some(Key::Str(s)) => format!("{prefix}{s}"),
        None => prefix.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod testing;
