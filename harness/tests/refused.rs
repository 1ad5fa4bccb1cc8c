//! A run refused before deploying (a bad hosts file, an unreachable host, not root)
//! leaves the store exactly as it was: no run directory, `latest` unchanged.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_exit, stderr};
use faultline_testsupport::free_port;

/// A store with one earlier run of test `t`, `t/latest` and `latest` pointing at it.
fn store_with_a_run() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("t").join("2020-01-01T000000Z");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("results.json"), "{}\n").unwrap();
    std::os::unix::fs::symlink("2020-01-01T000000Z", store.path().join("t/latest")).unwrap();
    std::os::unix::fs::symlink("t/2020-01-01T000000Z", store.path().join("latest")).unwrap();
    store
}

/// Every path under `dir` with its symlink target (or "" for files and directories).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let target = if meta.file_type().is_symlink() {
                fs::read_link(&path).unwrap().display().to_string()
            } else {
                String::new()
            };
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path, target);
        }
    }
    out
}

fn run_ssh(store: &Path, hosts: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--cluster", "ssh", "--nodes", "1", "--name", "t"])
        .arg("--hosts")
        .arg(hosts)
        .arg("--store")
        .arg(store)
        .args(["--time-limit", "1"])
        .output()
        .unwrap()
}

#[test]
fn a_hosts_file_with_a_bad_name_leaves_the_store_as_it_was() {
    let store = store_with_a_run();
    let before = snapshot(store.path());
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.toml");
    fs::write(
        &hosts,
        "[[host]]\nname = \"../../../tmp/x\"\naddress = \"127.0.0.1\"\nkey = \"id\"\n",
    )
    .unwrap();
    let out = run_ssh(store.path(), &hosts);
    assert_exit(&out, 254);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: line 2: host #1: bad name `../../../tmp/x`",
            hosts.display()
        )),
        "{err}"
    );
    assert_eq!(snapshot(store.path()), before);
}

#[test]
fn an_unreachable_host_leaves_the_store_as_it_was() {
    let store = store_with_a_run();
    let before = snapshot(store.path());
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.toml");
    let port = free_port();
    fs::write(
        &hosts,
        format!(
            "connect_timeout_secs = 1\nretries = 1\n[[host]]\nname = \"n1\"\n\
             address = \"127.0.0.1\"\nport = {port}\nkey = \"id\"\n"
        ),
    )
    .unwrap();
    let out = run_ssh(store.path(), &hosts);
    assert_exit(&out, 254);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("n1 (127.0.0.1:{port}): cannot connect")),
        "{err}"
    );
    assert_eq!(snapshot(store.path()), before);
}

#[test]
fn a_local_run_without_root_leaves_the_store_as_it_was() {
    let store = store_with_a_run();
    // Let `nobody` reach and write the store, so only the root check can refuse.
    for dir in [store.path().to_path_buf(), store.path().join("t")] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let before = snapshot(store.path());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_faultline"))
        .args([
            "run",
            "--cluster",
            "local",
            "--name",
            "t",
            "--time-limit",
            "1",
        ])
        .arg("--store")
        .arg(store.path())
        .output()
        .unwrap();
    assert_exit(&out, 254);
    let err = stderr(&out);
    assert!(err.contains("need root"), "{err}");
    assert_eq!(snapshot(store.path()), before);
}
