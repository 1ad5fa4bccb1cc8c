//! The [`Localhost`] backend: this machine, through `std::process`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self as nix_signal, Signal as NixSignal};
use nix::unistd::Pid;

use crate::error::RemoteError;
use crate::remote::{Cmd, DaemonSpec, ExitStatus, Output, Remote, Signal};

/// This machine, with no isolation: commands run as child processes of the controller.
///
/// Used by tests, and as the base of the local namespace backend: with a command
/// prefix such as `ip netns exec n1`, every command and daemon runs inside that network
/// namespace (which execs, so pids stay the node's), while files stay on the shared
/// filesystem.
#[derive(Debug)]
pub struct Localhost {
    name: String,
    prefix: Vec<String>,
    /// Daemons this value started, kept to reap them once they exit.
    daemons: Mutex<HashMap<u32, Child>>,
}

impl Default for Localhost {
    fn default() -> Localhost {
        Localhost::new()
    }
}

impl Localhost {
    /// This machine, named `localhost`.
    pub fn new() -> Localhost {
        Localhost::with_prefix("localhost", Vec::<String>::new())
    }

    /// This machine under the name `name`, running every command and daemon as
    /// `prefix… argv…` (e.g. `["ip", "netns", "exec", "n1"]`).
    pub fn with_prefix<I, S>(name: impl Into<String>, prefix: I) -> Localhost
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Localhost {
            name: name.into(),
            prefix: prefix.into_iter().map(Into::into).collect(),
            daemons: Mutex::new(HashMap::new()),
        }
    }

    /// The process to spawn for `cmd`: prefix, argv, environment and directory.
    fn command(&self, cmd: &Cmd) -> Result<Command, RemoteError> {
        if let Some(dir) = cmd.working_dir() {
            if let Err(source) = fs::metadata(dir) {
                return Err(self.file_error("use working directory", dir, source));
            }
        }
        let mut argv = self.prefix.iter().chain(cmd.argv());
        let program = argv.next().map(String::as_str).unwrap_or_default();
        let mut command = Command::new(program);
        command.args(argv).stdin(Stdio::null()).process_group(0);
        command.envs(cmd.envs().iter().map(|(k, v)| (k, v)));
        if let Some(dir) = cmd.working_dir() {
            command.current_dir(dir);
        }
        Ok(command)
    }

    fn spawn_error(&self, cmd: &Cmd, source: io::Error) -> RemoteError {
        let command = cmd.to_string();
        if source.kind() == io::ErrorKind::NotFound {
            let program = self
                .prefix
                .first()
                .map(String::as_str)
                .unwrap_or(cmd.program());
            return RemoteError::ProgramNotFound {
                host: self.name.clone(),
                command,
                program: program.to_string(),
            };
        }
        RemoteError::Spawn {
            host: self.name.clone(),
            command,
            source,
        }
    }

    fn file_error(&self, action: &'static str, path: &Path, source: io::Error) -> RemoteError {
        RemoteError::File {
            host: self.name.clone(),
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn timeout_error(&self, cmd: &Cmd) -> RemoteError {
        RemoteError::Timeout {
            host: self.name.clone(),
            command: cmd.to_string(),
            after: cmd.time_limit(),
        }
    }

    /// Copies `from` to `to` through a temporary file beside `to`, then renames it.
    fn copy(&self, from: &Path, to: &Path) -> Result<(), RemoteError> {
        if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| self.file_error("create directory", parent, e))?;
        }
        let mut tmp = to.as_os_str().to_owned();
        tmp.push(".faultline-tmp");
        let tmp = PathBuf::from(tmp);
        if let Err(e) = fs::copy(from, &tmp) {
            let _ = fs::remove_file(&tmp);
            let (action, path) = if from.is_file() {
                ("write", to)
            } else {
                ("read", from)
            };
            return Err(self.file_error(action, path, e));
        }
        fs::rename(&tmp, to).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.file_error("write", to, e)
        })
    }

    /// The pid in `pid_file`; `None` when there is no such file.
    fn read_pid(&self, pid_file: &Path) -> Result<Option<u32>, RemoteError> {
        let text = match fs::read_to_string(pid_file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.file_error("read", pid_file, e)),
        };
        match text.trim().parse::<u32>() {
            Ok(pid) if pid > 1 && i32::try_from(pid).is_ok() => Ok(Some(pid)),
            _ => Err(RemoteError::BadPidFile {
                host: self.name.clone(),
                pid_file: pid_file.to_path_buf(),
                content: text.chars().take(40).collect(),
            }),
        }
    }

    /// Reaps `pid` if this value started it and it has exited. Returns whether it is
    /// known to have exited.
    fn reap(&self, pid: u32) -> bool {
        let mut daemons = self
            .daemons
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let exited = match daemons.get_mut(&pid) {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => false,
        };
        if exited {
            daemons.remove(&pid);
        }
        exited
    }

    fn send(&self, pid: u32, signal: Option<Signal>) -> Result<bool, RemoteError> {
        // An exited daemon is not running, reaped or not; checked before signalling,
        // since the signal itself may end it at once.
        if self.reap(pid) || is_zombie(pid) {
            return Ok(false);
        }
        let raw = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
        let nix = signal.map(to_nix);
        // The whole group first (a shell's children too), then the process alone, in
        // case it is not a group leader.
        let result = match signal {
            Some(_) => match nix_signal::killpg(raw, nix) {
                Err(Errno::ESRCH) => nix_signal::kill(raw, nix),
                other => other,
            },
            None => nix_signal::kill(raw, nix),
        };
        match result {
            Ok(()) if signal == Some(Signal::Stop) => {
                wait_until_stopped(pid);
                Ok(true)
            }
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(Errno::EPERM) if signal.is_none() => Ok(true),
            Err(errno) => Err(RemoteError::Signal {
                host: self.name.clone(),
                pid,
                signal: signal.unwrap_or(Signal::Cont),
                reason: errno.desc().to_string(),
            }),
        }
    }
}

