//! Checking a run's history with its workload's checker (the same checkers, run the same
//! way, as `faultline check`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use faultline_checker::{CheckOptions, Checked, Checker, History};

use crate::check::write_artifacts;

/// Checks `history` with `checker`, giving up after `time_limit`. Elle's cycle drawings
/// go to `run_dir/elle/`.
pub fn check(
    history: &History,
    checker: &dyn Checker,
    time_limit: Duration,
    run_dir: &Path,
) -> Result<Checked> {
    let options = CheckOptions {
        time_limit,
        memory_limit_mib: None,
        draw: true,
    };
    let checked = checker.check(history, &options)?;
    write_artifacts(run_dir, &checked.artifacts)?;
    Ok(checked)
}
