//! `faultline hosts` end to end: bad hosts files, an unreachable host, and a real `sshd`
//! (started here on 127.0.0.1, needs root and openssh-server) with an unknown host key,
//! a wrong user key and a correct setup; and `--cluster local` (needs root, ip, nft).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
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

/// An `sshd` on 127.0.0.1 with its own host key, accepting `client_key` for root; killed
/// when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        keygen(&d.join("other_key"));
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let status = Command::new("mkdir")
            .args(["-p", "-m", "0755", "/run/sshd"])
            .status()
            .unwrap();
        assert!(status.success());
        let port = free_port();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n",
            d = d.display()
        );
        fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let sshd = Sshd { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                fs::read_to_string(sshd.path("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a hosts file for this sshd with `key` and `known_hosts` content.
    fn hosts_file(&self, key: &str, known_hosts: &str) -> PathBuf {
        fs::write(self.path("known_hosts"), known_hosts).unwrap();
        let file = self.path("hosts.toml");
        fs::write(
            &file,
            format!(
                "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 5\nretries = 1\n\
                 [[host]]\nname = \"n1\"\naddress = \"127.0.0.1\"\nport = {}\nkey = \"{key}\"\n",
                self.port
            ),
        )
        .unwrap();
        file
    }

    /// The known_hosts line of this sshd's host key.
    fn known_hosts_line(&self) -> String {
        let public = fs::read_to_string(self.path("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_hosts_against_a_real_sshd() {
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "local: ok (root, ip, nft)\n"
    );
}
