//! An sshd in every namespace of a [`NetnsCluster`]: machines reached over SSH, as a
//! user's hosts file would name them.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::ssh::{SshConfig, connect_all};
use faultline_clusters::{Cmd, DaemonSpec, NetnsCluster, Node, Remote, Signal};

use super::{await_listening, await_sessions_closed, keygen, known_hosts_line, sshd_config};

/// The namespaces of a cluster with an sshd in each (its files in each host's `sshd/`),
/// the key `DIR/id` that root logs in with, `DIR/known_hosts` and `DIR/hosts.toml`
/// naming every host. Dropping it lets the SSH sessions end, stops each sshd with
/// SIGTERM, then the cluster's own `Drop` removes the namespaces and every process left
/// in them.
pub struct SshdCluster {
    cluster: Option<NetnsCluster>,
    /// Each sshd's pid and the pid file its daemon was started with.
    sshd: Vec<(u32, PathBuf)>,
    dir: PathBuf,
}

impl SshdCluster {
    /// Starts sshd in every namespace of `cluster` and writes the files above into `dir`
    /// (`connect_timeout_secs = 2`, `retries`); returns once every sshd listens.
    pub fn start(cluster: NetnsCluster, dir: &Path, retries: u32) -> SshdCluster {
        keygen(&dir.join("id"));
        let mut rig = SshdCluster {
            cluster: Some(cluster),
            sshd: Vec::new(),
            dir: dir.to_path_buf(),
        };
        let mut known_hosts = String::new();
        let mut text = format!(
            "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 2\nretries = {retries}\n"
        );
        for host in rig.cluster().hosts().to_vec() {
            let addr = host.addr().to_string();
            let sshd_dir = host.dir().join("sshd");
            let config = sshd_config(&sshd_dir, &addr, 22, &dir.join("id.pub"));
            let pid_file = sshd_dir.join("daemon.pid");
            let spec = DaemonSpec::new(
                Cmd::new("/usr/sbin/sshd")
                    .args(["-D", "-e", "-f"])
                    .arg(config.to_string_lossy()),
                &pid_file,
                sshd_dir.join("sshd.log"),
            );
            let pid = host
                .start_daemon(&spec)
                .unwrap_or_else(|e| panic!("sshd on {}: {e}", host.host()));
            rig.sshd.push((pid, pid_file));
            known_hosts.push_str(&known_hosts_line(&sshd_dir, &addr));
            text.push_str(&format!(
                "[[host]]\nname = \"{}\"\naddress = \"{addr}\"\nuser = \"root\"\nkey = \"id\"\n",
                host.host()
            ));
        }
        for host in rig.cluster().hosts() {
            let sock = SocketAddr::from((host.addr(), 22));
            await_listening(sock, &host.dir().join("sshd/sshd.log"));
        }
        fs::write(dir.join("known_hosts"), known_hosts).expect("known_hosts");
        fs::write(rig.hosts_file(), text).expect("hosts.toml");
        rig
    }

    /// The cluster.
    pub fn cluster(&self) -> &NetnsCluster {
        self.cluster.as_ref().expect("the cluster, until teardown")
    }

    /// The hosts file naming every host (`n1`, `n2`, …) with its address.
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.join("hosts.toml")
    }

    /// The hosts as nodes reached over SSH (connected with the hosts file), with
    /// directories `HOSTDIR/node_dir`.
    pub fn ssh_nodes(&self, node_dir: &str) -> Vec<Node> {
        let config = SshConfig::load(&self.hosts_file()).expect("the hosts file loads");
        connect_all(&config)
            .expect("every host connects over SSH")
            .into_iter()
            .zip(self.cluster().hosts())
            .enumerate()
            .map(|(i, (remote, h))| Node {
                id: (i + 1) as u32,
                name: h.host().to_string(),
                addr: h.addr().to_string(),
                dir: h.dir().join(node_dir),
                remote: Arc::new(remote) as Arc<dyn Remote>,
            })
            .collect()
    }

    /// Stops every sshd (the SSH sessions must be closed first) and removes the
    /// namespaces; the run id.
    pub fn teardown(mut self) -> String {
        let run = self.cluster().run_id().to_string();
        self.stop_sshd();
        if let Some(cluster) = self.cluster.take() {
            cluster.teardown().expect("the cluster tears down");
        }
        run
    }

    /// Waits until each sshd's sessions have ended, then stops it with SIGTERM.
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
        self.sshd.clear();
    }
}

impl Drop for SshdCluster {
    fn drop(&mut self) {
        self.stop_sshd();
        // The cluster's own Drop kills what is left in the namespaces and removes them.
        self.cluster.take();
    }
}
