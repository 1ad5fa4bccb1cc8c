//! Tests of the compact reader: what it takes, what it leaves to the general reader,
//! and what it keeps of each event.

use serde_json::json;

use super::*;
use crate::history::{Op, ReadLimits};

fn read(text: &str) -> Result<TxnHistory, NotCompact> {
    TxnHistory::read_list_append_from("h.jsonl".into(), text.as_bytes(), &ReadLimits::default())
}

/// A line of the history format.
fn line(index: u64, process: serde_json::Value, t: &str, value: serde_json::Value) -> String {
    json!({"index": index, "time": 10 * index, "process": process, "type": t, "f": "txn", "value": value})
        .to_string()
}

fn txn_lines(values: &[(u64, &str, serde_json::Value)]) -> String {
    values
        .iter()
        .enumerate()
        .map(|(i, (p, t, v))| line(i as u64, json!(p), t, v.clone()) + "\n")
        .collect()
}

#[test]
fn a_list_append_history_is_kept_compactly() {
    let mut text = txn_lines(&[
        (0, "invoke", json!([["append", "x", 1], ["r", 7, null]])),
        (1, "invoke", json!([["r", "x", null]])),
        (0, "ok", json!([["append", "x", 1], ["r", 7, null]])),
        (1, "info", json!(null)),
        (2, "invoke", json!([["append", "x", 2]])),
    ]);
    // A blank line and a nemesis event in between: line numbers stay the file's.
    text = text.replacen('\n', "\n\n", 1);
    text.push_str(&(line(5, json!("nemesis"), "info", json!({"killed": ["n1"]})) + "\n"));
    let h = read(&text).unwrap();
    assert_eq!((h.len(), h.txn_count(), h.source_name()), (6, 3, "h.jsonl"));
    assert_eq!(h.line_of(0), 1);
    assert_eq!(h.line_of(1), 3);
    assert_eq!(h.keys, vec![json!("x"), json!(7)]);
    let t0 = &h.txns[0];
    assert_eq!(
        (t0.invoke, t0.completion(), t0.outcome),
        (0, Some(2), Some(OpType::Ok))
    );
    let mops: Vec<&MicroOp> = h.mops[t0.mops.start as usize..t0.mops.end as usize]
        .iter()
        .collect();
    assert_eq!(mops[0].value, Observed::Int(1));
    // A committed read of null observed the empty list.
    assert_eq!(mops[1].value, Observed::List(0..0));
    // An info completion without micro-ops keeps the invocation's.
    let t1 = &h.txns[1];
    assert_eq!(t1.outcome, Some(OpType::Info));
    assert_eq!(h.mops[t1.mops.start as usize].value, Observed::Null);
    // Never completed: info, its invocation's micro-ops.
    let t2 = &h.txns[2];
    assert_eq!((t2.completion(), t2.outcome), (None, None));
    assert_eq!(h.mops[t2.mops.start as usize].value, Observed::Int(2));
    let nemesis = h.event(5).unwrap();
    assert_eq!((nemesis.process, nemesis.time), (Process::Nemesis, 50));
    assert!(h.heap_bytes() > 0);
}

#[test]
fn a_read_list_is_kept_as_integers() {
    let h = read(&txn_lines(&[
        (0, "invoke", json!([["r", "x", null]])),
        (0, "ok", json!([["r", "x", [3, 1, 2]]])),
    ]))
    .unwrap();
    let Observed::List(range) = &h.mops[0].value else {
        panic!("{:?}", h.mops[0]);
    };
    assert_eq!(h.items(range), &[3, 1, 2]);
}

