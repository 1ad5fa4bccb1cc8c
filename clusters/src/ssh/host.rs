//! [`SshHost`]: one machine over one SSH session.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ssh2::{FileStat, OpenFlags, OpenType, Session};

use super::known_hosts::check_host_key;
use super::{HostSpec, SshConfig, SshError};
use crate::error::RemoteError;
use crate::posix;
use crate::remote::{Cmd, DaemonSpec, ExitStatus, Output, Remote, Signal};

/// Extra time the controller waits beyond a command's own limit, which the host
/// enforces itself (`timeout -s KILL`).
const GRACE: Duration = Duration::from_secs(10);

/// How many idle sessions a host keeps.
const MAX_IDLE: usize = 4;

/// The limit of the short helper commands (mkdir, mv, daemon scripts).
const HELPER_LIMIT: Duration = Duration::from_secs(30);

/// A machine reached over SSH: commands run through `sh -c` (under `sudo -n` when the
/// hosts file says so), files move over SFTP, daemons are started with `setsid` and pid
/// files on the host. Each call uses an idle session of the host, or opens another (so a
/// signal need not wait for a long command, and a broken connection is replaced).
pub struct SshHost {
    spec: HostSpec,
    config: SshConfig,
    /// Sessions not in use; a call takes one (or connects anew) and returns it after.
    idle: Mutex<Vec<Session>>,
    uploads: AtomicU64,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost").field("spec", &self.spec).finish()
    }
}

/// Why a remote command did not produce an output.
enum ExecError {
    Timeout,
    Ssh(String),
}

impl SshHost {
    /// Connects to `spec` with the timeouts, retries and host key policy of `config`:
    /// TCP connection and handshake retried up to `config.retries` times; the host key
    /// checked against `config.known_hosts`; then public key authentication.
    pub fn connect(spec: &HostSpec, config: &SshConfig) -> Result<SshHost, SshError> {
        let session = open_session(spec, config)?;
        Ok(SshHost {
            spec: spec.clone(),
            config: config.clone(),
            idle: Mutex::new(vec![session]),
            uploads: AtomicU64::new(0),
        })
    }

    /// The host's entry in the hosts file.
    pub fn spec(&self) -> &HostSpec {
        &self.spec
    }

    /// The hosts file's settings this host was connected with.
    pub fn config(&self) -> &SshConfig {
        &self.config
    }

    /// An idle session, or a new one (connecting again, with the host's retries).
    fn take(&self, what: &str) -> Result<Session, RemoteError> {
        if let Some(session) = self.idle_sessions().pop() {
            return Ok(session);
        }
        open_session(&self.spec, &self.config).map_err(|e| RemoteError::Spawn {
            host: self.spec.name.clone(),
            command: what.to_string(),
            source: io::Error::other(e.to_string()),
        })
    }

    /// Returns a session that still works to the idle ones.
    fn give(&self, session: Session) {
        let mut idle = self.idle_sessions();
        if idle.len() < MAX_IDLE {
            idle.push(session);
        }
    }

