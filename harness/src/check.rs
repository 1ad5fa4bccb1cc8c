//! `faultline check`: read a history, choose a checker, run it, and report the verdict
//! as a human summary, as `results.json` on stdout (`--json`), and in `--out DIR`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use faultline_checker::bank::{self, BankOptions};
use faultline_checker::counter::{self, CounterOptions};
use faultline_checker::elle::{self, Artifact, ConsistencyModel, ElleOptions, ElleWorkload};
use faultline_checker::history::{Format, ReadLimits};
use faultline_checker::linearizable::{self, LinearizableOptions, ModelKind, NilReads, Semantics};
use faultline_checker::set::{self, SetOptions};
use faultline_checker::shape::{TxnShape, txn_shape};
use faultline_checker::{History, InputError, OpType, Results, Validity, Verdict};
use serde_json::{Map, Value};

use crate::error::UsageError;
use crate::summary;

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
}

/// The checkers `check` can run.
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

/// The checker chosen for a history, with what it needs to know.
#[derive(Debug, Clone)]
pub(crate) enum Choice {
    Linearizable(ModelKind, Semantics),
    Elle(ElleOptions),
    Bank(BankOptions),
    Set(SetOptions),
    Counter(CounterOptions),
}

impl Choice {
    /// The checker's name in `results.json`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Choice::Linearizable(..) => "linearizable",
            Choice::Elle(_) => "elle",
            Choice::Bank(_) => "bank",
            Choice::Set(_) => "set",
            Choice::Counter(_) => "counter",
        }
    }
}

/// What a checker produced.
pub(crate) struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// Drawings (Elle's cycles), when asked for.
    pub artifacts: Vec<Artifact>,
}

/// How far a checker may go, and whether to draw.
pub(crate) struct Limits {
    /// Linearizable: answer unknown after this long.
    pub time_limit: Duration,
    /// Linearizable: answer unknown beyond this much memory.
    pub memory_limit_mib: Option<u64>,
    /// Elle: draw every reported cycle.
    pub draw: bool,
}

/// Runs `faultline check` and returns the overall verdict.
pub fn run(args: &CheckArgs) -> Result<Validity> {
    let started = Instant::now();
    let format = args.format.map(Format::from);
    let read_limits = args
        .memory_limit
        .map_or_else(ReadLimits::default, ReadLimits::with_memory_mib);
    let history = History::read_with(&args.history, format, &read_limits)?;
    let choice = choose_checker(
        &history,
        args,
        format.unwrap_or_else(|| Format::from_path(&args.history)),
    )?;
    let limits = Limits {
        time_limit: args.time_limit,
        memory_limit_mib: args.memory_limit,
        // Drawings cost time; make them only when there is somewhere to put them.
        draw: args.out.is_some() || args.report.is_some(),
    };
    let checked = run_checker(&history, &choice, &limits)?;
    let elapsed = started.elapsed();

    let mut results = Results::default();
    results.extra.insert(
        "history".into(),
        Value::from(args.history.display().to_string()),
    );
    results
        .extra
        .insert("checker".into(), checker_info(&choice, args, format));
    results
        .checkers
        .insert(choice.name().to_string(), checked.verdict);
    if let Some(dir) = &args.out {
        write_out(dir, &results, &checked.artifacts)?;
    }
    if let Some(dir) = &args.report {
        write_out(dir, &results, &checked.artifacts)?;
        crate::report::render_dir(dir, Ok(&history), &results.to_json())?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&results.to_json()).context("cannot serialize results.json")?
            + "\n"
    } else {
        summary::render(&args.history, choice.name(), &results, elapsed)
    };
    crate::output::write_stdout(&text).context("cannot write to stdout")?;
    Ok(results.valid())
}

