//! [`Nsenter`]: a container's network namespace entered from the controller, for the
//! tools the node image lacks (nft, iptables, tc, the packet delayer).

use std::path::Path;
use std::sync::Arc;

use super::{DockerError, docker};
use crate::cleanup::{Registry, Resource};
use crate::error::RemoteError;
use crate::localhost::Localhost;
use crate::remote::{Cmd, DaemonSpec, ExitStatus, Output, Remote, Signal};

/// A container's network namespace, entered from the controller: commands run as
/// `nsenter -t PID -n …` (the container's init pid, looked up each time; a container
/// that is gone answers like a deleted namespace); files, daemons and signals stay on
/// the controller. Daemons run in the namespace too, recorded in the run's registry.
pub struct Nsenter {
    container: String,
    local: Localhost,
    registry: Arc<Registry>,
}

impl Nsenter {
    /// The namespace of `container`, its daemons recorded in `registry`.
    pub fn new(container: &str, registry: Arc<Registry>) -> Nsenter {
        Nsenter {
            container: container.to_string(),
            local: Localhost::new(),
            registry,
        }
    }

    /// `cmd` wrapped in `nsenter -t PID -n`, or `None` when the container is gone.
    fn enter(&self, cmd: &Cmd) -> Result<Option<Cmd>, RemoteError> {
        let pid = container_pid(&self.container).map_err(|e| RemoteError::Spawn {
            host: self.container.clone(),
            command: cmd.to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(pid.map(|pid| {
            Cmd::new("nsenter")
                .args(["-t".to_string(), pid.to_string(), "-n".to_string()])
                .args(cmd.argv().iter().cloned())
                .timeout(cmd.time_limit())
        }))
    }
}

impl Remote for Nsenter {
    fn host(&self) -> &str {
        &self.container
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        match self.enter(cmd)? {
            Some(wrapped) => self.local.run(&wrapped),
            None => Ok(Output {
                status: ExitStatus::Code(1),
                stdout: String::new(),
                stderr: format!(
                    "Cannot open network namespace: container {} is gone",
                    self.container
                ),
            }),
        }
    }

    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError> {
        self.local.upload(local, remote)
    }

    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError> {
        self.local.download(remote, local)
    }

    /// Starts the daemon on the controller inside the container's network namespace,
    /// and records its process in the run's registry (killing it if that fails).
    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError> {
        let not_running = || RemoteError::Spawn {
            host: self.container.clone(),
            command: spec.cmd.to_string(),
            source: std::io::Error::other(format!("container {} is not running", self.container)),
        };
        let wrapped = self.enter(&spec.cmd)?.ok_or_else(not_running)?;
        let mut entered = spec.clone();
        entered.cmd = wrapped;
        let pid = self.local.start_daemon(&entered)?;
        if let Some(resource) = Resource::process(pid)
            && let Err(e) = self.registry.record(resource)
        {
            let _ = self.local.signal(&spec.pid_file, Signal::Kill);
            return Err(RemoteError::Spawn {
                host: self.container.clone(),
                command: spec.cmd.to_string(),
                source: std::io::Error::other(format!(
                    "cannot record it in the run's state file: {e}"
                )),
            });
        }
        Ok(pid)
    }

    fn signal(&self, pid_file: &Path, signal: Signal) -> Result<bool, RemoteError> {
        self.local.signal(pid_file, signal)
    }

    fn is_running(&self, pid_file: &Path) -> Result<bool, RemoteError> {
        self.local.is_running(pid_file)
    }
}

/// The init pid of the running container `container` (`docker inspect`), `None` if the
/// container does not exist or is not running.
pub fn container_pid(container: &str) -> Result<Option<u32>, DockerError> {
    let out = docker(["inspect", "--format", "{{.State.Pid}}", container], 30)?;
    if !out.success() {
        if out.stderr.contains("No such") {
            return Ok(None);
        }
        return Err(DockerError::Command {
            command: format!("docker inspect {container}"),
            reason: out.stderr.trim().to_string(),
        });
    }
    Ok(out
        .stdout
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|pid| *pid != 0))
}
