//! The scripted operations of `faultline client-test`, per workload, and what each reply
//! must be (`docs/your-client.md`, "Checking a client").

use faultline_checker::OpType;
use faultline_checker::history::Key;
use faultline_generator::OpSpec;
use faultline_workloads::workload::Completion;
use serde_json::{Value, json};

use crate::error::UsageError;

/// The workloads `client-test` has a script for.
pub(super) const WORKLOADS: &[&str] = &[
    "register",
    "list-append",
    "rw-register",
    "set",
    "counter",
    "bank",
    "lock",
];

/// One scripted step: an operation and what its reply must be.
pub(super) struct Step {
    pub(super) what: &'static str,
    pub(super) op: OpSpec,
    expect: Expect,
}

/// What a step's reply must be.
enum Expect {
    /// `ok`, with this value (a list-append read of `null` or `[]` alike).
    Ok(Value),
    /// `ok` with a read value that is null (or, for lists, empty).
    OkEmpty,
    /// `ok`, whatever the value.
    OkAny,
    /// `ok` with a list holding each of these (a set's read: others may be there), or
    /// an object with each of these entries (a bank's read).
    OkIncludes(Value),
    /// `ok` with an integer (a counter's read), remembered.
    OkCount,
    /// `ok` with the integer remembered by the last `OkCount` plus this.
    OkCountPlus(i64),
    /// `fail`, with an error.
    Fail,
}

/// What earlier replies of the script said, for the checks that depend on them.
#[derive(Debug, Default)]
pub(super) struct Memo {
    count: Option<i64>,
}

fn step(what: &'static str, f: &str, value: Value, key: Option<Key>, expect: Expect) -> Step {
    let op = OpSpec::new(f, value);
    Step {
        what,
        op: match key {
            Some(key) => op.with_key(key),
            None => op,
        },
        expect,
    }
}

/// The script of `workload` on fresh keys derived from `key`, ending with an unknown `f`.
pub(super) fn script(workload: &str, key: i64) -> Result<Vec<Step>, UsageError> {
    let k = |i: i64| Some(Key::Int(key + i));
    let mut steps = match workload {
        "register" => register(key),
        "list-append" => list_append(key),
        "rw-register" => rw_register(key),
        "set" => vec![
            step(
                "add answers ok",
                "add",
                json!(key),
                k(0),
                Expect::Ok(json!(key)),
            ),
            step(
                "add another",
                "add",
                json!(key + 1),
                k(0),
                Expect::Ok(json!(key + 1)),
            ),
            step(
                "a read returns every element added",
                "read",
                Value::Null,
                k(0),
                Expect::OkIncludes(json!([key, key + 1])),
            ),
            step(
                "a set never added to reads empty",
                "read",
                Value::Null,
                k(1),
                Expect::OkEmpty,
            ),
        ],
        "counter" => vec![
            step(
                "a read returns a total",
                "read",
                Value::Null,
                None,
                Expect::OkCount,
            ),
            step(
                "add answers ok",
                "add",
                json!(5),
                None,
                Expect::Ok(json!(5)),
            ),
            step("add another", "add", json!(2), None, Expect::Ok(json!(2))),
            step(
                "a read returns the total moved by what was added",
                "read",
                Value::Null,
                None,
                Expect::OkCountPlus(7),
            ),
        ],
        "bank" => {
            let (a, b) = (key + 1, key + 2);
            vec![
                step(
                    "setup writes the accounts",
                    "setup",
                    json!([["w", a, 10], ["w", b, 10]]),
                    None,
                    Expect::OkAny,
                ),
                step(
                    "a transfer answers ok",
                    "transfer",
                    json!({"from": a, "to": b, "amount": 3}),
                    None,
                    Expect::Ok(json!({"from": a, "to": b, "amount": 3})),
                ),
                step(
                    "a read returns every balance, moved by the transfer",
                    "read",
                    Value::Null,
                    None,
                    Expect::OkIncludes(json!({a.to_string(): 7, b.to_string(): 13})),
                ),
            ]
        }
        "lock" => vec![
            step(
                "acquire answers ok",
                "acquire",
                Value::Null,
                k(0),
                Expect::OkAny,
            ),
            step(
                "release answers ok",
                "release",
                Value::Null,
                k(0),
                Expect::OkAny,
            ),
            step(
                "the lock can be taken again",
                "acquire",
                Value::Null,
                k(0),
                Expect::OkAny,
            ),
            step("and released", "release", Value::Null, k(0), Expect::OkAny),
        ],
        other => {
            return Err(UsageError(format!(
                "--workload: `{other}`; client-test knows {}",
                WORKLOADS.join(", ")
            )));
        }
    };
    steps.push(step(
        "an unknown f fails with an error",
        "faultline-unknown-f",
        json!(1),
        k(3),
        Expect::Fail,
    ));
    Ok(steps)
}

