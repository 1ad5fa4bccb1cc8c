//! End-to-end tests of the Elle checker on generated histories: valid ones, planted
//! anomalies, and small executions against brute-force serializability oracles.

mod common;

use faultline_checker::elle::generate::{GenerateOptions, Plant, generate};
use faultline_checker::elle::{ElleOptions, ElleWorkload};
use faultline_checker::history::History;
use faultline_checker::results::{Validity, Verdict};
use proptest::prelude::*;
use serde_json::{Value, json};

use common::{H, check_both_compacted, run, types};

fn gen_check(options: &GenerateOptions, model: &str) -> Verdict {
    let h = History::from_ops("generated", generate(options)).unwrap();
    let elle = ElleOptions::new(options.workload).with_model(model.parse().unwrap());
    let (verdict, compacted) = check_both_compacted(&h, &elle);
    // Generated list-append histories (integer keys and elements) are read compactly.
    assert_eq!(compacted, options.workload == ElleWorkload::ListAppend);
    verdict.unwrap()
}

#[test]
fn generated_histories_are_valid() {
    for workload in [ElleWorkload::ListAppend, ElleWorkload::RwRegister] {
        let options = GenerateOptions {
            seed: 7,
            txns: 5000,
            workload,
            ..GenerateOptions::default()
        };
        let v = gen_check(&options, "strict-serializable");
        assert_eq!(v.valid, Validity::Valid, "{workload}: {:#?}", v.details);
    }
}

#[test]
fn planted_anomalies_are_found() {
    let cases: &[(Plant, &str, ElleWorkload)] = &[
        (Plant::G0, "G0", ElleWorkload::ListAppend),
        (Plant::G1a, "G1a", ElleWorkload::ListAppend),
        (Plant::G1b, "G1b", ElleWorkload::ListAppend),
        (Plant::G1c, "G1c", ElleWorkload::ListAppend),
        (Plant::GSingle, "G-single", ElleWorkload::ListAppend),
        (Plant::G2Item, "G2-item", ElleWorkload::ListAppend),
        (Plant::Internal, "internal", ElleWorkload::ListAppend),
        (
            Plant::IncompatibleOrder,
            "incompatible-order",
            ElleWorkload::ListAppend,
        ),
        (
            Plant::DuplicateElements,
            "duplicate-elements",
            ElleWorkload::ListAppend,
        ),
        (Plant::DirtyUpdate, "dirty-update", ElleWorkload::ListAppend),
        (Plant::LostUpdate, "lost-update", ElleWorkload::ListAppend),
        (Plant::FutureRead, "future-read", ElleWorkload::ListAppend),
        (Plant::G1a, "G1a", ElleWorkload::RwRegister),
        (Plant::G1b, "G1b", ElleWorkload::RwRegister),
        (Plant::G1c, "G1c", ElleWorkload::RwRegister),
        (Plant::GSingle, "G-single", ElleWorkload::RwRegister),
        (Plant::G2Item, "G2-item", ElleWorkload::RwRegister),
        (Plant::Internal, "internal", ElleWorkload::RwRegister),
        (Plant::LostUpdate, "lost-update", ElleWorkload::RwRegister),
    ];
    for (plant, name, workload) in cases {
        let options = GenerateOptions {
            seed: 11,
            txns: 3000,
            workload: *workload,
            plant: vec![*plant],
            ..GenerateOptions::default()
        };
        let v = gen_check(&options, "strict-serializable");
        assert_eq!(v.valid, Validity::Invalid, "{plant:?} {workload}");
        assert!(
            types(&v).contains(&name.to_string()),
            "{plant:?} {workload}: {:?}",
            types(&v)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    #[test]
    fn simulated_serializable_executions_are_valid(
        seed in any::<u64>(),
        txns in 1usize..400,
        processes in 1usize..12,
        keys in 1usize..6,
        max_writes in 1usize..20,
        register in any::<bool>(),
    ) {
        let options = GenerateOptions {
            seed, txns, processes, active_keys: keys, max_writes_per_key: max_writes,
            fail_rate: 0.05, info_rate: 0.05,
            workload: if register { ElleWorkload::RwRegister } else { ElleWorkload::ListAppend },
            ..GenerateOptions::default()
        };
        let v = gen_check(&options, "strict-serializable");
        prop_assert_ne!(v.valid, Validity::Invalid, "{:#?}", v.details);
    }

    #[test]
    fn a_planted_anomaly_is_found(seed in any::<u64>(), txns in 200usize..2000, which in 0usize..4) {
        let plant = [Plant::GSingle, Plant::G2Item, Plant::G1c, Plant::LostUpdate][which];
        let name = ["G-single", "G2-item", "G1c", "lost-update"][which];
        let options = GenerateOptions { seed, txns, plant: vec![plant], ..GenerateOptions::default() };
        let v = gen_check(&options, "strict-serializable");
        prop_assert_eq!(v.valid, Validity::Invalid);
        prop_assert!(types(&v).contains(&name.to_string()), "{:?}", types(&v));
    }

    #[test]
    fn a_stale_read_served_to_live_traffic_is_found(seed in any::<u64>(), txns in 200usize..2000) {
        // The store misses a write that completed before the reader began: not
        // strict serializable. (Whether it is serializable depends on the traffic.)
        let options = GenerateOptions { seed, txns, plant: vec![Plant::StaleRead], ..GenerateOptions::default() };
        let v = gen_check(&options, "strict-serializable");
        prop_assert_eq!(v.valid, Validity::Invalid, "{:#?}", v.details);
        prop_assert!(types(&v).iter().any(|t| t.starts_with("G")), "{:?}", types(&v));
    }
}

// ---------------------------------------------------------------- brute-force oracle

/// A small execution with arbitrarily stale (but prefix) reads: txns = list of
/// micro-op lists with reads filled in, in commit order, plus a final read of every
/// key. All transactions are concurrent, so only serializability is in question.
fn stale_execution(seed: u64, n: usize, keys: usize) -> Vec<Vec<(bool, usize, Vec<i64>)>> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut lists: Vec<Vec<i64>> = vec![Vec::new(); keys];
    let mut next = 1i64;
    let mut txns = Vec::new();
    for _ in 0..n {
        let snapshot: Vec<usize> = lists
            .iter()
            .map(|l| rng.random_range(0..=l.len()))
            .collect();
        let mut own: Vec<Vec<i64>> = vec![Vec::new(); keys];
        let mut mops = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let k = rng.random_range(0..keys);
            if rng.random_bool(0.5) {
                let mut seen = lists[k][..snapshot[k]].to_vec();
                seen.extend(&own[k]);
                mops.push((false, k, seen));
            } else {
                own[k].push(next);
                mops.push((true, k, vec![next]));
                next += 1;
            }
        }
        for (k, appended) in own.into_iter().enumerate() {
            lists[k].extend(appended);
        }
        txns.push(mops);
    }
    txns.push((0..keys).map(|k| (false, k, lists[k].clone())).collect());
    txns
}

