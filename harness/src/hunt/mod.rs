//! `faultline hunt`: many short runs with varied seeds and fault mixes until one is
//! invalid; then its schedule is shrunk to the smallest that still fails.
//!
//! The search is guided by what the nodes did ([`coverage`]): every run's protocol
//! events are abstracted into behaviours (role transitions, restarts in a role, votes
//! after a restart, candidates and leaders per term, truncations…); a run that showed a
//! behaviour no earlier run showed joins the corpus, and later candidates are mostly
//! mutations of corpus entries ([`candidate`]) — the idea of Mallory (CCS 2023).
//! `--unguided` draws every candidate at random, to compare. Each run is an ordinary
//! run in the store; the hunt's own record is `STORE/NAME/hunt-TIME.json`.
//!
//! Exit codes are a run's: 1 when a run was invalid (a bug found), 0 when the budget ran
//! out with every run valid, 2 when some run was unknown and none invalid, 255 when a run
//! failed in the harness.

mod candidate;
mod coverage;
mod shrink;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use faultline_checker::Validity;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::config::{RunArgs, RunConfig};
use crate::run::execute;
use candidate::Candidate;
use coverage::Behaviours;

/// Seconds of one hunt run when `--time-limit` is not given.
const DEFAULT_RUN_SECS: f64 = 30.0;
/// Of the guided search's candidates, the share mutated from the corpus (the rest are
/// fresh random ones, so the search never only circles its first finds).
const MUTATE_SHARE: f64 = 0.75;

/// Hunt for a failing run: short runs with varied seeds and fault mixes until one is
/// invalid, then shrink its fault schedule.
#[derive(Debug, Args)]
pub struct HuntArgs {
    /// How long to hunt, e.g. `90s`, `30m`, `2h`.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub budget: Duration,
    /// Draw every candidate at random, without the coverage guidance (for comparison).
    #[arg(long)]
    pub unguided: bool,
    /// Keep the failing run as it is: do not shrink its schedule.
    #[arg(long)]
    pub no_shrink: bool,
    /// How many times a shrinking step reruns a smaller schedule before deciding that
    /// it no longer fails.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub shrink_tries: u32,
    /// The run flags (`faultline run --help`). `--nemesis` is the pool of faults the hunt
    /// mixes [default: all]; `--seed` seeds the hunt itself [default: random];
    /// `--time-limit` is each run's length [default: 30].
    #[command(flatten)]
    pub run: RunArgs,
}

/// One run of the hunt, as recorded.
#[derive(Debug, Clone)]
struct Tried {
    candidate: Candidate,
    valid: Option<Validity>,
    run_dir: Option<PathBuf>,
    new_behaviours: usize,
    seconds: f64,
}

impl Tried {
    fn to_json(&self) -> Value {
        json!({
            "seed": self.candidate.seed,
            "nemesis": self.candidate.faults_word(),
            "nemesis_interval": self.candidate.interval.as_secs_f64(),
            "valid": self.valid.map_or(Value::from("harness-error"), Validity::to_json),
            "run": self.run_dir.as_ref().map(|d| d.display().to_string()),
            "new_behaviours": self.new_behaviours,
            "seconds": self.seconds,
        })
    }
}

