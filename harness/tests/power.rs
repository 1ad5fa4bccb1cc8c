//! `faultline run --nemesis power` end to end: nodes on faultline-lazyfs lose every
//! unsynced write when their power is cut. A correct faultline-kv (fsync before
//! acknowledging) stays valid; with `--bug no-fsync` the loss of acknowledged writes is
//! caught. Needs root, iproute2, nftables and /dev/fuse.

mod common;
use common::{assert_no_processes, ensure_binary, ensure_kv_binary, run_dir, run_lines, text};

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
    ensure_kv_binary();
    ensure_binary("faultline-lazyfs");
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "run",
            "--nemesis",
            "power",
            "--nodes",
            "3",
            "--workload",
            "set",
        ])
        .args(["--time-limit", "15", "--nemesis-interval", "2"])
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
