//! Real faults on a real local cluster: needs root, iproute2, nftables, and the
//! `faultline-kv` release binary (built if missing, see [`kv_binary`]). Each test builds
//! its own 3-node [`NetnsCluster`], whose `Drop` tears everything down even when an
//! assertion fails; each ends with an explicit teardown and a check that nothing of its
//! run is left.

use std::sync::Arc;
use std::time::Duration;

use faultline_clusters::db::{request_line, setup_all};
use faultline_clusters::nft::NetHosts;
use faultline_clusters::{Cmd, Db, KvDb, NetnsCluster, NetnsHost, Node, Remote, Resource};
use faultline_nemesis::{
    Compose, KillNemesis, Nemesis, Net, NftPartitions, PartitionNemesis, PauseNemesis, isolate,
};
use faultline_testsupport::{assert_netns_run_gone, kv_binary};
use serde_json::{Value, json};

/// A 3-node cluster serving `faultline-kv`. The cluster is declared first so that it is
/// torn down before its directory is removed.
struct Setup {
    cluster: NetnsCluster,
    nodes: Vec<Node>,
    db: Arc<KvDb>,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NetnsCluster::create(dir.path(), 3).unwrap();
    let nodes = cluster.nodes();
    let db = Arc::new(KvDb::new(kv_binary(), &nodes).upload(false));
    setup_all(&*db, &nodes, Duration::from_secs(10)).unwrap();
    Setup {
        cluster,
        nodes,
        db,
        dir,
    }
}

impl Setup {
    fn host(&self, name: &str) -> &NetnsHost {
        self.cluster
            .hosts()
            .iter()
            .find(|h| h.host() == name)
            .unwrap()
    }

    fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Whether `from`'s namespace can open a TCP connection to `to`'s peer port within
    /// a second.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let probe = format!(
            "exec 3<>/dev/tcp/{}/{}",
            self.host(to).addr(),
            KvDb::PEER_PORT
        );
        let out = self
            .host(from)
            .run(
                &Cmd::new("timeout")
                    .args(["1", "bash", "-c", &probe])
                    .timeout(Duration::from_secs(5)),
            )
            .unwrap();
        out.success()
    }

    /// The nft tables in `node`'s namespace.
    fn tables(&self, node: &str) -> String {
        self.host(node)
            .run_ok(&Cmd::new("nft").args(["list", "tables"]))
            .unwrap()
            .stdout
    }

    /// Whether `node` answers a status request within a second.
    /// Whether the node answers a status request within 10 s (retrying: a loaded
    /// machine may be slow to schedule a resumed or restarted node).
    fn answers(&self, node: &Node) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.status(node).is_ok() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether one status request to the node goes unanswered for 1 s.
    fn silent(&self, node: &Node) -> bool {
        self.status(node).is_err()
    }

    fn status(&self, node: &Node) -> Result<String, String> {
        request_line(
            &self.db.client_addr(node),
            r#"{"id":0,"type":"status"}"#,
            Duration::from_secs(1),
        )
    }

    fn nft_resources(&self) -> usize {
        self.cluster
            .registry()
            .resources()
            .iter()
            .filter(|r| matches!(r, Resource::NftTable { .. }))
            .count()
    }

    /// Tears down and asserts that nothing of the run is left.
    fn finish(self) {
        let run = self.cluster.run_id().to_string();
        let dir = self.dir.path().to_path_buf();
        self.cluster.teardown().unwrap();
        assert_netns_run_gone(&run, &dir);
    }
}

