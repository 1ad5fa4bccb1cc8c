//! Five `faultline-kv` nodes deployed over SSH: a [`NetnsCluster`] of five namespaces,
//! an `sshd` in each (see `shared/notes/linux-faults.md`, "SSH test hosts on one
//! machine"), a hosts file and a known_hosts file, [`SshHost`]s, and [`KvDb`] uploading
//! its binary over SFTP. Needs root, iproute2, nftables, ssh-keygen, /usr/sbin/sshd
//! (Debian `openssh-server`) and the `faultline-kv` release binary (built if missing).
//! Everything (sshd, the nodes, the namespaces) is removed by `Drop` even when the test
//! fails.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::db::{setup_all, teardown_all};
use faultline_clusters::ssh::{SshConfig, connect_all, on_all};
use faultline_clusters::{Cmd, DaemonSpec, Db, KvDb, NetnsCluster, Node, Remote, Signal};
use serde_json::json;

use common::{
    assert_gone, await_sessions_closed, await_sshd, keygen, known_hosts_line, kv_binary, kv_txn,
    sh, sshd_config,
};

/// The namespaces with an sshd in each. Dropping it lets the SSH sessions end, stops
/// each sshd with SIGTERM, then removes the namespaces and every process left in them.
struct SshdCluster {
    cluster: Option<NetnsCluster>,
    /// Each sshd's pid and the pid file its daemon was started with.
    sshd: Vec<(u32, PathBuf)>,
}

impl SshdCluster {
    fn cluster(&self) -> &NetnsCluster {
        self.cluster.as_ref().unwrap()
    }

    /// Starts sshd in every namespace of `cluster`, accepting `client_pub`; its files go
    /// to each host's `sshd/` directory.
    fn start(cluster: NetnsCluster, client_pub: &Path) -> SshdCluster {
        let mut rig = SshdCluster {
            cluster: Some(cluster),
            sshd: Vec::new(),
        };
        for host in rig.cluster().hosts().to_vec() {
            let dir = host.dir().join("sshd");
            let config = sshd_config(&dir, &host.addr().to_string(), client_pub);
            let pid_file = dir.join("daemon.pid");
            let spec = DaemonSpec::new(
                Cmd::new("/usr/sbin/sshd")
                    .args(["-D", "-e", "-f"])
                    .arg(config.to_string_lossy()),
                &pid_file,
                dir.join("sshd.log"),
            );
            let pid = host.start_daemon(&spec).unwrap();
            rig.sshd.push((pid, pid_file));
        }
        for host in rig.cluster().hosts() {
            await_sshd(&host.addr().to_string(), &host.dir().join("sshd/sshd.log"));
        }
        rig
    }

    /// Stops every sshd and removes the namespaces; the run id.
    fn teardown(mut self) -> String {
        let run = self.cluster().run_id().to_string();
        self.stop_sshd();
        self.cluster.take().unwrap().teardown().unwrap();
        run
    }

    fn stop_sshd(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        for ((pid, pid_file), host) in self.sshd.iter().zip(cluster.hosts()) {
            await_sessions_closed(*pid);
            let _ = host.signal(pid_file, Signal::Term);
            let start = Instant::now();
            while host.is_running(pid_file).unwrap_or(false)
                && start.elapsed() < Duration::from_secs(2)
            {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for SshdCluster {
    fn drop(&mut self) {
        self.stop_sshd();
        // The cluster's own Drop kills what is left in the namespaces and removes them.
        self.cluster.take();
    }
}

#[test]
fn five_kv_nodes_deployed_over_ssh_serve() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipped: /usr/sbin/sshd missing (apt-get install openssh-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let binary = kv_binary();
    keygen(&d.join("id"));

    let start = Instant::now();
    let rig = SshdCluster::start(
        NetnsCluster::create(&d.join("run"), 5).unwrap(),
        &d.join("id.pub"),
    );
    let sshd_up = start.elapsed();

    // The hosts file and the known_hosts file, as a user would write them.
    let hosts = rig.cluster().hosts();
    let mut known_hosts = String::new();
    let mut text =
        "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 2\nretries = 3\n".to_string();
    for h in hosts {
        let addr = h.addr().to_string();
        known_hosts.push_str(&known_hosts_line(&h.dir().join("sshd"), &addr));
        text.push_str(&format!(
            "[[host]]\nname = \"{}\"\naddress = \"{addr}\"\nuser = \"root\"\nkey = \"id\"\n",
            h.host()
        ));
    }
    fs::write(d.join("known_hosts"), known_hosts).unwrap();
    fs::write(d.join("hosts.toml"), text).unwrap();

    let deploy = Instant::now();
    let config = SshConfig::load(&d.join("hosts.toml")).unwrap();
    let ssh = connect_all(&config).unwrap();
    let connected = deploy.elapsed();
    let nodes: Vec<Node> = ssh
        .into_iter()
        .zip(hosts)
        .enumerate()
        .map(|(i, (remote, h))| Node {
            id: (i + 1) as u32,
            name: h.host().to_string(),
            addr: h.addr().to_string(),
            dir: h.dir().join("kv"),
            remote: Arc::new(remote) as Arc<dyn Remote>,
        })
        .collect();
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
    assert_gone(&run, d);
    let sshd = sh(&["pgrep", "-af", "sshd"]);
    assert!(!sshd.contains(&*d.to_string_lossy()), "sshd left: {sshd}");
}
