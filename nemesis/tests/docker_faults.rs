//! [`DockerNet`] against a real Docker engine: three `faultline-kv` containers, a
//! partition and a one-way cut applied by grudge, then healed; a partition left in place
//! goes with the containers. Skipped when there is no `docker` CLI.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use faultline_clusters::cleanup::{Registry, Resource};
use faultline_clusters::db::setup_all;
use faultline_clusters::docker::{DockerCluster, DockerError, build_image, check_prerequisites};
use faultline_clusters::{Cmd, KvDb, Node};
use faultline_nemesis::{DockerNet, Net, isolate, one_way};

#[path = "../../testsupport/kv_binary.rs"]
mod kv_binary;
use kv_binary::kv_binary;

/// Whether `from` opens a TCP connection to `to`'s peer port within 1 s (busybox `nc`
/// inside the container).
fn connects(from: &Node, to: &Node) -> bool {
    let cmd = Cmd::new("nc")
        .args(["-w", "1", &to.addr, &KvDb::PEER_PORT.to_string()])
        .timeout(Duration::from_secs(5));
    from.remote.run(&cmd).is_ok_and(|out| out.success())
}

fn tables(registry: &Registry) -> usize {
    registry
        .resources()
        .iter()
        .filter(|r| matches!(r, Resource::NftTable { .. }))
        .count()
}

#[test]
fn docker_net_applies_grudges_and_heals() {
    match check_prerequisites() {
        Err(DockerError::NoCli) => {
            eprintln!("skipped: no docker CLI on this machine");
            return;
        }
        other => other.unwrap(),
    }
    let image = build_image(&[&kv_binary()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("nemd{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let mut cluster = DockerCluster::start(registry.clone(), &image, &["n1", "n2", "n3"]).unwrap();
    let label = cluster.run().to_string();
    let nodes = cluster.nodes();
    let db = KvDb::new(Path::new("/usr/local/bin/faultline-kv"), &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    let net = DockerNet::new(&cluster).unwrap();
    let names = ["n1", "n2", "n3"];

    net.drop(&isolate(&names, "n1").unwrap().grudge).unwrap();
    assert_eq!(tables(&registry), 3);
    assert!(!connects(&nodes[0], &nodes[1]) && !connects(&nodes[2], &nodes[0]));
    assert!(connects(&nodes[1], &nodes[2]));

    // Replaced by a one-way cut: only n2 drops (from n1); n1 and n3 have no table.
    net.drop(&one_way(&names, &["n1"], &["n2"]).unwrap().grudge)
        .unwrap();
    assert_eq!(tables(&registry), 1);
    assert!(connects(&nodes[2], &nodes[0]) && connects(&nodes[0], &nodes[2]));
    assert!(!connects(&nodes[0], &nodes[1]));

    net.heal().unwrap();
    net.heal().unwrap();
    assert_eq!(tables(&registry), 0);
    assert!(connects(&nodes[0], &nodes[1]) && connects(&nodes[1], &nodes[0]));

    // A partition left in place goes with the containers.
    net.drop(&isolate(&names, "n3").unwrap().grudge).unwrap();
    cluster.teardown().unwrap();
    registry.teardown().unwrap();
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=faultline.run={label}"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    // The image is a cache shared between runs; remove this one if nothing uses it.
    let _ = Command::new("docker")
        .args(["image", "rm", &image])
        .output();
}
