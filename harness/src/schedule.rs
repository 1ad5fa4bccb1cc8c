//! `faultline schedule RUN_DIR`: a run's recorded faults (`nemesis.jsonl`) as a TOML
//! schedule on stdout, to edit and give back with `--nemesis-schedule`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use faultline_nemesis::schedule::{file, replay};

use crate::error::UsageError;
use crate::output::say_raw;

/// Arguments of `faultline schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// A run's directory (its nemesis.jsonl is read), a nemesis.jsonl, or a TOML
    /// schedule (printed back in the converter's form, e.g. to check it).
    pub path: PathBuf,
}

/// Runs `faultline schedule`: prints the schedule that replays the run's faults.
pub fn run(args: &ScheduleArgs) -> Result<()> {
    let schedule = file::load(&args.path).map_err(|e| UsageError(e.to_string()))?;
    say_raw!("{}", replay::to_toml(&schedule.steps));
    Ok(())
}
