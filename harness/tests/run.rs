//! `faultline run` end to end: real namespaces, real nodes, real faults, real checks.
//! Needs root, iproute2 and nftables (CI installs them); etcd tests need etcd-server.

mod common;
use common::{assert_no_processes, ensure_kv_binary, results, run_dir, run_lines, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

/// One run at a time: each uses the whole (2-core) machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn faultline(args: &[&str], store: &Path) -> Output {
    ensure_kv_binary();
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("run")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// Nothing of any run is left: no namespace, bridge or node process of ours.
fn assert_nothing_left(store: &Path) {
    let netns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let state: Vec<_> = walk(store)
        .into_iter()
        .filter(|p| p.ends_with("state.json"))
        .collect();
    assert!(state.is_empty(), "state files left: {state:?}");
    assert_no_processes(store);
    let run = results(store)["cluster_run"].as_str().unwrap().to_string();
    assert!(
        !netns.contains(&format!("fl-{run}")),
        "namespaces left: {netns}"
    );
    let links = Command::new("ip").args(["link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&format!("flbr-{run}")));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_correct_cluster_under_partitions_and_kills_is_valid() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        &[
            "--time-limit",
            "12",
            "--nemesis-interval",
            "2",
            "--recovery-time",
            "2",
            "--seed",
            "1",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true));
    assert_eq!(results["checkers"]["linearizable"]["model"], "cas-register");
    assert!(results["run"]["ok"].as_u64().unwrap() > 500, "{results}");
    // The nemesis really acted, and every line is in the history on disk.
    let history = std::fs::read_to_string(run_dir(store.path()).join("history.jsonl")).unwrap();
    assert!(history.contains(r#""f":"start-partition""#) || history.contains(r#""f":"kill""#));
    assert!(
        history.contains(r#""f":"stop-partition""#),
        "healed at the end"
    );
    assert!(run_dir(store.path()).join("nodes/n1/node.log").exists());
    let dir = run_dir(store.path());
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"tests="1""#) && junit.contains(r#"failures="0""#),
        "{junit}"
    );
    let nemesis = std::fs::read_to_string(dir.join("nemesis.jsonl")).unwrap();
    assert!(
        nemesis
            .lines()
            .all(|l| l.contains(r#""process":"nemesis""#))
            && !nemesis.is_empty()
    );
    assert!(
        std::fs::read_to_string(dir.join("report.html"))
            .unwrap()
            .contains("valid")
    );
    assert_nothing_left(store.path());
}

#[test]
fn a_correct_cluster_under_a_crash_restart_storm_is_valid() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        &[
            "--nodes",
            "3",
            "--nemesis",
            "storm",
            "--time-limit",
            "12",
            "--nemesis-interval",
            "2",
            "--recovery-time",
            "2",
            "--seed",
            "3",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true), "{results}");
    // Each storm's plan, then every bounce it did, are in the history.
    let nemesis = run_lines(store.path(), "nemesis.jsonl");
    let infos: Vec<&Value> = nemesis.iter().filter(|op| op["type"] == "info").collect();
    assert!(
        infos
            .iter()
            .any(|op| op["f"] == "start-storm" && op["value"]["target"].is_string()),
        "{nemesis:?}"
    );
    let bounces: u64 = infos
        .iter()
        .filter(|op| op["f"] == "stop-storm")
        .map(|op| op["value"]["count"].as_u64().unwrap())
        .sum();
    assert!(bounces > 0, "{nemesis:?}");
    assert_nothing_left(store.path());
}

#[test]
fn partitions_also_isolate_the_leader() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        &[
            "--nodes",
            "3",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "8",
            "--recovery-time",
            "2",
            "--seed",
            "3",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Seed 3's first partition is the `primary` topology (the choice replays from the
    // seed): the node faultline-kv names as leader, cut off alone.
    let nemesis = run_lines(store.path(), "nemesis.jsonl");
    let primary: Vec<Value> = nemesis
        .iter()
        .filter(|op| op["type"] == "info" && op["f"] == "start-partition")
        .map(|op| op["value"].clone())
        .filter(|v| v.get("primaries").is_some())
        .collect();
    assert!(!primary.is_empty(), "{nemesis:?}");
    for v in &primary {
        assert_eq!(v["primaries"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["isolated"][0], v["primaries"], "{v}");
    }
    assert_nothing_left(store.path());
}

#[test]
fn paxos_mode_under_partitions_and_kills_is_valid() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        &[
            "--consensus",
            "paxos",
            "--nemesis",
            "partition,kill",
            "--time-limit",
            "15",
            "--nemesis-interval",
            "2",
            "--recovery-time",
            "2",
            "--seed",
            "2",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true), "{results}");
    assert!(results["run"]["ok"].as_u64().unwrap() > 100, "{results}");
    let dir = run_dir(store.path());
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(config.contains(r#""consensus": "paxos""#), "{config}");
    let log = std::fs::read_to_string(dir.join("nodes/n1/node.log")).unwrap();
    assert!(log.contains("consensus=paxos"), "{log}");
    assert_nothing_left(store.path());
}

#[test]
fn a_stale_read_bug_under_partitions_is_caught_and_explained() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        &[
            "--bug",
            "stale-read",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "15",
            "--rate",
            "500",
            "--recovery-time",
            "1",
            "--seed",
            "2",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("invalid"), "{stdout}");
    assert!(
        stdout.contains("read"),
        "the explanation names the read: {stdout}"
    );
    assert_eq!(results(store.path())["valid"], Value::Bool(false));
    assert_nothing_left(store.path());
}

#[test]
fn every_workload_runs_against_the_bundled_node() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for (workload, checker) in [
        ("register", "linearizable"),
        ("list-append", "elle"),
        ("rw-register", "elle"),
        ("bank", "bank"),
        ("set", "set"),
        ("counter", "counter"),
        ("lock", "linearizable"),
    ] {
        let store = tempfile::tempdir().unwrap();
        let out = faultline(
            &[
                "--workload",
                workload,
                "--nodes",
                "3",
                "--time-limit",
                "4",
                "--nemesis",
                "kill",
                "--nemesis-interval",
                "1",
                "--recovery-time",
                "1",
                "--rate",
                "300",
            ],
            store.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{workload}: {}", text(&out));
        let results = results(store.path());
        assert_eq!(
            results["checkers"][checker]["valid"],
            Value::Bool(true),
            "{workload}: {results}"
        );
        assert!(
            results["run"]["ok"].as_u64().unwrap() > 50,
            "{workload}: {results}"
        );
        assert_nothing_left(store.path());
    }
}

#[test]
fn every_workload_runs_against_etcd() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        Path::new("/usr/bin/etcd").exists(),
        "etcd is missing: apt-get install etcd-server (CI installs it)"
    );
    for workload in [
        "register",
        "list-append",
        "rw-register",
        "bank",
        "set",
        "counter",
        "lock",
    ] {
        let store = tempfile::tempdir().unwrap();
        let out = faultline(
            &[
                "--db",
                "etcd",
                "--workload",
                workload,
                "--nodes",
                "3",
                "--time-limit",
                "4",
                "--nemesis",
                "partition",
                "--nemesis-interval",
                "1",
                "--recovery-time",
                "2",
                "--rate",
                "200",
            ],
            store.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{workload}: {}", text(&out));
        let results = results(store.path());
        assert!(
            results["run"]["ok"].as_u64().unwrap() > 30,
            "{workload}: {results}"
        );
        assert_nothing_left(store.path());
    }
}

#[test]
fn bad_flags_and_config_exit_254_naming_the_key() {
    let store = tempfile::tempdir().unwrap();
    let out = faultline(&["--nodes", "0"], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--nodes"),
        "{}",
        text(&out)
    );
    let out = faultline(&["--workload", "queue-of-doom"], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown value `queue-of-doom`"));
    let config = store.path().join("run.toml");
    std::fs::write(&config, "nodes = 3\ntime-limt = 5\n").unwrap();
    let out = faultline(&["--config", config.to_str().unwrap()], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: unknown field `time-limt`",
            config.display()
        )),
        "{stderr}"
    );
    let out = faultline(&["--nodes", "three"], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
}

#[test]
fn ctrl_c_stops_the_run_removes_everything_and_keeps_the_history() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    ensure_kv_binary();
    let store = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "run",
            "--time-limit",
            "300",
            "--nemesis-interval",
            "1",
            "--store",
        ])
        .arg(store.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until operations are on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let history = loop {
        let found = walk(store.path())
            .into_iter()
            .find(|p| p.ends_with("history.jsonl"))
            .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.lines().count() > 200));
        if let Some(path) = found {
            break path;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no operations recorded in 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // The run's namespaces exist now.
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&netns.stdout).contains("fl-"));
    nix_kill(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // Every line on disk parses, and at least what was there before the signal remains.
    let recorded = std::fs::read_to_string(&history).unwrap();
    assert!(recorded.lines().count() > 200);
    let check = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", "--json"])
        .arg(&history)
        .output()
        .unwrap();
    assert!(
        matches!(check.status.code(), Some(0..=2)),
        "{}",
        text(&check)
    );
    let state: Vec<_> = walk(store.path())
        .into_iter()
        .filter(|p| p.ends_with("state.json"))
        .collect();
    assert!(state.is_empty(), "state files left: {state:?}");
    assert_no_processes(store.path());
}

