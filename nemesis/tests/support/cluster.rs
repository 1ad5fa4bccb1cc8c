//! Shared by the packet, clock and disk fault tests (a `#[path]` module): a real
//! 3-node local cluster serving `faultline-kv`, and small probes.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_clusters::db::{Primaries, request_line, setup_all};
use faultline_clusters::{Cmd, Db, KvDb, NetnsCluster, NetnsHost, Node, Remote, Resource};
use serde_json::Value;

use faultline_testsupport::assert_netns_run_gone;
#[allow(unused_imports)] // each test file uses a different subset
pub use faultline_testsupport::{kv_binary, sh};

/// A 3-node cluster serving `faultline-kv`. The cluster is declared first so that it is
/// torn down before its directory is removed.
pub struct Setup {
    pub cluster: NetnsCluster,
    pub nodes: Vec<Node>,
    pub db: Arc<KvDb>,
    pub dir: tempfile::TempDir,
}

/// A cluster whose nodes run under libfaketime when `faketime`.
pub fn setup(faketime: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NetnsCluster::create(dir.path(), 3).unwrap();
    let nodes = cluster.nodes();
    let db = Arc::new(
        KvDb::new(kv_binary(), &nodes)
            .upload(false)
            .faketime(faketime),
    );
    setup_all(&*db, &nodes, Duration::from_secs(20)).unwrap();
    Setup {
        cluster,
        nodes,
        db,
        dir,
    }
}

impl Setup {
    pub fn host(&self, name: &str) -> &NetnsHost {
        self.cluster
            .hosts()
            .iter()
            .find(|h| h.host() == name)
            .unwrap()
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    /// Whether `from`'s namespace can open a TCP connection to `to`'s peer port within
    /// a second.
    pub fn reaches(&self, from: &str, to: &str) -> bool {
        let probe = format!(
            "exec 3<>/dev/tcp/{}/{}",
            self.host(to).addr(),
            KvDb::PEER_PORT
        );
        self.host(from)
            .run(
                &Cmd::new("timeout")
                    .args(["1", "bash", "-c", &probe])
                    .timeout(Duration::from_secs(5)),
            )
            .unwrap()
            .success()
    }

    /// The output of `argv` in `node`'s namespace.
    pub fn run_in(&self, node: &str, argv: &[&str]) -> String {
        self.host(node)
            .run_ok(&Cmd::new(argv[0]).args(argv[1..].iter().copied()))
            .unwrap()
            .stdout
    }

    /// Whether `node` answers a status request within a second.
    pub fn answers(&self, node: &Node) -> bool {
        request_line(
            &self.db.client_addr(node),
            r#"{"id":0,"type":"status"}"#,
            Duration::from_secs(1),
        )
        .is_ok()
    }

    /// Runs the transaction `txn` (JSON micro-ops) on the leader, retrying for up to
    /// 20 s until it is `ok`; the response.
    pub fn txn(&self, txn: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            let leaders = Primaries::primaries(&*self.db, &self.nodes);
            if let Some(leader) = leaders.first() {
                let node = self.node(leader);
                let line = format!(r#"{{"id":1,"txn":{txn}}}"#);
                match request_line(&self.db.client_addr(node), &line, Duration::from_secs(5)) {
                    Ok(resp) => {
                        let v: Value = serde_json::from_str(&resp).unwrap();
                        if v["type"] == "ok" {
                            return v;
                        }
                        last = resp;
                    }
                    Err(e) => last = e,
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no ok for {txn} in 20 s: {last}");
    }

    /// Waits until every node has applied as far as any node had committed when called.
    pub fn await_replicated(&self) {
        let target = self
            .nodes
            .iter()
            .filter_map(|n| self.db.status(n).ok())
            .filter_map(|s| s["commit"].as_u64())
            .max()
            .unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut nudge = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            // A follower restarted after the leader's last append catches up only on
            // the next one (faultline-kv sends no entries with heartbeats): nudge.
            if Instant::now() >= nudge {
                self.txn(r#"[["w","await-replicated-nudge",0]]"#);
                nudge = Instant::now() + Duration::from_secs(2);
            }
            let done = self.nodes.iter().all(|n| {
                self.db
                    .status(n)
                    .is_ok_and(|s| s["applied"].as_u64().is_some_and(|a| a >= target))
            });
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let statuses: Vec<Result<Value, String>> =
            self.nodes.iter().map(|n| self.db.status(n)).collect();
        panic!("the nodes did not all apply {target} in 20 s: {statuses:?}");
    }

    pub fn nft_resources(&self) -> usize {
        self.cluster
            .registry()
            .resources()
            .iter()
            .filter(|r| matches!(r, Resource::NftTable { .. }))
            .count()
    }

    /// Tears down and asserts that nothing of the run is left.
    pub fn finish(self) {
        let run = self.cluster.run_id().to_string();
        let dir = self.dir.path().to_path_buf();
        self.cluster.teardown().unwrap();
        assert_netns_run_gone(&run, &dir);
    }
}
