//! Power-loss faults: a node's data directory mounted through `faultline-lazyfs` (a
//! FUSE passthrough filesystem that can forget every write not fsynced), and the
//! [`PowerLoss`] capability that asks it to.
//!
//! Each node gets, in its directory: `data.backing/` (where the files really are),
//! `data/` (the mount), `lazyfs.sock` (the control socket), `lazyfs.pid` and
//! `lazyfs.log`. The filesystem runs on the controller, in the host's namespaces: only
//! hosts that share the controller's filesystem (local network namespaces) can have it.
//! Mounting is done before the node starts, so a node started in its network namespace
//! sees the mount.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Node;
use crate::cleanup::{Registry, Resource};
use crate::error::ClusterError;
use crate::localhost::Localhost;
use crate::remote::{Cmd, DaemonSpec, Remote, Signal};

/// How long mounting may take.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the filesystem has to exit after it is unmounted.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a control request may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Losing every write a node has not fsynced (a power loss of its machine). The node
/// must be stopped first: its process would otherwise keep writing.
pub trait PowerLoss: Send + Sync {
    /// Rolls every file of the (stopped) node's data directory back to its last fsync,
    /// and returns what was discarded, e.g. `{"files":1,"bytes":4096,"writes":12,
    /// "truncations":0,"discarded":[{"file":"wal","size":1024,…}]}`. Must not start or
    /// stop the node.
    fn lose_unsynced(&self, node: &Node) -> Result<Value, ClusterError>;
}

/// `faultline-lazyfs` under each node's data directory, started on the controller.
#[derive(Debug, Clone)]
pub struct Lazyfs {
    binary: PathBuf,
    registry: Arc<Registry>,
}

fn mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let path = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(&*path) && l.contains("faultline-lazyfs"))
}

impl Lazyfs {
    /// The filesystem built at `binary` (on the controller); mounts and processes are
    /// recorded in `registry` before they are created.
    pub fn new(binary: impl Into<PathBuf>, registry: Arc<Registry>) -> Lazyfs {
        Lazyfs {
            binary: binary.into(),
            registry,
        }
    }

    /// Where the node's files really are: `DIR/data.backing`.
    pub fn backing_dir(node: &Node) -> PathBuf {
        node.dir.join("data.backing")
    }

    /// The node's control socket: `DIR/lazyfs.sock`.
    pub fn control_socket(node: &Node) -> PathBuf {
        node.dir.join("lazyfs.sock")
    }

    /// The filesystem's log: `DIR/lazyfs.log`.
    pub fn log_file(node: &Node) -> PathBuf {
        node.dir.join("lazyfs.log")
    }

    fn pid_file(node: &Node) -> PathBuf {
        node.dir.join("lazyfs.pid")
    }

    fn unmount_resource(node: &Node) -> Resource {
        let mount = node.data_dir().to_string_lossy().into_owned();
        Resource::Command {
            description: format!("lazyfs mount {mount}"),
            argv: vec![
                "sh".into(),
                "-c".into(),
                // Not `mountpoint`: it fails on a mount whose filesystem process died.
                "if grep -q \" $1 \" /proc/self/mountinfo; then umount -l \"$1\"; fi".into(),
                "sh".into(),
                mount,
            ],
        }
    }

    /// Mounts the node's data directory through the filesystem (a no-op when it is
    /// mounted already) and waits until the mount is there.
    pub fn mount(&self, node: &Node) -> Result<(), ClusterError> {
        let mount = node.data_dir();
        if mounted(&mount) {
            return Ok(());
        }
        let backing = Self::backing_dir(node);
        for dir in [&backing, &mount] {
            std::fs::create_dir_all(dir).map_err(|e| {
                ClusterError::Config(format!(
                    "{}: cannot create {}: {e}",
                    node.name,
                    dir.display()
                ))
            })?;
        }
        self.registry.record(Self::unmount_resource(node))?;
        let cmd = Cmd::new(self.binary.to_string_lossy())
            .arg("--backing")
            .arg(backing.to_string_lossy())
            .arg("--mount")
            .arg(mount.to_string_lossy())
            .arg("--control")
            .arg(Self::control_socket(node).to_string_lossy());
        let host = Localhost::new();
        let pid = host.start_daemon(&DaemonSpec::new(
            cmd,
            Self::pid_file(node),
            Self::log_file(node),
        ))?;
        // Unmounting ends the process; recording it too covers a mount that never came.
        if let Some(process) = Resource::process(pid) {
            self.registry.record(process)?;
        }
        let start = Instant::now();
        while !mounted(&mount) {
            let running = host.is_running(&Self::pid_file(node)).unwrap_or(false);
            if !running || start.elapsed() > MOUNT_TIMEOUT {
                return Err(ClusterError::NotReady {
                    node: node.name.clone(),
                    what: format!("faultline-lazyfs at {}", mount.display()),
                    after: start.elapsed(),
                    last: if running {
                        "not mounted yet".into()
                    } else {
                        "the process exited".into()
                    },
                    log: Self::log_file(node),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Unmounts the node's data directory (lazily) and waits for the filesystem to
    /// exit, killing it after 5 s. Succeeds when nothing is mounted. The node must be
    /// stopped first.
    pub fn unmount(&self, node: &Node) -> Result<(), ClusterError> {
        let host = Localhost::new();
        let mount = node.data_dir();
        if mounted(&mount) {
            host.run_ok(
                &Cmd::new("umount")
                    .arg("-l")
                    .arg(mount.to_string_lossy())
                    .timeout(Duration::from_secs(20)),
            )?;
        }
        let pid_file = Self::pid_file(node);
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while host.is_running(&pid_file)? {
            if Instant::now() >= deadline {
                host.signal(&pid_file, Signal::Kill)?;
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.registry.forget(&Self::unmount_resource(node))?;
        Ok(())
    }
}

impl PowerLoss for Lazyfs {
    fn lose_unsynced(&self, node: &Node) -> Result<Value, ClusterError> {
        let socket = Self::control_socket(node);
        let failed = |e: String| ClusterError::Protocol {
            node: node.name.clone(),
            message: format!(
                "faultline-lazyfs control socket {}: {e} (see {})",
                socket.display(),
                Self::log_file(node).display()
            ),
        };
        let stream = UnixStream::connect(&socket).map_err(|e| failed(e.to_string()))?;
        stream
            .set_read_timeout(Some(CONTROL_TIMEOUT))
            .map_err(|e| failed(e.to_string()))?;
        let mut writer = stream.try_clone().map_err(|e| failed(e.to_string()))?;
        writer
            .write_all(b"lose-unsynced\n")
            .map_err(|e| failed(e.to_string()))?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| failed(e.to_string()))?;
        let mut reply: Value =
            serde_json::from_str(&line).map_err(|e| failed(format!("bad reply {line:?}: {e}")))?;
        if reply["ok"] != true {
            return Err(failed(format!("refused: {}", reply["error"])));
        }
        if let Some(map) = reply.as_object_mut() {
            map.remove("ok");
        }
        Ok(reply)
    }
}