/// Selects the checker: `--checker`, else `--model` or `--initial-value`
/// (linearizable), the elle, bank or set flags, else from the operations: Elle-shaped
/// transactions (see [`txn_shape`]) → elle, `transfer` → bank, `add`/`read` → set or
/// counter (see [`infer_add_read`]), anything else → linearizable with the model
/// [`ModelKind::infer`] picks. `format` decides what a register read of `null` says.
fn choose_checker(
    history: &History,
    args: &CheckArgs,
    format: Format,
) -> Result<Choice, InputError> {
    let elle_flag = args.workload.is_some() || args.consistency_model.is_some();
    let bank_flag =
        args.bank_total.is_some() || args.bank_accounts.is_some() || args.bank_negative_allowed;
    let checker = match args.checker {
        Some(checker) => checker,
        None if args.model.is_some() || args.initial_value.is_some() => CheckerName::Linearizable,
        None if elle_flag || has_transactions(history) => CheckerName::Elle,
        None if bank_flag || has_f(history, "transfer") => CheckerName::Bank,
        None if args.set_linearizable => CheckerName::Set,
        None => infer_add_read(history)?.unwrap_or(CheckerName::Linearizable),
    };
    let misplaced = |flag: &str, checker: &str| {
        Err(InputError::Unsupported(format!(
            "{flag} applies only to --checker {checker}"
        )))
    };
    if bank_flag && checker != CheckerName::Bank {
        return misplaced(
            "--bank-total, --bank-accounts and --bank-negative-allowed",
            "bank",
        );
    }
    if args.set_linearizable && checker != CheckerName::Set {
        return misplaced("--set-linearizable", "set");
    }
    if checker != CheckerName::Linearizable && args.initial_value.is_some() {
        return misplaced("--initial-value", "linearizable");
    }
    if !matches!(checker, CheckerName::Linearizable | CheckerName::Elle) {
        if args.model.is_some() {
            return misplaced("--model", "linearizable");
        }
        if elle_flag {
            return misplaced("--workload and --consistency-model", "elle");
        }
    }
    match checker {
        CheckerName::Bank => {
            let Some(total) = args.bank_total else {
                return Err(InputError::Unsupported(
                    "the bank checker needs the total every read must sum to: pass --bank-total N"
                        .into(),
                ));
            };
            Ok(Choice::Bank(BankOptions {
                total,
                accounts: args.bank_accounts.clone(),
                negative_allowed: args.bank_negative_allowed,
            }))
        }
        CheckerName::Set => Ok(Choice::Set(SetOptions {
            linearizable: args.set_linearizable,
        })),
        CheckerName::Counter => Ok(Choice::Counter(CounterOptions::default())),
        CheckerName::Linearizable => {
            if elle_flag {
                return Err(InputError::Unsupported(
                    "--workload and --consistency-model apply only to --checker elle".into(),
                ));
            }
            let model = match args.model {
                Some(model) => model,
                None => ModelKind::infer(history)?,
            };
            // Knossos reads a nil read as "unknown"; our spec as "the register is null".
            let semantics = Semantics {
                initial_value: args.initial_value.clone().unwrap_or(Value::Null),
                nil_reads: match format {
                    Format::Edn => NilReads::Unknown,
                    Format::Jsonl => NilReads::Null,
                },
            };
            semantics.validate(model)?;
            Ok(Choice::Linearizable(model, semantics))
        }
        // ---- elle branch ----------------------------------------------------------
        // The transactional checker (checker/src/elle/, `faultline_checker::elle`).
        CheckerName::Elle => {
            if args.model.is_some() {
                return Err(InputError::Unsupported(
                    "--model applies only to --checker linearizable; for elle use --workload and --consistency-model".into(),
                ));
            }
            let workload = match &args.workload {
                Some(name) => name.parse().map_err(InputError::Unsupported)?,
                None => infer_workload(history),
            };
            let mut options = ElleOptions::new(workload);
            if let Some(name) = &args.consistency_model {
                let model: ConsistencyModel = name.parse().map_err(InputError::Unsupported)?;
                options = options.with_model(model);
            }
            Ok(Choice::Elle(options))
        } // ---- end of elle branch -------------------------------------------------
    }
}

/// True when the client operations are Elle's transactions (by their values), or are
/// called `txn` without a shape anyone checks: Elle then names the malformed micro-op
/// and its line, rather than no checker fitting.
fn has_transactions(history: &History) -> bool {
    match txn_shape(history) {
        Some(TxnShape::Elle(_)) => true,
        Some(TxnShape::MultiRegister) => false,
        None => has_f(history, "txn"),
    }
}

/// True when any client operation has function `f`.
fn has_f(history: &History, f: &str) -> bool {
    history.ops().iter().any(|op| op.is_client() && op.f == f)
}

/// For histories of only `add` and `read`: the set checker when every ok read returned
/// a list, the counter checker when every one returned an integer; an error asking for
/// `--checker` when that does not decide. `None` for other histories.
fn infer_add_read(history: &History) -> Result<Option<CheckerName>, InputError> {
    let client = || history.ops().iter().filter(|op| op.is_client());
    if !client().any(|op| op.f == "add") || !client().all(|op| op.f == "add" || op.f == "read") {
        return Ok(None);
    }
    let reads = || client().filter(|op| op.f == "read" && op.op_type == OpType::Ok);
    if reads().next().is_some() && reads().all(|op| op.value.is_array()) {
        Ok(Some(CheckerName::Set))
    } else if reads().next().is_some() && reads().all(|op| op.value.is_i64()) {
        Ok(Some(CheckerName::Counter))
    } else {
        Err(InputError::Unsupported(
            "cannot tell a set from a counter by the reads of this add/read history: pass --checker set, --checker counter, or --checker linearizable --model set".into(),
        ))
    }
}

