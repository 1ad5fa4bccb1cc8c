//! The [`Remote`] trait and the values it takes and returns.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RemoteError;
pub use crate::status::{ExitStatus, Signal};

/// A command to run on a host: a program and its arguments (never through a shell),
/// extra environment variables, a working directory, and a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    timeout: Duration,
}

impl Cmd {
    /// The default timeout: one minute.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Runs `program` (looked up on the host's `PATH` unless it contains a `/`), with no
    /// arguments and the default timeout.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            argv: vec![program.into()],
            env: Vec::new(),
            dir: None,
            timeout: Cmd::DEFAULT_TIMEOUT,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.argv.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (on top of the host's environment).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs in `dir` on the host.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// Gives up, and kills the command, after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The program.
    pub fn program(&self) -> &str {
        &self.argv[0]
    }

    /// The extra environment variables, in order.
    pub fn envs(&self) -> &[(String, String)] {
        &self.env
    }

    /// The working directory, if set.
    pub fn working_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The timeout.
    pub fn time_limit(&self) -> Duration {
        self.timeout
    }
}

/// Displays the command as a shell would read it, quoting where needed:
/// `sh -c 'echo hi'`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.argv.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                f.write_str(arg)?;
            } else {
                write!(f, "'{}'", arg.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

impl Output {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0)
    }
}

/// A daemon to start: its command (whose timeout is ignored), where to write its pid,
/// and where its standard output and error go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// The command; it must stay in the foreground (not fork itself away).
    pub cmd: Cmd,
    /// The pid file, on the host.
    pub pid_file: PathBuf,
    /// The log file, on the host; appended to.
    pub log_file: PathBuf,
}

impl DaemonSpec {
    /// A daemon running `cmd`, with its pid in `pid_file` and its output in `log_file`.
    pub fn new(cmd: Cmd, pid_file: impl Into<PathBuf>, log_file: impl Into<PathBuf>) -> DaemonSpec {
        DaemonSpec {
            cmd,
            pid_file: pid_file.into(),
            log_file: log_file.into(),
        }
    }
}

/// A host the controller can reach: run commands, move files, start and signal
/// daemons (Jepsen's `control` remote plus its daemon utilities).
///
/// Every method is synchronous and bounded in time; errors name the host and the
/// command or file. A backend may be used from several threads at once.
pub trait Remote: Send + Sync {
    /// The host's name, as errors and logs show it (e.g. `n1`, `localhost`).
    fn host(&self) -> &str;

    /// Runs `cmd` on the host and waits for it, at most its timeout.
    ///
    /// A command that runs and exits, with any code, is `Ok`: check
    /// [`Output::success`], or use [`Remote::run_ok`]. Errors: the program does not exist
    /// ([`RemoteError::ProgramNotFound`]), cannot be started, or is still running at the
    /// timeout ([`RemoteError::Timeout`]), in which case it has been killed, with every
    /// process it started in its process group. Never runs the command through a shell
    /// (use `sh -c` explicitly) and never leaves it running.
    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError>;

    /// Copies the local file `local` to `remote` on the host, creating missing parent
    /// directories and replacing an existing file (atomically where the backend can).
    /// Keeps the permission bits. Files only, not directories.
    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError>;

    /// Copies the file `remote` on the host to `local`, like [`Remote::upload`] in
    /// reverse.
    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError>;

    /// Starts `spec.cmd` in the background, detached from the controller (its own
    /// process group, standard input closed, output appended to `spec.log_file`), writes
    /// its pid to `spec.pid_file` and returns it. Creates missing parent directories.
    /// Does not wait for the daemon to be ready. Refuses
    /// ([`RemoteError::AlreadyRunning`]) when the pid file names a running process.
    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError>;

    /// Sends `signal` to the daemon whose pid `pid_file` holds, and to its process
    /// group. `Ok(true)` if it was running and got the signal; `Ok(false)` if there is no
    /// pid file or the daemon is no longer running (neither is an error, so that
    /// killing is idempotent). Does not remove the pid file.
    fn signal(&self, pid_file: &Path, signal: Signal) -> Result<bool, RemoteError>;

    /// Whether the daemon whose pid `pid_file` holds is running (a stopped daemon is
    /// running; one that exited is not, even before anyone reaps it).
    fn is_running(&self, pid_file: &Path) -> Result<bool, RemoteError>;

    /// Runs `cmd` like [`Remote::run`], and turns a non-zero exit into
    /// [`RemoteError::Failed`] carrying its standard error.
    fn run_ok(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let output = self.run(cmd)?;
        if output.success() {
            return Ok(output);
        }
        Err(RemoteError::Failed {
            host: self.host().to_string(),
            command: cmd.to_string(),
            status: output.status,
            stderr: output.stderr.trim_end().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_display_as_a_shell_would_read_them() {
        let cmd = Cmd::new("sh")
            .args(["-c", "echo 'hi'; exit 3"])
            .arg("")
            .arg("a=b,c");
        assert_eq!(
            cmd.to_string(),
            r#"sh -c 'echo '\''hi'\''; exit 3' '' a=b,c"#
        );
    }

    #[test]
    fn builder_sets_everything() {
        let cmd = Cmd::new("ls")
            .env("A", "1")
            .dir("/tmp")
            .timeout(Duration::from_secs(2));
        assert_eq!(cmd.program(), "ls");
        assert_eq!(cmd.envs(), [("A".to_string(), "1".to_string())]);
        assert_eq!(cmd.working_dir(), Some(Path::new("/tmp")));
        assert_eq!(cmd.time_limit(), Duration::from_secs(2));
        assert_eq!(ExitStatus::Signal(9).to_string(), "signal 9");
        assert_eq!(Signal::Stop.to_string(), "SIGSTOP");
    }
}