#[test]
fn what_the_general_path_must_decide_is_left_to_it() {
    let cases: Vec<(&str, String)> = vec![
        (
            "string elements",
            txn_lines(&[(0, "invoke", json!([["append", "x", "a"]]))]),
        ),
        (
            "rw-register",
            txn_lines(&[(0, "invoke", json!([["w", "x", 1]]))]),
        ),
        (
            "knossos",
            txn_lines(&[(0, "invoke", json!([["read", "x", null]]))]),
        ),
        ("not a txn", txn_lines(&[(0, "invoke", json!(3))])),
        (
            "no micro-ops",
            txn_lines(&[(0, "invoke", json!([])), (0, "ok", json!([]))]),
        ),
        ("empty", String::new()),
        (
            "a completion that differs",
            txn_lines(&[
                (0, "invoke", json!([["append", "x", 1]])),
                (0, "ok", json!([["append", "x", 2]])),
            ]),
        ),
        (
            "a read that is not a list",
            txn_lines(&[
                (0, "invoke", json!([["r", "x", null]])),
                (0, "ok", json!([["r", "x", 3]])),
            ]),
        ),
        (
            "an ok without micro-ops",
            txn_lines(&[
                (0, "invoke", json!([["r", "x", null]])),
                (0, "ok", json!(null)),
            ]),
        ),
        (
            "fewer micro-ops",
            txn_lines(&[
                (0, "invoke", json!([["r", "x", null], ["r", "y", null]])),
                (0, "ok", json!([["r", "x", []]])),
            ]),
        ),
        (
            "a broken rule",
            txn_lines(&[
                (0, "invoke", json!([["r", "x", null]])),
                (0, "invoke", json!([["r", "x", null]])),
            ]),
        ),
        ("not JSON", "{\"index\":0,\n".to_string()),
        (
            "a nemesis list",
            line(0, json!("nemesis"), "info", json!(["n1"])) + "\n",
        ),
    ];
    for (name, text) in cases {
        assert!(read(&text).is_err(), "{name}");
    }
    let bytes = b"{\"index\":0\xff}\n";
    let read = TxnHistory::read_list_append_from("h".into(), &bytes[..], &ReadLimits::default());
    assert!(read.is_err());
}

#[test]
fn the_memory_limit_leaves_it_to_the_general_reader() {
    let text = txn_lines(&[
        (0, "invoke", json!([["append", "x", 1]])),
        (0, "ok", json!([["append", "x", 1]])),
    ]);
    let limits = ReadLimits {
        memory_bytes: 100,
        ..ReadLimits::default()
    };
    let read = TxnHistory::read_list_append_from("h".into(), text.as_bytes(), &limits);
    assert!(read.is_err());
    assert!(TxnHistory::read_list_append(std::path::Path::new("/nonexistent"), &limits).is_err());
}

