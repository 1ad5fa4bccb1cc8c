//! `faultline suite` and `faultline serve` end to end: real runs in namespaces (root),
//! the store's index, the JUnit report, exit codes, and the HTTP server.

mod common;
use common::{ensure_kv_binary, text};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// One suite at a time: each run uses the whole (2-core) machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Writes `text` as a suite file in `dir` and runs `faultline suite` on it.
fn suite(dir: &Path, text: &str) -> (Output, PathBuf) {
    ensure_kv_binary();
    let file = dir.join("suite.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("suite")
        .arg(&file)
        .arg("--store")
        .arg(dir.join("store"))
        .output()
        .unwrap();
    (out, file)
}

/// Parses the whole document: panics unless it is well-formed XML.
fn parse_xml(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0i32;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced XML: {xml}");
}

const SHORT: &str = "nodes = 3\ntime-limit = 3\nrecovery-time = 1\nnemesis = [\"kill\"]\n\
                     nemesis-interval = 1\n";

#[test]
fn a_suite_meets_its_expectations_and_writes_index_and_junit() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let text_file = format!(
        "{SHORT}\n[[run]]\nname = \"plain\"\n\n[[run]]\nname = \"stale-read-caught\"\n\
         bug = [\"stale-read\"]\nnemesis = [\"partition\"]\nrate = 500\ntime-limit = 8\n\
         seed = 2\nexpect = \"invalid\"\n"
    );
    let (out, _) = suite(dir.path(), &text_file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = dir.path().join("store");
    let index = std::fs::read_to_string(store.join("index.html")).unwrap();
    assert!(index.contains("plain"), "{index}");
    assert!(index.contains("stale-read-caught"), "{index}");
    assert!(index.contains("/report.html"), "{index}");
    assert!(index.contains("/results.json"), "{index}");
    let junit = std::fs::read_to_string(store.join("junit.xml")).unwrap();
    parse_xml(&junit);
    assert!(
        junit.contains("tests=\"2\" failures=\"0\" errors=\"0\""),
        "{junit}"
    );
    assert!(junit.contains("<testcase name=\"plain\""), "{junit}");

    // The store can be served: the index, a run's results, nothing outside.
    serve_the_store(&store);
}

/// Kills the server (by its own id) however the test ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_the_store(store: &Path) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--port", "0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .spawn()
        .map(Server)
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let request = |method: &str, path: &str| -> (u16, String) {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    };
    let get = |path: &str| request("GET", path);
    let (status, index) = get("/");
    assert_eq!(status, 200, "{index}");
    assert!(
        index
            .to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{index}"
    );
    assert!(index.contains("stale-read-caught"), "{index}");
    let results = format!("/plain/{}/results.json", latest(&store.join("plain")));
    let (status, json) = get(&results);
    assert_eq!(status, 200, "{json}");
    assert!(
        json.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{json}"
    );
    assert!(json.contains("\"valid\""), "{json}");
    for bad in [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/plain/../../etc/passwd",
    ] {
        let (status, body) = get(bad);
        assert!(status == 404 || status == 400, "{bad}: {body}");
        assert!(!body.contains("root:"), "{bad}: {body}");
    }
    let (status, body) = request("POST", "/index.html");
    assert_eq!(status, 405, "read-only: {body}");
    drop(server);
}

/// The folder name `NAME/latest` points at.
fn latest(test: &Path) -> String {
    std::fs::read_link(test.join("latest"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_unmet_expectation_fails_the_suite_with_a_junit_failure() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = suite(
        dir.path(),
        &format!("{SHORT}\n[[run]]\nname = \"wrongly-expected\"\nexpect = \"invalid\"\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let junit = std::fs::read_to_string(dir.path().join("store/junit.xml")).unwrap();
    parse_xml(&junit);
    assert!(
        junit.contains("tests=\"1\" failures=\"1\" errors=\"0\""),
        "{junit}"
    );
    assert!(
        junit.contains("<failure message=\"expected invalid, got valid"),
        "{junit}"
    );
    let index = std::fs::read_to_string(dir.path().join("store/index.html")).unwrap();
    assert!(index.contains("wrongly-expected"), "{index}");
}

#[test]
fn a_bad_key_exits_254_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, file) = suite(
        dir.path(),
        "time-limit = 3\n\n[[run]]\nname = \"a\"\ntime-limt = 4\n",
    );
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("time-limt"), "{stderr}");
    assert!(!dir.path().join("store").exists(), "nothing ran");
}

#[test]
fn shards_of_a_suite_hold_every_run_once() {
    let nightly = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/nightly.toml");
    let listed = |extra: &[&str]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("suite")
            .arg(&nightly)
            .arg("--dry-run")
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        // `  1. LABEL (line N): …`: the labels.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(". ")?.1.split(" (line ").next())
            .map(str::to_string)
            .collect()
    };
    let mut all = listed(&[]);
    let mut shards: Vec<String> = (1..=4)
        .flat_map(|k| listed(&["--shard", &format!("{k}/4")]))
        .collect();
    assert!(all.len() > 100, "{}", all.len());
    all.sort();
    shards.sort();
    assert_eq!(all, shards);
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["suite", "x.toml", "--shard", "5/4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("expected K/N"), "{}", text(&out));
}