#[test]
fn partitions_cut_exactly_the_grudge_and_heal() {
    let s = setup();
    let net = Arc::new(NftPartitions::new(&s.cluster.net_hosts()));
    let names = s.names();

    // Isolate n1: it reaches nobody and nobody reaches it; n2 and n3 still talk.
    net.drop(&isolate(&names, "n1").unwrap().grudge).unwrap();
    assert!(!s.reaches("n1", "n2"));
    assert!(!s.reaches("n3", "n1"));
    assert!(s.reaches("n2", "n3") && s.reaches("n3", "n2"));
    // The controller still reaches every node.
    assert!(s.nodes.iter().all(|n| s.answers(n)));
    for node in ["n1", "n2", "n3"] {
        assert!(s.tables(node).contains(net.table()), "{node}");
    }
    assert_eq!(s.nft_resources(), 3);

    net.heal().unwrap();
    assert!(s.reaches("n1", "n2") && s.reaches("n3", "n1") && s.reaches("n2", "n3"));
    for node in ["n1", "n2", "n3"] {
        assert_eq!(s.tables(node).trim(), "", "{node}");
    }
    assert_eq!(s.nft_resources(), 0);
    net.heal().unwrap();

    // Through the nemesis: a one-way cut leaves tables only on the receiving side.
    let mut nemesis = PartitionNemesis::new(net.clone(), &names, 7);
    let value = nemesis
        .invoke("start-partition", &json!("one-way"))
        .unwrap();
    let side =
        |k: &str| -> Vec<String> { serde_json::from_value(value["one-way"][k].clone()).unwrap() };
    let (from, to) = (side("from"), side("to"));
    assert_eq!((from.len(), to.len()), (1, 2), "{value}");
    for node in &from {
        assert_eq!(s.tables(node).trim(), "", "{node}");
    }
    for node in &to {
        assert!(s.tables(node).contains(net.table()), "{node}");
    }
    assert!(s.reaches(&to[0], &to[1]));
    assert_eq!(
        nemesis.invoke("stop-partition", &Value::Null).unwrap(),
        json!("network-healed")
    );
    assert!(s.reaches(&from[0], &to[0]));

    // The same engine without a registry (as over SSH), through the nodes' Remotes.
    let ssh_like = NftPartitions::new(&NetHosts::remote(&s.nodes, "sshlike").unwrap());
    ssh_like
        .drop(&isolate(&names, "n3").unwrap().grudge)
        .unwrap();
    assert!(!s.reaches("n1", "n3"));
    assert_eq!(s.nft_resources(), 0);
    ssh_like.heal().unwrap();
    assert!(s.reaches("n1", "n3"));

    // A partition left in place is removed by the teardown.
    nemesis.invoke("start-partition", &json!("halves")).unwrap();
    assert!(s.nft_resources() >= 2);
    s.finish();
}

#[test]
fn kill_crashes_a_node_and_start_brings_it_back() {
    let s = setup();
    let mut nemesis = KillNemesis::new(s.db.clone(), s.nodes.clone(), 3);
    let value = nemesis.invoke("kill", &json!("one")).unwrap();
    let killed: Vec<String> = serde_json::from_value(value["killed"].clone()).unwrap();
    assert_eq!(killed.len(), 1, "{value}");
    let node = s.nodes.iter().find(|n| n.name == killed[0]).unwrap();
    assert!(!node.remote.is_running(&node.pid_file()).unwrap());
    assert!(s.silent(node));
    assert_eq!(nemesis.killed(), killed.as_slice());

    let value = nemesis.invoke("start", &Value::Null).unwrap();
    assert_eq!(value, json!({ "started": killed }));
    assert!(node.remote.is_running(&node.pid_file()).unwrap());
    assert!(s.answers(node));
    assert!(nemesis.killed().is_empty());
    // Nothing killed: start does nothing.
    assert_eq!(
        nemesis.invoke("start", &Value::Null).unwrap(),
        json!({ "started": [] })
    );
    s.finish();
}

#[test]
fn paused_nodes_do_not_answer_until_resumed() {
    let s = setup();
    let mut nemesis = PauseNemesis::new(s.db.clone(), s.nodes.clone(), 5).unwrap();
    let value = nemesis.invoke("pause", &json!(["n2"])).unwrap();
    assert_eq!(value, json!({ "paused": ["n2"] }));
    assert!(s.silent(&s.nodes[1]));
    assert!(s.answers(&s.nodes[0]));
    let value = nemesis.invoke("resume", &Value::Null).unwrap();
    assert_eq!(value, json!({ "resumed": ["n2"] }));
    assert!(s.answers(&s.nodes[1]));
    s.finish();
}

#[test]
fn a_composed_nemesis_heals_partition_kill_and_pause_at_once() {
    let s = setup();
    let net = Arc::new(NftPartitions::new(&s.cluster.net_hosts()));
    let mut nemesis = Compose::new(vec![
        Box::new(PartitionNemesis::new(net, &s.names(), 11)),
        Box::new(KillNemesis::new(s.db.clone(), s.nodes.clone(), 11)),
        Box::new(PauseNemesis::new(s.db.clone(), s.nodes.clone(), 11).unwrap()),
    ])
    .unwrap();
    nemesis
        .invoke("start-partition", &json!("isolate-one"))
        .unwrap();
    nemesis.invoke("kill", &json!(["n1"])).unwrap();
    nemesis.invoke("pause", &json!(["n2"])).unwrap();
    assert!(s.silent(&s.nodes[0]) && s.silent(&s.nodes[1]));
    assert!(s.nft_resources() >= 2);

    nemesis.heal().unwrap();
    for node in &s.nodes {
        assert!(
            node.remote.is_running(&node.pid_file()).unwrap(),
            "{}",
            node.name
        );
        assert!(s.answers(node), "{}", node.name);
        assert_eq!(s.tables(&node.name).trim(), "", "{}", node.name);
    }
    assert!(s.reaches("n1", "n2") && s.reaches("n2", "n3") && s.reaches("n3", "n1"));
    assert_eq!(s.nft_resources(), 0);
    nemesis.heal().unwrap();
    s.finish();
}
