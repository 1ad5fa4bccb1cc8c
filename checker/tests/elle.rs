//! End-to-end tests of the Elle checker: a minimal history for every anomaly name,
//! fixtures read from disk, and malformed transactions. Generated histories and the
//! brute-force oracles are in `elle_generated.rs`.

mod common;

use std::path::PathBuf;

use faultline_checker::elle::{ElleOptions, ElleWorkload, VersionInference, analyze};
use faultline_checker::history::{History, InputError, OpType};
use faultline_checker::results::{Validity, Verdict};
use serde_json::json;

use common::{H, check_both, check_file_both, run, types};

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
    let v = check_both(&h.history(), &options).unwrap();
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
    let v = check_both(&h.history(), &options).unwrap();
    assert_eq!(v.valid, Validity::Invalid, "{:#?}", v.details);
}

// ---------------------------------------------------------------- malformed input

fn err(h: &H, workload: ElleWorkload) -> String {
    let e: InputError = check_both(&h.history(), &ElleOptions::new(workload)).unwrap_err();
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
        let _ = fixture(name);
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/elle")
            .join(name);
        let v = check_file_both(&path, &ElleOptions::new(*workload)).unwrap();
        assert_eq!(v.valid, *valid, "{name}: {:#?}", v.details);
        assert_eq!(types(&v), *expected, "{name}");
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/elle/list-append-malformed.jsonl");
    let e = check_file_both(&path, &ElleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("list-append-malformed.jsonl:4:"), "{e}");
}
