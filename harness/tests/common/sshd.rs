//! A real `sshd` for end-to-end tests, on 127.0.0.1 (loopback only) with its own host
//! key and client keys; needs root and openssh-server.
#![allow(dead_code)] // each test file uses a different subset

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Whether `/usr/sbin/sshd` is installed. Without it a test is skipped, except under
/// `CI=true`, where CI installs openssh-server and its absence fails the test.
pub fn sshd_available() -> bool {
    if Path::new("/usr/sbin/sshd").exists() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "/usr/sbin/sshd is missing under CI=true: apt-get install openssh-server"
    );
    eprintln!("skipped: /usr/sbin/sshd missing (apt-get install openssh-server)");
    false
}

/// A TCP port on 127.0.0.1 where nothing listens (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// An `sshd` on 127.0.0.1 with its own host key, accepting `client_key` for root; killed
/// when dropped.
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a hosts file for this sshd with `key` and `known_hosts` content.
    pub fn hosts_file(&self, key: &str, known_hosts: &str) -> PathBuf {
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
    pub fn known_hosts_line(&self) -> String {
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

/// Runs a command and asserts that it succeeded.
fn run(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{argv:?}: {out:?}");
}

/// An sshd on port 22 inside a network namespace made for the test, reached over a
/// veth pair at `addr` (as in `clusters/tests/ssh.rs`); everything removed on drop.
pub struct NetnsSshd {
    netns: String,
    veth: String,
    child: Option<Child>,
    /// The namespace's address.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl NetnsSshd {
    /// Starts it; `client_key` (and `.pub`) is the key root logs in with, and
    /// `known_hosts` holds the host key as `ADDRESS KEY`.
    pub fn start() -> NetnsSshd {
        let id = std::process::id();
        let net = format!("10.252.{}", id % 250);
        let mut host = NetnsSshd {
            netns: format!("flhs{id}"),
            veth: format!("flh{id}h"),
            child: None,
            addr: format!("{net}.2"),
            dir: tempfile::tempdir().unwrap(),
        };
        let (ns, veth) = (host.netns.clone(), host.veth.clone());
        let peer = format!("flh{id}n");
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ]);
        run(&["ip", "link", "set", &peer, "netns", &ns]);
        run(&["ip", "addr", "add", &format!("{net}.1/24"), "dev", &veth]);
        run(&["ip", "link", "set", &veth, "up"]);
        let cidr = format!("{}/24", host.addr);
        for args in [
            &["ip", "addr", "add", &cidr, "dev", &peer][..],
            &["ip", "link", "set", &peer, "up"],
            &["ip", "link", "set", "lo", "up"],
        ] {
            let mut argv = vec!["ip", "netns", "exec", ns.as_str()];
            argv.extend_from_slice(args);
            run(&argv);
        }
        let d = host.dir.path().to_path_buf();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let config = format!(
            "Port 22\nListenAddress {addr}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
            addr = host.addr,
            d = d.display()
        );
        fs::write(d.join("sshd_config"), config).unwrap();
        let log = fs::File::create(d.join("sshd.log")).unwrap();
        host.child = Some(
            Command::new("ip")
                .args(["netns", "exec", &ns, "/usr/sbin/sshd", "-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let addr: std::net::SocketAddr = format!("{}:22", host.addr).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let public = fs::read_to_string(d.join("host_key.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        fs::write(
            d.join("known_hosts"),
            format!("{} {}\n", host.addr, key.join(" ")),
        )
        .unwrap();
        host
    }

    /// A file in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A hosts file naming this host `n1`.
    pub fn hosts_file(&self) -> PathBuf {
        let file = self.path("hosts.toml");
        fs::write(
            &file,
            format!(
                "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 5\nretries = 2\n\
                 [[host]]\nname = \"n1\"\naddress = \"{}\"\nkey = \"client_key\"\n",
                self.addr
            ),
        )
        .unwrap();
        file
    }
}

impl Drop for NetnsSshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
            .map(|out| {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).output();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
    }
}