/// Is there a serial order of `txns` that explains every read?
fn serializable_by_brute_force(txns: &[Vec<(bool, usize, Vec<i64>)>], keys: usize) -> bool {
    fn search(
        txns: &[Vec<(bool, usize, Vec<i64>)>],
        used: &mut Vec<bool>,
        state: &mut Vec<Vec<i64>>,
    ) -> bool {
        if used.iter().all(|u| *u) {
            return true;
        }
        for t in 0..txns.len() {
            if used[t] {
                continue;
            }
            let saved = state.clone();
            let mut ok = true;
            for (append, k, v) in &txns[t] {
                if *append {
                    state[*k].push(v[0]);
                } else if state[*k] != *v {
                    ok = false;
                    break;
                }
            }
            if ok {
                used[t] = true;
                if search(txns, used, state) {
                    return true;
                }
                used[t] = false;
            }
            *state = saved;
        }
        false
    }
    search(
        txns,
        &mut vec![false; txns.len()],
        &mut vec![Vec::new(); keys],
    )
}

fn execution_history(txns: &[Vec<(bool, usize, Vec<i64>)>]) -> H {
    let mop = |(append, k, v): &(bool, usize, Vec<i64>)| {
        let key = ["x", "y", "z"][*k];
        if *append {
            json!(["append", key, v[0]])
        } else {
            json!(["r", key, v])
        }
    };
    let mut h = H::default();
    let (last, rest) = txns.split_last().unwrap();
    for (p, t) in rest.iter().enumerate() {
        h.invoke(p as u64, Value::Array(t.iter().map(mop).collect()));
    }
    for (p, t) in rest.iter().enumerate() {
        h.ok(p as u64, Value::Array(t.iter().map(mop).collect()));
    }
    h.txn(
        rest.len() as u64,
        Value::Array(last.iter().map(mop).collect()),
    );
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    /// With every append observed, Elle's verdict under serializability is exact.
    #[test]
    fn matches_a_brute_force_serializability_oracle(seed in any::<u64>(), n in 1usize..6, keys in 1usize..4) {
        let txns = stale_execution(seed, n, keys);
        let serializable = serializable_by_brute_force(&txns, keys);
        let v = run(&execution_history(&txns), ElleWorkload::ListAppend, "serializable");
        prop_assert_eq!(v.valid != Validity::Invalid, serializable, "{:?}\n{:#?}", txns, v.details);
    }
}

