//! An Elle-style checker for transactional histories (list-append and
//! rw-register): it infers the dependency graph between transactions (ww, wr, rw,
//! plus real-time or process order), finds the anomalies that show which isolation
//! levels were violated, and explains each in words and pictures.
//!
//! The semantics follow Elle (jepsen-io/elle): the same inference rules, anomaly
//! names, consistency-model lattice and result fields (`anomaly_types`,
//! `anomalies`, `not`, `also_not`). See `docs/elle.md`.
//!
//! - [`check`] returns the verdict; [`analyze`] also returns a DOT and an SVG
//!   drawing of every reported cycle.
//! - [`generate`] makes seeded histories of a simulated serializable store, with
//!   anomalies planted on request, for tests and benchmarks.

mod anomaly;
mod bfs;
mod explain;
pub mod generate;
mod graph;
mod hash;
mod lattice;
mod list_append;
mod list_append_anomalies;
mod local;
pub mod model;
mod render;
mod rw_register;
mod search;
mod source;
mod spec;
mod txn;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde_json::{Map, Value};

pub use model::ConsistencyModel;
pub use rw_register::VersionInference;

use crate::history::{History, InputError, TxnHistory};
use crate::results::{Validity, Verdict};
use anomaly::{Anomaly, obj};
use graph::{EdgeList, TxnGraph, rel};
use search::{Case, SearchConfig};
use txn::Txns;

/// Which kind of transactions the history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ElleWorkload {
    /// Appends to lists and reads of whole lists (`append`, `r`).
    #[default]
    ListAppend,
    /// Writes and reads of registers (`w`, `r`).
    RwRegister,
}

impl ElleWorkload {
    /// The command-line spelling: `list-append` or `rw-register`.
    pub fn name(self) -> &'static str {
        match self {
            ElleWorkload::ListAppend => "list-append",
            ElleWorkload::RwRegister => "rw-register",
        }
    }
}

impl fmt::Display for ElleWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ElleWorkload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "list-append" | "append" => Ok(ElleWorkload::ListAppend),
            "rw-register" | "wr-register" => Ok(ElleWorkload::RwRegister),
            _ => Err(format!(
                "unknown elle workload `{s}`; use list-append or rw-register"
            )),
        }
    }
}

/// How to check.
#[derive(Debug, Clone)]
pub struct ElleOptions {
    /// The kind of transactions.
    pub workload: ElleWorkload,
    /// The model that must hold (default strict-serializable). The verdict is
    /// invalid exactly when an anomaly it forbids is found.
    pub consistency_model: ConsistencyModel,
    /// rw-register only: which assumptions may order versions (Elle's
    /// `wfr-keys?`, `sequential-keys?`, `linearizable-keys?`; all off by default).
    pub version_inference: VersionInference,
    /// At most this many anomalies of each type are detailed in the results
    /// (counts are always complete). Default 8.
    pub max_reported: usize,
    /// Search steps allowed per cycle class per strongly connected component
    /// before giving up on that class (`cycle-search-timeout`, verdict at best
    /// unknown). Default 5,000,000.
    pub cycle_search_budget: usize,
}

impl Default for ElleOptions {
    fn default() -> Self {
        ElleOptions {
            workload: ElleWorkload::ListAppend,
            consistency_model: ConsistencyModel::default(),
            version_inference: VersionInference::default(),
            max_reported: 8,
            cycle_search_budget: 5_000_000,
        }
    }
}

impl ElleOptions {
    /// Options for `workload`, everything else default.
    pub fn new(workload: ElleWorkload) -> ElleOptions {
        ElleOptions {
            workload,
            ..ElleOptions::default()
        }
    }

    /// The same options with `model` required.
    pub fn with_model(mut self, model: ConsistencyModel) -> ElleOptions {
        self.consistency_model = model;
        self
    }
}

/// A drawing of one reported cycle.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The anomaly type, e.g. `G-single`.
    pub anomaly: String,
    /// A file stem, unique per check: `G-single-0`, `G-single-1`, …
    pub name: String,
    /// Graphviz DOT source.
    pub dot: String,
    /// A standalone SVG (own layout; Graphviz not needed).
    pub svg: String,
}

/// A verdict with the drawings of its cycles.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The checker's verdict and `results.json` fields.
    pub verdict: Verdict,
    /// One drawing per reported cycle.
    pub artifacts: Vec<Artifact>,
}

/// Checks a transactional history. Malformed transactions are an [`InputError`]
/// naming the file and line.
pub fn check(history: &History, options: &ElleOptions) -> Result<Verdict, InputError> {
    analyze(history, options).map(|a| a.verdict)
}

/// Like [`check`], also drawing every reported cycle.
pub fn analyze(history: &History, options: &ElleOptions) -> Result<Analysis, InputError> {
    analyze_txns(txn::parse(history, options.workload)?, options)
}

