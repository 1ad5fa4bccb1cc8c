//! End-to-end tests of the Elle checker: a minimal history for every anomaly name,
//! fixtures read from disk, generated histories (valid, and with planted
//! anomalies), and malformed transactions.

use std::path::PathBuf;

use faultline_checker::elle::generate::{GenerateOptions, Plant, generate};
use faultline_checker::elle::{
    ConsistencyModel, ElleOptions, ElleWorkload, VersionInference, analyze, check,
};
use faultline_checker::history::{History, InputError, Op, OpType, Process};
use faultline_checker::results::{Validity, Verdict};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Builds histories event by event.
#[derive(Default)]
struct H {
    ops: Vec<Op>,
}

fn blank(mops: &Value) -> Value {
    Value::Array(
        mops.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    m.clone()
                }
            })
            .collect(),
    )
}

impl H {
    fn event(&mut self, p: u64, t: OpType, value: Value) -> &mut H {
        let i = self.ops.len() as u64;
        self.ops.push(Op::new(
            i,
            1000 * i as i64,
            Process::Client(p),
            t,
            "txn",
            value,
        ));
        self
    }
    fn invoke(&mut self, p: u64, mops: Value) -> &mut H {
        let v = blank(&mops);
        self.event(p, OpType::Invoke, v)
    }
    fn ok(&mut self, p: u64, mops: Value) -> &mut H {
        self.event(p, OpType::Ok, mops)
    }
    fn fail(&mut self, p: u64, mops: Value) -> &mut H {
        let v = blank(&mops);
        self.event(p, OpType::Fail, v)
    }
    fn info(&mut self, p: u64, mops: Value) -> &mut H {
        let v = blank(&mops);
        self.event(p, OpType::Info, v)
    }
    /// A transaction invoked and completed ok right away.
    fn txn(&mut self, p: u64, mops: Value) -> &mut H {
        self.invoke(p, mops.clone()).ok(p, mops)
    }
    fn history(&self) -> History {
        History::from_ops("test.jsonl", self.ops.clone()).unwrap()
    }
}

fn run(h: &H, workload: ElleWorkload, model: &str) -> Verdict {
    let options = ElleOptions::new(workload).with_model(model.parse::<ConsistencyModel>().unwrap());
    check(&h.history(), &options).unwrap()
}

fn types(v: &Verdict) -> Vec<String> {
    v.details["anomaly_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn la(h: &H) -> Verdict {
    run(h, ElleWorkload::ListAppend, "strict-serializable")
}

fn rw(h: &H) -> Verdict {
    run(h, ElleWorkload::RwRegister, "strict-serializable")
}

/// Asserts exactly these anomaly types (besides `empty-transaction-graph`, which
/// Elle adds whenever no dependency between transactions could be inferred).
fn assert_only(v: &Verdict, expected: &[&str]) {
    let found: Vec<String> = types(v)
        .into_iter()
        .filter(|t| t != "empty-transaction-graph")
        .collect();
    assert_eq!(found, expected, "{:#?}", v.details);
    assert_eq!(v.valid, Validity::Invalid);
}

// ---------------------------------------------------------------- list-append

#[test]
fn valid_list_append() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1], ["r", "y", []]]))
        .txn(1, json!([["r", "x", [1]], ["append", "y", 1]]))
        .txn(0, json!([["r", "x", [1]], ["r", "y", [1]]]));
    let v = la(&h);
    assert_eq!(v.valid, Validity::Valid, "{:#?}", v.details);
    assert_eq!(types(&v), Vec::<String>::new());
    assert_eq!(v.details["not"], json!([]));
}

#[test]
fn g0_write_cycle() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["append", "x", 2], ["append", "y", 2]]))
        .txn(2, json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]]));
    let v = la(&h);
    assert!(types(&v).contains(&"G0".to_string()), "{:?}", types(&v));
    assert_eq!(v.details["not"], json!(["read-uncommitted"]));
    let g0 = &v.details["anomalies"]["G0"][0];
    assert_eq!(g0["steps"][0]["type"], "ww");
    assert!(
        g0["explanation"]
            .as_str()
            .unwrap()
            .contains("a contradiction!")
    );
}

#[test]
fn g1a_aborted_read() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1]]))
        .fail(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1]]]));
    assert_only(&la(&h), &["G1a"]);
}

