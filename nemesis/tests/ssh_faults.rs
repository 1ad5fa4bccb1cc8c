//! [`SshNet`] over real SSH: three namespaces of a [`NetnsCluster`], an `sshd` in each
//! (see `shared/notes/linux-faults.md`, "SSH test hosts on one machine"), [`SshHost`]s
//! connected with a hosts file and a known_hosts file; a partition is loaded with nft
//! over SSH and healed. Needs root, iproute2, nftables, ssh-keygen and /usr/sbin/sshd;
//! skipped without sshd. Everything is removed by `Drop` even when the test fails.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::ssh::{SshConfig, connect_all};
use faultline_clusters::{Cmd, DaemonSpec, NetnsCluster, NetnsHost, Node, Remote, Signal};
use faultline_nemesis::{Net, SshNet, isolate};

fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes an ed25519 key pair without a passphrase: `path` and `path.pub`.
fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "faultline-test",
            "-f",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Prepares an sshd in `dir` listening on `addr`, accepting `client_pub`; its config.
fn sshd_config(dir: &Path, addr: &str, client_pub: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("host_key"));
    fs::copy(client_pub, dir.join("authorized_keys")).unwrap();
    let config = format!(
        "Port 22\nListenAddress {addr}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
        dir.join("host_key").display(),
        dir.join("sshd.pid").display(),
        dir.join("authorized_keys").display()
    );
    let path = dir.join("sshd_config");
    fs::write(&path, config).unwrap();
    fs::create_dir_all("/run/sshd").unwrap();
    fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether some process has `pid` as its parent.
fn has_children(pid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
                .is_some_and(|ppid| ppid == pid.to_string())
        })
    })
}

/// The namespaces with an sshd in each; `Drop` stops the sshds (after their sessions
/// end), then the cluster's own `Drop` removes the rest.
struct Rig {
    cluster: Option<NetnsCluster>,
    sshd: Vec<(u32, PathBuf)>,
}

impl Rig {
    fn cluster(&self) -> &NetnsCluster {
        self.cluster.as_ref().unwrap()
    }

    fn host(&self, name: &str) -> &NetnsHost {
        let hosts = self.cluster().hosts();
        hosts.iter().find(|h| h.host() == name).unwrap()
    }

    /// Whether `from`'s namespace opens a TCP connection to `to`'s sshd within 1 s.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let probe = format!("exec 3<>/dev/tcp/{}/22", self.host(to).addr());
        let cmd = Cmd::new("timeout")
            .args(["1", "bash", "-c", &probe])
            .timeout(Duration::from_secs(5));
        self.host(from).run(&cmd).unwrap().success()
    }

    fn tables(&self, node: &str) -> String {
        let cmd = Cmd::new("nft").args(["list", "tables"]);
        self.host(node).run_ok(&cmd).unwrap().stdout
    }

    fn stop_sshd(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        for ((pid, pid_file), host) in self.sshd.iter().zip(cluster.hosts()) {
            let start = Instant::now();
            while has_children(*pid) && start.elapsed() < Duration::from_secs(3) {
                thread::sleep(Duration::from_millis(20));
            }
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

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop_sshd();
        self.cluster.take();
    }
}

#[test]
fn ssh_net_partitions_over_ssh_and_heals() {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipped: /usr/sbin/sshd missing (apt-get install openssh-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(&d.join("id"));
    let mut rig = Rig {
        cluster: Some(NetnsCluster::create(&d.join("run"), 3).unwrap()),
        sshd: Vec::new(),
    };
    let run = rig.cluster().run_id().to_string();
    let mut known_hosts = String::new();
    let mut text =
        "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 2\nretries = 5\n".to_string();
    for host in rig.cluster().hosts().to_vec() {
        let addr = host.addr().to_string();
        let sshd_dir = host.dir().join("sshd");
        let config = sshd_config(&sshd_dir, &addr, &d.join("id.pub"));
        let pid_file = sshd_dir.join("daemon.pid");
        let spec = DaemonSpec::new(
            Cmd::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(config.to_string_lossy()),
            &pid_file,
            sshd_dir.join("sshd.log"),
        );
        let pid = host.start_daemon(&spec).unwrap();
        rig.sshd.push((pid, pid_file));
        let public = fs::read_to_string(sshd_dir.join("host_key.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        known_hosts.push_str(&format!("{addr} {}\n", key.join(" ")));
        text.push_str(&format!(
            "[[host]]\nname = \"{}\"\naddress = \"{addr}\"\nuser = \"root\"\nkey = \"id\"\n",
            host.host()
        ));
        let sock: SocketAddr = format!("{addr}:22").parse().unwrap();
        let start = Instant::now();
        while TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "sshd on {addr}");
            thread::sleep(Duration::from_millis(20));
        }
    }
    fs::write(d.join("known_hosts"), known_hosts).unwrap();
    fs::write(d.join("hosts.toml"), text).unwrap();

    {
        let config = SshConfig::load(&d.join("hosts.toml")).unwrap();
        let hosts = rig.cluster().hosts();
        let nodes: Vec<Node> = connect_all(&config)
            .unwrap()
            .into_iter()
            .zip(hosts)
            .enumerate()
            .map(|(i, (remote, h))| Node {
                id: (i + 1) as u32,
                name: h.host().to_string(),
                addr: h.addr().to_string(),
                dir: h.dir().join("node"),
                remote: Arc::new(remote) as Arc<dyn Remote>,
            })
            .collect();
        let net = SshNet::new(&nodes, &run).unwrap();

        net.drop(&isolate(&["n1", "n2", "n3"], "n1").unwrap().grudge)
            .unwrap();
        assert!(!rig.reaches("n1", "n2") && !rig.reaches("n3", "n1"));
        assert!(rig.reaches("n2", "n3"));
        for node in ["n1", "n2", "n3"] {
            assert!(rig.tables(node).contains(net.table()), "{node}");
        }
        // The controller's SSH sessions are not cut: heal goes over them.
        net.heal().unwrap();
        net.heal().unwrap();
        for node in ["n1", "n2", "n3"] {
            assert_eq!(rig.tables(node).trim(), "", "{node}");
        }
        assert!(rig.reaches("n1", "n2") && rig.reaches("n3", "n1"));
        // The SSH sessions close here, before sshd stops.
    }
    rig.stop_sshd();
    let cluster = rig.cluster.take().unwrap();
    cluster.teardown().unwrap();
    let netns = sh(&["ip", "netns", "list"]);
    assert!(!netns.contains(&run), "namespaces left: {netns}");
    let sshd = sh(&["pgrep", "-af", "sshd"]);
    assert!(!sshd.contains(&*d.to_string_lossy()), "sshd left: {sshd}");
}
