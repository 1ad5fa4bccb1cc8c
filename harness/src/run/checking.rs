//! Checking a run's history with its workload's checker (the same checkers, run the same
//! way, as `faultline check`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use faultline_checker::bank::BankOptions;
use faultline_checker::counter::CounterOptions;
use faultline_checker::elle::ElleOptions;
use faultline_checker::set::SetOptions;
use faultline_checker::{History, Verdict};
use faultline_workloads::workload::CheckSpec;

use crate::check::{Choice, Limits, run_checker, write_artifacts};

/// The checker's name in `results.json` and its verdict. Elle's cycle drawings go to
/// `run_dir/elle/`.
pub fn check(
    history: &History,
    spec: &CheckSpec,
    time_limit: Duration,
    run_dir: &Path,
) -> Result<(&'static str, Verdict)> {
    let choice = match spec {
        // Our own runs write JSONL: a read of null says the register is null.
        CheckSpec::Linearizable(model) => Choice::Linearizable(*model, Default::default()),
        CheckSpec::Elle(workload) => Choice::Elle(ElleOptions::new(*workload)),
        CheckSpec::Bank { total, accounts } => Choice::Bank(BankOptions {
            total: *total,
            accounts: Some(accounts.clone()),
            negative_allowed: false,
        }),
        CheckSpec::Set => Choice::Set(SetOptions::default()),
        CheckSpec::Counter => Choice::Counter(CounterOptions::default()),
    };
    let limits = Limits {
        time_limit,
        memory_limit_mib: None,
        draw: true,
    };
    let checked = run_checker(history, &choice, &limits)?;
    write_artifacts(run_dir, &checked.artifacts)?;
    Ok((choice.name(), checked.verdict))
}
