use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::history::Op;
use crate::testing::rows;

fn run(h: &History, linearizable: bool) -> Verdict {
    check(h, &SetOptions { linearizable }).unwrap()
}

fn add(p: u64, t: &str, v: i64) -> (u64, &'static str, &'static str, Value) {
    let t = match t {
        "invoke" => "invoke",
        "ok" => "ok",
        "fail" => "fail",
        _ => "info",
    };
    (p, t, "add", json!(v))
}

fn read(p: u64, t: &str, v: Value) -> (u64, &'static str, &'static str, Value) {
    let t = if t == "invoke" { "invoke" } else { "ok" };
    (p, t, "read", v)
}

#[test]
fn stable_elements_are_valid() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([1])),
    ]);
    let v = run(&h, true);
    assert_eq!(v.valid, Validity::Valid);
    assert_eq!(v.details["stable_count"], json!(1));
    assert_eq!(v.details["ok_count"], json!(1));
}

#[test]
fn lost_element_is_invalid() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        add(0, "invoke", 2),
        add(0, "ok", 2),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([1, 2])),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([2])),
    ]);
    let v = run(&h, false);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(v.details["lost"], json!([1]));
    assert!(
        v.explanation[0].starts_with("lost element 1"),
        "{:?}",
        v.explanation
    );
    assert!(v.explanation[0].contains("index 6"), "{:?}", v.explanation);
}

#[test]
fn acked_element_never_seen_is_lost() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        add(0, "invoke", 2),
        add(0, "ok", 2),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([2])),
    ]);
    assert_eq!(run(&h, false).details["lost"], json!([1]));
}

#[test]
fn stale_element_is_invalid_only_when_linearizable() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([])),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([1])),
    ]);
    let relaxed = run(&h, false);
    assert_eq!(relaxed.valid, Validity::Valid);
    assert_eq!(relaxed.details["stale"], json!([1]));
    let strict = run(&h, true);
    assert_eq!(strict.valid, Validity::Invalid);
    assert!(strict.explanation[0].starts_with("stale element 1"));
}

#[test]
fn never_read_and_recovered_elements() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "info", 1),
        add(2, "invoke", 3),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([1])),
        add(3, "invoke", 2),
        add(3, "ok", 2),
    ]);
    let v = run(&h, true);
    assert_eq!(v.valid, Validity::Valid);
    assert_eq!(v.details["recovered"], json!([1]));
    assert_eq!(v.details["never_read"], json!([2, 3]));
    assert_eq!(v.details["info_count"], json!(2));
}

#[test]
fn unexpected_and_failed_adds_observed_are_invalid() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "fail", 1),
        add(0, "invoke", 2),
        add(0, "ok", 2),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([1, 2, 9])),
    ]);
    let v = run(&h, false);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(v.details["unexpected"], json!([1, 9]));
    assert_eq!(v.details["failed_add_observed"], json!([1]));
    let text = v.explanation.join("\n");
    assert!(
        text.contains("unexpected element 1: its add failed"),
        "{text}"
    );
    assert!(text.contains("unexpected element 9: read by"), "{text}");
}

#[test]
fn duplicated_element_is_invalid() {
    let h = rows(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([1, 1])),
    ]);
    let v = run(&h, false);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(
        v.details["duplicated"],
        json!([{"element": 1, "times": 2, "index": 3}])
    );
}

#[test]
fn nothing_stable_is_unknown_and_malformed_reads_name_the_line() {
    let h = rows(&[add(0, "invoke", 1), add(0, "ok", 1)]);
    assert_eq!(run(&h, false).valid, Validity::Unknown);
    let h = rows(&[read(1, "invoke", Value::Null), read(1, "ok", json!(3))]);
    let error = check(&h, &SetOptions::default()).unwrap_err();
    assert!(error.to_string().starts_with("test:2:"), "{error}");
}

#[test]
fn keys_are_separate_sets() {
    let mut ops = rows(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        read(1, "invoke", Value::Null),
        read(1, "ok", json!([])),
    ])
    .ops()
    .to_vec();
    for (i, key) in [(0, "a"), (1, "a"), (2, "b"), (3, "b")] {
        ops[i] = ops[i].clone().with_key(Key::Str(key.into()));
    }
    let v = run(&History::from_ops("test", ops).unwrap(), false);
    assert_eq!(v.details["lost_count"], json!(0));
    assert_eq!(v.details["never_read"], json!([{"key": "a", "element": 1}]));
}

/// A history from a real (linearizable) set: each operation takes effect at one
/// moment between its invocation and completion.
fn simulate(seed: u64, steps: usize) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut set: BTreeSet<i64> = BTreeSet::new();
    let mut ops: Vec<Op> = Vec::new();
    let mut next = 0i64;
    let mut next_process = 3u64;
    // Per slot: process, and the open op: (element or None for a read, applied, seen).
    type Open = (Option<i64>, bool, Value);
    let mut slots: Vec<(u64, Option<Open>)> = (0..3).map(|p| (p, None)).collect();
    for _ in 0..steps {
        let s = rng.random_range(0..slots.len());
        let (p, state) = slots[s].clone();
        let n = ops.len() as u64;
        let op = |t, f, v| Op::new(n, n as i64, Process::Client(p), t, f, v);
        match state {
            None if rng.random_bool(0.6) => {
                ops.push(op(OpType::Invoke, "add", json!(next)));
                slots[s].1 = Some((Some(next), false, Value::Null));
                next += 1;
            }
            None => {
                ops.push(op(OpType::Invoke, "read", Value::Null));
                slots[s].1 = Some((None, false, Value::Null));
            }
            Some((element, false, _)) => {
                if let Some(e) = element {
                    set.insert(e);
                }
                let seen = json!(set.iter().collect::<Vec<_>>());
                slots[s].1 = Some((element, true, seen));
            }
            Some((element, true, seen)) => {
                if rng.random_bool(0.1) {
                    let v = element.map_or(Value::Null, |e| json!(e));
                    let f = if element.is_some() { "add" } else { "read" };
                    ops.push(op(OpType::Info, f, v));
                    slots[s] = (next_process, None);
                    next_process += 1;
                } else {
                    ops.push(match element {
                        Some(e) => op(OpType::Ok, "add", json!(e)),
                        None => op(OpType::Ok, "read", seen),
                    });
                    slots[s].1 = None;
                }
            }
        }
    }
    History::from_ops("sim", ops).unwrap()
}