fn nix_kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_run_on_docker_containers() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        &[
            "--cluster",
            "docker",
            "--nodes",
            "3",
            "--time-limit",
            "6",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "1",
            "--recovery-time",
            "2",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true));
    assert!(
        run_dir(store.path()).join("nodes/n1/node.log").exists(),
        "logs collected"
    );
    let run = results["cluster_run"].as_str().unwrap();
    let ps = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=faultline.run={run}"),
            "-q",
        ])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "containers left");
}

#[test]
fn a_fault_that_cannot_be_undone_is_a_harness_failure_exit_255() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    ensure_kv_binary();
    let store = tempfile::tempdir().unwrap();
    // A private copy of the node binary, removed mid-run: killed nodes cannot restart.
    let kv = store.path().join("faultline-kv");
    std::fs::copy(
        PathBuf::from(env!("CARGO_BIN_EXE_faultline")).with_file_name("faultline-kv"),
        &kv,
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "run",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "1",
            "--time-limit",
            "60",
        ])
        .args(["--nodes", "3", "--store"])
        .arg(store.path().join("store"))
        .env("FAULTLINE_KV", &kv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !walk(store.path())
        .iter()
        .any(|p| p.ends_with("history.jsonl") && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::fs::remove_file(&kv).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("harness failure"), "{stderr}");
    let store = store.path().join("store");
    let results = results(&store);
    assert_eq!(results["valid"], "unknown");
    assert!(
        results["harness_error"]
            .as_str()
            .unwrap()
            .contains("nemesis"),
        "{results}"
    );
    assert_nothing_left(&store);
}
