//! The bank checker (Jepsen's `bank`): transfers move money between accounts, so every
//! successful read of all the balances must sum to the same total, name exactly the
//! accounts, and (unless allowed) show no negative balance.
//!
//! `transfer` operations are not checked themselves; reads that fail or crash are
//! ignored. Each bad read counts once, under its first problem in this order:
//! `unexpected-key`, `missing-key`, `nil-balance`, `wrong-total`, `negative-value`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::history::{History, InputError, Op, OpType, Process};
use crate::results::{Validity, Verdict};

/// How many examples of each error type are kept.
const MAX_EXAMPLES: usize = 10;
/// How many bad reads are explained in words.
const MAX_EXPLAINED: usize = 10;

/// How to check a bank history.
#[derive(Debug, Clone, Default)]
pub struct BankOptions {
    /// The sum every read must have.
    pub total: i64,
    /// The accounts every read must name exactly; `None` accepts any account names.
    pub accounts: Option<Vec<String>>,
    /// Whether a negative balance is allowed.
    pub negative_allowed: bool,
}

/// What is wrong with one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BankErrorType {
    /// The read names an account not in [`BankOptions::accounts`].
    UnexpectedKey,
    /// The read lacks an account of [`BankOptions::accounts`].
    MissingKey,
    /// An account's balance is `null`.
    NilBalance,
    /// The balances do not sum to the total.
    WrongTotal,
    /// A balance is negative.
    NegativeValue,
}

impl BankErrorType {
    /// The name in `results.json`, as Jepsen spells it.
    pub fn name(self) -> &'static str {
        match self {
            BankErrorType::UnexpectedKey => "unexpected-key",
            BankErrorType::MissingKey => "missing-key",
            BankErrorType::NilBalance => "nil-balance",
            BankErrorType::WrongTotal => "wrong-total",
            BankErrorType::NegativeValue => "negative-value",
        }
    }
}

/// One bad read.
#[derive(Debug, Clone, PartialEq)]
pub struct BankError {
    /// Its first problem.
    pub error_type: BankErrorType,
    /// The `index` of the read's `ok` event.
    pub index: u64,
    /// The balances read.
    pub value: Value,
    /// The sum of the non-null balances.
    pub total: i64,
    /// What is wrong, in words (e.g. the unexpected accounts).
    pub what: String,
}

