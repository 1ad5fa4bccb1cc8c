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
        /// Text the anomalies line must contain (e.g. `G1c`, `not linearizable`), or a
        /// list of such texts of which one must appear.
        expect_anomaly: Option<TextOrList>,
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
    nemesis: Option<Vec<TextOrList>>,
    #[serde(alias = "seed")]
    seeds: Option<Vec<u64>>,
}

/// One value of the nemesis axis: `"partition"`, `"kill,pause"` or `["kill", "pause"]`;
/// also an `expect-anomaly`: one text or a list of texts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TextOrList {
    Text(String),
    List(Vec<String>),
}

impl TextOrList {
    /// The names: a text split at commas, or the list.
    fn names(&self) -> Vec<String> {
        match self {
            TextOrList::Text(text) => text.split(',').map(|f| f.trim().to_string()).collect(),
            TextOrList::List(list) => list.clone(),
        }
    }

    /// The items as given: a text whole (no split), or the list.
    fn items(&self) -> Vec<String> {
        match self {
            TextOrList::Text(text) => vec![text.clone()],
            TextOrList::List(list) => list.clone(),
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
                .map(|v| v.iter().map(TextOrList::names).collect()),
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
                            expect_anomaly: Vec::new(),
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
                Some(Expect::Valid) => Vec::new(),
                _ => e
                    .expect_anomaly
                    .as_ref()
                    .map(TextOrList::items)
                    .unwrap_or_default(),
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
mod tests;
