//! `faultline run --db postgres` end to end: a real PostgreSQL server in a local
//! namespace and in a Docker container, run as the `postgres` user, killed and paused
//! mid-run. Needs root and Debian's `postgresql`, and Docker for the container (skipped
//! without them, failing under CI=true).

mod common;
use common::{assert_no_processes, results, run_lines, text};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

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

/// A store the `postgres` user can reach (a temporary directory is private to root).
fn store() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("faultline-pg-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A 10 s serializable list-append run under kills and pauses on `cluster`: valid,
/// with real work done, and nothing left running.
fn serializable_list_append_survives_kills_and_pauses_on(cluster: &str) {
    let store = store();
    let out = faultline(
        &[
            "--db",
            "postgres",
            "--cluster",
            cluster,
            "--isolation",
            "serializable",
            "--workload",
            "list-append",
            "--time-limit",
            "10",
            "--nemesis",
            "kill,pause",
            "--nemesis-interval",
            "2",
            "--recovery-time",
            "2",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], true, "{results}");
    assert!(
        results["run"]["ok"].as_u64().unwrap_or(0) > 100,
        "{results}"
    );
    let faults: Vec<String> = run_lines(store.path(), "nemesis.jsonl")
        .iter()
        .filter(|op| op["type"] == "info")
        .filter_map(|op| op["f"].as_str().map(str::to_owned))
        .collect();
    assert!(
        faults.iter().any(|f| f == "kill" || f == "pause"),
        "no kill or pause took effect: {faults:?}"
    );
    assert_no_processes(store.path());
}

#[test]
fn serializable_list_append_survives_kills_and_pauses() {
    if !available(Need::Root) || !available(Need::Postgres) {
        return;
    }
    serializable_list_append_survives_kills_and_pauses_on("local");
}

/// The same in Docker containers: the node image carries PostgreSQL's install tree,
/// its share directory, the time zones, setpriv and the `postgres` user.
#[test]
fn serializable_list_append_survives_kills_and_pauses_in_docker() {
    if !available(Need::Root) || !available(Need::Postgres) || !available(Need::Docker) {
        return;
    }
    serializable_list_append_survives_kills_and_pauses_on("docker");
}

#[test]
fn postgres_refuses_more_nodes_partitions_and_clocks() {
    let store = store();
    for (args, says) in [
        (&["--nodes", "3"][..], "single primary"),
        (&["--nemesis", "partition"][..], "single primary"),
        (&["--nemesis", "clock"][..], "clock"),
    ] {
        let mut all = vec!["--db", "postgres"];
        all.extend_from_slice(args);
        let out = faultline(&all, store.path());
        assert_eq!(out.status.code(), Some(254), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    let out = faultline(
        &["--db", "etcd", "--isolation", "serializable"],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("--db postgres"), "{}", text(&out));
}
