//! A whole run over SSH (one faultline-kv node on a real sshd in a network namespace
//! made for the test; needs root, iproute2 and openssh-server): it deploys, moves
//! `latest` onto the run, and its teardown removes `/tmp/faultline-RUN` from the host.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_exit, ensure_kv_binary, results, run_dir, text};
use faultline_testsupport::sshd::NetnsSshd;
use faultline_testsupport::{Need, available};

#[test]
fn an_ssh_run_deploys_and_removes_its_directory_on_the_host() {
    if !available(Need::Sshd) {
        return;
    }
    ensure_kv_binary();
    let sshd = NetnsSshd::start(252);
    let hosts = sshd.hosts_file(
        "hosts.toml",
        "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 5\nretries = 2",
        &[("n1", &sshd.addr, "id")],
    );
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--cluster", "ssh", "--nodes", "1", "--name", "t"])
        .args([
            "--nemesis",
            "none",
            "--time-limit",
            "2",
            "--recovery-time",
            "0",
        ])
        .args(["--concurrency", "2", "--rate", "20"])
        .arg("--hosts")
        .arg(&hosts)
        .arg("--store")
        .arg(store.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let results = results(store.path());
    let run = results["cluster_run"].as_str().unwrap().to_string();
    let remote = Path::new("/tmp").join(format!("faultline-{run}"));
    assert!(
        !remote.exists(),
        "{} is left; {}",
        remote.display(),
        text(&out)
    );
    assert!(
        run_dir(store.path()).join("nodes/n1/node.log").is_file(),
        "{}",
        text(&out)
    );
    assert!(
        !run_dir(store.path())
            .join("faultline-resources.json")
            .exists()
    );
}
