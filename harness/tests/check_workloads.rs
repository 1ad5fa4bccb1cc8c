//! End-to-end tests of `faultline check` with the bank, set and counter checkers: exit
//! codes, explanations on stdout, `results.json`, the choice of checker from the
//! operations, and 254 for missing flags and malformed values.

mod common;

use std::fs;

use common::*;
use serde_json::Value;

#[test]
fn bank_valid_exits_0() {
    let output = faultline(&["check", &example("bank-valid.jsonl"), "--bank-total", "30"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("bank-valid.jsonl: valid"), "{text}");
    assert!(text.contains("checker: bank"), "{text}");
}

#[test]
fn bank_invalid_exits_1_and_explains() {
    let output = faultline(&[
        "check",
        &example("bank-invalid.jsonl"),
        "--bank-total",
        "30",
    ]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.contains("wrong-total"), "{text}");
    assert!(text.contains("total 33, expected 30"), "{text}");
    assert!(text.contains("negative-value"), "{text}");

    let output = faultline(&[
        "check",
        &example("bank-invalid.jsonl"),
        "--checker",
        "bank",
        "--bank-total",
        "30",
        "--bank-accounts",
        "a,b,c",
        "--json",
    ]);
    assert_exit(&output, 1);
    let json = json_of(&output);
    let bank = &json["checkers"]["bank"];
    assert_eq!(bank["valid"], Value::Bool(false));
    assert_eq!(bank["read_count"], 3);
    assert_eq!(bank["error_count"], 2);
    assert_eq!(bank["first_error"]["index"], 7);
    assert_eq!(bank["errors"]["wrong-total"]["count"], 1);
    assert_eq!(bank["errors"]["wrong-total"]["examples"][0]["total"], 33);
    assert_eq!(json["checker"]["name"], "bank");
    assert_eq!(json["checker"]["total"], 30);
}

#[test]
fn bank_negative_allowed_only_leaves_the_wrong_total() {
    let output = faultline(&[
        "check",
        &example("bank-invalid.jsonl"),
        "--bank-total",
        "30",
        "--bank-negative-allowed",
        "--json",
    ]);
    assert_exit(&output, 1);
    let json = json_of(&output);
    assert_eq!(json["checkers"]["bank"]["error_count"], 1);
}

#[test]
fn bank_without_total_exits_254_naming_the_flag() {
    let output = faultline(&["check", &example("bank-valid.jsonl")]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("--bank-total"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bank_malformed_read_exits_254_naming_the_line() {
    let (_dir, path) = temp_file(
        "bank.jsonl",
        concat!(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","value":null}"#,
            "\n",
            r#"{"index":1,"time":2,"process":0,"type":"ok","f":"read","value":{"a":"ten"}}"#,
            "\n",
        ),
    );
    let output = faultline(&["check", &path, "--checker", "bank", "--bank-total", "10"]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("bank.jsonl:2:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bank_flags_with_another_checker_exit_254() {
    let output = faultline(&[
        "check",
        &example("cas-register-valid.jsonl"),
        "--checker",
        "linearizable",
        "--bank-total",
        "3",
    ]);
    assert_exit(&output, 254);
}

// ---- set -----------------------------------------------------------------------------

#[test]
fn set_lost_exits_1_and_explains() {
    let output = faultline(&["check", &example("set-lost.jsonl")]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.contains("checker: set"), "{text}");
    assert!(text.contains("lost element 2"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let output = faultline(&[
        "check",
        &example("set-lost.jsonl"),
        "--checker",
        "set",
        "--out",
        &out,
    ]);
    assert_exit(&output, 1);
    let results: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let set = &results["checkers"]["set"];
    assert_eq!(set["valid"], Value::Bool(false));
    assert_eq!(set["lost"], serde_json::json!([2]));
    assert_eq!(set["recovered"], serde_json::json!([3]));
    assert_eq!(set["attempt_count"], 4);
}

#[test]
fn set_valid_and_stale_with_set_linearizable() {
    let rows = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":1}"#,
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"add","value":1}"#,
        r#"{"index":2,"time":3,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"time":4,"process":1,"type":"ok","f":"read","value":[]}"#,
        r#"{"index":4,"time":5,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":5,"time":6,"process":1,"type":"ok","f":"read","value":[1]}"#,
    ];
    let (_dir, path) = temp_file("set.jsonl", &(rows.join("\n") + "\n"));
    assert_exit(&faultline(&["check", &path]), 0);
    let output = faultline(&["check", &path, "--set-linearizable"]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("stale element 1"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn set_malformed_read_exits_254_naming_the_line() {
    let rows = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":1}"#,
        r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":2,"time":3,"process":1,"type":"ok","f":"read","value":7}"#,
    ];
    let (_dir, path) = temp_file("set.jsonl", &(rows.join("\n") + "\n"));
    let output = faultline(&["check", &path, "--checker", "set"]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("set.jsonl:3:"),
        "{}",
        stderr(&output)
    );
}

// ---- counter -------------------------------------------------------------------------

#[test]
fn counter_invalid_exits_1_and_explains() {
    let output = faultline(&["check", &example("counter-invalid.jsonl")]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.contains("checker: counter"), "{text}");
    assert!(text.contains("returned 5"), "{text}");
    assert!(text.contains("between 3 and 3"), "{text}");
    let output = faultline(&[
        "check",
        &example("counter-invalid.jsonl"),
        "--checker",
        "counter",
        "--json",
    ]);
    assert_exit(&output, 1);
    let json = json_of(&output);
    let counter = &json["checkers"]["counter"];
    assert_eq!(counter["reads"], 2);
    assert_eq!(counter["errors"][0]["index"], 9);
    assert_eq!(counter["errors"][0]["upper"], 3);
}

#[test]
fn counter_valid_exits_0() {
    let rows = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":2}"#,
        r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":2,"time":3,"process":0,"type":"ok","f":"add","value":2}"#,
        r#"{"index":3,"time":4,"process":1,"type":"ok","f":"read","value":2}"#,
    ];
    let (_dir, path) = temp_file("counter.jsonl", &(rows.join("\n") + "\n"));
    let output = faultline(&["check", &path]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("checker: counter"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn counter_malformed_delta_exits_254_naming_the_line() {
    let rows = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":"two"}"#,
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"add","value":"two"}"#,
    ];
    let (_dir, path) = temp_file("counter.jsonl", &(rows.join("\n") + "\n"));
    let output = faultline(&["check", &path, "--checker", "counter"]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("counter.jsonl:1:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn add_read_history_without_reads_asks_for_the_checker() {
    let rows = [
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":2}"#,
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"add","value":2}"#,
    ];
    let (_dir, path) = temp_file("adds.jsonl", &(rows.join("\n") + "\n"));
    let output = faultline(&["check", &path]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("--checker set"),
        "{}",
        stderr(&output)
    );
    assert_exit(&faultline(&["check", &path, "--checker", "counter"]), 0);
}
