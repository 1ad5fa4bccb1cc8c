//! Shell scripts for hosts reached through a POSIX `sh` (Docker containers, SSH hosts):
//! running a command with a remote time limit, starting a daemon with a pid file,
//! signalling it, and reading the answers back.

use std::path::Path;
use std::time::Duration;

use crate::error::RemoteError;
use crate::remote::{Cmd, DaemonSpec, ExitStatus, Output, Signal};

/// `s` quoted for `sh`: as is when it is plainly safe, else in single quotes.
pub(crate) fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

/// The seconds given to the remote `timeout`: the limit, rounded up, at least one.
fn remote_secs(limit: Duration) -> u64 {
    limit.as_secs() + u64::from(limit.subsec_nanos() > 0).max(u64::from(limit.as_secs() == 0))
}

/// `[cd DIR &&] exec [timeout -s KILL N] [env K=V…] argv…`: `cmd` for `sh -c`, killed on
/// the host itself when its time is up (so nothing is left running).
pub(crate) fn command_line(cmd: &Cmd) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.working_dir() {
        line.push_str(&format!("cd {} && ", quote_path(dir)));
    }
    line.push_str(&format!(
        "exec timeout -s KILL {} ",
        remote_secs(cmd.time_limit())
    ));
    line.push_str(&program_line(cmd));
    line
}

/// `[env K=V…] argv…`, quoted.
fn program_line(cmd: &Cmd) -> String {
    let mut words = Vec::new();
    if !cmd.envs().is_empty() {
        words.push("env".to_string());
        for (k, v) in cmd.envs() {
            words.push(quote(&format!("{k}={v}")));
        }
    }
    words.extend(cmd.argv().iter().map(|a| quote(a)));
    words.join(" ")
}

/// Turns the raw result of [`command_line`] into [`Remote::run`](crate::Remote::run)'s:
/// a kill by the remote `timeout` after the limit is a time-out, exit 127 with "not
/// found" a missing program.
pub(crate) fn finish_run(
    host: &str,
    cmd: &Cmd,
    output: Output,
    elapsed: Duration,
) -> Result<Output, RemoteError> {
    let killed = matches!(
        output.status,
        ExitStatus::Code(124 | 137) | ExitStatus::Signal(9)
    );
    if killed && elapsed >= cmd.time_limit() {
        return Err(RemoteError::Timeout {
            host: host.to_string(),
            command: cmd.to_string(),
            after: cmd.time_limit(),
        });
    }
    let missing = [
        "not found",
        "can't execute",
        "failed to run command",
        "No such file",
    ]
    .iter()
    .any(|m| output.stderr.contains(m));
    if output.status == ExitStatus::Code(127) && missing {
        return Err(RemoteError::ProgramNotFound {
            host: host.to_string(),
            command: cmd.to_string(),
            program: cmd.program().to_string(),
        });
    }
    Ok(output)
}

/// Sets `st` to the state letter of the process in `$p` (empty when it does not exist).
const STATE_OF_P: &str = r"st=$(sed 's/.*) \(.\).*/\1/' /proc/$p/stat 2>/dev/null)";

/// Reads the pid file into `$p`; prints `none` or `bad …` and exits when there is none.
fn read_pid(pid_file: &Path) -> String {
    format!(
        "pf={}; [ -f \"$pf\" ] || {{ echo none; exit 0; }}; p=$(cat \"$pf\"); \
         case \"$p\" in ''|*[!0-9]*|0|1) echo \"bad $p\"; exit 0;; esac; {STATE_OF_P}; ",
        quote_path(pid_file)
    )
}

/// A script starting `spec` detached (`setsid`, own session and process group, input
/// closed, output appended to the log), writing its pid; prints `started PID`,
/// `running PID` (already running), or `notfound`.
pub(crate) fn start_daemon_script(spec: &DaemonSpec) -> String {
    let pid_file = quote_path(&spec.pid_file);
    let log_file = quote_path(&spec.log_file);
    let mut s = format!(
        "pf={pid_file}; lf={log_file}; mkdir -p \"$(dirname \"$pf\")\" \"$(dirname \"$lf\")\" || exit 1; \
         if [ -f \"$pf\" ]; then p=$(cat \"$pf\"); case \"$p\" in ''|*[!0-9]*) ;; *) {STATE_OF_P}; \
         if [ -n \"$st\" ] && [ \"$st\" != Z ]; then echo \"running $p\"; exit 0; fi;; esac; fi; \
         command -v {} >/dev/null 2>&1 || {{ echo notfound; exit 0; }}; ",
        quote(spec.cmd.program())
    );
    if let Some(dir) = spec.cmd.working_dir() {
        s.push_str(&format!("cd {} || exit 1; ", quote_path(dir)));
    }
    s.push_str(&format!(
        "setsid {} >> \"$lf\" 2>&1 < /dev/null & p=$!; \
         echo $p > \"$pf.faultline-tmp\" && mv -f \"$pf.faultline-tmp\" \"$pf\" && echo \"started $p\"",
        program_line(&spec.cmd)
    ));
    s
}

