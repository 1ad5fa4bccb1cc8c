//! End to end: forwarding (`"forward": true`) on a 3-node cluster of real
//! `faultline-kv` processes on 127.0.0.1. A follower relays writes and reads to its
//! leader; a paused leader leaves a forwarded write indeterminate (`info`); a node that
//! knows no leader fails the request at once (`fail` `no-leader`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_testsupport::free_port;
use serde_json::{Value, json};

struct Node {
    peer: String,
    client: String,
    child: Option<Child>,
}

/// Three nodes, killed (and continued, if paused) when dropped.
struct Cluster {
    base: PathBuf,
    nodes: Vec<Node>,
}

impl Cluster {
    fn start() -> Cluster {
        let base = std::env::temp_dir().join(format!("faultline-kv-fwd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let mut nodes: Vec<Node> = (0..3)
            .map(|_| Node {
                peer: format!("127.0.0.1:{}", free_port()),
                client: format!("127.0.0.1:{}", free_port()),
                child: None,
            })
            .collect();
        let members: Vec<(String, String)> = nodes
            .iter()
            .map(|n| (n.peer.clone(), n.client.clone()))
            .collect();
        for (i, node) in nodes.iter_mut().enumerate() {
            let id = i + 1;
            let log = std::fs::File::create(base.join(format!("n{id}.log"))).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-kv"));
            cmd.args(["--id", &id.to_string()])
                .args(["--listen-peer", &node.peer, "--listen-client", &node.client])
                .arg("--data-dir")
                .arg(base.join(format!("n{id}")))
                .args(["--tick-ms", "10", "--election-ticks", "15"])
                .args(["--heartbeat-ticks", "3", "--request-timeout-ms", "1000"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log));
            for (j, (peer, client)) in members.iter().enumerate() {
                if j != i {
                    cmd.args(["--peer", &format!("{}={peer}/{client}", j + 1)]);
                }
            }
            node.child = Some(cmd.spawn().expect("spawn faultline-kv"));
        }
        Cluster { base, nodes }
    }

    fn addr(&self, id: u64) -> &str {
        &self.nodes[(id - 1) as usize].client
    }

    fn pid(&self, id: u64) -> String {
        let child = self.nodes[(id - 1) as usize].child.as_ref().unwrap();
        child.id().to_string()
    }

    /// The node that reports itself leader (waits up to 15 s).
    fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            for id in 1..=3 {
                if let Some(r) = call(self.addr(id), json!({"id": 0, "type": "status"}))
                    && r["status"]["role"] == "leader"
                {
                    return id;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader elected");
    }

    fn signal(&self, id: u64, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid(id)])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} n{id}");
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.nodes[(id - 1) as usize].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=3 {
            if self.nodes[id - 1].child.is_some() {
                self.signal(id as u64, "-CONT");
            }
            self.kill(id as u64);
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// One request on a fresh connection; `None` if the node cannot be reached.
fn call(addr: &str, request: Value) -> Option<Value> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(format!("{request}\n").as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// A forwarded transaction sent to `addr`, retried while no leader is known yet.
fn forwarded(addr: &str, ops: Value) -> Value {
    for _ in 0..100 {
        let r = call(addr, json!({"id": 7, "txn": ops, "forward": true})).unwrap();
        if r["error"] != "no-leader" && r["error"] != "not-leader" {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{ops} was never forwarded");
}

#[test]
fn followers_forward_to_the_leader_and_lost_answers_are_info() {
    let mut cluster = Cluster::start();
    let leader = cluster.leader();
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // A follower relays a write and a read; the answer is the leader's.
    let r = forwarded(cluster.addr(follower), json!([["w", "x", 1]]));
    assert_eq!(
        (r["type"].clone(), r["id"].clone()),
        (json!("ok"), json!(7)),
        "{r}"
    );
    assert_eq!(r["node"], leader, "{r}");
    let r = forwarded(cluster.addr(follower), json!([["r", "x", null]]));
    assert_eq!(r["txn"][0], json!(["r", "x", 1]), "{r}");
    // Without `forward`, the old protocol: a hint.
    let r = call(
        cluster.addr(follower),
        json!({"id": 8, "txn": [["r", "x", null]]}),
    )
    .unwrap();
    assert_eq!(r["error"], "not-leader", "{r}");

    // The leader paused: the follower still knows it, connects (the kernel accepts),
    // sends, and hears nothing back within its request time-out: indeterminate.
    cluster.signal(leader, "-STOP");
    let r = call(
        cluster.addr(follower),
        json!({"id": 9, "txn": [["w", "x", 2]], "forward": true}),
    )
    .unwrap();
    assert_eq!(r["id"], 9, "{r}");
    eprintln!("paused leader: {r}");
    assert!(
        r["type"] == "info" && r["error"] == "forward-timeout"
            // Had it noticed the silence first, it would have known no leader.
            || r["type"] == "fail" && r["error"] == "no-leader",
        "{r}"
    );
    cluster.signal(leader, "-CONT");

    // Alone, a follower knows no leader: a definite failure, nothing sent.
    let leader = cluster.leader();
    let alone = (1..=3).find(|id| *id != leader).unwrap();
    for id in (1..=3).filter(|id| *id != alone) {
        cluster.kill(id);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(
            cluster.addr(alone),
            json!({"id": 10, "txn": [["w", "x", 3]], "forward": true}),
        )
        .unwrap();
        if r["error"] == "no-leader" {
            assert_eq!(r["type"], "fail", "{r}");
            break;
        }
        // Until its election timer fires it still names the dead leader.
        assert!(
            r["error"] == "forward-unavailable" && r["type"] == "fail",
            "{r}"
        );
        assert!(Instant::now() < deadline, "still no `no-leader`: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
