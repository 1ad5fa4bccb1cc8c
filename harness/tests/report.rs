//! `report.html` end to end: from a real run (rendered by headless Chromium, with no
//! console errors), from `faultline check --report`, escaping of history values, and
//! `faultline report` on a directory that is not a run. Needs root (the run) and the
//! Debian package `chromium` (CI installs both).

mod common;
use common::{ensure_kv_binary, text};

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap()
}

/// What headless Chromium made of a page: the DOM it built, and its log.
struct Rendered {
    dom: String,
    log: String,
}

/// Loads `page` in headless Chromium, killed after 30 s.
fn chromium(page: &Path) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("chromium is needed (Debian package `chromium`; .ci/run installs it)");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!("chromium did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rendered = Rendered {
        dom: out.join().unwrap(),
        log: err.join().unwrap(),
    };
    assert!(status.success(), "chromium failed: {}", rendered.log);
    rendered
}

/// No console message (an error, an uncaught exception) while loading the page.
fn assert_no_console_errors(rendered: &Rendered) {
    for line in rendered.log.lines() {
        assert!(
            !line.contains("CONSOLE") && !line.contains("Uncaught"),
            "console error: {line}\n{}",
            rendered.log
        );
    }
}

#[test]
fn a_real_run_has_a_report_that_chromium_renders() {
    ensure_kv_binary();
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let output = faultline(&[
        "run",
        "--time-limit",
        "4",
        "--nodes",
        "3",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1",
        "--recovery-time",
        "1",
        "--store",
        store_arg,
    ]);
    assert!(
        matches!(output.status.code(), Some(0..=2)),
        "{}",
        text(&output)
    );
    let run_dir = store.path().join("latest").canonicalize().unwrap();
    let report = run_dir.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    let verdict = match &results["valid"] {
        serde_json::Value::Bool(true) => "valid",
        serde_json::Value::Bool(false) => "invalid",
        _ => "unknown",
    };
    assert!(html.contains(&format!("Verdict: {verdict}")), "{html}");
    assert!(html.contains("<svg"));
    assert!(html.contains("class=\"fault\""), "no fault shading");
    assert!(html.contains(&results["seed"].to_string()), "no seed");
    assert!(html.contains("node.log"), "no node log");
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script"));

    let rendered = chromium(&report);
    assert!(
        rendered.dom.contains(&format!("Verdict: {verdict}")),
        "{}",
        rendered.dom
    );
    for id in ["id=\"latency\"", "id=\"throughput\"", "id=\"timeline\""] {
        assert!(rendered.dom.contains(id), "no {id} plot");
    }
    assert!(rendered.dom.contains("<svg"));
    assert!(rendered.dom.contains("<rect class=\"fault\""));
    assert!(rendered.dom.contains("<circle class=\"dot "));
    assert_no_console_errors(&rendered);

    // `faultline report` draws it again from the files.
    std::fs::remove_file(&report).unwrap();
    let again = faultline(&["report", run_dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("class=\"fault\"")
    );
}

#[test]
fn history_values_are_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.jsonl");
    let lines = [
        r#"{"index":0,"time":1000000,"process":0,"type":"invoke","f":"write","key":"k","value":1}"#,
        r#"{"index":1,"time":2000000,"process":0,"type":"ok","f":"write","key":"k","value":1}"#,
        r#"{"index":2,"time":2500000,"process":"nemesis","type":"info","f":"start-partition","value":"<script>alert(2)</script>"}"#,
        r#"{"index":3,"time":3000000,"process":1,"type":"invoke","f":"read","key":"k","value":null}"#,
        r#"{"index":4,"time":3500000,"process":2,"type":"invoke","f":"write","key":"k","value":"<script>alert(1)</script>"}"#,
        r#"{"index":5,"time":4000000,"process":1,"type":"ok","f":"read","key":"k","value":3}"#,
        r#"{"index":6,"time":4500000,"process":2,"type":"ok","f":"write","key":"k","value":"<script>alert(1)</script>"}"#,
        r#"{"index":7,"time":5000000,"process":"nemesis","type":"info","f":"stop-partition","value":null}"#,
    ];
    std::fs::write(&history, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("report");
    let output = faultline(&[
        "check",
        history.to_str().unwrap(),
        "--report",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(out.join("results.json").is_file());
    let report = out.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Verdict: invalid"));
    assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("Counterexample on key k"),
        "no counterexample"
    );
    assert!(
        html.contains("bar ok blocking"),
        "blocking op not highlighted"
    );

    let rendered = chromium(&report);
    assert!(rendered.dom.contains("&lt;script&gt;alert(1)"));
    assert!(!rendered.dom.contains("<script"));
    assert!(rendered.dom.contains("<rect class=\"fault\""));
    assert_no_console_errors(&rendered);
}

#[test]
fn report_needs_a_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = faultline(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(254), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("results.json"));
    std::fs::write(dir.path().join("results.json"), "{\"valid\": true}\n").unwrap();
    let output = faultline(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(254), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("history.jsonl"));
}

#[test]
fn elle_cycles_are_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("g1c.jsonl");
    let lines = [
        r#"{"index":0,"time":1000,"process":0,"type":"invoke","f":"txn","value":[["append","x",1],["r","y",null]]}"#,
        r#"{"index":1,"time":2000,"process":1,"type":"invoke","f":"txn","value":[["append","y",1],["r","x",null]]}"#,
        r#"{"index":2,"time":3000,"process":0,"type":"ok","f":"txn","value":[["append","x",1],["r","y",[1]]]}"#,
        r#"{"index":3,"time":4000,"process":1,"type":"ok","f":"txn","value":[["append","y",1],["r","x",[1]]]}"#,
    ];
    std::fs::write(&history, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("report");
    let output = faultline(&[
        "check",
        history.to_str().unwrap(),
        "--report",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(out.join("elle/G1c-0.svg").is_file());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let drawing = html
        .split("<h2>Elle's cycles</h2>")
        .nth(1)
        .expect("no drawings");
    assert!(drawing.contains("<h3>G1c-0</h3>"));
    assert!(drawing.contains("<svg"));
    assert!(html.contains("G1c: Let:"), "no anomaly explanation");
}
