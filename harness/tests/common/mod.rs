//! Helpers shared by the `faultline check` end-to-end tests.
#![allow(dead_code)] // each test file uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// Runs the binary from the workspace root, so paths are the README's.
pub fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap()
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn example(name: &str) -> String {
    format!("examples/histories/{name}")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Writes `text` to `name` in a fresh temporary directory.
pub fn temp_file(name: &str, text: &str) -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

pub fn json_of(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap()
}

// ---- bank ----------------------------------------------------------------------------

/// faultline-kv beside the faultline binary under test, built if missing.
pub fn ensure_kv_binary() {
    ensure_binary("faultline-kv");
}

/// The binary of workspace package `package` (named as it) beside the faultline binary
/// under test, built with the same profile if missing.
pub fn ensure_binary(package: &str) {
    let faultline = PathBuf::from(env!("CARGO_BIN_EXE_faultline"));
    if faultline.with_file_name(package).exists() {
        return;
    }
    let profile_dir = faultline.parent().unwrap();
    let release = profile_dir.file_name().unwrap() == "release";
    let target = profile_dir.parent().unwrap();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", package]);
    if release {
        build.arg("--release");
    }
    let status = build
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", target)
        .status()
        .unwrap();
    assert!(status.success(), "building {package} failed");
}

/// An output's exit code, stdout and stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The newest run directory under `store` (`STORE/latest`).
pub fn run_dir(store: &Path) -> PathBuf {
    store.join("latest").canonicalize().unwrap()
}

/// The newest run's `results.json`.
pub fn results(store: &Path) -> Value {
    let text = fs::read_to_string(run_dir(store).join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The newest run's JSON-lines file `name` (`history.jsonl`, `nemesis.jsonl`), a value
/// a line.
pub fn run_lines(store: &Path, name: &str) -> Vec<Value> {
    fs::read_to_string(run_dir(store).join(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// No process whose command line names `store` is left (a node or a client program).
pub fn assert_no_processes(store: &Path) {
    let ps = Command::new("pgrep")
        .args(["-f", &store.display().to_string()])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}
