//! The Localhost backend against real processes and files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::{Cmd, DaemonSpec, ExitStatus, Localhost, Remote, RemoteError, Signal};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Whether `pid` is alive: it exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The state letter of `pid` in /proc (R, S, T, Z…).
fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn exit_codes_and_output() {
    let host = Localhost::new();
    let ok = host.run(&Cmd::new("true")).unwrap();
    assert_eq!(ok.status, ExitStatus::Code(0));
    assert!(ok.success());

    let no = host.run(&Cmd::new("false")).unwrap();
    assert_eq!(no.status, ExitStatus::Code(1));
    let err = host.run_ok(&Cmd::new("false")).unwrap_err();
    assert!(matches!(
        err,
        RemoteError::Failed {
            status: ExitStatus::Code(1),
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "localhost: `false` failed with exit code 1: "
    );

    let out = host
        .run(&Cmd::new("sh").args(["-c", "echo hi; echo err >&2; exit 3"]))
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout, "hi\n");
    assert_eq!(out.stderr, "err\n");
    let err = host
        .run_ok(&Cmd::new("sh").args(["-c", "echo hi; echo err >&2; exit 3"]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "localhost: `sh -c 'echo hi; echo err >&2; exit 3'` failed with exit code 3: err"
    );

    let killed = host
        .run(&Cmd::new("sh").args(["-c", "kill -9 $$"]))
        .unwrap();
    assert_eq!(killed.status, ExitStatus::Signal(9));
}

#[test]
fn environment_and_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let host = Localhost::new();
    let cmd = Cmd::new("sh")
        .args(["-c", "echo $FAULTLINE_X; pwd"])
        .env("FAULTLINE_X", "42")
        .dir(dir.path());
    let out = host.run_ok(&cmd).unwrap();
    let canonical = dir.path().canonicalize().unwrap();
    assert_eq!(out.stdout, format!("42\n{}\n", canonical.display()));

    let missing = dir.path().join("nope");
    let err = host.run(&Cmd::new("true").dir(&missing)).unwrap_err();
    assert!(matches!(err, RemoteError::File { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn a_timeout_kills_the_command_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let host = Localhost::new();

    let start = Instant::now();
    let err = host
        .run(
            &Cmd::new("sleep")
                .arg("5")
                .timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    let took = start.elapsed();
    assert!(took < secs(1), "took {took:?}");
    assert!(matches!(err, RemoteError::Timeout { .. }));
    assert_eq!(
        err.to_string(),
        "localhost: `sleep 5` did not finish within 300ms; killed it"
    );

    // A shell and the background sleep it started are both killed.
    let script = format!(
        "echo $$ > {p}; sleep 30 & echo $! >> {p}; wait",
        p = pids.display()
    );
    let err = host
        .run(
            &Cmd::new("sh")
                .args(["-c", &script])
                .timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { .. }));
    let listed: Vec<u32> = fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(
        wait_until(secs(1), || listed.iter().all(|pid| !alive(*pid))),
        "left running: {listed:?}"
    );

    // A command that exits but leaves a process holding its output open times out too.
    let start = Instant::now();
    let err = host
        .run(
            &Cmd::new("sh")
                .args(["-c", "sleep 30 &"])
                .timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(err, RemoteError::Timeout { .. }));
    assert!(start.elapsed() < secs(1));
}

#[test]
fn a_missing_program_is_named() {
    let host = Localhost::new();
    let err = host
        .run(&Cmd::new("faultline-no-such-program").arg("x"))
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::ProgramNotFound { program, .. } if program == "faultline-no-such-program")
    );
    assert_eq!(
        err.to_string(),
        "localhost: cannot run `faultline-no-such-program x`: program `faultline-no-such-program` not found (is it installed and on PATH?)"
    );
    assert_eq!(err.host(), "localhost");

    let dir = tempfile::tempdir().unwrap();
    let spec = DaemonSpec::new(
        Cmd::new("/nonexistent/daemon"),
        dir.path().join("d.pid"),
        dir.path().join("d.log"),
    );
    let err = host.start_daemon(&spec).unwrap_err();
    assert!(
        matches!(&err, RemoteError::ProgramNotFound { program, .. } if program == "/nonexistent/daemon")
    );
    assert!(!dir.path().join("d.pid").exists());
}

#[test]
fn upload_and_download_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("binary");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    fs::write(&local, &bytes).unwrap();
    fs::set_permissions(&local, fs::Permissions::from_mode(0o755)).unwrap();

    let host = Localhost::new();
    let remote = dir.path().join("node/n1/bin/faultline-kv");
    host.upload(&local, &remote).unwrap();
    assert_eq!(fs::read(&remote).unwrap(), bytes);
    assert_eq!(
        fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o755
    );

    // Replacing an existing file, then back again.
    fs::write(&local, b"v2").unwrap();
    host.upload(&local, &remote).unwrap();
    let back = dir.path().join("collected/n1/faultline-kv");
    host.download(&remote, &back).unwrap();
    assert_eq!(fs::read(&back).unwrap(), b"v2");
    let leftovers: Vec<_> = fs::read_dir(remote.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");

    let err = host
        .download(&dir.path().join("missing"), &back)
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::File { action: "read", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("missing"));
}

#[test]
fn daemons_start_log_and_die_by_signal() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("run/n1.pid");
    let log_file = dir.path().join("log/n1.log");
    let host = Localhost::new();
    let spec = DaemonSpec::new(
        Cmd::new("sh").args(["-c", "echo started; exec sleep 30"]),
        &pid_file,
        &log_file,
    );

    let pid = host.start_daemon(&spec).unwrap();
    assert_eq!(fs::read_to_string(&pid_file).unwrap(), format!("{pid}\n"));
    assert!(host.is_running(&pid_file).unwrap());
    assert!(alive(pid));
    assert!(wait_until(secs(2), || fs::read_to_string(&log_file)
        .is_ok_and(|l| l == "started\n")));

    let err = host.start_daemon(&spec).unwrap_err();
    assert!(
        matches!(err, RemoteError::AlreadyRunning { pid: p, .. } if p == pid),
        "{err}"
    );

    // Pause and resume.
    assert!(host.signal(&pid_file, Signal::Stop).unwrap());
    assert!(wait_until(secs(1), || state(pid) == Some('T')));
    assert!(
        host.is_running(&pid_file).unwrap(),
        "a paused daemon is still running"
    );
    assert!(host.signal(&pid_file, Signal::Cont).unwrap());
    assert!(wait_until(secs(1), || state(pid) != Some('T')));

    // Kill, observe it gone, and kill again harmlessly.
    let killed_at = Instant::now();
    assert!(host.signal(&pid_file, Signal::Kill).unwrap());
    assert!(wait_until(secs(1), || !host.is_running(&pid_file).unwrap()));
    assert!(killed_at.elapsed() < secs(1));
    assert!(!alive(pid));
    assert!(!host.signal(&pid_file, Signal::Kill).unwrap());

    // The pid file is stale now, so the daemon can start again.
    let pid2 = host.start_daemon(&spec).unwrap();
    assert_ne!(pid, pid2);
    // Let the new daemon write its line before stopping it.
    assert!(wait_until(secs(2), || fs::read_to_string(&log_file)
        .is_ok_and(|l| l == "started\nstarted\n")));
    assert!(host.signal(&pid_file, Signal::Term).unwrap());
    assert!(wait_until(secs(1), || !host.is_running(&pid_file).unwrap()));
    assert_eq!(fs::read_to_string(&log_file).unwrap(), "started\nstarted\n");
}

#[test]
fn no_pid_file_means_not_running_and_a_bad_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let host = Localhost::new();
    let pid_file = dir.path().join("none.pid");
    assert!(!host.is_running(&pid_file).unwrap());
    assert!(!host.signal(&pid_file, Signal::Kill).unwrap());

    fs::write(&pid_file, "not a pid\n").unwrap();
    let err = host.is_running(&pid_file).unwrap_err();
    assert!(matches!(err, RemoteError::BadPidFile { .. }));
    assert!(err.to_string().contains("none.pid"), "{err}");
}

