//! Helpers shared by the namespace and SSH tests.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::db::request_line;
use faultline_clusters::{Db, KvDb, Node};
use serde_json::{Value, json};

#[path = "../../../testsupport/kv_binary.rs"]
mod kv_binary;
#[allow(unused_imports)] // not every test file starts nodes
pub use kv_binary::kv_binary;

/// Runs a command on the controller; its stdout.
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that nothing of run `run` is left: namespaces, links, nft rules and tables,
/// processes whose command line mentions `dir`.
pub fn assert_gone(run: &str, dir: &std::path::Path) {
    let netns = sh(&["ip", "netns", "list"]);
    assert!(!netns.contains(run), "namespaces left: {netns}");
    let links = sh(&["ip", "-o", "link"]);
    assert!(!links.contains(run), "links left: {links}");
    let tables = sh(&["nft", "list", "tables"]);
    assert!(!tables.contains(run), "nft tables left: {tables}");
    let forward = sh(&["nft", "list", "chain", "ip", "filter", "FORWARD"]);
    assert!(!forward.contains(run), "FORWARD rule left: {forward}");
    let procs = sh(&["pgrep", "-af", &dir.to_string_lossy()]);
    assert!(procs.trim().is_empty(), "processes left: {procs}");
}

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

/// Runs a command on the controller and asserts that it succeeded.
pub fn run(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{argv:?}: {out:?}");
}

/// Makes an ed25519 key pair without a passphrase: `path` and `path.pub`.
pub fn keygen(path: &Path) {
    let comment = path.file_name().unwrap().to_string_lossy().into_owned();
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        &comment,
        "-f",
        path.to_str().unwrap(),
    ]);
}

/// Prepares an sshd in `dir` listening on `addr` port 22 (see
/// `shared/notes/linux-faults.md`, "SSH test hosts on one machine"): a host key
/// `dir/host_key`, `authorized_keys` (a copy of `client_pub`), and its configuration,
/// whose path it returns. Run it as `/usr/sbin/sshd -D -e -f CONFIG` inside the namespace.
pub fn sshd_config(dir: &Path, addr: &str, client_pub: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("host_key"));
    fs::copy(client_pub, dir.join("authorized_keys")).unwrap();
    let config = format!(
        "Port 22\nListenAddress {addr}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
        dir.join("host_key").display(),
        dir.join("sshd.pid").display(),
        dir.join("authorized_keys").display()
    );
    let path = dir.join("sshd_config");
    fs::write(&path, config).unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The known_hosts line for the sshd of [`sshd_config`] in `dir` at `addr`, written by
/// hand: "ADDRESS TYPE KEY".
pub fn known_hosts_line(dir: &Path, addr: &str) -> String {
    let public = fs::read_to_string(dir.join("host_key.pub")).unwrap();
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    format!("{addr} {}\n", key.join(" "))
}

/// Waits (at most 10 s) until `addr:22` accepts connections; the failure shows `log`.
pub fn await_sshd(addr: &str, log: &Path) {
    let addr: SocketAddr = format!("{addr}:22").parse().unwrap();
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        let log = fs::read_to_string(log).unwrap_or_default();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start: {log}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether some process has `pid` as its parent.
pub fn has_children(pid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
                .is_some_and(|ppid| ppid == pid.to_string())
        })
    })
}

/// Waits (at most 3 s) until the sshd `pid` has no children: the sessions of closed
/// connections have ended and been reaped by sshd, not orphaned to init.
pub fn await_sessions_closed(pid: u32) {
    let start = Instant::now();
    while has_children(pid) && start.elapsed() < Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a Docker engine is usable; `false` (skip) when there is no `docker` CLI. A
/// CLI without a reachable daemon fails the test.
pub fn docker_available() -> bool {
    use faultline_clusters::docker::{DockerError, check_prerequisites};
    match check_prerequisites() {
        Err(DockerError::NoCli) => {
            eprintln!("skipped: no docker CLI on this machine");
            false
        }
        other => {
            other.unwrap();
            true
        }
    }
}

/// Asserts that no container and no network labelled with Docker run `run` is left.
pub fn assert_docker_run_gone(run: &str) {
    let label = format!("label={}={run}", faultline_clusters::docker::RUN_LABEL);
    let ps: &[&str] = &["ps", "-aq", "--filter", &label];
    let networks: &[&str] = &["network", "ls", "-q", "--filter", &label];
    for args in [ps, networks] {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
        let left = String::from_utf8_lossy(&out.stdout);
        assert_eq!(left.trim(), "", "docker {args:?}: left behind");
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