/// The answer of [`start_daemon_script`].
pub(crate) fn finish_start(
    host: &str,
    spec: &DaemonSpec,
    output: &Output,
) -> Result<u32, RemoteError> {
    let last = output.stdout.lines().last().unwrap_or_default();
    let pid = |s: &str| s.trim().parse::<u32>().ok();
    if let Some(p) = last.strip_prefix("started ").and_then(pid) {
        return Ok(p);
    }
    if let Some(p) = last.strip_prefix("running ").and_then(pid) {
        return Err(RemoteError::AlreadyRunning {
            host: host.to_string(),
            command: spec.cmd.to_string(),
            pid: p,
            pid_file: spec.pid_file.clone(),
        });
    }
    if last == "notfound" {
        return Err(RemoteError::ProgramNotFound {
            host: host.to_string(),
            command: spec.cmd.to_string(),
            program: spec.cmd.program().to_string(),
        });
    }
    Err(RemoteError::Failed {
        host: host.to_string(),
        command: spec.cmd.to_string(),
        status: output.status,
        stderr: format!("{} {}", output.stdout.trim(), output.stderr.trim())
            .trim()
            .to_string(),
    })
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Kill => "KILL",
        Signal::Term => "TERM",
        Signal::Int => "INT",
        Signal::Hup => "HUP",
        Signal::Stop => "STOP",
        Signal::Cont => "CONT",
    }
}

/// A script sending `signal` (or none: only checking) to the daemon of `pid_file` and
/// its process group; prints `sent`/`running`, `none`, `gone`, `bad …` or `fail PID`.
pub(crate) fn signal_script(pid_file: &Path, signal: Option<Signal>) -> String {
    let mut s = read_pid(pid_file);
    s.push_str("if [ -z \"$st\" ] || [ \"$st\" = Z ]; then echo gone; exit 0; fi; ");
    match signal {
        None => s.push_str("echo running"),
        Some(signal) => {
            let name = signal_name(signal);
            // A stop is done once no thread of the daemon runs any more (up to 2 s).
            let settle = if signal == Signal::Stop {
                "n=0; while [ $n -lt 100 ] && sed -n 's/.*) \\([RSD]\\).*/\\1/p' \
                 /proc/$p/task/*/stat 2>/dev/null | grep -q .; do sleep 0.02; n=$((n+1)); done; "
            } else {
                ""
            };
            s.push_str(&format!(
                "if kill -s {name} -- -$p 2>/dev/null || kill -s {name} $p; then {settle}echo sent; \
                 else {STATE_OF_P}; if [ -z \"$st\" ] || [ \"$st\" = Z ]; then echo gone; \
                 else echo \"fail $p\"; fi; fi"
            ));
        }
    }
    s
}

/// The answer of [`signal_script`].
pub(crate) fn finish_signal(
    host: &str,
    pid_file: &Path,
    signal: Option<Signal>,
    output: &Output,
) -> Result<bool, RemoteError> {
    let last = output.stdout.lines().last().unwrap_or_default().trim();
    match last {
        "sent" | "running" => Ok(true),
        "none" | "gone" => Ok(false),
        _ => {
            if let Some(content) = last.strip_prefix("bad") {
                return Err(RemoteError::BadPidFile {
                    host: host.to_string(),
                    pid_file: pid_file.to_path_buf(),
                    content: content.trim().chars().take(40).collect(),
                });
            }
            let pid = last
                .strip_prefix("fail ")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            Err(RemoteError::Signal {
                host: host.to_string(),
                pid,
                signal: signal.unwrap_or(Signal::Cont),
                reason: format!("{} {}", output.stdout.trim(), output.stderr.trim())
                    .trim()
                    .to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_and_limit() {
        let cmd = Cmd::new("echo")
            .arg("a b")
            .env("K", "it's")
            .dir("/tmp/x y")
            .timeout(Duration::from_millis(1500));
        assert_eq!(
            command_line(&cmd),
            r"cd '/tmp/x y' && exec timeout -s KILL 2 env 'K=it'\''s' echo 'a b'"
        );
        assert_eq!(remote_secs(Duration::from_secs(3)), 3);
        assert_eq!(remote_secs(Duration::ZERO), 1);
    }

    #[test]
    fn scripts_run_under_sh() {
        let dir = std::env::temp_dir().join(format!("faultline-posix-{}", std::process::id()));
        let pid_file = dir.join("d.pid");
        let spec = DaemonSpec::new(Cmd::new("sleep").arg("30"), &pid_file, dir.join("d.log"));
        let sh = |script: String| {
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            Output {
                status: ExitStatus::Code(out.status.code().unwrap()),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        };
        let check = |signal| {
            let out = sh(signal_script(&pid_file, signal));
            finish_signal("h", &pid_file, signal, &out)
        };
        assert!(!check(None).unwrap());
        let pid = finish_start("h", &spec, &sh(start_daemon_script(&spec))).unwrap();
        assert!(pid > 1);
        assert!(matches!(
            finish_start("h", &spec, &sh(start_daemon_script(&spec))),
            Err(RemoteError::AlreadyRunning { .. })
        ));
        assert!(check(None).unwrap());
        // A stop answers once the daemon is stopped; it is still running.
        assert!(check(Some(Signal::Stop)).unwrap());
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert!(state.contains(") T "), "not stopped: {state}");
        assert!(check(None).unwrap());
        assert!(check(Some(Signal::Cont)).unwrap());
        assert!(check(Some(Signal::Kill)).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(!check(None).unwrap());
        let missing = DaemonSpec::new(
            Cmd::new("no-such-program-x"),
            dir.join("m.pid"),
            dir.join("m.log"),
        );
        assert!(matches!(
            finish_start("h", &missing, &sh(start_daemon_script(&missing))),
            Err(RemoteError::ProgramNotFound { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