    fn idle_sessions(&self) -> MutexGuard<'_, Vec<Session>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A new, authenticated session to `spec`: TCP connection and handshake retried up to
/// `config.retries` times, the host key checked, then public key authentication.
fn open_session(spec: &HostSpec, config: &SshConfig) -> Result<Session, SshError> {
    let address = format!("{}:{}", spec.address, spec.port);
    let mut last = String::new();
    let mut session = None;
    for attempt in 0..config.retries {
        if attempt > 0 {
            thread::sleep(Duration::from_millis(200) * attempt);
        }
        match handshake(spec, config.connect_timeout) {
            Ok(s) => {
                session = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let Some(session) = session else {
        return Err(SshError::Connect {
            host: spec.name.clone(),
            address,
            attempts: config.retries,
            reason: last,
        });
    };
    check_host_key(&session, spec, config, &address)?;
    if let Err(e) = fs::metadata(&spec.key) {
        return Err(SshError::Auth {
            host: spec.name.clone(),
            address,
            user: spec.user.clone(),
            key: spec.key.clone(),
            reason: format!("cannot read the key: {e}"),
        });
    }
    let auth = session.userauth_pubkey_file(&spec.user, None, &spec.key, None);
    if let Err(e) = auth.and_then(|()| {
        if session.authenticated() {
            Ok(())
        } else {
            Err(ssh2::Error::from_errno(ssh2::ErrorCode::Session(-18)))
        }
    }) {
        return Err(SshError::Auth {
            host: spec.name.clone(),
            address,
            user: spec.user.clone(),
            key: spec.key.clone(),
            reason: e.message().to_string(),
        });
    }
    session.set_timeout(millis(HELPER_LIMIT));
    Ok(session)
}

impl SshHost {
    /// `script` as the command line sshd runs: `[sudo -n] sh -c 'script'`.
    fn wrap(&self, script: &str) -> String {
        let sudo = if self.spec.sudo { "sudo -n " } else { "" };
        format!("{sudo}sh -c {}", posix::quote(script))
    }

    /// Runs `line` over a new channel, collecting both streams, for at most `limit`.
    fn exec(&self, line: &str, limit: Duration) -> Result<Output, ExecError> {
        let deadline = Instant::now() + limit;
        let session = self.take(line).map_err(|e| ExecError::Ssh(e.to_string()))?;
        session.set_blocking(true);
        session.set_timeout(millis(limit));
        let ssh = |e: ssh2::Error| ExecError::Ssh(e.message().to_string());
        let mut channel = session.channel_session().map_err(ssh)?;
        channel.exec(line).map_err(ssh)?;
        session.set_blocking(false);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 16384];
        let result = loop {
            let mut progress = false;
            let mut failed = None;
            for stream in [0, 1] {
                let read = if stream == 0 {
                    channel.read(&mut buf)
                } else {
                    channel.stderr().read(&mut buf)
                };
                match read {
                    Ok(0) => {}
                    Ok(n) => {
                        progress = true;
                        let sink = if stream == 0 { &mut out } else { &mut err };
                        sink.extend_from_slice(&buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            if let Some(e) = failed {
                break Err(ExecError::Ssh(e));
            }
            if !progress && channel.eof() {
                break Ok(());
            }
            if Instant::now() >= deadline {
                break Err(ExecError::Timeout);
            }
            if !progress {
                thread::sleep(Duration::from_millis(2));
            }
        };
        session.set_blocking(true);
        session.set_timeout(millis(HELPER_LIMIT));
        match result {
            Err(ExecError::Timeout) => {
                let _ = channel.close();
                drop(channel);
                self.give(session);
                return Err(ExecError::Timeout);
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        channel.wait_close().map_err(ssh)?;
        let code = channel.exit_status().map_err(ssh)?;
        let signal = channel
            .exit_signal()
            .ok()
            .and_then(|s| s.exit_signal)
            .and_then(|name| signal_number(&name));
        drop(channel);
        self.give(session);
        Ok(Output {
            status: match signal {
                Some(n) => ExitStatus::Signal(n),
                None => ExitStatus::Code(code),
            },
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }

    /// Runs a helper `script` (`what` for messages), turning SSH failures into errors.
    fn script(&self, script: &str, what: &str) -> Result<Output, RemoteError> {
        self.exec(&self.wrap(script), HELPER_LIMIT)
            .map_err(|e| self.exec_error(what, HELPER_LIMIT, e))
    }

    /// Like [`SshHost::script`], failing on a non-zero exit.
    fn script_ok(&self, script: &str, what: &str) -> Result<Output, RemoteError> {
        let out = self.script(script, what)?;
        if out.success() {
            return Ok(out);
        }
        Err(RemoteError::Failed {
            host: self.spec.name.clone(),
            command: what.to_string(),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        })
    }

    fn exec_error(&self, command: &str, after: Duration, e: ExecError) -> RemoteError {
        match e {
            ExecError::Timeout => RemoteError::Timeout {
                host: self.spec.name.clone(),
                command: command.to_string(),
                after,
            },
            ExecError::Ssh(reason) => RemoteError::Spawn {
                host: self.spec.name.clone(),
                command: command.to_string(),
                source: io::Error::other(format!("ssh: {reason}")),
            },
        }
    }

    fn file_error(&self, action: &'static str, path: &Path, reason: impl ToString) -> RemoteError {
        RemoteError::File {
            host: self.spec.name.clone(),
            action,
            path: path.to_path_buf(),
            source: io::Error::other(reason.to_string()),
        }
    }

    /// Writes `local` to `remote` over SFTP, with `mode`.
    fn sftp_write(&self, local: &Path, remote: &Path, mode: u32) -> Result<(), RemoteError> {
        let local_error = |e: io::Error| RemoteError::File {
            host: "localhost".to_string(),
            action: "read",
            path: local.to_path_buf(),
            source: e,
        };
        let mut source = File::open(local).map_err(local_error)?;
        let session = self.take(&format!("SFTP write {}", remote.display()))?;
        let sftp = session
            .sftp()
            .map_err(|e| self.file_error("open SFTP for", remote, e))?;
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let mut target = sftp
            .open_mode(remote, flags, mode as i32, OpenType::File)
            .map_err(|e| self.file_error("write", remote, e))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = source.read(&mut buf).map_err(local_error)?;
            if n == 0 {
                break;
            }
            target
                .write_all(&buf[..n])
                .map_err(|e| self.file_error("write", remote, e))?;
        }
        let stat = FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(mode),
            atime: None,
            mtime: None,
        };
        target
            .setstat(stat)
            .map_err(|e| self.file_error("set permissions of", remote, e))?;
        drop(target);
        drop(sftp);
        self.give(session);
        Ok(())
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

fn signal_number(name: &str) -> Option<i32> {
    let n = match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    };
    Some(n)
}

/// A TCP connection and SSH handshake to `spec`, within `timeout` each.
fn handshake(spec: &HostSpec, timeout: Duration) -> Result<Session, String> {
    let addrs = (spec.address.as_str(), spec.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", spec.address))?;
    let mut last = format!("{} resolves to no address", spec.address);
    for addr in addrs {
        let tcp = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => tcp,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let mut session = Session::new().map_err(|e| e.message().to_string())?;
        session.set_tcp_stream(tcp);
        session.set_timeout(millis(timeout));
        match session.handshake() {
            Ok(()) => return Ok(session),
            Err(e) => last = format!("SSH handshake: {}", e.message()),
        }
    }
    Err(last)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn quote_path(path: &Path) -> String {
    posix::quote(&path.to_string_lossy())
}

impl Remote for SshHost {
    fn host(&self) -> &str {
        &self.spec.name
    }

    fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let start = Instant::now();
        let line = self.wrap(&posix::command_line(cmd));
        let out = self
            .exec(&line, cmd.time_limit() + GRACE)
            .map_err(|e| self.exec_error(&cmd.to_string(), cmd.time_limit(), e))?;
        posix::finish_run(&self.spec.name, cmd, out, start.elapsed())
    }

    fn upload(&self, local: &Path, remote: &Path) -> Result<(), RemoteError> {
        let mode = fs::metadata(local)
            .map_err(|e| RemoteError::File {
                host: "localhost".to_string(),
                action: "read",
                path: local.to_path_buf(),
                source: e,
            })?
            .permissions()
            .mode()
            & 0o7777;
        if let Some(parent) = remote.parent().filter(|p| !p.as_os_str().is_empty()) {
            let script = format!("mkdir -p {}", quote_path(parent));
            self.script_ok(&script, &format!("mkdir -p {}", parent.display()))?;
        }
        // Under sudo, SFTP (as the login user) writes to /tmp and root moves it in place.
        let tmp = if self.spec.sudo {
            let n = self.uploads.fetch_add(1, Ordering::Relaxed);
            PathBuf::from(format!("/tmp/faultline-upload-{}-{n}", std::process::id()))
        } else {
            with_suffix(remote, ".faultline-tmp")
        };
        self.sftp_write(local, &tmp, mode)?;
        let script = format!("mv -f {} {}", quote_path(&tmp), quote_path(remote));
        self.script_ok(
            &script,
            &format!("mv {} {}", tmp.display(), remote.display()),
        )?;
        Ok(())
    }

    fn download(&self, remote: &Path, local: &Path) -> Result<(), RemoteError> {
        let local_error = |action, path: &Path, e| RemoteError::File {
            host: "localhost".to_string(),
            action,
            path: path.to_path_buf(),
            source: e,
        };
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| local_error("create directory", parent, e))?;
        }
        let tmp = with_suffix(local, ".faultline-tmp");
        let copied = (|| {
            let session = self.take(&format!("SFTP read {}", remote.display()))?;
            let sftp = session
                .sftp()
                .map_err(|e| self.file_error("open SFTP for", remote, e))?;
            let mut source = sftp
                .open(remote)
                .map_err(|e| self.file_error("read", remote, e))?;
            let perm = source.stat().ok().and_then(|s| s.perm).unwrap_or(0o644) & 0o7777;
            let mut target = File::create(&tmp).map_err(|e| local_error("write", &tmp, e))?;
            io::copy(&mut source, &mut target).map_err(|e| self.file_error("read", remote, e))?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(perm))
                .map_err(|e| local_error("set permissions of", &tmp, e))?;
            drop(source);
            drop(sftp);
            self.give(session);
            Ok(())
        })();
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, local).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            local_error("write", local, e)
        })
    }

    fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, RemoteError> {
        let out = self.script(&posix::start_daemon_script(spec), &spec.cmd.to_string())?;
        posix::finish_start(&self.spec.name, spec, &out)
    }

    fn signal(&self, pid_file: &Path, signal: Signal) -> Result<bool, RemoteError> {
        let what = format!("kill -s {signal} (pid file {})", pid_file.display());
        let out = self.script(&posix::signal_script(pid_file, Some(signal)), &what)?;
        posix::finish_signal(&self.spec.name, pid_file, Some(signal), &out)
    }

    fn is_running(&self, pid_file: &Path) -> Result<bool, RemoteError> {
        let what = format!("check pid file {}", pid_file.display());
        let out = self.script(&posix::signal_script(pid_file, None), &what)?;
        posix::finish_signal(&self.spec.name, pid_file, None, &out)
    }
}
