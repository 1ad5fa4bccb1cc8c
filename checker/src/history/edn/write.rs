//! Writing an event as a Jepsen operation map, the form the importer reads back: for
//! tests and benchmarks of the EDN readers, and for anyone who wants a Faultline
//! history in Jepsen's shape.

use std::fmt::Write;

use serde_json::Value;

use crate::history::op::{Op, Process};

/// `op` as one EDN operation map: `{:index 0, :time 5, :type :invoke, :process 1, :f
/// :txn, :value [[:append 1 2]]}`. A transaction's micro-op functions become
/// keywords, as Jepsen writes them; other strings stay strings. The nemesis is
/// `:nemesis`; an operation's key, if any, makes the value a `[key value]` tuple, as
/// `jepsen.independent` writes it. Other fields are left out.
pub fn to_edn(op: &Op) -> String {
    let mut out = String::with_capacity(96);
    let _ = write!(
        out,
        "{{:index {}, :time {}, :type :{}, :process ",
        op.index,
        op.time,
        op.op_type.as_str()
    );
    match op.process {
        Process::Client(p) => {
            let _ = write!(out, "{p}");
        }
        Process::Nemesis => out.push_str(":nemesis"),
    }
    out.push_str(", :f ");
    keyword_or_string(&mut out, &op.f);
    out.push_str(", :value ");
    match &op.key {
        Some(key) => {
            out.push('[');
            value(&mut out, &key.to_json(), false);
            out.push(' ');
            value(&mut out, &op.value, false);
            out.push(']');
        }
        None => value(&mut out, &op.value, false),
    }
    out.push('}');
    out
}

/// `name` as a keyword when it is one, else as a string.
fn keyword_or_string(out: &mut String, name: &str) {
    let keyword = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "*+!-_?<>=./".contains(c));
    if keyword {
        out.push(':');
        out.push_str(name);
    } else {
        string(out, name);
    }
}

/// A string literal (JSON's escapes are EDN's).
fn string(out: &mut String, text: &str) {
    out.push_str(&Value::from(text).to_string());
}

/// `v` as EDN; `head` when it is a micro-op's function.
fn value(out: &mut String, v: &Value, head: bool) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) if head => keyword_or_string(out, s),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            // A micro-op `[f k v]` starts with its function.
            let micro_op = items.len() == 3 && items[0].is_string();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                value(out, item, micro_op && i == 0);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(out, k);
                out.push(' ');
                value(out, item, false);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::history::OpType;
    use crate::history::edn::read_edn_str;

    #[test]
    fn what_is_written_reads_back_as_it_was() {
        let mut ops = vec![
            Op::new(
                0,
                5,
                Process::Client(1),
                OpType::Invoke,
                "txn",
                json!([["append", "x", 1], ["r", 2, null]]),
            ),
            Op::new(
                1,
                9,
                Process::Nemesis,
                OpType::Info,
                "start-partition",
                json!({"n1": ["n2", "a \"b\"\n"], "t": true}),
            ),
            Op::new(
                2,
                12,
                Process::Client(1),
                OpType::Ok,
                "txn",
                json!([["append", "x", 1], ["r", 2, [1, -3]]]),
            ),
        ];
        let text: String = ops.iter().map(|op| to_edn(op) + "\n").collect();
        assert!(text.starts_with("{:index 0, :time 5, :type :invoke, :process 1, :f :txn, :value [[:append \"x\" 1] [:r 2 nil]]}"), "{text}");
        let back = read_edn_str("h.edn", &text).unwrap();
        assert_eq!(back.ops(), &ops[..]);
        // An independent operation's key goes into a tuple, and comes back as the key.
        ops = vec![
            Op::new(
                0,
                0,
                Process::Client(0),
                OpType::Invoke,
                "read",
                Value::Null,
            ),
            Op::new(1, 1, Process::Client(0), OpType::Ok, "read", json!(3)),
        ];
        for op in &mut ops {
            op.key = crate::history::Key::from_json(&json!("k"));
        }
        let text: String = ops.iter().map(|op| to_edn(op) + "\n").collect();
        assert_eq!(read_edn_str("h.edn", &text).unwrap().ops(), &ops[..]);
    }
}
