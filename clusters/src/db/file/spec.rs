//! The `--db-file` format: [`DbFile::load`] reads and checks it; placeholders and their
//! expansion.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::ClusterError;
use crate::remote::Signal;

/// How long to wait between two readiness checks when the file does not say.
pub const DEFAULT_READY_INTERVAL: Duration = Duration::from_millis(20);

/// Every placeholder a command may hold, for messages.
pub const PLACEHOLDERS: &[&str] = &[
    "node",
    "id",
    "addr",
    "port",
    "peer_port",
    "peers",
    "others",
    "dir",
    "data_dir",
    "log_file",
];

/// The placeholders of one node (the `peer` template may use only these).
const NODE_PLACEHOLDERS: &[&str] = &["node", "id", "addr", "port", "peer_port", "dir", "data_dir"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Spanned<String>,
    port: Spanned<i64>,
    peer_port: Option<Spanned<i64>>,
    peer: Option<Spanned<String>>,
    #[serde(default)]
    upload: Vec<RawUpload>,
    start: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    stop: RawStop,
    #[serde(default)]
    logs: Vec<Spanned<String>>,
    #[serde(default)]
    log_patterns: Vec<Spanned<String>>,
    leader: Option<Spanned<Vec<Spanned<String>>>>,
    ready: Option<RawReady>,
    nodes: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    client: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    from: Spanned<String>,
    to: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    signal: Option<Spanned<String>>,
    command: Option<Spanned<Vec<Spanned<String>>>>,
    timeout: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    port: Option<Spanned<i64>>,
    command: Option<Spanned<Vec<Spanned<String>>>>,
    timeout: Option<Spanned<f64>>,
    interval: Option<Spanned<f64>>,
}

/// How a node is stopped (by the kill nemesis and at teardown).
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Send this signal to the process group, then wait.
    Signal(Signal),
    /// Run this command on the node's host, then wait.
    Command(Vec<String>),
}

/// How the harness tells a node serves clients.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    /// A TCP connection to the node's address on this port succeeds.
    Port(u16),
    /// This command, run on the controller in the file's directory, exits 0.
    Command(Vec<String>),
}

/// A checked database description: the contents of a `--db-file`.
#[derive(Debug, Clone, PartialEq)]
pub struct DbFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The database's name, e.g. `etcd`.
    pub name: String,
    /// The client port (`{port}`).
    pub port: u16,
    /// The peer port (`{peer_port}`), if any.
    pub peer_port: Option<u16>,
    /// One entry of `{peers}` (node placeholders only).
    pub peer: String,
    /// Files to copy to each node: local path (resolved against the file's directory),
    /// and destination relative to the node's directory (may hold placeholders).
    pub upload: Vec<(PathBuf, String)>,
    /// The start command (argv, with placeholders).
    pub start: Vec<String>,
    /// Extra environment variables of the start command (values may hold placeholders).
    pub env: Vec<(String, String)>,
    /// How to stop a node.
    pub stop: Stop,
    /// How long a stopped node may take to exit before SIGKILL.
    pub stop_timeout: Duration,
    /// Extra log files on the host (the process's output always goes to `node.log`).
    pub logs: Vec<String>,
    /// Crash patterns of the logs (`log_patterns`), beyond the default set: substrings,
    /// `^` first to anchor one at the line's start.
    pub log_patterns: Vec<String>,
    /// The command that prints the current leader, if any (run on the controller).
    pub leader: Option<Vec<String>>,
    /// The readiness check.
    pub ready: Ready,
    /// How long a node may take to become ready, if the file says.
    pub ready_timeout: Option<Duration>,
    /// How long to wait between two readiness checks.
    pub ready_interval: Duration,
    /// How many nodes the database runs on, if the file fixes it (1: a single server).
    pub nodes: Option<usize>,
    /// The user the start command runs as (owner of `{data_dir}`), if not root.
    pub user: Option<String>,
    /// The client program (a shell command run in the file's directory) for runs that
    /// give no `--client-cmd`.
    pub client: Option<String>,
}

/// `FILE:LINE: message` for the text `text` of `path`, at byte `offset`.
fn at(path: &Path, text: &str, offset: usize, message: impl AsRef<str>) -> ClusterError {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    ClusterError::Config(format!("{}:{line}: {}", path.display(), message.as_ref()))
}

