//! The history reader and the EDN importer: every input error path gives the exact
//! `FILE:LINE: message`, and Jepsen EDN histories import as the spec says.

use std::io::Cursor;
use std::path::PathBuf;

use faultline_checker::history::edn::read_edn_str;
use faultline_checker::history::{
    Format, HistoryReader, HistoryWriter, Key, MAX_REPORTED_PROBLEMS,
};
use faultline_checker::{History, InputError, OpType, Process};
use serde_json::{Value, json};

/// Reads JSONL text named `h.jsonl`.
fn jsonl(text: &str) -> Result<History, InputError> {
    HistoryReader::new("h.jsonl".to_string(), Cursor::new(text.as_bytes())).read_all()
}

/// Reads EDN text named `h.edn`.
fn edn(text: &str) -> Result<History, InputError> {
    read_edn_str("h.edn", text)
}

/// The error's lines, as printed.
fn error_lines(result: Result<History, InputError>) -> Vec<String> {
    match result {
        Ok(history) => panic!("expected an input error, read {} events", history.len()),
        Err(error) => error.to_string().lines().map(str::to_string).collect(),
    }
}

/// The one error line a history gives.
fn jsonl_error(text: &str) -> String {
    let lines = error_lines(jsonl(text));
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one problem, got {lines:#?}"
    );
    lines[0].clone()
}

fn edn_error(text: &str) -> String {
    let lines = error_lines(edn(text));
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one problem, got {lines:#?}"
    );
    lines[0].clone()
}

const INVOKE0: &str =
    r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"read","value":null}"#;
const OK1: &str = r#"{"index":1,"time":20,"process":0,"type":"ok","f":"read","value":3}"#;

// ---- JSONL: every error path ---------------------------------------------------------

#[test]
fn truncated_last_line() {
    let text = format!("{INVOKE0}\n{{\"index\":1,\"time\":20,\"proc");
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:2: not valid JSON: EOF while parsing a string at line 1 column 26 (the line is cut short: was the file truncated?)"
    );
}

#[test]
fn malformed_json_mid_file() {
    let text = format!("{INVOKE0}\n{{\"index\":1,,}}\n");
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:2: not valid JSON: key must be a string at line 1 column 12"
    );
}

#[test]
fn line_that_is_not_an_object() {
    assert_eq!(
        jsonl_error("[1,2]\n"),
        "h.jsonl:1: expected a JSON object, got an array"
    );
}

