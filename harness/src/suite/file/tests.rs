//! Tests of suite files: expansion, profiles, seeds, and the example suites.

use std::time::Duration;

use std::path::PathBuf;

use super::*;
use faultline_clusters::ClusterKind;
use faultline_nemesis::Fault;

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightly.toml");
    fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn the_matrix_and_the_entries_expand_in_order() {
    let (_dir, path) = file(
        "time-limit = 5\nnodes = 3\n\n[matrix]\ndb = [\"kv\", \"etcd\"]\n\
         workload = [\"register\"]\nnemesis = [\"partition\", [\"kill\", \"pause\"]]\n\
         seeds = [1, 2]\n\n[[run]]\nname = \"stale\"\nbug = [\"stale-read\"]\n\
         expect = \"invalid\"\n",
    );
    let suite = load(&path, Some(Path::new("/tmp/s")), None).unwrap();
    assert_eq!(suite.name, "nightly");
    assert_eq!(suite.runs.len(), 2 * 2 * 2 + 1);
    let first = &suite.runs[0];
    assert_eq!(first.label, "kv-register-partition seed 1");
    assert_eq!((first.config.nodes, first.config.seed), (3, 1));
    assert_eq!(first.config.store, Path::new("/tmp/s"));
    assert_eq!(suite.runs[3].config.nemesis, [Fault::Kill, Fault::Pause]);
    assert_eq!(suite.runs[3].config.name, "kv-register-kill_pause");
    let last = suite.runs.last().unwrap();
    assert_eq!((last.label.as_str(), last.line), ("stale", 10));
    assert_eq!(last.expect, Expect::Invalid);
    assert_eq!(last.config.bug, [faultline_clusters::db::Bug::StaleRead]);
    assert_eq!(last.config.time_limit, Duration::from_secs(5));
}

#[test]
fn shards_and_the_commit_protocol_are_suite_keys() {
    let (_dir, path) = file(
        "shards = 3\nworkload = \"list-append\"\n\n[[run]]\nname = \"2pc\"\n\n\
         [[run]]\nname = \"3pc\"\ncommit-protocol = \"3pc\"\n\n\
         [[run]]\nname = \"one\"\nshards = 1\ncommit-protocol = \"3pc\"\n",
    );
    let e = load(&path, None, None).unwrap_err().0;
    assert!(
        e.starts_with(&format!(
            "{}:11: run `one`: --commit-protocol: 3pc commits transactions across shards",
            path.display()
        )),
        "{e}"
    );
    let (_dir, path) = file(
        "shards = 3\nworkload = \"list-append\"\n\n[[run]]\nname = \"2pc\"\n\n\
         [[run]]\nname = \"3pc\"\ncommit-protocol = \"3pc\"\n",
    );
    let suite = load(&path, None, None).unwrap();
    let protocols: Vec<_> = suite
        .runs
        .iter()
        .map(|p| (p.config.shards, p.config.commit_protocol.map(|c| c.name())))
        .collect();
    assert_eq!(protocols, [(3, Some("2pc")), (3, Some("3pc"))]);
}

#[test]
fn errors_name_the_file_and_line() {
    let (_dir, path) = file("nodes = 3\n\n[[run]]\nname = \"a\"\nnodez = 4\n");
    let e = load(&path, None, None).unwrap_err().0;
    assert!(
        e.starts_with(&format!("{}:5: unknown field `nodez`", path.display())),
        "{e}"
    );
    let (_dir, path) =
        file("[[run]]\nname = \"a\"\n\n[[run]]\ndb = \"etcd\"\nbug = [\"stale-read\"]\n");
    let e = load(&path, None, None).unwrap_err().0;
    assert!(
        e.starts_with(&format!("{}:4: run `etcd-register`", path.display())),
        "{e}"
    );
    let (_dir, path) = file("[[run]]\nexpect = \"green\"\n");
    let e = load(&path, None, None).unwrap_err().0;
    assert!(e.starts_with(&format!("{}:2:", path.display())), "{e}");
}

