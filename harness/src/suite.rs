//! `faultline suite FILE.toml`: many runs from one file, for nightly CI. The file holds
//! defaults (any `faultline run` setting, under the same keys as `--config`), an optional
//! `[matrix]` of axes (db × workload × nemesis × seeds) and `[[run]]` entries with their
//! own settings and an expected verdict. Runs go one after another, or `--jobs J` at
//! once (`jobs`: started in the file's order, outcomes kept in it); then the suite
//! writes `STORE/index.html` (every run in the store) and a JUnit file, and exits 0 when
//! every run met its expectation, else with the worst mismatch: 255 if a run crashed,
//! else 2 if one was unknown unexpectedly, else 1. A bad suite file exits 254 with the
//! file and line. The format is documented in `docs/suites.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use faultline_checker::Validity;
use serde_json::json;

use crate::config::faults_word;
use crate::junit::junit;
use crate::outcome::{Outcome, Planned, anomalies};
use crate::output::{labelled, say, say_raw};

mod file;
mod index;
mod jobs;
pub mod merge;
mod shard;

pub use file::load;
use index::read_json;
pub use index::write_index;
pub use shard::Shard;

/// Exit code when a run of the suite crashed (a harness failure).
const EXIT_CRASHED: i32 = 255;

/// Run a suite of tests from a TOML file (a matrix and entries with expected verdicts),
/// then write the store's index.html and a JUnit report.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// The suite file (TOML): defaults, a `[matrix]`, `[[run]]` entries.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The store directory, over the file's `store` [default: store].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Where to write the JUnit XML report [default: STORE/junit.xml].
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// List the runs the file describes, check their settings, and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply the file's `[profile.NAME]`: its settings win over every run's and its
    /// matrix axes replace the file's (e.g. a short CI profile of a nightly suite).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Run only the K-th of N slices of the suite (1 <= K <= N), for a CI job matrix:
    /// a run's slice depends on its label alone, so slices are stable when entries are
    /// reordered; together the N slices hold every run once (docs/ci.md).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// How many runs at once on this machine, each with its own subnet, namespaces and
    /// directory; started in the file's order, outcomes reported in it (docs/suites.md
    /// says how many a machine holds).
    #[arg(long, value_name = "J", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
}

/// Runs `faultline suite`; returns the exit code.
pub fn run(args: &SuiteArgs) -> Result<i32> {
    let mut suite = load(&args.file, args.store.as_deref(), args.profile.as_deref())?;
    if let Some(shard) = args.shard {
        let all = suite.runs.len();
        suite.runs.retain(|planned| shard.holds(&planned.label));
        eprintln!(
            "faultline suite: shard {shard}: {} of {all} run(s)",
            suite.runs.len()
        );
    }
    if args.dry_run {
        for (i, planned) in suite.runs.iter().enumerate() {
            say!(
                "{:>3}. {} (line {}): {} {} on {} node(s), faults {}, expect {}",
                i + 1,
                planned.label,
                planned.line,
                planned.config.db,
                planned.config.workload,
                planned.config.nodes,
                faults_word(&planned.config.nemesis),
                planned.expect.word()
            );
        }
        return Ok(0);
    }
    let jobs = args.jobs as usize;
    if jobs > 1 {
        refuse_shared_hosts(&suite.runs)?;
    }
    let started = SystemTime::now();
    let total = suite.runs.len();
    let outcomes = jobs::run_all(&suite.runs, jobs, |i, planned| {
        eprintln!(
            "faultline suite: [{}/{total}] {} (expect {})",
            i + 1,
            planned.label,
            planned.expect.word()
        );
        // With runs at once, every line a run prints carries its label.
        let label = (jobs > 1).then_some(planned.label.as_str());
        let outcome = labelled(label, || run_one(planned));
        eprintln!(
            "faultline suite: [{}/{total}] {}: {} in {:.1} s",
            i + 1,
            planned.label,
            status_word(&outcome),
            outcome.duration.as_secs_f64()
        );
        outcome
    });
    let index = write_index(&suite.store)?;
    let junit_path = args
        .junit
        .clone()
        .unwrap_or_else(|| suite.store.join("junit.xml"));
    let xml = junit(&suite.name, started, &outcomes)?;
    if let Some(parent) = junit_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(&junit_path, xml)
        .with_context(|| format!("cannot write {}", junit_path.display()))?;
    say_raw!("{}", summary(&suite.name, &outcomes));
    say!("  index: {}", index.display());
    say!("  junit: {}", junit_path.display());
    Ok(exit_code(&outcomes))
}

/// The suite's exit code: 0 when every run met its expectation; else 255 if one
/// crashed, else 2 if one was unknown unexpectedly, else 1.
pub fn exit_code(outcomes: &[Outcome]) -> i32 {
    let mut code = 0;
    for outcome in outcomes.iter().filter(|o| !o.passed()) {
        let this = match outcome.result {
            Err(_) => EXIT_CRASHED,
            Ok(Validity::Unknown) => 2,
            Ok(_) => 1,
        };
        code = code.max(this);
    }
    code
}

