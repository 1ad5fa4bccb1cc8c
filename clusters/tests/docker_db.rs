//! The databases on the Docker backend, against a real Docker engine: five
//! `faultline-kv` nodes serving (timed), a three-node etcd cluster (the machine's
//! `/usr/bin/etcd`, Debian `etcd-server`, in the image), and `clean` after a SIGKILLed
//! controller. Clients connect from the controller to the containers' addresses.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::cleanup::Registry;
use faultline_clusters::db::{setup_all, teardown_all};
use faultline_clusters::docker::{DockerCluster, RUN_LABEL, build_image};
use faultline_clusters::{Db, EtcdDb, KvDb, clean};
use faultline_testsupport::{Need, available, kv_binary};
use serde_json::json;

use common::{ChildController, assert_docker_run_gone, docker_lines, kv_txn};

/// Where the image puts the node binaries.
const IMAGE_BIN: &str = "/usr/local/bin";

fn kv_image() -> String {
    build_image(&[&kv_binary()]).unwrap()
}

#[test]
fn five_kv_nodes_on_docker_serve() {
    if !available(Need::Docker) {
        return;
    }
    let image = kv_image();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("dkv{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let start = Instant::now();
    let mut cluster =
        DockerCluster::start(registry.clone(), &image, &["n1", "n2", "n3", "n4", "n5"]).unwrap();
    let hosts_up = start.elapsed();
    let nodes = cluster.nodes();
    let binary = Path::new(IMAGE_BIN).join("faultline-kv");
    let db = KvDb::new(binary, &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    let serving = start.elapsed();

    kv_txn(&db, &nodes, json!([["w", "x", 7]]));
    let resp = kv_txn(&db, &nodes, json!([["r", "x", null]]));
    assert_eq!(resp["txn"], json!([["r", "x", 7]]));
    let ready = start.elapsed();
    println!(
        "5 faultline-kv nodes on Docker: containers {hosts_up:?}, all serving {serving:?}, write+read {ready:?}"
    );
    assert!(!db.primaries().unwrap().primaries(&nodes).is_empty());

    let label = cluster.run().to_string();
    cluster.teardown().unwrap();
    assert_docker_run_gone(&label);
    assert!(registry.resources().is_empty());
}

#[test]
fn three_etcd_nodes_on_docker_answer_a_write_and_a_read() {
    if !available(Need::Docker) {
        return;
    }
    let etcd = Path::new("/usr/bin/etcd");
    assert!(
        etcd.exists(),
        "/usr/bin/etcd is missing: apt-get install etcd-server"
    );
    let image = build_image(&[etcd]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("detcd{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let mut cluster = DockerCluster::start(registry, &image, &["n1", "n2", "n3"]).unwrap();
    let nodes = cluster.nodes();
    let db = EtcdDb::new(&nodes);
    setup_all(&db, &nodes, Duration::from_secs(20)).unwrap();
    common::etcd_write_then_read_elsewhere(&db, &nodes);
    teardown_all(&db, &nodes).unwrap();

    let label = cluster.run().to_string();
    cluster.teardown().unwrap();
    assert_docker_run_gone(&label);
}

/// The controller that `clean_removes_the_containers_a_sigkilled_controller_left` kills:
/// runs only when that test starts it.
#[test]
#[ignore = "a helper process for clean_removes_the_containers_a_sigkilled_controller_left"]
fn docker_child_controller() {
    let Some(dir) = std::env::var_os("FAULTLINE_TEST_DOCKER_CHILD_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let image = kv_image();
    let run = format!("dkill{}", std::process::id());
    let registry = Arc::new(Registry::create(&dir, &run).unwrap());
    let cluster = DockerCluster::start(registry, &image, &["n1", "n2"]).unwrap();
    let nodes = cluster.nodes();
    let db = KvDb::new(Path::new(IMAGE_BIN).join("faultline-kv"), &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    std::fs::write(dir.join("run-id"), cluster.run()).unwrap();
    thread::sleep(Duration::from_secs(60));
}

#[test]
fn clean_removes_the_containers_a_sigkilled_controller_left() {
    if !available(Need::Docker) {
        return;
    }
    kv_image(); // built here, so the child's wait does not include a build
    let dir = tempfile::tempdir().unwrap();
    let mut child = ChildController::spawn(
        "docker_child_controller",
        "FAULTLINE_TEST_DOCKER_CHILD_DIR",
        dir.path(),
    );
    let run = child.await_marker("run-id", Duration::from_secs(60));
    child.sigkill();
    let label = format!("label={RUN_LABEL}={run}");
    let running = docker_lines(&["ps", "-q", "--filter", &label]);
    assert_eq!(running.lines().count(), 2, "the killed run's containers");
    assert_ne!(
        docker_lines(&["network", "ls", "-q", "--filter", &label]),
        ""
    );
    let report = clean(dir.path()).unwrap();
    assert_eq!((report.cleaned.len(), report.skipped.len()), (1, 0));
    assert_eq!(report.removed, 3, "two containers and the network");
    assert_docker_run_gone(&run);
}
