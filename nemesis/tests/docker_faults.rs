//! [`NftPartitions`] against a real Docker engine: three `faultline-kv` containers, a
//! partition and a one-way cut applied by grudge, then healed; a partition left in place
//! goes with the containers. Needs Docker (`faultline_testsupport::available`: skipped
//! without the `docker` command, a failure under `CI=true`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use faultline_clusters::cleanup::{Registry, Resource};
use faultline_clusters::db::setup_all;
use faultline_clusters::docker::{DockerCluster, build_image};
use faultline_clusters::{Cmd, KvDb, Node};
use faultline_nemesis::{Net, NftPartitions, isolate, one_way};
use faultline_testsupport::{Need, available, kv_binary};

#[path = "support/probe.rs"]
mod probe;
use probe::{connect_ms, connect_script, median};

/// Whether `from` opens a TCP connection to `to`'s peer port within 1 s (busybox `nc`
/// inside the container).
fn connects(from: &Node, to: &Node) -> bool {
    let cmd = Cmd::new("nc")
        .args(["-w", "1", &to.addr, &KvDb::PEER_PORT.to_string()])
        .timeout(Duration::from_secs(5));
    from.remote.run(&cmd).is_ok_and(|out| out.success())
}

fn tables(registry: &Registry) -> usize {
    registry
        .resources()
        .iter()
        .filter(|r| matches!(r, Resource::NftTable { .. }))
        .count()
}

