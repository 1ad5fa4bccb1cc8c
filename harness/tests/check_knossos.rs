//! `faultline check` on histories in Knossos's and Elle's own shapes: multi-register
//! transactions, `--initial-value`, Knossos's meaning of a nil read in EDN (and ours in
//! JSONL), Elle transactions whose `f` is anything and whose nil reads are empty lists.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn json(args: &[&str]) -> (std::process::Output, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let output = faultline(&all);
    let parsed = serde_json::from_str(&stdout(&output)).unwrap_or(Value::Null);
    (output, parsed)
}

/// Knossos's multi-register shape: `:f :txn`, `[:read :x nil]`, `[:write :y 2]`.
const MULTI_VALID: &str = r#"{:type :invoke, :f :txn, :value [[:write :x 1] [:write :y 1]], :process 0, :time 100}
{:type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]], :process 3, :time 7686455705}
{:type :ok, :f :txn, :value [[:write :x 1] [:write :y 1]], :process 0, :time 7686455800}
{:type :ok, :f :txn, :value [[:read :x 1] [:write :y 2]], :process 3, :time 7686455900}
{:type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]], :process 0, :time 7686456000}
{:type :ok, :f :txn, :value [[:read :x 1] [:read :y 2]], :process 0, :time 7686456100}
"#;

/// The second transaction reads x=1 and y=3: no transaction wrote y=3.
const MULTI_INVALID: &str = r#"{:type :invoke, :f :txn, :value [[:write :x 1] [:write :y 1]], :process 0, :time 100}
{:type :ok, :f :txn, :value [[:write :x 1] [:write :y 1]], :process 0, :time 200}
{:type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]], :process 1, :time 300}
{:type :ok, :f :txn, :value [[:read :x 1] [:read :y 3]], :process 1, :time 400}
"#;

/// Reads x=0 before anything is written: valid only when x starts at 0.
const MULTI_ZERO: &str = r#"{:type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]], :process 3, :time 10}
{:type :ok, :f :txn, :value [[:read :x 0] [:write :y 2]], :process 3, :time 20}
"#;

#[test]
fn multi_register_edn() {
    let dir = tempfile::tempdir().unwrap();
    let valid = write(dir.path(), "multi-valid.edn", MULTI_VALID);
    let (output, results) = json(&["check", &valid]);
    assert_exit(&output, 0);
    assert_eq!(results["checker"]["name"], "linearizable");
    assert_eq!(results["checker"]["model"], "multi-register");
    assert_eq!(results["checker"]["nil_reads"], "unknown");
    assert_eq!(results["checker"]["initial_value"], Value::Null);
    let invalid = write(dir.path(), "multi-invalid.edn", MULTI_INVALID);
    assert_exit(&faultline(&["check", &invalid]), 1);
}

