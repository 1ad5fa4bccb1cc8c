//! Knossos's models and meanings: multi-register, unordered-queue, initial values, and
//! reads of `null` that say nothing; hand-written cases and the search against the
//! brute-force oracle under both meanings of a `null` read.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::tests::oracle_verdict_with;
use super::*;
use crate::history::{History, Op, OpType, Process};
use crate::synth::{Object, SynthConfig, perturb_read, simulate};
use crate::testing::rows;

fn knossos(initial_value: Value) -> Semantics {
    Semantics {
        initial_value,
        nil_reads: NilReads::Unknown,
    }
}

fn strict(initial_value: Value) -> Semantics {
    Semantics {
        initial_value,
        nil_reads: NilReads::Null,
    }
}

/// `null` reads under Knossos's meaning (unknown) when `unknown`, else strict.
fn semantics(unknown: bool, initial_value: Value) -> Semantics {
    if unknown {
        knossos(initial_value)
    } else {
        strict(initial_value)
    }
}

fn options(model: ModelKind, semantics: Semantics) -> LinearizableOptions {
    LinearizableOptions {
        model: Some(model),
        semantics,
        ..LinearizableOptions::default()
    }
}

fn verdict_with(h: &History, model: ModelKind, semantics: &Semantics) -> Validity {
    check(h, &options(model, semantics.clone())).unwrap().valid
}

/// A row of a `txn` operation.
fn txn(p: u64, t: &'static str, mops: Value) -> (u64, &'static str, &'static str, Value) {
    (p, t, "txn", mops)
}

/// Both the search and the oracle give `expected`.
fn assert_verdict(h: &History, model: ModelKind, semantics: &Semantics, expected: Validity) {
    assert_eq!(verdict_with(h, model, semantics), expected, "search");
    assert_eq!(oracle_verdict_with(h, model, semantics), expected, "oracle");
}

#[test]
fn multi_register_valid_and_invalid() {
    use Validity::{Invalid, Valid};
    let mr = ModelKind::MultiRegister;
    let write = json!([["write", "x", 1], ["write", "y", 1]]);
    let read = json!([["read", "x", null], ["read", "y", null]]);
    // T1 writes x=1,y=1 atomically; T2, concurrent, reads x=1 and y=1: valid.
    let valid = rows(&[
        txn(1, "invoke", write.clone()),
        txn(2, "invoke", read.clone()),
        txn(1, "ok", write.clone()),
        txn(2, "ok", json!([["read", "x", 1], ["read", "y", 1]])),
    ]);
    assert_verdict(&valid, mr, &strict(Value::Null), Valid);
    // A torn read (x=1 but y unset) sees half a transaction: invalid either way.
    let torn = rows(&[
        txn(1, "invoke", write.clone()),
        txn(2, "invoke", read.clone()),
        txn(1, "ok", write.clone()),
        txn(2, "ok", json!([["read", "x", 1], ["read", "y", 2]])),
    ]);
    assert_verdict(&torn, mr, &strict(Value::Null), Invalid);
    assert_verdict(&torn, mr, &knossos(Value::Null), Invalid);
    // y read as null after the write completed: strict says y was unset (invalid);
    // Knossos says the read told nothing (valid).
    let nil_read = rows(&[
        txn(1, "invoke", write.clone()),
        txn(1, "ok", write),
        txn(2, "invoke", read),
        txn(2, "ok", json!([["read", "x", 1], ["read", "y", null]])),
    ]);
    assert_verdict(&nil_read, mr, &strict(Value::Null), Invalid);
    assert_verdict(&nil_read, mr, &knossos(Value::Null), Valid);
}

