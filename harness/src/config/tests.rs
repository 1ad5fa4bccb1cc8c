//! Tests of the run's configuration.

use std::path::{Path, PathBuf};

use super::*;

mod databases;
mod shards;

/// The faults' names, as the configuration lists them.
fn names(faults: &[Fault]) -> Vec<&'static str> {
    faults.iter().map(|f| f.name()).collect()
}

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn defaults_are_a_meaningful_test() {
    let c = RunConfig::resolve(&RunArgs::default()).unwrap();
    assert_eq!((c.db.name(), c.consensus), ("kv", Consensus::Raft));
    let paxos = RunArgs {
        consensus: Some("paxos".into()),
        bug: Some(vec!["paxos-ignore-promise".into()]),
        ..RunArgs::default()
    };
    assert_eq!(
        RunConfig::resolve(&paxos).unwrap().consensus,
        Consensus::Paxos
    );
    assert_eq!((c.nodes, c.workload.as_str()), (5, "register"));
    assert_eq!(names(&c.nemesis), ["partition", "kill"]);
    assert_eq!(c.time_limit, Duration::from_secs(60));
    assert_eq!(c.cluster, ClusterKind::Local);
}

#[test]
fn flags_win_over_the_file() {
    let (_dir, path) = file("workload = \"bank\"\nnodes = 3\nnemesis = [\"pause\"]\n");
    let args = RunArgs {
        config: Some(path),
        nodes: Some(7),
        ..RunArgs::default()
    };
    let c = RunConfig::resolve(&args).unwrap();
    assert_eq!((c.workload.as_str(), c.nodes), ("bank", 7));
    assert_eq!(names(&c.nemesis), ["pause"]);
}

#[test]
fn file_errors_name_the_line() {
    let (_dir, path) = file("nodes = 3\n\nnodez = 4\n");
    let args = RunArgs {
        config: Some(path.clone()),
        ..RunArgs::default()
    };
    let e = RunConfig::resolve(&args).unwrap_err().0;
    assert!(
        e.starts_with(&format!("{}:3: unknown field `nodez`", path.display())),
        "{e}"
    );
    let (_dir, path) = file("nodes = \"five\"\n");
    let args = RunArgs {
        config: Some(path.clone()),
        ..RunArgs::default()
    };
    let e = RunConfig::resolve(&args).unwrap_err().0;
    assert!(e.starts_with(&format!("{}:1:", path.display())), "{e}");
}

#[test]
fn bad_values_name_the_flag() {
    let cases: Vec<(RunArgs, &str)> = vec![
        (
            RunArgs {
                db: Some("mongo".into()),
                ..RunArgs::default()
            },
            "--db: unknown value `mongo`",
        ),
        (
            RunArgs {
                nodes: Some(0),
                ..RunArgs::default()
            },
            "--nodes: 0 nodes",
        ),
        (
            RunArgs {
                rate: Some(-1.0),
                ..RunArgs::default()
            },
            "--rate: -1",
        ),
        (
            RunArgs {
                nemesis: Some(vec!["flood".into()]),
                ..RunArgs::default()
            },
            "--nemesis: unknown value `flood`",
        ),
        (
            RunArgs {
                bug: Some(vec!["stale-read".into()]),
                db: Some("etcd".into()),
                ..RunArgs::default()
            },
            "--bug: planted bugs",
        ),
        (
            RunArgs {
                kv_args: Some("--tick-ms 2".into()),
                db: Some("etcd".into()),
                ..RunArgs::default()
            },
            "--kv-args: these are faultline-kv flags",
        ),
        (
            RunArgs {
                kv_args: Some("--tick-ms 2 --data-dir=/x".into()),
                ..RunArgs::default()
            },
            "--kv-args: --data-dir=/x is set by the harness",
        ),
        (
            RunArgs {
                consensus: Some("paxos".into()),
                db: Some("etcd".into()),
                ..RunArgs::default()
            },
            "--consensus: paxos is a mode of faultline-kv",
        ),
        (
            RunArgs {
                cluster: Some("ssh".into()),
                ..RunArgs::default()
            },
            "--cluster ssh needs a hosts file",
        ),
        (
            RunArgs {
                name: Some("../x".into()),
                ..RunArgs::default()
            },
            "--name: `../x`",
        ),
    ];
    for (args, expected) in cases {
        let e = RunConfig::resolve(&args).unwrap_err().0;
        assert!(
            e.starts_with(expected),
            "{e} does not start with {expected}"
        );
    }
}