/// Like [`serializable_by_brute_force`], but the order must also respect real
/// time: `before[a][b]` when `a` completed before `b` was invoked.
fn strict_by_brute_force(
    txns: &[Vec<(bool, usize, Vec<i64>)>],
    keys: usize,
    before: &[Vec<bool>],
) -> bool {
    fn search(
        txns: &[Vec<(bool, usize, Vec<i64>)>],
        before: &[Vec<bool>],
        used: &mut Vec<bool>,
        state: &mut Vec<Vec<i64>>,
    ) -> bool {
        if used.iter().all(|u| *u) {
            return true;
        }
        for t in 0..txns.len() {
            if used[t] || (0..txns.len()).any(|a| !used[a] && a != t && before[a][t]) {
                continue;
            }
            let saved = state.clone();
            let mut ok = true;
            for (append, k, v) in &txns[t] {
                if *append {
                    state[*k].push(v[0]);
                } else if state[*k] != *v {
                    ok = false;
                    break;
                }
            }
            if ok {
                used[t] = true;
                if search(txns, before, used, state) {
                    return true;
                }
                used[t] = false;
            }
            *state = saved;
        }
        false
    }
    search(
        txns,
        before,
        &mut vec![false; txns.len()],
        &mut vec![Vec::new(); keys],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    /// The same, for strict serializability, with random overlap in real time.
    #[test]
    fn matches_a_brute_force_strict_serializability_oracle(
        seed in any::<u64>(), n in 1usize..6, keys in 1usize..4, slots in proptest::collection::vec(any::<u16>(), 6),
    ) {
        let mut txns = stale_execution(seed, n, keys);
        txns.pop(); // no final read: real time orders things instead
        let mop = |(append, k, v): &(bool, usize, Vec<i64>)| {
            let key = ["x", "y", "z"][*k];
            if *append { json!(["append", key, v[0]]) } else { json!(["r", key, v]) }
        };
        // Events: each txn's completion in commit order; its invocation somewhere
        // before that.
        let mut events: Vec<(usize, bool)> = Vec::new();
        for (i, slot) in slots.iter().enumerate().take(txns.len()) {
            let at = *slot as usize % (events.len() + 1);
            events.insert(at, (i, false));
            events.push((i, true));
        }
        let pos = |i: usize, done: bool| events.iter().position(|e| *e == (i, done)).unwrap();
        let before: Vec<Vec<bool>> = (0..txns.len())
            .map(|a| (0..txns.len()).map(|b| a != b && pos(a, true) < pos(b, false)).collect())
            .collect();
        let mut h = H::default();
        for (i, done) in &events {
            let value = Value::Array(txns[*i].iter().map(mop).collect());
            if *done { h.ok(*i as u64, value); } else { h.invoke(*i as u64, value); }
        }
        let strict = strict_by_brute_force(&txns, keys, &before);
        let v = run(&h, ElleWorkload::ListAppend, "strict-serializable");
        // Elle cannot order appends nobody read, so it may miss some violations;
        // it must never report one that is not there.
        if v.valid == Validity::Invalid {
            prop_assert!(!strict, "{:?}\n{:?}\n{:#?}", txns, events, v.details);
        }
        if strict {
            prop_assert_ne!(v.valid, Validity::Invalid);
        }
    }
}

// ---------------------------------------------------------------- the compact path

/// Models whose verdicts differ on the same anomalies, so that every part of the
/// report (reportable, unreported, not, also_not) is compared.
const MODELS: [&str; 5] = [
    "strict-serializable",
    "serializable",
    "snapshot-isolation",
    "read-committed",
    "strong-session-snapshot-isolation",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Read compactly from its JSONL, any generated list-append history (failed and
    /// crashed transactions, planted anomalies, a broken store's stale reads) gets the
    /// very answer the whole history gets, under every model.
    #[test]
    fn the_compact_path_agrees_with_the_general_one(
        seed in 0u64..1_000_000,
        txns in 1usize..400,
        processes in 1usize..8,
        active_keys in 1usize..5,
        max_writes_per_key in 1usize..12,
        max_txn_len in 1usize..6,
        fail_rate in 0.0f64..0.2,
        info_rate in 0.0f64..0.2,
        stale_read_rate in prop_oneof![Just(0.0f64), 0.0f64..0.3],
        plants in proptest::sample::subsequence(Plant::ALL.to_vec(), 0..4),
        model in 0usize..MODELS.len(),
    ) {
        let options = GenerateOptions {
            seed,
            txns,
            processes,
            active_keys,
            max_writes_per_key,
            max_txn_len,
            fail_rate,
            info_rate,
            plant: plants,
            stale_read_rate,
            workload: ElleWorkload::ListAppend,
        };
        let h = History::from_ops("generated", generate(&options)).unwrap();
        let elle = ElleOptions::new(ElleWorkload::ListAppend).with_model(MODELS[model].parse().unwrap());
        let (_, compacted) = check_both_compacted(&h, &elle);
        prop_assert!(compacted);
    }
}
