//! `faultline check`: read a history, choose a checker, run it, and report the verdict
//! as a human summary, as `results.json` on stdout (`--json`), and in `--out DIR`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use faultline_checker::elle::Artifact;
use faultline_checker::history::{Format, ReadLimits, TxnHistory};
use faultline_checker::linearizable::ModelKind;
use faultline_checker::{CheckOptions, Checker, History, InputError, Results, Validity};
use serde_json::Value;

mod choose;
pub mod logs;
mod progress;

use crate::error::UsageError;
use crate::summary;
use progress::CheckProgress;

/// Arguments of `faultline check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history: Faultline JSONL, or Jepsen EDN (`.edn`, or with `--format edn`).
    pub history: PathBuf,
    /// The checker; by default chosen from the operations: transactions of Elle's
    /// micro-ops (every value a list of `[append|r|w, key, value]`, whatever `f` says) →
    /// elle, `transfer` → bank, `add`/`read` with list reads → set, with integer reads →
    /// counter, anything else (including Knossos's `[read|write, key, value]`
    /// transactions) → linearizable.
    #[arg(long, value_enum)]
    pub checker: Option<CheckerName>,
    /// The linearizability model: register, cas-register, mutex, set, fifo-queue,
    /// unordered-queue, multi-register. By default inferred from the operations.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<ModelKind>,
    /// Linearizable (register, cas-register, multi-register): the initial value, as
    /// JSON: e.g. `0` for Knossos's `(cas-register 0)`, `{"x":0,"y":0}` for
    /// `(multi-register {:x 0 :y 0})`. Default `null`: unset. A read of `null` says the
    /// register is `null` in JSONL histories, and nothing (Knossos) in EDN ones.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub initial_value: Option<Value>,
    /// The file format; by default from the extension (`.edn` is EDN, else JSONL).
    #[arg(long, value_enum)]
    pub format: Option<FormatName>,
    /// Linearizable: give up with "unknown" after this many seconds. (Elle bounds its
    /// cycle search by steps instead.)
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_seconds)]
    pub time_limit: Duration,
    /// The memory, in MiB, that reading the history may take (refused with exit 254
    /// beyond it; default three quarters of the machine's) and that the linearizability
    /// search may take (unknown beyond it; default 4096).
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<u64>,
    /// Write `results.json` (and any drawings) into this directory, creating it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write `report.html` (with `results.json` and any drawings, as `--out` does) into
    /// this directory, creating it.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Print the `results.json` document instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Elle only: the transactions' workload, list-append or rw-register.
    #[arg(long)]
    pub workload: Option<String>,
    /// Elle only: the consistency model that must hold (default strict-serializable).
    #[arg(long, value_name = "M")]
    pub consistency_model: Option<String>,
    /// Bank only (and required by it): the sum every read of the balances must have.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub bank_total: Option<i64>,
    /// Bank only: the accounts every read must name exactly, comma-separated. By
    /// default any account names are accepted.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',')]
    pub bank_accounts: Option<Vec<String>>,
    /// Bank only: allow negative balances.
    #[arg(long)]
    pub bank_negative_allowed: bool,
    /// Set only: the set must be linearizable, so stale elements (missed by a read that
    /// began after they were known) are invalid.
    #[arg(long)]
    pub set_linearizable: bool,
    /// Threads for reading and checking (default: one per core). On a machine busy
    /// with other work, `--jobs 1` can be faster: idle helper threads spin.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

/// The values of `--checker`: which [`Checker`](faultline_checker::Checker) `choose`
/// builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckerName {
    /// Linearizability of single-object operations, per key.
    Linearizable,
    /// Elle: transactional anomalies (list-append, rw-register).
    Elle,
    /// Bank: every read of the balances sums to `--bank-total`.
    Bank,
    /// Set (Jepsen's set-full): lost, stale, unexpected and duplicated elements.
    Set,
    /// Counter: every read lies between the totals the adds could have produced.
    Counter,
}

/// History file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatName {
    /// Faultline JSON Lines.
    Jsonl,
    /// Jepsen's `history.edn`.
    Edn,
}

impl From<FormatName> for Format {
    fn from(name: FormatName) -> Format {
        match name {
            FormatName::Jsonl => Format::Jsonl,
            FormatName::Edn => Format::Edn,
        }
    }
}

