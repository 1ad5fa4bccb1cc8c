//! End-to-end tests of the `faultline` binary: `check` on the shipped examples and on
//! generated histories, the exit codes of the spec (0, 1, 2, 254, 255), `--json`,
//! `--out`, EDN input, and `gen`.

mod common;

use std::fs;

use common::*;
use serde_json::Value;

const INVOKE: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"read","value":null}"#;
const OK: &str = r#"{"index":1,"time":20,"process":0,"type":"ok","f":"read","value":null}"#;

// ---- verdicts ------------------------------------------------------------------------

#[test]
fn valid_example_exits_0() {
    let output = faultline(&["check", &example("cas-register-valid.jsonl")]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("cas-register-valid.jsonl: valid"), "{text}");
    assert!(text.contains("checker: linearizable"), "{text}");
    assert!(text.contains("model: cas-register"), "{text}");
    assert!(text.contains("keys: 1"), "{text}");
}

#[test]
fn other_valid_examples_exit_0() {
    for name in [
        "cas-register-multi-key.jsonl",
        "cas-register-crashed.jsonl",
        "jepsen-independent.edn",
        "knossos-vector.edn",
    ] {
        assert_exit(&faultline(&["check", &example(name)]), 0);
    }
}

#[test]
fn invalid_example_exits_1_with_the_explanation() {
    let output = faultline(&["check", &example("cas-register-invalid.jsonl")]);
    assert_exit(&output, 1);
    let text = stdout(&output);
    assert!(text.contains(": invalid"), "{text}");
    assert!(text.contains("not linearizable"), "{text}");
    assert!(
        text.contains("lines 13–14"),
        "names the read that cannot be linearized: {text}"
    );
}

#[test]
fn time_limit_0_on_a_hard_history_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("hard.jsonl").display().to_string();
    let generated = faultline(&[
        "gen",
        &history,
        "--object",
        "cas-register",
        "--ops",
        "5000",
        "--processes",
        "50",
        "--crash-rate",
        "0.08",
        "--values",
        "10",
        "--seed",
        "1002",
    ]);
    assert_exit(&generated, 0);
    let output = faultline(&["check", &history, "--time-limit", "0"]);
    assert_exit(&output, 2);
    let text = stdout(&output);
    assert!(text.contains(": unknown"), "{text}");
    assert!(text.contains("time limit"), "{text}");
}

// ---- bad input: 254 with FILE:LINE ---------------------------------------------------