fn to_nix(signal: Signal) -> NixSignal {
    match signal {
        Signal::Kill => NixSignal::SIGKILL,
        Signal::Term => NixSignal::SIGTERM,
        Signal::Int => NixSignal::SIGINT,
        Signal::Hup => NixSignal::SIGHUP,
        Signal::Stop => NixSignal::SIGSTOP,
        Signal::Cont => NixSignal::SIGCONT,
    }
}

/// How long a paused process's threads may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Waits (up to [`STOP_TIMEOUT`]) until every thread of `pid` is stopped or gone:
/// SIGSTOP is delivered to each thread as it next runs, so a thread busy on another core
/// could still answer a request sent right after `kill` returned. A pause counts as done
/// only once nothing of the process runs.
fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !all_threads_stopped(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether no thread of `pid` is runnable (each is stopped `T`, traced `t`, a zombie or
/// dead), from `/proc/PID/task/*/stat`. A process that is gone counts as stopped.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        stat_state(&task.path().join("stat"))
            .is_none_or(|state| matches!(state, 'T' | 't' | 'Z' | 'X'))
    })
}

/// Whether `pid` is a zombie: exited, waiting for a parent that is not us to reap it.
/// The leader of a multi-threaded process turns zombie as soon as it exits, while its
/// other threads may still be dying with the process's files (a listening socket) open:
/// that is not exited yet, so a restart cannot fail on a port still bound.
fn is_zombie(pid: u32) -> bool {
    let zombie = stat_state(Path::new(&format!("/proc/{pid}/stat"))) == Some('Z');
    zombie && threads(pid).is_none_or(|n| n <= 1)
}

/// The state letter (`R`, `S`, `T`, `Z`…) of a `/proc/…/stat` file: the first field
/// after the command name's closing parenthesis. `None` if it cannot be read.
fn stat_state(stat_file: &Path) -> Option<char> {
    let stat = fs::read_to_string(stat_file).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// How many threads `pid` has (the `Threads:` line of `/proc/PID/status`).
fn threads(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Kills the process group led by `child` (spawned with `process_group(0)`).
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix_signal::killpg(Pid::from_raw(pid), NixSignal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads a pipe to its end on a thread, sending the bytes on `tx` tagged with `which`.
fn drain<R: Read + Send + 'static>(
    pipe: Option<R>,
    which: usize,
    tx: &mpsc::Sender<(usize, Vec<u8>)>,
) {
    let tx = tx.clone();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = tx.send((which, bytes));
    });
}