#[test]
fn docker_net_applies_grudges_and_heals() {
    if !available(Need::Docker) {
        return;
    }
    let image = build_image(&[&kv_binary()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("nemd{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let mut cluster = DockerCluster::start(registry.clone(), &image, &["n1", "n2", "n3"]).unwrap();
    let label = cluster.run().to_string();
    let nodes = cluster.nodes();
    let db = KvDb::new(Path::new("/usr/local/bin/faultline-kv"), &nodes).upload(false);
    setup_all(&db, &nodes, Duration::from_secs(10)).unwrap();
    let net = NftPartitions::new(&cluster.net_hosts().unwrap());
    let names = ["n1", "n2", "n3"];

    net.drop(&isolate(&names, "n1").unwrap().grudge).unwrap();
    assert_eq!(tables(&registry), 3);
    assert!(!connects(&nodes[0], &nodes[1]) && !connects(&nodes[2], &nodes[0]));
    assert!(connects(&nodes[1], &nodes[2]));

    // Replaced by a one-way cut: only n2 drops (from n1); n1 and n3 have no table.
    net.drop(&one_way(&names, &["n1"], &["n2"]).unwrap().grudge)
        .unwrap();
    assert_eq!(tables(&registry), 1);
    assert!(connects(&nodes[2], &nodes[0]) && connects(&nodes[0], &nodes[2]));
    assert!(!connects(&nodes[0], &nodes[1]));

    net.heal().unwrap();
    net.heal().unwrap();
    assert_eq!(tables(&registry), 0);
    assert!(connects(&nodes[0], &nodes[1]) && connects(&nodes[1], &nodes[0]));

    // A partition left in place goes with the containers.
    net.drop(&isolate(&names, "n3").unwrap().grudge).unwrap();
    cluster.teardown().unwrap();
    registry.teardown().unwrap();
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=faultline.run={label}"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    // The image is a cache shared between runs; remove this one if nothing uses it.
    let _ = Command::new("docker")
        .args(["image", "rm", &image])
        .output();
}

/// `count` TCP connect times (ms) from `from`'s network namespace (entered with
/// `nsenter`, bash from this machine) to `to`'s peer port.
fn connect_times(from: &str, to: &Node, count: usize) -> Vec<f64> {
    let pid = faultline_clusters::docker::container_pid(from)
        .unwrap()
        .unwrap();
    let script = connect_script(&to.addr, KvDb::PEER_PORT, count);
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "bash", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    connect_ms(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn clock_and_delay_faults_on_docker_containers() {
    use faultline_clusters::db::{FAKETIME_LIBS, faketime_env};
    use faultline_nemesis::{ClockNemesis, Nemesis, PacketNemesis};
    use serde_json::{Value, json};

    if !available(Need::Docker) {
        return;
    }
    if !available(Need::Libfaketime) {
        return;
    }
    let lib = FAKETIME_LIBS
        .iter()
        .find(|p| Path::new(p).is_file())
        .expect("libfaketime is installed");
    // The image carries libfaketime (taken from this machine).
    let image = build_image(&[&kv_binary()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("nemdc{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let mut cluster = DockerCluster::start(registry.clone(), &image, &["n1", "n2", "n3"]).unwrap();
    let nodes = cluster.nodes();
    let db = Arc::new(
        KvDb::new(Path::new("/usr/local/bin/faultline-kv"), &nodes)
            .upload(false)
            .faketime(true),
    );
    setup_all(&*db, &nodes, Duration::from_secs(20)).unwrap();
    for node in &nodes {
        let maps = node
            .remote
            .run_ok(&Cmd::new("sh").args([
                "-c",
                "cat /proc/$(cat \"$1\")/maps",
                "sh",
                &node.pid_file().to_string_lossy(),
            ]))
            .unwrap()
            .stdout;
        assert!(maps.contains("libfaketime"), "{}", node.name);
    }

    // A clock bump moves what a libc program in n2's container reads (a dynamically
    // linked `date` copied in: the image's busybox is static).
    let copied = Command::new("docker")
        .args([
            "cp",
            "/bin/date",
            &format!("{}:/tmp/date", cluster.hosts()[1].container()),
        ])
        .output()
        .unwrap();
    assert!(copied.status.success(), "{copied:?}");
    let faked = |node: &Node| -> i64 {
        let cmd = Cmd::new("env")
            .args(
                faketime_env(lib, &node.dir.join("faketime"))
                    .iter()
                    .map(|(key, value)| format!("{key}={value}")),
            )
            .args(["/tmp/date", "+%s"]);
        let out = node.remote.run_ok(&cmd).unwrap().stdout;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        out.trim().parse::<i64>().unwrap() - now
    };
    assert!(faked(&nodes[1]).abs() <= 1);
    let mut clock = ClockNemesis::new(db.clone(), nodes.clone(), 2).unwrap();
    let value = clock
        .invoke("bump-clock", &json!({"node": "n2", "delta_ms": 90_000}))
        .unwrap();
    assert_eq!(value["offset_ms"], json!(90000));
    let skew = faked(&nodes[1]);
    assert!((89..=91).contains(&skew), "n2 is {skew} s off");
    clock.invoke("reset-clock", &Value::Null).unwrap();
    assert!(faked(&nodes[1]).abs() <= 1);

    // A delay on n2, through a delayer run with nsenter (recorded).
    let processes = || {
        registry
            .resources()
            .iter()
            .filter(|r| matches!(r, Resource::Process { .. }))
            .count()
    };
    let base = median(connect_times(cluster.hosts()[0].container(), &nodes[1], 7));
    let mut packet = PacketNemesis::new(&cluster.net_hosts().unwrap(), 3)
        .delayer(env!("CARGO_BIN_EXE_faultline-delayer"));
    let before = processes();
    packet
        .invoke("start-packet", &json!({"delay_ms": 100, "nodes": ["n2"]}))
        .unwrap();
    assert_eq!(processes(), before + 1);
    let delayed = connect_times(cluster.hosts()[0].container(), &nodes[1], 7);
    eprintln!("docker: baseline {base:.1} ms, 100 ms delay: {delayed:?}");
    let added = median(delayed.clone()) - base;
    assert!((95.0..160.0).contains(&added), "{delayed:?}");
    packet.invoke("stop-packet", &Value::Null).unwrap();
    let healed = median(connect_times(cluster.hosts()[0].container(), &nodes[1], 7));
    assert!(healed < base + 20.0, "{healed} vs {base}");

    // A delay left in place goes with the containers and the registry.
    packet
        .invoke("start-packet", &json!({"delay_ms": 50, "nodes": ["n3"]}))
        .unwrap();
    clock.heal().unwrap();
    let recorded: Vec<Resource> = registry
        .resources()
        .into_iter()
        .filter(|r| matches!(r, Resource::Process { .. }))
        .collect();
    assert_eq!(recorded.len(), before + 2);
    cluster.teardown().unwrap();
    registry.teardown().unwrap();
    // The delayers ran on this machine (only their network namespace was the
    // container's): the registry's teardown killed them.
    for r in recorded {
        if let Resource::Process { pid, .. } = r {
            assert_ne!(Resource::process(pid), Some(r), "left running");
        }
    }
}