#[test]
fn initial_values_change_verdicts_as_in_knossos() {
    use Validity::{Invalid, Valid};
    let mr = ModelKind::MultiRegister;
    // (multi-register {:x 0 :y 0}): reading 0 before any write is legal only then.
    let zero = rows(&[
        txn(1, "invoke", json!([["read", "x", null], ["write", "y", 2]])),
        txn(1, "ok", json!([["read", "x", 0], ["write", "y", 2]])),
    ]);
    assert_verdict(&zero, mr, &knossos(json!({"x": 0, "y": 0})), Valid);
    assert_verdict(&zero, mr, &knossos(Value::Null), Invalid);
    assert_verdict(&zero, mr, &knossos(json!({})), Invalid);
    // Integer keys are named by their decimal text in the object.
    let int_keys = rows(&[
        txn(1, "invoke", json!([["read", 7, null]])),
        txn(1, "ok", json!([["read", 7, 0]])),
    ]);
    assert_verdict(&int_keys, mr, &strict(json!({"7": 0})), Valid);
    // (cas-register 0) vs (cas-register nil): a cas from 0 needs the register at 0.
    let cas = rows(&[
        (1, "invoke", "cas", json!([0, 1])),
        (1, "ok", "cas", json!([0, 1])),
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(1)),
    ]);
    assert_verdict(&cas, ModelKind::CasRegister, &knossos(json!(0)), Valid);
    assert_verdict(&cas, ModelKind::CasRegister, &knossos(Value::Null), Invalid);
    let cas_nil = rows(&[
        (1, "invoke", "cas", json!([null, 1])),
        (1, "ok", "cas", json!([null, 1])),
    ]);
    assert_verdict(
        &cas_nil,
        ModelKind::CasRegister,
        &knossos(Value::Null),
        Valid,
    );
    assert_verdict(
        &cas_nil,
        ModelKind::CasRegister,
        &knossos(json!(0)),
        Invalid,
    );
    // A read of 0 with no write: the precheck must know the initial value too.
    let read_zero = rows(&[
        (1, "invoke", "read", json!(null)),
        (1, "ok", "read", json!(0)),
    ]);
    assert_verdict(&read_zero, ModelKind::Register, &strict(json!(0)), Valid);
    assert_verdict(
        &read_zero,
        ModelKind::Register,
        &strict(Value::Null),
        Invalid,
    );
}

#[test]
fn nil_reads_per_meaning() {
    use Validity::{Invalid, Valid};
    // write 1 completes, then a read returns null.
    let h = rows(&[
        (1, "invoke", "write", json!(1)),
        (1, "ok", "write", json!(1)),
        (2, "invoke", "read", json!(null)),
        (2, "ok", "read", json!(null)),
    ]);
    for model in [ModelKind::Register, ModelKind::CasRegister] {
        assert_verdict(&h, model, &strict(Value::Null), Invalid);
        assert_verdict(&h, model, &knossos(Value::Null), Valid);
        // Knossos's register started at 0 still accepts the nil read.
        assert_verdict(&h, model, &knossos(json!(0)), Valid);
    }
}

#[test]
fn initial_value_must_fit_the_model() {
    let h = rows(&[(1, "invoke", "acquire", json!(null))]);
    let e = check(&h, &options(ModelKind::Mutex, strict(json!(0))))
        .unwrap_err()
        .to_string();
    assert!(e.contains("initial value applies only"), "{e}");
    let h = rows(&[txn(1, "invoke", json!([["read", "x", null]]))]);
    let e = check(&h, &options(ModelKind::MultiRegister, strict(json!(0))))
        .unwrap_err()
        .to_string();
    assert!(e.contains("JSON object"), "{e}");
}

