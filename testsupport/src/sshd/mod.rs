//! Real `sshd` test hosts on one machine (see `shared/notes/linux-faults.md`, "SSH test
//! hosts on one machine"): [`Sshd`] on 127.0.0.1, [`NetnsSshd`] in a namespace made for
//! the test, [`SshdCluster`] in every namespace of a [`NetnsCluster`]; and the pieces
//! they share (keys, configuration, known_hosts lines, waits). Needs root, iproute2,
//! ssh-keygen and `/usr/sbin/sshd` (check with [`crate::available`]`(Need::Sshd)`).
//!
//! [`NetnsCluster`]: faultline_clusters::NetnsCluster

mod cluster;
mod hosts;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use cluster::SshdCluster;
pub use hosts::{NetnsSshd, Sshd};

use crate::process::run;

/// Makes an ed25519 key pair without a passphrase, commented with its file name: `path`
/// and `path.pub`.
pub fn keygen(path: &Path) {
    let comment = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = path.to_str().expect("a key path in UTF-8");
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        &comment,
        "-f",
        path,
    ]);
}

/// Prepares an sshd in `dir` listening on `addr:port`: a host key `dir/host_key`,
/// `authorized_keys` (a copy of `client_pub`), root logins by key only, SFTP; the
/// configuration's path. Run it as `/usr/sbin/sshd -D -e -f CONFIG`.
pub fn sshd_config(dir: &Path, addr: &str, port: u16, client_pub: &Path) -> PathBuf {
    fs::create_dir_all(dir).expect("the sshd directory");
    keygen(&dir.join("host_key"));
    fs::copy(client_pub, dir.join("authorized_keys")).expect("authorized_keys");
    let config = format!(
        "ListenAddress {addr}:{port}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
        dir.join("host_key").display(),
        dir.join("sshd.pid").display(),
        dir.join("authorized_keys").display()
    );
    let path = dir.join("sshd_config");
    fs::write(&path, config).expect("sshd_config");
    // sshd's privilege separation directory.
    fs::create_dir_all("/run/sshd").expect("/run/sshd");
    fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755)).expect("/run/sshd");
    path
}

/// The known_hosts line for the sshd of [`sshd_config`] in `dir`, reached as `host`
/// (`ADDRESS`, or `[ADDRESS]:PORT` off port 22): "HOST TYPE KEY".
pub fn known_hosts_line(dir: &Path, host: &str) -> String {
    let public = fs::read_to_string(dir.join("host_key.pub")).expect("host_key.pub");
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    format!("{host} {}\n", key.join(" "))
}

/// Waits (at most 10 s) until `addr` accepts TCP connections; the failure shows `log`.
pub fn await_listening(addr: SocketAddr, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not listen on {addr}: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether some process has `pid` as its parent.
pub fn has_children(pid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
                .is_some_and(|ppid| ppid == pid.to_string())
        })
    })
}

/// Waits (at most 3 s) until the sshd `pid` has no children: the sessions of closed
/// connections have ended and been reaped by sshd, not orphaned to init.
pub fn await_sessions_closed(pid: u32) {
    let start = Instant::now();
    while has_children(pid) && start.elapsed() < Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(20));
    }
}