/// The placeholders of `template` (`{name}`; `{{` and `}}` are literal braces), or the
/// first syntax problem.
fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|(_, c)| *c == '{') => {
                chars.next();
            }
            '}' if chars.peek().is_some_and(|(_, c)| *c == '}') => {
                chars.next();
            }
            '{' => {
                let rest = &template[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!(
                        "unclosed `{{` in {template:?} (write `{{{{` for a literal brace)"
                    ));
                };
                out.push(rest[..end].to_string());
                while chars.peek().is_some_and(|(j, _)| *j <= i + 1 + end) {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "unmatched `}}` in {template:?} (write `}}}}` for a literal brace)"
                ));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Replaces each placeholder of `template` with its value from `values` (checked
/// templates only: unknown ones are left as they are).
pub(super) fn expand(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) {
            let name = &tail[1..end];
            match values.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

impl DbFile {
    /// Reads and checks the database file `path`.
    pub fn load(path: &Path) -> Result<DbFile, ClusterError> {
        let text = fs::read_to_string(path).map_err(|e| {
            ClusterError::Config(format!("{}: cannot read the db file: {e}", path.display()))
        })?;
        DbFile::parse(&text, path)
    }

    /// Parses and checks `text`, read from `path` (for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<DbFile, ClusterError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_string();
            match e.span() {
                Some(span) => at(path, text, span.start, message),
                None => ClusterError::Config(format!("{}: {message}", path.display())),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let err = |offset: usize, message: String| at(path, text, offset, message);
        let port_of = |value: &Spanned<i64>, what: &str| {
            u16::try_from(*value.get_ref())
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    err(
                        value.span().start,
                        format!("{what} = {}: must be a port, 1 to 65535", value.get_ref()),
                    )
                })
        };
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(err(
                raw.name.span().start,
                format!(
                    "name = {:?}: use letters, digits, `-`, `_` and `.`",
                    raw.name.get_ref()
                ),
            ));
        }
        let port = port_of(&raw.port, "port")?;
        let peer_port = raw
            .peer_port
            .as_ref()
            .map(|p| port_of(p, "peer_port"))
            .transpose()?;
        let mut known: Vec<&str> = PLACEHOLDERS.to_vec();
        if peer_port.is_none() {
            known.retain(|p| *p != "peer_port");
        }
        let check = |template: &Spanned<String>, allowed: &[&str], what: &str| {
            let found =
                placeholders(template.get_ref()).map_err(|m| err(template.span().start, m))?;
            for p in found {
                if !allowed.contains(&p.as_str()) {
                    let hint = if p == "peer_port" && peer_port.is_none() {
                        " (set `peer_port` to use it)".to_string()
                    } else if PLACEHOLDERS.contains(&p.as_str()) {
                        format!(" here (only {} in {what})", allowed.join(", "))
                    } else {
                        format!("; expected one of {}", known.join(", "))
                    };
                    return Err(err(
                        template.span().start,
                        format!("unknown placeholder `{{{p}}}` in {what}{hint}"),
                    ));
                }
            }
            Ok(template.get_ref().clone())
        };
        let node_only: Vec<&str> = NODE_PLACEHOLDERS
            .iter()
            .copied()
            .filter(|p| known.contains(p))
            .collect();
        let default_peer = if peer_port.is_some() {
            "{node}={addr}:{peer_port}"
        } else {
            "{node}={addr}"
        };
        let peer = match &raw.peer {
            Some(p) => check(p, &node_only, "`peer`")?,
            None => default_peer.to_string(),
        };
        let command = |argv: &Spanned<Vec<Spanned<String>>>, what: &str| {
            if argv.get_ref().is_empty() {
                return Err(err(
                    argv.span().start,
                    format!("{what} is empty: give the program and its arguments"),
                ));
            }
            argv.get_ref()
                .iter()
                .map(|a| check(a, &known, what))
                .collect::<Result<Vec<String>, ClusterError>>()
        };
        let start = command(&raw.start, "`start`")?;
        let mut env = Vec::new();
        for (key, value) in &raw.env {
            env.push((key.clone(), check(value, &known, "`env`")?));
        }
        let mut upload = Vec::new();
        for u in &raw.upload {
            let from = base.join(u.from.get_ref());
            if !from.is_file() {
                return Err(err(
                    u.from.span().start,
                    format!(
                        "upload from {:?}: no such file ({})",
                        u.from.get_ref(),
                        from.display()
                    ),
                ));
            }
            let to = check(&u.to, &known, "`upload.to`")?;
            if to.is_empty() || Path::new(&to).is_absolute() || to.split('/').any(|c| c == "..") {
                return Err(err(
                    u.to.span().start,
                    format!(
                        "upload to {to:?}: must be a relative path inside the node's directory"
                    ),
                ));
            }
            upload.push((from, to));
        }
        let stop = match (&raw.stop.signal, &raw.stop.command) {
            (Some(_), Some(c)) => {
                return Err(err(
                    c.span().start,
                    "[stop] has both `signal` and `command`: give one".into(),
                ));
            }
            (Some(s), None) => Stop::Signal(parse_signal(s.get_ref()).ok_or_else(|| {
                err(
                    s.span().start,
                    format!(
                        "stop signal {:?}: expected SIGKILL, SIGTERM, SIGINT or SIGHUP",
                        s.get_ref()
                    ),
                )
            })?),
            (None, Some(c)) => Stop::Command(command(c, "`stop.command`")?),
            (None, None) => Stop::Signal(Signal::Kill),
        };
        let seconds = |value: &Option<Spanned<f64>>, what: &str, default: f64| match value {
            None => Ok(Duration::from_secs_f64(default)),
            Some(v) if v.get_ref().is_finite() && (0.0..=3600.0).contains(v.get_ref()) => {
                Ok(Duration::from_secs_f64(*v.get_ref()))
            }
            Some(v) => Err(err(
                v.span().start,
                format!("{what} = {}: must be seconds, 0 to 3600", v.get_ref()),
            )),
        };
        let stop_timeout = seconds(&raw.stop.timeout, "stop.timeout", 10.0)?;
        let logs = raw
            .logs
            .iter()
            .map(|l| check(l, &known, "`logs`"))
            .collect::<Result<Vec<_>, _>>()?;
        let log_patterns = raw
            .log_patterns
            .iter()
            .map(
                |p| match p.get_ref().strip_prefix('^').unwrap_or(p.get_ref()) {
                    "" => Err(err(
                        p.span().start,
                        format!(
                            "log_patterns: {:?} is empty and would match every line",
                            p.get_ref()
                        ),
                    )),
                    _ => Ok(p.get_ref().clone()),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        let leader = raw
            .leader
            .as_ref()
            .map(|l| command(l, "`leader`"))
            .transpose()?;
        let ready_interval = match raw.ready.as_ref().and_then(|r| r.interval.as_ref()) {
            Some(v) if v.get_ref().is_finite() && (0.001..=60.0).contains(v.get_ref()) => {
                Duration::from_secs_f64(*v.get_ref())
            }
            Some(v) => {
                return Err(err(
                    v.span().start,
                    format!(
                        "ready.interval = {}: must be seconds, 0.001 to 60",
                        v.get_ref()
                    ),
                ));
            }
            None => DEFAULT_READY_INTERVAL,
        };
        let user = raw
            .user
            .as_ref()
            .map(|u| {
                let name = u.get_ref();
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && name.len() <= 32
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
                if valid {
                    Ok(name.clone())
                } else {
                    Err(err(
                        u.span().start,
                        format!(
                            "user = {name:?}: a user name on the hosts, e.g. \"postgres\" \
                             (lower-case letters, digits, `_` and `-`)"
                        ),
                    ))
                }
            })
            .transpose()?;
        let client = match &raw.client {
            Some(c) if c.get_ref().trim().is_empty() => {
                return Err(err(
                    c.span().start,
                    "client is empty: give the command that runs the client program".into(),
                ));
            }
            c => c.as_ref().map(|c| c.get_ref().clone()),
        };
        let (ready, ready_timeout) = match &raw.ready {
            None => (Ready::Port(port), None),
            Some(r) => {
                let timeout = r
                    .timeout
                    .is_some()
                    .then(|| seconds(&r.timeout, "ready.timeout", 60.0))
                    .transpose()?;
                let ready = match (&r.port, &r.command) {
                    (Some(_), Some(c)) => {
                        return Err(err(
                            c.span().start,
                            "[ready] has both `port` and `command`: give one".into(),
                        ));
                    }
                    (Some(p), None) => Ready::Port(port_of(p, "ready.port")?),
                    (None, Some(c)) => Ready::Command(command(c, "`ready.command`")?),
                    (None, None) => Ready::Port(port),
                };
                (ready, timeout)
            }
        };
        let nodes = raw
            .nodes
            .as_ref()
            .map(|n| {
                usize::try_from(*n.get_ref())
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| {
                        err(
                            n.span().start,
                            format!(
                                "nodes = {}: must be how many nodes the database runs on, 1 to 200",
                                n.get_ref()
                            ),
                        )
                    })
            })
            .transpose()?;
        Ok(DbFile {
            path: path.to_path_buf(),
            name,
            port,
            peer_port,
            peer,
            upload,
            start,
            env,
            stop,
            stop_timeout,
            logs,
            log_patterns,
            leader,
            ready,
            ready_timeout,
            ready_interval,
            nodes,
            user,
            client,
        })
    }

    /// The directory relative paths resolve against, and controller commands run in.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

fn parse_signal(name: &str) -> Option<Signal> {
    let name = name.trim().to_ascii_uppercase();
    Some(match name.strip_prefix("SIG").unwrap_or(&name) {
        "KILL" => Signal::Kill,
        "TERM" => Signal::Term,
        "INT" => Signal::Int,
        "HUP" => Signal::Hup,
        _ => return None,
    })
}

#[cfg(test)]
pub(super) mod tests;
