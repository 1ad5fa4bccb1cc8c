//! A process's client as the interpreter sees it, whatever it is (a workload's client on
//! a store, or an external program): [`Session`], made by a [`SessionFactory`], and the
//! [`HarnessFailure`] that stops a run rather than becoming an operation's outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use faultline_checker::Process;
use faultline_generator::OpSpec;
use faultline_workloads::workload::Completion;

/// What [`Session::invoke`] returns: the completion, or a harness failure (the operation
/// is then recorded as `info` and the run stops).
pub type SessionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Completion, HarnessFailure>> + Send + 'a>>;

/// A failure of the harness's side of a client (e.g. a client program that cannot start),
/// which stops the run (exit 255) rather than becoming an operation's outcome.
#[derive(Debug, Clone)]
pub struct HarnessFailure {
    /// The completion to record for the operation (an `info`).
    pub completion: Completion,
    /// Why the run must stop.
    pub reason: String,
}

/// One logical process's client (Jepsen's opened `Client`): made fresh for each new
/// process number, dropped when the process is retired.
pub trait Session: Send {
    /// Performs `op` for `process`. Bounded in time by the caller too; never panics.
    fn invoke<'a>(&'a mut self, process: Process, op: &'a OpSpec) -> SessionFuture<'a>;
}

/// Makes the session of a new process on client thread `thread`.
pub type SessionFactory = Arc<dyn Fn(usize, Process) -> Box<dyn Session> + Send + Sync>;