fn parse_model(text: &str) -> Result<ModelKind, String> {
    ModelKind::parse(text).map_err(|e| e.to_string())
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("`{text}` is not JSON: {e}"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds >= 0"))
}

/// Runs `faultline check` and returns the overall verdict.
pub fn run(args: &CheckArgs) -> Result<Validity> {
    let started = Instant::now();
    if let Some(jobs) = args.jobs {
        // The first use of the pool fixes its size: nothing has used it yet.
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(jobs))
            .build_global()
            .context("--jobs: cannot size the thread pool")?;
    }
    let format = args.format.map(Format::from);
    let read_limits = args
        .memory_limit
        .map_or_else(ReadLimits::default, ReadLimits::with_memory_mib);
    let options = CheckOptions {
        time_limit: args.time_limit,
        memory_limit_mib: args.memory_limit,
        // Drawings cost time; make them only when there is somewhere to put them.
        draw: args.out.is_some() || args.report.is_some(),
    };
    let format = format.unwrap_or_else(|| Format::from_path(&args.history));
    // A list-append history only Elle checks goes the compact way; anything that way
    // cannot take exactly (or that Elle refuses) is read again the general way, which
    // checks it or names the problem.
    let mut progress = CheckProgress::new();
    let source = args.history.display().to_string();
    let compact = choose::compact_elle(args).and_then(|elle| {
        let (input, size) = progress.open(&args.history, "reading").ok()?;
        let history = match format {
            Format::Jsonl => {
                TxnHistory::read_list_append_sized(source.clone(), input, &read_limits, size)
            }
            Format::Edn => {
                TxnHistory::read_list_append_edn_from(source.clone(), input, &read_limits)
            }
        }
        .ok()?;
        progress.stage(format!(
            "checking {} transactions with elle",
            indicatif::HumanCount(history.txn_count() as u64)
        ));
        let checked = elle.check_compact(&history, &options).ok()?;
        Some((Box::new(elle) as Box<dyn Checker>, checked))
    });
    let (history, checker, checked) = match compact {
        Some((checker, checked)) => (None, checker, checked),
        None => {
            let (input, _) =
                progress
                    .open(&args.history, "reading")
                    .map_err(|e| InputError::Io {
                        source_name: source.clone(),
                        message: e.to_string(),
                    })?;
            let history = History::read_from(source.clone(), input, format, &read_limits)?;
            let checker = choose::choose_checker(&history, args, format)?;
            progress.stage(format!(
                "checking {} events with {}",
                indicatif::HumanCount(history.len() as u64),
                checker.name()
            ));
            let checked = checker.check(&history, &options)?;
            (Some(history), checker, checked)
        }
    };
    progress.finish();
    let elapsed = started.elapsed();

    let mut results = Results::default();
    results.extra.insert(
        "history".into(),
        Value::from(args.history.display().to_string()),
    );
    let mut info = checker.describe(&options);
    info.insert("format".into(), Value::from(format.to_string()));
    results.extra.insert("checker".into(), Value::Object(info));
    results.record(checker.name(), &checked);
    if let Some(dir) = &args.out {
        write_out(dir, &results, &checked.artifacts)?;
    }
    if let Some(dir) = &args.report {
        write_out(dir, &results, &checked.artifacts)?;
        // `compact_elle` leaves `--report` to the general path, which keeps the history.
        if let Some(history) = &history {
            crate::report::render_dir(dir, Ok(history), &results.to_json())?;
        }
    }
    let text = if args.json {
        serde_json::to_string_pretty(&results.to_json()).context("cannot serialize results.json")?
            + "\n"
    } else {
        summary::render(&args.history, checker.name(), &results, elapsed)
    };
    crate::output::write_stdout(&text).context("cannot write to stdout")?;
    Ok(results.valid())
}

/// Creates `dir` and writes `results.json` and the artifacts (`elle/NAME.dot`, `.svg`).
fn write_out(dir: &Path, results: &Results, artifacts: &[Artifact]) -> Result<()> {
    let unusable = |path: &Path, e: std::io::Error| {
        UsageError(format!("--out: cannot write {}: {e}", path.display()))
    };
    fs::create_dir_all(dir).map_err(|e| unusable(dir, e))?;
    let text = serde_json::to_string_pretty(&results.to_json())
        .context("cannot serialize results.json")?;
    let path = dir.join("results.json");
    fs::write(&path, text + "\n").map_err(|e| unusable(&path, e))?;
    write_artifacts(dir, artifacts).map_err(|e| UsageError(format!("--out: {e:#}")))?;
    Ok(())
}

/// Writes Elle's drawings into `dir/elle/` (`NAME.dot`, `NAME.svg`), if there are any.
pub(crate) fn write_artifacts(dir: &Path, artifacts: &[Artifact]) -> Result<()> {
    if artifacts.is_empty() {
        return Ok(());
    }
    let drawings = dir.join("elle");
    fs::create_dir_all(&drawings)
        .with_context(|| format!("cannot create {}", drawings.display()))?;
    for artifact in artifacts {
        for (extension, text) in [("dot", &artifact.dot), ("svg", &artifact.svg)] {
            let path = drawings.join(format!("{}.{extension}", artifact.name));
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