fn assert_input_error(name: &str, text: &str, line: usize, message: &str) {
    let (_dir, path) = temp_file(name, text);
    let output = faultline(&["check", &path]);
    assert_exit(&output, 254);
    let expected = format!("{path}:{line}: {message}");
    assert!(
        stderr(&output).contains(&expected),
        "expected {expected:?} in {}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
}

#[test]
fn truncated_line_exits_254() {
    assert_input_error(
        "truncated.jsonl",
        &format!("{INVOKE}\n{{\"index\":1,\"time\":20,\"pro"),
        2,
        "not valid JSON: EOF while parsing a string",
    );
}

#[test]
fn wrong_types_exit_254() {
    assert_input_error(
        "types.jsonl",
        r#"{"index":0,"time":"late","process":0,"type":"invoke","f":"read"}"#,
        1,
        "`time` must be an integer (nanoseconds), got a string",
    );
}

#[test]
fn duplicate_completion_exits_254() {
    let third = r#"{"index":2,"time":30,"process":0,"type":"ok","f":"read","value":null}"#;
    assert_input_error(
        "duplicate.jsonl",
        &format!("{INVOKE}\n{OK}\n{third}\n"),
        3,
        "`ok` completion for process 0 without an open invocation",
    );
}

#[test]
fn completion_without_invocation_exits_254() {
    assert_input_error(
        "orphan.jsonl",
        &format!(
            "{INVOKE}\n{OK}\n{}\n",
            OK.replace(
                r#""index":1,"time":20,"process":0"#,
                r#""index":2,"time":30,"process":5"#
            )
        ),
        3,
        "`ok` completion for process 5 without an open invocation",
    );
}

#[test]
fn bad_edn_exits_254() {
    assert_input_error(
        "broken.edn",
        "{:type :invoke, :f :read, :process 0, :value nil}\n{:type :ok, :f :read\n",
        2,
        "not valid EDN",
    );
}

#[test]
fn unknown_model_exits_254() {
    let output = faultline(&[
        "check",
        &example("cas-register-valid.jsonl"),
        "--model",
        "btree",
    ]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("unknown model `btree`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn operations_no_model_knows_exit_254() {
    let text = INVOKE.replace(r#""f":"read""#, r#""f":"frobnicate""#);
    let (_dir, path) = temp_file("odd.jsonl", &text);
    let output = faultline(&["check", &path]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("cannot pick a model"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_flags_exit_254_not_2() {
    for args in [
        vec![
            "check",
            "examples/histories/cas-register-valid.jsonl",
            "--bogus",
        ],
        vec!["check"],
        vec!["check", "x.jsonl", "--checker", "knossos"],
        vec!["check", "x.jsonl", "--time-limit", "soon"],
        vec!["gen", "x.jsonl", "--crash-rate", "2"],
        vec!["frobnicate"],
        vec![],
    ] {
        let output = faultline(&args);
        assert_exit(&output, 254);
        assert!(!stderr(&output).is_empty(), "{args:?}");
    }
}

#[test]
fn conflicting_checker_flags_exit_254() {
    let history = example("cas-register-valid.jsonl");
    let output = faultline(&["check", &history, "--checker", "elle", "--model", "mutex"]);
    assert_exit(&output, 254);
    let output = faultline(&[
        "check",
        &history,
        "--checker",
        "linearizable",
        "--workload",
        "list-append",
    ]);
    assert_exit(&output, 254);
}

#[test]
fn missing_file_exits_254() {
    let output = faultline(&["check", "no/such/history.jsonl"]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("no/such/history.jsonl: cannot read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn help_and_version_exit_0() {
    let help = faultline(&["--help"]);
    assert_exit(&help, 0);
    // The help says what Faultline is and how to start.
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("fault-injection testing"), "{text}");
    assert!(
        text.contains("faultline run") && text.contains("0 valid"),
        "{text}"
    );
    assert_exit(&faultline(&["check", "--help"]), 0);
    assert_exit(&faultline(&["--version"]), 0);
}

#[test]
fn a_panic_exits_255() {
    let output = faultline(&["internal-panic"]);
    assert_exit(&output, 255);
    assert!(
        stderr(&output).contains("internal error"),
        "{}",
        stderr(&output)
    );
}

// ---- output --------------------------------------------------------------------------

#[test]
fn json_prints_the_results_document() {
    let history = example("cas-register-invalid.jsonl");
    let output = faultline(&["check", &history, "--json"]);
    assert_exit(&output, 1);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["valid"], Value::Bool(false));
    assert_eq!(json["history"], Value::from(history));
    assert_eq!(json["checker"]["name"], "linearizable");
    assert_eq!(json["checker"]["model"], "cas-register");
    assert_eq!(
        json["checkers"]["linearizable"]["valid"],
        Value::Bool(false)
    );
    assert!(json["checkers"]["linearizable"]["failures"].is_array());
}

#[test]
fn out_writes_results_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run/1");
    let out_arg = out.display().to_string();
    let history = example("cas-register-multi-key.jsonl");
    let output = faultline(&["check", &history, "--out", &out_arg]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains(": valid"),
        "the summary is still printed"
    );
    let json: Value =
        serde_json::from_str(&fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["valid"], Value::Bool(true));
    assert_eq!(json["checkers"]["linearizable"]["keys"], 3);
}

#[test]
fn out_that_cannot_be_created_exits_254() {
    let (_dir, file) = temp_file("not-a-dir", "");
    let output = faultline(&[
        "check",
        &example("cas-register-valid.jsonl"),
        "--out",
        &format!("{file}/sub"),
    ]);
    assert_exit(&output, 254);
}

#[test]
fn unknown_verdict_in_json_is_the_string_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.jsonl").display().to_string();
    let args = [
        "gen",
        &history,
        "--ops",
        "5000",
        "--processes",
        "50",
        "--crash-rate",
        "0.08",
        "--seed",
        "1002",
    ];
    assert_exit(&faultline(&[&args[..], &["--values", "10"]].concat()), 0);
    let output = faultline(&["check", &history, "--time-limit", "0", "--json"]);
    assert_exit(&output, 2);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["valid"], "unknown");
}

// ---- EDN -----------------------------------------------------------------------------

#[test]
fn edn_by_extension() {
    let output = faultline(&["check", &example("jepsen-independent.edn"), "--json"]);
    assert_exit(&output, 0);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["checker"]["format"], "edn");
    assert_eq!(json["checkers"]["linearizable"]["keys"], 2);
}

#[test]
fn edn_by_format_flag() {
    let text = fs::read_to_string(workspace().join(example("knossos-vector.edn"))).unwrap();
    let (_dir, path) = temp_file("history.txt", &text);
    assert_exit(&faultline(&["check", &path, "--format", "edn"]), 0);
    // Read as JSONL, the same file is not valid.
    assert_exit(&faultline(&["check", &path]), 254);
}

// ---- choosing the checker ------------------------------------------------------------

#[test]
fn model_flag_overrides_inference() {
    // A mutex history read as a register is an input error: it has no such operations.
    let output = faultline(&[
        "check",
        &example("cas-register-valid.jsonl"),
        "--model",
        "mutex",
    ]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("the mutex model has no operation"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn transactions_go_to_elle() {
    let fixtures = "checker/tests/fixtures/elle";
    let output = faultline(&[
        "check",
        &format!("{fixtures}/list-append-valid.jsonl"),
        "--json",
    ]);
    assert_exit(&output, 0);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["checker"]["name"], "elle");
    assert_eq!(json["checker"]["workload"], "list-append");
    let output = faultline(&["check", &format!("{fixtures}/rw-register-g1c.jsonl")]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("workload: rw-register"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("G1c"), "{}", stdout(&output));
}

#[test]
fn elle_flags_are_checked() {
    let history = "checker/tests/fixtures/elle/list-append-valid.jsonl";
    let output = faultline(&["check", history, "--consistency-model", "nonsense"]);
    assert_exit(&output, 254);
    let output = faultline(&[
        "check",
        history,
        "--consistency-model",
        "serializable",
        "--json",
    ]);
    assert_exit(&output, 0);
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["checker"]["consistency_model"], "serializable");
}

// ---- gen -----------------------------------------------------------------------------

#[test]
fn gen_is_reproducible_from_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let args = |out: &str, seed: &str| {
        let output = faultline(&[
            "gen",
            out,
            "--object",
            "set",
            "--ops",
            "300",
            "--processes",
            "4",
            "--keys",
            "3",
            "--crash-rate",
            "0.05",
            "--values",
            "unique",
            "--seed",
            seed,
        ]);
        assert_exit(&output, 0);
    };
    args(&path("a.jsonl"), "11");
    args(&path("b.jsonl"), "11");
    args(&path("c.jsonl"), "12");
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("a.jsonl"), read("b.jsonl"));
    assert_ne!(read("a.jsonl"), read("c.jsonl"));
}

#[test]
fn generated_histories_check_as_generated() {
    let dir = tempfile::tempdir().unwrap();
    for object in ["cas-register", "mutex", "set", "fifo-queue"] {
        let valid = dir
            .path()
            .join(format!("{object}.jsonl"))
            .display()
            .to_string();
        // Small: the fifo-queue search grows quickly with the history's size.
        let common = [
            "--object",
            object,
            "--ops",
            "100",
            "--seed",
            "3",
            "--processes",
            "4",
            "--keys",
            "2",
            "--crash-rate",
            "0.05",
        ];
        assert_exit(
            &faultline(&[&["gen", valid.as_str()][..], &common].concat()),
            0,
        );
        assert_exit(&faultline(&["check", &valid, "--model", object]), 0);
        if object == "mutex" {
            continue; // a mutex has no reads to corrupt
        }
        let invalid = dir
            .path()
            .join(format!("{object}-invalid.jsonl"))
            .display()
            .to_string();
        assert_exit(
            &faultline(&[&["gen", invalid.as_str(), "--invalid"][..], &common].concat()),
            0,
        );
        assert_exit(&faultline(&["check", &invalid, "--model", object]), 1);
    }
}

#[test]
fn gen_invalid_without_reads_exits_254() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl").display().to_string();
    let output = faultline(&["gen", &out, "--object", "mutex", "--ops", "50", "--invalid"]);
    assert_exit(&output, 254);
}