#[test]
fn multi_register_errors_name_the_line() {
    let h = rows(&[
        txn(1, "invoke", json!([["read", "x", null]])),
        txn(1, "ok", json!([["cas", "x", [1, 2]]])),
    ]);
    let e = check(&h, &options(ModelKind::MultiRegister, Semantics::default()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test:2:") && e.contains("read and write"),
        "{e}"
    );
}

#[test]
fn infer_picks_multi_register_by_shape() {
    let h = rows(&[(
        1,
        "invoke",
        "whatever",
        json!([["read", "x", null], ["write", "y", 2]]),
    )]);
    assert_eq!(ModelKind::infer(&h).unwrap(), ModelKind::MultiRegister);
    let h = rows(&[(1, "invoke", "read", json!(null))]);
    assert_eq!(ModelKind::infer(&h).unwrap(), ModelKind::CasRegister);
}

#[test]
fn unordered_queue_valid_and_invalid() {
    let uq = ModelKind::UnorderedQueue;
    let s = Semantics::default();
    // Dequeued out of order: fine for an unordered queue, not for a FIFO one.
    let h = rows(&[
        (1, "invoke", "enqueue", json!(1)),
        (1, "ok", "enqueue", json!(1)),
        (1, "invoke", "enqueue", json!(2)),
        (1, "ok", "enqueue", json!(2)),
        (2, "invoke", "dequeue", json!(null)),
        (2, "ok", "dequeue", json!(2)),
    ]);
    assert_verdict(&h, uq, &s, Validity::Valid);
    assert_verdict(&h, ModelKind::FifoQueue, &s, Validity::Invalid);
    // An element dequeued twice, or never enqueued: invalid.
    let h = rows(&[
        (1, "invoke", "enqueue", json!(1)),
        (1, "ok", "enqueue", json!(1)),
        (2, "invoke", "dequeue", json!(null)),
        (2, "ok", "dequeue", json!(1)),
        (2, "invoke", "dequeue", json!(null)),
        (2, "ok", "dequeue", json!(1)),
    ]);
    assert_verdict(&h, uq, &s, Validity::Invalid);
    // A crashed enqueue may have happened.
    let h = rows(&[
        (1, "invoke", "enqueue", json!(1)),
        (1, "info", "enqueue", json!(1)),
        (2, "invoke", "dequeue", json!(null)),
        (2, "ok", "dequeue", json!(1)),
    ]);
    assert_verdict(&h, uq, &s, Validity::Valid);
}

/// A generated micro-op: (write, key index, value).
type GenMop = (bool, usize, Value);

/// A random multi-register history: transactions of one to three micro-ops over keys
/// `x`, `y`, values `0..domain`, applied to a true state at completion (or, crashed,
/// maybe), with some reads replaced by a random value or null.
fn multi_register_history(seed: u64, ops: usize, processes: u64, domain: i64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keys = ["x", "y"];
    let mut state: [Value; 2] = [Value::Null, Value::Null];
    let mut open: Vec<Option<(u64, Vec<GenMop>)>> = (0..processes).map(|_| None).collect();
    let mut next_process = processes;
    let mut events: Vec<(u64, OpType, Value)> = Vec::new();
    let mut started = 0;
    let render = |mops: &[GenMop]| -> Value {
        Value::Array(
            mops.iter()
                .map(|(w, k, v)| json!([if *w { "write" } else { "read" }, keys[*k], v]))
                .collect(),
        )
    };
    while started < ops || open.iter().any(Option::is_some) {
        let slot = rng.random_range(0..open.len());
        match open[slot].take() {
            None if started < ops => {
                let process = next_process + slot as u64;
                let mops: Vec<GenMop> = (0..rng.random_range(1..=3))
                    .map(|_| {
                        let write = rng.random_bool(0.5);
                        let value = if write {
                            json!(rng.random_range(0..domain))
                        } else {
                            Value::Null
                        };
                        (write, rng.random_range(0..2), value)
                    })
                    .collect();
                events.push((process, OpType::Invoke, render(&mops)));
                open[slot] = Some((process, mops));
                started += 1;
            }
            None => {}
            Some((process, mut mops)) => {
                let roll: f64 = rng.random();
                let apply = roll >= 0.15 || rng.random_bool(0.5);
                if apply && roll >= 0.1 {
                    for (write, k, v) in mops.iter_mut() {
                        if *write {
                            state[*k] = v.clone();
                        } else {
                            *v = state[*k].clone();
                        }
                    }
                }
                if roll < 0.1 {
                    events.push((process, OpType::Fail, render(&mops)));
                } else if roll < 0.25 {
                    events.push((process, OpType::Info, render(&mops)));
                    next_process += processes;
                } else {
                    for (write, _, v) in mops.iter_mut() {
                        if !*write && rng.random_bool(0.15) {
                            *v = if rng.random_bool(0.5) {
                                Value::Null
                            } else {
                                json!(rng.random_range(0..domain))
                            };
                        }
                    }
                    events.push((process, OpType::Ok, render(&mops)));
                }
            }
        }
    }
    let ops = events
        .into_iter()
        .enumerate()
        .map(|(i, (p, t, v))| Op::new(i as u64, i as i64, Process::Client(p), t, "txn", v))
        .collect();
    History::from_ops("test", ops).unwrap()
}

fn semantics_strategy() -> impl Strategy<Value = (bool, bool)> {
    (any::<bool>(), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, rng_seed: proptest::test_runner::RngSeed::Fixed(0x6b6e), ..ProptestConfig::default() })]

    /// The multi-register search agrees with brute force, under both meanings of a
    /// `null` read, unset or zero initial values.
    #[test]
    fn multi_register_agrees_with_brute_force(
        seed in any::<u64>(),
        ops in 1usize..8,
        processes in 1u64..4,
        domain in 1i64..3,
        (unknown, zero) in semantics_strategy(),
    ) {
        let h = multi_register_history(seed, ops, processes, domain);
        let semantics = semantics(unknown, if zero { json!({"x": 0, "y": 0}) } else { Value::Null });
        let expected = oracle_verdict_with(&h, ModelKind::MultiRegister, &semantics);
        prop_assert_eq!(verdict_with(&h, ModelKind::MultiRegister, &semantics), expected);
    }

    /// Registers agree with brute force when reads of null say nothing (Knossos) or
    /// that the register is null, from an unset or a zero initial value; some reads are
    /// replaced by null to exercise both meanings.
    #[test]
    fn registers_agree_with_brute_force_for_both_nil_meanings(
        seed in any::<u64>(),
        ops in 1usize..9,
        processes in 1usize..4,
        keys in 0usize..2,
        crash_rate in prop_oneof![Just(0.0), Just(0.3)],
        domain in 1u64..4,
        (unknown, zero) in semantics_strategy(),
        perturb in any::<bool>(),
    ) {
        let mut generated = simulate(&SynthConfig {
            seed, object: Object::CasRegister, ops, processes, keys, crash_rate,
            value_domain: Some(domain),
        });
        if perturb {
            generated = perturb_read(&generated, seed ^ 0x5eed, domain);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e11);
        for op in generated.iter_mut() {
            if op.op_type == OpType::Ok && op.f == "read" && rng.random_bool(0.3) {
                op.value = Value::Null;
            }
        }
        let h = History::from_ops("test", generated).unwrap();
        let semantics = semantics(unknown, if zero { json!(0) } else { Value::Null });
        for model in [ModelKind::Register, ModelKind::CasRegister] {
            if model == ModelKind::Register && h.ops().iter().any(|op| op.f == "cas") {
                continue;
            }
            let expected = oracle_verdict_with(&h, model, &semantics);
            prop_assert_eq!(verdict_with(&h, model, &semantics), expected);
        }
    }

    /// The unordered queue agrees with brute force on (perturbed) queue histories.
    #[test]
    fn unordered_queue_agrees_with_brute_force(
        seed in any::<u64>(),
        ops in 1usize..9,
        processes in 1usize..4,
        crash_rate in prop_oneof![Just(0.0), Just(0.3)],
        domain in 1u64..4,
        perturb in any::<bool>(),
    ) {
        let mut generated = simulate(&SynthConfig {
            seed, object: Object::FifoQueue, ops, processes, keys: 0, crash_rate,
            value_domain: Some(domain),
        });
        if perturb {
            generated = perturb_read(&generated, seed ^ 0x5eed, domain);
        }
        let h = History::from_ops("test", generated).unwrap();
        let semantics = Semantics::default();
        let expected = oracle_verdict_with(&h, ModelKind::UnorderedQueue, &semantics);
        prop_assert_eq!(verdict_with(&h, ModelKind::UnorderedQueue, &semantics), expected);
    }
}
