//! `faultline clean` end to end: a state file left by a dead controller, naming a real
//! network namespace (needs root and iproute2) and a file to remove; a run's directory
//! on an SSH host (a real sshd on 127.0.0.1, needs openssh-server); and `clean` without
//! root.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use faultline_testsupport::sshd::Sshd;
use faultline_testsupport::{Need, available};
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

#[test]
fn clean_removes_the_run_directory_on_an_ssh_host() {
    if !available(Need::Sshd) {
        return;
    }
    let sshd = Sshd::start();
    let hosts = sshd.hosts_file("client_key", &sshd.known_hosts_line());
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("t/2020-01-01T000000Z");
    fs::create_dir_all(&run).unwrap();
    // What a killed run left on the host (which shares this machine's filesystem).
    let id = format!("cleantest{}", std::process::id());
    let remote = Path::new("/tmp").join(format!("faultline-{id}"));
    fs::create_dir_all(remote.join("n1/data")).unwrap();
    fs::write(remote.join("n1/faultline-kv"), "binary").unwrap();
    fs::write(remote.join("n1/node.log"), "log").unwrap();
    let untouched = Path::new("/tmp").join(format!("faultline-{id}x"));
    fs::create_dir_all(&untouched).unwrap();
    let state = json!({
        "version": 1,
        "run": id,
        "owner": {"pid": 1, "start_time": u64::MAX},
        "resources": [{
            "kind": "ssh-dir",
            "host": {
                "name": "n1", "address": "127.0.0.1", "port": sshd.port, "user": "root",
                "key": sshd.path("client_key"), "sudo": false,
            },
            "known_hosts": sshd.path("known_hosts"),
            "accept_unknown_host_keys": false,
            "dir": remote,
        }],
    });
    fs::write(run.join("faultline-resources.json"), state.to_string()).unwrap();
    assert!(hosts.exists());

    let out = faultline(&["clean", "--store", &store.path().to_string_lossy()]);
    let exists = remote.exists();
    let _ = fs::remove_dir_all(&remote);
    let kept = untouched.exists();
    let _ = fs::remove_dir_all(&untouched);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("cleaned 1 run(s), 1 resource(s)"),
        "{stdout}"
    );
    assert!(!exists, "{} is left", remote.display());
    assert!(kept, "a neighbour of the run's directory was removed");
    assert!(!run.join("faultline-resources.json").exists());
}

#[test]
fn clean_without_root_says_it_needs_root() {
    let store = tempfile::tempdir().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_faultline"))
        .args(["clean", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("faultline: faultline clean needs root ("),
        "{stderr}"
    );
    assert!(stderr.contains("run it as root, or with sudo"), "{stderr}");
}
