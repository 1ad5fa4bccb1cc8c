//! End to end: a 3-node cluster of real `faultline-kv` processes on 127.0.0.1.
//! Writes, reads, SIGKILL of the leader, a new leader, restart and catch-up,
//! and a clean SIGTERM shutdown; the same leader kill and recovery in Multi-Paxos mode.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_testsupport::free_port;
use serde_json::{Value, json};

struct Node {
    id: u64,
    peer: String,
    client: String,
    dir: PathBuf,
    child: Option<Child>,
}

struct Cluster {
    nodes: Vec<Node>,
    extra_args: Vec<String>,
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        Cluster::with_args(n, "plain", &[])
    }

    fn with_args(n: u64, name: &str, extra: &[&str]) -> Cluster {
        let base =
            std::env::temp_dir().join(format!("faultline-kv-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let nodes = (1..=n)
            .map(|id| Node {
                id,
                peer: format!("127.0.0.1:{}", free_port()),
                client: format!("127.0.0.1:{}", free_port()),
                dir: base.join(format!("n{id}")),
                child: None,
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        for id in 1..=n {
            cluster.start(id);
        }
        cluster
    }

    fn start(&mut self, id: u64) {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.id != id)
            .map(|n| format!("{}={}/{}", n.id, n.peer, n.client))
            .collect();
        let node = &mut self.nodes[(id - 1) as usize];
        std::fs::create_dir_all(node.dir.parent().unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.with_extension("log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-kv"));
        cmd.args([
            "--id",
            &id.to_string(),
            "--listen-peer",
            &node.peer,
            "--listen-client",
            &node.client,
        ])
        .arg("--data-dir")
        .arg(&node.dir)
        .args([
            "--tick-ms",
            "10",
            "--election-ticks",
            "15",
            "--heartbeat-ticks",
            "3",
        ])
        .args(["--snapshot-entries", "50", "--log", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
        for p in &peers {
            cmd.args(["--peer", p]);
        }
        cmd.args(&self.extra_args);
        node.child = Some(cmd.spawn().expect("spawn faultline-kv"));
    }

    fn kill(&mut self, id: u64) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(mut child) = node.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.nodes[(id - 1) as usize].dir.with_extension("log"))
            .unwrap_or_default()
    }

    fn client_addr(&self, id: u64) -> String {
        self.nodes[(id - 1) as usize].client.clone()
    }

    /// Waits for a node (other than `not`) to report itself leader.
    fn leader(&self, not: Option<u64>) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            for n in &self.nodes {
                if Some(n.id) == not || n.child.is_none() {
                    continue;
                }
                if let Some(r) = call(&n.client, json!({"id": 0, "type": "status"}))
                    && r["status"]["role"] == "leader"
                {
                    return n.id;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader elected");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(n) = self.nodes.first()
            && let Some(base) = n.dir.parent()
        {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// One request on a fresh connection; `None` if the node cannot be reached.
fn call(addr: &str, request: Value) -> Option<Value> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.set_nodelay(true).ok()?;
    stream.write_all(format!("{request}\n").as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// Runs a transaction at the leader, following `not-leader` hints and retrying
/// other definite failures caused by leadership changes (safe: no effect happened).
fn txn(cluster: &Cluster, leader: u64, ops: Value) -> Value {
    let mut target = cluster.client_addr(leader);
    for _ in 0..100 {
        if let Some(r) = call(&target, json!({"id": 1, "txn": ops})) {
            match r["error"].as_str() {
                Some("not-leader") => {
                    if let Some(addr) = r["leader_addr"].as_str() {
                        target = addr.to_string();
                    }
                }
                Some("entry-replaced" | "leadership-lost") => {}
                _ => return r,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("transaction {ops} never reached a leader");
}

/// Waits up to 15 s until `node` follows `leader` and has applied `applied` entries.
fn await_caught_up(cluster: &Cluster, node: u64, leader: u64, applied: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = call(
            &cluster.client_addr(node),
            json!({"id": 0, "type": "status"}),
        );
        let caught_up = status.as_ref().is_some_and(|s| {
            s["status"]["leader"] == leader
                && s["status"]["applied"].as_u64().unwrap_or(0) >= applied
        });
        if caught_up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node did not catch up: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_survive_a_leader_kill() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.leader(None);

    for i in 0..30 {
        let r = txn(
            &cluster,
            leader,
            json!([["w", format!("k{i}"), i], ["append", "log", i]]),
        );
        assert_eq!(r["type"], "ok", "{r}");
    }
    let r = txn(
        &cluster,
        leader,
        json!([["r", "k7", null], ["r", "log", null]]),
    );
    assert_eq!(r["txn"][0], json!(["r", "k7", 7]));
    assert_eq!(r["txn"][1][2].as_array().unwrap().len(), 30);

    // A follower refuses with a hint; a failed cas is a definite failure.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let r = call(
        &cluster.client_addr(follower),
        json!({"id": 5, "txn": [["r", "k1", null]]}),
    )
    .unwrap();
    assert_eq!(
        (r["id"].clone(), r["type"].clone(), r["error"].clone()),
        (json!(5), json!("fail"), json!("not-leader"))
    );
    assert_eq!(r["leader"], leader);
    let r = txn(&cluster, leader, json!([["cas", "k1", [99, 100]]]));
    assert_eq!(
        (r["type"].clone(), r["error"].clone()),
        (json!("fail"), json!("cas-mismatch"))
    );

    // SIGKILL the leader: the others elect a new one that has every acknowledged write.
    cluster.kill(leader);
    let new_leader = cluster.leader(Some(leader));
    let r = txn(
        &cluster,
        new_leader,
        json!([["r", "k29", null], ["r", "log", null]]),
    );
    assert_eq!(r["txn"][0][2], 29, "{r}");
    assert_eq!(r["txn"][1][2].as_array().unwrap().len(), 30);
    for i in 30..60 {
        let r = txn(&cluster, new_leader, json!([["append", "log", i]]));
        assert_eq!(r["type"], "ok", "{r}");
    }

    // The old leader restarts from its data directory and catches up (by snapshot).
    cluster.start(leader);
    await_caught_up(&cluster, leader, new_leader, 60);
    let r = txn(&cluster, new_leader, json!([["r", "log", null]]));
    assert_eq!(r["txn"][0][2].as_array().unwrap().len(), 60);
    let log = cluster.log(leader);
    assert!(log.contains("recovered durable state"), "{log}");
    assert!(
        log.contains("installed snapshot from leader"),
        "caught up without a snapshot:\n{log}"
    );

    // SIGTERM stops a node cleanly (exit status 0).
    let node = &mut cluster.nodes[(follower - 1) as usize];
    let child = node.child.as_mut().unwrap();
    // The shell's builtin `kill`: no libc dependency, no reliance on procps.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "node ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    node.child = None;
}

#[test]
fn planted_bug_flag_reaches_the_node() {
    let cluster = Cluster::with_args(3, "stale-read", &["--bug", "stale-read"]);
    let leader = cluster.leader(None);
    let r = txn(&cluster, leader, json!([["w", "x", 1]]));
    assert_eq!(r["type"], "ok", "{r}");
    // With --bug stale-read a follower serves reads from its own state.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let r = call(
        &cluster.client_addr(follower),
        json!({"id": 9, "txn": [["r", "x", null]]}),
    )
    .unwrap();
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(r["node"], follower);
}

#[test]
fn paxos_mode_survives_a_leader_kill() {
    let mut cluster = Cluster::with_args(3, "paxos", &["--consensus", "paxos"]);
    let leader = cluster.leader(None);
    for i in 0..30 {
        let r = txn(&cluster, leader, json!([["append", "log", i]]));
        assert_eq!(r["type"], "ok", "{r}");
    }
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let r = call(
        &cluster.client_addr(follower),
        json!({"id": 5, "txn": [["r", "log", null]]}),
    )
    .unwrap();
    assert_eq!(r["error"], "not-leader", "{r}");

    // SIGKILL the leader: the new one adopts every acknowledged write in phase 1.
    cluster.kill(leader);
    let new_leader = cluster.leader(Some(leader));
    let r = txn(&cluster, new_leader, json!([["r", "log", null]]));
    assert_eq!(r["txn"][0][2].as_array().unwrap().len(), 30, "{r}");
    for i in 30..60 {
        let r = txn(&cluster, new_leader, json!([["append", "log", i]]));
        assert_eq!(r["type"], "ok", "{r}");
    }

    // The old leader restarts from its commit log and catches up.
    cluster.start(leader);
    await_caught_up(&cluster, leader, new_leader, 60);
    let r = txn(&cluster, new_leader, json!([["r", "log", null]]));
    assert_eq!(r["txn"][0][2].as_array().unwrap().len(), 60);
    assert!(cluster.log(leader).contains("recovered durable state"));

    // A Paxos data directory is refused by a Raft node, loudly.
    cluster.kill(leader);
    let dir = &cluster.nodes[(leader - 1) as usize].dir;
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline-kv"))
        .args(["--id", &leader.to_string(), "--consensus", "raft"])
        .args(["--listen-peer", &format!("127.0.0.1:{}", free_port())])
        .args(["--listen-client", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a raft node started on a paxos data directory");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!exit.success());
    assert!(stderr.contains("holds paxos state"), "{stderr}");
}

/// Each shard's leader as some node reports it (3PC: only a shard's home holds it).
fn shard_leaders(cluster: &Cluster) -> Vec<Option<u64>> {
    let mut leaders: Vec<Option<u64>> = Vec::new();
    for node in &cluster.nodes {
        let Some(r) = call(&node.client, json!({"id": 0, "type": "status"})) else {
            continue;
        };
        let Some(shards) = r["status"]["shards"].as_array() else {
            continue;
        };
        leaders.resize(shards.len(), None);
        for (shard, s) in shards.iter().enumerate() {
            if let Some(leader) = s["leader"].as_u64() {
                leaders[shard] = Some(leader);
            }
        }
    }
    leaders
}

/// Sends `ops` with `"forward": true` to node `via` (or the next live one), retrying
/// definite failures (nothing took effect) up to 5 s; the last answer.
fn forwarded(cluster: &Cluster, via: u64, ops: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut node = via;
    loop {
        let answer = call(
            &cluster.client_addr(node),
            json!({"id": 1, "txn": ops, "forward": true}),
        );
        match answer {
            Some(r) if r["type"] != "fail" || Instant::now() > deadline => return r,
            Some(_) => {}
            None if Instant::now() > deadline => return json!({"type": "fail"}),
            None => node = node % cluster.nodes.len() as u64 + 1,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three nodes, three shards, 2PC: see [`transfers_stay_atomic`].
#[test]
fn sharded_transfers_stay_atomic_through_a_leader_kill() {
    transfers_stay_atomic("sharded", &["--shards", "3"]);
}

/// The same with 3PC: each shard on its home alone, which is killed and restarted
/// (its phases and committed parts recovered from its disk).
#[test]
fn three_phase_transfers_stay_atomic_through_a_home_kill() {
    transfers_stay_atomic(
        "sharded-3pc",
        &["--shards", "3", "--commit-protocol", "3pc"],
    );
}

/// Three nodes, three shards: leaders spread, cross-shard transfers (`add` on two
/// accounts of different shards) run from three clients, and reads of every account
/// from two more, while the leader of a shard is
/// SIGKILLed and restarted, and every read of all the accounts (a cross-shard
/// transaction too) sees the same total: a transfer never takes effect on one shard
/// alone. Snapshots every 50 entries carry the commit state.
fn transfers_stay_atomic(name: &str, args: &[&str]) {
    let cluster = Cluster::with_args(3, name, args);
    let deadline = Instant::now() + Duration::from_secs(15);
    let leaders = loop {
        let seen = shard_leaders(&cluster);
        if seen.len() == 3 && seen.iter().all(Option::is_some) {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "shards without a leader: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let distinct: std::collections::BTreeSet<_> = leaders.iter().collect();
    assert!(distinct.len() >= 2, "leaders not spread: {leaders:?}");

    let accounts: Vec<String> = (0..6).map(|a| format!("acct{a}")).collect();
    let shard = |key: &str| faultline_kv_proto::shard_of(key, 3);
    let shards: std::collections::BTreeSet<u32> = accounts.iter().map(|a| shard(a)).collect();
    assert!(shards.len() >= 2, "the accounts are all on one shard");
    let init: Vec<Value> = accounts.iter().map(|a| json!(["w", a, 10])).collect();
    let r = forwarded(&cluster, 1, &json!(init));
    assert_eq!(r["type"], "ok", "{r}");
    let read_all: Vec<Value> = accounts.iter().map(|a| json!(["r", a, null])).collect();
    let read_all = json!(read_all);
    let total = |r: &Value| -> i64 {
        r["txn"]
            .as_array()
            .map(|ops| ops.iter().filter_map(|op| op[2].as_i64()).sum())
            .unwrap_or(-1)
    };

    let cluster = std::sync::Arc::new(std::sync::Mutex::new(cluster));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..5u64)
        .map(|c| {
            let (cluster, stop, accounts) = (cluster.clone(), stop.clone(), accounts.clone());
            let read_all = read_all.clone();
            std::thread::spawn(move || {
                let (mut ok, mut reads) = (0, Vec::new());
                let mut i = c as usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let (from, to) = (&accounts[i % 6], &accounts[(i * 7 + 1) % 6]);
                    let via = c % 3 + 1;
                    let addr = cluster.lock().unwrap().client_addr(via);
                    let ops = if c >= 3 {
                        read_all.clone()
                    } else {
                        json!([["add", from, -1], ["add", to, 1]])
                    };
                    let Some(r) = call(&addr, json!({"id": i, "txn": ops, "forward": true})) else {
                        continue;
                    };
                    if r["type"] == "ok" {
                        if c >= 3 {
                            reads.push(r);
                        } else {
                            ok += 1;
                        }
                    }
                    // At a client's pace, not back to back: with six accounts,
                    // back-to-back transfers keep every key locked, and the load
                    // would starve the other tests' clusters on a small machine.
                    std::thread::sleep(Duration::from_millis(if c < 3 { 20 } else { 5 }));
                }
                (ok, reads)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    // SIGKILL the leader of the accounts' first shard, then restart it.
    let victim = leaders[*shards.iter().next().unwrap() as usize].unwrap();
    cluster.lock().unwrap().kill(victim);
    std::thread::sleep(Duration::from_secs(3));
    cluster.lock().unwrap().start(victim);
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut transfers, mut reads) = (0, Vec::new());
    for client in clients {
        let (ok, seen) = client.join().unwrap();
        transfers += ok;
        reads.extend(seen);
    }
    let cluster = cluster.lock().unwrap();
    assert!(transfers > 20, "only {transfers} transfers committed");
    assert!(
        reads.len() > 5,
        "only {} reads of every account",
        reads.len()
    );
    for r in &reads {
        assert_eq!(total(r), 60, "a read saw a transfer half done: {r}");
    }
    // After the kill: the total holds, and the restarted node serves its shard again.
    let r = forwarded(&cluster, victim, &read_all);
    assert_eq!((r["type"].as_str(), total(&r)), (Some("ok"), 60), "{r}");
    let log = cluster.log(victim);
    assert!(log.contains("shard{shard=0}: protocol: "), "{log}");
}
