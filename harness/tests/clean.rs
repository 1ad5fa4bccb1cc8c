//! `faultline clean` end to end: a state file left by a dead controller, naming a real
//! network namespace (needs root and iproute2) and a file to remove.

use std::fs;
use std::process::Command;

use serde_json::json;

fn faultline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn clean_removes_what_a_dead_controller_recorded() {
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("run-1");
    fs::create_dir_all(&run).unwrap();
    let netns = format!("fl-clitest-{}", std::process::id());
    let marker = store.path().join("marker");
    fs::write(&marker, "").unwrap();
    let state = json!({
        "version": 1,
        "run": "clitest",
        // pid 1 with another start time: a controller that no longer runs.
        "owner": {"pid": 1, "start_time": u64::MAX},
        "resources": [
            {"kind": "namespace", "name": netns},
            {"kind": "command", "description": "marker", "argv": ["rm", "-f", marker]},
        ],
    });
    fs::write(run.join("faultline-resources.json"), state.to_string()).unwrap();
    let created = Command::new("ip")
        .args(["netns", "add", &netns])
        .status()
        .unwrap();
    assert!(created.success());

    let out = faultline(&["clean", "--store", &store.path().to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.starts_with("cleaned 1 run(s), 2 resource(s)"),
        "{stdout}"
    );
    assert!(!marker.exists());
    assert!(!run.join("faultline-resources.json").exists());
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&netns));
}

#[test]
fn clean_of_a_missing_store_is_a_one_line_usage_error() {
    let out = faultline(&["clean", "--store", "/nonexistent/store"]);
    assert_eq!(out.status.code(), Some(254));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "faultline: /nonexistent/store: no such store directory (pass --store DIR)\n"
    );
}
