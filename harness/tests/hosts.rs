//! `faultline hosts` end to end: bad hosts files, an unreachable host, and a real `sshd`
//! (started here on 127.0.0.1, needs root and openssh-server) with an unknown host key,
//! a wrong user key and a correct setup; and `--cluster local` (needs root, ip, nft).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use faultline_testsupport::sshd::Sshd;
use faultline_testsupport::{Need, available, free_port};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `faultline hosts --cluster ssh --hosts FILE`.
fn check_hosts(file: &Path) -> Output {
    faultline(&[
        "hosts",
        "--cluster",
        "ssh",
        "--hosts",
        &file.to_string_lossy(),
    ])
}

/// Asserts exit 254 and a one-line error containing every `needles`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
}

#[test]
fn a_toml_syntax_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    fs::write(
        &file,
        "[[host]]\naddress = \"10.0.0.1\"\nkey = \"id\nport = 22\n",
    )
    .unwrap();
    let out = check_hosts(&file);
    assert_one_line_error(&out, &[&format!("{}: line 3", file.display())]);
}

#[test]
fn a_missing_key_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    fs::write(&file, "[[host]]\nname = \"n1\"\naddress = \"10.0.0.1\"\n").unwrap();
    let out = check_hosts(&file);
    assert_one_line_error(
        &out,
        &[&format!("{}:", file.display()), "missing field `key`"],
    );
}

#[test]
fn ssh_without_a_hosts_file_is_a_usage_error() {
    let out = faultline(&["hosts", "--cluster", "ssh"]);
    assert_one_line_error(&out, &["--hosts FILE"]);
}

#[test]
fn an_unreachable_host_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    let port = free_port();
    fs::write(
        &file,
        format!(
            "connect_timeout_secs = 1\nretries = 0\n[[host]]\nname = \"n1\"\n\
             address = \"127.0.0.1\"\nport = {port}\nkey = \"id\"\n"
        ),
    )
    .unwrap();
    let start = Instant::now();
    let out = check_hosts(&file);
    assert_one_line_error(
        &out,
        &[&format!("n1 (127.0.0.1:{port})"), "cannot connect", "sshd"],
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn ssh_hosts_against_a_real_sshd() {
    if !available(Need::Sshd) {
        return;
    }
    let sshd = Sshd::start();

    // An unknown host key: named, with the opt-in.
    let file = sshd.hosts_file("client_key", "");
    let out = check_hosts(&file);
    assert_one_line_error(
        &out,
        &[
            "n1 (127.0.0.1:",
            "host key not in",
            "accept_unknown_host_keys = true",
        ],
    );

    // A plain `ADDRESS KEY` entry is for port 22 only: not this host's port.
    let line = sshd.known_hosts_line();
    let plain = line.replacen(&format!("[127.0.0.1]:{}", sshd.port), "127.0.0.1", 1);
    let file = sshd.hosts_file("client_key", &plain);
    let out = check_hosts(&file);
    assert_one_line_error(&out, &["n1 (127.0.0.1:", "host key not in"]);

    // A @revoked key is refused, even with a line accepting it, naming the line.
    let revoked = format!("{line}# compromised\n@revoked {line}");
    let file = sshd.hosts_file("client_key", &revoked);
    let out = check_hosts(&file);
    assert_one_line_error(&out, &["n1 (127.0.0.1:", "marked @revoked in", "line 3"]);

    // A @cert-authority line is not a host key.
    let file = sshd.hosts_file("client_key", &format!("@cert-authority {line}"));
    let out = check_hosts(&file);
    assert_one_line_error(&out, &["n1 (127.0.0.1:", "host key not in"]);

    // Hashed by `ssh-keygen -H`, the [host]:port entry still matches.
    let file = sshd.hosts_file("client_key", &line);
    let hashed = Command::new("ssh-keygen")
        .args(["-H", "-f"])
        .arg(sshd.path("known_hosts"))
        .output()
        .unwrap();
    assert!(hashed.status.success(), "{hashed:?}");
    let text = fs::read_to_string(sshd.path("known_hosts")).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let out = check_hosts(&file);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A key the server does not accept.
    let file = sshd.hosts_file("other_key", &sshd.known_hosts_line());
    let out = check_hosts(&file);
    assert_one_line_error(
        &out,
        &["n1 (127.0.0.1:", "authentication as `root`", "other_key"],
    );

    // All right.
    let file = sshd.hosts_file("client_key", &sshd.known_hosts_line());
    let out = check_hosts(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.starts_with("n1 127.0.0.1: ok, Linux "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn local_prerequisites_as_root() {
    let out = faultline(&["hosts", "--cluster", "local"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("local: ok (root, ip, nft)\n"), "{stdout}");
    // Every optional tool is listed, found or with the package that brings it.
    for tool in [
        "iptables",
        "faultline-delayer",
        "libfaketime",
        "fusermount3",
        "etcd",
    ] {
        assert!(stdout.contains(&format!("  {tool}: ")), "{tool}: {stdout}");
    }
    // CI installs everything: nothing is missing there.
    if std::env::var_os("CI").is_some() {
        assert!(!stdout.contains("missing"), "{stdout}");
    }
}
