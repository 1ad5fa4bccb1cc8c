//! Teardown on Ctrl-C, for real: a child controller (this test binary, re-run) with a
//! namespace cluster and a daemon gets SIGINT and removes everything before it exits.
//! Needs root, iproute2 and nftables.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use faultline_clusters::cleanup::{start_time, teardown_on_interrupt};
use faultline_clusters::{Cmd, DaemonSpec, NetnsCluster, Remote, clean};
use faultline_testsupport::{assert_netns_run_gone, sh};

/// The child controller that `sigint_tears_down_the_run_despite_a_second_signal`
/// interrupts: runs only when that
/// test starts it.
#[test]
#[ignore = "a helper process for sigint_tears_down_the_run_despite_a_second_signal"]
fn interrupted_controller() {
    let Some(dir) = std::env::var_os("FAULTLINE_TEST_INTERRUPT_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let cluster = NetnsCluster::create(&dir, 3).unwrap();
    let host = &cluster.hosts()[1];
    let spec = DaemonSpec::new(
        Cmd::new("sleep").arg("300"),
        host.dir().join("sleep.pid"),
        host.dir().join("sleep.log"),
    );
    let pid = host.start_daemon(&spec).unwrap();
    let _guard = teardown_on_interrupt(Arc::clone(cluster.registry())).unwrap();
    std::fs::write(
        dir.join("run"),
        format!("{} {pid} {}", cluster.run_id(), start_time(pid).unwrap()),
    )
    .unwrap();
    println!("ready");
    thread::sleep(Duration::from_secs(60));
    // Not reached when the test passes; a plain teardown (by `Drop`) otherwise.
}

/// Kills the child controller and cleans its directory if the test fails.
struct ChildGuard(Child, PathBuf);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = clean(&self.1);
    }
}

/// Waits (at most 30 s) for a line ending in "ready" on the child's standard output.
fn await_ready(child: &mut Child) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.trim_end().ends_with("ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the child controller did not get ready");
}

fn alive(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

#[test]
fn sigint_tears_down_the_run_despite_a_second_signal() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "interrupted_controller",
            "--nocapture",
        ])
        .env("FAULTLINE_TEST_INTERRUPT_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(child, dir.path().to_path_buf());
    await_ready(&mut guard.0);

    let info = std::fs::read_to_string(dir.path().join("run")).unwrap();
    let fields: Vec<&str> = info.split_whitespace().collect();
    let (run, pid, start) = (
        fields[0].to_string(),
        fields[1].parse::<u32>().unwrap(),
        fields[2].parse::<u64>().unwrap(),
    );
    let state = dir.path().join(faultline_clusters::cleanup::STATE_FILE);
    assert!(sh(&["ip", "netns", "list"]).contains(&run));
    assert!(alive(pid, start), "the daemon is not running");
    assert!(state.exists());

    let begin = Instant::now();
    let child = nix::unistd::Pid::from_raw(guard.0.id() as i32);
    nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGINT).unwrap();
    // A second signal, while the teardown runs (it takes a few hundred ms): ignored.
    thread::sleep(Duration::from_millis(50));
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGTERM);
    let status = wait_timeout(&mut guard.0, Duration::from_secs(30));
    println!("SIGINT to exit: {:?}", begin.elapsed());
    assert_eq!(status.code(), Some(130), "{status:?}");

    // No clean: the child's own teardown removed everything, and its state file.
    assert!(!alive(pid, start), "the daemon {pid} survived");
    assert!(!state.exists(), "state file left");
    assert_netns_run_gone(&run, dir.path());
    assert_no_namespace_of(&run, dir.path());
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the child did not exit");
        thread::sleep(Duration::from_millis(20));
    }
}

/// No namespace named after the run in `/run/netns` either (in case `ip` hides one).
fn assert_no_namespace_of(run: &str, dir: &Path) {
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(run))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "namespaces of {}: {left:?}", dir.display());
}