/// Checks every successful read. A read whose value is not an object of integer (or
/// null) balances is an [`InputError`] naming its line.
pub fn check(history: &History, options: &BankOptions) -> Result<Verdict, InputError> {
    let (reads, errors) = analyze(history, options)?;
    let valid = if errors.is_empty() {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let mut details = Map::new();
    details.insert("total".into(), Value::from(options.total));
    details.insert("read_count".into(), Value::from(reads));
    details.insert("error_count".into(), Value::from(errors.len()));
    if let Some(first) = errors.first() {
        details.insert(
            "first_error".into(),
            json!({"index": first.index, "type": first.error_type.name(), "what": first.what}),
        );
    }
    let mut by_type: BTreeMap<BankErrorType, Vec<&BankError>> = BTreeMap::new();
    for error in &errors {
        by_type.entry(error.error_type).or_default().push(error);
    }
    let grouped: Map<String, Value> = by_type
        .iter()
        .map(|(t, errors)| {
            let examples: Vec<Value> = errors
                .iter()
                .take(MAX_EXAMPLES)
                .map(|e| json!({"index": e.index, "value": e.value, "total": e.total, "what": e.what}))
                .collect();
            (
                t.name().to_string(),
                json!({"count": errors.len(), "examples": examples}),
            )
        })
        .collect();
    details.insert("errors".into(), Value::Object(grouped));
    let mut explanation = Vec::new();
    for e in errors.iter().take(MAX_EXPLAINED) {
        let position = history.position_of_index(e.index);
        let (time, process) = history
            .ops()
            .get(position)
            .map_or((0, Process::Nemesis), |op| (op.time, op.process));
        explanation.push(format!(
            "{}: read completed at index {} (line {}, time {time} ns, process {process}) returned {}: {}",
            e.error_type.name(),
            e.index,
            history.line_of(position),
            e.value,
            e.what
        ));
    }
    if errors.len() > MAX_EXPLAINED {
        explanation.push(format!(
            "... and {} more bad reads",
            errors.len() - MAX_EXPLAINED
        ));
    }
    Ok(Verdict {
        valid,
        details,
        explanation,
    })
}

/// The number of ok reads and the bad ones, in history order.
pub fn analyze(
    history: &History,
    options: &BankOptions,
) -> Result<(usize, Vec<BankError>), InputError> {
    let expected: Option<BTreeSet<&str>> = options
        .accounts
        .as_ref()
        .map(|a| a.iter().map(String::as_str).collect());
    let mut reads = 0;
    let mut errors = Vec::new();
    for (position, op) in history.ops().iter().enumerate() {
        if !op.is_client() || op.f != "read" || op.op_type != OpType::Ok {
            continue;
        }
        reads += 1;
        if let Some(error) = check_read(history, position, op, expected.as_ref(), options)? {
            errors.push(error);
        }
    }
    Ok((reads, errors))
}

/// The first problem of one ok read, if any.
fn check_read(
    history: &History,
    position: usize,
    op: &Op,
    expected: Option<&BTreeSet<&str>>,
    options: &BankOptions,
) -> Result<Option<BankError>, InputError> {
    let Value::Object(balances) = &op.value else {
        return Err(history.error_at(
            position,
            format!(
                "bank read: the value must be an object of account balances, not {}",
                op.value
            ),
        ));
    };
    let mut nils = Vec::new();
    let mut negative = Vec::new();
    let mut total = 0i64;
    for (account, balance) in balances {
        match balance {
            Value::Null => nils.push(account.as_str()),
            _ => {
                let Some(n) = balance.as_i64() else {
                    return Err(history.error_at(
                        position,
                        format!(
                            "bank read: the balance of account `{account}` must be an integer, not {balance}"
                        ),
                    ));
                };
                if n < 0 {
                    negative.push(format!("{account}: {n}"));
                }
                total = total.saturating_add(n);
            }
        }
    }
    let error = |error_type, what: String| {
        Some(BankError {
            error_type,
            index: op.index,
            value: op.value.clone(),
            total,
            what,
        })
    };
    if let Some(expected) = expected {
        let unexpected: Vec<&str> = balances
            .keys()
            .map(String::as_str)
            .filter(|k| !expected.contains(k))
            .collect();
        if !unexpected.is_empty() {
            return Ok(error(
                BankErrorType::UnexpectedKey,
                format!("unexpected accounts {}", unexpected.join(", ")),
            ));
        }
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|k| !balances.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Ok(error(
                BankErrorType::MissingKey,
                format!("missing accounts {}", missing.join(", ")),
            ));
        }
    }
    if !nils.is_empty() {
        return Ok(error(
            BankErrorType::NilBalance,
            format!("null balance for accounts {}", nils.join(", ")),
        ));
    }
    if total != options.total {
        return Ok(error(
            BankErrorType::WrongTotal,
            format!("total {total}, expected {}", options.total),
        ));
    }
    if !options.negative_allowed && !negative.is_empty() {
        return Ok(error(
            BankErrorType::NegativeValue,
            format!("negative balances {}", negative.join(", ")),
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn options(accounts: bool) -> BankOptions {
        BankOptions {
            total: 10,
            accounts: accounts.then(|| vec!["a".to_string(), "b".to_string()]),
            negative_allowed: false,
        }
    }

    /// A history of one ok read per value, preceded by a transfer.
    fn reads(values: &[Value]) -> History {
        let mut ops = vec![
            Op::new(
                0,
                0,
                Process::Client(9),
                OpType::Invoke,
                "transfer",
                json!({"from": "a", "to": "b", "amount": 1}),
            ),
            Op::new(
                1,
                5,
                Process::Client(9),
                OpType::Ok,
                "transfer",
                json!({"from": "a", "to": "b", "amount": 1}),
            ),
        ];
        for (i, v) in values.iter().enumerate() {
            let n = ops.len() as u64;
            let p = Process::Client(i as u64);
            ops.push(Op::new(
                n,
                n as i64 * 10,
                p,
                OpType::Invoke,
                "read",
                Value::Null,
            ));
            ops.push(Op::new(
                n + 1,
                n as i64 * 10 + 5,
                p,
                OpType::Ok,
                "read",
                v.clone(),
            ));
        }
        History::from_ops("test", ops).unwrap()
    }

    fn first_type(values: &[Value], accounts: bool) -> Option<&'static str> {
        let (_, errors) = analyze(&reads(values), &options(accounts)).unwrap();
        errors.first().map(|e| e.error_type.name())
    }

    #[test]
    fn good_reads_are_valid() {
        let h = reads(&[json!({"a": 10, "b": 0}), json!({"a": 4, "b": 6})]);
        let verdict = check(&h, &options(true)).unwrap();
        assert_eq!(verdict.valid, Validity::Valid);
        assert_eq!(verdict.details["read_count"], json!(2));
        assert_eq!(verdict.details["error_count"], json!(0));
    }

    #[test]
    fn each_error_type_is_found() {
        let cases = [
            (json!({"a": 10, "b": 0, "c": 0}), true, "unexpected-key"),
            (json!({"a": 10}), true, "missing-key"),
            (json!({"a": 10, "b": null}), true, "nil-balance"),
            (json!({"a": 4, "b": 5}), true, "wrong-total"),
            (json!({"a": 12, "b": -2}), true, "negative-value"),
            (json!({"a": 10, "b": 0, "c": 0}), false, ""),
            (json!({"x": 4, "y": 5}), false, "wrong-total"),
        ];
        for (value, accounts, expected) in cases {
            let found = first_type(std::slice::from_ref(&value), accounts).unwrap_or("");
            assert_eq!(found, expected, "{value}");
        }
        let allowed = BankOptions {
            negative_allowed: true,
            ..options(true)
        };
        let (_, errors) = analyze(&reads(&[json!({"a": 12, "b": -2})]), &allowed).unwrap();
        assert!(errors.is_empty());
    }

    #[test]
    fn details_group_errors_by_type() {
        let h = reads(&[
            json!({"a": 4, "b": 5}),
            json!({"a": 10, "b": 0}),
            json!({"a": 4, "b": 7}),
            json!({"a": 11, "b": -1}),
        ]);
        let verdict = check(&h, &options(true)).unwrap();
        assert_eq!(verdict.valid, Validity::Invalid);
        assert_eq!(verdict.details["read_count"], json!(4));
        assert_eq!(verdict.details["error_count"], json!(3));
        assert_eq!(verdict.details["first_error"]["index"], json!(3));
        let wrong = &verdict.details["errors"]["wrong-total"];
        assert_eq!(wrong["count"], json!(2));
        assert_eq!(wrong["examples"][1]["total"], json!(11));
        assert_eq!(
            verdict.details["errors"]["negative-value"]["count"],
            json!(1)
        );
        assert!(verdict.explanation[0].contains("total 9, expected 10"));
        assert!(verdict.explanation[0].contains("process 0"));
    }

    #[test]
    fn failed_reads_are_ignored_and_malformed_reads_name_the_line() {
        let mut ops = reads(&[]).ops().to_vec();
        ops.push(Op::new(
            2,
            30,
            Process::Client(1),
            OpType::Invoke,
            "read",
            Value::Null,
        ));
        ops.push(Op::new(
            3,
            40,
            Process::Client(1),
            OpType::Fail,
            "read",
            json!(5),
        ));
        let h = History::from_ops("test", ops.clone()).unwrap();
        assert_eq!(check(&h, &options(true)).unwrap().valid, Validity::Valid);
        for bad in [
            json!([1, 2]),
            json!({"a": "ten", "b": 0}),
            json!({"a": 1.5}),
        ] {
            let error = check(&reads(&[bad]), &options(true)).unwrap_err();
            assert!(error.to_string().starts_with("test:4:"), "{error}");
        }
    }

    /// A bank with atomic transfers between `n` accounts; reads see a snapshot taken
    /// between their invocation and completion.
    fn simulate(seed: u64, steps: usize, total: i64) -> History {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let names = ["a", "b", "c", "d"];
        let mut balances = [total, 0, 0, 0];
        let mut ops: Vec<Op> = Vec::new();
        // Per process: None idle, Some(None) an open transfer, Some(Some(v)) a read seen.
        let mut open: Vec<Option<Option<Value>>> = vec![None; 3];
        for _ in 0..steps {
            let p = rng.random_range(0..open.len());
            let n = ops.len() as u64;
            let process = Process::Client(p as u64);
            match open[p].take() {
                None if rng.random_bool(0.5) => {
                    let (from, to) = (rng.random_range(0..4), rng.random_range(0..4));
                    let amount = rng.random_range(0..5).min(balances[from]);
                    balances[from] -= amount;
                    balances[to] += amount;
                    let v = json!({"from": names[from], "to": names[to], "amount": amount});
                    ops.push(Op::new(n, n as i64, process, OpType::Invoke, "transfer", v));
                    open[p] = Some(None);
                }
                None => {
                    ops.push(Op::new(
                        n,
                        n as i64,
                        process,
                        OpType::Invoke,
                        "read",
                        Value::Null,
                    ));
                    let snapshot: Map<String, Value> = names
                        .iter()
                        .zip(balances)
                        .map(|(k, b)| (k.to_string(), json!(b)))
                        .collect();
                    open[p] = Some(Some(Value::Object(snapshot)));
                }
                Some(None) => {
                    ops.push(Op::new(
                        n,
                        n as i64,
                        process,
                        OpType::Ok,
                        "transfer",
                        Value::Null,
                    ));
                }
                Some(Some(v)) => {
                    ops.push(Op::new(n, n as i64, process, OpType::Ok, "read", v));
                }
            }
        }
        History::from_ops("sim", ops).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

        #[test]
        fn real_banks_are_valid_and_a_changed_balance_is_caught(seed in any::<u64>(), steps in 1usize..50, pick in any::<usize>(), delta in 1i64..5) {
            let opts = BankOptions {
                total: 20,
                accounts: Some(["a", "b", "c", "d"].map(String::from).to_vec()),
                negative_allowed: false,
            };
            let h = simulate(seed, steps, 20);
            let (count, errors) = analyze(&h, &opts).unwrap();
            prop_assert!(errors.is_empty(), "{:?}", errors);
            let oracle = h.ops().iter().filter(|op| op.f == "read" && op.op_type == OpType::Ok).count();
            prop_assert_eq!(count, oracle);
            let ok_reads: Vec<usize> = h.ops().iter().enumerate()
                .filter(|(_, op)| op.f == "read" && op.op_type == OpType::Ok)
                .map(|(i, _)| i)
                .collect();
            if ok_reads.is_empty() {
                return Ok(());
            }
            let target = ok_reads[pick % ok_reads.len()];
            let mut ops = h.ops().to_vec();
            let account = ["a", "b", "c", "d"][pick % 4];
            let old = ops[target].value[account].as_i64().unwrap();
            ops[target].value[account] = json!(old + delta);
            let bad = History::from_ops("sim", ops).unwrap();
            let verdict = check(&bad, &opts).unwrap();
            prop_assert_eq!(verdict.valid, Validity::Invalid);
            prop_assert_eq!(&verdict.details["errors"]["wrong-total"]["examples"][0]["total"], &json!(20 + delta));
        }
    }
}
