//! Bring your own database: etcd driven entirely by `examples/etcd/etcd.toml` and the
//! Python client `examples/etcd/client.py`, under partitions; client programs that
//! misbehave (garbage, exits, hangs); `faultline client-test`; db-file errors.
//! Needs root, iproute2, nftables, etcd-server and python3 (CI installs them).

mod common;
use common::{assert_no_processes, results, run_dir, run_lines, text};

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One run at a time: each uses the whole (2-core) machine.
static SERIAL: Mutex<()> = Mutex::new(());

const DB_FILE: &str = "examples/etcd/etcd.toml";
const CLIENT: &str = "python3 examples/etcd/client.py";

/// `faultline SUBCOMMAND ARGS --store STORE`, from the workspace root (the README's
/// paths).
fn faultline(subcommand: &str, args: &[&str], store: &Path) -> Output {
    assert!(
        Path::new("/usr/bin/etcd").exists(),
        "etcd is missing: apt-get install etcd-server (CI installs it)"
    );
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg(subcommand)
        .args(args)
        .arg("--store")
        .arg(store)
        .current_dir(common::workspace())
        .output()
        .unwrap()
}

fn history(store: &Path) -> Vec<Value> {
    run_lines(store, "history.jsonl")
}

const SHORT_RUN: [&str; 10] = [
    "--nodes",
    "5",
    "--time-limit",
    "10",
    "--nemesis-interval",
    "2",
    "--recovery-time",
    "2",
    "--seed",
    "3",
];

fn run_example(workload: &str) -> (tempfile::TempDir, Output) {
    let store = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--db-file",
        DB_FILE,
        "--client-cmd",
        CLIENT,
        "--workload",
        workload,
        "--nemesis",
        "partition",
    ];
    args.extend(SHORT_RUN);
    let out = faultline("run", &args, store.path());
    (store, out)
}

#[test]
fn etcd_from_a_toml_file_with_a_python_client_is_linearizable_under_partitions() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (store, out) = run_example("register");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true));
    assert_eq!(results["checkers"]["linearizable"]["model"], "cas-register");
    assert_eq!(results["name"], "etcd-register");
    assert!(results["run"]["ok"].as_u64().unwrap() > 100, "{results}");
    assert!(results["run"]["client_programs"].as_u64().unwrap() >= 10);
    let history = history(store.path());
    assert!(history.iter().any(|op| op["f"] == "start-partition"));
    assert!(history.iter().any(|op| op["f"] == "stop-partition"));
    // Completions carry the node the program talked to, as for built-in clients.
    assert!(
        history
            .iter()
            .any(|op| op["type"] == "ok" && op["node"].as_str().is_some_and(|n| n.starts_with('n')))
    );
    let dir = run_dir(store.path());
    assert!(dir.join("nodes/n1/node.log").exists());
    assert!(dir.join("clients.log").exists());
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("valid"));
    assert_no_processes(store.path());
}

#[test]
fn etcd_from_a_toml_file_with_a_python_client_list_append_is_valid_under_partitions() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (store, out) = run_example("list-append");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true));
    assert_eq!(results["checkers"]["elle"]["workload"], "list-append");
    assert!(
        results["checkers"]["elle"]["txns"].as_u64().unwrap() > 100,
        "{results}"
    );
    // Reads saw appends: the client really fills them in.
    assert!(history(store.path()).iter().any(|op| {
        op["type"] == "ok"
            && op["value"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m[0] == "r" && m[2].as_array().is_some_and(|l| !l.is_empty()))
            })
    }));
    assert_no_processes(store.path());
}

#[test]
fn garbage_exits_and_hangs_become_info_and_the_verdict_stays_right() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = faultline(
        "run",
        &[
            "--db-file",
            DB_FILE,
            "--client-cmd",
            "python3 harness/tests/fixtures/misbehaving_client.py",
            "--nodes",
            "3",
            "--nemesis",
            "none",
            "--time-limit",
            "6",
            "--recovery-time",
            "0",
            "--op-timeout",
            "1",
            "--rate",
            "50",
            "--seed",
            "5",
        ],
        store.path(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = results(store.path());
    assert_eq!(results["valid"], Value::Bool(true), "{results}");
    let errors: Vec<String> = history(store.path())
        .iter()
        .filter(|op| op["type"] == "info")
        .filter_map(|op| op["error"].as_str().map(String::from))
        .collect();
    let has = |needle: &str| errors.iter().any(|e| e.contains(needle));
    assert!(
        has("client-garbage") && has("\"this is not JSON\""),
        "{errors:?}"
    );
    assert!(
        has("client-exited") && has("exited with code 7"),
        "{errors:?}"
    );
    assert!(has("timeout: the client program"), "{errors:?}");
    // Every misbehaving program was replaced, under a new process number.
    assert!(
        results["run"]["client_restarts"].as_u64().unwrap() >= 3,
        "{results}"
    );
    let log = std::fs::read_to_string(run_dir(store.path()).join("clients.log")).unwrap();
    assert!(log.contains("] exiting on purpose"), "{log}");
    assert_no_processes(store.path());
    let programs = Command::new("pgrep")
        .args(["-f", "misbehaving_client.py"])
        .output()
        .unwrap();
    assert!(programs.stdout.is_empty(), "client programs left");
}

#[test]
fn a_client_that_cannot_work_is_a_clear_harness_error() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cases = [
        // Dies at once, every time.
        (
            "python3 -c 'import sys; sys.exit(2)'",
            "failed 5 times in a row",
        ),
        // Answers garbage to its first request, every time.
        ("python3 -c 'print(\"hello\")'", "failed 5 times in a row"),
        // Never answers.
        ("sleep 600", "completed none of its"),
    ];
    for (client, expected) in cases {
        let store = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let out = faultline(
            "run",
            &[
                "--db-file",
                DB_FILE,
                "--client-cmd",
                client,
                "--nodes",
                "1",
                "--nemesis",
                "none",
                "--time-limit",
                "3",
                "--recovery-time",
                "0",
                "--op-timeout",
                "0.5",
                "--concurrency",
                "2",
            ],
            store.path(),
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{client}: took {:?}",
            started.elapsed()
        );
        assert_eq!(out.status.code(), Some(255), "{client}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{client}: {}", text(&out));
        assert!(stderr.contains(client), "{client}: {}", text(&out));
        let results = results(store.path());
        assert_eq!(results["valid"], "unknown", "{client}: {results}");
        assert_no_processes(store.path());
    }
}

