//! Faults over real SSH: three namespaces of a [`NetnsCluster`], an `sshd` in each
//! (see `shared/notes/linux-faults.md`, "SSH test hosts on one machine"), [`SshHost`]s
//! connected with a hosts file and a known_hosts file. A partition is loaded with nft
//! over SSH and healed; packet loss and delay (the delayer uploaded and started over
//! SSH) take effect and heal; the clocks of faultline-kv nodes started over SSH under
//! libfaketime move and reset. Needs root, iproute2, nftables, ssh-keygen and /usr/sbin/sshd;
//! skipped without sshd. Everything is removed by `Drop` even when the test fails.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faultline_clusters::db::{FAKETIME_LIBS, Primaries, request_line, setup_all, teardown_all};
use faultline_clusters::nft::NetHosts;
use faultline_clusters::ssh::{SshConfig, connect_all};
use faultline_clusters::{
    Cmd, DaemonSpec, Db, KvDb, NetnsCluster, NetnsHost, Node, Remote, Signal,
};
use faultline_nemesis::{ClockNemesis, Nemesis, Net, NftPartitions, PacketNemesis, isolate};
use serde_json::{Value, json};

#[path = "../../testsupport/kv_binary.rs"]
mod kv_binary;
use kv_binary::kv_binary;

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

/// Three namespaces with an sshd each, and the hosts file and known_hosts to reach
/// them (in `d`); `None` (skipped) without sshd.
fn start_rig(d: &Path) -> Option<Rig> {
    if !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("skipped: /usr/sbin/sshd missing (apt-get install openssh-server)");
        return None;
    }
    keygen(&d.join("id"));
    let mut rig = Rig {
        cluster: Some(NetnsCluster::create(&d.join("run"), 3).unwrap()),
        sshd: Vec::new(),
    };
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
    Some(rig)
}

/// The rig's hosts as nodes reached over SSH (directories `HOSTDIR/node`).
fn ssh_nodes(rig: &Rig, d: &Path) -> Vec<Node> {
    let config = SshConfig::load(&d.join("hosts.toml")).unwrap();
    let hosts = rig.cluster().hosts();
    connect_all(&config)
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
        .collect()
}

/// Stops the sshds (the SSH sessions must be closed), tears down, checks that nothing
/// is left.
fn finish(mut rig: Rig, d: &Path) {
    let run = rig.cluster().run_id().to_string();
    rig.stop_sshd();
    let cluster = rig.cluster.take().unwrap();
    cluster.teardown().unwrap();
    let netns = sh(&["ip", "netns", "list"]);
    assert!(!netns.contains(&run), "namespaces left: {netns}");
    let left = sh(&["pgrep", "-af", &d.to_string_lossy()]);
    assert!(left.trim().is_empty(), "processes left: {left}");
}

#[test]
fn ssh_net_partitions_over_ssh_and_heals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(rig) = start_rig(d) else {
        return;
    };
    let run = rig.cluster().run_id().to_string();
    {
        let nodes = ssh_nodes(&rig, d);
        let net = NftPartitions::new(&NetHosts::remote(&nodes, &run).unwrap());

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
    finish(rig, d);
}

/// `count` TCP connect times (ms) from `from`'s namespace to `to`'s sshd.
fn connect_times(rig: &Rig, from: &str, to: &str, count: usize) -> Vec<f64> {
    let script = format!(
        "for i in $(seq {count}); do s=$EPOCHREALTIME; exec 3<>/dev/tcp/{}/22 || exit 1; \
         e=$EPOCHREALTIME; exec 3>&-; echo \"$s $e\"; done",
        rig.host(to).addr()
    );
    let out = rig
        .host(from)
        .run_ok(&Cmd::new("bash").args(["-c", &script]))
        .unwrap()
        .stdout;
    out.lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (b.parse::<f64>().unwrap() - a.parse::<f64>().unwrap()) * 1000.0
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn packet_loss_and_delay_over_ssh_and_heal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(rig) = start_rig(d) else {
        return;
    };
    let run = rig.cluster().run_id().to_string();
    {
        let nodes = ssh_nodes(&rig, d);
        let mut nemesis = PacketNemesis::new(&NetHosts::remote(&nodes, &run).unwrap(), 4)
            .delayer(env!("CARGO_BIN_EXE_faultline-delayer"));

        // Loss: n1 drops everything from its peers; the SSH sessions (from the
        // controller) are untouched.
        let value = nemesis
            .invoke("start-packet", &json!({"loss": 100, "nodes": ["n1"]}))
            .unwrap();
        assert_eq!(value, json!({"loss": 100, "nodes": ["n1"]}));
        assert!(!rig.reaches("n2", "n1") && rig.reaches("n2", "n3"));
        assert!(rig.tables("n1").contains(nemesis.table()));

        // Replaced by a delay: the delayer is uploaded to n1 and started over SSH.
        let base = median(connect_times(&rig, "n2", "n3", 7));
        let value = nemesis
            .invoke("start-packet", &json!({"delay_ms": 80, "nodes": ["n1"]}))
            .unwrap();
        assert_eq!(value["delay_ms"], json!(80));
        assert!(!rig.tables("n1").contains(nemesis.table()));
        let delayed = connect_times(&rig, "n2", "n1", 7);
        eprintln!("over SSH: baseline {base:.1} ms, 80 ms delay: {delayed:?}");
        let added = median(delayed.clone()) - base;
        assert!((75.0..140.0).contains(&added), "{delayed:?}");
        assert!(median(connect_times(&rig, "n3", "n2", 5)) < base + 20.0);
        assert!(nodes[0].dir.join("faultline-delayer").is_file());
        let pid_file = nodes[0].dir.join("delayer.pid");
        assert!(nodes[0].remote.is_running(&pid_file).unwrap());

        // No bandwidth limits over SSH (the interface is unknown).
        let rate = json!({"rate": "1mbit"});
        assert!(nemesis.invoke("start-packet", &rate).is_err());

        nemesis.invoke("stop-packet", &Value::Null).unwrap();
        assert!(!nodes[0].remote.is_running(&pid_file).unwrap());
        assert!(median(connect_times(&rig, "n2", "n1", 7)) < base + 20.0);
        assert!(rig.reaches("n2", "n1"));
        for node in ["n1", "n2", "n3"] {
            // (iptables leaves its empty `ip filter` table.)
            assert!(!rig.tables(node).contains(nemesis.table()), "{node}");
            let rules = rig
                .host(node)
                .run_ok(&Cmd::new("iptables").arg("-S"))
                .unwrap()
                .stdout;
            assert!(!rules.contains("FAULTLINE_DELAY"), "{node}: {rules}");
        }
        // Faults left in place are removed by heal.
        nemesis
            .invoke("start-packet", &json!({"delay_ms": 10, "loss": 5}))
            .unwrap();
        nemesis.heal().unwrap();
        for (i, node) in nodes.iter().enumerate() {
            let pid_file = node.dir.join("delayer.pid");
            assert!(!node.remote.is_running(&pid_file).unwrap());
            let tables = rig.tables(&format!("n{}", i + 1));
            assert!(!tables.contains(nemesis.table()), "{tables}");
        }
    }
    finish(rig, d);
}