#[test]
fn a_prefix_wraps_every_command_and_names_the_host() {
    // The namespace backend will use `ip netns exec NAME`; `env VAR=…` stands in here.
    let host = Localhost::with_prefix("n1", ["env", "FAULTLINE_NODE=n1"]);
    assert_eq!(host.host(), "n1");
    let out = host
        .run_ok(&Cmd::new("sh").args(["-c", "echo $FAULTLINE_NODE"]))
        .unwrap();
    assert_eq!(out.stdout, "n1\n");
    let err = host.run_ok(&Cmd::new("false")).unwrap_err();
    assert!(err.to_string().starts_with("n1: `false` failed"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("n1.pid");
    let spec = DaemonSpec::new(
        Cmd::new("sleep").arg("30"),
        &pid_file,
        dir.path().join("n1.log"),
    );
    let pid = host.start_daemon(&spec).unwrap();
    // `env` execs, so the pid is the daemon's own.
    assert!(wait_until(secs(1), || fs::read_to_string(format!(
        "/proc/{pid}/comm"
    ))
    .is_ok_and(|c| c == "sleep\n")));
    assert!(host.signal(&pid_file, Signal::Kill).unwrap());
    assert!(wait_until(secs(1), || !host.is_running(&pid_file).unwrap()));
    assert!(!Path::new(&format!("/proc/{pid}/comm")).exists() || !alive(pid));
}