#[test]
fn client_test_passes_the_example_and_catches_a_wrong_client() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = tempfile::tempdir().unwrap();
    // The first with --client-cmd, the second with the file's own `client`.
    for (workload, client) in [("register", Some(CLIENT)), ("list-append", None)] {
        let mut args = vec!["--db-file", DB_FILE, "--workload", workload];
        if let Some(client) = client {
            args.extend(["--client-cmd", client]);
        }
        let out = faultline("client-test", &args, store.path());
        assert_eq!(out.status.code(), Some(0), "{workload}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("checks passed"));
    }
    // Says ok to everything: reads come back wrong, the unknown f does not fail.
    let yes = "python3 -c 'import sys\nfor l in sys.stdin: print(\"{\\\"type\\\":\\\"ok\\\"}\", flush=True)'";
    let out = faultline(
        "client-test",
        &["--db-file", DB_FILE, "--client-cmd", yes],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "FAIL  cas with the wrong old value fails: expected fail with an error, got ok"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL  an unknown f fails"), "{stdout}");
    assert_no_processes(store.path());
}

#[test]
fn db_file_mistakes_are_refused_up_front_naming_file_and_line() {
    let (_dir, path) = common::temp_file(
        "mydb.toml",
        "name = \"mydb\"\nport = 7000\nstart = [\"mydb\",\n  \"--peers={peerz}\"]\n",
    );
    let store = tempfile::tempdir().unwrap();
    let out = faultline(
        "run",
        &["--db-file", &path, "--client-cmd", "true"],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{path}:4: unknown placeholder `{{peerz}}` in `start`"
        )),
        "{stderr}"
    );
    // A described database needs a client program: --client-cmd or its `client`.
    let (_other, no_client) = common::temp_file(
        "mydb.toml",
        "name = \"mydb\"\nport = 7000\nstart = [\"mydb\"]\n",
    );
    let out = faultline("run", &["--db-file", &no_client], store.path());
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a client program"));
    // Its clock cannot be moved: refused before anything starts.
    let out = faultline(
        "run",
        &[
            "--db-file",
            DB_FILE,
            "--client-cmd",
            CLIENT,
            "--nemesis",
            "clock",
        ],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`clock` cannot be injected with --db-file")
    );
}

/// `examples/etcd/etcd.toml` with `user = USER` and a start command that first prints
/// who it runs as, in a directory of its own with the example's admin script.
fn etcd_as(user: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = common::workspace().join("examples/etcd");
    std::fs::copy(root.join("admin.py"), dir.path().join("admin.py")).unwrap();
    let example = std::fs::read_to_string(root.join("etcd.toml")).unwrap();
    let start = "start = [\n  \"sh\", \"-c\", \"echo running as $(id -un); exec \\\"$0\\\" \\\"$@\\\"\",\n  \"etcd\",";
    let text = format!(
        "user = \"{user}\"\n{}",
        example.replacen("start = [\n  \"etcd\",", start, 1)
    );
    assert!(text.contains("running as"), "the example's start changed");
    let path = dir.path().join("etcd.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

#[test]
fn a_db_file_user_runs_the_database_as_that_user_or_says_why_not() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (_file_dir, path) = etcd_as("nobody");
    let store = tempfile::tempdir().unwrap();
    let run = |db_file: &str, store: &Path| {
        let mut args = vec![
            "--db-file",
            db_file,
            "--client-cmd",
            CLIENT,
            "--nemesis",
            "partition,kill",
        ];
        args.extend(SHORT_RUN);
        faultline("run", &args, store)
    };
    // A private store: nobody cannot reach its data directory.
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = run(&path, store.path());
    assert_ne!(private.status.code(), Some(0), "{}", text(&private));
    let why = text(&private);
    assert!(
        why.contains("user nobody cannot write to") && why.contains("--store"),
        "{why}"
    );
    assert_no_processes(store.path());
    // A store nobody can pass through: the run works, each node ran as nobody (its
    // restarts by the kill nemesis too), and the data directories are removed.
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(&path, store.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = run_dir(store.path());
    for n in 1..=5 {
        let log = std::fs::read_to_string(dir.join(format!("nodes/n{n}/node.log"))).unwrap();
        let starts: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("running as "))
            .collect();
        assert!(!starts.is_empty(), "n{n}: {log}");
        assert!(
            starts.iter().all(|l| *l == "running as nobody"),
            "n{n}: {starts:?}"
        );
    }
    assert!(
        !dir.join("nodes/n1/data").exists(),
        "the data directory is removed at teardown"
    );
    assert_no_processes(store.path());
    // A user the host does not have: named, with what to do.
    let (_other_dir, missing) = etcd_as("no-such-user-fl");
    let out = run(&missing, store.path());
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("has no such user; create it (useradd --system no-such-user-fl)"),
        "{}",
        text(&out)
    );
    assert_no_processes(store.path());
}
