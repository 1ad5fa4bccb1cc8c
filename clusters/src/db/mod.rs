//! Databases: the [`Db`] trait (Jepsen's `DB` with `Kill` and `LogFiles`), its optional
//! capabilities [`Pause`] and [`Primaries`], and three implementations: the bundled
//! [`KvDb`] (`faultline-kv`), [`EtcdDb`], and [`FileDb`] (any database, described in a
//! TOML file).
//!
//! A `Db` is built with the cluster's [`Node`]s (so it knows every peer) and then driven
//! one node at a time. Each node keeps everything in its directory on its host:
//! `data/`, `node.log`, `node.pid`.

mod etcd;
mod file;
mod kv;
mod lazyfs;

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use etcd::EtcdDb;
pub use file::{DbFile, FileDb, PLACEHOLDERS, Ready, Stop};
pub use kv::KvDb;
pub use lazyfs::{Lazyfs, PowerLoss};

use crate::error::ClusterError;
use crate::remote::{Cmd, Remote, Signal};

/// One node of a cluster: a host and where the database lives on it.
#[derive(Clone)]
pub struct Node {
    /// Its id, from 1 (the database's member id where it has one).
    pub id: u32,
    /// Its name, e.g. `n1`.
    pub name: String,
    /// The address (IP or host name) its peers and the controller reach it at.
    pub addr: String,
    /// Its directory on the host (data, log, pid file).
    pub dir: PathBuf,
    /// The host.
    pub remote: Arc<dyn Remote>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("dir", &self.dir)
            .field("host", &self.remote.host())
            .finish()
    }
}

impl Node {
    /// The node's data directory: `DIR/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The node's log file: `DIR/node.log`.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// The node's pid file: `DIR/node.pid`.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("node.pid")
    }
}

/// A database under test (Jepsen's `DB`, `Kill` and `LogFiles` in one small trait).
///
/// Every method acts on one node and is bounded in time; errors name the node. Methods
/// must not touch other nodes, and must not inject faults.
pub trait Db: Send + Sync {
    /// The database's name, e.g. `faultline-kv`.
    fn name(&self) -> &str;

    /// Installs the database on `node` (binary, configuration, empty data directory) and
    /// starts it. Does not wait for it to be ready ([`Db::await_ready`]).
    fn setup(&self, node: &Node) -> Result<(), ClusterError>;

    /// Stops the node (SIGKILL) and wipes its data directory. Keeps its log file.
    /// Succeeds if it was not set up.
    fn teardown(&self, node: &Node) -> Result<(), ClusterError> {
        self.kill(node)?;
        node.remote.run_ok(
            &Cmd::new("rm")
                .args(["-rf", &node.data_dir().to_string_lossy()])
                .timeout(Duration::from_secs(60)),
        )?;
        Ok(())
    }

    /// Starts the (set up, stopped) node, keeping its data. Does not wait for it to be
    /// ready. Starting a running node is an error.
    fn start(&self, node: &Node) -> Result<(), ClusterError>;

    /// Kills the node with SIGKILL and waits until it is gone (at most 10 s).
    /// Killing a stopped node succeeds.
    fn kill(&self, node: &Node) -> Result<(), ClusterError> {
        kill_and_wait(node)
    }

    /// Waits until the node serves clients: its client port accepts connections and a
    /// request answers. The error names the node and its log file.
    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError>;

    /// Where clients connect to the node (`addr:port`).
    fn client_addr(&self, node: &Node) -> String;

    /// The node's log files, on its host.
    fn log_files(&self, node: &Node) -> Vec<PathBuf> {
        vec![node.log_file()]
    }

    /// The pause capability, if the database has it.
    fn pause(&self) -> Option<&dyn Pause> {
        None
    }

    /// The leader discovery capability, if the database has a leader.
    fn primaries(&self) -> Option<&dyn Primaries> {
        None
    }

    /// The per-node clock capability, if the database's nodes run under a fake clock.
    fn fake_clock(&self) -> Option<&dyn FakeClock> {
        None
    }

    /// The power-loss capability, if the nodes' data directories can lose unsynced
    /// writes (see [`Lazyfs`]).
    fn power_loss(&self) -> Option<&dyn PowerLoss> {
        None
    }
}