#[test]
fn kv_args_are_split_at_white_space() {
    let c = RunConfig::resolve(&RunArgs {
        kv_args: Some(" --tick-ms 1\t--election-ticks  20 ".into()),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(c.kv_args, ["--tick-ms", "1", "--election-ticks", "20"]);
}

#[test]
fn all_faults_follow_the_database_and_unsupported_ones_are_refused() {
    let resolve = |db: &str, cluster: &str, faults: &[&str]| {
        RunConfig::resolve(&RunArgs {
            db: Some(db.into()),
            cluster: Some(cluster.into()),
            nemesis: Some(faults.iter().map(|f| f.to_string()).collect()),
            ..RunArgs::default()
        })
    };
    let c = resolve("kv", "local", &["all"]).unwrap();
    let kv_local = [
        "partition",
        "kill",
        "pause",
        "packet",
        "clock",
        "disk",
        "power",
        "vote-kill",
        "stale-leader",
        "figure8",
    ];
    assert_eq!(names(&c.nemesis), kv_local);
    let c = resolve("etcd", "local", &["all"]).unwrap();
    assert_eq!(names(&c.nemesis), ["partition", "kill", "pause", "packet"]);
    let faketime = faultline_clusters::db::FAKETIME_LIBS
        .iter()
        .any(|p| Path::new(p).is_file());
    let c = resolve("kv", "docker", &["all"]).unwrap();
    // Docker: the local list without power, and without clock unless the node image can
    // take libfaketime.
    let mut docker = kv_local.to_vec();
    docker.retain(|f| *f != "power" && (faketime || *f != "clock"));
    assert_eq!(names(&c.nemesis), docker);
    let c = resolve("kv", "local", &["kill", "all"]).unwrap();
    assert_eq!(c.nemesis.len(), 10);
    let e = resolve("etcd", "local", &["partition", "clock"])
        .unwrap_err()
        .0;
    assert!(
        e.starts_with("--nemesis: `clock` cannot be injected with --db etcd on --cluster local: etcd is a Go program"),
        "{e}"
    );
    let docker_clock = resolve("kv", "docker", &["clock"]);
    if faketime {
        assert!(docker_clock.is_ok());
    } else {
        let e = docker_clock.unwrap_err().0;
        assert!(e.contains("`clock` cannot be injected"), "{e}");
    }
    let e = resolve("etcd", "local", &["disk"]).unwrap_err().0;
    assert!(e.contains("faultline-kv's write-ahead log"), "{e}");
    let e = resolve("kv", "docker", &["power"]).unwrap_err().0;
    assert!(e.contains("--cluster local"), "{e}");
    assert!(resolve("etcd", "local", &["power"]).is_err());
    assert!(resolve("kv", "local", &["all", "none"]).is_err());
}

#[test]
fn config_json_keeps_its_fields_and_names() {
    let c = RunConfig::resolve(&RunArgs {
        consensus: Some("paxos".into()),
        bug: Some(vec!["paxos-ignore-promise".into()]),
        nemesis: Some(vec!["kill".into(), "pause".into()]),
        seed: Some(7),
        ..RunArgs::default()
    })
    .unwrap();
    let json = serde_json::to_value(&c).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "db",
            "db-file",
            "client-cmd",
            "consensus",
            "workload",
            "nemesis",
            "nemesis-interval",
            "nemesis-mode",
            "nemesis-schedule",
            "nodes",
            "concurrency",
            "rate",
            "time-limit",
            "cluster",
            "hosts",
            "seed",
            "bug",
            "kv-args",
            "read-mode",
            "consistency-model",
            "isolation",
            "client-routing",
            "store",
            "name",
            "op-timeout",
            "recovery-time",
            "check-time-limit"
        ]
    );
    assert_eq!(json["db"], "kv");
    assert_eq!(json["consensus"], "paxos");
    assert_eq!(json["nemesis"], serde_json::json!(["kill", "pause"]));
    assert_eq!(json["cluster"], "local");
    assert_eq!(json["bug"], serde_json::json!(["paxos-ignore-promise"]));
    assert_eq!(json["read-mode"], "linearizable");
    assert_eq!(json["consistency-model"], "strict-serializable");
    assert_eq!(json["isolation"], "serializable");
    assert_eq!(json["time-limit"], 60.0);
}

#[test]
fn a_consistency_model_is_elles_and_for_transactions_only() {
    let args = |workload: &str, model: &str| RunArgs {
        workload: Some(workload.into()),
        consistency_model: Some(model.into()),
        ..RunArgs::default()
    };
    let c = RunConfig::resolve(&args("list-append", "snapshot-isolation")).unwrap();
    assert_eq!(c.consistency_model.name(), "snapshot-isolation");
    let (_dir, path) = file("workload = \"rw-register\"\nconsistency-model = \"read-committed\"\n");
    let from_file = RunConfig::resolve(&RunArgs {
        config: Some(path),
        ..RunArgs::default()
    })
    .unwrap();
    assert_eq!(from_file.consistency_model.name(), "read-committed");
    let e = RunConfig::resolve(&args("list-append", "eventual"))
        .unwrap_err()
        .0;
    assert!(
        e.starts_with("--consistency-model: unknown consistency model `eventual`"),
        "{e}"
    );
    let e = RunConfig::resolve(&args("bank", "serializable"))
        .unwrap_err()
        .0;
    assert!(
        e.contains("the bank workload is not checked by Elle"),
        "{e}"
    );
}