/// Lost and stale elements by the definitions, in O(n²), for histories whose reads
/// only see added elements.
fn oracle(h: &History) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let operations = h.operations();
    let reads: Vec<(u64, u64, Vec<i64>)> = operations
        .iter()
        .filter(|o| o.invoke.f == "read" && o.outcome() == OpType::Ok)
        .map(|o| {
            let done = o.completion.unwrap();
            let v = done.value.as_array().unwrap();
            (
                o.invoke.index,
                done.index,
                v.iter().map(|x| x.as_i64().unwrap()).collect(),
            )
        })
        .collect();
    let (mut lost, mut stale) = (BTreeSet::new(), BTreeSet::new());
    for add in operations.iter().filter(|o| o.invoke.f == "add") {
        let e = add.invoke.value.as_i64().unwrap();
        let mut known = add
            .completion
            .filter(|c| c.op_type == OpType::Ok)
            .map(|c| c.index);
        for (_, done, seen) in &reads {
            if seen.contains(&e) {
                known = Some(known.map_or(*done, |k| k.min(*done)));
            }
        }
        let Some(known) = known else { continue };
        // Reads that count: completed after the add began.
        let relevant: Vec<_> = reads.iter().filter(|r| r.1 > add.invoke.index).collect();
        let missed_after = |r: &&(u64, u64, Vec<i64>)| r.0 > known && !r.2.contains(&e);
        let is_lost = relevant
            .iter()
            .filter(|r| missed_after(r))
            .any(|miss| !relevant.iter().any(|r| r.0 > miss.0 && r.2.contains(&e)));
        if is_lost {
            lost.insert(e);
        } else if relevant.iter().any(missed_after)
            && relevant
                .iter()
                .max_by_key(|r| r.0)
                .is_some_and(|r| r.2.contains(&e))
        {
            stale.insert(e);
        }
    }
    (lost, stale)
}

fn ints(items: Vec<&Item>) -> BTreeSet<i64> {
    items
        .into_iter()
        .map(|(_, e)| match e {
            Element::Int(n) => *n,
            Element::Json(_) => i64::MIN,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    #[test]
    fn real_sets_are_never_invalid_and_dropped_elements_are_lost(seed in any::<u64>(), steps in 1usize..60, pick in any::<usize>()) {
        let h = simulate(seed, steps);
        prop_assert_ne!(run(&h, true).valid, Validity::Invalid);
        // Drop an acked element from every read begun after its add completed.
        let candidates: Vec<(i64, u64)> = h.operations().iter()
            .filter(|o| o.invoke.f == "add" && o.outcome() == OpType::Ok)
            .map(|o| (o.invoke.value.as_i64().unwrap(), o.completion.unwrap().index))
            .filter(|(_, done)| h.operations().iter().any(|r| r.invoke.f == "read" && r.outcome() == OpType::Ok && r.invoke.index > *done))
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let (element, done) = candidates[pick % candidates.len()];
        let begun_after: BTreeSet<u64> = h.operations().iter()
            .filter(|r| r.invoke.f == "read" && r.invoke.index > done)
            .filter_map(|r| r.completion.map(|c| c.index))
            .collect();
        let mut ops = h.ops().to_vec();
        for op in ops.iter_mut().filter(|op| begun_after.contains(&op.index)) {
            if let Value::Array(items) = &mut op.value {
                items.retain(|x| x.as_i64() != Some(element));
            }
        }
        let bad = History::from_ops("sim", ops).unwrap();
        let v = run(&bad, false);
        prop_assert_eq!(v.valid, Validity::Invalid);
        let analysis = analyze(&bad).unwrap();
        prop_assert!(ints(analysis.with_outcome(Outcome::Lost)).contains(&element));
    }

    #[test]
    fn lost_and_stale_match_the_oracle(seed in any::<u64>(), steps in 1usize..60, drops in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..6)) {
        let h = simulate(seed, steps);
        let mut ops = h.ops().to_vec();
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].f == "read" && ops[i].op_type == OpType::Ok)
            .collect();
        for (r, e) in drops {
            if reads.is_empty() {
                break;
            }
            if let Value::Array(items) = &mut ops[reads[r % reads.len()]].value
                && !items.is_empty()
            {
                items.remove(e % items.len());
            }
        }
        let h = History::from_ops("sim", ops).unwrap();
        let analysis = analyze(&h).unwrap();
        let (lost, stale) = oracle(&h);
        prop_assert_eq!(ints(analysis.with_outcome(Outcome::Lost)), lost);
        prop_assert_eq!(ints(analysis.stale()), stale);
    }
}
