//! `faultline clean`: removes what crashed or killed controllers left on this machine
//! (namespaces, links, nft tables and rules, node processes…), as recorded in the state
//! files of runs under the store directory.

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
