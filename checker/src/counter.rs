//! The counter checker (Jepsen's `counter`): every successful read of a counter must lie
//! between the least and the greatest total the adds could have produced by then.
//!
//! `add` carries an integer delta (which may be negative) and `read` returns the total.
//! For a read invoked at `i` and completed at `c`:
//!
//! - an add is *certainly applied* when it completed `ok` before `i`;
//! - an add is *possibly applied* when it was invoked before `c` and did not fail (it is
//!   `ok`, `info`, or never completed) and is not certainly applied.
//!
//! The lower bound is the certain sum plus every negative possible delta, the upper bound
//! the certain sum plus every positive possible delta. With non-negative deltas this is
//! exactly Jepsen's checker. Operations on different keys are separate counters.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::history::{History, InputError, Key, Op, OpType, Process};
use crate::results::{Validity, Verdict};

/// How many out-of-bounds reads are listed in the details and explained.
const MAX_ERRORS: usize = 20;

/// How to check a counter history. There is nothing to choose yet.
#[derive(Debug, Clone, Default)]
pub struct CounterOptions {}

/// A read that fell outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterError {
    /// The key, when the history has keys.
    pub key: Option<Key>,
    /// The `index` of the read's `ok` event.
    pub index: u64,
    /// The value read.
    pub value: i64,
    /// The least total possible.
    pub lower: i64,
    /// The greatest total possible.
    pub upper: i64,
}

/// Checks every key's counter and returns the merged verdict. A delta or a read value
/// that is not an integer is an [`InputError`] naming its line.
pub fn check(history: &History, _options: &CounterOptions) -> Result<Verdict, InputError> {
    let (reads, errors) = analyze(history)?;
    let keys: std::collections::BTreeSet<Option<Key>> = history
        .ops()
        .iter()
        .filter(|op| op.is_client())
        .map(|op| op.key.clone())
        .collect();
    let valid = if errors.is_empty() {
        Validity::Valid
    } else {
        Validity::Invalid
    };
    let mut details = Map::new();
    details.insert("keys".into(), Value::from(keys.len()));
    details.insert("reads".into(), Value::from(reads));
    details.insert("error_count".into(), Value::from(errors.len()));
    let listed: Vec<Value> = errors
        .iter()
        .take(MAX_ERRORS)
        .map(|e| {
            let mut object = json!({
                "index": e.index, "value": e.value, "lower": e.lower, "upper": e.upper
            });
            if let (Some(key), Value::Object(map)) = (&e.key, &mut object) {
                map.insert("key".into(), key.to_json());
            }
            object
        })
        .collect();
    details.insert("errors".into(), Value::from(listed));
    let mut explanation = Vec::new();
    for e in errors.iter().take(MAX_ERRORS) {
        let position = history.position_of_index(e.index);
        let op = history.ops().get(position);
        let key = e
            .key
            .as_ref()
            .map(|k| format!("key {k}: "))
            .unwrap_or_default();
        explanation.push(format!(
            "{key}read completed at index {} (line {}{}) returned {}, but the total could only be between {} and {}",
            e.index,
            history.line_of(position),
            op.map(describe).unwrap_or_default(),
            e.value,
            e.lower,
            e.upper
        ));
    }
    if errors.len() > MAX_ERRORS {
        explanation.push(format!(
            "... and {} more reads out of bounds",
            errors.len() - MAX_ERRORS
        ));
    }
    Ok(Verdict {
        valid,
        details,
        explanation,
    })
}

/// `, time T ns, process P` for an event.
fn describe(op: &Op) -> String {
    format!(", time {} ns, process {}", op.time, op.process)
}

/// Running sums of one key.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    /// Deltas of ok adds completed so far.
    certain: i64,
    /// Positive deltas of ok adds completed so far.
    certain_pos: i64,
    /// Negative deltas of ok adds completed so far.
    certain_neg: i64,
    /// Positive deltas of non-failed adds invoked so far.
    possible_pos: i64,
    /// Negative deltas of non-failed adds invoked so far.
    possible_neg: i64,
}

