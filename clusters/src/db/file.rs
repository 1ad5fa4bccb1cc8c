//! A database described in a TOML file (`--db-file mydb.toml`): what to upload, how to
//! start and stop it, where its logs are, how to tell it is ready and who leads. The
//! format is specified in `docs/db-file.md`; `examples/etcd/etcd.toml` is a full
//! example.
//!
//! [`DbFile::load`] reads and checks the file (every placeholder is known, every path
//! exists) before anything is deployed; errors are `FILE:LINE: message`. [`FileDb`] runs
//! it on the nodes through the same [`Db`] lifecycle as the built-in databases, so every
//! nemesis applies: kill through the stop signal or command, pause through signals on the
//! recorded pid, isolate-leader and `primaries` targets only when a leader command is
//! given.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use toml::Spanned;

use super::{Db, Node, Pause, Primaries, kill_and_wait, resolve, wait_until};
use crate::error::ClusterError;
use crate::localhost::Localhost;
use crate::remote::{Cmd, DaemonSpec, Remote, Signal};

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
    leader: Option<Spanned<Vec<Spanned<String>>>>,
    ready: Option<RawReady>,
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
    /// The command that prints the current leader, if any (run on the controller).
    pub leader: Option<Vec<String>>,
    /// The readiness check.
    pub ready: Ready,
    /// How long a node may take to become ready, if the file says.
    pub ready_timeout: Option<Duration>,
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
fn expand(template: &str, values: &BTreeMap<&str, String>) -> String {
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
        let leader = raw
            .leader
            .as_ref()
            .map(|l| command(l, "`leader`"))
            .transpose()?;
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
            leader,
            ready,
            ready_timeout,
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

/// The database of a [`DbFile`], on the cluster's nodes.
#[derive(Debug, Clone)]
pub struct FileDb {
    file: DbFile,
    nodes: Vec<Node>,
}

impl FileDb {
    /// The database `file` describes, for the cluster `nodes`.
    pub fn new(file: DbFile, nodes: &[Node]) -> FileDb {
        FileDb {
            file,
            nodes: nodes.to_vec(),
        }
    }

    /// Its description.
    pub fn file(&self) -> &DbFile {
        &self.file
    }

    /// How long a node may take to become ready, if the file says.
    pub fn ready_timeout(&self) -> Option<Duration> {
        self.file.ready_timeout
    }

    /// Every placeholder's value for `node`.
    fn values(&self, node: &Node) -> BTreeMap<&'static str, String> {
        let mut values = self.node_values(node);
        let peer = |n: &Node| expand(&self.file.peer, &self.node_values(n));
        values.insert(
            "peers",
            self.nodes.iter().map(peer).collect::<Vec<_>>().join(","),
        );
        values.insert(
            "others",
            self.nodes
                .iter()
                .filter(|n| n.name != node.name)
                .map(peer)
                .collect::<Vec<_>>()
                .join(","),
        );
        values.insert("log_file", node.log_file().to_string_lossy().into_owned());
        values
    }

    fn node_values(&self, node: &Node) -> BTreeMap<&'static str, String> {
        let mut values = BTreeMap::new();
        values.insert("node", node.name.clone());
        values.insert("id", node.id.to_string());
        values.insert("addr", node.addr.clone());
        values.insert("port", self.file.port.to_string());
        if let Some(p) = self.file.peer_port {
            values.insert("peer_port", p.to_string());
        }
        values.insert("dir", node.dir.to_string_lossy().into_owned());
        values.insert("data_dir", node.data_dir().to_string_lossy().into_owned());
        values
    }

    fn argv(&self, node: &Node, template: &[String]) -> Cmd {
        let values = self.values(node);
        let mut argv = template.iter().map(|a| expand(a, &values));
        let program = argv.next().unwrap_or_default();
        Cmd::new(program).args(argv)
    }

    /// Runs `template` for `node` on the controller, in the file's directory.
    fn controller(
        &self,
        node: &Node,
        template: &[String],
        timeout: Duration,
    ) -> Result<String, String> {
        let cmd = self
            .argv(node, template)
            .dir(self.file.base_dir())
            .timeout(timeout);
        let out = Localhost::new().run(&cmd).map_err(|e| e.to_string())?;
        if out.success() {
            Ok(out.stdout)
        } else {
            let why = out.stderr.trim();
            let why = if why.is_empty() {
                out.stdout.trim()
            } else {
                why
            };
            Err(format!("`{cmd}` failed with {}: {why}", out.status))
        }
    }
}

impl Db for FileDb {
    fn name(&self) -> &str {
        &self.file.name
    }

