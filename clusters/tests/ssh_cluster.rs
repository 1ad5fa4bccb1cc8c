//! Five `faultline-kv` nodes deployed over SSH: a [`NetnsCluster`] of five namespaces,
//! an `sshd` in each (see `shared/notes/linux-faults.md`, "SSH test hosts on one
//! machine"), a hosts file and a known_hosts file, [`SshHost`]s, and [`KvDb`] uploading
//! its binary over SFTP. Needs root, iproute2, nftables, ssh-keygen, /usr/sbin/sshd
//! (Debian `openssh-server`) and the `faultline-kv` release binary (built if missing).
//! Everything (sshd, the nodes, the namespaces) is removed by `Drop` even when the test
//! fails.

mod common;

use std::time::{Duration, Instant};

use faultline_clusters::db::{setup_all, teardown_all};
use faultline_clusters::ssh::on_all;
use faultline_clusters::{Db, KvDb, NetnsCluster};
use faultline_testsupport::sshd::SshdCluster;
use faultline_testsupport::{Need, assert_netns_run_gone, available, kv_binary, sh};
use serde_json::json;

use common::kv_txn;

#[test]
fn five_kv_nodes_deployed_over_ssh_serve() {
    if !available(Need::Sshd) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let binary = kv_binary();

    // The hosts file and the known_hosts file are written as a user would write them.
    let start = Instant::now();
    let rig = SshdCluster::start(NetnsCluster::create(&d.join("run"), 5).unwrap(), d, 3);
    let sshd_up = start.elapsed();

    let deploy = Instant::now();
    let nodes = rig.ssh_nodes("kv");
    let connected = deploy.elapsed();
    // The default: the binary goes to each node's directory over SFTP.
    let db = KvDb::new(&binary, &nodes).upload(true);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    let serving = deploy.elapsed();

    kv_txn(&db, &nodes, json!([["w", "x", 7]]));
    let resp = kv_txn(&db, &nodes, json!([["r", "x", null]]));
    assert_eq!(resp["txn"], json!([["r", "x", 7]]));
    let ready = deploy.elapsed();
    println!(
        "5 faultline-kv nodes over SSH: namespaces+sshd {sshd_up:?}; from connecting: \
         connected {connected:?}, all serving {serving:?}, write+read {ready:?}"
    );
    assert!(nodes.iter().all(|n| n.dir.join("faultline-kv").exists()));

    // Again without the upload: every node killed, then started over SSH.
    on_all(&nodes, |n| db.kill(n).unwrap());
    let restart = Instant::now();
    on_all(&nodes, |n| db.start(n).unwrap());
    on_all(&nodes, |n| {
        db.await_ready(n, Duration::from_secs(10)).unwrap()
    });
    let restarted = restart.elapsed();
    let resp = kv_txn(&db, &nodes, json!([["r", "x", null]]));
    assert_eq!(resp["txn"], json!([["r", "x", 7]]));
    println!(
        "restarted (no upload): all serving {restarted:?}, read {:?}",
        restart.elapsed()
    );
    let kv = sh(&["pgrep", "-f", &d.join("run").to_string_lossy()]);
    assert!(kv.lines().count() >= 10, "sshd and kv processes: {kv}");

    teardown_all(&db, &nodes).unwrap();
    assert!(nodes.iter().all(|n| !n.data_dir().exists()));
    // Close the SSH connections before sshd stops.
    drop(db);
    drop(nodes);
    let run = rig.teardown();
    assert_netns_run_gone(&run, d);
    let sshd = sh(&["pgrep", "-af", "sshd"]);
    assert!(!sshd.contains(&*d.to_string_lossy()), "sshd left: {sshd}");
}
