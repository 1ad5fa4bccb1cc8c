//! `faultline check` on hostile and unusual input, end to end: every case exits with a
//! verdict or 254 naming the file and line; none aborts, hangs or outgrows its memory.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn dev_zero_is_refused_at_line_1() {
    for format in ["jsonl", "edn"] {
        let output = faultline(&["check", "/dev/zero", "--format", format]);
        assert_exit(&output, 254);
        let text = stderr(&output);
        assert!(
            text.starts_with("/dev/zero:1: the line is longer than"),
            "{format}: {text}"
        );
    }
}

/// `--memory-limit` reaches the reader: a 64 KiB line under 1 MiB is refused before it
/// is parsed. (The reader's limit itself, on a 20 MB line in both formats, is tested in
/// `checker/tests/hostile_input.rs`.)
#[test]
fn a_line_beyond_the_memory_limit_flag_is_refused_not_read() {
    let line = format!(
        "{}{}1]}}\n",
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":["#,
        "1234567,".repeat(8 << 10)
    );
    let (_dir, path) = temp_file("big.jsonl", &line);
    let output = faultline(&["check", &path, "--memory-limit", "1"]);
    assert_exit(&output, 254);
    let text = stderr(&output);
    assert!(text.contains("big.jsonl:1: reading this line"), "{text}");
    assert!(text.contains("raise --memory-limit"), "{text}");
}

#[test]
fn an_empty_history_is_unknown_not_valid() {
    let (_dir, path) = temp_file("empty.jsonl", "");
    let output = faultline(&["check", &path]);
    assert_exit(&output, 2);
    assert!(
        stdout(&output).contains("no client operations"),
        "{}",
        stdout(&output)
    );
    let nemesis_only = concat!(
        r#"{"index":0,"time":1,"process":"nemesis","type":"invoke","f":"start-partition"}"#,
        "\n"
    );
    let (_dir, path) = temp_file("nemesis.jsonl", nemesis_only);
    assert_exit(&faultline(&["check", &path]), 2);
}

#[test]
fn integers_beyond_64_bits_are_refused() {
    let text = concat!(
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1180591620717411303424}"#,
        "\n",
        r#"{"index":1,"time":1,"process":0,"type":"ok","f":"write","value":1180591620717411303424}"#,
        "\n",
        r#"{"index":2,"time":2,"process":0,"type":"invoke","f":"read","value":null}"#,
        "\n",
        r#"{"index":3,"time":3,"process":0,"type":"ok","f":"read","value":1180591620717411303425}"#,
        "\n",
    );
    let (_dir, path) = temp_file("big-ints.jsonl", text);
    let output = faultline(&["check", &path]);
    assert_exit(&output, 254);
    let text = stderr(&output);
    assert!(
        text.contains(
            "big-ints.jsonl:1: the integer 1180591620717411303424 does not fit in 64 bits"
        ),
        "{text}"
    );
    assert!(text.contains("big-ints.jsonl:4:"), "{text}");
}

#[test]
fn several_forms_on_one_edn_line_are_all_checked() {
    // The read of 2 on the second line's second form is the one no write explains.
    let text = concat!(
        "{:process 0, :type :invoke, :f :write, :value 1} {:process 0, :type :ok, :f :write, :value 1}\n",
        "{:process 0, :type :invoke, :f :read, :value nil} {:process 0, :type :ok, :f :read, :value 2}\n",
    );
    let (_dir, path) = temp_file("h.edn", text);
    assert_exit(&faultline(&["check", &path]), 1);
}

#[test]
fn deep_edn_nesting_is_refused_not_a_crash() {
    let text = format!(
        "{{:process 0 :type :invoke :f :write :value {}}}\n",
        "[".repeat(10_000)
    );
    let (_dir, path) = temp_file("deep.edn", &text);
    let output = faultline(&["check", &path]);
    assert_exit(&output, 254);
    assert!(stderr(&output).contains("deep.edn:1: not valid EDN: nested deeper than"));
}

#[test]
fn invalid_utf8_in_edn_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.edn");
    std::fs::write(
        &path,
        b"{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :read, :value \"\xff\"}\n",
    )
    .unwrap();
    let output = faultline(&["check", &path.display().to_string()]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("bad.edn:2: not UTF-8"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_closed_stdout_keeps_the_verdict() {
    let binary = env!("CARGO_BIN_EXE_faultline");
    let mut child = Command::new(binary)
        .args(["check", "--json", &example("cas-register-invalid.jsonl")])
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn report_on_malformed_results_exits_254() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("results.json"), "{\"valid\": tru\n").unwrap();
    std::fs::write(dir.path().join("history.jsonl"), "").unwrap();
    let output = faultline(&["report", &dir.path().display().to_string()]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("results.json:2: not valid JSON"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_malformed_transaction_is_refused_with_its_line() {
    let text = concat!(
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["append","x",1]]}"#,
        "\n",
        r#"{"index":1,"time":1,"process":0,"type":"ok","f":"txn","value":[["append","x",1]]}"#,
        "\n",
        r#"{"index":2,"time":2,"process":0,"type":"invoke","f":"txn","value":[["append","x"]]}"#,
        "\n",
    );
    let (_dir, path) = temp_file("txn.jsonl", text);
    let output = faultline(&["check", &path]);
    assert_exit(&output, 254);
    assert!(
        stderr(&output).contains("txn.jsonl:3:"),
        "{}",
        stderr(&output)
    );
}
