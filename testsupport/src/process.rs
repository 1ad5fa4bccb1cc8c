//! Small probes of the controller machine: commands, free ports, what a run left.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// Runs a command on the controller; its standard output (empty when it cannot run).
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command on the controller and asserts that it succeeded.
pub fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(out.status.success(), "{argv:?}: {out:?}");
}

/// A TCP port on 127.0.0.1 where nothing listens (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Asserts that nothing of the local (namespace) run `run` is left: namespaces, links,
/// nft tables, rules in the FORWARD chain, processes whose command line mentions `dir`.
pub fn assert_netns_run_gone(run: &str, dir: &Path) {
    let netns = sh(&["ip", "netns", "list"]);
    assert!(!netns.contains(run), "namespaces left: {netns}");
    let links = sh(&["ip", "-o", "link"]);
    assert!(!links.contains(run), "links left: {links}");
    let tables = sh(&["nft", "list", "tables"]);
    assert!(!tables.contains(run), "nft tables left: {tables}");
    let forward = sh(&["nft", "list", "chain", "ip", "filter", "FORWARD"]);
    assert!(!forward.contains(run), "FORWARD rule left: {forward}");
    let procs = sh(&["pgrep", "-af", &dir.to_string_lossy()]);
    assert!(procs.trim().is_empty(), "processes left: {procs}");
}
