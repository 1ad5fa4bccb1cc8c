//! PostgreSQL (Debian `postgresql`, 15 here): a single primary, run as the `postgres`
//! user (its binaries refuse root) in the node's directory. See `docs/postgres.md`.
//!
//! Setup initialises `DIR/data` once (`initdb -U postgres --auth=trust --no-sync -E UTF8
//! --locale=C`), owned by `postgres` with mode 700, and lets every client on the node's
//! own subnets in without a password (`host all all samenet trust` in `pg_hba.conf`:
//! the controller reaches local and Docker nodes over their bridge). The server runs in
//! the foreground under `setpriv --reuid=postgres --regid=postgres --init-groups --`,
//! listening on the node's address only, port 5432, without a Unix socket.
//!
//! PostgreSQL's children (one backend per connection, the checkpointer, the WAL writer…)
//! each start a session of their own, so signalling the postmaster's process group
//! reaches none of them: [`PostgresDb`] kills, pauses and resumes the postmaster and
//! every child it has (found through `/proc`), and a kill waits until all are gone,
//! so that the restart's crash recovery does not find its shared memory still in use.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::line::connect;
use super::{Capabilities, Db, Node, Pause, wait_until};
use crate::docker::ImageContent;
use crate::error::ClusterError;
use crate::posix::quote;
use crate::remote::{Cmd, DaemonSpec};

/// PostgreSQL on one node: `DIR/data`, port 5432, the binaries of `bin_dir`.
#[derive(Debug, Clone)]
pub struct PostgresDb {
    bin_dir: PathBuf,
}

/// The user the server runs as (Debian's package creates it).
const USER: &str = "postgres";

/// Where Debian puts each major version's share files: `SHARE_ROOT/VERSION`.
const SHARE_ROOT: &str = "/usr/share/postgresql";

/// The system's time zones (Debian's PostgreSQL is built `--with-system-tzdata`).
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// util-linux's `setpriv`, by its path: a Docker node's busybox shell runs its own
/// `setpriv` applet (no `--reuid`) before anything on the `PATH`.
const SETPRIV: &str = "/usr/bin/setpriv";

/// How every server program is run: as [`USER`], with its groups.
const AS_POSTGRES: [&str; 4] = [
    "--reuid=postgres",
    "--regid=postgres",
    "--init-groups",
    "--",
];

impl PostgresDb {
    /// The client port.
    pub const PORT: u16 = 5432;

    /// Where Debian installs each major version's programs: `DIR/VERSION/bin`.
    pub const INSTALL_ROOT: &'static str = "/usr/lib/postgresql";

    /// What PostgreSQL can do here: pause (every process of the server), kill and
    /// restart; none of faultline-kv's extras; and it is one server, so faults between
    /// nodes mean nothing.
    pub const CAPABILITIES: Capabilities = Capabilities::none(
        "PostgreSQL runs as the postgres user, and the clock nemesis's libfaketime offset \
         file and LD_PRELOAD are set up for faultline-kv only; use --db kv for clock faults",
        "the disk nemesis knows only faultline-kv's write-ahead log; use --db kv",
        "power loss needs the nodes' data on faultline-lazyfs, which only faultline-kv \
         has; use --db kv",
    )
    .without_peers(
        "PostgreSQL runs as a single primary (one node): faults between nodes have no \
         traffic to act on, and the controller's traffic to the node is never cut; use \
         kill, pause or storm",
    );

    /// PostgreSQL from `bin_dir` (e.g. `/usr/lib/postgresql/15/bin`) on every host.
    pub fn new(bin_dir: impl Into<PathBuf>) -> PostgresDb {
        PostgresDb {
            bin_dir: bin_dir.into(),
        }
    }