#[test]
fn the_help_lists_every_fault_bug_database_and_workload_from_their_types() {
    use clap::{CommandFactory, Parser, ValueEnum};

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }
    let help = Run::command().render_help().to_string();
    for fault in faultline_nemesis::Fault::ALL {
        assert!(
            help.contains(fault.name()),
            "{} missing from:\n{help}",
            fault.name()
        );
    }
    for bug in Bug::value_variants() {
        assert!(help.contains(bug.name()), "{bug} missing from:\n{help}");
    }
    for workload in faultline_workloads::workload::NAMES {
        assert!(help.contains(workload), "{workload} missing from:\n{help}");
    }
    assert!(
        help.contains("kv, etcd") && help.contains("local, docker, ssh"),
        "{help}"
    );
    assert!(
        help.contains("paxos-ignore-promise (with --consensus paxos)"),
        "{help}"
    );
}

#[test]
fn nemesis_modes_and_schedule_files() {
    let c = RunConfig::resolve(&RunArgs::default()).unwrap();
    assert_eq!(c.nemesis_mode, NemesisMode::Composed);
    let (_dir, path) = file("nemesis-mode = \"sequential\"\n");
    let args = RunArgs {
        config: Some(path),
        ..RunArgs::default()
    };
    assert_eq!(
        RunConfig::resolve(&args).unwrap().nemesis_mode,
        NemesisMode::Sequential
    );
    let bad = RunArgs {
        nemesis_mode: Some("parallel".into()),
        ..RunArgs::default()
    };
    let e = RunConfig::resolve(&bad).unwrap_err().0;
    assert!(
        e.contains(
            "--nemesis-mode: unknown value `parallel`; expected one of sequential, composed"
        ),
        "{e}"
    );

    let (_dir, schedule) = file(
        "[[at]]\ntime = 1\nstart = \"partition\"\ntarget = \"minority-with-leader\"\n\
         [[at]]\ntime = 2\nstart = \"kill\"\ntarget = \"previous-leader\"\n\
         [[at]]\ntime = 3\nstop = \"kill\"\n",
    );
    let args = RunArgs {
        nemesis_schedule: Some(schedule.clone()),
        ..RunArgs::default()
    };
    let c = RunConfig::resolve(&args).unwrap();
    assert_eq!(names(&c.nemesis), ["partition", "kill"]);
    assert_eq!(c.schedule.as_ref().map(Vec::len), Some(3));
    let both = RunArgs {
        nemesis_schedule: Some(schedule.clone()),
        nemesis: Some(vec!["kill".into()]),
        ..RunArgs::default()
    };
    let e = RunConfig::resolve(&both).unwrap_err().0;
    assert!(e.contains("drop --nemesis"), "{e}");
    // Checked against the database like --nemesis.
    let etcd = RunArgs {
        nemesis_schedule: Some(schedule.clone()),
        db: Some("etcd".into()),
        ..RunArgs::default()
    };
    RunConfig::resolve(&etcd).unwrap();
    let (_dir, clock) = file("[[at]]\ntime = 1\nstart = \"clock\"\n");
    let etcd_clock = RunArgs {
        nemesis_schedule: Some(clock),
        db: Some("etcd".into()),
        ..RunArgs::default()
    };
    let e = RunConfig::resolve(&etcd_clock).unwrap_err().0;
    assert!(
        e.starts_with("--nemesis-schedule: `clock` cannot be injected"),
        "{e}"
    );
    let (_dir, far) = file("[[at]]\ntime = 1\nstart = \"kill\"\ntarget = [\"n7\"]\n");
    let e = RunConfig::resolve(&RunArgs {
        nemesis_schedule: Some(far),
        ..RunArgs::default()
    })
    .unwrap_err()
    .0;
    assert!(e.contains("names node n7, but the run has n1 to n5"), "{e}");
    let (_dir, broken) = file("[[at]]\ntime = 1\nstart = \"kill\"\ntarget = \"most\"\n");
    let e = RunConfig::resolve(&RunArgs {
        nemesis_schedule: Some(broken.clone()),
        ..RunArgs::default()
    })
    .unwrap_err()
    .0;
    assert!(
        e.starts_with(&format!(
            "--nemesis-schedule {}:1: target",
            broken.display()
        )),
        "{e}"
    );
}

#[test]
fn client_routing_is_pinned_unless_told_and_checked() {
    assert_eq!(
        RunConfig::resolve(&RunArgs::default())
            .unwrap()
            .client_routing,
        Routing::Pinned
    );
    let (_dir, path) = file("client-routing = \"leader\"\n");
    let args = RunArgs {
        config: Some(path),
        ..RunArgs::default()
    };
    assert_eq!(
        RunConfig::resolve(&args).unwrap().client_routing,
        Routing::Leader
    );
    let e = RunConfig::resolve(&RunArgs {
        client_routing: Some("nearest".into()),
        ..RunArgs::default()
    })
    .unwrap_err()
    .0;
    assert!(
        e.starts_with("--client-routing: unknown value `nearest`; expected one of pinned, leader"),
        "{e}"
    );
}