/// Elle's workload from the micro-ops (see [`TxnShape`]): any `append` →
/// list-append, else any `w` → rw-register, else (reads only, or not Elle's shape: the
/// checker then names what is wrong) list-append.
fn infer_workload(history: &History) -> ElleWorkload {
    match txn_shape(history) {
        Some(TxnShape::Elle(workload)) => workload,
        _ => ElleWorkload::ListAppend,
    }
}

/// Runs the chosen checker. A history with no client operation verified nothing: its
/// verdict is unknown, whatever the checker.
pub(crate) fn run_checker(history: &History, choice: &Choice, limits: &Limits) -> Result<Checked> {
    if !history.ops().iter().any(|op| op.is_client()) {
        return Ok(Checked {
            verdict: nothing_to_check(),
            artifacts: Vec::new(),
        });
    }
    match choice {
        Choice::Linearizable(model, semantics) => {
            let mut options = LinearizableOptions {
                model: Some(*model),
                time_limit: limits.time_limit,
                semantics: semantics.clone(),
                ..LinearizableOptions::default()
            };
            if let Some(mib) = limits.memory_limit_mib {
                options.memory_limit_bytes =
                    usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
            }
            let verdict = linearizable::check(history, &options)?;
            Ok(Checked {
                verdict,
                artifacts: Vec::new(),
            })
        }
        Choice::Elle(options) if limits.draw => {
            let analysis = elle::analyze(history, options)?;
            Ok(Checked {
                verdict: analysis.verdict,
                artifacts: analysis.artifacts,
            })
        }
        Choice::Elle(options) => Ok(Checked {
            verdict: elle::check(history, options)?,
            artifacts: Vec::new(),
        }),
        Choice::Bank(options) => Ok(Checked {
            verdict: bank::check(history, options)?,
            artifacts: Vec::new(),
        }),
        Choice::Set(options) => Ok(Checked {
            verdict: set::check(history, options)?,
            artifacts: Vec::new(),
        }),
        Choice::Counter(options) => Ok(Checked {
            verdict: counter::check(history, options)?,
            artifacts: Vec::new(),
        }),
    }
}

/// The verdict for a history without client operations: unknown, since nothing was
/// verified (an empty file, or only nemesis events).
fn nothing_to_check() -> Verdict {
    let reason = "the history has no client operations: nothing was checked";
    let mut details = Map::new();
    details.insert("error".into(), Value::from(reason));
    details.insert("ops".into(), Value::from(0));
    Verdict {
        valid: Validity::Unknown,
        details,
        explanation: vec![format!("{reason}.")],
    }
}

/// The top-level `checker` field of `results.json`: what was run, and how.
fn checker_info(choice: &Choice, args: &CheckArgs, format: Option<Format>) -> Value {
    let mut info = Map::new();
    info.insert("name".into(), Value::from(choice.name()));
    match choice {
        Choice::Linearizable(model, semantics) => {
            info.insert("model".into(), Value::from(model.name()));
            info.insert("initial_value".into(), semantics.initial_value.clone());
            if model.has_registers() {
                info.insert("nil_reads".into(), Value::from(semantics.nil_reads.name()));
            }
            info.insert(
                "time_limit_seconds".into(),
                Value::from(args.time_limit.as_secs_f64()),
            );
            if let Some(mib) = args.memory_limit {
                info.insert("memory_limit_mib".into(), Value::from(mib));
            }
        }
        Choice::Elle(options) => {
            info.insert("workload".into(), Value::from(options.workload.name()));
            info.insert(
                "consistency_model".into(),
                Value::from(options.consistency_model.name()),
            );
        }
        Choice::Bank(options) => {
            info.insert("total".into(), Value::from(options.total));
            info.insert(
                "negative_allowed".into(),
                Value::from(options.negative_allowed),
            );
            if let Some(accounts) = &options.accounts {
                info.insert("accounts".into(), Value::from(accounts.clone()));
            }
        }
        Choice::Set(options) => {
            info.insert("linearizable".into(), Value::from(options.linearizable));
        }
        Choice::Counter(_) => {}
    }
    let format = format.unwrap_or_else(|| Format::from_path(&args.history));
    info.insert("format".into(), Value::from(format.to_string()));
    Value::Object(info)
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
