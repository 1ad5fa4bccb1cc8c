//! `report.html`: one self-contained page per run (or per checked history), readable
//! offline: the verdict, the parameters, each checker's result, latency and throughput
//! plots with the faults shaded, the linearizability counterexample, a per-process
//! timeline, Elle's cycle drawings, a sharded run's shards and the tail of each node's
//! log.
//!
//! Rendered with Tera from templates compiled into the binary; autoescaping is on, so
//! whatever comes from the history, the configuration or the node logs shows as text.
//! The plots are inline SVG drawn by the templates from coordinates computed here
//! ([`plots`], [`timeline`]); there is no script and no external URL.

mod data;
mod plots;
mod shards;
mod timeline;
mod uncertainty;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use faultline_checker::History;
use serde::Serialize;
use serde_json::Value;

use crate::output::say;
use data::{Drawing, LogTail};
use plots::{FaultInterval, Plot, Quantiles, truncate};
use shards::ShardsView;
use timeline::Counterexample;
use uncertainty::UncertaintyView;

/// The report's file name in its directory.
pub const REPORT_FILE: &str = "report.html";

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.html");
const PLOT_TEMPLATE: &str = include_str!("../../templates/plot.html");

/// The most explanation lines shown per checker.
const MAX_LINES: usize = 200;
/// The most anomalies of one type explained.
const MAX_ANOMALIES_EXPLAINED: usize = 5;
/// The longest value shown in a table cell.
const MAX_CELL: usize = 400;

/// Arguments of `faultline report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's directory (with `results.json` and `history.jsonl`), e.g.
    /// `store/kv-register/latest`.
    pub run_dir: PathBuf,
}

/// Runs `faultline report`: re-renders `RUN_DIR/report.html`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let path = render_run(&args.run_dir)?;
    say!("report: {}", path.display());
    Ok(())
}

/// Renders `RUN_DIR/report.html` from the run's files and returns its path. A missing
/// `results.json` or `history.jsonl` is a usage error naming the file; a history that
/// cannot be parsed still gives a report, without the plots.
pub fn render_run(run_dir: &Path) -> Result<PathBuf> {
    let results_path = data::required(run_dir, "results.json")?;
    let history_path = data::required(run_dir, "history.jsonl")?;
    let results = data::read_json(&results_path)?;
    let history = data::read_history(&history_path);
    render_dir(run_dir, history.as_ref().map_err(String::clone), &results)
}