/// Runs `faultline hunt`; returns the exit code.
pub fn run(args: &HuntArgs) -> Result<i32> {
    let mut run_args = args.run.clone();
    if run_args.nemesis.is_none() {
        run_args.nemesis = Some(vec!["all".into()]);
    }
    if run_args.time_limit.is_none() {
        run_args.time_limit = Some(DEFAULT_RUN_SECS);
    }
    let mut base = RunConfig::resolve(&run_args)?;
    if args.run.name.is_none() {
        base.name = format!("hunt-{}", base.name);
    }
    let pool = base.nemesis.clone();
    let hunt_seed = args.run.seed.unwrap_or_else(rand::random);
    let mut rng = ChaCha8Rng::seed_from_u64(hunt_seed);
    let started = Instant::now();
    eprintln!(
        "faultline hunt: {} for up to {}, runs of {} s over faults {}, {} search, hunt seed {hunt_seed}",
        base.name,
        humantime::format_duration(args.budget),
        base.time_limit.as_secs_f64(),
        crate::config::faults_word(&pool),
        if args.unguided {
            "unguided"
        } else {
            "coverage-guided"
        },
    );

    let mut seen = Behaviours::new();
    let mut corpus: Vec<Candidate> = Vec::new();
    let mut tried: Vec<Tried> = Vec::new();
    let mut caught: Option<(usize, f64)> = None;
    while started.elapsed() + base.time_limit < args.budget {
        let candidate = match corpus.len() {
            n if n > 0 && !args.unguided && rng.random_bool(MUTATE_SHARE) => {
                corpus[rng.random_range(0..n)].mutate(&pool, &mut rng)
            }
            _ => Candidate::random(&pool, &mut rng),
        };
        let mut config = base.clone();
        config.seed = candidate.seed;
        config.nemesis = candidate.faults.clone();
        config.nemesis_interval = candidate.interval;
        let run_started = Instant::now();
        let result = execute(&config);
        let seconds = run_started.elapsed().as_secs_f64();
        let (valid, run_dir) = match result {
            Ok(done) => (Some(done.valid), Some(done.run_dir)),
            Err(e) => {
                eprintln!("faultline hunt: run failed in the harness: {e:#}");
                (None, None)
            }
        };
        let behaviours = run_dir.as_deref().map(coverage::of_run).unwrap_or_default();
        let new: Vec<String> = behaviours.difference(&seen).cloned().collect();
        seen.extend(new.iter().cloned());
        if !new.is_empty() {
            corpus.push(candidate.clone());
        }
        eprintln!(
            "faultline hunt: run {} after {:.0} s: seed {}, nemesis {} every {:.1} s → {}; {} new behaviour(s) (coverage {})",
            tried.len() + 1,
            started.elapsed().as_secs_f64(),
            candidate.seed,
            candidate.faults_word(),
            candidate.interval.as_secs_f64(),
            valid.map_or("harness error".to_string(), |v| verdict_word(v).to_string()),
            new.len(),
            seen.len(),
        );
        tried.push(Tried {
            candidate,
            valid,
            run_dir,
            new_behaviours: new.len(),
            seconds,
        });
        if valid == Some(Validity::Invalid) {
            caught = Some((tried.len() - 1, started.elapsed().as_secs_f64()));
            break;
        }
    }

    let mut record = json!({
        "name": base.name,
        "hunt_seed": hunt_seed,
        "guided": !args.unguided,
        "budget_seconds": args.budget.as_secs_f64(),
        "run_seconds": base.time_limit.as_secs_f64(),
        "pool": crate::config::faults_word(&pool),
        "runs": tried.iter().map(Tried::to_json).collect::<Vec<_>>(),
        "behaviours": seen.iter().collect::<Vec<_>>(),
        "corpus": corpus.len(),
    });
    let code = match caught {
        Some((index, after)) => {
            let found = &tried[index];
            let run_dir = found
                .run_dir
                .clone()
                .context("an invalid run has a directory")?;
            eprintln!(
                "faultline hunt: caught after {} run(s), {after:.0} s: {}",
                index + 1,
                run_dir.display()
            );
            record["caught"] = json!({
                "run": run_dir.display().to_string(),
                "after_runs": index + 1,
                "after_seconds": after,
                "seed": found.candidate.seed,
            });
            if !args.no_shrink {
                let mut config = base.clone();
                config.seed = found.candidate.seed;
                config.nemesis = found.candidate.faults.clone();
                config.nemesis_interval = found.candidate.interval;
                record["shrunk"] = shrink::shrink(&config, &run_dir, args.shrink_tries)?;
            }
            Validity::Invalid.exit_code()
        }
        None if tried.iter().any(|t| t.valid.is_none()) => 255,
        None if tried.iter().any(|t| t.valid == Some(Validity::Unknown)) => {
            Validity::Unknown.exit_code()
        }
        None => {
            eprintln!(
                "faultline hunt: {} run(s), none invalid, in {:.0} s",
                tried.len(),
                started.elapsed().as_secs_f64()
            );
            Validity::Valid.exit_code()
        }
    };
    let path = write_record(&base, &record)?;
    eprintln!("faultline hunt: record: {}", path.display());
    Ok(code)
}

/// A verdict as a word.
fn verdict_word(valid: Validity) -> &'static str {
    match valid {
        Validity::Valid => "valid",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "unknown",
    }
}

/// Writes the hunt's record to `STORE/NAME/hunt-TIME.json`.
fn write_record(base: &RunConfig, record: &Value) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "");
    let dir = base.store.join(&base.name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("hunt-{stamp}.json"));
    fs::write(&path, serde_json::to_string_pretty(record)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
