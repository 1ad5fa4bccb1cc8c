//! The local namespace backend and the databases on it, for real: needs root, iproute2,
//! nftables, etcd (Debian `etcd-server`) and the `faultline-kv` release binary (built if
//! missing, see `faultline_testsupport::kv_binary`). Every cluster is torn down by its
//! `Drop` even when a test fails. Traffic stays on each run's own bridge.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::db::{setup_all, teardown_all};
use faultline_clusters::{Cmd, Db, EtcdDb, KvDb, NetnsCluster, Remote, clean};
use serde_json::json;

use common::{ChildController, kv_txn};
use faultline_testsupport::{assert_netns_run_gone, kv_binary, sh};

#[test]
fn five_kv_nodes_serve_and_reach_only_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let binary = kv_binary();
    let start = Instant::now();
    let cluster = NetnsCluster::create(dir.path(), 5).unwrap();
    let hosts_up = start.elapsed();
    let nodes = cluster.nodes();
    let db = KvDb::new(&binary, &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    let serving = start.elapsed();

    kv_txn(&db, &nodes, json!([["w", "x", 7]]));
    let resp = kv_txn(&db, &nodes, json!([["r", "x", null]]));
    assert_eq!(resp["txn"], json!([["r", "x", 7]]));
    let ready = start.elapsed();
    println!(
        "5 faultline-kv nodes: hosts {hosts_up:?}, all serving {serving:?}, write+read {ready:?}"
    );
    assert!(!db.primaries().unwrap().primaries(&nodes).is_empty());

    // Every node reaches every other node's peer port; the controller reached all.
    for (i, host) in cluster.hosts().iter().enumerate() {
        for other in cluster.hosts().iter().filter(|o| o.addr() != host.addr()) {
            let probe = format!("exec 3<>/dev/tcp/{}/{}", other.addr(), KvDb::PEER_PORT);
            let out = host
                .run(
                    &Cmd::new("bash")
                        .args(["-c", &probe])
                        .timeout(Duration::from_secs(5)),
                )
                .unwrap();
            assert!(
                out.success(),
                "n{} cannot reach {}: {}",
                i + 1,
                other.addr(),
                out.stderr
            );
        }
        // No route off the bridge (a route lookup only: nothing is sent).
        let routes = host.run_ok(&Cmd::new("ip").arg("route")).unwrap().stdout;
        assert!(!routes.contains("default"), "{routes}");
        assert_eq!(routes.lines().count(), 1, "{routes}");
        let out = host
            .run(&Cmd::new("ip").args(["route", "get", "192.0.2.1"]))
            .unwrap();
        assert!(
            !out.success() && out.stderr.contains("unreachable"),
            "{out:?}"
        );
    }
    assert!(cluster.controller_addr().to_string().ends_with(".1"));

    // Pause, resume, kill and restart one node.
    let n5 = &nodes[4];
    let pause = db.pause().unwrap();
    pause.pause(n5).unwrap();
    assert!(db.status(n5).is_err());
    pause.resume(n5).unwrap();
    db.await_ready(n5, Duration::from_secs(5)).unwrap();
    db.kill(n5).unwrap();
    assert!(!n5.remote.is_running(&n5.pid_file()).unwrap());
    db.start(n5).unwrap();
    db.await_ready(n5, Duration::from_secs(5)).unwrap();

    let run = cluster.run_id().to_string();
    cluster.teardown().unwrap();
    assert_netns_run_gone(&run, dir.path());
}

#[test]
fn three_etcd_nodes_answer_a_write_and_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NetnsCluster::create(dir.path(), 3).unwrap();
    let nodes = cluster.nodes();
    let db = EtcdDb::new(&nodes);
    setup_all(&db, &nodes, Duration::from_secs(15)).unwrap();
    common::etcd_write_then_read_elsewhere(&db, &nodes);
    assert!(db.log_files(&nodes[0])[0].exists());
    teardown_all(&db, &nodes).unwrap();
    assert!(nodes.iter().all(|n| !n.data_dir().exists()));

    let run = cluster.run_id().to_string();
    cluster.teardown().unwrap();
    assert_netns_run_gone(&run, dir.path());
}

#[test]
fn clean_removes_what_a_dropped_controller_left() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NetnsCluster::create(dir.path(), 2).unwrap();
    let nodes = cluster.nodes();
    // The default: the binary is uploaded to each node's directory.
    let db = KvDb::new(kv_binary(), &nodes);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    assert!(nodes[0].dir.join("faultline-kv").exists());
    let run = cluster.run_id().to_string();
    // A crash: no teardown.
    std::mem::forget(cluster);
    assert!(sh(&["ip", "netns", "list"]).contains(&run));
    let report = clean(dir.path()).unwrap();
    assert_eq!(report.cleaned.len(), 1);
    assert_netns_run_gone(&run, dir.path());
}

/// The controller that `clean_removes_what_a_sigkilled_controller_left` kills: runs only
/// when that test starts it.
#[test]
#[ignore = "a helper process for clean_removes_what_a_sigkilled_controller_left"]
fn child_controller() {
    let Some(dir) = std::env::var_os("FAULTLINE_TEST_CHILD_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let cluster = NetnsCluster::create(&dir, 2).unwrap();
    let nodes = cluster.nodes();
    let db = KvDb::new(kv_binary(), &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    std::fs::write(dir.join("run-id"), cluster.run_id()).unwrap();
    thread::sleep(Duration::from_secs(60));
}

#[test]
fn clean_removes_what_a_sigkilled_controller_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        ChildController::spawn("child_controller", "FAULTLINE_TEST_CHILD_DIR", dir.path());
    let run = child.await_marker("run-id", Duration::from_secs(30));
    child.sigkill();
    assert!(sh(&["ip", "netns", "list"]).contains(&run));
    assert!(!sh(&["pgrep", "-af", &dir.path().to_string_lossy()]).is_empty());
    let report = clean(dir.path()).unwrap();
    assert_eq!((report.cleaned.len(), report.skipped.len()), (1, 0));
    assert_netns_run_gone(&run, dir.path());
}

#[test]
fn a_node_that_never_answers_is_named_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = NetnsCluster::create(dir.path(), 1).unwrap();
    let nodes = cluster.nodes();
    // `false` exits at once: the wait stops early and points at the log.
    let db = EtcdDb::new(&nodes).program("false");
    let err = setup_all(&db, &nodes, Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("n1: etcd at "), "{err}");
    assert!(
        err.contains("not ready after") && err.contains("node.log"),
        "{err}"
    );
    assert!(!err.contains('\n'));
}
