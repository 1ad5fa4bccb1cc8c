//! Which model to check against, and what values mean for it: the initial state and
//! what a read of `null` says.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use crate::history::{History, InputError};
use crate::shape::{TxnShape, txn_shape};

/// Which sequential specification to check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// `read`/`write` register.
    Register,
    /// `read`/`write`/`cas` register.
    CasRegister,
    /// `acquire`/`release` lock.
    Mutex,
    /// `add`/`read` set (reads return the whole set).
    Set,
    /// `enqueue`/`dequeue` FIFO queue.
    FifoQueue,
    /// `enqueue`/`dequeue` queue whose dequeues may return any queued element
    /// (Knossos's `unordered-queue`).
    UnorderedQueue,
    /// Transactions of `[read|write, key, value]` micro-ops over many registers, each
    /// applied atomically (Knossos's `multi-register`).
    MultiRegister,
}

impl ModelKind {
    /// Every model, for listing in messages.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::UnorderedQueue,
        ModelKind::MultiRegister,
    ];

    /// The model's name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::FifoQueue => "fifo-queue",
            ModelKind::UnorderedQueue => "unordered-queue",
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// Parses a model name; the error lists the known ones.
    pub fn parse(name: &str) -> Result<ModelKind, InputError> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                InputError::Unsupported(format!(
                    "unknown model `{name}`: use one of {}",
                    ModelKind::ALL.map(ModelKind::name).join(", ")
                ))
            })
    }

    /// Whether the model has registers, whose reads of `null` [`NilReads`] governs and
    /// which take an initial value.
    pub fn has_registers(self) -> bool {
        matches!(
            self,
            ModelKind::Register | ModelKind::CasRegister | ModelKind::MultiRegister
        )
    }

    /// Picks a model from the history's client operations: transactions of
    /// `read`/`write` micro-ops (by their values, whatever `f` says) → multi-register;
    /// else by the functions: `read`/`write`/`cas` → cas-register,
    /// `acquire`/`release` → mutex, `add`/`read` → set, `enqueue`/`dequeue` →
    /// fifo-queue.
    pub fn infer(history: &History) -> Result<ModelKind, InputError> {
        if txn_shape(history) == Some(TxnShape::MultiRegister) {
            return Ok(ModelKind::MultiRegister);
        }
        let fs: HashSet<&str> = history
            .ops()
            .iter()
            .filter(|op| op.is_client())
            .map(|op| op.f.as_str())
            .collect();
        let within = |allowed: &[&str]| fs.iter().all(|f| allowed.contains(f));
        let model = if fs.is_empty() || within(&["read", "write", "cas"]) {
            ModelKind::CasRegister
        } else if within(&["acquire", "release"]) {
            ModelKind::Mutex
        } else if within(&["add", "read"]) {
            ModelKind::Set
        } else if within(&["enqueue", "dequeue"]) {
            ModelKind::FifoQueue
        } else {
            let mut names: Vec<&str> = fs.into_iter().collect();
            names.sort_unstable();
            return Err(InputError::Unsupported(format!(
                "{}: cannot pick a model for operations {}: pass --model ({})",
                history.source_name(),
                names.join(", "),
                ModelKind::ALL.map(ModelKind::name).join(", ")
            )));
        };
        Ok(model)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a completed read of `null` says about a register (register, cas-register and
/// multi-register models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NilReads {
    /// Faultline's history spec: the register held `null` (was unset).
    #[default]
    Null,
    /// Knossos: nothing (the read's value is unknown), so the read is legal in any
    /// state. Used for histories imported from Jepsen's EDN.
    Unknown,
}

impl NilReads {
    /// The name in `results.json`: `null` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            NilReads::Null => "null",
            NilReads::Unknown => "unknown",
        }
    }
}

/// What values mean, beyond the model's operations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Semantics {
    /// The registers' initial value: any JSON value for register and cas-register; for
    /// multi-register an object of key → initial value (keys not named start `null`).
    /// `null` (the default): unset.
    pub initial_value: Value,
    /// What a completed read of `null` says.
    pub nil_reads: NilReads,
}

impl Semantics {
    /// Checks that the initial value fits `model`.
    pub fn validate(&self, model: ModelKind) -> Result<(), InputError> {
        let fits = match model {
            _ if self.initial_value.is_null() => true,
            ModelKind::Register | ModelKind::CasRegister => true,
            ModelKind::MultiRegister => self.initial_value.is_object(),
            _ => false,
        };
        if fits {
            return Ok(());
        }
        Err(InputError::Unsupported(match model {
            ModelKind::MultiRegister => format!(
                "the multi-register's initial value must be a JSON object of key → value, got {}",
                self.initial_value
            ),
            _ => format!(
                "an initial value applies only to the register, cas-register and multi-register models, not {model}"
            ),
        }))
    }

    /// The multi-register's initial value of `key` (a string key or the decimal text
    /// of an integer key names it in the object); `null` when not given.
    pub fn initial_of_key(&self, key: &Value) -> Value {
        let name = match key {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Value::Null,
        };
        self.initial_value
            .get(name.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    }
}