    /// What a Docker node image needs to run PostgreSQL from `bin_dir` (found on this
    /// machine): the version's install tree (programs and their modules), its share
    /// files (initdb's catalog), the system time zones it is built to read, util-linux's
    /// `setpriv`, and the `postgres` account. The image builder adds every shared library.
    pub fn image_content(bin_dir: &Path) -> Result<ImageContent, String> {
        let install = bin_dir
            .parent()
            .ok_or_else(|| format!("{}: not INSTALL_ROOT/VERSION/bin", bin_dir.display()))?;
        let version = install
            .file_name()
            .ok_or_else(|| format!("{}: not INSTALL_ROOT/VERSION/bin", bin_dir.display()))?;
        let share = Path::new(SHARE_ROOT).join(version);
        if !Path::new(SETPRIV).is_file() {
            return Err(format!(
                "{SETPRIV} is not installed (`apt-get install util-linux`)"
            ));
        }
        let mut trees = vec![install.to_path_buf(), share, PathBuf::from(SETPRIV)];
        // Debian builds PostgreSQL to read the system's time zones; initdb picks one.
        trees.extend([ZONEINFO].iter().map(PathBuf::from).filter(|p| p.is_dir()));
        Ok(ImageContent {
            programs: Vec::new(),
            trees,
            users: vec![USER.to_string()],
        })
    }

    /// The newest `INSTALL_ROOT/VERSION/bin` on this machine holding `postgres` and
    /// `initdb`; the error says how to install them.
    pub fn find_bin_dir() -> Result<PathBuf, String> {
        Self::find_bin_dir_in(Path::new(Self::INSTALL_ROOT))
    }

    fn find_bin_dir_in(root: &Path) -> Result<PathBuf, String> {
        let missing = || {
            format!(
                "PostgreSQL is not installed: no {}/VERSION/bin/postgres (`apt-get install \
                 postgresql`, or scripts/setup.sh --all)",
                root.display()
            )
        };
        let entries = std::fs::read_dir(root).map_err(|_| missing())?;
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                (bin.join("postgres").is_file() && bin.join("initdb").is_file())
                    .then_some((version, bin))
            })
            .max_by_key(|(version, _)| *version)
            .map(|(_, bin)| bin)
            .ok_or_else(missing)
    }

    fn program(&self, name: &str) -> String {
        self.bin_dir.join(name).to_string_lossy().into_owned()
    }

    /// `setpriv … -- PROGRAM`, ready for the program's arguments.
    fn as_postgres(&self, program: &str) -> Cmd {
        Cmd::new(SETPRIV)
            .args(AS_POSTGRES)
            .arg(self.program(program))
    }

    /// The server in the foreground.
    fn command(&self, node: &Node) -> Cmd {
        self.as_postgres("postgres")
            .args(["-D", &node.data_dir().to_string_lossy()])
            .args(["-c", &format!("listen_addresses={}", node.addr)])
            .args(["-p", &Self::PORT.to_string()])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200"])
    }

    /// The shell script that makes `DIR/data` the server's, initialised once.
    fn init_script(&self, node: &Node) -> String {
        let data = quote(&node.data_dir().to_string_lossy());
        let log = quote(&node.log_file().to_string_lossy());
        let initdb = quote(&self.program("initdb"));
        format!(
            "set -e; d={data}; mkdir -p \"$d\"; chown {USER}:{USER} \"$d\"; chmod 700 \"$d\"; \
             if ! {setpriv} {as} test -w \"$d\"; then \
               echo \"the {USER} user cannot reach $d: every directory above it must be \
        searchable by others (chmod o+x), e.g. a --store outside a private directory\" >&2; exit 1; fi; \
             if [ ! -f \"$d/PG_VERSION\" ]; then \
               {setpriv} {as} {initdb} -D \"$d\" -U {USER} --auth=trust --no-sync -E UTF8 \
        --locale=C >> {log} 2>&1 || {{ echo \"initdb failed: see {log}\" >&2; exit 1; }}; \
               echo 'host all all samenet trust' >> \"$d/pg_hba.conf\"; fi",
            as = AS_POSTGRES.join(" "),
            setpriv = SETPRIV,
        )
    }

    /// Sends `signal` (a `kill -s` name) to the postmaster of `node` and every child it
    /// has, the children listed before anything is signalled (a killed postmaster's
    /// children are handed to another parent). Prints the pids signalled.
    fn signal_all(&self, node: &Node, signal: &str) -> Result<Vec<u32>, ClusterError> {
        let script = format!(
            "p=$(cat {pf} 2>/dev/null) || exit 0; case \"$p\" in ''|*[!0-9]*) exit 0;; esac; \
             [ -d /proc/$p ] || exit 0; kids=''; \
             for s in /proc/[0-9]*/stat; do \
               set -- $(cat \"$s\" 2>/dev/null) x x x x; \
               [ \"$4\" = \"$p\" ] && kids=\"$kids $1\"; done; \
             kill -s {signal} $p $kids 2>/dev/null; echo $p $kids",
            pf = quote(&node.pid_file().to_string_lossy()),
        );
        let out = node.remote.run_ok(
            &Cmd::new("sh")
                .args(["-c", &script])
                .timeout(Duration::from_secs(10)),
        )?;
        Ok(out
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }
}

