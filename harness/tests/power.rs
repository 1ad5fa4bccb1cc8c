//! `faultline run --nemesis power` end to end: nodes on faultline-lazyfs lose every
//! unsynced write when their power is cut. A correct faultline-kv (fsync before
//! acknowledging) stays valid; with `--bug no-fsync` the loss of acknowledged writes is
//! caught. Needs root, iproute2, nftables and /dev/fuse.

mod common;
use common::{
    assert_no_processes, ensure_binary, ensure_kv_binary, results, run_dir, run_lines, text,
};

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

/// A seed whose power losses include the whole cluster early (targets all, one, all,
/// majority), which loses every write of a node that never fsyncs: caught in every one
/// of our runs. (A set workload: its final read sees every lost element.)
const SEED: &str = "6";

/// One run at a time: each uses the whole (2-core) machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn power_run(extra: &[&str], seed: &str, store: &Path) -> Output {
    set_run(
        &["--nemesis", "power", "--nemesis-interval", "2"],
        extra,
        seed,
        store,
    )
}

/// A 15 s set run on 3 faultline-kv nodes with these faults.
fn set_run(faults: &[&str], extra: &[&str], seed: &str, store: &Path) -> Output {
    ensure_kv_binary();
    ensure_binary("faultline-lazyfs");
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--nodes", "3", "--workload", "set"])
        .args(faults)
        .args(["--time-limit", "15"])
        .args(["--recovery-time", "2", "--seed", seed])
        .args(extra)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// The nemesis's `info` lines for power losses.
fn power_losses(store: &Path) -> Vec<Value> {
    run_lines(store, "history.jsonl")
        .into_iter()
        .filter(|op| op["f"] == "power-loss" && op["type"] == "info")
        .collect()
}

fn assert_no_lazyfs_left(store: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = store.canonicalize().unwrap();
    assert!(
        !mounts.contains(&*store.to_string_lossy()),
        "mounts left under {}",
        store.display()
    );
    assert_no_processes(&store);
}

#[test]
fn a_correct_node_survives_power_losses() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = power_run(&[], SEED, store.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let losses = power_losses(store.path());
    assert!(!losses.is_empty(), "no power loss in the run");
    for loss in &losses {
        assert!(loss["value"]["nodes"].as_array().is_some(), "{loss}");
        assert!(loss["value"]["bytes"].as_u64().is_some(), "{loss}");
    }
    let dir = run_dir(store.path());
    assert!(dir.join("nodes/n1/lazyfs.log").exists());
    assert_no_lazyfs_left(store.path());
}

#[test]
fn acknowledging_before_fsync_is_caught_by_a_power_loss() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let out = power_run(&["--bug", "no-fsync"], SEED, store.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Acknowledged bytes really were thrown away.
    let lost: u64 = power_losses(store.path())
        .iter()
        .filter_map(|l| l["value"]["bytes"].as_u64())
        .sum();
    assert!(lost > 0, "nothing was lost");
    assert_no_lazyfs_left(store.path());
}

/// In a run with the power fault, a plain `kill` loses unsynced writes too (Jepsen's
/// `kill!` under LazyFS): a node that never fsyncs comes back without the entries it
/// applied and the votes it cast, which the node-log check names on that node.
#[test]
fn a_kill_in_a_run_with_power_loses_unsynced_writes_too() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let schedule = store.path().join("kill-n1.toml");
    std::fs::write(
        &schedule,
        "[[at]]\ntime = 5.0\nstart = \"kill\"\ntarget = [\"n1\"]\n\
         [[at]]\ntime = 6.0\nstop = \"kill\"\n\
         [[at]]\ntime = 30.0\nstart = \"power\"\ntarget = \"one\"\n", // after the end: only mounts lazyfs
    )
    .unwrap();
    let schedule = schedule.to_string_lossy().to_string();
    let run = |bug: &[&str]| {
        let sub = store
            .path()
            .join(if bug.is_empty() { "correct" } else { "bug" });
        let out = set_run(&["--nemesis-schedule", schedule.as_str()], bug, "1", &sub);
        let kills: Vec<Value> = run_lines(&sub, "history.jsonl")
            .into_iter()
            .filter(|op| op["f"] == "kill" && op["type"] == "info")
            .collect();
        let results = results(&sub);
        assert_no_lazyfs_left(&sub);
        (out, kills, results)
    };

    let (out, kills, results) = run(&["--bug", "no-fsync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(kills.len(), 1, "{kills:?}");
    let lost = &kills[0]["value"]["lost"];
    assert_eq!(lost[0]["node"], "n1", "{lost}");
    assert!(lost[0]["bytes"].as_u64().unwrap() > 0, "{lost}");
    let logs = &results["checkers"]["node-logs"];
    let found = &logs["anomalies"]["lost-log-entries"][0];
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("n1 had applied entries"),
        "{logs:#}"
    );

    // The same kill of a correct node loses nothing it had acknowledged.
    let (out, kills, results) = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(kills[0]["value"]["lost"][0]["node"], "n1", "{kills:?}");
    assert_eq!(results["checkers"]["node-logs"]["valid"], true);
}
