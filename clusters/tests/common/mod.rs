//! Helpers shared by this crate's namespace, Docker and SSH tests (those shared with
//! other crates' tests are in `faultline-testsupport`).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::db::request_line;
use faultline_clusters::{Db, KvDb, Node};
use serde_json::{Value, json};

/// Sends a transaction to a `faultline-kv` cluster from the controller, following
/// `not-leader` hints; the `ok` response.
pub fn kv_txn(db: &KvDb, nodes: &[Node], txn: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut addr = db.client_addr(&nodes[0]);
    loop {
        let req = json!({"id": 1, "txn": txn}).to_string();
        if let Ok(line) = request_line(&addr, &req, Duration::from_secs(5)) {
            let resp: Value = serde_json::from_str(&line).unwrap();
            if resp["type"] == "ok" {
                return resp;
            }
            if let Some(leader) = resp["leader_addr"].as_str() {
                addr = leader.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no ok answer for {txn}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `docker ARGS…` on the controller, asserting that it succeeded; its trimmed
/// stdout.
pub fn docker_lines(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Asserts that no container and no network labelled with Docker run `run` is left.
pub fn assert_docker_run_gone(run: &str) {
    let label = format!("label={}={run}", faultline_clusters::docker::RUN_LABEL);
    let ps: &[&str] = &["ps", "-aq", "--filter", &label];
    let networks: &[&str] = &["network", "ls", "-q", "--filter", &label];
    for args in [ps, networks] {
        assert_eq!(docker_lines(args), "", "docker {args:?}: left behind");
    }
}

/// A child controller: this test binary re-run as one `#[ignore]`d test, told through
/// `env_var` where its run directory is. On drop it is killed and whatever its run left
/// is cleaned, even if the test fails.
pub struct ChildController {
    child: std::process::Child,
    dir: PathBuf,
}

impl ChildController {
    /// Starts the ignored test `test` with `env_var` set to `dir`.
    pub fn spawn(test: &str, env_var: &str, dir: &Path) -> ChildController {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", test, "--nocapture"])
            .env(env_var, dir)
            .spawn()
            .unwrap();
        ChildController {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// Waits up to `limit` for the child to write `dir/marker` (it is ready), failing if
    /// it dies first; returns the marker's contents.
    pub fn await_marker(&mut self, marker: &str, limit: Duration) -> String {
        let marker = self.dir.join(marker);
        let deadline = Instant::now() + limit;
        while !marker.exists() {
            assert!(
                Instant::now() < deadline,
                "the child controller did not start"
            );
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the child controller died"
            );
            thread::sleep(Duration::from_millis(20));
        }
        fs::read_to_string(&marker).unwrap()
    }

    /// Kills the child with SIGKILL, as a crash would, and reaps it.
    pub fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = faultline_clusters::clean(&self.dir);
    }
}

/// Writes a key through the first node of an etcd cluster and reads it back through the
/// third (a different member), asserting the value and that a leader is known.
pub fn etcd_write_then_read_elsewhere(db: &faultline_clusters::EtcdDb, nodes: &[Node]) {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    let key = BASE64.encode(b"k");
    db.call(
        &nodes[0],
        "kv/put",
        &json!({"key": key, "value": BASE64.encode(b"v1")}),
    )
    .unwrap();
    let resp = db
        .call(&nodes[2], "kv/range", &json!({"key": key}))
        .unwrap();
    let value = resp["kvs"][0]["value"].as_str().unwrap();
    assert_eq!(BASE64.decode(value).unwrap(), b"v1");
    let leaders = db.primaries().unwrap().primaries(nodes);
    assert!(!leaders.is_empty(), "{leaders:?}");
}
