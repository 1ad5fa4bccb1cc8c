//! `KvStore` against a real 3-node `faultline-kv` cluster on 127.0.0.1: micro-op
//! semantics, `not-leader` hints, fail-over after SIGKILL of the leader, and `info` on
//! a paused cluster.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_testsupport::{free_port, kv_binary};
use faultline_workloads::store::kv::KvStore;
use faultline_workloads::store::{Micro, Store, StoreError, TxnOk};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

mod common;
use common::{ok_within, r};

/// Three nodes `n1`..`n3` (ids 1..3); all killed on drop.
struct Cluster {
    clients: Vec<String>,
    children: Vec<Option<Child>>,
    base: PathBuf,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let binary = kv_binary();
        let base =
            std::env::temp_dir().join(format!("faultline-store-kv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let peers: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let clients: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut cluster = Cluster {
            clients: clients.clone(),
            children: Vec::new(),
            base: base.clone(),
        };
        for i in 0..3 {
            let log = std::fs::File::create(base.join(format!("n{}.log", i + 1))).unwrap();
            let mut cmd = Command::new(&binary);
            cmd.args(["--id", &(i + 1).to_string()])
                .args(["--listen-peer", &peers[i], "--listen-client", &clients[i]])
                .arg("--data-dir")
                .arg(base.join(format!("n{}", i + 1)))
                .args(["--tick-ms", "10", "--election-ticks", "15"])
                .args(["--heartbeat-ticks", "3", "--request-timeout-ms", "3000"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log));
            for j in (0..3).filter(|&j| j != i) {
                cmd.args(["--peer", &format!("{}={}/{}", j + 1, peers[j], clients[j])]);
            }
            cluster
                .children
                .push(Some(cmd.spawn().expect("spawn faultline-kv")));
        }
        cluster
    }

    fn nodes(&self) -> Vec<(String, String)> {
        self.clients
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("n{}", i + 1), a.clone()))
            .collect()
    }

    /// The index of the node that reports itself leader (waits for one).
    fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for (i, addr) in self.clients.iter().enumerate() {
                if self.children[i].is_none() {
                    continue;
                }
                if let Some(r) = status(addr)
                    && r["status"]["role"] == "leader"
                {
                    return i;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader elected; logs in {}", self.base.display());
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn signal_all(&self, signal: Signal) {
        for child in self.children.iter().flatten() {
            kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for mut child in self.children.iter_mut().filter_map(Option::take) {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// A status request on a fresh connection; `None` when the node does not answer.
fn status(addr: &str) -> Option<Value> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"{\"id\":0,\"type\":\"status\"}\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// Retries definite failures (leadership changes) until `ok`; an `info` fails the test.
async fn ok(store: &mut KvStore, ops: &[Micro]) -> TxnOk {
    ok_within(store, ops, Duration::from_secs(10)).await
}

#[tokio::test]
async fn micro_ops_and_not_leader_hints() {
    let cluster = Cluster::start("ops");
    let leader = cluster.leader();
    let leader_name = format!("n{}", leader + 1);
    let timeout = Duration::from_secs(5);
    let mut store = KvStore::new(cluster.nodes(), leader, timeout);

    let got = ok(&mut store, &[r("x")]).await;
    assert_eq!(got.values, vec![Value::Null], "an unset key reads null");
    let got = ok(&mut store, &[Micro::Write("x".into(), json!(1)), r("x")]).await;
    assert_eq!(got.values, vec![Value::Null, json!(1)]);
    assert_eq!(got.node, leader_name);
    let got = ok(
        &mut store,
        &[Micro::Cas("x".into(), json!(1), json!(2)), r("x")],
    )
    .await;
    assert_eq!(got.values, vec![Value::Null, json!(2)]);
    let err = store
        .txn(&[Micro::Cas("x".into(), json!(1), json!(3))])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Fail {
            error: "cas-mismatch".into(),
            node: Some(leader_name.clone())
        }
    );
    ok(&mut store, &[Micro::Append("l".into(), json!(1))]).await;
    let got = ok(&mut store, &[Micro::Append("l".into(), json!(2)), r("l")]).await;
    assert_eq!(got.values, vec![Value::Null, json!([1, 2])]);
    ok(&mut store, &[Micro::Add("c".into(), 5)]).await;
    let got = ok(&mut store, &[Micro::Add("c".into(), -2), r("c")]).await;
    assert_eq!(got.values, vec![Value::Null, json!(3)]);
    let err = store.txn(&[Micro::Add("l".into(), 1)]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Fail { ref error, .. } if error == "not-an-integer"),
        "{err:?}"
    );

    // A client that starts at a follower follows the hint and names the leader.
    let follower = (leader + 1) % 3;
    let mut other = KvStore::new(cluster.nodes(), follower, timeout);
    assert_eq!(
        other.current_node(),
        Some(format!("n{}", follower + 1).as_str())
    );
    let got = other
        .txn(&[Micro::Write("y".into(), json!("v")), r("x")])
        .await
        .unwrap();
    assert_eq!(got.values, vec![Value::Null, json!(2)]);
    assert_eq!(got.node, leader_name);
    assert_eq!(other.current_node(), Some(leader_name.as_str()));
}

#[tokio::test]
async fn leader_kill_fails_over_and_pause_gives_info() {
    let mut cluster = Cluster::start("faults");
    let leader = cluster.leader();
    let mut store = KvStore::new(cluster.nodes(), leader, Duration::from_secs(2));
    ok(&mut store, &[Micro::Append("k".into(), json!(1))]).await;

    // SIGKILL the leader: the store's connection to it breaks while idle; calls fail
    // over to the survivors and succeed once one of them is elected.
    cluster.kill(leader);
    let got = ok(&mut store, &[Micro::Append("k".into(), json!(2)), r("k")]).await;
    assert_eq!(
        got.values[1],
        json!([1, 2]),
        "no acknowledged append is lost"
    );
    assert_ne!(got.node, format!("n{}", leader + 1));

    // SIGSTOP every node: a write is `info` within the time-out, never `fail`.
    cluster.signal_all(Signal::SIGSTOP);
    let started = Instant::now();
    let err = store
        .txn(&[Micro::Append("k".into(), json!(3))])
        .await
        .unwrap_err();
    let took = started.elapsed();
    cluster.signal_all(Signal::SIGCONT);
    assert!(
        matches!(err, StoreError::Info { ref error, .. } if error == "timeout"),
        "{err:?}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");

    // After the pause the store reconnects; the paused append may or may not be there.
    let got = ok(&mut store, &[r("k")]).await;
    let list = got.values[0].as_array().unwrap().clone();
    assert!(list == vec![json!(1), json!(2)] || list == vec![json!(1), json!(2), json!(3)]);
}