/// Pausing and resuming a node's process (SIGSTOP, SIGCONT).
pub trait Pause: Send + Sync {
    /// Pauses the node; pausing a stopped or paused node succeeds.
    fn pause(&self, node: &Node) -> Result<(), ClusterError> {
        node.remote.signal(&node.pid_file(), Signal::Stop)?;
        Ok(())
    }

    /// Resumes the node; resuming a running node succeeds.
    fn resume(&self, node: &Node) -> Result<(), ClusterError> {
        node.remote.signal(&node.pid_file(), Signal::Cont)?;
        Ok(())
    }
}

/// Leader discovery.
pub trait Primaries: Send + Sync {
    /// The names of the nodes that consider themselves leader, asking each of `nodes`
    /// (unreachable ones are skipped). Empty when there is none. Must not change
    /// anything.
    fn primaries(&self, nodes: &[Node]) -> Vec<String>;
}

/// Per-node clocks: the node runs under libfaketime, whose offset it reads from a file
/// on every clock call (`FAKETIME_TIMESTAMP_FILE`, `FAKETIME_NO_CACHE=1`). Writing
/// `+30` or `-5` (seconds) into the file moves that node's wall-clock and monotonic
/// time; `+0` puts it back.
pub trait FakeClock: Send + Sync {
    /// The node's offset file, on its host.
    fn clock_file(&self, node: &Node) -> PathBuf {
        node.dir.join("faketime")
    }
}

/// Where libfaketime is installed on Debian-like systems, in order of preference.
pub const FAKETIME_LIBS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// Sets up `db` on every node in parallel, then waits for all to be ready.
pub fn setup_all(db: &dyn Db, nodes: &[Node], timeout: Duration) -> Result<(), ClusterError> {
    let each = |f: &(dyn Fn(&Node) -> Result<(), ClusterError> + Sync)| {
        thread::scope(|s| {
            let handles: Vec<_> = nodes.iter().map(|n| s.spawn(move || f(n))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ClusterError::Config("a setup thread panicked".into()))
                    })
                })
                .collect::<Result<Vec<()>, ClusterError>>()
        })
    };
    each(&|n| db.setup(n))?;
    each(&|n| db.await_ready(n, timeout))?;
    Ok(())
}

/// Tears `db` down on every node in parallel; returns the first error after trying all.
pub fn teardown_all(db: &dyn Db, nodes: &[Node]) -> Result<(), ClusterError> {
    let results: Vec<Result<(), ClusterError>> = thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| s.spawn(move || db.teardown(n)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ClusterError::Config("a teardown thread panicked".into()))
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

pub(crate) fn kill_and_wait(node: &Node) -> Result<(), ClusterError> {
    let pid_file = node.pid_file();
    node.remote.signal(&pid_file, Signal::Kill)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.remote.is_running(&pid_file)? {
        if Instant::now() >= deadline {
            return Err(ClusterError::Protocol {
                node: node.name.clone(),
                message: format!(
                    "still running 10 s after SIGKILL (pid file {})",
                    pid_file.display()
                ),
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Polls `probe` until it succeeds or `timeout` passes; the error names the node, the
/// address and the log file, and carries the last probe's error.
pub(crate) fn wait_until(
    db: &str,
    node: &Node,
    addr: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<(), String>,
) -> Result<(), ClusterError> {
    let start = Instant::now();
    loop {
        let last = match probe() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let exited = !node.remote.is_running(&node.pid_file()).unwrap_or(true);
        if exited || start.elapsed() >= timeout {
            let last = if exited {
                format!("the process exited ({last})")
            } else {
                last
            };
            return Err(ClusterError::NotReady {
                node: node.name.clone(),
                what: format!("{db} at {addr}"),
                after: start.elapsed(),
                last,
                log: node.log_file(),
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad address {addr}"))
}

/// Sends one line to `addr` and reads one line back, within `timeout`.
pub fn request_line(addr: &str, line: &str, timeout: Duration) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&resolve(addr)?, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{}\n", line.trim_end()).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    while !buf.contains(&b'\n') {
        let n = stream.read(&mut byte).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a response".into());
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// POSTs `body` (JSON) to `http://addr/path` (HTTP/1.0, so no chunking) and returns the
/// status code and body, within `timeout`.
pub fn http_post(
    addr: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&resolve(addr)?, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "malformed HTTP status line: {}",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok((status, body.to_string()))
}

/// Standard base64 with padding (etcd's JSON gateway encodes keys and values so).
pub fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` if malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("!"), None);
    }
}
