//! Network faults and pauses on the Docker backend, against a real Docker engine: three
//! `faultline-kv` nodes, n1 cut from n2 and n3 with nft tables applied from the host in
//! each container's network namespace, then healed; n3 frozen with `docker pause` and
//! thawed. Skipped when there is no `docker` CLI.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_clusters::cleanup::{Registry, Resource};
use faultline_clusters::db::{request_line, setup_all, teardown_all};
use faultline_clusters::docker::{
    CONTAINER_NETNS, DockerCluster, DockerNet, build_image, container_pid,
};
use faultline_clusters::{Cmd, Signal};
use faultline_clusters::{Db, KvDb, Node};
use serde_json::json;

use common::{assert_docker_run_gone, kv_txn};
use faultline_testsupport::{Need, available, kv_binary};

/// Whether `from` opens a TCP connection to `addr:port` within 1 s (busybox `nc`
/// inside the container).
fn connects(from: &Node, addr: &str, port: u16) -> bool {
    let cmd = Cmd::new("nc")
        .args(["-w", "1", addr, &port.to_string()])
        .timeout(Duration::from_secs(5));
    match from.remote.run(&cmd) {
        Ok(out) => out.success(),
        Err(_) => false,
    }
}

/// Whether the node answers a read on its client port within `timeout` (any answer,
/// `ok` or a redirect, counts).
fn answers(db: &KvDb, node: &Node, timeout: Duration) -> bool {
    let req = json!({"id": 1, "txn": [["r", "x", null]]}).to_string();
    request_line(&db.client_addr(node), &req, timeout).is_ok()
}

fn ip(node: &Node) -> IpAddr {
    node.addr.parse().unwrap()
}

fn has_table(net: &DockerNet) -> bool {
    let want = format!("inet {}", net.table());
    net.tables().unwrap().contains(&want)
}

#[test]
fn partition_heal_and_pause_on_docker() {
    if !available(Need::Docker) {
        return;
    }
    let image = build_image(&[&kv_binary()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("dnet{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let mut cluster = DockerCluster::start(registry.clone(), &image, &["n1", "n2", "n3"]).unwrap();
    let label = cluster.run().to_string();
    let nodes = cluster.nodes();
    let nets = cluster.nets();
    let db = KvDb::new(Path::new("/usr/local/bin/faultline-kv"), &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    kv_txn(&db, &nodes, json!([["w", "x", 1]]));
    let peer = KvDb::PEER_PORT;
    assert!(connects(&nodes[0], &nodes[1].addr, peer), "n1→n2 before");

    // n1 | n2 n3, both directions.
    let start = Instant::now();
    nets[0].drop_from(&[ip(&nodes[1]), ip(&nodes[2])]).unwrap();
    nets[1].drop_from(&[ip(&nodes[0])]).unwrap();
    nets[2].drop_from(&[ip(&nodes[0])]).unwrap();
    let split = start.elapsed();
    let recorded = registry
        .resources()
        .into_iter()
        .filter(|r| {
            matches!(r, Resource::NftTable { netns: Some(ns), .. } if ns.starts_with(CONTAINER_NETNS))
        })
        .count();
    assert_eq!(recorded, 3, "the three tables are in the state file");
    assert!(nets.iter().all(has_table));
    for (from, to) in [(0, 1), (0, 2), (1, 0), (2, 0)] {
        for port in [peer, KvDb::CLIENT_PORT] {
            assert!(
                !connects(&nodes[from], &nodes[to].addr, port),
                "n{}→n{}:{port} during the partition",
                from + 1,
                to + 1
            );
        }
    }
    assert!(connects(&nodes[1], &nodes[2].addr, peer), "n2→n3 stays");
    for node in &nodes {
        assert!(
            answers(&db, node, Duration::from_secs(2)),
            "the controller reaches {}",
            node.name
        );
    }
    // The majority side still commits.
    kv_txn(&db, &nodes[1..], json!([["w", "x", 2]]));

    let start = Instant::now();
    for net in &nets {
        net.heal().unwrap();
    }
    let heal = start.elapsed();
    assert!(!nets.iter().any(has_table), "heal deletes the tables");
    for (from, to) in [(0, 1), (0, 2), (1, 0), (2, 0)] {
        assert!(
            connects(&nodes[from], &nodes[to].addr, peer),
            "n{}→n{} after heal",
            from + 1,
            to + 1
        );
    }
    let resp = kv_txn(&db, &nodes, json!([["r", "x", null]]));
    assert_eq!(resp["txn"], json!([["r", "x", 2]]));

    // Pause n3: its client port stops answering, then resumes.
    let n3 = &cluster.hosts()[2];
    assert!(answers(&db, &nodes[2], Duration::from_secs(2)));
    n3.pause().unwrap();
    assert!(
        !answers(&db, &nodes[2], Duration::from_secs(1)),
        "a paused n3 must not answer"
    );
    n3.unpause().unwrap();
    assert!(
        answers(&db, &nodes[2], Duration::from_secs(5)),
        "n3 answers after unpause"
    );
    println!("3 kv nodes on Docker: partition applied in {split:?}, healed in {heal:?}");

    // A table left in place is removed with the registry (as by `clean`).
    nets[1].drop_from(&[ip(&nodes[0])]).unwrap();
    assert!(has_table(&nets[1]));
    let table = registry.resources().pop().unwrap();
    faultline_clusters::cleanup::remove(&table).unwrap();
    assert!(!has_table(&nets[1]), "remove deletes a container's table");
    nets[1].heal().unwrap();

    teardown_all(&db, &nodes).unwrap();

    // `docker kill --signal KILL` stops the container; healing it then is a no-op.
    setup_all(&db, &nodes[2..], Duration::from_secs(10)).unwrap();
    cluster.hosts()[2].kill(Signal::Kill).unwrap();
    assert_eq!(container_pid(cluster.hosts()[2].container()).unwrap(), None);
    assert!(!answers(&db, &nodes[2], Duration::from_secs(1)));
    nets[2].heal().unwrap();

    cluster.teardown().unwrap();
    assert_docker_run_gone(&label);
    assert!(
        registry.resources().is_empty(),
        "{:?}",
        registry.resources()
    );
}