/// The number of ok reads and the reads out of bounds, in history order. One pass over
/// the history after pairing, so linear in its length.
pub fn analyze(history: &History) -> Result<(usize, Vec<CounterError>), InputError> {
    // The outcome of each add, by the position of its invocation.
    let mut outcome: BTreeMap<u64, OpType> = BTreeMap::new();
    for operation in history.operations() {
        if operation.invoke.f == "add" {
            outcome.insert(operation.invoke.index, operation.outcome());
        }
    }
    let mut sums: BTreeMap<Option<Key>, Sums> = BTreeMap::new();
    // Open operations per process: (delta of an add, sums when a read began).
    let mut open: BTreeMap<u64, (Option<i64>, Sums)> = BTreeMap::new();
    let mut reads = 0;
    let mut errors = Vec::new();
    for (position, op) in history.ops().iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.f != "add" && op.f != "read" {
            continue;
        }
        let at = |message: String| history.error_at(position, message);
        let key_sums = sums.entry(op.key.clone()).or_default();
        match (op.f.as_str(), op.op_type) {
            ("add", OpType::Invoke) => {
                let delta = op.value.as_i64().ok_or_else(|| {
                    at(format!(
                        "counter add: the delta must be an integer, not {}",
                        op.value
                    ))
                })?;
                if outcome.get(&op.index) != Some(&OpType::Fail) {
                    if delta > 0 {
                        key_sums.possible_pos = key_sums.possible_pos.saturating_add(delta);
                    } else {
                        key_sums.possible_neg = key_sums.possible_neg.saturating_add(delta);
                    }
                }
                open.insert(process, (Some(delta), *key_sums));
            }
            ("read", OpType::Invoke) => {
                open.insert(process, (None, *key_sums));
            }
            ("add", OpType::Ok) => {
                if let Some((Some(delta), _)) = open.remove(&process) {
                    key_sums.certain = key_sums.certain.saturating_add(delta);
                    if delta > 0 {
                        key_sums.certain_pos = key_sums.certain_pos.saturating_add(delta);
                    } else {
                        key_sums.certain_neg = key_sums.certain_neg.saturating_add(delta);
                    }
                }
            }
            ("read", OpType::Ok) => {
                let value = op.value.as_i64().ok_or_else(|| {
                    at(format!(
                        "counter read: the value read must be an integer, not {}",
                        op.value
                    ))
                })?;
                let Some((_, began)) = open.remove(&process) else {
                    continue;
                };
                reads += 1;
                let lower = began
                    .certain
                    .saturating_add(key_sums.possible_neg)
                    .saturating_sub(began.certain_neg);
                let upper = began
                    .certain
                    .saturating_add(key_sums.possible_pos)
                    .saturating_sub(began.certain_pos);
                if value < lower || value > upper {
                    errors.push(CounterError {
                        key: op.key.clone(),
                        index: op.index,
                        value,
                        lower,
                        upper,
                    });
                }
            }
            _ => {
                open.remove(&process);
            }
        }
    }
    Ok((reads, errors))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::rows;

    fn valid(h: &History) -> Validity {
        check(h, &CounterOptions::default()).unwrap().valid
    }

    #[test]
    fn sequential_counter_is_valid() {
        let h = rows(&[
            (0, "invoke", "add", json!(3)),
            (0, "ok", "add", json!(3)),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(3)),
        ]);
        assert_eq!(valid(&h), Validity::Valid);
    }

    #[test]
    fn read_above_the_upper_bound_is_invalid() {
        let h = rows(&[
            (0, "invoke", "add", json!(3)),
            (0, "ok", "add", json!(3)),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(4)),
        ]);
        let verdict = check(&h, &CounterOptions::default()).unwrap();
        assert_eq!(verdict.valid, Validity::Invalid);
        assert_eq!(verdict.details["errors"][0]["lower"], json!(3));
        assert_eq!(verdict.details["errors"][0]["upper"], json!(3));
        assert!(verdict.explanation[0].contains("between 3 and 3"));
    }

    #[test]
    fn concurrent_and_crashed_adds_widen_the_bounds() {
        // add 5 crashes, add -2 is concurrent with the read: anything in [1, 8] goes.
        let h = rows(&[
            (0, "invoke", "add", json!(3)),
            (0, "ok", "add", json!(3)),
            (1, "invoke", "add", json!(5)),
            (1, "info", "add", json!(5)),
            (2, "invoke", "read", Value::Null),
            (3, "invoke", "add", json!(-2)),
            (2, "ok", "read", json!(8)),
            (3, "ok", "add", json!(-2)),
        ]);
        assert_eq!(valid(&h), Validity::Valid);
        let (_, errors) = analyze(&h).unwrap();
        assert!(errors.is_empty());
        let low = rows(&[
            (0, "invoke", "add", json!(3)),
            (0, "ok", "add", json!(3)),
            (3, "invoke", "add", json!(-2)),
            (2, "invoke", "read", Value::Null),
            (2, "ok", "read", json!(0)),
        ]);
        let (_, errors) = analyze(&low).unwrap();
        assert_eq!((errors[0].lower, errors[0].upper), (1, 3));
    }

    #[test]
    fn failed_adds_do_not_count_and_failed_reads_are_ignored() {
        let h = rows(&[
            (0, "invoke", "add", json!(3)),
            (0, "fail", "add", json!(3)),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(3)),
            (2, "invoke", "read", Value::Null),
            (2, "fail", "read", Value::Null),
        ]);
        assert_eq!(valid(&h), Validity::Invalid);
    }

    #[test]
    fn keys_are_separate_counters() {
        let mut ops: Vec<Op> = rows(&[
            (0, "invoke", "add", json!(3)),
            (0, "ok", "add", json!(3)),
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!(0)),
        ])
        .ops()
        .to_vec();
        ops[0] = ops[0].clone().with_key(Key::Str("a".into()));
        ops[1] = ops[1].clone().with_key(Key::Str("a".into()));
        ops[2] = ops[2].clone().with_key(Key::Str("b".into()));
        ops[3] = ops[3].clone().with_key(Key::Str("b".into()));
        let h = History::from_ops("test", ops).unwrap();
        let verdict = check(&h, &CounterOptions::default()).unwrap();
        assert_eq!(verdict.valid, Validity::Valid);
        assert_eq!(verdict.details["keys"], json!(2));
    }

    #[test]
    fn malformed_values_name_the_line() {
        let h = rows(&[
            (0, "invoke", "add", json!("x")),
            (0, "ok", "add", json!("x")),
        ]);
        let error = check(&h, &CounterOptions::default()).unwrap_err();
        assert!(error.to_string().starts_with("test:1:"), "{error}");
        let h = rows(&[
            (1, "invoke", "read", Value::Null),
            (1, "ok", "read", json!([1])),
        ]);
        let error = check(&h, &CounterOptions::default()).unwrap_err();
        assert!(error.to_string().starts_with("test:2:"), "{error}");
    }

    /// A history from a real counter: each operation takes effect at one moment between
    /// its invocation and completion; a crash (`info`) may come before or after it.
    fn simulate(seed: u64, steps: usize) -> History {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut total = 0i64;
        let mut ops = Vec::new();
        let mut next_process = 4u64;
        // Per slot: process, and the open op: is add, delta, applied, result.
        type Open = (bool, i64, bool, i64);
        let mut slots: Vec<(u64, Option<Open>)> = (0..4).map(|p| (p, None)).collect();
        let push = |ops: &mut Vec<Op>, p: u64, t: OpType, f: &str, v: Value| {
            let i = ops.len() as u64;
            ops.push(Op::new(i, i as i64, Process::Client(p), t, f, v));
        };
        for _ in 0..steps {
            let s = rng.random_range(0..slots.len());
            let (p, state) = slots[s];
            match state {
                None => {
                    let is_add = rng.random_bool(0.6);
                    let delta = rng.random_range(-3i64..6);
                    let (f, v) = if is_add {
                        ("add", json!(delta))
                    } else {
                        ("read", Value::Null)
                    };
                    push(&mut ops, p, OpType::Invoke, f, v);
                    slots[s].1 = Some((is_add, delta, false, 0));
                }
                Some((is_add, delta, false, _)) => {
                    if is_add {
                        total += delta;
                    }
                    slots[s].1 = Some((is_add, delta, true, total));
                }
                Some((is_add, delta, true, seen)) => {
                    let f = if is_add { "add" } else { "read" };
                    if rng.random_bool(0.1) {
                        push(&mut ops, p, OpType::Info, f, Value::Null);
                        slots[s] = (next_process, None);
                        next_process += 1;
                    } else if is_add {
                        push(&mut ops, p, OpType::Ok, f, json!(delta));
                        slots[s].1 = None;
                    } else {
                        push(&mut ops, p, OpType::Ok, f, json!(seen));
                        slots[s].1 = None;
                    }
                }
            }
            // Sometimes an add fails before taking effect.
            if let Some((true, delta, false, _)) = slots[s].1
                && rng.random_bool(0.05)
            {
                push(&mut ops, p, OpType::Fail, "add", json!(delta));
                slots[s].1 = None;
            }
        }
        History::from_ops("sim", ops).unwrap()
    }

    /// The bounds of every ok read by the definition, in O(n²).
    fn oracle(h: &History) -> Vec<(u64, i64, i64)> {
        let operations = h.operations();
        let mut bounds = Vec::new();
        for read in &operations {
            let Some(done) = read.completion else {
                continue;
            };
            if read.invoke.f != "read" || done.op_type != OpType::Ok {
                continue;
            }
            let (mut lower, mut upper) = (0, 0);
            for add in &operations {
                if add.invoke.f != "add" || add.outcome() == OpType::Fail {
                    continue;
                }
                let delta = add.invoke.value.as_i64().unwrap();
                let certain = add.outcome() == OpType::Ok
                    && add.completion.unwrap().index < read.invoke.index;
                if certain {
                    lower += delta;
                    upper += delta;
                } else if add.invoke.index < done.index {
                    lower += delta.min(0);
                    upper += delta.max(0);
                }
            }
            bounds.push((done.index, lower, upper));
        }
        bounds
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

        #[test]
        fn real_counters_are_valid_and_corrupt_reads_are_caught(seed in any::<u64>(), steps in 1usize..60, pick in any::<usize>(), out in 1i64..4) {
            let h = simulate(seed, steps);
            prop_assert_eq!(valid(&h), Validity::Valid);
            let bounds = oracle(&h);
            if bounds.is_empty() {
                return Ok(());
            }
            let (index, lower, upper) = bounds[pick % bounds.len()];
            let mut ops = h.ops().to_vec();
            let corrupt = if pick % 2 == 0 { upper + out } else { lower - out };
            ops[index as usize].value = json!(corrupt);
            let bad = History::from_ops("sim", ops).unwrap();
            let (_, errors) = analyze(&bad).unwrap();
            prop_assert_eq!(errors.len(), 1);
            prop_assert_eq!((errors[0].index, errors[0].lower, errors[0].upper), (index, lower, upper));
            prop_assert_eq!(valid(&bad), Validity::Invalid);
        }
    }
}
