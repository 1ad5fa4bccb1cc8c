//! The Docker backend against a real Docker engine: the node image, three containers
//! on an internal network, commands, files, a `faultline-kv` daemon, and teardown.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::cleanup::Registry;
use faultline_clusters::docker::{DockerCluster, RUN_LABEL, build_image};
use faultline_clusters::{Cmd, DaemonSpec, ExitStatus, Remote, RemoteError, Signal};
use faultline_testsupport::{Need, available, kv_binary};

use common::docker_lines;

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn docker_nodes_run_commands_files_and_daemons_and_leave_nothing() {
    if !available(Need::Docker) {
        return;
    }
    let kv = kv_binary();
    let image = build_image(&[&kv]).unwrap();
    let started = Instant::now();
    assert_eq!(build_image(&[&kv]).unwrap(), image, "the image is cached");
    assert!(started.elapsed() < Duration::from_secs(5));

    let dir = tempfile::tempdir().unwrap();
    let run = format!("dk{}", std::process::id());
    let registry = Arc::new(Registry::create(dir.path(), &run).unwrap());
    let mut cluster = DockerCluster::start(registry.clone(), &image, &["n1", "n2", "n3"]).unwrap();
    let label = format!("label={RUN_LABEL}={}", cluster.run());
    let hosts = cluster.hosts();
    assert_eq!(hosts.len(), 3);
    assert_eq!(
        registry.resources().len(),
        4,
        "network and containers recorded"
    );
    let internal = docker_lines(&[
        "network",
        "inspect",
        "--format",
        "{{.Internal}}",
        cluster.network(),
    ]);
    assert_eq!(internal, "true");

    // Commands: output, exit codes, missing programs, time-outs.
    let n1 = &hosts[0];
    let help = n1.run(&Cmd::new("faultline-kv").arg("--help")).unwrap();
    assert!(help.success(), "{help:?}");
    assert!(help.stdout.contains("--listen-client"), "{help:?}");
    let out = n1
        .run(
            &Cmd::new("sh")
                .args(["-c", "echo $A; exit 3"])
                .env("A", "it's")
                .dir("/tmp"),
        )
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (ExitStatus::Code(3), "it's\n")
    );
    let err = n1.run(&Cmd::new("no-such-program")).unwrap_err();
    assert!(matches!(err, RemoteError::ProgramNotFound { .. }), "{err}");
    assert!(err.to_string().starts_with("n1: "), "{err}");
    let err = n1
        .run(&Cmd::new("sleep").arg("30").timeout(Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { .. }), "{err}");

    // Files, both ways, keeping permission bits.
    let local = dir.path().join("script.sh");
    std::fs::write(&local, "#!/bin/sh\necho up\n").unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o755)).unwrap();
    n1.upload(&local, Path::new("/opt/x/script.sh")).unwrap();
    assert_eq!(
        n1.run(&Cmd::new("/opt/x/script.sh")).unwrap().stdout,
        "up\n"
    );
    let back = dir.path().join("back/script.sh");
    n1.download(Path::new("/opt/x/script.sh"), &back).unwrap();
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "#!/bin/sh\necho up\n"
    );
    let err = n1.download(Path::new("/nope"), &back).unwrap_err();
    assert!(err.to_string().contains("/nope"), "{err}");

    // A daemon on n1, reached from n2, killed by signal.
    let addr = n1.address().to_string();
    assert!(!addr.is_empty());
    let cmd = Cmd::new("faultline-kv").args([
        "--id",
        "1",
        "--listen-peer",
        &format!("{addr}:7001"),
        "--listen-client",
        &format!("{addr}:7002"),
        "--data-dir",
        "/data/kv",
    ]);
    let spec = DaemonSpec::new(cmd, "/run/kv/kv.pid", "/log/kv.log");
    let pid = n1.start_daemon(&spec).unwrap();
    assert!(pid > 1);
    assert!(matches!(
        n1.start_daemon(&spec),
        Err(RemoteError::AlreadyRunning { .. })
    ));
    let n2 = &hosts[1];
    // busybox nc has no -z: connect with empty input; a refused connection fails at once.
    let probe = Cmd::new("nc")
        .args(["-w", "1", &addr, "7002"])
        .timeout(Duration::from_secs(2));
    let connects = || match n2.run(&probe) {
        Ok(out) => out.success(),
        Err(RemoteError::Timeout { .. }) => true,
        Err(e) => panic!("{e}"),
    };
    let listening = wait_until(Duration::from_secs(10), connects);
    assert!(
        listening,
        "{:?}",
        n1.run(&Cmd::new("cat").arg("/log/kv.log"))
    );
    assert!(n1.is_running(Path::new("/run/kv/kv.pid")).unwrap());
    assert!(
        n1.signal(Path::new("/run/kv/kv.pid"), Signal::Kill)
            .unwrap()
    );
    assert!(wait_until(Duration::from_secs(5), || !n1
        .is_running(Path::new("/run/kv/kv.pid"))
        .unwrap()));
    assert!(
        !n1.signal(Path::new("/run/kv/kv.pid"), Signal::Kill)
            .unwrap()
    );
    assert!(!connects());

    // A paused container refuses commands with an error naming the node.
    let n3 = &hosts[2];
    n3.pause().unwrap();
    let err = n3.run(&Cmd::new("true")).unwrap_err();
    assert!(
        matches!(err, RemoteError::Spawn { .. }) && err.to_string().starts_with("n3: "),
        "{err}"
    );
    n3.unpause().unwrap();
    assert!(n3.run(&Cmd::new("true")).unwrap().success());

    // Teardown removes every container and the network, and empties the record.
    cluster.teardown().unwrap();
    assert_eq!(docker_lines(&["ps", "-aq", "--filter", &label]), "");
    assert_eq!(
        docker_lines(&["network", "ls", "-q", "--filter", &label]),
        ""
    );
    assert!(registry.resources().is_empty());
}
