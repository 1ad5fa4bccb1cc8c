//! The suite file: defaults, `[matrix]`, `[[run]]` entries, read into resolved runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{RunArgs, RunConfig, toml_error, with_run_settings};
use crate::error::UsageError;
use crate::outcome::{Expect, Planned};

/// A parsed suite: its name and its runs, in order.
#[derive(Debug, Clone)]
pub struct Suite {
    /// JUnit's testsuite name.
    pub name: String,
    /// The runs, matrix first, then the `[[run]]` entries.
    pub runs: Vec<Planned>,
    /// The store every run writes to.
    pub store: PathBuf,
}

with_run_settings! {
    /// The whole suite file: defaults for every run, the matrix, the entries.
    struct SuiteFile {
        /// The suite's name (JUnit's testsuite) [default: the file's stem].
        suite: Option<String>,
        /// The expected verdict of every run that does not say [default: valid].
        expect: Option<Expect>,
        /// Seeds for every `[[run]]` that gives neither `seed` nor `seeds`: each such
        /// entry runs once per seed.
        seeds: Option<Vec<u64>>,
        matrix: Option<Spanned<Matrix>>,
        #[serde(default)]
        run: Vec<Spanned<Entry>>,
        #[serde(default)]
        profile: BTreeMap<String, Spanned<Profile>>,
    }
}

with_run_settings! {
    /// One `[profile.NAME]`: settings that win over every run's, and matrix axes that
    /// replace the file's (`faultline suite FILE --profile NAME`).
    struct Profile {
        matrix: Option<Matrix>,
        /// `[[run]]` names this profile leaves out (e.g. a fault the profile's
        /// backend cannot inject); each must name a run of the file.
        skip: Option<Vec<String>>,
        /// The expected verdict of every run, over the entries' own; `valid` also
        /// drops their `expect-anomaly` (e.g. the planted bugs' schedules on the
        /// correct node).
        expect: Option<Expect>,
        /// Seeds for every `[[run]]`, over the entries' `seed`/`seeds`.
        seeds: Option<Vec<u64>>,
    }
}

with_run_settings! {
    /// One `[[run]]`: its settings over the defaults, its name, its expectation.
    struct Entry {
        name: Option<String>,
        expect: Option<Expect>,
        /// Text the anomalies line must contain (e.g. `G1c`, `not linearizable`).
        expect_anomaly: Option<String>,
        /// Runs this entry once per seed (labelled `NAME seed N`), instead of `seed`.
        seeds: Option<Vec<u64>>,
    }
}

/// The `[matrix]` table: every combination of its axes is one run.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Matrix {
    db: Option<Vec<String>>,
    consensus: Option<Vec<String>>,
    workload: Option<Vec<String>>,
    nemesis: Option<Vec<Faults>>,
    #[serde(alias = "seed")]
    seeds: Option<Vec<u64>>,
}

/// One value of the nemesis axis: `"partition"`, `"kill,pause"` or `["kill", "pause"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Faults {
    Text(String),
    List(Vec<String>),
}

impl Faults {
    fn names(&self) -> Vec<String> {
        match self {
            Faults::Text(text) => text.split(',').map(|f| f.trim().to_string()).collect(),
            Faults::List(list) => list.clone(),
        }
    }
}

/// An axis's values, each `Some`; one `None` (the default) when the axis is absent.
fn values<T>(axis: Option<Vec<T>>) -> Vec<Option<T>> {
    match axis {
        Some(values) => values.into_iter().map(Some).collect(),
        None => vec![None],
    }
}

impl Matrix {
    /// This matrix with every axis `other` has replaced by `other`'s.
    fn replaced_by(&self, other: &Matrix) -> Matrix {
        Matrix {
            db: other.db.clone().or_else(|| self.db.clone()),
            consensus: other.consensus.clone().or_else(|| self.consensus.clone()),
            workload: other.workload.clone().or_else(|| self.workload.clone()),
            nemesis: other.nemesis.clone().or_else(|| self.nemesis.clone()),
            seeds: other.seeds.clone().or_else(|| self.seeds.clone()),
        }
    }
}

