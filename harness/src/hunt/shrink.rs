//! Shrinking a failing run's fault schedule: the recorded schedule (`nemesis.jsonl`, as
//! concrete steps) is cut into faults — a start with its stop, or a lone step — and
//! each fault is dropped in turn; the smaller schedule is replayed (same seed, same
//! workload) up to `tries` times, and the drop is kept when one replay still fails.
//! The smallest failing schedule is written beside the run as `shrunk-schedule.toml`,
//! ready for `faultline run --nemesis-schedule`.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use faultline_checker::Validity;
use faultline_nemesis::Fault;
use faultline_nemesis::schedule::Step;
use faultline_nemesis::schedule::file::load;
use faultline_nemesis::schedule::replay::to_toml;
use serde_json::{Value, json};

use crate::config::RunConfig;
use crate::run::execute;

/// The steps of `steps` grouped into faults: each start step with the next stop step of
/// the same fault (indices into `steps`), other steps alone. Time order is kept.
pub fn faults_of(steps: &[Step]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<(Fault, usize)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let fault = Fault::of_f(&step.f);
        match fault {
            Some(fault) if fault.stop_f() == step.f && fault.start_f() != step.f => {
                match open.iter().position(|(f, _)| *f == fault) {
                    Some(at) => {
                        let (_, group) = open.remove(at);
                        groups[group].push(i);
                    }
                    None => groups.push(vec![i]),
                }
            }
            Some(fault) if fault.start_f() == step.f => {
                open.push((fault, groups.len()));
                groups.push(vec![i]);
            }
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// `steps` without the steps of `groups[drop]`.
fn without(steps: &[Step], groups: &[Vec<usize>], drop: usize) -> Vec<Step> {
    steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !groups[drop].contains(i))
        .map(|(_, s)| s.clone())
        .collect()
}

/// Shrinks the schedule of the failing run in `run_dir` (run with `config`); returns
/// what it did, for the hunt's record.
pub fn shrink(config: &RunConfig, run_dir: &Path, tries: u32) -> Result<Value> {
    let recorded = load(run_dir).with_context(|| {
        format!(
            "cannot read the failing run's schedule in {}",
            run_dir.display()
        )
    })?;
    let mut steps = recorded.steps;
    let before = faults_of(&steps).len();
    eprintln!("faultline hunt: shrinking a schedule of {before} fault(s)");
    let scratch = run_dir.join("shrinking-schedule.toml");
    let mut replays = 0u32;
    let mut index = 0;
    while index < faults_of(&steps).len() {
        let groups = faults_of(&steps);
        let smaller = without(&steps, &groups, index);
        fs::write(&scratch, to_toml(&smaller))
            .with_context(|| format!("cannot write {}", scratch.display()))?;
        let mut still_fails = false;
        for _ in 0..tries.max(1) {
            replays += 1;
            let mut replay = config.clone();
            replay.nemesis_schedule = Some(scratch.clone());
            replay.schedule = Some(smaller.clone());
            replay.nemesis = smaller.iter().filter_map(|s| Fault::of_f(&s.f)).collect();
            replay.nemesis.sort();
            replay.nemesis.dedup();
            let done = execute(&replay);
            if let Ok(done) = &done
                && done.valid == Validity::Invalid
            {
                still_fails = true;
                break;
            }
        }
        eprintln!(
            "faultline hunt: without fault {} of {}: {}",
            index + 1,
            groups.len(),
            if still_fails {
                "still fails, dropped"
            } else {
                "passes, kept"
            }
        );
        if still_fails {
            steps = smaller;
        } else {
            index += 1;
        }
    }
    let _ = fs::remove_file(&scratch);
    let path = run_dir.join("shrunk-schedule.toml");
    fs::write(&path, to_toml(&steps))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let after = faults_of(&steps).len();
    eprintln!(
        "faultline hunt: shrunk from {before} to {after} fault(s) in {replays} replay(s): {}",
        path.display()
    );
    Ok(json!({
        "schedule": path.display().to_string(),
        "faults_before": before,
        "faults_after": after,
        "replays": replays,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn step(time: u64, f: &str) -> Step {
        Step {
            time,
            f: f.to_string(),
            value: Value::Null,
        }
    }

    #[test]
    fn starts_pair_with_their_stops_and_overlapping_faults_stay_apart() {
        let steps = [
            step(1, "start-partition"),
            step(2, "kill"),
            step(3, "start"),
            step(4, "stop-partition"),
            step(5, "bump-clock"),
            step(6, "kill"),
        ];
        assert_eq!(
            faults_of(&steps),
            vec![vec![0, 3], vec![1, 2], vec![4], vec![5]]
        );
        let groups = faults_of(&steps);
        let left: Vec<u64> = without(&steps, &groups, 1).iter().map(|s| s.time).collect();
        assert_eq!(left, [1, 4, 5, 6]);
    }

    #[test]
    fn a_stop_without_a_start_is_a_fault_of_its_own() {
        let steps = [step(1, "stop-partition"), step(2, "start-partition")];
        assert_eq!(faults_of(&steps), vec![vec![0], vec![1]]);
    }
}