#[test]
fn missing_required_field() {
    assert_eq!(
        jsonl_error(r#"{"index":0,"time":1,"process":0,"type":"invoke"}"#),
        "h.jsonl:1: missing required field `f`"
    );
}

#[test]
fn wrong_types() {
    let cases = [
        (
            r#"{"index":"0","time":1,"process":0,"type":"invoke","f":"read"}"#,
            r#"h.jsonl:1: `index` must be an integer >= 0, got a string ("0")"#,
        ),
        (
            r#"{"index":0,"time":1.5,"process":0,"type":"invoke","f":"read"}"#,
            "h.jsonl:1: `time` must be an integer (nanoseconds), got a fractional number (1.5)",
        ),
        (
            r#"{"index":0,"time":1,"process":-1,"type":"invoke","f":"read"}"#,
            r#"h.jsonl:1: `process` must be an integer >= 0 or "nemesis", got an integer (-1)"#,
        ),
        (
            r#"{"index":0,"time":1,"process":0,"type":"done","f":"read"}"#,
            r#"h.jsonl:1: `type` must be one of "invoke", "ok", "fail", "info", got "done""#,
        ),
        (
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":7}"#,
            "h.jsonl:1: `f` must be a non-empty string, got an integer (7)",
        ),
        (
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":[1]}"#,
            "h.jsonl:1: `key` must be a string or an integer, got an array ([1])",
        ),
        (
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","node":5}"#,
            "h.jsonl:1: `node` must be a string, got an integer (5)",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(jsonl_error(line), expected, "for {line}");
    }
}

#[test]
fn duplicate_completion() {
    let text = format!(
        "{INVOKE0}\n{OK1}\n{}\n",
        r#"{"index":2,"time":30,"process":0,"type":"ok","f":"read","value":3}"#
    );
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:3: `ok` completion for process 0 without an open invocation (duplicate completion, or the invoke is missing)"
    );
}

#[test]
fn completion_without_invocation() {
    assert_eq!(
        jsonl_error(r#"{"index":0,"time":1,"process":4,"type":"fail","f":"write","value":1}"#),
        "h.jsonl:1: `fail` completion for process 4 without an open invocation (duplicate completion, or the invoke is missing)"
    );
}

#[test]
fn invoke_while_open() {
    let text = format!(
        "{INVOKE0}\n{}\n",
        r#"{"index":1,"time":20,"process":0,"type":"invoke","f":"write","value":1}"#
    );
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:2: process 0 invokes `write` while its `read` from line 1 is still open (one operation at a time per process)"
    );
}

#[test]
fn completion_must_match_invocation() {
    let text = format!(
        "{INVOKE0}\n{}\n",
        r#"{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"k","value":1}"#
    );
    let lines = error_lines(jsonl(&text));
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(
            r#"h.jsonl:2: completion `f` is "write" but the invocation on line 1 was "read"; completion `key` is "#
        ),
        "{lines:?}"
    );
    assert!(
        lines[0].ends_with("but the invocation on line 1 had no key"),
        "{lines:?}"
    );
}

#[test]
fn use_after_info() {
    let text = [
        INVOKE0,
        r#"{"index":1,"time":20,"process":0,"type":"info","f":"read","error":"timeout"}"#,
        r#"{"index":2,"time":30,"process":0,"type":"invoke","f":"read","value":null}"#,
    ]
    .join("\n");
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:3: process 0 is used again after its `info` on line 2 (a crashed process is retired; use a fresh process number)"
    );
}

#[test]
fn index_gap() {
    let text = format!(
        "{INVOKE0}\n{}\n",
        r#"{"index":2,"time":20,"process":0,"type":"ok","f":"read","value":3}"#
    );
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:2: `index` is 2, expected 1 (indices are dense from 0, one per line)"
    );
}

#[test]
fn time_going_backwards() {
    let text = format!(
        "{INVOKE0}\n{}\n",
        r#"{"index":1,"time":5,"process":0,"type":"ok","f":"read","value":3}"#
    );
    assert_eq!(
        jsonl_error(&text),
        "h.jsonl:2: `time` 5 is earlier than the previous line's 10 (time never decreases)"
    );
}

#[test]
fn nemesis_logs_only_invoke_and_info() {
    assert_eq!(
        jsonl_error(
            r#"{"index":0,"time":1,"process":"nemesis","type":"ok","f":"start-partition"}"#
        ),
        "h.jsonl:1: the nemesis logs `invoke` and `info` events, not `ok`"
    );
}

#[test]
fn one_bad_line_reports_once_and_later_lines_still_count() {
    // Line 2 is unparseable; line 3 still has the index after it, and line 4 is wrong.
    let text = [
        INVOKE0,
        r#"{"index":1,"time":"soon","process":0,"type":"ok","f":"read"}"#,
        r#"{"index":2,"time":30,"process":1,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"time":40,"process":1,"type":"invoke","f":"read","value":null}"#,
    ]
    .join("\n");
    assert_eq!(
        error_lines(jsonl(&text)),
        [
            r#"h.jsonl:2: `time` must be an integer (nanoseconds), got a string ("soon")"#,
            "h.jsonl:4: process 1 invokes `read` while its `read` from line 3 is still open (one operation at a time per process)",
        ]
    );
}

