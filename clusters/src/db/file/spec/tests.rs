//! The `--db-file` format's tests.

use super::*;

pub(in crate::db::file) fn parse(text: &str) -> Result<DbFile, String> {
    DbFile::parse(text, Path::new("/x/db.toml")).map_err(|e| e.to_string())
}

pub(in crate::db::file) const MINIMAL: &str =
    "name = \"mydb\"\nport = 7000\nstart = [\"mydb\", \"--id\", \"{id}\"]\n";

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
fn log_patterns_are_kept_and_empty_ones_refused() {
    let f = parse(&format!(
        "{MINIMAL}log_patterns = [\"^FATAL\", \"corrupt\"]\n"
    ))
    .unwrap();
    assert_eq!(f.log_patterns, ["^FATAL", "corrupt"]);
    assert!(parse(MINIMAL).unwrap().log_patterns.is_empty());
    let e = parse(&format!("{MINIMAL}log_patterns = [\"ok\",\n  \"^\"]\n")).unwrap_err();
    assert!(
        e.starts_with("/x/db.toml:5: log_patterns: \"^\" is empty"),
        "{e}"
    );
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
    assert_eq!(f.nodes, None);
    assert_eq!(
        parse(&format!("nodes = 1\n{MINIMAL}")).unwrap().nodes,
        Some(1)
    );
}

#[test]
fn errors_name_the_file_and_line() {
    let e = parse(&format!("{MINIMAL}\nleader = [\"who\", \"{{leader}}\"]\n")).unwrap_err();
    assert!(
        e.starts_with("/x/db.toml:5: unknown placeholder `{leader}` in `leader`; expected one of"),
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
    let e = parse(&format!("{MINIMAL}nodes = 0\n")).unwrap_err();
    assert!(e.starts_with("/x/db.toml:4: nodes = 0: must be"), "{e}");
}

#[test]
fn a_user_and_a_ready_interval_are_checked() {
    let f = parse(MINIMAL).unwrap();
    assert_eq!(
        (f.user.as_deref(), f.ready_interval),
        (None, DEFAULT_READY_INTERVAL)
    );
    let f = parse(&format!(
        "user = \"postgres\"\n{MINIMAL}[ready]\ninterval = 0.5\n"
    ))
    .unwrap();
    assert_eq!(f.user.as_deref(), Some("postgres"));
    assert_eq!(f.ready_interval, Duration::from_millis(500));
    let e = parse(&format!("user = \"Root Admin\"\n{MINIMAL}")).unwrap_err();
    assert!(e.starts_with("/x/db.toml:1: user = \"Root Admin\""), "{e}");
    let e = parse(&format!("{MINIMAL}[ready]\ninterval = 0\n")).unwrap_err();
    assert!(
        e.starts_with("/x/db.toml:5: ready.interval = 0: must be"),
        "{e}"
    );
}

#[test]
fn a_client_command_is_kept_and_an_empty_one_refused() {
    assert_eq!(parse(MINIMAL).unwrap().client, None);
    let f = parse(&format!("client = \"python3 client.py\"\n{MINIMAL}")).unwrap();
    assert_eq!(f.client.as_deref(), Some("python3 client.py"));
    let e = parse(&format!("{MINIMAL}client = \" \"\n")).unwrap_err();
    assert!(e.starts_with("/x/db.toml:4: client is empty"), "{e}");
}