#[test]
fn the_example_nightly_suite_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/nightly.toml");
    let suite = load(&path, None, None).unwrap();
    assert_eq!(suite.name, "nightly");
    // The matrix, then three sharded runs on three seeds each.
    assert_eq!(suite.runs.len(), 2 * 5 * 6 * 3 + 3 * 3);
    assert!(suite.runs.iter().all(|r| r.expect == Expect::Valid));
    assert_eq!(
        suite.runs.iter().filter(|r| r.config.shards == 3).count(),
        9
    );
    let ci = load(&path, None, Some("ci")).unwrap();
    assert_eq!(ci.runs.len(), 2 * 5 + 3);
    let docker = load(&path, None, Some("docker")).unwrap();
    assert_eq!(docker.runs.len(), 2 * 5 + 3);
    assert!(
        docker
            .runs
            .iter()
            .all(|r| r.config.cluster == ClusterKind::Docker)
    );
    assert!(
        docker
            .runs
            .iter()
            .all(|r| !r.config.nemesis.contains(&Fault::Power))
    );
    let docker_full = load(&path, None, Some("docker-full")).unwrap();
    assert_eq!(docker_full.runs.len(), 2 * 5 * 6 * 3 + 3 * 3);
    // Schedule paths are relative to where faultline runs (the repository root);
    // tests run in harness/, so they read a copy with the paths made absolute.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("suites/bugs.toml")).unwrap();
    let schedules = format!("\"{}/suites/schedules/", root.display());
    let (_bugs_dir, bugs) = file(&text.replace("\"suites/schedules/", &schedules));
    let on_docker = load(&bugs, None, Some("docker")).unwrap();
    let all_bugs = load(&bugs, None, None).unwrap();
    // The power run is local-only: its three seeds are skipped on Docker.
    assert_eq!(on_docker.runs.len() + 3, all_bugs.runs.len());
    // Every bug on three seeds, and the correct node under the same schedules.
    use faultline_clusters::db::Bug;
    let planted: std::collections::BTreeSet<&str> = all_bugs
        .runs
        .iter()
        .flat_map(|r| r.config.bug.iter().map(|b| b.name()))
        .collect();
    use clap::ValueEnum;
    let expected = Bug::value_variants();
    assert_eq!(planted, expected.iter().map(|b| b.name()).collect());
    assert_eq!(all_bugs.runs.len(), 3 * expected.len());
    let correct = load(&bugs, None, Some("correct")).unwrap();
    assert_eq!(correct.runs.len(), all_bugs.runs.len());
    assert!(
        correct
            .runs
            .iter()
            .all(|r| r.expect == Expect::Valid && r.config.bug.is_empty())
    );
    let etcd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/etcd.toml");
    let etcd = load(&etcd, None, Some("docker")).unwrap();
    assert!(
        etcd.runs
            .iter()
            .all(|r| r.config.cluster == ClusterKind::Docker)
    );
    for (name, path) in [
        ("bugs", bugs.clone()),
        ("etcd", root.join("suites/etcd.toml")),
    ] {
        let suite = load(&path, None, None).unwrap();
        assert!(
            suite.runs.iter().any(|r| r.expect == Expect::Invalid),
            "{name}"
        );
    }
    let (_dir, path) = file("[matrix]\ndb = []\n");
    let e = load(&path, None, None).unwrap_err().0;
    assert!(e.contains(":1: matrix `db` is empty"), "{e}");
}

#[test]
fn a_profile_overrides_every_run_and_replaces_matrix_axes() {
    let (_dir, path) = file(
        "time-limit = 60\n\n[matrix]\nconsensus = [\"raft\", \"paxos\"]\n\
         workload = [\"register\", \"bank\"]\nseeds = [1, 2, 3]\n\n\
         [[run]]\nname = \"bug\"\ntime-limit = 30\nexpect = \"invalid\"\n\
         expect-anomaly = \"not linearizable\"\n\n\
         [profile.ci]\ntime-limit = 5\n\n[profile.ci.matrix]\nseeds = [7]\n",
    );
    let full = load(&path, None, None).unwrap();
    assert_eq!(full.runs.len(), 2 * 2 * 3 + 1);
    assert_eq!(full.runs[0].label, "kv-raft-register seed 1");
    assert_eq!(
        full.runs[6].config.consensus,
        faultline_clusters::db::Consensus::Paxos
    );
    assert_eq!(full.runs[12].config.time_limit, Duration::from_secs(30));
    assert_eq!(full.runs[12].expect_anomaly, ["not linearizable"]);
    let short = load(&path, None, Some("ci")).unwrap();
    assert_eq!(short.runs.len(), 2 * 2 + 1);
    assert!(
        short
            .runs
            .iter()
            .all(|r| r.config.time_limit == Duration::from_secs(5))
    );
    assert!(short.runs[..4].iter().all(|r| r.config.seed == 7));
    let e = load(&path, None, Some("nightly")).unwrap_err().0;
    assert!(e.ends_with("no profile `nightly`; the file has: ci"), "{e}");
}

