//! End-to-end tests of `faultline check --checker elle`: exit codes (0 valid, 1 an
//! anomaly, 254 a malformed transaction naming FILE:LINE), the consistency model,
//! the workload flag, and the drawings written by `--out`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap()
}

fn fixture(name: &str) -> String {
    format!("checker/tests/fixtures/elle/{name}")
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn valid_list_append_exits_0() {
    let output = faultline(&[
        "check",
        &fixture("list-append-valid.jsonl"),
        "--checker",
        "elle",
        "--workload",
        "list-append",
        "--json",
    ]);
    assert_exit(&output, 0);
    let results = json(&output);
    assert_eq!(results["valid"], Value::Bool(true));
    assert_eq!(
        results["checkers"]["elle"]["anomaly_types"],
        serde_json::json!([])
    );
}

#[test]
fn an_anomaly_exits_1_with_the_spec_fields() {
    let output = faultline(&[
        "check",
        &fixture("list-append-g-single.jsonl"),
        "--checker",
        "elle",
        "--workload",
        "list-append",
        "--consistency-model",
        "serializable",
        "--json",
    ]);
    assert_exit(&output, 1);
    let elle = &json(&output)["checkers"]["elle"];
    assert_eq!(elle["valid"], Value::Bool(false));
    assert_eq!(elle["anomaly_types"], serde_json::json!(["G-single"]));
    assert_eq!(elle["not"], serde_json::json!(["consistent-view"]));
    assert!(
        elle["also_not"]
            .as_array()
            .unwrap()
            .contains(&Value::from("snapshot-isolation"))
    );
    let g = &elle["anomalies"]["G-single"][0];
    assert!(
        g["explanation"]
            .as_str()
            .unwrap()
            .contains("a contradiction!")
    );
    assert_eq!(g["steps"].as_array().unwrap().len(), 2);
}

#[test]
fn a_weaker_model_allows_it() {
    let output = faultline(&[
        "check",
        &fixture("list-append-g-single.jsonl"),
        "--checker",
        "elle",
        "--consistency-model",
        "read-committed",
    ]);
    assert_exit(&output, 0);
    let output = faultline(&[
        "check",
        &fixture("list-append-g2-item.jsonl"),
        "--consistency-model",
        "snapshot-isolation",
    ]);
    assert_exit(&output, 0);
    let output = faultline(&[
        "check",
        &fixture("list-append-g2-item.jsonl"),
        "--consistency-model",
        "repeatable-read",
    ]);
    assert_exit(&output, 1);
}

#[test]
fn rw_register_workload() {
    let output = faultline(&[
        "check",
        &fixture("rw-register-g1c.jsonl"),
        "--checker",
        "elle",
        "--workload",
        "rw-register",
    ]);
    assert_exit(&output, 1);
    let output = faultline(&[
        "check",
        &fixture("rw-register-valid.jsonl"),
        "--checker",
        "elle",
        "--workload",
        "rw-register",
    ]);
    assert_exit(&output, 0);
}

#[test]
fn malformed_transaction_exits_254_naming_the_line() {
    let path = fixture("list-append-malformed.jsonl");
    let output = faultline(&[
        "check",
        &path,
        "--checker",
        "elle",
        "--workload",
        "list-append",
    ]);
    assert_exit(&output, 254);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{path}:4:")), "{stderr}");
    // A value appended twice is malformed too.
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("dup.jsonl");
    fs::write(
        &file,
        concat!(
            "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"index\":1,\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
            "{\"index\":2,\"time\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",\"x\",1]]}\n",
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let output = faultline(&[
        "check",
        &file,
        "--checker",
        "elle",
        "--workload",
        "list-append",
    ]);
    assert_exit(&output, 254);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{file}:3:")), "{stderr}");
}

#[test]
fn out_writes_dot_and_svg_per_cycle() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out");
    let output = faultline(&[
        "check",
        &fixture("list-append-g2-item.jsonl"),
        "--checker",
        "elle",
        "--out",
        &out.display().to_string(),
    ]);
    assert_exit(&output, 1);
    let dot = fs::read_to_string(out.join("elle/G2-item-0.dot")).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    let svg = fs::read_to_string(out.join("elle/G2-item-0.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("T2"));
    let results: Value =
        serde_json::from_str(&fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], Value::Bool(false));
}

/// `faultline check` reads a list-append history compactly unless `--report` asks for
/// the whole history (see `check/choose.rs`, `compact_elle`); both ways must give the
/// same results, drawings and exit code.
#[test]
fn the_compact_and_the_general_path_answer_alike() {
    use faultline_checker::elle::generate::{GenerateOptions, Plant, generate};
    use faultline_checker::history::HistoryWriter;

    let dir = TempDir::new().unwrap();
    let generated = dir.path().join("planted.jsonl");
    let mut writer = HistoryWriter::new(fs::File::create(&generated).unwrap());
    let options = GenerateOptions {
        seed: 42,
        txns: 2000,
        plant: Plant::ALL.to_vec(),
        ..GenerateOptions::default()
    };
    for op in generate(&options) {
        writer.write(&op).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    let mut files = vec![
        fixture("list-append-valid.jsonl"),
        fixture("list-append-g-single.jsonl"),
        fixture("list-append-g1a.jsonl"),
        fixture("list-append-g2-item.jsonl"),
        fixture("list-append-malformed.jsonl"),
        generated.display().to_string(),
    ];
    // The same histories as Jepsen's EDN, which the compact path reads too.
    for (i, file) in files.clone().iter().enumerate() {
        let Ok(history) = faultline_checker::History::read_jsonl(&workspace().join(file)) else {
            continue;
        };
        let edn: String = history
            .ops()
            .iter()
            .map(|op| faultline_checker::history::edn::to_edn(op) + "\n")
            .collect();
        let path = dir.path().join(format!("history-{i}.edn"));
        fs::write(&path, edn).unwrap();
        files.push(path.display().to_string());
    }
    assert_eq!(files.len(), 12);
    for (i, file) in files.iter().enumerate() {
        for model in ["strict-serializable", "read-committed"] {
            let compact_dir = dir.path().join(format!("compact-{i}-{model}"));
            let general_dir = dir.path().join(format!("general-{i}-{model}"));
            let run = |flag: &str, out: &Path| {
                let out = out.display().to_string();
                faultline(&[
                    "check",
                    file,
                    "--consistency-model",
                    model,
                    flag,
                    &out,
                    "--json",
                ])
            };
            let compact = run("--out", &compact_dir);
            let general = run("--report", &general_dir);
            assert_eq!(compact.status.code(), general.status.code(), "{file}");
            assert_eq!(
                String::from_utf8_lossy(&compact.stdout),
                String::from_utf8_lossy(&general.stdout),
                "{file}"
            );
            assert_eq!(
                String::from_utf8_lossy(&compact.stderr),
                String::from_utf8_lossy(&general.stderr),
                "{file}"
            );
            let drawings = |d: &Path| -> Vec<(String, String)> {
                let mut files: Vec<(String, String)> = fs::read_dir(d.join("elle"))
                    .map(|entries| {
                        entries
                            .map(|e| {
                                let path = e.unwrap().path();
                                let name = path.file_name().unwrap().to_string_lossy().into();
                                (name, fs::read_to_string(&path).unwrap())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                files.sort();
                files
            };
            assert_eq!(drawings(&compact_dir), drawings(&general_dir), "{file}");
        }
    }
}

/// `--jobs` sizes the threads, never the answer; 0 is refused as a bad argument.
#[test]
fn jobs_change_nothing_but_the_threads() {
    let file = fixture("list-append-g-single.jsonl");
    let with = |jobs: &[&str]| {
        let mut args = vec!["check", &file, "--json"];
        args.extend(jobs);
        faultline(&args)
    };
    let (one, all) = (with(&["--jobs", "1"]), with(&[]));
    assert_exit(&one, 1);
    assert_eq!(one.stdout, all.stdout);
    assert_exit(&with(&["--jobs", "0"]), 254);
}

/// A Jepsen EDN list-append history goes the compact way too: it is checked within a
/// memory limit that the general importer, one `Value` per event, would exceed (and
/// does, when `--report` asks for the whole history).
#[test]
fn an_edn_history_is_read_compactly() {
    use faultline_checker::elle::generate::{GenerateOptions, Plant, generate};
    use faultline_checker::history::edn::to_edn;

    let dir = TempDir::new().unwrap();
    let path = dir.path().join("history.edn");
    let options = GenerateOptions {
        seed: 7,
        txns: 10_000,
        plant: vec![Plant::G1c],
        ..GenerateOptions::default()
    };
    let text: String = generate(&options)
        .iter()
        .map(|op| to_edn(op) + "\n")
        .collect();
    fs::write(&path, text).unwrap();
    let file = path.display().to_string();
    let compact = faultline(&["check", &file, "--memory-limit", "8", "--json"]);
    assert_exit(&compact, 1);
    let found = json(&compact)["checkers"]["elle"]["anomaly_types"].to_string();
    assert!(found.contains("G1c"), "{found}");
    let report = dir.path().join("report").display().to_string();
    let general = faultline(&["check", &file, "--memory-limit", "8", "--report", &report]);
    assert_exit(&general, 254);
    let stderr = String::from_utf8_lossy(&general.stderr);
    assert!(
        stderr.contains("history.edn:") && stderr.contains("memory limit of 8 MiB"),
        "{stderr}"
    );
}

/// On a terminal, `faultline check` shows what it is doing (a bar of the bytes read,
/// then the check and its time) on stderr and clears the line before the verdict;
/// through a pipe it shows nothing. The terminal is `script`'s (util-linux, in every
/// Debian).
#[test]
fn a_terminal_sees_the_progress_line() {
    use faultline_checker::elle::generate::{GenerateOptions, generate_each};
    use faultline_checker::history::HistoryWriter;

    let dir = TempDir::new().unwrap();
    let path = dir.path().join("big.jsonl");
    let file = fs::File::create(&path).unwrap();
    let mut writer = HistoryWriter::new(std::io::BufWriter::new(file));
    let options = GenerateOptions {
        seed: 3,
        txns: 300_000,
        ..GenerateOptions::default()
    };
    generate_each(&options, &mut |op| writer.write(&op).unwrap());
    writer.flush().unwrap();
    drop(writer);
    let command = format!(
        "{} check {}",
        env!("CARGO_BIN_EXE_faultline"),
        path.display()
    );
    let shown = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("`script` (util-linux) runs the check on a terminal");
    let screen = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{screen}");
    assert!(
        screen.contains("reading [") && screen.contains("MiB"),
        "{screen}"
    );
    assert!(
        screen.contains("checking 300,000 transactions with elle"),
        "{screen}"
    );
    // The line is cleared (ESC [2K) before the verdict is printed.
    let verdict = screen.find(": valid").expect("the verdict");
    let cleared = screen.rfind("\u{1b}[2K").expect("the line cleared");
    assert!(cleared < verdict, "{screen}");
    let piped = faultline(&["check", &path.display().to_string()]);
    assert_exit(&piped, 0);
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
}
