//! Hostile input: every reader ends in a verdict or a `FILE:LINE:` error, never a panic,
//! an abort, unbounded memory or a silently shorter history.

use std::io::{BufReader, Cursor, Read};

use faultline_checker::history::edn::read_edn;
use faultline_checker::history::{HistoryReader, ReadLimits};
use faultline_checker::{History, InputError};
use proptest::prelude::*;

fn limits(max_line_bytes: usize, memory_bytes: usize) -> ReadLimits {
    ReadLimits {
        max_line_bytes,
        memory_bytes,
    }
}

fn jsonl_with(text: &[u8], limits: &ReadLimits) -> Result<History, InputError> {
    HistoryReader::with_limits("h.jsonl".into(), Cursor::new(text.to_vec()), limits).read_all()
}

fn edn_with(text: &[u8], limits: &ReadLimits) -> Result<History, InputError> {
    read_edn("h.edn", Cursor::new(text.to_vec()), limits)
}

/// `faultline check /dev/zero`: an endless line of NUL bytes.
#[test]
fn an_endless_line_stops_at_the_line_limit() {
    let zeros = || BufReader::new(std::io::repeat(0).take(u64::MAX));
    let small = limits(1 << 20, 1 << 30);
    let error = HistoryReader::with_limits("/dev/zero".into(), zeros(), &small)
        .read_all()
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("/dev/zero:1: the line is longer than 1048576 bytes"),
        "{error}"
    );
    let error = read_edn("/dev/zero", zeros(), &small)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("/dev/zero:1: the line is longer"),
        "{error}"
    );
}

/// A 20 MB line of integers under a 50 MiB limit is refused before it is parsed.
#[test]
fn a_huge_line_is_refused_within_the_memory_limit() {
    let mut line =
        String::from(r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":["#);
    while line.len() < 20 << 20 {
        line.push_str("1234567,");
    }
    line.push_str("1]}\n");
    let error = jsonl_with(line.as_bytes(), &limits(64 << 20, 50 << 20))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("h.jsonl:1: reading this line"), "{error}");
    assert!(error.contains("memory limit of 50 MiB"), "{error}");
    let edn_line = line.replace('"', "").replace([':', ','], " ");
    let error = edn_with(
        format!("{{{}", &edn_line[1..]).as_bytes(),
        &limits(64 << 20, 50 << 20),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("memory limit of 50 MiB"), "{error}");
}

/// Many small lines add up: the history as a whole is bounded too.
#[test]
fn a_history_larger_than_the_limit_is_refused_at_the_line_that_passes_it() {
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "{{\"index\":{},\"time\":{},\"process\":{},\"type\":\"invoke\",\"f\":\"write\",\"value\":{i}}}\n",
            i, i, i
        ));
    }
    let error = jsonl_with(text.as_bytes(), &limits(1 << 20, 2 << 20))
        .unwrap_err()
        .to_string();
    let line: usize = error
        .strip_prefix("h.jsonl:")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line in {error}"));
    assert!(
        line > 1_000 && line < 20_000,
        "refused at line {line}: {error}"
    );
    assert!(jsonl_with(text.as_bytes(), &limits(1 << 20, 1 << 30)).is_ok());
}

#[test]
fn deep_nesting_is_refused_in_both_formats() {
    let deep_edn = format!(
        "{{:process 0 :type :invoke :f :w :value {}}}",
        "[".repeat(10_000)
    );
    let error = edn_with(deep_edn.as_bytes(), &ReadLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("h.edn:1: not valid EDN: nested deeper than"),
        "{error}"
    );
    let deep_json = format!(
        r#"{{"index":0,"time":0,"process":0,"type":"invoke","f":"w","value":{}}}"#,
        "[".repeat(10_000)
    );
    let error = jsonl_with(deep_json.as_bytes(), &ReadLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("h.jsonl:1: not valid JSON: recursion limit"),
        "{error}"
    );
}

/// A write of 2^70 and a read of 2^70+1 must not compare equal: such integers are
/// refused, and the message does not call them fractional.
#[test]
fn integers_beyond_64_bits_are_refused_in_jsonl() {
    let text = concat!(
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1180591620717411303424}"#,
        "\n",
        r#"{"index":1180591620717411303424,"time":1,"process":0,"type":"ok","f":"write","value":1}"#,
        "\n"
    );
    let error = jsonl_with(text.as_bytes(), &ReadLimits::default())
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = error.lines().collect();
    assert!(
        lines[0]
            .starts_with("h.jsonl:1: the integer 1180591620717411303424 does not fit in 64 bits"),
        "{error}"
    );
    assert!(lines[1].starts_with("h.jsonl:2: the integer"), "{error}");
    assert!(!error.contains("fractional"), "{error}");
}

#[test]
fn invalid_utf8_in_jsonl_names_the_line_and_column() {
    let text = b"{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"w\",\"value\":\"\xfe\"}\n";
    let error = jsonl_with(text, &ReadLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("h.jsonl:1: not UTF-8 (the byte at column 66"),
        "{error}"
    );
}

/// Counts the client and nemesis events a well-formed generated history has.
fn generated_edn(ops: &[(u8, u8)]) -> (String, usize) {
    let mut text = String::new();
    for (process, value) in ops {
        text.push_str(&format!(
            "{{:process {process} :type :invoke :f :write :value {value}}} {{:process {process} :type :ok :f :write :value {value}}}\n"
        ));
    }
    (text, ops.len() * 2)
}

proptest! {
    /// Arbitrary bytes: an error or a history, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let small = limits(256, 1 << 20);
        let _ = jsonl_with(&bytes, &small);
        let _ = edn_with(&bytes, &small);
    }

    /// EDN made of the characters that matter to the reader: never a panic.
    #[test]
    fn edn_punctuation_never_panics(text in "[\\[\\]{}()#_^:;\"\\\\ \n a1-]{0,200}") {
        let _ = edn_with(text.as_bytes(), &limits(1 << 16, 1 << 24));
    }

    /// A well-formed history is read completely, however its forms share lines; and
    /// cutting it anywhere gives an error or a history whose events are a prefix, never
    /// a silently different one.
    #[test]
    fn every_event_is_read_or_the_file_is_refused(
        ops in proptest::collection::vec((0u8..4, any::<u8>()), 1..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let (text, count) = generated_edn(&ops);
        let history = edn_with(text.as_bytes(), &ReadLimits::default()).unwrap();
        prop_assert_eq!(history.len(), count);
        let at = cut.index(text.len());
        if let Ok(prefix) = edn_with(&text.as_bytes()[..at], &ReadLimits::default()) {
            // A cut between forms: the events read are exactly the forms before it.
            let whole_forms = text[..at].matches('}').count();
            prop_assert_eq!(prefix.len(), whole_forms);
            for (a, b) in prefix.ops().iter().zip(history.ops()) {
                prop_assert_eq!(a, b);
            }
        }
    }
}
