//! Checking a run's history with its workload's checker.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use faultline_checker::elle::{self, ElleOptions};
use faultline_checker::linearizable::{self, LinearizableOptions};
use faultline_checker::{History, Verdict};
use faultline_workloads::workload::CheckSpec;

/// The checker's name in `results.json` and its verdict. Elle's cycle drawings go to
/// `run_dir/elle/`.
pub fn check(
    history: &History,
    spec: &CheckSpec,
    time_limit: Duration,
    run_dir: &Path,
) -> Result<(&'static str, Verdict)> {
    Ok(match spec {
        CheckSpec::Linearizable(model) => {
            let options = LinearizableOptions {
                model: Some(*model),
                time_limit,
                ..LinearizableOptions::default()
            };
            ("linearizable", linearizable::check(history, &options)?)
        }
        CheckSpec::Elle(workload) => {
            let analysis = elle::analyze(history, &ElleOptions::new(*workload))?;
            if !analysis.artifacts.is_empty() {
                let dir = run_dir.join("elle");
                fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for artifact in &analysis.artifacts {
                    for (extension, text) in [("dot", &artifact.dot), ("svg", &artifact.svg)] {
                        let path = dir.join(format!("{}.{extension}", artifact.name));
                        fs::write(&path, text)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                }
            }
            ("elle", analysis.verdict)
        }
        CheckSpec::Bank { total, accounts } => {
            let options = faultline_checker::bank::BankOptions {
                total: *total,
                accounts: Some(accounts.clone()),
                negative_allowed: false,
            };
            ("bank", faultline_checker::bank::check(history, &options)?)
        }
        CheckSpec::Set => {
            let options = faultline_checker::set::SetOptions {
                linearizable: false,
            };
            ("set", faultline_checker::set::check(history, &options)?)
        }
        CheckSpec::Counter => {
            let options = faultline_checker::counter::CounterOptions::default();
            (
                "counter",
                faultline_checker::counter::check(history, &options)?,
            )
        }
    })
}
