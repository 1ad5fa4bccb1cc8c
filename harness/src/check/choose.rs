//! `faultline check`'s choice of a checker: from `--checker` and the other flags, else
//! from the operations.

use faultline_checker::bank::BankOptions;
use faultline_checker::checkers::{Bank, Counter, Elle, Linearizable, SetFull};
use faultline_checker::elle::{ConsistencyModel, ElleOptions, ElleWorkload};
use faultline_checker::history::Format;
use faultline_checker::linearizable::{ModelKind, NilReads, Semantics};
use faultline_checker::set::SetOptions;
use faultline_checker::shape::{TxnShape, txn_shape};
use faultline_checker::{Checker, History, InputError, OpType};
use serde_json::Value;

use super::{CheckArgs, CheckerName};

/// Selects the checker: `--checker`, else `--model` or `--initial-value`
/// (linearizable), the elle, bank or set flags, else from the operations: Elle-shaped
/// transactions (see [`txn_shape`]) → elle, `transfer` → bank, `add`/`read` → set or
/// counter (see [`infer_add_read`]), anything else → linearizable with the model
/// [`ModelKind::infer`] picks. `format` decides what a register read of `null` says.
pub(super) fn choose_checker(
    history: &History,
    args: &CheckArgs,
    format: Format,
) -> Result<Box<dyn Checker>, InputError> {
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
            Ok(Box::new(Bank::new(BankOptions {
                total,
                accounts: args.bank_accounts.clone(),
                negative_allowed: args.bank_negative_allowed,
            })))
        }
        CheckerName::Set => Ok(Box::new(SetFull::new(SetOptions {
            linearizable: args.set_linearizable,
        }))),
        CheckerName::Counter => Ok(Box::new(Counter::new())),
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
            Ok(Box::new(
                Linearizable::new(model).with_semantics(semantics)?,
            ))
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
            Ok(Box::new(elle(args, workload)?))
        } // ---- end of elle branch -------------------------------------------------
    }
}

/// The Elle checker of `workload` with `--consistency-model`.
fn elle(args: &CheckArgs, workload: ElleWorkload) -> Result<Elle, InputError> {
    let mut options = ElleOptions::new(workload);
    if let Some(name) = &args.consistency_model {
        let model: ConsistencyModel = name.parse().map_err(InputError::Unsupported)?;
        options = options.with_model(model);
    }
    Ok(Elle::new(options))
}

/// The checker [`choose_checker`] would pick for a list-append history, when the flags
/// leave no other choice: no other checker's flags, `--checker` absent or `elle`,
/// `--workload` absent or list-append, no `--report` (which draws from the whole
/// history); JSONL or EDN. `None` otherwise, and when a flag is wrong (the general path names
/// it). For such a file the compact reader ([`TxnHistory`](faultline_checker::history::TxnHistory))
/// and [`Elle::check_compact`] give what the general path gives.
pub(super) fn compact_elle(args: &CheckArgs) -> Option<Elle> {
    let others = args.model.is_some()
        || args.initial_value.is_some()
        || args.bank_total.is_some()
        || args.bank_accounts.is_some()
        || args.bank_negative_allowed
        || args.set_linearizable;
    let list_append = match &args.workload {
        None => true,
        Some(name) => name.parse::<ElleWorkload>() == Ok(ElleWorkload::ListAppend),
    };
    let fits = args.report.is_none()
        && matches!(args.checker, None | Some(CheckerName::Elle))
        && !others
        && list_append;
    if !fits {
        return None;
    }
    elle(args, ElleWorkload::ListAppend).ok()
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
