//! The generator protocol: [`Generator`], what it answers ([`GenOp`]) and what it
//! produces ([`OpSpec`]).

use faultline_checker::history::{Key, Op, OpType, Process};
use serde_json::Value;

use crate::context::Context;

/// What an operation does, before it has a process, a time or an index: `f`, the
/// optional independent `key`, and the invocation `value` (history spec).
#[derive(Debug, Clone, PartialEq)]
pub struct OpSpec {
    /// The operation's function, e.g. `read`, `write`, `cas`, `start-partition`.
    pub f: String,
    /// The independent key the operation acts on, if any.
    pub key: Option<Key>,
    /// The invocation's argument (`null` for reads).
    pub value: Value,
}

impl OpSpec {
    /// An operation with no key.
    pub fn new(f: impl Into<String>, value: Value) -> OpSpec {
        OpSpec {
            f: f.into(),
            key: None,
            value,
        }
    }

    /// The same operation on `key`.
    pub fn with_key(mut self, key: Key) -> OpSpec {
        self.key = Some(key);
        self
    }

    /// The history's `invoke` event for this operation.
    pub fn invoke(&self, index: u64, time: u64, process: Process) -> Op {
        let time = i64::try_from(time).unwrap_or(i64::MAX);
        let op = Op::new(
            index,
            time,
            process,
            OpType::Invoke,
            &self.f,
            self.value.clone(),
        );
        match &self.key {
            Some(key) => op.with_key(key.clone()),
            None => op,
        }
    }
}

/// A generator's answer to [`Generator::op`].
#[derive(Debug, Clone, PartialEq)]
pub enum GenOp {
    /// Invoke `op` on `process` now. `process` is one of the context's free processes.
    Op {
        /// The free process that performs the operation.
        process: Process,
        /// The operation.
        op: OpSpec,
    },
    /// Nothing to do yet. Ask again at `retry_at` (nanoseconds since the start, later
    /// than now), or after the next event, whichever comes first; with `None`, only
    /// after the next event.
    Pending {
        /// When to ask again at the latest, if no event comes first.
        retry_at: Option<u64>,
    },
    /// Nothing more, ever: from now on this generator answers `Exhausted` to every call.
    Exhausted,
}

impl GenOp {
    /// Pending until the next event.
    pub const WAIT: GenOp = GenOp::Pending { retry_at: None };
}

/// Jepsen's generator protocol: a stateful source of operations, driven by a single
/// caller.
///
/// Contracts, for implementors and for the combinators that wrap them:
///
/// - Generators are pure: no I/O, no sleeping, no clock. Time comes from
///   [`Context::time`] and randomness only from [`Context::rng`], so that the same seed
///   and the same completions replay the same operations.
/// - Answering `GenOp::Op` *commits* the operation: the driver invokes it at once, so the
///   generator advances its state as it answers. A combinator must therefore ask a
///   child only when it will pass the child's operation on.
/// - `GenOp::Op` names a process that is free in the context the generator was given.
/// - After `GenOp::Exhausted`, every later call answers `GenOp::Exhausted`.
pub trait Generator: Send {
    /// Asks for the next operation at `ctx.time()`. Must not block, and must not answer
    /// `Pending { retry_at: Some(t) }` with `t <= ctx.time()`.
    fn op(&mut self, ctx: &mut Context) -> GenOp;

    /// Tells the generator that `event` happened: the invocation the driver just made or
    /// a completion (`ok`, `fail`, `info`), with `ctx` as it is after the event (the
    /// process is busy after an invoke, free after a completion; after `info` its
    /// replacement is listed instead). Events that do not concern the generator are
    /// ignored. Must not produce operations.
    fn update(&mut self, ctx: &mut Context, event: &Op);

    /// This generator as a [`BoxGen`], to mix generators of different types.
    fn boxed(self) -> BoxGen
    where
        Self: Sized + 'static,
    {
        Box::new(self)
    }
}

/// A generator behind a box: the element type of `seq`, `any`, `mix` and `phases`.
pub type BoxGen = Box<dyn Generator>;

impl<G: Generator + ?Sized> Generator for Box<G> {
    fn op(&mut self, ctx: &mut Context) -> GenOp {
        (**self).op(ctx)
    }

    fn update(&mut self, ctx: &mut Context, event: &Op) {
        (**self).update(ctx, event)
    }
}

/// The earlier of two `retry_at` times, where `None` means "only after an event":
/// the earliest `Some`, or `None` if both are `None`.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invoke_builds_the_history_event() {
        let spec = OpSpec::new("cas", json!([1, 2])).with_key(Key::Str("k7".into()));
        let op = spec.invoke(3, 1_000, Process::Client(2));
        assert_eq!(op.index, 3);
        assert_eq!(op.time, 1_000);
        assert_eq!(op.op_type, OpType::Invoke);
        assert_eq!(op.f, "cas");
        assert_eq!(op.key, Some(Key::Str("k7".into())));
        assert_eq!(op.value, json!([1, 2]));
    }

    #[test]
    fn earliest_prefers_a_time_over_waiting() {
        assert_eq!(earliest(Some(5), Some(3)), Some(3));
        assert_eq!(earliest(None, Some(3)), Some(3));
        assert_eq!(earliest(Some(5), None), Some(5));
        assert_eq!(earliest(None, None), None);
    }
}