/// Reads a suite file; `store` (the `--store` flag) wins over the file's; `profile`
/// applies the file's `[profile.NAME]`. Every run is resolved and checked before
/// anything runs; errors name the file and line.
pub fn load(
    path: &Path,
    store: Option<&Path>,
    profile: Option<&str>,
) -> std::result::Result<Suite, UsageError> {
    let text = fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "{}: cannot read the suite file: {e}",
            path.display()
        ))
    })?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: SuiteFile = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    let name = file.suite.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite".into())
    });
    let default_expect = file.expect.unwrap_or_default();
    let profile = match profile {
        None => None,
        Some(wanted) => Some(file.profile.get(wanted).ok_or_else(|| {
            let known: Vec<&str> = file.profile.keys().map(String::as_str).collect();
            UsageError(format!(
                "{}: no profile `{wanted}`; {}",
                path.display(),
                if known.is_empty() {
                    "the file has no [profile.NAME] tables".to_string()
                } else {
                    format!("the file has: {}", known.join(", "))
                }
            ))
        })?),
    };
    let base = |extra: &dyn Fn(&mut RunArgs)| {
        let mut args = RunArgs::default();
        file.overlay(&mut args);
        extra(&mut args);
        if let Some(profile) = profile {
            profile.get_ref().overlay(&mut args);
        }
        if let Some(store) = store {
            args.store = Some(store.to_path_buf());
        }
        args
    };
    let resolve = |args: &RunArgs, line: usize, label: &str| {
        RunConfig::resolve(args)
            .map_err(|e| UsageError(format!("{}:{line}: run `{label}`: {}", path.display(), e.0)))
    };
    let skip: &[String] = profile
        .and_then(|p| p.get_ref().skip.as_deref())
        .unwrap_or_default();
    if let (Some(profile), Some(unknown)) = (
        profile,
        skip.iter().find(|s| {
            !file
                .run
                .iter()
                .any(|e| e.get_ref().name.as_ref() == Some(*s))
        }),
    ) {
        return Err(UsageError(format!(
            "{}:{}: the profile skips `{unknown}`, but no [[run]] has that name",
            path.display(),
            line_of(profile.span().start)
        )));
    }
    let mut runs = Vec::new();
    let matrix = match (&file.matrix, profile) {
        (Some(m), Some(p)) => Some((
            line_of(m.span().start),
            match &p.get_ref().matrix {
                Some(pm) => m.get_ref().replaced_by(pm),
                None => m.get_ref().clone(),
            },
        )),
        (Some(m), None) => Some((line_of(m.span().start), m.get_ref().clone())),
        (None, Some(p)) => p
            .get_ref()
            .matrix
            .clone()
            .map(|pm| (line_of(p.span().start), pm)),
        (None, None) => None,
    };
    if let Some((line, m)) = &matrix {
        let line = *line;
        let axis = |key: &str, n: Option<usize>| match n {
            Some(0) => Err(UsageError(format!(
                "{}:{line}: matrix `{key}` is empty; give at least one value or drop it",
                path.display()
            ))),
            _ => Ok(()),
        };
        axis("db", m.db.as_ref().map(Vec::len))?;
        axis("consensus", m.consensus.as_ref().map(Vec::len))?;
        axis("workload", m.workload.as_ref().map(Vec::len))?;
        axis("nemesis", m.nemesis.as_ref().map(Vec::len))?;
        axis("seeds", m.seeds.as_ref().map(Vec::len))?;
        let dbs = values(m.db.clone());
        let consensuses = values(m.consensus.clone());
        let workloads = values(m.workload.clone());
        let nemeses = values(
            m.nemesis
                .as_ref()
                .map(|v| v.iter().map(Faults::names).collect()),
        );
        let seeds = values(m.seeds.clone());
        for (db, consensus) in dbs
            .iter()
            .flat_map(|d| consensuses.iter().map(move |c| (d, c)))
        {
            for workload in &workloads {
                for nemesis in &nemeses {
                    for seed in &seeds {
                        let args = base(&|args: &mut RunArgs| {
                            if let Some(db) = db {
                                args.db = Some(db.clone());
                            }
                            if let Some(c) = consensus {
                                args.consensus = Some(c.clone());
                            }
                            if let Some(w) = workload {
                                args.workload = Some(w.clone());
                            }
                            if let Some(n) = nemesis {
                                args.nemesis = Some(n.clone());
                            }
                            if let Some(s) = seed {
                                args.seed = Some(*s);
                            }
                        });
                        let mut name = args.db.as_deref().unwrap_or("kv").to_string();
                        if let Some(c) = consensus {
                            name.push('-');
                            name.push_str(c);
                        }
                        name.push('-');
                        name.push_str(args.workload.as_deref().unwrap_or("register"));
                        if let Some(n) = nemesis {
                            name.push('-');
                            name.push_str(&n.join("_"));
                        }
                        let mut args = args;
                        args.name = Some(name.clone());
                        let label = match seed {
                            Some(s) => format!("{name} seed {s}"),
                            None => name,
                        };
                        let config = resolve(&args, line, &label)?;
                        runs.push(Planned {
                            label,
                            line,
                            config,
                            expect: default_expect,
                            expect_anomaly: None,
                        });
                    }
                }
            }
        }
    }
    let profile_expect = profile.and_then(|p| p.get_ref().expect);
    for (i, entry) in file.run.iter().enumerate() {
        let line = line_of(entry.span().start);
        let e = entry.get_ref();
        if e.name.as_ref().is_some_and(|name| skip.contains(name)) {
            continue;
        }
        if e.seed.is_some() && e.seeds.is_some() {
            return Err(UsageError(format!(
                "{}:{line}: give `seed` or `seeds`, not both",
                path.display()
            )));
        }
        if e.seeds.as_ref().is_some_and(Vec::is_empty) {
            return Err(UsageError(format!(
                "{}:{line}: `seeds` is empty; give at least one seed or drop it",
                path.display()
            )));
        }
        let seeds = profile
            .and_then(|p| p.get_ref().seeds.clone())
            .or_else(|| e.seeds.clone())
            .or_else(|| {
                if e.seed.is_none() {
                    file.seeds.clone()
                } else {
                    None
                }
            });
        let name = e.name.clone().unwrap_or_else(|| {
            let args = base(&|args: &mut RunArgs| e.overlay(args));
            format!(
                "{}-{}",
                args.db.as_deref().unwrap_or("kv"),
                args.workload.as_deref().unwrap_or("register")
            )
        });
        let name = if runs.iter().any(|p: &Planned| p.label == name) {
            format!("{name} #{}", i + 1)
        } else {
            name
        };
        let per_seed: Vec<Option<u64>> = match &seeds {
            Some(seeds) => seeds.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        for seed in per_seed {
            let mut args = base(&|args: &mut RunArgs| {
                e.overlay(args);
                if let Some(seed) = seed {
                    args.seed = Some(seed);
                }
            });
            if let Some(seed) = seed {
                // Over a profile's own `seed`, too: the seeds axis is what varies.
                args.seed = Some(seed);
            }
            args.name = e.name.clone();
            let label = match seed {
                Some(seed) if seeds.is_some() => format!("{name} seed {seed}"),
                _ => name.clone(),
            };
            let config = resolve(&args, line, &label)?;
            let expect = profile_expect.unwrap_or(e.expect.unwrap_or(default_expect));
            let expect_anomaly = match profile_expect {
                Some(Expect::Valid) => None,
                _ => e.expect_anomaly.clone(),
            };
            runs.push(Planned {
                label,
                line,
                config,
                expect,
                expect_anomaly,
            });
        }
    }
    if profile.is_some_and(|p| p.get_ref().seeds.as_ref().is_some_and(Vec::is_empty)) {
        return Err(UsageError(format!(
            "{}: the profile's `seeds` is empty; give at least one seed or drop it",
            path.display()
        )));
    }
    if runs.is_empty() {
        return Err(UsageError(format!(
            "{}: no runs: add a [matrix] or [[run]] entries",
            path.display()
        )));
    }
    let store = runs[0].config.store.clone();
    if let Some(other) = runs.iter().find(|p| p.config.store != store) {
        return Err(UsageError(format!(
            "{}:{}: run `{}` writes to another store ({}); a suite has one store",
            path.display(),
            other.line,
            other.label,
            other.config.store.display()
        )));
    }
    Ok(Suite { name, runs, store })
}