impl Remote for Localhost {
    fn host(&self) -> &str {
        &self.name
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let mut command = self.command(cmd)?;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let deadline = Instant::now() + cmd.time_limit();
        let mut child = command.spawn().map_err(|e| self.spawn_error(cmd, e))?;
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take(), 0, &tx);
        drain(child.stderr.take(), 1, &tx);
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    kill_group(&mut child);
                    return Err(self.timeout_error(cmd));
                }
                Ok(None) => {
                    thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(source) => {
                    kill_group(&mut child);
                    return Err(RemoteError::Spawn {
                        host: self.name.clone(),
                        command: cmd.to_string(),
                        source,
                    });
                }
            }
        };
        // The pipes close when every process holding them has exited; a background
        // process the command left behind may hold them open until the deadline.
        let mut streams = [Vec::new(), Vec::new()];
        for _ in 0..2 {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            match rx.recv_timeout(wait) {
                Ok((which, bytes)) => streams[which] = bytes,
                Err(_) => {
                    kill_group(&mut child);
                    return Err(self.timeout_error(cmd));
                }
            }
        }
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            (None, None) => ExitStatus::Code(-1),
        };
        let [stdout, stderr] = streams;
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError> {
        self.copy(local, remote)
    }

    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError> {
        self.copy(remote, local)
    }

    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError> {
        if let Some(pid) = self.read_pid(&spec.pid_file)? {
            if self.send(pid, None)? {
                return Err(RemoteError::AlreadyRunning {
                    host: self.name.clone(),
                    command: spec.cmd.to_string(),
                    pid,
                    pid_file: spec.pid_file.clone(),
                });
            }
        }
        for path in [&spec.pid_file, &spec.log_file] {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .map_err(|e| self.file_error("create directory", parent, e))?;
            }
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&spec.log_file)
            .map_err(|e| self.file_error("open log file", &spec.log_file, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| self.file_error("open log file", &spec.log_file, e))?;
        let mut command = self.command(&spec.cmd)?;
        command.stdout(log).stderr(log_err);
        let mut child = command
            .spawn()
            .map_err(|e| self.spawn_error(&spec.cmd, e))?;
        let pid = child.id();
        let mut tmp = spec.pid_file.as_os_str().to_owned();
        tmp.push(".faultline-tmp");
        let tmp = PathBuf::from(tmp);
        let written =
            fs::write(&tmp, format!("{pid}\n")).and_then(|()| fs::rename(&tmp, &spec.pid_file));
        if let Err(e) = written {
            kill_group(&mut child);
            let _ = fs::remove_file(&tmp);
            return Err(self.file_error("write pid file", &spec.pid_file, e));
        }
        self.daemons
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(pid, child);
        Ok(pid)
    }

    fn signal(&self, pid_file: &Path, signal: Signal) -> Result<bool, RemoteError> {
        match self.read_pid(pid_file)? {
            Some(pid) => self.send(pid, Some(signal)),
            None => Ok(false),
        }
    }

    fn is_running(&self, pid_file: &Path) -> Result<bool, RemoteError> {
        match self.read_pid(pid_file)? {
            Some(pid) => self.send(pid, None),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_is_no_zombie_and_has_threads() {
        let me = std::process::id();
        assert!(threads(me).is_some_and(|n| n >= 1));
        assert!(!is_zombie(me));
        assert_eq!(threads(u32::MAX), None);
        assert!(!is_zombie(u32::MAX));
    }

    #[test]
    fn a_stop_signal_returns_once_the_process_is_stopped() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        assert!(
            !all_threads_stopped(pid),
            "a sleeping process is not stopped"
        );
        let host = Localhost::new();
        assert!(host.send(pid, Some(Signal::Stop)).expect("stop"));
        assert!(
            all_threads_stopped(pid),
            "stop returned before the process stopped"
        );
        assert!(host.send(pid, Some(Signal::Cont)).expect("cont"));
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            all_threads_stopped(u32::MAX),
            "a gone process counts as stopped"
        );
    }
}
