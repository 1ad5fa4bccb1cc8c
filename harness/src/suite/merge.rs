//! `faultline index STORE... --out DIR`: the stores of a suite's shards (run on several
//! machines, copied back as CI artifacts) merged into one directory: every run copied
//! in (`DIR/TEST/RUN`, so the index's relative links work from there), one
//! `index.html`, one JUnit file holding each shard's `<testsuite>`, and one exit code.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::index::{read_json, stored_runs, write_index};
use crate::error::UsageError;
use crate::output::say;

/// Arguments of `faultline index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The stores to merge (each a `faultline suite` store: `TEST/RUN/results.json`,
    /// and its `junit.xml`).
    #[arg(value_name = "STORE", required = true)]
    pub stores: Vec<PathBuf>,
    /// Where the merged store goes (created; runs already there are kept).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What the merge found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    runs: usize,
    missed: usize,
    unknown: usize,
    crashed: usize,
}

/// Merges the stores; the exit code of the whole: 0 when every suite run met its
/// expectation, 255 if a shard recorded a crash, else 2 if a missed run was unknown,
/// else 1.
pub fn run(args: &IndexArgs) -> Result<i32> {
    for store in &args.stores {
        if !store.is_dir() {
            return Err(UsageError(format!(
                "{}: no such store directory (pass the --store of each shard's `faultline suite`)",
                store.display()
            ))
            .into());
        }
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut tally = Tally::default();
    let mut suites = Vec::new();
    for store in &args.stores {
        copy_runs(store, &args.out, &mut tally)?;
        let junit = store.join("junit.xml");
        if let Ok(xml) = fs::read_to_string(&junit) {
            tally.crashed += errors_in(&xml);
            suites.push(strip_declaration(&xml).trim().to_string());
        }
    }
    let index = write_index(&args.out)?;
    let junit = args.out.join("junit.xml");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n{}\n</testsuites>\n",
        suites.join("\n")
    );
    fs::write(&junit, xml).with_context(|| format!("cannot write {}", junit.display()))?;
    say!(
        "index: {} run(s) from {} store(s); {} missed their expectation, {} crashed",
        tally.runs,
        args.stores.len(),
        tally.missed,
        tally.crashed
    );
    say!("  index: {}", index.display());
    say!("  junit: {}", junit.display());
    Ok(exit_code(&tally))
}

fn exit_code(tally: &Tally) -> i32 {
    if tally.crashed > 0 {
        255
    } else if tally.unknown > 0 {
        2
    } else if tally.missed > 0 {
        1
    } else {
        0
    }
}

/// Copies every run of `store` (`TEST/RUN` with a `results.json`) into `out`, counting
/// the suite runs whose expectation was missed.
fn copy_runs(store: &Path, out: &Path, tally: &mut Tally) -> Result<()> {
    for found in stored_runs(store)? {
        tally.runs += 1;
        if let Some(suite) = read_json(&found.dir.join("suite.json"))
            && suite["passed"] == false
        {
            tally.missed += 1;
            if found.results["valid"] == "unknown" {
                tally.unknown += 1;
            }
        }
        copy_dir(&found.dir, &out.join(&found.test).join(&found.run))?;
    }
    Ok(())
}

/// Copies the directory `from` to `to` (files and directories; links as the files
/// they point to, when they do).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &target)?;
        } else if source.is_file() {
            fs::copy(&source, &target).with_context(|| {
                format!("cannot copy {} to {}", source.display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// The XML without its `<?xml …?>` declaration.
fn strip_declaration(xml: &str) -> &str {
    match xml.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(xml, |(_, body)| body),
        None => xml,
    }
}

/// The `errors="N"` of a JUnit file's `<testsuite>` (crashed runs).
fn errors_in(xml: &str) -> usize {
    xml.split_once("<testsuite ")
        .and_then(|(_, rest)| rest.split_once("errors=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_run(store: &Path, test: &str, run: &str, valid: &str, passed: bool) {
        let dir = store.join(test).join(run);
        fs::create_dir_all(dir.join("nodes/n1")).unwrap();
        fs::write(
            dir.join("results.json"),
            format!("{{\"valid\": {valid}, \"seed\": 1}}"),
        )
        .unwrap();
        fs::write(
            dir.join("suite.json"),
            format!("{{\"expect\": \"valid\", \"passed\": {passed}}}"),
        )
        .unwrap();
        fs::write(dir.join("report.html"), "<html></html>").unwrap();
        fs::write(dir.join("nodes/n1/node.log"), "log").unwrap();
    }

    fn junit(store: &Path, name: &str, errors: usize) {
        fs::write(
            store.join("junit.xml"),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"{name}\" \
                 tests=\"1\" failures=\"0\" errors=\"{errors}\"></testsuite>\n"
            ),
        )
        .unwrap();
    }

    #[test]
    fn shards_merge_into_one_index_junit_and_exit_code() {
        let root = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            root.path().join("a"),
            root.path().join("b"),
            root.path().join("merged"),
        );
        fake_run(&a, "kv-register", "2026-01-01T000000Z", "true", true);
        fake_run(&b, "kv-bank", "2026-01-01T000100Z", "false", true);
        junit(&a, "shard-1", 0);
        junit(&b, "shard-2", 0);
        let args = IndexArgs {
            stores: vec![a.clone(), b.clone()],
            out: out.clone(),
        };
        assert_eq!(run(&args).unwrap(), 0);
        let html = fs::read_to_string(out.join("index.html")).unwrap();
        assert!(
            html.contains("kv-register/2026-01-01T000000Z/report.html"),
            "{html}"
        );
        assert!(
            html.contains("kv-bank/2026-01-01T000100Z/report.html"),
            "{html}"
        );
        assert!(
            out.join("kv-bank/2026-01-01T000100Z/nodes/n1/node.log")
                .is_file()
        );
        let xml = fs::read_to_string(out.join("junit.xml")).unwrap();
        assert!(xml.contains("<testsuites>") && xml.contains("name=\"shard-1\""));
        assert_eq!(xml.matches("<?xml").count(), 1, "{xml}");
        // A missed expectation, an unknown one, a crash: the worst wins.
        fake_run(&b, "kv-set", "r2", "false", false);
        assert_eq!(run(&args).unwrap(), 1);
        fake_run(&b, "kv-lock", "r3", "\"unknown\"", false);
        assert_eq!(run(&args).unwrap(), 2);
        junit(&b, "shard-2", 1);
        assert_eq!(run(&args).unwrap(), 255);
        // A store that is not there is bad input.
        let missing = IndexArgs {
            stores: vec![root.path().join("nope")],
            out,
        };
        let e = run(&missing).unwrap_err().to_string();
        assert!(e.contains("no such store directory"), "{e}");
    }
}
