//! Clock faults on a real local cluster whose nodes run under libfaketime (needs root,
//! iproute2, `libfaketime` and the `faultline-kv` release binary).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultline_clusters::db::{FAKETIME_LIBS, faketime_env};
use faultline_clusters::{Db, EtcdDb};
use faultline_nemesis::{ClockNemesis, Nemesis};
use serde_json::{Value, json};

#[path = "support/cluster.rs"]
mod support;
use support::{Setup, setup};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What a dynamically linked `/bin/date` reads under `node`'s clock file.
fn faked_now(s: &Setup, node: &str) -> i64 {
    let lib = FAKETIME_LIBS
        .iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("libfaketime is installed");
    let file = s.node(node).dir.join("faketime");
    let env: Vec<String> = faketime_env(lib, &file)
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut args = vec!["env"];
    args.extend(env.iter().map(String::as_str));
    args.extend(["/bin/date", "+%s"]);
    let out = s.run_in(node, &args);
    out.trim().parse().unwrap()
}

#[test]
fn bumped_clocks_move_and_the_cluster_keeps_serving() {
    let s = setup(true);
    // Every node runs under libfaketime.
    for node in &s.nodes {
        let pid = std::fs::read_to_string(node.pid_file()).unwrap();
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", pid.trim())).unwrap();
        assert!(maps.contains("libfaketime"), "{}", node.name);
        // Wall clock only: a faked monotonic clock stalls Rust's timed waits.
        let environ = std::fs::read(format!("/proc/{}/environ", pid.trim())).unwrap();
        assert!(
            environ
                .split(|b| *b == 0)
                .any(|kv| kv == b"FAKETIME_DONT_FAKE_MONOTONIC=1"),
            "{}",
            node.name
        );
    }
    s.txn(r#"[["w","x",1]]"#);

    let mut nemesis = ClockNemesis::new(s.db.clone(), s.nodes.clone(), 9).unwrap();
    let value = nemesis
        .invoke("bump-clock", &json!({"node": "n2", "delta_ms": 30_000}))
        .unwrap();
    assert_eq!(
        value,
        json!({"node": "n2", "delta_ms": 30000, "offset_ms": 30000})
    );
    let skew = faked_now(&s, "n2") - now();
    assert!((29..=31).contains(&skew), "n2 is {skew} s off");
    assert!((faked_now(&s, "n1") - now()).abs() <= 1);
    s.txn(r#"[["w","x",2]]"#);

    nemesis
        .invoke("bump-clock", &json!({"node": "n3", "delta_ms": -20_000}))
        .unwrap();
    let skew = faked_now(&s, "n3") - now();
    assert!((-21..=-19).contains(&skew), "n3 is {skew} s off");
    s.txn(r#"[["w","x",3]]"#);
    let value = nemesis
        .invoke("strobe-clock", &json!({"node": "n1", "duration_ms": 500}))
        .unwrap();
    assert!(value["flips"].as_u64().unwrap() >= 2, "{value}");
    assert!((faked_now(&s, "n1") - now()).abs() <= 1);

    let value = nemesis.invoke("reset-clock", &Value::Null).unwrap();
    assert_eq!(value, json!({"reset": ["n2", "n3"]}));
    for node in ["n1", "n2", "n3"] {
        assert!((faked_now(&s, node) - now()).abs() <= 1, "{node}");
    }
    let read = s.txn(r#"[["r","x",null]]"#);
    assert_eq!(read["txn"][0][2], json!(3), "{read}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.nodes.iter().all(|n| s.answers(n)));
    nemesis.heal().unwrap();
    s.finish();
}

#[test]
fn etcd_is_refused_with_the_reason() {
    let nodes: Vec<faultline_clusters::Node> = Vec::new();
    let db: Arc<dyn Db> = Arc::new(EtcdDb::new(&nodes));
    let err = ClockNemesis::new(db, nodes, 1).err().unwrap().to_string();
    assert!(
        err.contains("cannot act on database etcd") && err.contains("libc"),
        "{err}"
    );
}
