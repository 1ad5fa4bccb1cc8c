//! EDN histories in the shapes Jepsen, Knossos and Elle write (written here after their
//! published files), read with the meaning their tools give them.

use faultline_checker::history::edn::read_edn_str;
use faultline_checker::{History, OpType, Process};
use serde_json::json;

fn edn(text: &str) -> History {
    match read_edn_str("h.edn", text) {
        Ok(history) => history,
        Err(error) => panic!("refused:\n{error}"),
    }
}

fn edn_error(text: &str) -> String {
    match read_edn_str("h.edn", text) {
        Ok(history) => panic!("expected an error, read {} events", history.len()),
        Err(error) => error.to_string(),
    }
}

/// A Jepsen store's `history.edn`: one map per line, `:time` from several threads'
/// clocks (it steps back), nemesis `:info` pairs with map values, `:error` vectors.
#[test]
fn a_jepsen_store_history() {
    let history = edn(concat!(
        "{:index 0, :time 10538, :type :invoke, :process 0, :f :write, :value 3}\n",
        "{:index 1, :time 10411, :type :invoke, :process 1, :f :read, :value nil}\n",
        "{:index 2, :time 2891263, :type :ok, :process 0, :f :write, :value 3}\n",
        "{:index 3, :time 2891000, :type :info, :process :nemesis, :f :start-partition, :value nil}\n",
        "{:index 4, :time 3000000, :type :info, :process :nemesis, :f :start-partition, :value {\"n1\" #{\"n2\" \"n3\"}}}\n",
        "{:index 5, :time 5000000, :type :info, :process 1, :f :read, :value nil, :error [:timeout \"after 5s\"]}\n",
        "{:index 6, :time 5000001, :type :invoke, :process 6, :f :cas, :value [3 4]}\n",
        "{:index 7, :time 5000002, :type :fail, :process 6, :f :cas, :value [3 4], :error :cas-failed}\n",
    ));
    let ops = history.ops();
    assert_eq!(ops.len(), 8);
    assert_eq!(ops[1].time, 10411, "time is kept as written, stepping back");
    assert_eq!(ops[3].process, Process::Nemesis);
    assert_eq!(ops[4].value, json!({"n1": ["n2", "n3"]}));
    assert_eq!(ops[5].error.as_deref(), Some(r#"["timeout","after 5s"]"#));
    assert_eq!(ops[7].error.as_deref(), Some("cas-failed"));
    assert_eq!(ops[7].op_type, OpType::Fail);
}

/// Knossos's data files: a comment, then one vector of maps, each over several lines,
/// with no `:index`.
#[test]
fn a_knossos_vector_with_a_comment_and_multi_line_maps() {
    let history = edn(concat!(
        "; A multi-register with x=0 and y=0\n",
        "[{:type :invoke,\n",
        " :f :txn,\n",
        " :value [[:read :x nil]],\n",
        " :process 3,\n",
        " :time 7686455705}\n",
        "{:type :invoke, :f :txn, :value [[:write :y 2]], :process 4, :time 7686306180}\n",
        "{:type :ok, :f :txn, :value [[:read :x 0]], :process 3, :time 7717922112}\n",
        "{:type :ok, :f :txn, :value [[:write :y 2]], :process 4, :time 7745089410}]\n",
    ));
    assert_eq!(history.len(), 4);
    assert_eq!(
        history.line_of(0),
        2,
        "each element keeps the line it starts on"
    );
    assert_eq!(history.line_of(1), 7);
    assert_eq!(history.ops()[2].value, json!([["read", "x", 0]]));
    assert_eq!(history.ops()[1].time, 7686306180);
}

/// Elle's hand-written histories: no `:f`, no `:process`, no `:time`.
#[test]
fn an_elle_history_without_f_process_or_time() {
    let history = edn(concat!(
        "{:index 0 :type :invoke  :value [[:append 253 1] [:append 253 3]]}\n",
        "{:index 1 :type :ok      :value [[:append 253 1] [:append 253 3]]}\n",
        "{:index 2 :type :invoke, :value [[:append 255 8] [:r 253 nil]]}\n",
        "{:index 3 :type :ok,     :value [[:append 255 8] [:r 253 [1 3]]]}\n",
    ));
    let ops = history.ops();
    assert!(ops.iter().all(|op| op.f == "txn"));
    assert!(ops.iter().all(|op| op.process == Process::Client(0)));
    assert_eq!(history.operations().len(), 2);
}

/// Elle's `si-without-g-single.edn`: comments between lines, sparse `:index` from 10,
/// every `:time` 0.
#[test]
fn sparse_indices_and_comments() {
    let history = edn(concat!(
        "; T1 ww T3 on 9\n",
        "\n",
        "; T1: read by T4\n",
        "{:index 10, :time 0, :type :invoke, :process 2, :f :txn, :value [[:append 9 2]]}\n",
        "{:index 11, :time 0, :type :ok, :process 2, :f :txn, :value [[:append 9 2]]}\n",
        "; T2: Does not see T1's append to 9\n",
        "{:index 20, :time 0, :type :invoke, :process 4, :f :txn, :value [[:append 8 1] [:r 9 nil]]}\n",
        "{:index 21, :time 0, :type :ok, :process 4, :f :txn, :value [[:append 8 1] [:r 9 nil]]}\n",
    ));
    let indices: Vec<u64> = history.ops().iter().map(|op| op.index).collect();
    assert_eq!(indices, vec![0, 1, 2, 3]);
    assert_eq!(history.ops()[2].extra["jepsen_index"], json!(20));
    assert_eq!(history.line_of(2), 7);
}

/// elle-cli's histories: `:index` from 1, no `:f`, processes interleaved.
#[test]
fn indices_from_one_and_interleaved_processes() {
    let history = edn(concat!(
        "{:index 1, :type :invoke, :process 2, :value [[ :append 4 2] [ :append 5 5] ]}\n",
        "{:index 2, :type :invoke, :process 0, :value [[ :r 2 nil] [ :append 4 0] ]}\n",
        "{:index 3, :type :ok, :process 2, :value [[ :append 4 2] [ :append 5 5] ]}\n",
        "{:index 4, :type :ok, :process 0, :value [[ :r 2 [ ]] [ :append 4 0] ]}\n",
    ));
    assert_eq!(
        history.ops()[3].value,
        json!([["r", 2, []], ["append", 4, 0]])
    );
    assert_eq!(history.ops()[0].extra["jepsen_index"], json!(1));
}

/// Jepsen's `jepsen.history.Op` records, as newer Jepsen prints them.
#[test]
fn tagged_op_records() {
    let history = edn(concat!(
        "#jepsen.history.Op{:index 0, :time 1, :type :invoke, :process 0, :f :read, :value nil}\n",
        "#jepsen.history.Op{:index 1, :time 2, :type :ok, :process 0, :f :read, :value 1}\n",
    ));
    assert_eq!(history.ops()[1].value, json!(1));
}

/// A process that Knossos's hand-written histories reuse after `:info` gets a fresh
/// number, so the crashed operation stays open, as in Jepsen.
#[test]
fn a_process_reused_after_info() {
    let history = edn(concat!(
        "{:process 0, :type :invoke, :f :write, :value 1}\n",
        "{:process 0, :type :info, :f :write, :value 1}\n",
        "{:process 0, :type :invoke, :f :read, :value nil}\n",
        "{:process 0, :type :ok, :f :read, :value 1}\n",
    ));
    assert_eq!(history.ops()[2].process, Process::Client(1));
    assert_eq!(history.ops()[2].extra["jepsen_process"], json!(0));
}

/// Several forms on one line are all read; one that is not a map is refused.
#[test]
fn several_forms_on_one_line() {
    let history = edn(concat!(
        "{:process 0, :type :invoke, :f :write, :value 1} {:process 0, :type :ok, :f :write, :value 1}\n",
        "{:process 0, :type :invoke, :f :read, :value nil} {:process 0, :type :ok, :f :read, :value 2}\n",
    ));
    assert_eq!(history.len(), 4, "nothing after the first form is dropped");
    assert_eq!(history.ops()[3].value, json!(2));
    assert_eq!(
        edn_error("{:process 0, :type :invoke, :f :read} 7\n"),
        "h.edn:1: expected an operation map, got an integer (7)"
    );
}

#[test]
fn junk_after_a_form_is_refused_with_its_line() {
    let error = edn_error(concat!(
        "{:process 0, :type :invoke, :f :write, :value 1}\n",
        "{:process 0, :type :ok, :f :write, :value 1}}\n",
    ));
    assert_eq!(error, "h.edn:2: not valid EDN: `}` closes nothing");
    let error = edn_error("[{:process 0, :type :invoke, :f :read}]\n{:process 0}\n");
    assert!(
        error.starts_with("h.edn:2: not valid EDN: more after the vector"),
        "{error}"
    );
}

#[test]
fn an_op_without_f_that_is_not_a_transaction_is_refused() {
    let error = edn_error("{:process 0, :type :invoke, :value 3}\n");
    assert!(error.starts_with("h.edn:1: missing `:f`"), "{error}");
}

#[test]
fn integers_beyond_64_bits_are_refused_not_rounded() {
    let error =
        edn_error("{:process 0, :type :invoke, :f :write, :value 1180591620717411303424}\n");
    assert!(
        error.starts_with(
            "h.edn:1: not valid EDN: the integer 1180591620717411303424 does not fit in 64 bits"
        ),
        "{error}"
    );
}

#[test]
fn invalid_utf8_names_its_line() {
    let bytes = b"{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :read, :value \"\xff\"}\n";
    let dir = std::env::temp_dir().join(format!("faultline-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.edn");
    std::fs::write(&path, bytes).unwrap();
    let error = History::read(&path, None).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(error.contains("h.edn:2: not UTF-8"), "{error}");
}
