//! The node-log check of a run (`faultline_checker::nodelog`): which files of
//! `RUN_DIR/nodes/NODE/` are checked, with which crash patterns, and
//! `faultline check-logs RUN_DIR`, the same check of a stored run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use faultline_checker::nodelog::{self, CrashPatterns, NodeLog, NodeLogCheck};
use faultline_checker::{Checked, Results, Validity};
use serde_json::Value;

use crate::error::UsageError;

/// Arguments of `faultline check-logs`.
#[derive(Debug, Args)]
pub struct CheckLogsArgs {
    /// The run's directory in the store (holding `nodes/NODE/*.log`), e.g.
    /// `store/kv-register/latest`.
    pub run_dir: PathBuf,
    /// A crash pattern to add (repeatable): a case-sensitive substring, `^` first to
    /// anchor it at the line's start. The default set, and the patterns the run
    /// recorded in its `results.json`, are always used.
    #[arg(long = "pattern", value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Print the node-log check's `results.json` object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// The logs of the run's nodes: for each node (in order), each of `files` (the
/// database's log file names) found in `RUN_DIR/nodes/NODE/`. A file the backend did
/// not bring back is left out (log collection has said so already).
pub fn run_logs(run_dir: &Path, nodes: &[(String, Vec<String>)]) -> Vec<NodeLog> {
    let mut logs = Vec::new();
    for (node, files) in nodes {
        for file in files {
            let relative = Path::new("nodes").join(node).join(file);
            let path = run_dir.join(&relative);
            if path.is_file() {
                logs.push(NodeLog::file(node, &relative.display().to_string(), path));
            }
        }
    }
    logs
}

/// Every `*.log` file of `RUN_DIR/nodes/*/`, nodes and files in name order (for a
/// stored run, whose database is not built again).
pub fn stored_logs(run_dir: &Path) -> Result<Vec<NodeLog>> {
    let nodes_dir = run_dir.join("nodes");
    if !nodes_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut logs = Vec::new();
    for node in sorted_entries(&nodes_dir)? {
        if !node.is_dir() {
            continue;
        }
        let name = file_name(&node);
        for file in sorted_entries(&node)? {
            if file.is_file() && file.extension().is_some_and(|e| e == "log") {
                let relative = Path::new("nodes").join(&name).join(file_name(&file));
                logs.push(NodeLog::file(&name, &relative.display().to_string(), file));
            }
        }
    }
    Ok(logs)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The default crash patterns and `extra` (a database's own). A pattern refused here
/// was refused when the database was described, so this only warns.
pub fn patterns(extra: &[String]) -> CrashPatterns {
    CrashPatterns::default().with(extra).unwrap_or_else(|e| {
        eprintln!("faultline: warning: {e}; using the default crash patterns");
        CrashPatterns::default()
    })
}

/// Checks the logs and records the answer in `results` as `node-logs`.
pub fn check_into(results: &mut Results, logs: &[NodeLog], patterns: CrashPatterns) -> Checked {
    let checked = NodeLogCheck::new(patterns).check(logs);
    results.record(nodelog::NAME, &checked);
    checked
}

/// `faultline check-logs RUN_DIR`: the node-log check of a stored run, printed (the run's
/// `results.json` is left as it is); returns the verdict.
pub fn run(args: &CheckLogsArgs) -> Result<Validity> {
    if !args.run_dir.is_dir() {
        return Err(UsageError(format!(
            "{}: not a directory; give a run's directory, e.g. store/kv-register/latest",
            args.run_dir.display()
        ))
        .into());
    }
    let mut extra = recorded_patterns(&args.run_dir);
    extra.extend(args.patterns.iter().cloned());
    let patterns = CrashPatterns::default()
        .with(&extra)
        .map_err(|e| UsageError(format!("--pattern: {e}")))?;
    let logs = stored_logs(&args.run_dir)?;
    let mut results = Results::default();
    let checked = check_into(&mut results, &logs, patterns);
    let text = if args.json {
        serde_json::to_string_pretty(&checked.verdict.to_json())
            .context("cannot serialize the node-log results")?
            + "\n"
    } else {
        let mut text = format!(
            "{}: node logs {}\n",
            args.run_dir.display(),
            checked.verdict.valid.word()
        );
        text.push_str(&crate::summary::node_logs(&checked.verdict));
        for line in &checked.verdict.explanation {
            text.push_str(&format!("  {line}\n"));
        }
        text
    };
    crate::output::write_stdout(&text).context("cannot write to stdout")?;
    Ok(checked.verdict.valid)
}

/// The crash patterns a run recorded in its `results.json` (none if it has none).
fn recorded_patterns(run_dir: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(run_dir.join("results.json")) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    json["checkers"][nodelog::NAME]["crash_patterns"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("faultline-logs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for node in ["n1", "n2"] {
            fs::create_dir_all(dir.join("nodes").join(node)).unwrap();
        }
        dir
    }

    #[test]
    fn a_run_checks_the_database_log_files_it_finds() {
        let dir = run_dir("run");
        fs::write(dir.join("nodes/n1/node.log"), "ok\n").unwrap();
        fs::write(dir.join("nodes/n1/node.pid"), "1\n").unwrap();
        fs::write(
            dir.join("nodes/n2/node.log"),
            "thread 'x' panicked at a.rs:1:1:\n",
        )
        .unwrap();
        let nodes = vec![
            (
                "n1".to_string(),
                vec!["node.log".to_string(), "lazyfs.log".to_string()],
            ),
            ("n2".to_string(), vec!["node.log".to_string()]),
        ];
        let logs = run_logs(&dir, &nodes);
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[1].file, "nodes/n2/node.log");
        let mut results = Results::default();
        let checked = check_into(&mut results, &logs, patterns(&[]));
        assert_eq!(checked.verdict.valid, Validity::Invalid);
        assert_eq!(results.valid(), Validity::Invalid);
        let json = results.to_json();
        assert_eq!(
            json["checkers"]["node-logs"]["anomaly_types"][0],
            "node-log-crash"
        );
        assert_eq!(json["checkers"]["node-logs"]["lines"], 2);
        // What suites' `expect-anomaly` and JUnit read.
        assert_eq!(
            crate::outcome::anomalies(&json),
            "node-logs: node-log-crash"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stored_run_checks_every_log_file_and_its_recorded_patterns() {
        let dir = run_dir("stored");
        fs::write(dir.join("nodes/n2/node.log"), "{\"level\":\"fatal\"}\n").unwrap();
        fs::write(dir.join("nodes/n1/lazyfs.log"), "fine\n").unwrap();
        fs::write(dir.join("nodes/n1/node.pid"), "1\n").unwrap();
        let logs = stored_logs(&dir).unwrap();
        let files: Vec<&str> = logs.iter().map(|l| l.file.as_str()).collect();
        assert_eq!(files, ["nodes/n1/lazyfs.log", "nodes/n2/node.log"]);
        assert!(recorded_patterns(&dir).is_empty());
        fs::write(
            dir.join("results.json"),
            r#"{"checkers": {"node-logs": {"crash_patterns": ["\"level\":\"fatal\""]}}}"#,
        )
        .unwrap();
        let args = CheckLogsArgs {
            run_dir: dir.clone(),
            patterns: vec![],
            json: true,
        };
        assert_eq!(recorded_patterns(&dir), ["\"level\":\"fatal\""]);
        assert_eq!(run(&args).unwrap(), Validity::Invalid);
        assert!(stored_logs(&dir.join("missing")).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