#[test]
fn g1b_intermediate_read() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "x", 2]]))
        .invoke(1, json!([["r", "x", [1]]]))
        .ok(1, json!([["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["append", "x", 2]]));
    let v = la(&h);
    assert!(types(&v).contains(&"G1b".to_string()), "{:?}", types(&v));
}

#[test]
fn g1c_circular_information_flow() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .invoke(1, json!([["append", "y", 1], ["r", "x", [1]]]))
        .ok(0, json!([["append", "x", 1], ["r", "y", [1]]]))
        .ok(1, json!([["append", "y", 1], ["r", "x", [1]]]));
    assert_only(&la(&h), &["G1c"]);
}

#[test]
fn g_single_read_skew() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["r", "x", [1]], ["r", "y", []]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["r", "x", [1]], ["r", "y", []]]));
    let v = la(&h);
    assert_only(&v, &["G-single"]);
    // Snapshot isolation implies consistent view, so the weakest model ruled out
    // is consistent view; snapshot isolation is among the stronger ones.
    assert_eq!(v.details["not"], json!(["consistent-view"]));
    assert!(
        v.details["also_not"]
            .as_array()
            .unwrap()
            .contains(&json!("snapshot-isolation"))
    );
    let text = v.details["anomalies"]["G-single"][0]["explanation"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("observed the initial (nil) state of \"y\""),
        "{text}"
    );
    // Snapshot isolation forbids it too; read committed does not.
    assert_eq!(
        run(&h, ElleWorkload::ListAppend, "snapshot-isolation").valid,
        Validity::Invalid
    );
    let rc = run(&h, ElleWorkload::ListAppend, "read-committed");
    assert_eq!(rc.valid, Validity::Valid);
    assert_eq!(rc.details["unreported_anomaly_types"], json!(["G-single"]));
}

#[test]
fn g_nonadjacent() {
    // T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1
    let mut h = H::default();
    let t1 = json!([["r", "a", []], ["r", "d", [1]]]);
    let t2 = json!([["append", "a", 1], ["append", "b", 1]]);
    let t3 = json!([["r", "b", [1]], ["r", "c", []]]);
    let t4 = json!([["append", "c", 1], ["append", "d", 1]]);
    for (p, t) in [(0, &t1), (1, &t2), (2, &t3), (3, &t4)] {
        h.invoke(p, t.clone());
    }
    for (p, t) in [(0, t1), (1, t2), (2, t3), (3, t4)] {
        h.ok(p, t);
    }
    let v = la(&h);
    assert_only(&v, &["G-nonadjacent"]);
    // Snapshot isolation forbids G-nonadjacent (Elle); repeatable read does not.
    assert_eq!(
        run(&h, ElleWorkload::ListAppend, "snapshot-isolation").valid,
        Validity::Invalid
    );
    assert_eq!(
        run(&h, ElleWorkload::ListAppend, "repeatable-read").valid,
        Validity::Valid
    );
}

#[test]
fn g2_item_write_skew() {
    let mut h = H::default();
    let t1 = json!([["r", "x", []], ["r", "y", []], ["append", "x", 1]]);
    let t2 = json!([["r", "x", []], ["r", "y", []], ["append", "y", 1]]);
    h.invoke(0, t1.clone())
        .invoke(1, t2.clone())
        .ok(0, t1)
        .ok(1, t2);
    let v = la(&h);
    assert_only(&v, &["G2-item"]);
    assert_eq!(
        run(&h, ElleWorkload::ListAppend, "snapshot-isolation").valid,
        Validity::Valid
    );
    assert_eq!(
        run(&h, ElleWorkload::ListAppend, "repeatable-read").valid,
        Validity::Invalid
    );
}

#[test]
fn realtime_and_process_variants() {
    // A stale read: T1 appends and completes; T2 starts later and misses it.
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", []]]));
    let v = la(&h);
    assert_only(&v, &["G-single-realtime"]);
    assert_eq!(v.details["not"], json!(["strong-snapshot-isolation"]));
    assert_eq!(
        run(&h, ElleWorkload::ListAppend, "serializable").valid,
        Validity::Valid
    );
    // The same within one process is a process anomaly under strong session models.
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(0, json!([["r", "x", []]]));
    let v = run(&h, ElleWorkload::ListAppend, "strong-session-serializable");
    assert_only(&v, &["G-single-process"]);
    let v = la(&h);
    assert_only(&v, &["G-single-realtime"]);
}

