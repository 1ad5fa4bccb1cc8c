//! Tests of the run's configuration: faultline-kv's shards and commit protocol.

use super::*;

/// The error `args` resolve to.
fn error(args: RunArgs) -> String {
    RunConfig::resolve(&args).unwrap_err().0
}

#[test]
fn one_shard_unless_told_and_nothing_in_config_json() {
    let c = RunConfig::resolve(&RunArgs::default()).unwrap();
    assert_eq!((c.shards, c.commit_protocol), (1, None));
    let json = serde_json::to_value(&c).unwrap();
    assert!(json.get("shards").is_none(), "{json}");
    assert!(json.get("commit-protocol").is_none(), "{json}");
    // `--shards 1` given is the same run.
    let one = RunConfig::resolve(&RunArgs {
        shards: Some(1),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!((one.shards, one.commit_protocol), (1, None));
}

#[test]
fn shards_and_the_commit_protocol_from_flags_and_files() {
    let c = RunConfig::resolve(&RunArgs {
        shards: Some(3),
        workload: Some("list-append".into()),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(
        (c.shards, c.commit_protocol),
        (3, Some(CommitProtocol::TwoPhase))
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["shards"], 3);
    assert_eq!(json["commit-protocol"], "2pc");
    let (_dir, path) = file("shards = 4\ncommit-protocol = \"3pc\"\n");
    let c = RunConfig::resolve(&RunArgs {
        config: Some(path.clone()),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(
        (c.shards, c.commit_protocol),
        (4, Some(CommitProtocol::ThreePhase))
    );
    // Flags win over the file.
    let c = RunConfig::resolve(&RunArgs {
        config: Some(path),
        shards: Some(2),
        commit_protocol: Some("2pc".into()),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(
        (c.shards, c.commit_protocol),
        (2, Some(CommitProtocol::TwoPhase))
    );
    let planted = RunConfig::resolve(&RunArgs {
        shards: Some(64),
        bug: Some(vec!["2pc-presumed-commit".into()]),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(planted.bug, [Bug::TwoPcPresumedCommit]);
}

#[test]
fn shard_errors_name_the_flag_and_say_what_to_do() {
    for shards in [0, 65] {
        let e = error(RunArgs {
            shards: Some(shards),
            ..RunArgs::default()
        });
        assert_eq!(e, format!("--shards: {shards}; must be 1 to 64"));
    }
    let e = error(RunArgs {
        shards: Some(3),
        db: Some("etcd".into()),
        ..RunArgs::default()
    });
    assert_eq!(
        e,
        "--shards: shards are a mode of faultline-kv; drop it or use --db kv"
    );
    let e = error(RunArgs {
        commit_protocol: Some("3pc".into()),
        ..RunArgs::default()
    });
    assert!(
        e.starts_with("--commit-protocol: 3pc commits transactions across shards")
            && e.contains("pass --shards N with N above 1"),
        "{e}"
    );
    let e = error(RunArgs {
        commit_protocol: Some("4pc".into()),
        shards: Some(3),
        ..RunArgs::default()
    });
    assert_eq!(
        e,
        "--commit-protocol: unknown value `4pc`; expected one of 2pc, 3pc"
    );
    let e = error(RunArgs {
        bug: Some(vec!["2pc-presumed-commit".into()]),
        ..RunArgs::default()
    });
    assert!(
        e.starts_with("--bug: 2pc-presumed-commit is a bug of the commit across shards")
            && e.ends_with("pass --shards N with N above 1 (e.g. --shards 3)"),
        "{e}"
    );
    let e = error(RunArgs {
        kv_args: Some("--tick-ms 2 --shards=3".into()),
        ..RunArgs::default()
    });
    assert!(
        e.starts_with("--kv-args: --shards=3 is a run setting")
            && e.ends_with("give it as --shards instead"),
        "{e}"
    );
    let e = error(RunArgs {
        kv_args: Some("--commit-protocol 3pc".into()),
        shards: Some(2),
        ..RunArgs::default()
    });
    assert!(
        e.starts_with("--kv-args: --commit-protocol is a run setting"),
        "{e}"
    );
}

#[test]
fn file_keys_are_named_in_shard_errors() {
    let (_dir, path) = file("shards = 2\ndb = \"zookeeper\"\n");
    let e = error(RunArgs {
        config: Some(path.clone()),
        ..RunArgs::default()
    });
    assert_eq!(
        e,
        format!(
            "--shards (or `shards` in {}): shards are a mode of faultline-kv; drop it or use --db kv",
            path.display()
        )
    );
    let (_dir, path) = file("commit-protocol = \"2pc\"\n");
    let e = error(RunArgs {
        config: Some(path.clone()),
        ..RunArgs::default()
    });
    assert!(
        e.starts_with(&format!(
            "--commit-protocol (or `commit-protocol` in {}): 2pc commits",
            path.display()
        )),
        "{e}"
    );
}

#[test]
fn the_help_tells_the_shard_flags_and_the_bug_that_needs_them() {
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }
    let help = Run::command().render_help().to_string();
    assert!(help.contains("--shards <N>"), "{help}");
    assert!(help.contains("--commit-protocol <PROTOCOL>"), "{help}");
    assert!(help.contains("2pc, 3pc"), "{help}");
    assert!(
        help.contains("2pc-presumed-commit (with --shards above 1)"),
        "{help}"
    );
}