fn status_word(outcome: &Outcome) -> String {
    match (&outcome.result, outcome.passed()) {
        (Err(_), _) => "CRASHED".into(),
        (Ok(v), true) => format!("passed ({})", v.word()),
        (Ok(v), false) => format!(
            "FAILED (expected {}, got {})",
            outcome.expected_words(),
            v.word()
        ),
    }
}

/// `--jobs` above 1 with runs over SSH: they would share the hosts file's machines
/// (node ports, nft tables, processes), which Faultline does not keep apart.
fn refuse_shared_hosts(runs: &[Planned]) -> Result<()> {
    match runs
        .iter()
        .find(|p| p.config.cluster == faultline_clusters::ClusterKind::Ssh)
    {
        Some(p) => Err(crate::error::UsageError(format!(
            "--jobs: run `{}` (line {}) is on SSH hosts, which runs at once would share; \
             use --jobs 1, or one shard per set of hosts (docs/ci.md)",
            p.label, p.line
        ))
        .into()),
        None => Ok(()),
    }
}

/// Runs one test and records its outcome; writes `suite.json` beside its results.
fn run_one(planned: &Planned) -> Outcome {
    let started = Instant::now();
    // The run's directory as soon as it exists: a crashed run's too (`latest` cannot
    // tell, with other runs of the same test at once).
    let mut made = None;
    let result = crate::run::execute_noting(&planned.config, &mut made);
    let duration = started.elapsed();
    let (result, run_dir) = match result {
        Ok(done) => (Ok(done.valid), Some(done.run_dir)),
        Err(e) => (Err(format!("{e:#}")), made),
    };
    let anomalies = run_dir
        .as_ref()
        .and_then(|dir| read_json(&dir.join("results.json")))
        .map(|results| anomalies(&results))
        .unwrap_or_default();
    let outcome = Outcome {
        planned: planned.clone(),
        result,
        run_dir,
        duration,
        anomalies,
    };
    if let Some(dir) = &outcome.run_dir {
        let record = json!({
            "suite_run": outcome.planned.label,
            "expect": outcome.expected_words(),
            "passed": outcome.passed(),
            "duration_seconds": outcome.duration.as_secs_f64(),
        });
        let path = dir.join("suite.json");
        if let Err(e) = fs::write(&path, format!("{record:#}\n")) {
            eprintln!("faultline suite: cannot write {}: {e}", path.display());
        }
    }
    outcome
}

/// The suite's closing table, for people.
fn summary(name: &str, outcomes: &[Outcome]) -> String {
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let mut out = format!(
        "suite {name}: {passed} of {} run(s) met their expectation\n",
        outcomes.len()
    );
    for o in outcomes {
        let _ = write!(
            out,
            "  {:<8} {:<40} expect {:<8} {:>7.1} s",
            if o.passed() {
                "ok"
            } else if o.result.is_err() {
                "CRASHED"
            } else {
                "FAILED"
            },
            o.planned.label,
            o.expected_words(),
            o.duration.as_secs_f64()
        );
        match (&o.result, o.failure()) {
            (Err(e), _) => {
                let _ = write!(out, "  {}", e.lines().next().unwrap_or(""));
            }
            (_, Some(failure)) => {
                let _ = write!(out, "  {failure}");
            }
            _ => {}
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Expect;
    use crate::outcome::tests::outcome;

    #[test]
    fn the_exit_code_is_the_worst_mismatch() {
        use Validity::*;
        let ok = outcome(Expect::Invalid, Ok(Invalid));
        let wrong = outcome(Expect::Valid, Ok(Invalid));
        let unknown = outcome(Expect::Valid, Ok(Unknown));
        let crashed = outcome(Expect::Valid, Err("boom".into()));
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        assert_eq!(exit_code(&[ok.clone(), wrong.clone()]), 1);
        assert_eq!(exit_code(&[wrong.clone(), unknown.clone()]), 2);
        assert_eq!(exit_code(&[crashed, unknown, wrong]), 255);
        assert_eq!(exit_code(&[outcome(Expect::Unknown, Ok(Unknown))]), 0);
    }

    #[test]
    fn an_expected_anomaly_must_be_among_those_found() {
        let mut found = outcome(Expect::Invalid, Ok(Validity::Invalid));
        found.planned.expect_anomaly = vec!["G1c".into()];
        assert!(found.passed());
        let mut other = found.clone();
        other.planned.expect_anomaly = vec!["lost".into()];
        assert!(!other.passed());
        let message = other.failure().unwrap();
        assert!(
            message.starts_with("expected invalid with `lost`, got invalid: elle:"),
            "{message}"
        );
        let mut either = other.clone();
        either.planned.expect_anomaly = vec!["lost".into(), "G1c".into()];
        assert!(either.passed(), "one of the listed anomalies is enough");
        either.planned.expect_anomaly = vec!["lost".into(), "G0".into()];
        assert!(
            either
                .failure()
                .unwrap()
                .starts_with("expected invalid with `lost` or `G0`, got invalid:")
        );
        assert_eq!(exit_code(&[found, other]), 1);
    }
}