    fn setup(&self, node: &Node) -> Result<(), ClusterError> {
        let values = self.values(node);
        for (from, to) in &self.file.upload {
            node.remote
                .upload(from, &node.dir.join(expand(to, &values)))?;
        }
        node.remote.run_ok(
            &Cmd::new("mkdir")
                .args(["-p", &node.data_dir().to_string_lossy()])
                .timeout(Duration::from_secs(30)),
        )?;
        self.start(node)
    }

    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        let values = self.values(node);
        let mut cmd = self.argv(node, &self.file.start).dir(&node.dir);
        for (key, value) in &self.file.env {
            cmd = cmd.env(key, expand(value, &values));
        }
        let spec = DaemonSpec::new(cmd, node.pid_file(), node.log_file());
        node.remote.start_daemon(&spec)?;
        Ok(())
    }

    /// Stops the node as the file says, waits up to `stop.timeout` for it to exit, then
    /// kills it (SIGKILL) and waits until it is gone.
    fn kill(&self, node: &Node) -> Result<(), ClusterError> {
        let pid_file = node.pid_file();
        let asked = match &self.file.stop {
            Stop::Signal(Signal::Kill) => false,
            Stop::Signal(signal) => node.remote.signal(&pid_file, *signal)?,
            Stop::Command(argv) => {
                if node.remote.is_running(&pid_file)? {
                    let cmd = self
                        .argv(node, argv)
                        .timeout(self.file.stop_timeout.max(Duration::from_secs(1)));
                    // A stop command that fails still leaves SIGKILL below.
                    let _ = node.remote.run(&cmd);
                    true
                } else {
                    false
                }
            }
        };
        if asked {
            let deadline = Instant::now() + self.file.stop_timeout;
            while Instant::now() < deadline && node.remote.is_running(&pid_file)? {
                thread::sleep(Duration::from_millis(20));
            }
        }
        kill_and_wait(node)
    }

    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError> {
        let timeout = self.file.ready_timeout.unwrap_or(timeout);
        match &self.file.ready {
            Ready::Port(port) => {
                let addr = format!("{}:{port}", node.addr);
                wait_until(self.name(), node, &addr, timeout, || {
                    let socket = resolve(&addr)?;
                    TcpStream::connect_timeout(&socket, Duration::from_secs(1))
                        .map(drop)
                        .map_err(|e| format!("cannot connect: {e}"))
                })
            }
            Ready::Command(argv) => {
                let addr = self.client_addr(node);
                wait_until(self.name(), node, &addr, timeout, || {
                    self.controller(node, argv, Duration::from_secs(10))
                        .map(drop)
                })
            }
        }
    }

    fn client_addr(&self, node: &Node) -> String {
        format!("{}:{}", node.addr, self.file.port)
    }

    fn log_files(&self, node: &Node) -> Vec<PathBuf> {
        let values = self.values(node);
        let mut logs = vec![node.log_file()];
        for log in &self.file.logs {
            let path = PathBuf::from(expand(log, &values));
            logs.push(if path.is_absolute() {
                path
            } else {
                node.dir.join(path)
            });
        }
        logs
    }

    fn pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }

    fn primaries(&self) -> Option<&dyn Primaries> {
        self.file.leader.as_ref().map(|_| self as &dyn Primaries)
    }
}

impl Pause for FileDb {}

