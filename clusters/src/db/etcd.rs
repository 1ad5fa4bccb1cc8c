//! etcd 3.4 (Debian `etcd-server`), driven through its JSON gateway (see
//! `shared/notes/etcd-api.md`).

use std::time::Duration;

use serde_json::{Value, json};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Capabilities, Db, Node, Pause, Primaries, http_post, wait_until};
use crate::error::ClusterError;
use crate::remote::{Cmd, DaemonSpec};

/// etcd on every node: peers on port 2380, clients on 2379, heartbeat 100 ms, election
/// timeout 1 s, data in the node's `data/`.
#[derive(Debug, Clone)]
pub struct EtcdDb {
    program: String,
    nodes: Vec<Node>,
}

impl EtcdDb {
    /// The client port.
    pub const CLIENT_PORT: u16 = 2379;
    /// The peer port.
    pub const PEER_PORT: u16 = 2380;

    /// etcd (the `etcd` on each host's `PATH`) for the cluster `nodes`.
    pub fn new(nodes: &[Node]) -> EtcdDb {
        EtcdDb {
            program: "etcd".into(),
            nodes: nodes.to_vec(),
        }
    }

    /// Runs `program` (a path on the hosts) instead of `etcd`.
    pub fn program(mut self, program: impl Into<String>) -> EtcdDb {
        self.program = program.into();
        self
    }

    fn peer_url(node: &Node) -> String {
        format!("http://{}:{}", node.addr, Self::PEER_PORT)
    }

    fn command(&self, node: &Node) -> Cmd {
        let client_url = format!("http://{}", self.client_addr(node));
        let cluster: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.name, Self::peer_url(n)))
            .collect();
        Cmd::new(&self.program)
            .args(["--name", &node.name])
            .args(["--data-dir", &node.data_dir().to_string_lossy()])
            .args(["--listen-peer-urls", &Self::peer_url(node)])
            .args(["--initial-advertise-peer-urls", &Self::peer_url(node)])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "faultline"])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
    }

    /// POSTs `body` to `/v3/<method>` on `node`; the parsed JSON of a 200 answer.
    pub fn call(&self, node: &Node, method: &str, body: &Value) -> Result<Value, String> {
        let (status, text) = http_post(
            &self.client_addr(node),
            &format!("/v3/{method}"),
            &body.to_string(),
            Duration::from_secs(3),
        )?;
        if status != 200 {
            return Err(format!("HTTP {status}: {}", text.trim()));
        }
        serde_json::from_str(&text).map_err(|e| format!("bad JSON {text:?}: {e}"))
    }
}

impl EtcdDb {
    /// What etcd can do: pause and leader discovery, none of faultline-kv's extras.
    pub const CAPABILITIES: Capabilities = Capabilities::none(
        "etcd is a Go program: it reads the time without libc, so libfaketime cannot move \
         its clock (and the machine's real clock is one for every node); use --db kv",
        "the disk nemesis knows only faultline-kv's write-ahead log; use --db kv",
        "power loss needs the nodes' data on faultline-lazyfs, which only faultline-kv \
         has; use --db kv",
    );
}

impl Db for EtcdDb {
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn name(&self) -> &str {
        "etcd"
    }

    /// etcd's panics and fatal exits by level: zap's JSON lines (`"level":"panic"`,
    /// `"level":"fatal"`, etcd ≥ 3.5), capnslog's text (`DATE TIME C | pkg: …`, critical,
    /// etcd 3.4) and its raft logger's (`raftDATE TIME PANIC: …`, `FATAL:`).
    fn log_patterns(&self) -> Vec<String> {
        [
            "\"level\":\"panic\"",
            "\"level\":\"fatal\"",
            " C | ",
            " PANIC: ",
            " FATAL: ",
        ]
        .map(String::from)
        .to_vec()
    }

    fn setup(&self, node: &Node) -> Result<(), ClusterError> {
        self.start(node)
    }

    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        let spec = DaemonSpec::new(self.command(node), node.pid_file(), node.log_file());
        node.remote.start_daemon(&spec)?;
        Ok(())
    }

    /// Ready when a linearizable read answers (so the cluster has a leader): start every
    /// node before waiting on any.
    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError> {
        let addr = self.client_addr(node);
        let body = json!({ "key": BASE64.encode(b"faultline-ready") });
        wait_until(self.name(), node, &addr, timeout, || {
            self.call(node, "kv/range", &body).map(drop)
        })
    }

    fn client_addr(&self, node: &Node) -> String {
        format!("{}:{}", node.addr, Self::CLIENT_PORT)
    }

    fn pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        Some(self)
    }
}

impl Pause for EtcdDb {}

impl Primaries for EtcdDb {
    /// The nodes whose `maintenance/status` says they are the leader.
    fn primaries(&self, nodes: &[Node]) -> Vec<String> {
        nodes
            .iter()
            .filter(|n| {
                self.call(n, "maintenance/status", &json!({}))
                    .is_ok_and(|s| {
                        let me = s["header"]["member_id"].as_str();
                        me.is_some() && me == s["leader"].as_str()
                    })
            })
            .map(|n| n.name.clone())
            .collect()
    }
}