fn register(key: i64) -> Vec<Step> {
    let k = |i: i64| Some(Key::Int(key + i));
    vec![
        step(
            "write answers ok",
            "write",
            json!(1),
            k(0),
            Expect::Ok(json!(1)),
        ),
        step(
            "a read returns the value written",
            "read",
            Value::Null,
            k(0),
            Expect::Ok(json!(1)),
        ),
        step(
            "cas with the wrong old value fails",
            "cas",
            json!([2, 3]),
            k(0),
            Expect::Fail,
        ),
        step(
            "cas with the right old value succeeds",
            "cas",
            json!([1, 2]),
            k(0),
            Expect::Ok(json!([1, 2])),
        ),
        step(
            "a read returns the value cas wrote",
            "read",
            Value::Null,
            k(0),
            Expect::Ok(json!(2)),
        ),
        step(
            "a read of a key never written is null",
            "read",
            Value::Null,
            k(1),
            Expect::OkEmpty,
        ),
        step(
            "keys are independent",
            "write",
            json!(4),
            k(2),
            Expect::Ok(json!(4)),
        ),
        step(
            "the first key kept its value",
            "read",
            Value::Null,
            k(0),
            Expect::Ok(json!(2)),
        ),
    ]
}

fn list_append(key: i64) -> Vec<Step> {
    let (a, b) = (format!("{key}a"), format!("{key}b"));
    let k = Some(Key::Int(key));
    vec![
        step(
            "a txn appends and reads its own appends",
            "txn",
            json!([["append", a, 1], ["append", a, 2], ["r", a, null]]),
            k.clone(),
            Expect::Ok(json!([
                ["append", a, 1],
                ["append", a, 2],
                ["r", a, [1, 2]]
            ])),
        ),
        step(
            "a later txn reads the list, and a key never written as empty",
            "txn",
            json!([["r", a, null], ["r", b, null]]),
            k.clone(),
            Expect::Ok(json!([["r", a, [1, 2]], ["r", b, []]])),
        ),
        step(
            "appends to several keys in one txn",
            "txn",
            json!([
                ["append", b, 3],
                ["append", a, 4],
                ["r", a, null],
                ["r", b, null]
            ]),
            k,
            Expect::Ok(json!([
                ["append", b, 3],
                ["append", a, 4],
                ["r", a, [1, 2, 4]],
                ["r", b, [3]]
            ])),
        ),
    ]
}

fn rw_register(key: i64) -> Vec<Step> {
    let (a, b) = (format!("{key}a"), format!("{key}b"));
    let k = Some(Key::Int(key));
    vec![
        step(
            "a txn writes and reads its own write",
            "txn",
            json!([["w", a, 1], ["r", a, null]]),
            k.clone(),
            Expect::Ok(json!([["w", a, 1], ["r", a, 1]])),
        ),
        step(
            "a later txn reads the write, and a key never written as null",
            "txn",
            json!([["r", a, null], ["r", b, null]]),
            k.clone(),
            Expect::Ok(json!([["r", a, 1], ["r", b, null]])),
        ),
        step(
            "writes to several keys in one txn",
            "txn",
            json!([["w", b, 2], ["w", a, 3], ["r", a, null], ["r", b, null]]),
            k,
            Expect::Ok(json!([["w", b, 2], ["w", a, 3], ["r", a, 3], ["r", b, 2]])),
        ),
    ]
}