#[test]
fn g0_and_g1c_realtime() {
    // T1 appends x after T2 (per the read), yet T2 began after T1 completed.
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [2, 1]]]));
    assert_only(&la(&h), &["G0-realtime"]);
    let mut h = H::default();
    h.txn(0, json!([["r", "x", [1]]]))
        .txn(1, json!([["append", "x", 1]]));
    let v = la(&h);
    assert!(
        types(&v).contains(&"G1c-realtime".to_string()),
        "{:?}",
        types(&v)
    );
}

#[test]
fn write_skew_in_real_time_order() {
    // T1 -rw-> T2 (y) and T2 -rw-> T1 (x): write skew; and T2, which began after
    // T1 completed, missed T1's append: a stale read (G-single-realtime).
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1], ["r", "y", []]]))
        .txn(1, json!([["append", "y", 1], ["r", "x", []]]));
    let v = la(&h);
    assert_only(&v, &["G-single-realtime", "G2-item"]);
    let v = run(&h, ElleWorkload::ListAppend, "serializable");
    assert_only(&v, &["G2-item"]);
}

#[test]
fn internal_inconsistency() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1], ["r", "x", []]]));
    assert_only(&la(&h), &["internal"]);
    let mut h = H::default();
    h.txn(
        0,
        json!([["r", "x", [5]], ["append", "x", 6], ["r", "x", [5, 7]]]),
    );
    let v = la(&h);
    assert!(types(&v).contains(&"internal".to_string()));
    assert_eq!(
        v.details["anomalies"]["internal"][0]["expected"],
        json!([5, 6])
    );
}

#[test]
fn future_read() {
    let mut h = H::default();
    h.txn(0, json!([["r", "x", [1]], ["append", "x", 1]]));
    assert!(types(&la(&h)).contains(&"future-read".to_string()));
}

#[test]
fn incompatible_order() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .invoke(2, json!([["r", "x", [1, 2]]]))
        .invoke(3, json!([["r", "x", [1, 3]]]))
        .ok(1, json!([["append", "x", 2]]))
        .ok(2, json!([["r", "x", [1, 2]]]))
        .ok(3, json!([["r", "x", [1, 3]]]));
    let v = la(&h);
    assert!(
        types(&v).contains(&"incompatible-order".to_string()),
        "{:?}",
        types(&v)
    );
    assert_eq!(
        v.details["anomalies"]["incompatible-order"][0]["values"],
        json!([[1, 2], [1, 3]])
    );
}

#[test]
fn duplicate_elements() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["r", "x", [1, 1]]]));
    assert!(types(&la(&h)).contains(&"duplicate-elements".to_string()));
}

#[test]
fn dirty_update() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1]]))
        .fail(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1, 2]]]));
    let v = la(&h);
    let t = types(&v);
    assert!(t.contains(&"dirty-update".to_string()), "{t:?}");
    assert!(t.contains(&"G1a".to_string()), "{t:?}");
}

#[test]
fn lost_update() {
    let mut h = H::default();
    let t1 = json!([["r", "x", []], ["append", "x", 1]]);
    let t2 = json!([["r", "x", []], ["append", "x", 2]]);
    h.invoke(0, t1.clone())
        .invoke(1, t2.clone())
        .ok(0, t1)
        .ok(1, t2);
    h.txn(2, json!([["r", "x", [1, 2]]]));
    let v = la(&h);
    let t = types(&v);
    assert!(t.contains(&"lost-update".to_string()), "{t:?}");
}

#[test]
fn info_may_or_may_not_commit() {
    // An indeterminate append later observed: fine. One never observed: fine.
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1]]))
        .info(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["append", "x", 2]]))
        .info(1, json!([["append", "x", 2]]))
        .txn(2, json!([["r", "x", [1]]]))
        .txn(3, json!([["r", "x", [1]]]));
    let v = la(&h);
    assert_eq!(v.valid, Validity::Valid, "{:#?}", v.details);
    // An invoke with no completion at all counts as info.
    let mut h = H::default();
    h.txn(0, json!([["r", "x", []]]))
        .invoke(1, json!([["append", "x", 1]]));
    h.txn(2, json!([["r", "x", [1]]]));
    assert_eq!(la(&h).valid, Validity::Valid);
}

