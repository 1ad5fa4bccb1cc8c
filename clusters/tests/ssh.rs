//! The SSH backend against a real `sshd` started inside a network namespace made for
//! the test ([`NetnsSshd`]; see `shared/notes/linux-faults.md`, "SSH test hosts on one
//! machine"). Needs root, iproute2, ssh-keygen and /usr/sbin/sshd (Debian
//! `openssh-server`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::ssh::{SshConfig, SshError, SshHost, connect_all, on_all};
use faultline_clusters::{Cmd, DaemonSpec, ExitStatus, Remote, RemoteError, Signal};
use faultline_testsupport::sshd::NetnsSshd;
use faultline_testsupport::{Need, available};

/// The test's hosts file `file` for `sshd`: `extra` top-level settings, short time-outs
/// and two attempts, then `hosts`.
fn hosts_file(sshd: &NetnsSshd, file: &str, extra: &str, hosts: &[(&str, &str, &str)]) -> PathBuf {
    let settings = format!("{extra}\nconnect_timeout_secs = 2\nretries = 2");
    sshd.hosts_file(file, &settings, hosts)
}

fn connect_one(path: &Path) -> Result<SshHost, SshError> {
    let config = SshConfig::load(path).unwrap();
    SshHost::connect(&config.hosts[0], &config)
}

#[test]
fn ssh_hosts_run_commands_files_daemons_and_refuse_bad_keys() {
    if !available(Need::Sshd) {
        return;
    }
    let sshd = NetnsSshd::start(251);
    let addr = sshd.addr.clone();
    let good = hosts_file(
        &sshd,
        "hosts.toml",
        "known_hosts = \"known_hosts\"",
        &[("n1", &addr, "id"), ("n2", &addr, "id")],
    );

    // All hosts connect and run in parallel.
    let config = SshConfig::load(&good).unwrap();
    let hosts = connect_all(&config).unwrap();
    let outs = on_all(&hosts, |h| h.run(&Cmd::new("echo").arg(h.host())));
    let outs: Vec<String> = outs.into_iter().map(|o| o.unwrap().stdout).collect();
    assert_eq!(outs, ["n1\n", "n2\n"]);
    let n1 = &hosts[0];

    // Commands: exit codes, environment, directory, missing programs, time-outs.
    let out = n1
        .run(
            &Cmd::new("sh")
                .args(["-c", "echo $A $(pwd); echo err >&2; exit 3"])
                .env("A", "it's")
                .dir("/tmp"),
        )
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("it's /tmp\n", "err\n")
    );
    let err = n1.run(&Cmd::new("no-such-program")).unwrap_err();
    assert!(matches!(err, RemoteError::ProgramNotFound { .. }), "{err}");
    let started = Instant::now();
    let err = n1
        .run(&Cmd::new("sleep").arg("30").timeout(Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The connection is still usable after a time-out.
    assert!(n1.run(&Cmd::new("true")).unwrap().success());
    // A long command does not hold up others on the same host.
    thread::scope(|s| {
        let slow = s.spawn(|| n1.run(&Cmd::new("sleep").arg("2")).unwrap());
        thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        assert!(n1.run(&Cmd::new("true")).unwrap().success());
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert!(slow.join().unwrap().success());
    });

    // Files over SFTP, both ways, keeping permission bits.
    let local = sshd.path("payload.sh");
    fs::write(&local, "#!/bin/sh\necho up\n").unwrap();
    fs::set_permissions(&local, fs::Permissions::from_mode(0o750)).unwrap();
    let remote = sshd.path("remote/deep/payload.sh");
    n1.upload(&local, &remote).unwrap();
    assert_eq!(
        fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o750
    );
    assert_eq!(
        n1.run(&Cmd::new(remote.to_str().unwrap())).unwrap().stdout,
        "up\n"
    );
    let back = sshd.path("back/payload.sh");
    n1.download(&remote, &back).unwrap();
    assert_eq!(fs::read_to_string(&back).unwrap(), "#!/bin/sh\necho up\n");
    let err = n1.download(Path::new("/no/such/file"), &back).unwrap_err();
    assert!(
        err.to_string().starts_with("n1: cannot read /no/such/file"),
        "{err}"
    );

    // A daemon: started detached, refused twice, killed by signal.
    let pid_file = sshd.path("d/sleep.pid");
    let spec = DaemonSpec::new(
        Cmd::new("sleep").arg("300"),
        &pid_file,
        sshd.path("d/sleep.log"),
    );
    let pid = n1.start_daemon(&spec).unwrap();
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(matches!(
        n1.start_daemon(&spec),
        Err(RemoteError::AlreadyRunning { .. })
    ));
    assert!(n1.is_running(&pid_file).unwrap());
    assert!(n1.signal(&pid_file, Signal::Kill).unwrap());
    let start = Instant::now();
    while n1.is_running(&pid_file).unwrap() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the daemon survived SIGKILL"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!n1.signal(&pid_file, Signal::Kill).unwrap());

    // A key the host does not accept.
    let wrong = hosts_file(
        &sshd,
        "wrong.toml",
        "known_hosts = \"known_hosts\"",
        &[("n1", &addr, "id_wrong")],
    );
    let err = connect_one(&wrong).unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("n1 (") && msg.contains("id_wrong") && !msg.contains('\n'),
        "{msg}"
    );

    // A host key not in known_hosts: refused unless the user opts in.
    fs::write(sshd.path("empty_known_hosts"), "").unwrap();
    let unknown = hosts_file(
        &sshd,
        "unknown.toml",
        "known_hosts = \"empty_known_hosts\"",
        &[("n1", &addr, "id")],
    );
    let err = connect_one(&unknown).unwrap_err();
    assert!(matches!(err, SshError::UnknownHostKey { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("n1 (") && msg.contains("accept_unknown_host_keys") && !msg.contains('\n'),
        "{msg}"
    );
    let opt_in = hosts_file(
        &sshd,
        "opt_in.toml",
        "known_hosts = \"empty_known_hosts\"\naccept_unknown_host_keys = true",
        &[("n1", &addr, "id")],
    );
    assert!(
        connect_one(&opt_in)
            .unwrap()
            .run(&Cmd::new("true"))
            .unwrap()
            .success()
    );

    // A host key that differs from the known one.
    let other = fs::read_to_string(sshd.path("id_wrong.pub")).unwrap();
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    fs::write(
        sshd.path("bad_known_hosts"),
        format!("{addr} {}\n", other.join(" ")),
    )
    .unwrap();
    let mismatch = hosts_file(
        &sshd,
        "mismatch.toml",
        "known_hosts = \"bad_known_hosts\"",
        &[("n1", &addr, "id")],
    );
    let err = connect_one(&mismatch).unwrap_err();
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err}");
    assert!(err.to_string().starts_with("n1 ("), "{err}");

    // An address in the namespace where no sshd listens.
    let dead = sshd.dead_addr.clone();
    let unreachable = hosts_file(
        &sshd,
        "dead.toml",
        "known_hosts = \"known_hosts\"",
        &[("n3", &dead, "id")],
    );
    let err = connect_one(&unreachable).unwrap_err();
    assert!(
        matches!(err, SshError::Connect { attempts: 2, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("n3 ({dead}:22)")) && !msg.contains('\n'),
        "{msg}"
    );
}