/// Renders `DIR/report.html` for a history and its `results.json` document, with
/// `DIR/config.json`, `DIR/elle/*.svg` and `DIR/nodes/*/*.log` when present. `history`
/// is the history, or why it could not be read. Returns the report's path.
pub fn render_dir(
    dir: &Path,
    history: Result<&History, String>,
    results: &Value,
) -> Result<PathBuf> {
    let page = render_page(dir, history, results)?;
    let path = dir.join(REPORT_FILE);
    fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A key and a value, for the tables.
#[derive(Debug, Serialize)]
struct Row {
    key: String,
    value: String,
}

/// One checker's section.
#[derive(Debug, Serialize)]
struct CheckerView {
    name: String,
    verdict: &'static str,
    rows: Vec<Row>,
    lines: Vec<String>,
}

/// A fault for the table.
#[derive(Debug, Serialize)]
struct FaultRow {
    start: String,
    end: String,
    label: String,
}

/// Everything the template shows.
#[derive(Debug, Serialize)]
struct Page {
    title: String,
    verdict: &'static str,
    name: String,
    seed: String,
    generated: String,
    history: String,
    history_note: String,
    harness_error: String,
    params: Vec<Row>,
    run: Vec<Row>,
    uncertainty: Option<UncertaintyView>,
    shards: Option<ShardsView>,
    checkers: Vec<CheckerView>,
    faults: Vec<FaultRow>,
    plots: Vec<Plot>,
    quantiles: Vec<Quantiles>,
    counterexamples: Vec<Counterexample>,
    timeline: Vec<Plot>,
    drawings: Vec<Drawing>,
    logs: Vec<LogTail>,
}

fn render_page(dir: &Path, history: Result<&History, String>, results: &Value) -> Result<String> {
    let config = data::read_config(dir);
    let verdict = match results.get("valid") {
        Some(Value::Bool(true)) => "valid",
        Some(Value::Bool(false)) => "invalid",
        _ => "unknown",
    };
    let name = text_field(results, "name")
        .or_else(|| config.as_ref().and_then(|c| text_field(c, "name")))
        .unwrap_or_else(|| "history".to_string());
    let seed = results
        .get("seed")
        .or_else(|| config.as_ref().and_then(|c| c.get("seed")))
        .map(show)
        .unwrap_or_default();
    let params_source = config
        .as_ref()
        .or_else(|| results.get("checker"))
        .and_then(Value::as_object);
    let params = params_source
        .map(|map| map.iter().map(|(k, v)| row(k, v)).collect())
        .unwrap_or_default();
    let run = results
        .get("run")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter(|(k, _)| !uncertainty::NESTED_KEYS.contains(&k.as_str()))
                .map(|(k, v)| row(k, v))
                .collect()
        })
        .unwrap_or_default();
    let uncertainty = results.get("run").and_then(uncertainty::view);
    let checker_objects = results.get("checkers").and_then(Value::as_object);
    let checkers = checker_objects
        .map(|map| map.iter().map(|(k, v)| checker_view(k, v)).collect())
        .unwrap_or_default();

    let mut page = Page {
        title: format!("{name}: {verdict}"),
        verdict,
        name,
        seed,
        generated: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        history: text_field(results, "history").unwrap_or_default(),
        history_note: String::new(),
        harness_error: text_field(results, "harness_error").unwrap_or_default(),
        params,
        run,
        uncertainty,
        shards: results.get("shards").and_then(shards::view),
        checkers,
        faults: Vec::new(),
        plots: Vec::new(),
        quantiles: Vec::new(),
        counterexamples: Vec::new(),
        timeline: Vec::new(),
        drawings: data::read_drawings(dir),
        logs: data::read_log_tails(dir),
    };
    match history {
        Ok(history) => {
            let operations = history.operations();
            let faults = plots::fault_intervals(history);
            let span = plots::history_span(history);
            page.faults = faults.iter().map(fault_row).collect();
            page.plots = vec![
                plots::latency(&operations, &faults, span),
                plots::throughput(&operations, &faults, span),
            ];
            page.quantiles = plots::quantiles(&operations);
            if let Some(linearizable) = checker_objects.and_then(|c| c.get("linearizable")) {
                page.counterexamples =
                    timeline::counterexamples(linearizable, &operations, &faults);
            }
            if !operations.is_empty() {
                page.timeline = vec![timeline::timeline(&operations, &faults)];
            }
        }
        Err(why) => page.history_note = format!("The history could not be read: {why}"),
    }
    render(&page)
}

/// Renders the page with the compiled-in templates, autoescaping on.
fn render(page: &Page) -> Result<String> {
    let mut tera = tera::Tera::new();
    tera.autoescape_on([".html"]);
    tera.add_raw_templates([
        ("plot.html", PLOT_TEMPLATE),
        ("report.html", REPORT_TEMPLATE),
    ])
    .map_err(|e| anyhow!("the report templates do not compile (a bug in faultline): {e:#}"))?;
    let context = tera::Context::from_serialize(page)
        .map_err(|e| anyhow!("cannot prepare the report's data: {e:#}"))?;
    tera.render("report.html", &context)
        .map_err(|e| anyhow!("cannot render the report: {e:#}"))
}

fn text_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).filter(|v| !v.is_null()).map(show)
}

/// A value as text: strings as they are, anything else as compact JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(key: &str, value: &Value) -> Row {
    Row {
        key: key.to_string(),
        value: truncate(&show(value), MAX_CELL),
    }
}

