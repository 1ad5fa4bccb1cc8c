//! Tests of the run's configuration: databases (described in files, PostgreSQL).

use std::path::Path;

use super::*;

#[test]
fn a_database_file_names_the_run_and_limits_the_faults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/etcd/etcd.toml");
    let args = |nemesis: &str| RunArgs {
        db_file: Some(example.clone()),
        client_cmd: Some("python3 client.py".into()),
        nemesis: Some(vec![nemesis.into()]),
        ..RunArgs::default()
    };
    let c = RunConfig::resolve(&args("all")).unwrap();
    assert_eq!((c.db.name(), c.name.as_str()), ("etcd", "etcd-register"));
    assert_eq!(names(&c.nemesis), ["partition", "kill", "pause", "packet"]);
    for fault in ["clock", "disk"] {
        let e = RunConfig::resolve(&args(fault)).unwrap_err().0;
        assert!(e.contains("cannot be injected with --db-file"), "{e}");
    }
    let e = RunConfig::resolve(&RunArgs {
        db: Some("etcd".into()),
        ..args("none")
    })
    .unwrap_err()
    .0;
    assert!(e.contains("give --db or --db-file, not both"), "{e}");
    // Without --client-cmd, the example's own `client`, in its directory.
    let c = RunConfig::resolve(&RunArgs {
        client_cmd: None,
        ..args("none")
    })
    .unwrap();
    let client = c.client_cmd.unwrap_or_default();
    assert!(
        client.starts_with("cd '/") && client.ends_with("/examples/etcd' && python3 client.py"),
        "{client}"
    );
    // Files give them too.
    let (_dir, path) = file(&format!(
        "db-file = {:?}\nclient-cmd = \"./client\"\n",
        example.display().to_string()
    ));
    let c = RunConfig::resolve(&RunArgs {
        config: Some(path),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(c.client_cmd.as_deref(), Some("./client"));
    // A client program against a built-in database is fine.
    let c = RunConfig::resolve(&RunArgs {
        db: Some("etcd".into()),
        client_cmd: Some("./client".into()),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!((c.db.name(), c.db_file.as_ref()), ("etcd", None));
}

#[test]
fn a_database_file_may_fix_the_node_count() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("one.toml");
    std::fs::write(
        &db_file,
        "name = \"single\"\nport = 5432\nnodes = 1\nstart = [\"postgres\"]\n",
    )
    .unwrap();
    let args = |nodes: Option<usize>| RunArgs {
        db_file: Some(db_file.clone()),
        client_cmd: Some("./client".into()),
        nodes,
        ..RunArgs::default()
    };
    // Without --nodes, the file's count; the same count given is fine.
    assert_eq!(RunConfig::resolve(&args(None)).unwrap().nodes, 1);
    assert_eq!(RunConfig::resolve(&args(Some(1))).unwrap().nodes, 1);
    // Another count is an error naming the flag and the file.
    let e = RunConfig::resolve(&args(Some(3))).unwrap_err().0;
    assert!(e.contains("--nodes: 3 nodes"), "{e}");
    assert!(e.contains("one.toml says the database runs on 1"), "{e}");
}

#[test]
fn a_database_files_client_runs_in_its_directory_unless_a_command_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("db.toml");
    std::fs::write(
        &db_file,
        "name = \"d\"\nport = 5432\nstart = [\"d\"]\nclient = \"python3 client.py\"\n",
    )
    .unwrap();
    let args = |client_cmd: Option<&str>| RunArgs {
        db_file: Some(db_file.clone()),
        client_cmd: client_cmd.map(String::from),
        ..RunArgs::default()
    };
    let c = RunConfig::resolve(&args(None)).unwrap();
    assert_eq!(
        c.client_cmd.as_deref(),
        Some(format!("cd '{}' && python3 client.py", dir.path().display()).as_str())
    );
    // The flag wins, and runs where the harness runs.
    let c = RunConfig::resolve(&args(Some("./mine"))).unwrap();
    assert_eq!(c.client_cmd.as_deref(), Some("./mine"));
    // Neither: the error says both ways.
    std::fs::write(&db_file, "name = \"d\"\nport = 5432\nstart = [\"d\"]\n").unwrap();
    let e = RunConfig::resolve(&args(None)).unwrap_err().0;
    assert!(
        e.contains("pass --client-cmd") && e.contains("`client` key"),
        "{e}"
    );
}

#[test]
fn postgres_is_one_node_killed_and_paused_at_serializable() {
    let pg = |more: RunArgs| {
        RunConfig::resolve(&RunArgs {
            db: Some("postgres".into()),
            ..more
        })
    };
    let c = pg(RunArgs::default()).unwrap();
    assert_eq!((c.nodes, c.isolation), (1, Isolation::Serializable));
    assert_eq!(names(&c.nemesis), ["kill", "pause"]);
    let all = pg(RunArgs {
        nemesis: Some(vec!["all".into()]),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(names(&all.nemesis), ["kill", "pause"]);
    let (_dir, path) = file("db = \"postgres\"\nisolation = \"repeatable-read\"\n");
    let c = RunConfig::resolve(&RunArgs {
        config: Some(path),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(c.isolation, Isolation::RepeatableRead);
    for (args, says) in [
        (
            RunArgs {
                nodes: Some(3),
                ..RunArgs::default()
            },
            "single primary",
        ),
        (
            RunArgs {
                nemesis: Some(vec!["packet".into()]),
                ..RunArgs::default()
            },
            "single primary",
        ),
        (
            RunArgs {
                isolation: Some("snapshot".into()),
                ..RunArgs::default()
            },
            "expected one of serializable, repeatable-read, read-committed",
        ),
    ] {
        let e = pg(args).unwrap_err().0;
        assert!(e.contains(says), "{e}");
    }
    let e = RunConfig::resolve(&RunArgs {
        isolation: Some("read-committed".into()),
        ..RunArgs::default()
    })
    .unwrap_err()
    .0;
    assert!(e.contains("use --db postgres"), "{e}");
}

#[test]
fn zookeeper_is_an_ensemble_with_both_read_modes_and_no_clocks() {
    let zk = |more: RunArgs| {
        RunConfig::resolve(&RunArgs {
            db: Some("zookeeper".into()),
            ..more
        })
    };
    let c = zk(RunArgs {
        nodes: Some(3),
        read_mode: Some("serializable".into()),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!((c.db.name(), c.nodes), ("zookeeper", 3));
    assert_eq!(c.read_mode, ReadMode::Serializable);
    assert_eq!(
        zk(RunArgs::default()).unwrap().read_mode,
        ReadMode::Linearizable
    );
    let all = zk(RunArgs {
        nemesis: Some(vec!["all".into()]),
        ..RunArgs::default()
    })
    .unwrap();
    let all = names(&all.nemesis);
    for fault in ["partition", "kill", "pause", "packet"] {
        assert!(all.contains(&fault), "{fault} not in {all:?}");
    }
    assert!(!all.contains(&"clock"), "{all:?}");
    let e = zk(RunArgs {
        nemesis: Some(vec!["clock".into()]),
        ..RunArgs::default()
    })
    .unwrap_err()
    .0;
    assert!(e.contains("JVM"), "{e}");
    let e = RunConfig::resolve(&RunArgs {
        db: Some("postgres".into()),
        read_mode: Some("serializable".into()),
        ..RunArgs::default()
    })
    .unwrap_err()
    .0;
    assert!(e.contains("--db zookeeper"), "{e}");
}
