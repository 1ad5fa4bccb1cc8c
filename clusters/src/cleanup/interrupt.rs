//! Teardown on Ctrl-C: [`teardown_on_interrupt`] registers a run's [`Registry`] so that
//! the first SIGINT or SIGTERM the controller receives tears down every registered run,
//! then exits the process with 130 (SIGINT) or 143 (SIGTERM).
//!
//! ```no_run
//! use std::sync::Arc;
//! use faultline_clusters::{NetnsCluster, cleanup::teardown_on_interrupt};
//!
//! let cluster = NetnsCluster::create("/tmp/run".as_ref(), 3).unwrap();
//! let _guard = teardown_on_interrupt(Arc::clone(cluster.registry())).unwrap();
//! // … the run: Ctrl-C now removes the cluster's namespaces, links and processes …
//! cluster.teardown().unwrap();
//! ```
//!
//! The handler is one thread, started by the first call and kept for the life of the
//! process (signals are received with `signal-hook`, so nothing runs in signal context).
//! Several registries may be registered at once (a global list); dropping an
//! [`InterruptGuard`] unregisters its registry. While teardown runs, further SIGINTs and
//! SIGTERMs are ignored, so a second Ctrl-C cannot abort it; the removal commands run in
//! their own process groups, so a terminal's Ctrl-C does not reach them either. Once the
//! handler is installed, SIGINT and SIGTERM always end the process with 130 or 143, even
//! when no registry is registered (any more).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::Registry;
use crate::error::CleanupError;

/// The registries to tear down on a signal, with the id of their guard.
static REGISTERED: Mutex<Vec<(u64, Arc<Registry>)>> = Mutex::new(Vec::new());
/// Whether the handler thread runs.
static INSTALLED: Mutex<bool> = Mutex::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Keeps a registry registered for teardown on SIGINT/SIGTERM; dropping it unregisters
/// the registry (the handler stays installed).
#[derive(Debug)]
#[must_use = "dropping the guard unregisters the registry at once"]
pub struct InterruptGuard {
    id: u64,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        registered().retain(|(id, _)| *id != self.id);
    }
}

/// Registers `registry` for teardown on the controller's first SIGINT or SIGTERM, after
/// which the process exits with 130 (SIGINT) or 143 (SIGTERM); installs the handler on
/// first use. Teardown failures are printed to standard error (the failed resources stay
/// in their state file for `faultline clean`). The error: the handler could not be
/// installed.
pub fn teardown_on_interrupt(registry: Arc<Registry>) -> Result<InterruptGuard, CleanupError> {
    {
        let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
        if !*installed {
            let signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| {
                CleanupError::io("install the SIGINT/SIGTERM handler for", registry.path(), e)
            })?;
            std::thread::Builder::new()
                .name("faultline-interrupt".into())
                .spawn(move || handle(signals))
                .map_err(|e| {
                    CleanupError::io("start the SIGINT/SIGTERM handler for", registry.path(), e)
                })?;
            *installed = true;
        }
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    registered().push((id, registry));
    Ok(InterruptGuard { id })
}

/// The handler thread: waits for the first signal, tears down, exits. Signals arriving
/// meanwhile stay pending in `signals`, unread: ignored.
fn handle(mut signals: Signals) {
    let Some(signal) = signals.forever().next() else {
        return;
    };
    let name = if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    // Taken out of the list: a guard dropped meanwhile cannot block on the lock.
    let registries: Vec<Arc<Registry>> = std::mem::take(&mut *registered())
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    if !registries.is_empty() {
        eprintln!(
            "faultline: {name}: tearing down {} run(s)…",
            registries.len()
        );
    }
    // Last registered first, like the resources of one run.
    for registry in registries.iter().rev() {
        if let Err(e) = registry.teardown() {
            eprintln!("faultline: {e} (run `faultline clean` to retry)");
        }
    }
    std::process::exit(128 + signal);
}

fn registered() -> MutexGuard<'static, Vec<(u64, Arc<Registry>)>> {
    REGISTERED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The registries registered now, in order of registration (for tests).
#[cfg(test)]
pub(super) fn registered_paths() -> Vec<std::path::PathBuf> {
    registered()
        .iter()
        .map(|(_, r)| r.path().to_path_buf())
        .collect()
}
