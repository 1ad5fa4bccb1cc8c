//! [`FileDb`]: a [`DbFile`]'s database run on the cluster's nodes through the [`Db`]
//! lifecycle.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use super::spec::{DbFile, Ready, Stop, expand};
use crate::db::{
    Capabilities, Db, Node, Pause, Primaries, kill_and_wait, resolve, wait_until_every,
};
use crate::error::ClusterError;
use crate::localhost::Localhost;
use crate::remote::{Cmd, DaemonSpec, Remote, Signal};

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
        values.insert("log_file", absolute(&node.log_file()));
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
        values.insert("dir", absolute(&node.dir));
        values.insert("data_dir", absolute(&node.data_dir()));
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

impl FileDb {
    /// Gives `data_dir` to `user` (`chown -R USER:`, the user's login group) and checks
    /// that `user` can write there: every directory above it must let the user through.
    fn hand_over(&self, node: &Node, user: &str, data_dir: &str) -> Result<(), ClusterError> {
        let quick = Duration::from_secs(30);
        let group = self.login_group(node, user)?;
        node.remote.run_ok(
            &Cmd::new("chown")
                .args(["-R", &format!("{user}:{group}"), data_dir])
                .timeout(quick),
        )?;
        let test = ["test", "-w", data_dir, "-a", "-x", data_dir].map(String::from);
        let writable = node
            .remote
            .run(&as_user(user, &group, &test).timeout(quick))?;
        if !writable.success() {
            return Err(ClusterError::Config(format!(
                "{}: user {user} cannot write to {data_dir} on host {}: a directory above it \
                 does not let {user} through (a store under /root?); put the store where \
                 {user} can reach it, e.g. --store /var/tmp/faultline",
                self.file.path.display(),
                node.remote.host()
            )));
        }
        Ok(())
    }

    /// The numeric login group of `user` on `node`'s host, or an error saying how to
    /// create the user.
    fn login_group(&self, node: &Node, user: &str) -> Result<String, ClusterError> {
        let out = node.remote.run(
            &Cmd::new("id")
                .args(["-g", "--", user])
                .timeout(Duration::from_secs(30)),
        )?;
        let group = out.stdout.trim();
        if !out.success() || group.is_empty() || !group.chars().all(|c| c.is_ascii_digit()) {
            return Err(ClusterError::Config(format!(
                "{}: `user = \"{user}\"`, but host {} has no such user; create it \
                 (useradd --system {user}) or drop `user` (Docker hosts have no users but \
                 root: drop it there)",
                self.file.path.display(),
                node.remote.host()
            )));
        }
        Ok(group.to_string())
    }

    /// What a database described in a file can do: pause and leader discovery when the
    /// file says how, never faultline-kv's extras.
    pub const CAPABILITIES: Capabilities = Capabilities::none(
        "a database from --db-file runs without libfaketime, so its clock cannot be moved",
        "the disk nemesis knows only faultline-kv's write-ahead log; a --db-file database's \
         files are its own",
        "power loss needs the nodes' data on faultline-lazyfs, which only faultline-kv \
         has; use --db kv",
    );
}

impl Db for FileDb {
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn name(&self) -> &str {
        &self.file.name
    }

    fn setup(&self, node: &Node) -> Result<(), ClusterError> {
        let values = self.values(node);
        for (from, to) in &self.file.upload {
            node.remote
                .upload(from, &node.dir.join(expand(to, &values)))?;
        }
        let data_dir = node.data_dir().to_string_lossy().into_owned();
        node.remote.run_ok(
            &Cmd::new("mkdir")
                .args(["-p", &data_dir])
                .timeout(Duration::from_secs(30)),
        )?;
        if let Some(user) = &self.file.user {
            self.hand_over(node, user, &data_dir)?;
        }
        self.start(node)
    }

    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        let values = self.values(node);
        let mut cmd = self.argv(node, &self.file.start);
        if let Some(user) = &self.file.user {
            cmd = as_user(user, &self.login_group(node, user)?, cmd.argv());
        }
        let mut cmd = cmd.dir(&node.dir);
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
                wait_until_every(
                    self.name(),
                    node,
                    &addr,
                    timeout,
                    self.file.ready_interval,
                    || {
                        let socket = resolve(&addr)?;
                        TcpStream::connect_timeout(&socket, Duration::from_secs(1))
                            .map(drop)
                            .map_err(|e| format!("cannot connect: {e}"))
                    },
                )
            }
            Ready::Command(argv) => {
                let addr = self.client_addr(node);
                wait_until_every(
                    self.name(),
                    node,
                    &addr,
                    timeout,
                    self.file.ready_interval,
                    || {
                        self.controller(node, argv, Duration::from_secs(10))
                            .map(drop)
                    },
                )
            }
        }
    }

    fn client_addr(&self, node: &Node) -> String {
        format!("{}:{}", node.addr, self.file.port)
    }

    fn log_patterns(&self) -> Vec<String> {
        self.file.log_patterns.clone()
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

/// `argv` run as `user` with the login group `group` and the user's supplementary
/// groups (`setpriv` execs the command, so the recorded pid stays the database's own
/// and signals reach it; the environment is kept).
fn as_user(user: &str, group: &str, argv: &[String]) -> Cmd {
    Cmd::new("setpriv")
        .args([
            format!("--reuid={user}"),
            format!("--regid={group}"),
            "--init-groups".into(),
            "--".into(),
        ])
        .args(argv.iter().cloned())
}

/// `path` made absolute against this process's working directory (paths on SSH hosts
/// already are): a db-file's commands run in other directories (`start` in `{dir}`,
/// hooks in the file's own), where a relative `--store store` would point elsewhere.
fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::file::spec::tests::{MINIMAL, parse};

    /// Nodes `n1`…`nN` at `10.0.0.I`, in `/d/nI`, on this machine.
    fn nodes(n: u32) -> Vec<Node> {
        let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(Localhost::new());
        (1..=n)
            .map(|i| Node {
                id: i,
                name: format!("n{i}"),
                addr: format!("10.0.0.{i}"),
                dir: PathBuf::from(format!("/d/n{i}")),
                remote: remote.clone(),
            })
            .collect()
    }

    #[test]
    fn commands_get_each_nodes_values() {
        let text = "name = \"d\"\nport = 9\npeer_port = 8\npeer = \"{node}=http://{addr}:{peer_port}\"\n\
                    start = [\"d\", \"--peers={peers}\", \"--others={others}\", \"{data_dir}\"]\n\
                    leader = [\"who\", \"{addr}:{port}\"]\n[stop]\nsignal = \"TERM\"\n";
        let f = parse(text).unwrap();
        assert_eq!(f.stop, Stop::Signal(Signal::Term));
        let nodes = nodes(2);
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
        // A node in a relative store gets absolute directories: its commands run
        // elsewhere (`start` in `{dir}`).
        let mut relative = nodes[0].clone();
        relative.dir = PathBuf::from("store/run/nodes/n1");
        let cmd = db.argv(&relative, &db.file.start);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            cmd.argv()[3],
            cwd.join("store/run/nodes/n1/data").to_string_lossy()
        );
    }

    #[test]
    fn the_leader_command_names_a_node_by_name_address_or_url() {
        let nodes = nodes(3);
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