/// What a dynamically linked `/bin/date` reads under `node`'s clock file, over SSH.
fn faked_now(node: &Node) -> i64 {
    let lib = FAKETIME_LIBS
        .iter()
        .find(|p| Path::new(p).is_file())
        .expect("libfaketime is installed");
    let file = node.dir.join("faketime");
    let cmd = Cmd::new("env").args([
        format!("LD_PRELOAD={lib}"),
        format!("FAKETIME_TIMESTAMP_FILE={}", file.display()),
        "FAKETIME_NO_CACHE=1".into(),
        "/bin/date".into(),
        "+%s".into(),
    ]);
    node.remote
        .run_ok(&cmd)
        .unwrap()
        .stdout
        .trim()
        .parse()
        .unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Writes `value` to key `x` through the leader, retrying for up to 20 s.
fn write(db: &KvDb, nodes: &[Node], value: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(leader) = Primaries::primaries(db, nodes).first() {
            let node = nodes.iter().find(|n| &n.name == leader).unwrap();
            let line = format!(r#"{{"id":1,"txn":[["w","x",{value}]]}}"#);
            match request_line(&db.client_addr(node), &line, Duration::from_secs(5)) {
                Ok(resp) if resp.contains(r#""type":"ok""#) => return,
                Ok(resp) => last = resp,
                Err(e) => last = e,
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("no ok for x={value} in 20 s: {last}");
}

#[test]
fn clock_faults_over_ssh() {
    if !FAKETIME_LIBS.iter().any(|p| Path::new(p).is_file()) {
        eprintln!("skipped: libfaketime missing (apt-get install libfaketime)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(rig) = start_rig(d) else {
        return;
    };
    {
        let nodes = ssh_nodes(&rig, d);
        // The kv binary is uploaded over SSH and started under libfaketime there.
        let db = Arc::new(KvDb::new(kv_binary(), &nodes).faketime(true));
        setup_all(&*db, &nodes, Duration::from_secs(30)).unwrap();
        for node in &nodes {
            let pid = fs::read_to_string(node.pid_file()).unwrap();
            let maps = fs::read_to_string(format!("/proc/{}/maps", pid.trim())).unwrap();
            assert!(maps.contains("libfaketime"), "{}", node.name);
        }
        write(&db, &nodes, 1);
        let mut nemesis = ClockNemesis::new(db.clone(), nodes.clone(), 3).unwrap();
        let value = nemesis
            .invoke("bump-clock", &json!({"node": "n2", "delta_ms": -40_000}))
            .unwrap();
        assert_eq!(
            value,
            json!({"node": "n2", "delta_ms": -40000, "offset_ms": -40000})
        );
        let skew = faked_now(&nodes[1]) - now();
        assert!((-41..=-39).contains(&skew), "n2 is {skew} s off");
        assert!((faked_now(&nodes[0]) - now()).abs() <= 1);
        write(&db, &nodes, 2);
        // (Each flip is a command over SSH: a few flips a second.)
        let value = nemesis
            .invoke("strobe-clock", &json!({"node": "n3", "duration_ms": 2000}))
            .unwrap();
        assert!(value["flips"].as_u64().unwrap() >= 2, "{value}");
        let value = nemesis.invoke("reset-clock", &Value::Null).unwrap();
        assert_eq!(value, json!({"reset": ["n2"]}));
        for node in &nodes {
            assert!((faked_now(node) - now()).abs() <= 1, "{}", node.name);
        }
        write(&db, &nodes, 3);
        nemesis.heal().unwrap();
        teardown_all(&*db, &nodes).unwrap();
    }
    finish(rig, d);
}