/// Checks a compact list-append history (see [`TxnHistory`]), as [`check`] checks the
/// same file read whole: the same verdict, explanations and errors.
pub fn check_compact(history: &TxnHistory, options: &ElleOptions) -> Result<Verdict, InputError> {
    analyze_compact(history, options).map(|a| a.verdict)
}

/// Like [`check_compact`], also drawing every reported cycle. `options.workload` must
/// be list-append.
pub fn analyze_compact(
    history: &TxnHistory,
    options: &ElleOptions,
) -> Result<Analysis, InputError> {
    if options.workload != ElleWorkload::ListAppend {
        return Err(InputError::Unsupported(format!(
            "a compact history holds list-append transactions, not {}",
            options.workload
        )));
    }
    analyze_txns(source::compact_txns(history), options)
}

/// The analysis of parsed transactions.
fn analyze_txns(txns: Txns<'_>, options: &ElleOptions) -> Result<Analysis, InputError> {
    let prohibited = model::anomalies_prohibited_by(&[options.consistency_model]);
    let mut reportable: BTreeSet<&str> = prohibited.clone();
    reportable.extend(model::UNKNOWN_ANOMALIES.iter().copied());
    let cycle_type = |a: &str, suffix: &str| {
        a.strip_suffix(suffix).is_some_and(|base| {
            ["G0", "G1c", "G-single", "G-nonadjacent", "G2-item", "G2"].contains(&base)
        })
    };
    let realtime = reportable.iter().any(|a| cycle_type(a, "-realtime"));
    let process = !realtime && reportable.iter().any(|a| cycle_type(a, "-process"));

    let (found, cycles) = match options.workload {
        ElleWorkload::ListAppend => {
            let mut index = list_append::index(&txns)?;
            let (mut found, edges) = rayon::join(
                || list_append_anomalies::find(&txns, &index),
                || list_append::edges(&txns, &index),
            );
            // Explanations need the orders, not the per-read facts: free them.
            index.reads = Vec::new();
            index.read_of_mop = Vec::new();
            let pair = |a: u32, b: u32, r: u8| list_append::explain(&txns, &index, a, b, r);
            let (cycles, empty) = cycles(&txns, edges, realtime, process, options, &pair);
            if empty {
                found.push(Anomaly::new(
                    "empty-transaction-graph",
                    Map::new(),
                    EMPTY.to_string(),
                ));
            }
            (found, cycles)
        }
        ElleWorkload::RwRegister => {
            let index = rw_register::index(&txns, options.version_inference)?;
            let mut found = rw_register::anomalies(&txns, &index);
            found.extend(index.cyclic.iter().cloned());
            let edges = vec![rw_register::edges(&txns, &index)];
            let pair = |a: u32, b: u32, r: u8| rw_register::explain(&txns, &index, a, b, r);
            let (cycles, empty) = cycles(&txns, edges, realtime, process, options, &pair);
            if empty {
                found.push(Anomaly::new(
                    "empty-transaction-graph",
                    Map::new(),
                    EMPTY.to_string(),
                ));
            }
            (found, cycles)
        }
    };
    let mut all: Vec<Anomaly> = found;
    all.extend(cycles);
    Ok(report(&txns, all, &prohibited, &reportable, options))
}

const EMPTY: &str =
    "no dependencies at all could be inferred between transactions, so nothing could be checked";

/// Builds the graph, finds its cyclic components and searches them. Returns the
/// cycle anomalies and whether the graph was empty.
fn cycles(
    txns: &Txns<'_>,
    mut edges: Vec<EdgeList>,
    realtime: bool,
    process: bool,
    options: &ElleOptions,
    pair: &explain::PairExplainer<'_>,
) -> (Vec<Anomaly>, bool) {
    let real = txns.nodes.len() as u32;
    let mut nodes = real;
    let mut ordered = false;
    if realtime {
        let mut rt = EdgeList::default();
        let (n, o) = graph::add_realtime(txns, &mut rt);
        nodes = n;
        ordered = o;
        edges.push(rt);
    } else if process {
        let mut pr = EdgeList::default();
        graph::add_process(txns, &mut pr);
        edges.push(pr);
    }
    let g = TxnGraph::build_from(real, nodes, edges);
    let empty = !g.has_dependencies && !ordered;
    let mut mask = rel::DATA;
    if realtime {
        mask |= rel::REALTIME;
    }
    if process {
        mask |= rel::PROCESS;
    }
    let components = g.cyclic_components(mask);
    if components.is_empty() {
        return (Vec::new(), empty);
    }
    let before = |a: u32, b: u32| -> bool {
        let (ta, tb) = (txns.txn_of_node(a), txns.txn_of_node(b));
        match (txns.txn(ta), txns.txn(tb)) {
            (Some(x), Some(y)) => {
                x.outcome == txn::Outcome::Ok && x.completion.is_some_and(|c| c < y.invoke)
            }
            _ => false,
        }
    };
    let config = SearchConfig {
        budget: options.cycle_search_budget,
        process,
        realtime,
    };
    let cases: Vec<Case> = components
        .par_iter()
        .flat_map_iter(|c| search::search_component(&g, c, &before, config))
        .collect();
    let anomalies = cases
        .iter()
        .map(|case| match case {
            Case::Cycle(cycle) => explain::explain_cycle(txns, pair, cycle),
            Case::Exists { model, subgraph, scc } => {
                let indices: Vec<Value> = scc
                    .iter()
                    .filter_map(|v| txns.event(txns.txn_of_node(*v)).map(|e| Value::from(e.index)))
                    .collect();
                Anomaly::new(
                    &format!("{model}-cycle-exists"),
                    obj([
                        ("not", Value::from(model::friendly(model))),
                        ("subgraph", Value::from(*subgraph)),
                        ("scc_size", Value::from(scc.len())),
                        ("scc", Value::Array(indices)),
                    ]),
                    format!(
                        "a cycle over {subgraph} dependencies exists among {} transactions, so the history is not {}; no shorter specific cycle explained it.",
                        scc.len(),
                        model::friendly(model)
                    ),
                )
            }
            Case::Timeout { spec, scc_size } => Anomaly::new(
                "cycle-search-timeout",
                obj([
                    ("anomaly_spec_type", Value::from(spec.clone())),
                    ("scc_size", Value::from(*scc_size)),
                ]),
                format!(
                    "the search for a {spec} cycle among {scc_size} strongly connected transactions ran out of budget"
                ),
            ),
        })
        .collect();
    (anomalies, empty)
}

