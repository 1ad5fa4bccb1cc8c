//! Disk faults on a real local cluster (needs root, iproute2 and the `faultline-kv`
//! release binary): a torn log tail the node recovers from, and corruption in the middle
//! of its log that it refuses to start on.

use std::time::Duration;

use faultline_clusters::db::Primaries;
use faultline_clusters::{Cmd, KvDb};
use faultline_nemesis::{DiskNemesis, Nemesis};
use serde_json::{Value, json};

#[path = "support/cluster.rs"]
mod support;
use support::{Setup, kv_binary, setup};

const KEYS: u64 = 40;

fn write_keys(s: &Setup) {
    for k in 0..KEYS {
        s.txn(&format!(r#"[["w","k{k}",{k}]]"#));
    }
    s.await_replicated();
}

fn assert_keys(s: &Setup) {
    for k in 0..KEYS {
        let read = s.txn(&format!(r#"[["r","k{k}",null]]"#));
        assert_eq!(read["txn"][0][2], json!(k), "{read}");
    }
}

/// A follower, preferring `not`'s complement.
fn follower(s: &Setup, not: &[String]) -> String {
    let leaders = Primaries::primaries(&*s.db, &s.nodes);
    s.nodes
        .iter()
        .map(|n| n.name.clone())
        .find(|n| !leaders.contains(n) && !not.contains(n))
        .unwrap()
}

#[test]
fn a_torn_tail_is_recovered_and_mid_log_corruption_is_refused_loudly() {
    let s = setup(false);
    write_keys(&s);
    let mut nemesis = DiskNemesis::new(s.db.clone(), s.nodes.clone(), 5)
        .unwrap()
        .ready_timeout(Duration::from_secs(20));

    // A torn tail: the node restarts, and every acknowledged write is still there.
    let target = follower(&s, &[]);
    let value = nemesis
        .invoke("truncate-log", &json!({ "node": target }))
        .unwrap();
    assert_eq!(value["restarted"], json!(true), "{value}");
    let torn = value["torn_bytes"].as_u64().unwrap();
    assert!(torn >= 1, "{value}");
    assert!(s.answers(s.node(&target)));
    assert_keys(&s);
    // The node dropped exactly the torn bytes, said so, and logged no `log-damaged`.
    let log = std::fs::read_to_string(s.node(&target).log_file()).unwrap();
    assert!(
        log.contains(&format!(
            "truncated a torn tail of the write-ahead log bytes={torn}"
        )),
        "{log}"
    );
    assert!(!log.contains("log-damaged"), "{log}");
    // An explicit cut of a few bytes, on the node the RNG picks.
    let value = nemesis
        .invoke("truncate-log", &json!({"bytes": 3}))
        .unwrap();
    assert_eq!(value["truncated_bytes"], json!(3), "{value}");
    assert_eq!(value["restarted"], json!(true), "{value}");
    let cut = value["node"].as_str().unwrap();
    let log = std::fs::read_to_string(s.node(cut).log_file()).unwrap();
    assert!(
        log.contains("protocol: log-damaged fault=truncate-log bytes=3"),
        "{log}"
    );
    assert!(nemesis.damaged().is_empty());
    s.await_replicated();
    assert_keys(&s);

    // Corruption in the middle: the node refuses to start, naming the file and offset.
    let victim = follower(&s, &[]);
    let value = nemesis
        .invoke("corrupt-log", &json!({ "node": victim }))
        .unwrap();
    assert_eq!(value["refused"], json!(true), "{value}");
    let node = s.node(&victim);
    let wal = node.data_dir().join("wal");
    let offset = value["offset"].as_u64().unwrap();
    let line = value["log"].as_str().unwrap();
    assert!(
        line.contains(&format!("{} is corrupt at byte {offset}", wal.display())),
        "{value}"
    );
    assert!(!node.remote.is_running(&node.pid_file()).unwrap());
    assert_eq!(nemesis.damaged(), std::slice::from_ref(&victim));
    // Started by hand, it exits non-zero.
    let out = node
        .remote
        .run(
            &Cmd::new(kv_binary().to_string_lossy())
                .args(["--id", &node.id.to_string()])
                .args([
                    "--listen-peer",
                    &format!("{}:{}", node.addr, KvDb::PEER_PORT),
                ])
                .args([
                    "--listen-client",
                    &format!("{}:{}", node.addr, KvDb::CLIENT_PORT),
                ])
                .args(["--data-dir", &node.data_dir().to_string_lossy()])
                .timeout(Duration::from_secs(10)),
        )
        .unwrap();
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("is corrupt at byte"), "{}", out.stderr);
    // The other two keep serving.
    s.txn(r#"[["w","during",1]]"#);
    // The same node cannot be damaged twice.
    assert!(
        nemesis
            .invoke("truncate-log", &json!({ "node": victim }))
            .is_err()
    );

    // Restoring puts the bytes back: the node comes back with everything.
    let value = nemesis.invoke("restore-log", &Value::Null).unwrap();
    assert_eq!(value, json!({ "restored": [victim] }));
    assert!(s.answers(node));
    assert_keys(&s);
    s.await_replicated();
    assert_eq!(
        nemesis.invoke("restore-log", &Value::Null).unwrap(),
        json!({"restored": []})
    );

    // A corruption left in place is healed.
    let victim = follower(&s, &[]);
    nemesis
        .invoke("corrupt-log", &json!({ "node": victim, "bytes": 16 }))
        .unwrap();
    nemesis.heal().unwrap();
    assert!(s.answers(s.node(&victim)));
    assert!(nemesis.damaged().is_empty());
    s.finish();
}

#[test]
fn a_full_disk_crashes_the_node_without_losing_acknowledged_writes_and_heals() {
    use faultline_clusters::Resource;
    let s = setup(false);
    write_keys(&s);
    let mut nemesis = DiskNemesis::new(s.db.clone(), s.nodes.clone(), 9)
        .unwrap()
        .ready_timeout(Duration::from_secs(20))
        .disk_full(s.cluster.registry().clone());
    let mounts = || {
        s.cluster
            .registry()
            .resources()
            .iter()
            .filter(|r| matches!(r, Resource::Command { description, .. } if description.starts_with("tmpfs mount")))
            .count()
    };

    // Fill the leader's disk: its data directory moves onto a tmpfs (recorded), which
    // is then filled.
    let leader = Primaries::primaries(&*s.db, &s.nodes)[0].clone();
    let node = s.node(&leader).clone();
    let value = nemesis
        .invoke("fill-disk", &json!({ "node": leader }))
        .unwrap();
    eprintln!("{value}");
    assert_eq!(value["moved"], json!(true), "{value}");
    assert!(value["filler_bytes"].as_u64().unwrap() > 0, "{value}");
    assert_eq!(mounts(), 1);
    let mount = node.dir.join("disk");
    let avail = support::sh(&["df", "-k", "--output=avail", &mount.to_string_lossy()]);
    assert_eq!(avail.lines().last().unwrap().trim(), "0", "{avail}");

    // Writes go on (through a new leader); the full node does not acknowledge what it
    // cannot write: it stops, naming the file and the error.
    for k in KEYS..KEYS + 20 {
        s.txn(&format!(r#"[["w","k{k}",{k}]]"#));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while node.remote.is_running(&node.pid_file()).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "{leader} still runs on a full disk"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(node.log_file()).unwrap();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("wal"), "{log}");

    // Heal: space back, the node restarted with everything acknowledged.
    let value = nemesis.invoke("restore-log", &Value::Null).unwrap();
    assert_eq!(value, json!({ "restored": [leader] }));
    assert!(s.answers(&node));
    // (A restarted follower catches up on the leader's next append.)
    s.txn(&format!(r#"[["w","k{}",{}]]"#, KEYS + 20, KEYS + 20));
    s.await_replicated();
    for k in 0..KEYS + 21 {
        let read = s.txn(&format!(r#"[["r","k{k}",null]]"#));
        assert_eq!(read["txn"][0][2], json!(k), "{read}");
    }
    assert!(!mount.join("data").join(faultline_nemesis::FILLER).exists());

    // Again on the same node: no move this time. A random disk fault names itself.
    let value = nemesis
        .invoke("fill-disk", &json!({ "node": leader }))
        .unwrap();
    assert_eq!(value["moved"], json!(false), "{value}");
    // Restored at once, while the node may still be running on its full disk (or be
    // exiting on a failed write): it is stopped and started afresh, not waited on.
    let pid = || std::fs::read_to_string(node.pid_file()).unwrap();
    let before = pid();
    nemesis.invoke("restore-log", &Value::Null).unwrap();
    assert_ne!(pid(), before, "the full node was not restarted afresh");
    assert!(s.answers(&node));
    let value = nemesis.invoke("start-disk", &Value::Null).unwrap();
    assert!(
        value["fault"] == json!("truncate-log") || value["fault"] == json!("fill-disk"),
        "{value}"
    );
    assert!(
        nemesis
            .invoke("start-disk", &json!({"node": "n1"}))
            .is_err()
    );
    nemesis.heal().unwrap();
    // A random fill of another node mounted a second tmpfs.
    let fresh = value["fault"] == json!("fill-disk") && value["moved"] == json!(true);
    assert_eq!(mounts(), if fresh { 2 } else { 1 }, "{value}");

    // The mount goes with the teardown.
    let dir = s.dir.path().to_path_buf();
    s.finish();
    let mounts = support::sh(&["findmnt", "-rn", "-o", "TARGET"]);
    assert!(!mounts.contains(&*dir.to_string_lossy()), "{mounts}");
}