#[test]
fn initial_value_changes_the_verdict_as_in_knossos() {
    let dir = tempfile::tempdir().unwrap();
    let zero = write(dir.path(), "multi-zero.edn", MULTI_ZERO);
    assert_exit(&faultline(&["check", &zero]), 1);
    let (output, results) = json(&["check", &zero, "--initial-value", r#"{"x":0,"y":0}"#]);
    assert_exit(&output, 0);
    assert_eq!(results["checker"]["initial_value"]["x"], 0);
    // A cas from 0: (cas-register 0) accepts it, (cas-register nil) does not.
    // (An EDN `[0 1]` value would be read as Jepsen's independent [key value] tuple.)
    let cas = write(
        dir.path(),
        "cas.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"cas","value":[0,1]}
{"index":1,"time":2,"process":0,"type":"ok","f":"cas","value":[0,1]}
"#,
    );
    assert_exit(&faultline(&["check", &cas, "--initial-value", "0"]), 0);
    assert_exit(&faultline(&["check", &cas, "--initial-value", "null"]), 1);
    // Misused: not JSON, the wrong shape for the model, or the wrong checker.
    assert_exit(&faultline(&["check", &cas, "--initial-value", "{x"]), 254);
    let output = faultline(&["check", &zero, "--initial-value", "0"]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("JSON object"),
        "{}",
        stderr(&output)
    );
    let output = faultline(&["check", &cas, "--initial-value", "0", "--checker", "elle"]);
    assert_exit(&output, 254);
}

#[test]
fn nil_reads_say_nothing_in_edn_and_null_in_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    // write 1 completes, then a read returns nil.
    let edn = write(
        dir.path(),
        "nil-read.edn",
        "{:type :invoke, :f :write, :value 1, :process 0, :time 1}\n\
         {:type :ok, :f :write, :value 1, :process 0, :time 2}\n\
         {:type :invoke, :f :read, :value nil, :process 1, :time 3}\n\
         {:type :ok, :f :read, :value nil, :process 1, :time 4}\n",
    );
    let (output, results) = json(&["check", &edn]);
    assert_exit(&output, 0);
    assert_eq!(results["checker"]["nil_reads"], "unknown");
    let jsonl = write(
        dir.path(),
        "nil-read.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}
{"index":2,"time":3,"process":1,"type":"invoke","f":"read","value":null}
{"index":3,"time":4,"process":1,"type":"ok","f":"read","value":null}
"#,
    );
    let (output, results) = json(&["check", &jsonl]);
    assert_exit(&output, 1);
    assert_eq!(results["checker"]["nil_reads"], "null");
}

#[test]
fn elle_write_skew_with_nil_reads_and_any_f() {
    let dir = tempfile::tempdir().unwrap();
    // Both read x and y as nil (the empty list), each appends to one: G2-item.
    for f in [":txn", ":read"] {
        let edn = write(
            dir.path(),
            "skew.edn",
            &format!(
                "{{:type :invoke, :f {f}, :value [[:r :x nil] [:r :y nil] [:append :x 1]], :process 0, :time 1}}\n\
                 {{:type :invoke, :f {f}, :value [[:r :x nil] [:r :y nil] [:append :y 1]], :process 1, :time 2}}\n\
                 {{:type :ok, :f {f}, :value [[:r :x nil] [:r :y nil] [:append :x 1]], :process 0, :time 3}}\n\
                 {{:type :ok, :f {f}, :value [[:r :x nil] [:r :y nil] [:append :y 1]], :process 1, :time 4}}\n"
            ),
        );
        let (output, results) = json(&["check", &edn]);
        assert_exit(&output, 1);
        assert_eq!(results["checker"]["name"], "elle", "{f}");
        assert_eq!(
            results["checkers"]["elle"]["anomaly_types"],
            serde_json::json!(["G2-item"]),
            "{f}"
        );
    }
    let jsonl = write(
        dir.path(),
        "skew.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null],["append","x",1]]}
{"index":1,"time":2,"process":1,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null],["append","y",1]]}
{"index":2,"time":3,"process":0,"type":"ok","f":"txn","value":[["r","x",null],["r","y",null],["append","x",1]]}
{"index":3,"time":4,"process":1,"type":"ok","f":"txn","value":[["r","x",null],["r","y",null],["append","y",1]]}
"#,
    );
    assert_exit(&faultline(&["check", &jsonl]), 1);
}

/// Elle's own shape (its `paper-example.edn`): no `:f`, no `:process`, one
/// transaction after another. The second misses the first's append: invalid.
#[test]
fn elle_paper_shape_without_f_or_process() {
    let dir = tempfile::tempdir().unwrap();
    let edn = write(
        dir.path(),
        "paper.edn",
        "{:index 0 :type :invoke :value [[:r 1 nil] [:r 2 nil] [:append 1 1]]}\n\
         {:index 1 :type :ok :value [[:r 1 nil] [:r 2 nil] [:append 1 1]]}\n\
         {:index 2 :type :invoke :value [[:r 1 nil] [:r 2 nil] [:append 2 1]]}\n\
         {:index 3 :type :ok :value [[:r 1 nil] [:r 2 nil] [:append 2 1]]}\n",
    );
    let (output, results) = json(&["check", &edn]);
    assert_exit(&output, 1);
    assert_eq!(results["checker"]["name"], "elle");
}
