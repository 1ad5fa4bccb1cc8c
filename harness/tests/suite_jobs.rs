//! `faultline suite --jobs J` end to end: two suites at once (two processes), each with
//! two runs at once, on the bundled faultline-kv under partitions (root). Every run
//! meets its expectation, lines name their run, and nothing is left behind: namespaces,
//! links, nft tables, FORWARD rules, processes, reservations.

mod common;
use common::{ensure_kv_binary, text};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use faultline_testsupport::{Need, assert_netns_run_gone, available};

/// Two runs of one test (seeds 1 and 2: the same test directory, started in the same
/// second) under partitions.
const SEEDS: &str = "suite = \"seeds\"\nnodes = 3\ntime-limit = 6\nrecovery-time = 1\n\
                     nemesis = [\"partition\"]\nnemesis-interval = 1\n\n\
                     [[run]]\nname = \"kv-register\"\nseeds = [1, 2]\n";

/// A correct run and a planted bug that must still be caught next to other runs.
const BUG: &str = "suite = \"bug\"\nnodes = 3\ntime-limit = 6\nrecovery-time = 1\n\
                   nemesis = [\"partition\"]\nnemesis-interval = 1\n\n\
                   [[run]]\nname = \"plain\"\nworkload = \"list-append\"\n\n\
                   [[run]]\nname = \"stale-read-caught\"\nbug = [\"stale-read\"]\n\
                   rate = 500\ntime-limit = 8\nseed = 2\nexpect = \"invalid\"\n";

#[test]
fn two_suites_of_two_jobs_at_once_pass_and_leave_nothing() {
    if !available(Need::Root) {
        return;
    }
    ensure_kv_binary();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let children: Vec<_> = [("seeds", SEEDS), ("bug", BUG)]
        .into_iter()
        .map(|(name, text)| {
            let file = dir.path().join(format!("{name}.toml"));
            std::fs::write(&file, text).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
                .arg("suite")
                .arg(&file)
                .arg("--jobs")
                .arg("2")
                .arg("--store")
                .arg(dir.path().join(name))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|(name, child)| (name, child.wait_with_output().unwrap()))
        .collect();
    let took = started.elapsed().as_secs_f64();
    for (name, out) in &outputs {
        assert_eq!(out.status.code(), Some(0), "suite {name}: {}", text(out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Both runs started before either finished: they ran at once.
        let second_start = stderr.find("[2/2]").unwrap();
        let first_end = stderr.find(": passed").unwrap();
        assert!(second_start < first_end, "not at once: {stderr}");
        // A run's own lines carry its label.
        assert!(stderr.contains("] faultline: "), "{stderr}");
        let store = dir.path().join(name);
        let junit = std::fs::read_to_string(store.join("junit.xml")).unwrap();
        assert!(
            junit.contains("tests=\"2\" failures=\"0\" errors=\"0\""),
            "{junit}"
        );
        assert!(store.join("index.html").exists());
        for run in run_dirs(&store) {
            let results: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                    .unwrap();
            let id = results["cluster_run"].as_str().unwrap();
            assert_netns_run_gone(id, &run);
            let reservation = Path::new("/run/faultline/ids").join(id);
            assert!(!reservation.exists(), "{} left", reservation.display());
        }
    }
    // The seeds' two runs of one test got a directory each.
    assert_eq!(run_dirs(&dir.path().join("seeds")).len(), 2);
    let left = Command::new("pgrep")
        .args(["-af", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
    // Four runs of 6–8 s: well under their sum one after another.
    eprintln!("two suites of two jobs: {took:.1} s");
}

/// Every `STORE/TEST/RUN` directory (the `latest` links skipped).
fn run_dirs(store: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    for test in std::fs::read_dir(store).unwrap().flatten() {
        if !test.file_type().unwrap().is_dir() {
            continue;
        }
        for run in std::fs::read_dir(test.path()).unwrap().flatten() {
            if run.file_type().unwrap().is_dir() {
                dirs.push(run.path());
            }
        }
    }
    dirs
}
