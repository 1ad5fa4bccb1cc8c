//! `faultline clean`: removes what crashed or killed controllers left on this machine
//! (namespaces, links, nft tables and rules, node processes…) and each run's directory
//! on its SSH hosts (`/tmp/faultline-RUN`), as recorded in the state files of runs under
//! the store directory. It needs root, which it checks first.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::error::UsageError;
use crate::output::say;

/// Arguments of `faultline clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The store directory whose runs to clean (searched 4 levels deep for state files).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
}

/// Cleans, and prints one line of what was done.
pub fn run(args: &CleanArgs) -> Result<()> {
    check_root(faultline_clusters::netns::effective_uid())?;
    if !args.store.is_dir() {
        return Err(UsageError(format!(
            "{}: no such store directory (pass --store DIR)",
            args.store.display()
        ))
        .into());
    }
    let report = faultline_clusters::clean(&args.store)
        .with_context(|| format!("cleaning {}", args.store.display()))?;
    say!(
        "cleaned {} run(s), {} resource(s); skipped {} run(s) whose controller is still running",
        report.cleaned.len(),
        report.removed,
        report.skipped.len()
    );
    for skipped in &report.skipped {
        say!("skipped {}", skipped.display());
    }
    Ok(())
}

/// Refuses to clean without root (uid `uid`): removing namespaces, links, nft tables,
/// mounts and other users' processes would fail one by one.
fn check_root(uid: Option<u32>) -> Result<(), UsageError> {
    if uid == Some(0) {
        return Ok(());
    }
    let uid = uid.map_or_else(|| "unknown".to_string(), |u| u.to_string());
    Err(UsageError(format!(
        "faultline clean needs root (it removes network namespaces, nft tables, mounts and \
         the processes of runs), but this runs as uid {uid}: run it as root, or with sudo"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_may_clean() {
        assert!(check_root(Some(0)).is_ok());
        for uid in [Some(1000), Some(65534), None] {
            let err = check_root(uid).unwrap_err().0;
            assert!(err.starts_with("faultline clean needs root"), "{err}");
            assert!(err.contains("run it as root, or with sudo"), "{err}");
        }
        assert!(check_root(Some(65534)).unwrap_err().0.contains("uid 65534"));
    }
}
