//! Faults over real SSH: three namespaces of a [`NetnsCluster`], an `sshd` in each
//! (see `shared/notes/linux-faults.md`, "SSH test hosts on one machine"), [`SshHost`]s
//! connected with a hosts file and a known_hosts file. A partition is loaded with nft
//! over SSH and healed; packet loss and delay (the delayer uploaded and started over
//! SSH) take effect and heal; the clocks of faultline-kv nodes started over SSH under
//! libfaketime move and reset. Needs root, iproute2, nftables, ssh-keygen and
//! /usr/sbin/sshd (`faultline_testsupport::available`: skipped without it, a failure
//! under `CI=true`). Everything is removed by `Drop` even when the test fails.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faultline_clusters::db::{
    FAKETIME_LIBS, Primaries, faketime_env, request_line, setup_all, teardown_all,
};
use faultline_clusters::nft::NetHosts;
use faultline_clusters::{Cmd, Db, KvDb, NetnsCluster, NetnsHost, Node, Remote};
use faultline_nemesis::{ClockNemesis, Nemesis, Net, NftPartitions, PacketNemesis, isolate};
use faultline_testsupport::sshd::SshdCluster;
use faultline_testsupport::{Need, available, kv_binary, sh};
use serde_json::{Value, json};

#[path = "support/probe.rs"]
mod probe;
use probe::{connect_ms, connect_script, median};

/// Probes of the rig's namespaces, run there directly (not over SSH).
trait Probe {
    /// The namespace host `name`.
    fn host(&self, name: &str) -> &NetnsHost;
    /// Whether `from`'s namespace opens a TCP connection to `to`'s sshd within 1 s.
    fn reaches(&self, from: &str, to: &str) -> bool;
    /// `nft list tables` on `node`.
    fn tables(&self, node: &str) -> String;
}

impl Probe for SshdCluster {
    fn host(&self, name: &str) -> &NetnsHost {
        let hosts = self.cluster().hosts();
        hosts.iter().find(|h| h.host() == name).unwrap()
    }

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
}

/// Three namespaces with an sshd each, and the hosts file and known_hosts to reach
/// them (in `d`); `None` (skipped) without sshd.
fn start_rig(d: &Path) -> Option<SshdCluster> {
    if !available(Need::Sshd) {
        return None;
    }
    let cluster = NetnsCluster::create(&d.join("run"), 3).unwrap();
    Some(SshdCluster::start(cluster, d, 5))
}

/// The rig's hosts as nodes reached over SSH (directories `HOSTDIR/node`).
fn ssh_nodes(rig: &SshdCluster) -> Vec<Node> {
    rig.ssh_nodes("node")
}

/// Stops the sshds (the SSH sessions must be closed), tears down, checks that nothing
/// is left.
fn finish(rig: SshdCluster, d: &Path) {
    let run = rig.teardown();
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
        let nodes = ssh_nodes(&rig);
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
fn connect_times(rig: &SshdCluster, from: &str, to: &str, count: usize) -> Vec<f64> {
    let script = connect_script(&rig.host(to).addr().to_string(), 22, count);
    let out = rig
        .host(from)
        .run_ok(&Cmd::new("bash").args(["-c", &script]))
        .unwrap()
        .stdout;
    connect_ms(&out)
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
        let nodes = ssh_nodes(&rig);
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
    let cmd = Cmd::new("env")
        .args(
            faketime_env(lib, &file)
                .iter()
                .map(|(key, value)| format!("{key}={value}")),
        )
        .args(["/bin/date", "+%s"]);
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
    if !available(Need::Libfaketime) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(rig) = start_rig(d) else {
        return;
    };
    {
        let nodes = ssh_nodes(&rig);
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