#[test]
fn a_profile_skips_named_runs_and_refuses_unknown_names() {
    let text = "[[run]]\nname = \"a\"\n\n[[run]]\nname = \"b\"\nbug = [\"no-fsync\"]\n\n\
                [profile.docker]\ncluster = \"docker\"\nskip = [\"b\"]\n\n\
                [profile.typo]\nskip = [\"c\"]\n";
    let (_dir, path) = file(text);
    let all = load(&path, None, None).unwrap();
    assert_eq!(all.runs.len(), 2);
    let docker = load(&path, None, Some("docker")).unwrap();
    let labels: Vec<&str> = docker.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["a"]);
    let e = load(&path, None, Some("typo")).unwrap_err().0;
    assert!(
        e.ends_with(":12: the profile skips `c`, but no [[run]] has that name"),
        "{e}"
    );
}

#[test]
fn entries_run_once_per_seed_and_a_profile_can_expect_valid() {
    let text = "expect = \"invalid\"\nseeds = [1, 2]\n\n\
                [[run]]\nname = \"a\"\nbug = [\"stale-read\"]\nexpect-anomaly = \"stale\"\n\n\
                [[run]]\nname = \"b\"\nseeds = [7, 8, 9]\nexpect-anomaly = [\"lost\", \"G0\"]\n\n\
                [[run]]\nname = \"c\"\nseed = 5\n\n\
                [profile.correct]\nbug = []\nexpect = \"valid\"\n\n\
                [profile.one]\nseeds = [3]\n";
    let (_dir, path) = file(text);
    let all = load(&path, None, None).unwrap();
    let stale = vec!["stale".to_string()];
    let lost_or_g0 = vec!["lost".to_string(), "G0".to_string()];
    let runs: Vec<(&str, u64, Expect, Vec<String>)> = all
        .runs
        .iter()
        .map(|r| {
            (
                r.label.as_str(),
                r.config.seed,
                r.expect,
                r.expect_anomaly.clone(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("a seed 1", 1, Expect::Invalid, stale.clone()),
            ("a seed 2", 2, Expect::Invalid, stale),
            ("b seed 7", 7, Expect::Invalid, lost_or_g0.clone()),
            ("b seed 8", 8, Expect::Invalid, lost_or_g0.clone()),
            ("b seed 9", 9, Expect::Invalid, lost_or_g0),
            ("c", 5, Expect::Invalid, vec![]),
        ]
    );
    assert!(all.runs.iter().all(|r| !r.config.name.is_empty()));
    let correct = load(&path, None, Some("correct")).unwrap();
    assert_eq!(correct.runs.len(), 6);
    for r in &correct.runs {
        assert_eq!(r.expect, Expect::Valid, "{}", r.label);
        assert!(r.expect_anomaly.is_empty(), "{}", r.label);
        assert!(r.config.bug.is_empty(), "{}", r.label);
    }
    let one = load(&path, None, Some("one")).unwrap();
    let labels: Vec<&str> = one.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["a seed 3", "b seed 3", "c seed 3"]);
    let (_dir, both) = file("[[run]]\nseed = 1\nseeds = [2]\n");
    let e = load(&both, None, None).unwrap_err().0;
    assert!(e.ends_with(":1: give `seed` or `seeds`, not both"), "{e}");
    let (_dir, empty) = file("[[run]]\nseeds = []\n");
    let e = load(&empty, None, None).unwrap_err().0;
    assert!(e.contains("`seeds` is empty"), "{e}");
}

#[test]
fn every_run_flag_is_a_suite_setting() {
    let command = <RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
    for arg in command.get_arguments() {
        let key = arg.get_id().as_str().replace('_', "-");
        if key == "config" {
            continue;
        }
        // A value of the wrong type: the key must be known, the type refused.
        let entry = toml::from_str::<SuiteFile>(&format!("[[run]]\n{key} = {{}}\n"));
        let e = entry.unwrap_err().to_string();
        assert!(!e.contains("unknown field"), "[[run]] lacks `{key}`: {e}");
        if key != "name" {
            let top = toml::from_str::<SuiteFile>(&format!("{key} = {{}}\n"));
            let e = top.unwrap_err().to_string();
            assert!(!e.contains("unknown field"), "defaults lack `{key}`: {e}");
        }
    }
}