#[test]
fn problems_are_capped_with_a_count_of_the_rest() {
    let text: String = (0..MAX_REPORTED_PROBLEMS + 3)
        .map(|i| {
            format!("{{\"index\":{i},\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\"}}\n")
        })
        .collect();
    let lines = error_lines(jsonl(&text));
    assert_eq!(lines.len(), MAX_REPORTED_PROBLEMS + 1);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("... and 3 more problems")
    );
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_kept() {
    let text = format!("{INVOKE0}\n\n{OK1}\n");
    let history = jsonl(&text).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history.line_of(1), 3);
}

#[test]
fn unreadable_file_names_the_file() {
    let path = PathBuf::from("/nonexistent/faultline/h.jsonl");
    let error = History::read(&path, None).unwrap_err();
    assert!(matches!(error, InputError::Io { .. }));
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/faultline/h.jsonl: cannot read: ")
    );
}

#[test]
fn writer_round_trips_with_unknown_fields() {
    let text = format!(
        "{INVOKE0}\n{}\n",
        r#"{"index":1,"time":20,"process":0,"type":"ok","f":"read","value":3,"node":"n1","trace":{"span":7}}"#
    );
    let history = jsonl(&text).unwrap();
    let mut writer = HistoryWriter::new(Vec::new());
    for op in history.ops() {
        writer.write(op).unwrap();
    }
    let written = String::from_utf8(writer.into_inner()).unwrap();
    assert_eq!(written, text);
}

#[test]
fn format_follows_the_extension() {
    assert_eq!(
        Format::from_path(&PathBuf::from("a/history.edn")),
        Format::Edn
    );
    assert_eq!(
        Format::from_path(&PathBuf::from("a/history.EDN")),
        Format::Edn
    );
    assert_eq!(
        Format::from_path(&PathBuf::from("a/history.jsonl")),
        Format::Jsonl
    );
    assert_eq!(
        Format::from_path(&PathBuf::from("a/history")),
        Format::Jsonl
    );
}

// ---- EDN import ----------------------------------------------------------------------

#[test]
fn edn_keywords_become_strings() {
    let history = edn(concat!(
        "{:type :invoke, :f :write, :value :a, :process 0, :time 5, :index 0}\n",
        "{:type :info, :f :write, :value :a, :process 0, :time 6, :index 1, :error :timeout, :node :n1}\n",
    ))
    .unwrap();
    let ops = history.ops();
    assert_eq!(ops[0].op_type, OpType::Invoke);
    assert_eq!(ops[0].f, "write");
    assert_eq!(ops[0].value, json!("a"));
    assert_eq!(ops[1].op_type, OpType::Info);
    assert_eq!(ops[1].error.as_deref(), Some("timeout"));
    assert_eq!(ops[1].node.as_deref(), Some("n1"));
}

#[test]
fn edn_nemesis_process() {
    let history = edn(concat!(
        "{:type :info, :f :start-partition, :value :majority, :process :nemesis, :time 1, :index 0}\n",
        "{:type :info, :f :start-partition, :value [:isolated {\"n1\" #{\"n2\"}}], :process :nemesis, :time 2, :index 1}\n",
    ))
    .unwrap();
    assert!(
        history
            .ops()
            .iter()
            .all(|op| op.process == Process::Nemesis)
    );
    assert_eq!(history.ops()[1].value, json!(["isolated", {"n1": ["n2"]}]));
    assert!(history.operations().is_empty());
}

#[test]
fn edn_independent_tuples_become_key_and_value() {
    let history = edn(concat!(
        "{:type :invoke, :f :cas, :value [3 [1 2]], :process 0, :time 1, :index 0}\n",
        "{:type :info, :f :kill, :value nil, :process :nemesis, :time 2, :index 1}\n",
        "{:type :ok, :f :cas, :value [3 [1 2]], :process 0, :time 3, :index 2}\n",
        "{:type :invoke, :f :read, :value [\"x\" nil], :process 1, :time 4, :index 3}\n",
        "{:type :ok, :f :read, :value [\"x\" 2], :process 1, :time 5, :index 4}\n",
    ))
    .unwrap();
    let ops = history.ops();
    assert_eq!(ops[0].key, Some(Key::Int(3)));
    assert_eq!(ops[0].value, json!([1, 2]));
    assert_eq!(ops[1].key, None);
    assert_eq!(ops[1].value, Value::Null);
    assert_eq!(ops[4].key, Some(Key::Str("x".into())));
    assert_eq!(ops[4].value, json!(2));
}