fn fault_row(fault: &FaultInterval) -> FaultRow {
    FaultRow {
        start: format!("{:.3}", fault.start),
        end: if fault.open {
            format!("{:.3} (end of history)", fault.end)
        } else {
            format!("{:.3}", fault.end)
        },
        label: fault.label.clone(),
    }
}

/// A checker's verdict, its details (minus what the explanation shows) and its
/// explanation lines: the `explanation` field, each linearizability failure's, and
/// each Elle anomaly's.
fn checker_view(name: &str, checker: &Value) -> CheckerView {
    let verdict = match checker.get("valid") {
        Some(Value::Bool(true)) => "valid",
        Some(Value::Bool(false)) => "invalid",
        _ => "unknown",
    };
    let mut rows = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let Some(map) = checker.as_object() else {
        return CheckerView {
            name: name.to_string(),
            verdict,
            rows,
            lines,
        };
    };
    for (key, value) in map {
        match key.as_str() {
            "valid" => {}
            "explanation" => match value {
                Value::Array(items) => lines.extend(items.iter().map(show)),
                other => lines.extend(show(other).lines().map(str::to_string)),
            },
            "failures" => {
                for failure in value.as_array().into_iter().flatten() {
                    if let Some(text) = failure.get("explanation").and_then(Value::as_str) {
                        lines.extend(text.lines().map(str::to_string));
                    }
                }
            }
            "anomalies" => {
                for (kind, list) in value.as_object().into_iter().flatten() {
                    for anomaly in list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .take(MAX_ANOMALIES_EXPLAINED)
                    {
                        if let Some(text) = anomaly.get("explanation").and_then(Value::as_str) {
                            lines.push(format!("{kind}: {}", text.lines().next().unwrap_or("")));
                            lines.extend(text.lines().skip(1).map(|l| format!("  {l}")));
                        } else if let Some(message) = anomaly.get("message").and_then(Value::as_str)
                        {
                            // The node-log check's: a sentence, then its evidence lines.
                            lines.push(format!("{kind}: {message}"));
                            lines.extend(evidence_lines(anomaly));
                        }
                    }
                }
            }
            _ => rows.push(row(key, value)),
        }
    }
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("… and {more} more lines (see results.json)"));
    }
    CheckerView {
        name: name.to_string(),
        verdict,
        rows,
        lines,
    }
}