#[test]
fn a_history_of_many_batches_reads_as_the_general_reader_reads_it() {
    use crate::elle::generate::{GenerateOptions, Plant, generate};
    use crate::elle::{ElleOptions, check, check_compact};
    use crate::history::{History, HistoryWriter};

    // About 7 MB of JSONL: two batches, the arrays sized from the first.
    let options = GenerateOptions {
        seed: 3,
        txns: 24_000,
        plant: vec![Plant::G1c, Plant::LostUpdate],
        ..GenerateOptions::default()
    };
    let path = std::env::temp_dir().join(format!("faultline-compact-{}.jsonl", std::process::id()));
    let mut writer = HistoryWriter::new(std::fs::File::create(&path).unwrap());
    for op in generate(&options) {
        writer.write(&op).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    let compact = TxnHistory::read_list_append(&path, &ReadLimits::default()).unwrap();
    let general = History::read_jsonl(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(std::fs::metadata(&path).is_err());
    assert_eq!(compact.len(), general.len());
    assert!(compact.txns.capacity() >= compact.txns.len());
    let elle = ElleOptions::default();
    let (a, b) = (
        check(&general, &elle).unwrap(),
        check_compact(&compact, &elle).unwrap(),
    );
    assert_eq!(
        (a.valid, &a.details, &a.explanation),
        (b.valid, &b.details, &b.explanation)
    );
}

/// An event as a Jepsen operation map; `process: None` leaves `:process` out.
fn edn_op(index: u64, process: Option<u64>, t: &str, value: &serde_json::Value) -> String {
    let op = Op::new(
        index,
        10 * index as i64,
        Process::Client(process.unwrap_or(0)),
        OpType::parse(t).unwrap(),
        "txn",
        value.clone(),
    );
    let text = crate::history::edn::to_edn(&op);
    match process {
        Some(_) => text,
        None => text.replace(":process 0, ", ""),
    }
}

#[test]
fn an_edn_history_reads_as_the_general_importer_reads_it() {
    use crate::elle::generate::{GenerateOptions, Plant, generate};
    use crate::elle::{ElleOptions, check, check_compact};
    use crate::history::edn::read_edn_str;

    let options = GenerateOptions {
        seed: 5,
        txns: 3_000,
        info_rate: 0.02,
        plant: vec![Plant::G1c, Plant::LostUpdate, Plant::G1a],
        ..GenerateOptions::default()
    };
    // Two maps on one line and one spanning two, a comment, and a nemesis event: the
    // layout is EDN's, not JSONL's.
    let mut text = String::from("; a Jepsen history\n");
    for (i, op) in generate(&options).iter().enumerate() {
        text += &crate::history::edn::to_edn(op);
        text += if i % 7 == 0 { " " } else { "\n" };
        if i == 100 {
            text +=
                "{:index 101, :type :info, :process :nemesis, :f :kill,\n :value {\"n1\" 1.5}}\n";
        }
    }
    let compact = TxnHistory::read_list_append_edn_from(
        "h.edn".into(),
        text.as_bytes(),
        &ReadLimits::default(),
    )
    .unwrap();
    let general = read_edn_str("h.edn", &text).unwrap();
    assert_eq!(compact.len(), general.len());
    for (position, op) in general.ops().iter().enumerate() {
        let event = compact.event(position).unwrap();
        assert_eq!(
            (event.index, event.process, event.time, event.op_type),
            (op.index, op.process, op.time, op.op_type)
        );
        assert_eq!(compact.line_of(position), general.line_of(position));
    }
    let elle = ElleOptions::default();
    let (a, b) = (
        check(&general, &elle).unwrap(),
        check_compact(&compact, &elle).unwrap(),
    );
    assert_eq!(a.valid, crate::Validity::Invalid);
    assert_eq!(
        (a.valid, &a.details, &a.explanation),
        (b.valid, &b.details, &b.explanation)
    );
}

#[test]
fn edn_processes_are_numbered_as_jepsen_means_them() {
    use crate::history::edn::read_edn_str;

    let txn = json!([["append", "x", 1]]);
    let read = json!([["r", "x", [1]]]);
    // Process 3 crashes and invokes again (a fresh number); maps without `:process`
    // share one process, numbered after the highest one in the file, which comes last.
    let text = [
        edn_op(0, Some(3), "invoke", &txn),
        edn_op(1, Some(3), "info", &txn),
        edn_op(2, None, "invoke", &read),
        edn_op(3, Some(3), "invoke", &read),
        edn_op(4, None, "ok", &read),
        edn_op(5, Some(3), "info", &read),
        edn_op(6, Some(3), "invoke", &read),
        edn_op(7, Some(9), "invoke", &read),
        edn_op(8, Some(3), "ok", &read),
        edn_op(9, Some(9), "ok", &read),
    ]
    .join("\n");
    let compact = TxnHistory::read_list_append_edn_from(
        "h.edn".into(),
        text.as_bytes(),
        &ReadLimits::default(),
    )
    .unwrap();
    let general = read_edn_str("h.edn", &text).unwrap();
    let processes: Vec<Process> = (0..compact.len())
        .map(|i| compact.event(i).unwrap().process)
        .collect();
    let expected: Vec<Process> = general.ops().iter().map(|op| op.process).collect();
    assert_eq!(processes, expected);
    // 9 is the highest: the shared process is 10, the fresh ones 11 and 12.
    let numbers: Vec<u64> = [3, 3, 10, 11, 10, 11, 12, 9, 12, 9].to_vec();
    assert_eq!(
        processes,
        numbers.into_iter().map(Process::Client).collect::<Vec<_>>()
    );
    let txn_processes: Vec<u64> = compact.txns.iter().map(|t| t.process).collect();
    assert_eq!(txn_processes, vec![3, 10, 11, 12, 9]);
}

#[test]
fn what_the_general_importer_must_explain_is_left_to_it() {
    let txn = json!([["append", "x", 1]]);
    for text in [
        // Not EDN.
        "{:type :invoke, :process 0, :value [[:append :x 1]]".to_string(),
        // A register history.
        "{:type :invoke, :f :read, :process 0, :value nil}".to_string(),
        // A completion without an invocation.
        edn_op(0, Some(0), "ok", &txn),
        // A process number the provisional numbers need.
        edn_op(0, Some(4611686018427387904), "invoke", &txn),
        // Float elements.
        edn_op(0, Some(0), "invoke", &json!([["append", "x", 1.5]])),
    ] {
        let read = TxnHistory::read_list_append_edn_from(
            "h.edn".into(),
            text.as_bytes(),
            &ReadLimits::default(),
        );
        assert!(read.is_err(), "{text}");
    }
}