impl Db for PostgresDb {
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    fn name(&self) -> &str {
        "postgres"
    }

    /// PostgreSQL's own levels for the end of a process: `PANIC:` (the server stops) and
    /// the postmaster's report of a child that crashed.
    fn log_patterns(&self) -> Vec<String> {
        [
            "PANIC:",
            "was terminated by signal 11",
            "was terminated by signal 6",
        ]
        .map(String::from)
        .to_vec()
    }

    fn setup(&self, node: &Node) -> Result<(), ClusterError> {
        node.remote
            .run_ok(
                &Cmd::new("sh")
                    .args(["-c", &self.init_script(node)])
                    .timeout(Duration::from_secs(120)),
            )
            .map_err(|e| ClusterError::Protocol {
                node: node.name.clone(),
                message: format!("cannot initialise PostgreSQL's data directory: {e}"),
            })?;
        self.start(node)
    }

    fn start(&self, node: &Node) -> Result<(), ClusterError> {
        let spec = DaemonSpec::new(self.command(node), node.pid_file(), node.log_file());
        node.remote.start_daemon(&spec)?;
        Ok(())
    }

    /// SIGKILL to the postmaster and all its children, then waits (10 s at most) until
    /// none is left.
    fn kill(&self, node: &Node) -> Result<(), ClusterError> {
        let pids = self.signal_all(node, "KILL")?;
        if pids.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        let script = format!(
            "for p in {}; do st=$(sed -n 's/^[0-9]* (.*) \\(.\\).*/\\1/p' /proc/$p/stat \
             2>/dev/null); [ -n \"$st\" ] && [ \"$st\" != Z ] && echo $p; done; true",
            list.join(" ")
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = node.remote.run_ok(
                &Cmd::new("sh")
                    .args(["-c", &script])
                    .timeout(Duration::from_secs(10)),
            )?;
            if left.stdout.trim().is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Protocol {
                    node: node.name.clone(),
                    message: format!(
                        "PostgreSQL processes {} still running 10 s after SIGKILL (pid file {})",
                        left.stdout
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(", "),
                        node.pid_file().display()
                    ),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ready when a connection as `postgres` reaches `ReadyForQuery` (so crash recovery
    /// is over and the server accepts sessions).
    fn await_ready(&self, node: &Node, timeout: Duration) -> Result<(), ClusterError> {
        let addr = self.client_addr(node);
        wait_until(self.name(), node, &addr, timeout, || startup_probe(&addr))
    }

    fn client_addr(&self, node: &Node) -> String {
        format!("{}:{}", node.addr, Self::PORT)
    }

    fn pause(&self) -> Option<&dyn Pause> {
        Some(self)
    }
}

impl Pause for PostgresDb {
    /// SIGSTOP to the postmaster and every child (each backend serves one client).
    fn pause(&self, node: &Node) -> Result<(), ClusterError> {
        self.signal_all(node, "STOP").map(drop)
    }

    /// SIGCONT to the postmaster and every child.
    fn resume(&self, node: &Node) -> Result<(), ClusterError> {
        self.signal_all(node, "CONT").map(drop)
    }
}

/// One session of PostgreSQL's protocol (3.0) as `postgres` to the `postgres` database,
/// up to the server's `ReadyForQuery`; then it says goodbye. The error is the server's
/// message (e.g. `57P03 the database system is starting up`) or the socket's.
pub fn startup_probe(addr: &str) -> Result<(), String> {
    let mut stream = connect(addr, Duration::from_secs(1))?;
    stream
        .write_all(&startup_message(USER, "postgres"))
        .map_err(|e| format!("cannot send the startup message: {e}"))?;
    loop {
        let mut head = [0u8; 5];
        stream
            .read_exact(&mut head)
            .map_err(|e| format!("no answer to the startup message: {e}"))?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(4..=1 << 20).contains(&len) {
            return Err(format!("not a PostgreSQL server (message length {len})"));
        }
        let mut body = vec![0u8; len - 4];
        stream
            .read_exact(&mut body)
            .map_err(|e| format!("answer cut short: {e}"))?;
        match (head[0], body.get(..4)) {
            (b'Z', _) => {
                let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
                return Ok(());
            }
            (b'E', _) => return Err(error_fields(&body)),
            (b'R', Some([0, 0, 0, 0])) => {}
            (b'R', _) => {
                return Err(
                    "the server asks for a password: pg_hba.conf does not trust the controller"
                        .into(),
                );
            }
            _ => {}
        }
    }
}

/// A StartupMessage for `user` and `database`.
fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for part in ["user", user, "database", database] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// An ErrorResponse's SQLSTATE and message, e.g. `57P03 the database system is starting up`.
fn error_fields(body: &[u8]) -> String {
    let mut code = "";
    let mut message = "";
    for field in body.split(|b| *b == 0) {
        let text = std::str::from_utf8(field.get(1..).unwrap_or_default()).unwrap_or("");
        match field.first() {
            Some(b'C') => code = text,
            Some(b'M') => message = text,
            _ => {}
        }
    }
    format!("{code} {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_startup_message_is_protocol_3_with_user_and_database() {
        let msg = startup_message("postgres", "postgres");
        assert_eq!(&msg[..4], &(msg.len() as u32).to_be_bytes());
        assert_eq!(&msg[4..8], &[0, 3, 0, 0]);
        assert_eq!(&msg[8..], b"user\0postgres\0database\0postgres\0\0");
    }

    #[test]
    fn error_responses_give_code_and_message() {
        let body = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0";
        assert_eq!(
            error_fields(body),
            "57P03 the database system is starting up"
        );
    }

    #[test]
    fn the_newest_version_with_both_programs_is_found() {
        let root = tempfile::tempdir().unwrap();
        for (version, programs) in [
            ("13", &["postgres", "initdb"][..]),
            ("15", &["postgres", "initdb"][..]),
            ("16", &["postgres"][..]),
            ("x", &["postgres", "initdb"][..]),
        ] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for p in programs {
                std::fs::write(bin.join(p), "").unwrap();
            }
        }
        assert_eq!(
            PostgresDb::find_bin_dir_in(root.path()).unwrap(),
            root.path().join("15/bin")
        );
        let err = PostgresDb::find_bin_dir_in(&root.path().join("none")).unwrap_err();
        assert!(err.contains("apt-get install postgresql"), "{err}");
    }

    #[test]
    fn network_faults_are_refused_clocks_too() {
        let can = PostgresDb::CAPABILITIES;
        assert!(can.peers.unwrap_err().contains("single primary"));
        assert!(can.fake_clock.is_err());
    }

    #[test]
    fn the_server_runs_as_postgres_in_the_foreground() {
        let db = PostgresDb::new("/usr/lib/postgresql/15/bin");
        let node = Node {
            id: 1,
            name: "n1".into(),
            addr: "10.1.2.2".into(),
            dir: "/s/n1".into(),
            remote: std::sync::Arc::new(crate::Localhost::new()),
        };
        assert_eq!(
            db.command(&node).to_string(),
            "/usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups -- \
             /usr/lib/postgresql/15/bin/postgres -D /s/n1/data -c listen_addresses=10.1.2.2 \
             -p 5432 -c unix_socket_directories= -c max_connections=200"
        );
        let init = db.init_script(&node);
        assert!(
            init.contains("--auth=trust --no-sync -E UTF8 --locale=C"),
            "{init}"
        );
        assert!(init.contains("host all all samenet trust"), "{init}");
    }
}