#[test]
fn single_transaction_is_unknown() {
    let mut h = H::default();
    h.txn(0, json!([["r", "x", []]]));
    let v = la(&h);
    assert_eq!(v.valid, Validity::Unknown);
    assert_eq!(types(&v), vec!["empty-transaction-graph"]);
}

#[test]
fn artifacts_for_cycles() {
    let mut h = H::default();
    h.invoke(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .invoke(1, json!([["r", "x", [1]], ["r", "y", []]]))
        .ok(0, json!([["append", "x", 1], ["append", "y", 1]]))
        .ok(1, json!([["r", "x", [1]], ["r", "y", []]]));
    let analysis = analyze(&h.history(), &ElleOptions::default()).unwrap();
    assert_eq!(analysis.artifacts.len(), 1);
    let a = &analysis.artifacts[0];
    assert_eq!(a.name, "G-single-0");
    assert!(a.dot.contains("\"T1\" -> \"T2\""), "{}", a.dot);
    assert!(a.svg.starts_with("<svg") && a.svg.contains("T2"));
}

// ---------------------------------------------------------------- rw-register

#[test]
fn rw_register_anomalies() {
    // G1a
    let mut h = H::default();
    h.invoke(0, json!([["w", "x", 1]]))
        .fail(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", 1]]));
    assert_only(&rw(&h), &["G1a"]);
    // G1b
    let mut h = H::default();
    h.txn(0, json!([["w", "x", 1], ["w", "x", 2]]))
        .txn(1, json!([["r", "x", 1]]));
    assert!(types(&rw(&h)).contains(&"G1b".to_string()));
    // G1c
    let mut h = H::default();
    let t1 = json!([["w", "x", 1], ["r", "y", 1]]);
    let t2 = json!([["w", "y", 1], ["r", "x", 1]]);
    h.invoke(0, t1.clone())
        .invoke(1, t2.clone())
        .ok(0, t1)
        .ok(1, t2);
    assert_only(&rw(&h), &["G1c"]);
    // G-single through the initial state
    let mut h = H::default();
    let t1 = json!([["w", "x", 1], ["w", "y", 1]]);
    let t2 = json!([["r", "x", 1], ["r", "y", null]]);
    h.invoke(0, t1.clone())
        .invoke(1, t2.clone())
        .ok(0, t1)
        .ok(1, t2);
    assert_only(&rw(&h), &["G-single"]);
    // internal
    let mut h = H::default();
    h.txn(0, json!([["w", "x", 1], ["r", "x", 2]]));
    assert!(types(&rw(&h)).contains(&"internal".to_string()));
    // lost update
    let mut h = H::default();
    let t1 = json!([["r", "x", null], ["w", "x", 1]]);
    let t2 = json!([["r", "x", null], ["w", "x", 2]]);
    h.invoke(0, t1.clone())
        .invoke(1, t2.clone())
        .ok(0, t1)
        .ok(1, t2);
    let t = types(&rw(&h));
    assert!(t.contains(&"lost-update".to_string()), "{t:?}");
    assert!(t.contains(&"G2-item".to_string()), "{t:?}");
}

#[test]
fn rw_register_version_inference() {
    // With writes-follow-reads, T2 read 1 then wrote 2: 1 < 2. T3 wrote 1 after
    // reading 2: 2 < 1. Cyclic versions; the source is left out.
    let mut h = H::default();
    h.txn(0, json!([["w", "x", 1]]))
        .txn(1, json!([["r", "x", 1], ["w", "x", 2]]))
        .txn(2, json!([["r", "x", 2], ["w", "x", 3]]))
        .txn(3, json!([["r", "x", 3]]));
    let mut options = ElleOptions::new(ElleWorkload::RwRegister);
    options.version_inference = VersionInference {
        wfr_keys: true,
        ..VersionInference::default()
    };
    let v = check(&h.history(), &options).unwrap();
    assert_eq!(v.valid, Validity::Valid, "{:#?}", v.details);
    // Sequential keys: one process reads 2 and later reads 1 again.
    let mut h = H::default();
    h.txn(5, json!([["w", "x", 1]]))
        .txn(6, json!([["w", "x", 2]]))
        .txn(0, json!([["r", "x", 2]]))
        .txn(0, json!([["r", "x", 1]]));
    options.version_inference = VersionInference {
        sequential_keys: true,
        ..VersionInference::default()
    };
    let v = check(&h.history(), &options).unwrap();
    assert_eq!(v.valid, Validity::Invalid, "{:#?}", v.details);
}

// ---------------------------------------------------------------- malformed input

fn err(h: &H, workload: ElleWorkload) -> String {
    let e: InputError = check(&h.history(), &ElleOptions::new(workload)).unwrap_err();
    e.to_string()
}

#[test]
fn malformed_transactions_name_the_line() {
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .invoke(1, json!([["frob", "x", 1]]));
    assert!(err(&h, ElleWorkload::ListAppend).starts_with("test.jsonl:3: micro-op 0:"));
    let mut h = H::default();
    h.txn(0, json!([["append", "x", 1]]))
        .txn(1, json!([["append", "x", 1]]));
    let e = err(&h, ElleWorkload::ListAppend);
    assert!(
        e.starts_with("test.jsonl:3:") && e.contains("more than once"),
        "{e}"
    );
    let mut h = H::default();
    h.event(0, OpType::Invoke, json!([["r", "x", null]])).event(
        0,
        OpType::Ok,
        json!([["r", "x", 3]]),
    );
    assert!(err(&h, ElleWorkload::ListAppend).starts_with("test.jsonl:2:"));
    let mut h = H::default();
    h.event(0, OpType::Invoke, json!([["append", "x", 1]]))
        .event(0, OpType::Ok, json!([["append", "x", 2]]));
    assert!(err(&h, ElleWorkload::ListAppend).contains("test.jsonl:2: micro-op 0 is"));
    let mut h = H::default();
    h.event(0, OpType::Invoke, json!({"x": 1}));
    assert!(err(&h, ElleWorkload::ListAppend).starts_with("test.jsonl:1:"));
    let mut h = H::default();
    h.txn(0, json!([["w", "x", [1]]]));
    assert!(err(&h, ElleWorkload::RwRegister).starts_with("test.jsonl:1:"));
}

// ---------------------------------------------------------------- fixtures

fn fixture(name: &str) -> History {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elle")
        .join(name);
    History::read_jsonl(&path).unwrap()
}

#[test]
fn fixtures() {
    let cases: &[(&str, ElleWorkload, Validity, &[&str])] = &[
        (
            "list-append-valid.jsonl",
            ElleWorkload::ListAppend,
            Validity::Valid,
            &[],
        ),
        (
            "list-append-g-single.jsonl",
            ElleWorkload::ListAppend,
            Validity::Invalid,
            &["G-single"],
        ),
        (
            "list-append-g1a.jsonl",
            ElleWorkload::ListAppend,
            Validity::Invalid,
            &["G1a"],
        ),
        (
            "list-append-g2-item.jsonl",
            ElleWorkload::ListAppend,
            Validity::Invalid,
            &["G2-item"],
        ),
        (
            "rw-register-g1c.jsonl",
            ElleWorkload::RwRegister,
            Validity::Invalid,
            &["G1c"],
        ),
        (
            "rw-register-valid.jsonl",
            ElleWorkload::RwRegister,
            Validity::Valid,
            &[],
        ),
    ];
    for (name, workload, valid, expected) in cases {
        let v = check(&fixture(name), &ElleOptions::new(*workload)).unwrap();
        assert_eq!(v.valid, *valid, "{name}: {:#?}", v.details);
        assert_eq!(types(&v), *expected, "{name}");
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elle/list-append-malformed.jsonl");
    let h = History::read_jsonl(&path).unwrap();
    let e = check(&h, &ElleOptions::default()).unwrap_err().to_string();
    assert!(e.contains("list-append-malformed.jsonl:4:"), "{e}");
}

// ---------------------------------------------------------------- generated

fn gen_check(options: &GenerateOptions, model: &str) -> Verdict {
    let h = History::from_ops("generated", generate(options)).unwrap();
    let elle = ElleOptions::new(options.workload).with_model(model.parse().unwrap());
    check(&h, &elle).unwrap()
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
