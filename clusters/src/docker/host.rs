//! [`DockerHost`]: one container, driven through the `docker` CLI.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::RemoteError;
use crate::localhost::Localhost;
use crate::posix;
use crate::remote::{Cmd, DaemonSpec, Output, Remote, Signal};

/// Extra time the controller gives a `docker exec` beyond the command's own limit,
/// which the container enforces itself (`timeout -s KILL`).
const GRACE: Duration = Duration::from_secs(10);

/// A node in a Docker container: commands run with `docker exec` (under the
/// container's `sh`), files move with `docker cp`, daemons are started detached inside
/// the container with pid files there.
///
/// A command killed by a signal shows as exit code 128 + the signal (Docker reports
/// no signal).
#[derive(Debug)]
pub struct DockerHost {
    name: String,
    container: String,
    address: String,
    local: Localhost,
}

impl DockerHost {
    /// The node `name`, in the running container `container`, reachable by its peers at
    /// `address`.
    pub fn new(
        name: impl Into<String>,
        container: impl Into<String>,
        address: impl Into<String>,
    ) -> DockerHost {
        let name = name.into();
        DockerHost {
            local: Localhost::with_prefix(name.clone(), Vec::<String>::new()),
            name,
            container: container.into(),
            address: address.into(),
        }
    }

    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The node's IP address on the run's Docker network.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs `docker ARGS…` on the controller with `limit`.
    fn docker<I, S>(&self, args: I, limit: Duration) -> Result<Output, RemoteError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.local
            .run(&Cmd::new("docker").args(args).timeout(limit))
    }

    /// Runs `script` under `sh -c` in the container, with `limit`. A failure of Docker
    /// itself (no such container, container stopped or paused) is an error.
    fn sh(&self, script: String, limit: Duration) -> Result<Output, RemoteError> {
        let args = ["exec", self.container.as_str(), "sh", "-c", script.as_str()];
        let out = self.docker(args, limit)?;
        if !out.success() && out.stderr.starts_with("Error response from daemon") {
            return Err(RemoteError::Spawn {
                host: self.name.clone(),
                command: format!("docker exec {}", self.container),
                source: std::io::Error::other(out.stderr.trim().to_string()),
            });
        }
        Ok(out)
    }

    /// Freezes every process of the container (`docker pause`).
    pub fn pause(&self) -> Result<(), RemoteError> {
        self.docker_ok(&["pause", &self.container])
    }

    /// Thaws the container after [`DockerHost::pause`] (`docker unpause`).
    pub fn unpause(&self) -> Result<(), RemoteError> {
        self.docker_ok(&["unpause", &self.container])
    }

    fn docker_ok(&self, args: &[&str]) -> Result<(), RemoteError> {
        let out = self.docker(args.iter().copied(), Duration::from_secs(30))?;
        if out.success() {
            return Ok(());
        }
        Err(RemoteError::Failed {
            host: self.name.clone(),
            command: format!("docker {}", args.join(" ")),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        })
    }

    /// Like [`DockerHost::sh`], failing on a non-zero exit (reported as `command`).
    fn sh_ok(&self, script: String, command: &str) -> Result<Output, RemoteError> {
        let out = self.sh(script, Duration::from_secs(30))?;
        if out.success() {
            return Ok(out);
        }
        Err(RemoteError::Failed {
            host: self.name.clone(),
            command: command.to_string(),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        })
    }

    fn copy_error(&self, action: &'static str, path: &Path, out: &Output) -> RemoteError {
        RemoteError::File {
            host: self.name.clone(),
            action,
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("docker cp: {}", out.stderr.trim())),
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Remote for DockerHost {
    fn host(&self) -> &str {
        &self.name
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let start = Instant::now();
        let line = posix::command_line(cmd);
        let out = self
            .sh(line, cmd.time_limit() + GRACE)
            .map_err(|e| match e {
                RemoteError::Timeout { host, .. } => RemoteError::Timeout {
                    host,
                    command: cmd.to_string(),
                    after: cmd.time_limit(),
                },
                other => other,
            })?;
        posix::finish_run(&self.name, cmd, out, start.elapsed())
    }

    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError> {
        if let Err(source) = fs::metadata(local) {
            return Err(RemoteError::File {
                host: "localhost".to_string(),
                action: "read",
                path: local.to_path_buf(),
                source,
            });
        }
        let tmp = with_suffix(remote, ".faultline-tmp");
        if let Some(parent) = remote.parent().filter(|p| !p.as_os_str().is_empty()) {
            let script = format!("mkdir -p {}", posix::quote(&parent.to_string_lossy()));
            self.sh_ok(script, &format!("mkdir -p {}", parent.display()))?;
        }
        let target = format!("{}:{}", self.container, tmp.display());
        let local_arg = local.to_string_lossy().into_owned();
        let out = self.docker(
            ["cp".to_string(), local_arg, target],
            Duration::from_secs(300),
        )?;
        if !out.success() {
            return Err(self.copy_error("write", remote, &out));
        }
        let script = format!(
            "mv -f {} {}",
            posix::quote(&tmp.to_string_lossy()),
            posix::quote(&remote.to_string_lossy())
        );
        self.sh_ok(script, &format!("mv {}", remote.display()))?;
        Ok(())
    }

    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError> {
        let file_error = |action, path: &Path, source| RemoteError::File {
            host: "localhost".to_string(),
            action,
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| file_error("create directory", parent, e))?;
        }
        let tmp = with_suffix(local, ".faultline-tmp");
        let source = format!("{}:{}", self.container, remote.display());
        let tmp_arg = tmp.to_string_lossy().into_owned();
        let out = self.docker(
            ["cp".to_string(), source, tmp_arg],
            Duration::from_secs(300),
        )?;
        if !out.success() {
            let _ = fs::remove_file(&tmp);
            return Err(self.copy_error("read", remote, &out));
        }
        fs::rename(&tmp, local).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            file_error("write", local, e)
        })
    }

    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError> {
        let out = self.sh(posix::start_daemon_script(spec), Duration::from_secs(30))?;
        posix::finish_start(&self.name, spec, &out)
    }

    fn signal(&self, pid_file: &Path, signal: Signal) -> Result<bool, RemoteError> {
        let script = posix::signal_script(pid_file, Some(signal));
        let out = self.sh(script, Duration::from_secs(30))?;
        posix::finish_signal(&self.name, pid_file, Some(signal), &out)
    }

    fn is_running(&self, pid_file: &Path) -> Result<bool, RemoteError> {
        let out = self.sh(
            posix::signal_script(pid_file, None),
            Duration::from_secs(30),
        )?;
        posix::finish_signal(&self.name, pid_file, None, &out)
    }
}