/// A node-log anomaly's evidence, one `  FILE:LINE: TEXT` line each.
fn evidence_lines(anomaly: &Value) -> Vec<String> {
    let evidence = anomaly.get("evidence").and_then(Value::as_array);
    evidence
        .into_iter()
        .flatten()
        .map(|line| {
            let text = line.get("text").and_then(Value::as_str).unwrap_or("");
            format!(
                "  {}:{}: {}",
                line.get("file").and_then(Value::as_str).unwrap_or("?"),
                line.get("line").map(show).unwrap_or_default(),
                truncate(text, MAX_CELL)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Op, OpType, Process};
    use serde_json::json;

    #[test]
    fn values_from_the_history_are_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let ops = vec![
            Op::new(
                0,
                10,
                Process::Client(0),
                OpType::Invoke,
                "write",
                json!("<b>x</b>"),
            ),
            Op::new(
                1,
                2_000_000,
                Process::Client(0),
                OpType::Ok,
                "write",
                json!("<b>x</b>"),
            ),
        ];
        let history = History::from_ops("t", ops).unwrap();
        let results = json!({"valid": true, "name": "<i>n</i>", "checkers": {
            "linearizable": {"valid": true, "model": "<script>alert(1)</script>"}}});
        let page = render_page(dir.path(), Ok(&history), &results).unwrap();
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
                || page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script"));
        assert!(!page.contains("<b>x"));
        assert!(page.contains("class=\"verdict valid\""));
    }

    #[test]
    fn node_log_anomalies_show_their_evidence_lines() {
        let checker = json!({"valid": false, "lines": 3, "anomalies": {"election-safety": [
            {"message": "n1 and n2 were both leader in term 3", "evidence": [
                {"node": "n1", "file": "nodes/n1/node.log", "line": 7, "text": "INFO protocol: role node=1 term=3 role=leader"},
                {"node": "n2", "file": "nodes/n2/node.log", "line": 9, "text": "<x>"}]}]}});
        let view = checker_view("node-logs", &checker);
        assert_eq!(view.verdict, "invalid");
        assert_eq!(
            view.lines,
            [
                "election-safety: n1 and n2 were both leader in term 3",
                "  nodes/n1/node.log:7: INFO protocol: role node=1 term=3 role=leader",
                "  nodes/n2/node.log:9: <x>",
            ]
        );
        assert_eq!(view.rows.len(), 1);
    }

    #[test]
    fn sharded_node_log_anomalies_name_their_shard() {
        use faultline_checker::nodelog::{NodeLog, NodeLogCheck};
        let line = |node: u32| {
            format!("x INFO shard{{shard=2}}: protocol: role node={node} term=5 role=leader")
        };
        let logs = [
            NodeLog::lines("n1", "nodes/n1/node.log", [line(1)]),
            NodeLog::lines("n3", "nodes/n3/node.log", [line(3)]),
        ];
        let checker = NodeLogCheck::default().check(&logs).verdict.to_json();
        let view = checker_view("node-logs", &checker);
        assert_eq!(view.verdict, "invalid");
        assert_eq!(
            view.lines,
            [
                "election-safety: shard 2: n1 and n3 were both leader in term 5",
                "  nodes/n1/node.log:1: x INFO shard{shard=2}: protocol: role node=1 term=5 role=leader",
                "  nodes/n3/node.log:1: x INFO shard{shard=2}: protocol: role node=3 term=5 role=leader",
            ]
        );
    }

    #[test]
    fn a_sharded_run_gets_a_shards_table() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::from_ops("t", vec![]).unwrap();
        let results = json!({"valid": true, "shards": {"count": 2, "commit_protocol": "2pc",
            "per_shard": [
                {"shard": 0, "preferred": "n1", "leader": "n2", "operations": 3, "share": 0.75},
                {"shard": 1, "preferred": "n2", "leader": null, "operations": 1, "share": 0.25}],
            "single_shard_txns": 3, "cross_shard_txns": 1, "unplaced_ops": 0}});
        let page = render_page(dir.path(), Ok(&history), &results).unwrap();
        assert!(page.contains("<h2>Shards</h2>"), "{page}");
        assert!(
            page.contains("<tr><td class=\"num\">0</td><td>n1</td><td>n2</td><td class=\"num\">3</td><td class=\"num\">75.0 %</td></tr>"),
            "{page}"
        );
        assert!(page.contains("across shards: <strong>1</strong>"), "{page}");
        assert!(!page.contains("could not be told"), "{page}");
        let unsharded = render_page(dir.path(), Ok(&history), &json!({"valid": true})).unwrap();
        assert!(!unsharded.contains("<h2>Shards</h2>"));
    }

    #[test]
    fn the_uncertainty_figures_get_their_own_section() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::from_ops("t", vec![]).unwrap();
        let results = json!({"valid": true, "run": {"ok": 1, "info_rate": 0.5,
            "info_by_f": {"write": {"completed": 2, "info": 1, "rate": 0.5}},
            "in_flight_at_faults": [{"index": 0, "time": 0.25, "f": "kill", "in_flight": 4}],
            "in_flight_at_faults_total": 4}});
        let page = render_page(dir.path(), Ok(&history), &results).unwrap();
        assert!(page.contains("<h2>Uncertainty</h2>"), "{page}");
        assert!(page.contains("<strong>50.0 %</strong>"), "{page}");
        assert!(page.contains("id=\"in-flight-at-faults\""), "{page}");
        assert!(!page.contains("<th>info_by_f</th>"), "{page}");
        let none = render_page(dir.path(), Ok(&history), &json!({"run": {"ok": 1}})).unwrap();
        assert!(!none.contains("<h2>Uncertainty</h2>"));
    }
}