/// Groups anomalies, applies the model, and writes the verdict.
fn report(
    txns: &Txns<'_>,
    mut all: Vec<Anomaly>,
    prohibited: &BTreeSet<&'static str>,
    reportable: &BTreeSet<&str>,
    options: &ElleOptions,
) -> Analysis {
    // Elle: drop cycle-exists anomalies made redundant by specific anomalies.
    let specific: Vec<String> = all
        .iter()
        .filter(|a| !a.name.ends_with("-cycle-exists"))
        .map(|a| a.name.clone())
        .collect();
    let ruled_out = model::impossible_models(specific.iter().map(String::as_str));
    all.retain(|a| match a.name.strip_suffix("-cycle-exists") {
        Some(m) => !ruled_out.contains(m),
        None => true,
    });
    let mut by_type: BTreeMap<String, Vec<Anomaly>> = BTreeMap::new();
    for a in all {
        by_type.entry(a.name.clone()).or_default().push(a);
    }
    let names: Vec<&str> = by_type.keys().map(String::as_str).collect();
    let (not, also_not) = model::boundary(names.iter().copied());
    let bad = names.iter().any(|n| prohibited.contains(n));
    let reported: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| reportable.contains(n))
        .collect();
    let unreported: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !reportable.contains(n))
        .collect();
    let valid = if bad {
        Validity::Invalid
    } else if !reported.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut anomalies = Map::new();
    let mut counts = Map::new();
    let mut artifacts = Vec::new();
    let mut explanation = Vec::new();
    for name in &reported {
        let list = by_type.get(*name).map_or(&[][..], Vec::as_slice);
        counts.insert((*name).to_string(), Value::from(list.len()));
        let kept = &list[..list.len().min(options.max_reported.max(1))];
        anomalies.insert(
            (*name).to_string(),
            Value::Array(kept.iter().map(Anomaly::to_json).collect()),
        );
        explanation.push(format!("{name}: {} found", list.len()));
        if let Some(first) = kept.first() {
            explanation.extend(first.text.lines().map(|l| format!("  {l}")));
        }
        for (i, a) in kept.iter().enumerate() {
            if let Some(d) = &a.drawing {
                artifacts.push(Artifact {
                    anomaly: (*name).to_string(),
                    name: format!("{name}-{i}"),
                    dot: d.dot(),
                    svg: d.svg(),
                });
            }
        }
    }
    if !not.is_empty() {
        explanation.push(format!("not {}", not.join(", ")));
    }
    let mut details = Map::new();
    details.insert("workload".into(), Value::from(options.workload.name()));
    details.insert(
        "consistency_model".into(),
        Value::from(options.consistency_model.name()),
    );
    details.insert("txns".into(), Value::from(txns.txns.len()));
    details.insert(
        "anomaly_types".into(),
        Value::Array(reported.iter().map(|n| Value::from(*n)).collect()),
    );
    details.insert("anomalies".into(), Value::Object(anomalies));
    details.insert("anomaly_counts".into(), Value::Object(counts));
    details.insert("not".into(), Value::from(not));
    details.insert("also_not".into(), Value::from(also_not));
    if !unreported.is_empty() {
        details.insert(
            "unreported_anomaly_types".into(),
            Value::Array(unreported.iter().map(|n| Value::from(*n)).collect()),
        );
    }
    Analysis {
        verdict: Verdict {
            valid,
            details,
            explanation,
        },
        artifacts,
    }
}
