//! `faultline run --db zookeeper` end to end: a real ensemble of three ZooKeeper servers
//! (Debian's `zookeeperd`, each a JVM in its own local namespace), partitioned mid-run.
//! Reads after a `sync` (`--read-mode linearizable`) must be valid; plain reads from
//! each client's own server (`serializable`) must be caught stale. Over SSH, a
//! standalone server on an sshd in a namespace. Needs root and `zookeeperd` (and
//! openssh-server over SSH; skipped without them, failing under CI=true).

mod common;
use common::{assert_no_processes, results, text};

use std::path::Path;
use std::process::{Command, Output};

use faultline_testsupport::sshd::NetnsSshd;
use faultline_testsupport::{Need, available};

fn faultline(args: &[&str], store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("run")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// A partitioned three-server register run reading `read_mode`, with `extra` flags.
fn register_run(read_mode: &str, extra: &[&str], store: &Path) -> Output {
    let mut args = vec![
        "--db",
        "zookeeper",
        "--nodes",
        "3",
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "4",
        "--read-mode",
        read_mode,
        "--recovery-time",
        "3",
    ];
    args.extend_from_slice(extra);
    faultline(&args, store)
}

#[test]
fn linearizable_reads_survive_partitions() {
    if !available(Need::Root) || !available(Need::Zookeeper) {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let out = register_run("linearizable", &["--time-limit", "20"], store.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], true, "{results}");
    assert!(
        results["run"]["ok"].as_u64().unwrap_or(0) > 1000,
        "{results}"
    );
    let nemesis = std::fs::read_to_string(store.path().join("latest/nemesis.jsonl")).unwrap();
    assert!(nemesis.contains("start-partition"), "{nemesis}");
    assert_no_processes(store.path());
}

#[test]
fn serializable_reads_are_caught_stale() {
    if !available(Need::Root) || !available(Need::Zookeeper) {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    // As fast as the clients go: followers serve what they have applied so far.
    let out = register_run(
        "serializable",
        &["--time-limit", "15", "--rate", "0"],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], false, "{results}");
    let failures = results["checkers"]["linearizable"]["failures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        failures.iter().any(|f| f["op"]["f"] == "read"),
        "a read explains the verdict: {results}"
    );
    assert!(text(&out).contains("not linearizable"), "{}", text(&out));
    assert_no_processes(store.path());
}

#[test]
fn zookeeper_refuses_clocks_and_read_modes_elsewhere() {
    let store = tempfile::tempdir().unwrap();
    let out = faultline(&["--db", "zookeeper", "--nemesis", "clock"], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("JVM"), "{}", text(&out));
    let out = faultline(&["--db", "kv", "--read-mode", "serializable"], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("--db zookeeper"), "{}", text(&out));
}

#[test]
fn a_standalone_server_over_ssh_is_killed_restarted_and_removed() {
    if !available(Need::Root) || !available(Need::Zookeeper) || !available(Need::Sshd) {
        return;
    }
    let sshd = NetnsSshd::start(248);
    let hosts = sshd.hosts_file(
        "hosts.toml",
        "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 5\nretries = 2",
        &[("n1", &sshd.addr, "id")],
    );
    let store = tempfile::tempdir().unwrap();
    let hosts = hosts.to_string_lossy().into_owned();
    let out = faultline(
        &[
            "--db",
            "zookeeper",
            "--cluster",
            "ssh",
            "--hosts",
            &hosts,
            "--nodes",
            "1",
            "--workload",
            "register",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "2",
            "--time-limit",
            "10",
            "--recovery-time",
            "2",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], true, "{results}");
    let nemesis = std::fs::read_to_string(store.path().join("latest/nemesis.jsonl")).unwrap();
    assert!(nemesis.contains("\"started\""), "{nemesis}");
    let run = results["cluster_run"].as_str().unwrap().to_string();
    let remote = Path::new("/tmp").join(format!("faultline-{run}"));
    assert!(!remote.exists(), "{} is left", remote.display());
    assert_no_processes(store.path());
}
