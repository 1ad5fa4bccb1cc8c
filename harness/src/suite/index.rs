//! The store's `index.html`: every run in the store, newest first.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

/// One row of the store's index.
#[derive(Debug, Serialize)]
struct IndexRow {
    test: String,
    time: String,
    verdict: String,
    verdict_class: String,
    expect: String,
    /// `met`, `missed`, or empty when the run was not part of a suite.
    outcome: String,
    duration: String,
    report: String,
    results: String,
    seed: String,
    modified: u64,
}

/// The index template, compiled into the binary.
const INDEX_TEMPLATE: &str = include_str!("../../templates/index.html");

/// Writes `STORE/index.html`: every run in the store (every `STORE/*/*/results.json`),
/// newest first, with links to its `report.html` and `results.json`. Returns its path.
pub fn write_index(store: &Path) -> Result<PathBuf> {
    fs::create_dir_all(store).with_context(|| format!("cannot create {}", store.display()))?;
    let html = render_index(store)?;
    let path = store.join("index.html");
    // Written beside it, then renamed over it: two suites finishing at once on one
    // store never leave a half-written index.
    let tmp = store.join(format!(".index.html.{}", std::process::id()));
    fs::write(&tmp, html)
        .and_then(|()| fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A run in a store: `STORE/TEST/RUN` with its parsed `results.json`.
pub(super) struct StoredRun {
    /// The test's name (its directory).
    pub(super) test: String,
    /// The run's name (its directory, a timestamp).
    pub(super) run: String,
    /// The run's directory.
    pub(super) dir: PathBuf,
    /// Its `results.json`.
    pub(super) results: Value,
}

/// Every run of `store` with a readable `results.json` (the `latest` links skipped).
pub(super) fn stored_runs(store: &Path) -> Result<Vec<StoredRun>> {
    let mut found = Vec::new();
    let tests = fs::read_dir(store)
        .with_context(|| format!("cannot read the store {}", store.display()))?;
    for test in tests.flatten() {
        let test_path = test.path();
        // `STORE/latest` is a link to a run, not a test.
        if !test_path.is_dir() || test_path.is_symlink() {
            continue;
        }
        let Ok(runs) = fs::read_dir(&test_path) else {
            continue;
        };
        for run in runs.flatten() {
            if run.file_name() == "latest" || run.path().is_symlink() {
                continue;
            }
            let Some(results) = read_json(&run.path().join("results.json")) else {
                continue;
            };
            found.push(StoredRun {
                test: test.file_name().to_string_lossy().into_owned(),
                run: run.file_name().to_string_lossy().into_owned(),
                dir: run.path(),
                results,
            });
        }
    }
    Ok(found)
}

/// The HTML of the store's index (see [`write_index`]).
pub fn render_index(store: &Path) -> Result<String> {
    let mut rows: Vec<IndexRow> = stored_runs(store)?
        .into_iter()
        .map(|r| {
            index_row(
                &r.test,
                &r.run,
                &r.results,
                read_json(&r.dir.join("suite.json")),
                &r.dir.join("results.json"),
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.time.cmp(&a.time))
            .then_with(|| a.test.cmp(&b.test))
    });
    let mut tera = tera::Tera::new();
    tera.add_raw_template("index.html", INDEX_TEMPLATE)
        .map_err(|e| anyhow::anyhow!("the index template: {e}"))?;
    let mut context = tera::Context::new();
    context.insert("store", &store.display().to_string());
    context.insert(
        "generated",
        &humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    );
    context.insert("count", &rows.len());
    context.insert("runs", &rows);
    tera.render("index.html", &context)
        .map_err(|e| anyhow::anyhow!("cannot render the index: {e}"))
}

fn index_row(
    test: &str,
    run: &str,
    results: &Value,
    suite: Option<Value>,
    results_path: &Path,
) -> IndexRow {
    let (verdict, class) = match &results["valid"] {
        Value::Bool(true) => ("valid".to_string(), "valid"),
        Value::Bool(false) => ("invalid".to_string(), "invalid"),
        _ if results.get("harness_error").is_some() => ("crashed".to_string(), "crashed"),
        _ => ("unknown".to_string(), "unknown"),
    };
    let duration = suite
        .as_ref()
        .and_then(|s| s["duration_seconds"].as_f64())
        .or_else(|| results["run"]["elapsed_seconds"].as_f64())
        .map(|s| format!("{s:.1} s"))
        .unwrap_or_default();
    let modified = fs::metadata(results_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let href = format!("{}/{}", url_segment(test), url_segment(run));
    IndexRow {
        test: test.to_string(),
        time: run.to_string(),
        verdict,
        verdict_class: class.to_string(),
        expect: suite
            .as_ref()
            .and_then(|s| s["expect"].as_str().map(str::to_string))
            .unwrap_or_default(),
        outcome: match suite.as_ref().and_then(|s| s["passed"].as_bool()) {
            Some(true) => "met".into(),
            Some(false) => "missed".into(),
            None => String::new(),
        },
        duration,
        report: format!("{href}/report.html"),
        results: format!("{href}/results.json"),
        seed: results["seed"]
            .as_u64()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        modified,
    }
}

/// Percent-encodes one path segment for a relative link.
fn url_segment(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A JSON file of the store, when it can be read and parsed.
pub(super) fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_index_lists_runs_newest_first_and_escapes() {
        let store = tempfile::tempdir().unwrap();
        for (test, run, valid) in [
            ("kv-register", "2026-01-01T000000Z", "true"),
            ("x<script>", "r1", "false"),
        ] {
            let dir = store.path().join(test).join(run);
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                dir.join("results.json"),
                format!("{{\"valid\": {valid}, \"seed\": 7}}"),
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(1100));
        }
        let html = render_index(store.path()).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("x&lt;script&gt;"), "{html}");
        assert!(
            html.contains("kv-register/2026-01-01T000000Z/report.html"),
            "{html}"
        );
        let newer = html.find("x&lt;script").unwrap();
        let older = html.find("kv-register").unwrap();
        assert!(newer < older, "newest first");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "self-contained"
        );
    }
}
