//! One sshd: on 127.0.0.1 ([`Sshd`]), or in a network namespace of its own
//! ([`NetnsSshd`]).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{await_listening, await_sessions_closed, keygen, known_hosts_line, sshd_config};
use crate::process::{free_port, run};

/// Starts `/usr/sbin/sshd -D -e -f config`, inside namespace `netns` if given, its
/// output to `log`.
fn spawn_sshd(netns: Option<&str>, config: &Path, log: &Path) -> Child {
    let log = fs::File::create(log).expect("the sshd log");
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, "/usr/sbin/sshd"]);
            cmd
        }
        None => Command::new("/usr/sbin/sshd"),
    };
    cmd.args(["-D", "-e", "-f"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the sshd log"))
        .stderr(log)
        .spawn()
        .expect("cannot start /usr/sbin/sshd")
}

/// An `sshd` on 127.0.0.1 (loopback only) at a free port, with its own host key,
/// accepting `client_key` for root (`other_key` is a key it does not accept); killed
/// when dropped.
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Makes the keys and starts it; returns once it listens.
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path();
        keygen(&d.join("client_key"));
        keygen(&d.join("other_key"));
        let port = free_port();
        let config = sshd_config(d, "127.0.0.1", port, &d.join("client_key.pub"));
        let child = spawn_sshd(None, &config, &d.join("sshd.log"));
        let sshd = Sshd { child, port, dir };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        await_listening(addr, &sshd.path("sshd.log"));
        sshd
    }

    /// A file in its directory (`client_key`, `other_key`, `known_hosts`, …).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a hosts file naming it `n1`, logging in with `key` (a file in its
    /// directory), and `known_hosts` with the content `known_hosts`.
    pub fn hosts_file(&self, key: &str, known_hosts: &str) -> PathBuf {
        fs::write(self.path("known_hosts"), known_hosts).expect("known_hosts");
        let file = self.path("hosts.toml");
        fs::write(
            &file,
            format!(
                "known_hosts = \"known_hosts\"\nconnect_timeout_secs = 5\nretries = 1\n\
                 [[host]]\nname = \"n1\"\naddress = \"127.0.0.1\"\nport = {}\nkey = \"{key}\"\n",
                self.port
            ),
        )
        .expect("hosts.toml");
        file
    }

    /// The known_hosts line of its host key: `[127.0.0.1]:PORT TYPE KEY`.
    pub fn known_hosts_line(&self) -> String {
        known_hosts_line(self.dir.path(), &format!("[127.0.0.1]:{}", self.port))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An sshd on port 22 inside a network namespace made for the test, reached over a veth
/// pair at [`NetnsSshd::addr`]; the namespace has a second address,
/// [`NetnsSshd::dead_addr`], where nothing listens. Root logs in with key `id` (`id_wrong`
/// is refused); `known_hosts` holds its host key. Everything is removed when dropped,
/// also when the test fails.
pub struct NetnsSshd {
    netns: String,
    veth: String,
    child: Option<Child>,
    /// The namespace's address, where sshd listens.
    pub addr: String,
    /// A second address of the namespace, where nothing listens.
    pub dead_addr: String,
    dir: tempfile::TempDir,
}

impl NetnsSshd {
    /// Starts it on the subnet `10.OCTET.N.0/24` (each test binary its own `octet`, so
    /// that binaries run at once do not collide; `N` from the process id).
    pub fn start(octet: u8) -> NetnsSshd {
        let id = std::process::id();
        let net = format!("10.{octet}.{}", id % 250);
        let mut host = NetnsSshd {
            netns: format!("fl{octet}s{id}"),
            veth: format!("fl{octet}{id}h"),
            child: None,
            addr: format!("{net}.2"),
            dead_addr: format!("{net}.3"),
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        let (ns, veth) = (host.netns.clone(), host.veth.clone());
        let peer = format!("fl{octet}{id}n");
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ]);
        run(&["ip", "link", "set", &peer, "netns", &ns]);
        run(&["ip", "addr", "add", &format!("{net}.1/24"), "dev", &veth]);
        run(&["ip", "link", "set", &veth, "up"]);
        let (addr, dead) = (
            format!("{}/24", host.addr),
            format!("{}/24", host.dead_addr),
        );
        for args in [
            &["ip", "addr", "add", &addr, "dev", &peer][..],
            &["ip", "addr", "add", &dead, "dev", &peer],
            &["ip", "link", "set", &peer, "up"],
            &["ip", "link", "set", "lo", "up"],
        ] {
            let mut argv = vec!["ip", "netns", "exec", ns.as_str()];
            argv.extend_from_slice(args);
            run(&argv);
        }
        let d = host.dir.path().to_path_buf();
        keygen(&d.join("id"));
        keygen(&d.join("id_wrong"));
        let config = sshd_config(&d, &host.addr, 22, &d.join("id.pub"));
        host.child = Some(spawn_sshd(Some(&ns), &config, &d.join("sshd.log")));
        let sock: SocketAddr = format!("{}:22", host.addr).parse().expect("an address");
        await_listening(sock, &d.join("sshd.log"));
        fs::write(d.join("known_hosts"), known_hosts_line(&d, &host.addr)).expect("known_hosts");
        host
    }

    /// A file in the test's directory (`id`, `known_hosts`, …).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the hosts file `file` in the test's directory: the top-level `settings`
    /// (TOML lines), then a `[[host]]` for each `(name, address, key)`, user root.
    pub fn hosts_file(&self, file: &str, settings: &str, hosts: &[(&str, &str, &str)]) -> PathBuf {
        let mut text = format!("{settings}\n");
        for (name, addr, key) in hosts {
            text.push_str(&format!(
                "[[host]]\nname = \"{name}\"\naddress = \"{addr}\"\nuser = \"root\"\nkey = \"{key}\"\n"
            ));
        }
        let path = self.path(file);
        fs::write(&path, text).expect("the hosts file");
        path
    }
}

impl Drop for NetnsSshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Let the sessions of closed connections end and be reaped by sshd (not
            // orphaned to init), then SIGTERM, so that sshd ends the rest itself.
            await_sessions_closed(child.id());
            let _ = Command::new("kill").arg(child.id().to_string()).output();
            let start = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
    }
}