/// Why `done` does not meet the step's expectation (the read of an unset list may be
/// `null` or `[]`); `memo` keeps what later steps compare with.
pub(super) fn mismatch(step: &Step, done: &Completion, memo: &mut Memo) -> Option<String> {
    let got = format!(
        "{}{}{}",
        done.op_type,
        if done.op_type == OpType::Ok {
            format!(" {}", done.value)
        } else {
            String::new()
        },
        done.error
            .as_ref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    let is_ok = done.op_type == OpType::Ok;
    let ok = match &step.expect {
        Expect::Ok(want) => is_ok && same(want, &done.value),
        Expect::OkEmpty => is_ok && empty(&done.value),
        Expect::OkAny => is_ok,
        Expect::OkIncludes(want) => is_ok && includes(want, &done.value),
        Expect::OkCount => {
            memo.count = done.value.as_i64().filter(|_| is_ok);
            memo.count.is_some()
        }
        Expect::OkCountPlus(delta) => {
            is_ok
                && memo
                    .count
                    .is_some_and(|c| done.value.as_i64() == Some(c + delta))
        }
        Expect::Fail => {
            done.op_type == OpType::Fail && done.error.as_ref().is_some_and(|e| !e.is_empty())
        }
    };
    if ok {
        return None;
    }
    let want = match &step.expect {
        Expect::Ok(v) => format!("ok {v}"),
        Expect::OkEmpty => "ok null".to_string(),
        Expect::OkAny => "ok".to_string(),
        Expect::OkIncludes(v) => format!("ok, including {v}"),
        Expect::OkCount => "ok with an integer total".to_string(),
        Expect::OkCountPlus(d) => match memo.count {
            Some(c) => format!("ok {}", c + d),
            None => format!("ok, the earlier total plus {d}"),
        },
        Expect::Fail => "fail with an error".to_string(),
    };
    Some(format!("expected {want}, got {got}"))
}

/// `null`, or an empty list.
fn empty(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(Vec::is_empty)
}

/// Equal, but for transactions' reads of unset lists (`null` or `[]` alike).
fn same(want: &Value, got: &Value) -> bool {
    want == got
        || match (want, got) {
            (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
                w.iter().zip(g).all(|(w, g)| match (w, g) {
                    (Value::Array(w), Value::Array(g)) if w.len() == 3 && g.len() == 3 => {
                        w[0] == g[0]
                            && w[1] == g[1]
                            && (w[2] == g[2] || (empty(&w[2]) && empty(&g[2])))
                    }
                    _ => w == g,
                })
            }
            _ => false,
        }
}

/// Whether `got` holds every element of the list `want`, or every entry of the object
/// `want` (balances compared as numbers).
fn includes(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Array(w), Value::Array(g)) => w.iter().all(|e| g.contains(e)),
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|x| x.as_f64() == v.as_f64())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(op_type: OpType, value: Value) -> Completion {
        Completion {
            op_type,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn every_workload_has_a_script_ending_with_an_unknown_f() {
        for w in WORKLOADS {
            let steps = script(w, 10).unwrap();
            assert!(steps.len() >= 3, "{w}");
            assert_eq!(steps.last().unwrap().op.f, "faultline-unknown-f");
        }
        let e = script("queue", 1).err().unwrap().0;
        assert!(e.contains("client-test knows register, list-append"), "{e}");
    }

    #[test]
    fn reads_may_include_more_and_counters_compare_with_the_last_total() {
        let steps = script("counter", 10).unwrap();
        let mut memo = Memo::default();
        assert_eq!(
            mismatch(&steps[0], &done(OpType::Ok, json!(40)), &mut memo),
            None
        );
        assert_eq!(
            mismatch(&steps[3], &done(OpType::Ok, json!(47)), &mut memo),
            None
        );
        let why = mismatch(&steps[3], &done(OpType::Ok, json!(45)), &mut memo).unwrap();
        assert_eq!(why, "expected ok 47, got ok 45");
        let set = script("set", 10).unwrap();
        assert_eq!(
            mismatch(&set[2], &done(OpType::Ok, json!([3, 10, 11])), &mut memo),
            None
        );
        assert!(mismatch(&set[2], &done(OpType::Ok, json!([10])), &mut memo).is_some());
        let bank = script("bank", 10).unwrap();
        let read = done(OpType::Ok, json!({"11": 7, "12": 13.0, "0": 100}));
        assert_eq!(mismatch(&bank[2], &read, &mut memo), None);
        let wrong = done(OpType::Ok, json!({"11": 10, "12": 10}));
        assert!(mismatch(&bank[2], &wrong, &mut memo).is_some());
        let failed = done(OpType::Fail, Value::Null);
        assert!(mismatch(&bank[0], &failed, &mut memo).is_some());
    }
}