#[cfg(test)]
mod tests {
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
        assert_eq!(suite.runs.len(), 2 * 5 * 6 * 3);
        assert!(suite.runs.iter().all(|r| r.expect == Expect::Valid));
        let ci = load(&path, None, Some("ci")).unwrap();
        assert_eq!(ci.runs.len(), 2 * 5);
        let docker = load(&path, None, Some("docker")).unwrap();
        assert_eq!(docker.runs.len(), 2 * 5);
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
        assert_eq!(docker_full.runs.len(), 2 * 5 * 6 * 3);
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
        assert!(all_bugs.runs.len() >= 18);
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
        assert_eq!(
            full.runs[12].expect_anomaly.as_deref(),
            Some("not linearizable")
        );
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
                    [[run]]\nname = \"b\"\nseeds = [7, 8, 9]\n\n\
                    [[run]]\nname = \"c\"\nseed = 5\n\n\
                    [profile.correct]\nbug = []\nexpect = \"valid\"\n\n\
                    [profile.one]\nseeds = [3]\n";
        let (_dir, path) = file(text);
        let all = load(&path, None, None).unwrap();
        let runs: Vec<(&str, u64, Expect, Option<&str>)> = all
            .runs
            .iter()
            .map(|r| {
                (
                    r.label.as_str(),
                    r.config.seed,
                    r.expect,
                    r.expect_anomaly.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            runs,
            [
                ("a seed 1", 1, Expect::Invalid, Some("stale")),
                ("a seed 2", 2, Expect::Invalid, Some("stale")),
                ("b seed 7", 7, Expect::Invalid, None),
                ("b seed 8", 8, Expect::Invalid, None),
                ("b seed 9", 9, Expect::Invalid, None),
                ("c", 5, Expect::Invalid, None),
            ]
        );
        assert!(all.runs.iter().all(|r| !r.config.name.is_empty()));
        let correct = load(&path, None, Some("correct")).unwrap();
        assert_eq!(correct.runs.len(), 6);
        for r in &correct.runs {
            assert_eq!(r.expect, Expect::Valid, "{}", r.label);
            assert_eq!(r.expect_anomaly, None, "{}", r.label);
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
}