impl Primaries for FileDb {
    /// Asks each node (the leader command with its placeholders) who leads; the output's
    /// first line names a node by name, address, or `address:port` (a URL scheme is
    /// ignored). Nodes that fail to answer, or answer nothing, are skipped.
    fn primaries(&self, nodes: &[Node]) -> Vec<String> {
        let Some(argv) = &self.file.leader else {
            return Vec::new();
        };
        let mut leaders: Vec<String> = Vec::new();
        for node in nodes {
            let Ok(out) = self.controller(node, argv, Duration::from_secs(5)) else {
                continue;
            };
            let answer = out.lines().next().unwrap_or("").trim();
            let answer = answer.split_once("://").map_or(answer, |(_, rest)| rest);
            let answer = answer.trim_end_matches('/');
            if answer.is_empty() {
                continue;
            }
            if let Some(leader) = self.nodes.iter().find(|n| {
                n.name == answer
                    || n.addr == answer
                    || self.client_addr(n) == answer
                    || self
                        .file
                        .peer_port
                        .is_some_and(|p| format!("{}:{p}", n.addr) == answer)
            }) && !leaders.contains(&leader.name)
            {
                leaders.push(leader.name.clone());
            }
        }
        leaders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DbFile, String> {
        DbFile::parse(text, Path::new("/x/db.toml")).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = "name = \"mydb\"\nport = 7000\nstart = [\"mydb\", \"--id\", \"{id}\"]\n";

    #[test]
    fn placeholders_are_found_and_expanded() {
        assert_eq!(
            placeholders("a{node}b{{c}}{port}").unwrap(),
            ["node", "port"]
        );
        assert!(placeholders("a{node").is_err());
        assert!(placeholders("a}b").is_err());
        let mut values = BTreeMap::new();
        values.insert("node", "n1".to_string());
        values.insert("port", "7".to_string());
        assert_eq!(expand("--{node}={{x}}:{port}", &values), "--n1={x}:7");
        assert_eq!(expand("{unknown}", &values), "{unknown}");
    }

    #[test]
    fn a_minimal_file_has_defaults() {
        let f = parse(MINIMAL).unwrap();
        assert_eq!((f.name.as_str(), f.port), ("mydb", 7000));
        assert_eq!(f.stop, Stop::Signal(Signal::Kill));
        assert_eq!(f.ready, Ready::Port(7000));
        assert_eq!(f.leader, None);
        assert_eq!(f.peer, "{node}={addr}");
        assert_eq!(f.base_dir(), PathBuf::from("/x"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = parse(&format!("{MINIMAL}\nleader = [\"who\", \"{{leader}}\"]\n")).unwrap_err();
        assert!(
            e.starts_with(
                "/x/db.toml:5: unknown placeholder `{leader}` in `leader`; expected one of"
            ),
            "{e}"
        );
        let e = parse("name = \"d\"\nport = 1\nstart = [\"d\",\n  \"{peer_port}\"]\n").unwrap_err();
        assert!(
            e.starts_with("/x/db.toml:4: unknown placeholder `{peer_port}`"),
            "{e}"
        );
        assert!(e.contains("set `peer_port`"), "{e}");
        let e = parse(&format!("{MINIMAL}colour = 3\n")).unwrap_err();
        assert!(e.starts_with("/x/db.toml:4: unknown field `colour`"), "{e}");
        let e = parse("name = \"d\"\nport = 70000\nstart = [\"d\"]\n").unwrap_err();
        assert!(e.starts_with("/x/db.toml:2: port = 70000"), "{e}");
        let e = parse(&format!("{MINIMAL}[stop]\nsignal = \"SIGFOO\"\n")).unwrap_err();
        assert!(e.starts_with("/x/db.toml:5: stop signal"), "{e}");
        let e = parse(&format!(
            "{MINIMAL}[[upload]]\nfrom = \"nope\"\nto = \"bin\"\n"
        ))
        .unwrap_err();
        assert!(
            e.starts_with("/x/db.toml:5: upload from \"nope\": no such file"),
            "{e}"
        );
        let e = parse(&format!("{MINIMAL}peer = \"{{peers}}\"\n")).unwrap_err();
        assert!(e.contains("`{peers}` in `peer` here"), "{e}");
        let e = parse("name = \"d\"\nport = 1\nstart = []\n").unwrap_err();
        assert!(e.starts_with("/x/db.toml:3: `start` is empty"), "{e}");
    }

    #[test]
    fn commands_get_each_nodes_values() {
        let text = "name = \"d\"\nport = 9\npeer_port = 8\npeer = \"{node}=http://{addr}:{peer_port}\"\n\
                    start = [\"d\", \"--peers={peers}\", \"--others={others}\", \"{data_dir}\"]\n\
                    leader = [\"who\", \"{addr}:{port}\"]\n[stop]\nsignal = \"TERM\"\n";
        let f = parse(text).unwrap();
        assert_eq!(f.stop, Stop::Signal(Signal::Term));
        let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(Localhost::new());
        let nodes: Vec<Node> = (1..=2)
            .map(|i| Node {
                id: i,
                name: format!("n{i}"),
                addr: format!("10.0.0.{i}"),
                dir: PathBuf::from(format!("/d/n{i}")),
                remote: remote.clone(),
            })
            .collect();
        let db = FileDb::new(f, &nodes);
        let cmd = db.argv(&nodes[0], &db.file.start);
        assert_eq!(
            cmd.argv(),
            [
                "d",
                "--peers=n1=http://10.0.0.1:8,n2=http://10.0.0.2:8",
                "--others=n2=http://10.0.0.2:8",
                "/d/n1/data"
            ]
        );
        assert_eq!(db.client_addr(&nodes[1]), "10.0.0.2:9");
        assert!(Db::primaries(&db).is_some());
    }

    #[test]
    fn the_leader_command_names_a_node_by_name_address_or_url() {
        let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(Localhost::new());
        let nodes: Vec<Node> = (1..=3)
            .map(|i| Node {
                id: i,
                name: format!("n{i}"),
                addr: format!("10.0.0.{i}"),
                dir: PathBuf::from(format!("/d/n{i}")),
                remote: remote.clone(),
            })
            .collect();
        let leaders = |answer: &str| {
            let text = format!(
                "name = \"d\"\nport = 9\nstart = [\"d\"]\nleader = [\"echo\", \"{answer}\"]\n"
            );
            // Run in an existing directory: the file's.
            let file = DbFile::parse(&text, &std::env::temp_dir().join("db.toml")).unwrap();
            Primaries::primaries(&FileDb::new(file, &nodes), &nodes)
        };
        assert_eq!(leaders("n2"), ["n2"]);
        assert_eq!(leaders("http://10.0.0.3:9/"), ["n3"]);
        assert_eq!(leaders("10.0.0.1"), ["n1"]);
        assert!(leaders("").is_empty());
        assert!(leaders("n7").is_empty());
        // Each node answers with its own name: every node "leads".
        assert_eq!(leaders("{node}"), ["n1", "n2", "n3"]);
        let db = FileDb::new(parse(MINIMAL).unwrap(), &nodes);
        assert!(Db::primaries(&db).is_none());
    }
}