#[test]
fn edn_plain_register_values_are_not_tuples() {
    // Reads are invoked with nil, so a cas's [old new] is not mistaken for [k v].
    let history = edn(concat!(
        "{:type :invoke, :f :cas, :value [1 2], :process 0}\n",
        "{:type :ok, :f :cas, :value [1 2], :process 0}\n",
        "{:type :invoke, :f :read, :value nil, :process 0}\n",
    ))
    .unwrap();
    assert_eq!(history.ops()[0].key, None);
    assert_eq!(history.ops()[0].value, json!([1, 2]));
}

#[test]
fn edn_missing_time_and_index_follow_file_order() {
    let history = edn(concat!(
        "[{:process 0, :type :invoke, :f :write, :value 1}\n",
        " {:process 0, :type :ok, :f :write, :value 1}\n",
        " {:process 1, :type :invoke, :f :read, :value nil}]\n",
    ))
    .unwrap();
    let indices: Vec<(u64, i64)> = history.ops().iter().map(|op| (op.index, op.time)).collect();
    assert_eq!(indices, [(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn edn_tagged_records_are_read_as_maps() {
    let history = edn(concat!(
        "#jepsen.history.Op{:index 0, :time 7, :type :invoke, :process 0, :f :read, :value nil}\n",
        "#jepsen.history.Op{:index 1, :time 9, :type :ok, :process 0, :f :read, :value 4}\n",
    ))
    .unwrap();
    assert_eq!(history.ops()[1].value, json!(4));
    assert_eq!(history.ops()[1].time, 9);
}

#[test]
fn edn_map_over_several_lines() {
    let history = edn(concat!(
        "{:type :invoke, :f :read,\n",
        " :value nil, :process 0}\n",
        "{:type :ok, :f :read, :value 1, :process 0}\n",
    ))
    .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history.line_of(1), 3);
}

#[test]
fn edn_bad_syntax() {
    assert_eq!(
        edn_error("{:type :invoke, :f :read, :process 0, :value nil}\n{:type :ok :f}\n"),
        "h.edn:2: not valid EDN: the map's key `f` has no value (a map holds key-value pairs)"
    );
}

#[test]
fn edn_bad_syntax_inside_a_vector() {
    assert_eq!(
        edn_error("[{:type :invoke, :f :read, :process 0, :value nil}\n {:type :ok :f}]\n"),
        "h.edn:2: not valid EDN: the map's key `f` has no value (a map holds key-value pairs)"
    );
}

#[test]
fn edn_truncated_map() {
    assert_eq!(
        edn_error("{:type :invoke, :f :read, :process 0, :value nil}\n{:type :ok, :f :read\n"),
        "h.edn:2: not valid EDN: the operation starting on this line never closes: `}` expected (was the file truncated?)"
    );
}

#[test]
fn edn_element_that_is_not_a_map() {
    assert_eq!(
        edn_error("[{:type :invoke, :f :read, :process 0, :value nil} 42]\n"),
        "h.edn:1: expected an operation map, got an integer (42)"
    );
}

#[test]
fn edn_rules_are_checked_like_jsonl() {
    assert_eq!(
        edn_error(concat!(
            "{:type :invoke, :f :read, :process 0, :value nil}\n",
            "; a comment\n",
            "{:type :ok, :f :read, :process 1, :value nil}\n",
        )),
        "h.edn:3: `ok` completion for process 1 without an open invocation (duplicate completion, or the invoke is missing)"
    );
}
