//! Cycle search inside one strongly connected component: Elle's cycle classes
//! (G0, G1c, G-single, G-nonadjacent, G2-item, with -process and -realtime
//! variants) each found as the shortest cycle through an anchor by a breadth-first
//! search over (transaction, automaton state), plus Elle's "cycle exists" checks.

use std::collections::BTreeSet;

use super::bfs::{Bfs, Found, FoundCycle, find};
use super::graph::{TxnGraph, rel};
use super::local::Local;
use super::model;
use super::spec::Spec;

/// What the search of one component found.
#[derive(Debug, Clone)]
pub(crate) enum Case {
    /// A specific cycle.
    Cycle(FoundCycle),
    /// A cycle in the subgraph a model forbids cycles in, with no specific cycle
    /// explaining it (Elle's `<model>-cycle-exists`).
    Exists {
        /// Canonical model name.
        model: &'static str,
        /// The relationships of the subgraph.
        subgraph: &'static str,
        /// The component's transactions.
        scc: Vec<u32>,
    },
    /// The search for a class ran out of budget in this component.
    Timeout {
        /// The class being searched for.
        spec: String,
        /// Transactions in the component.
        scc_size: usize,
    },
}

/// Cycle-exists checks: (canonical model, relationships, rw-extension, description).
const EXISTS: &[(&str, u8, bool, &str)] = &[
    ("PL-1", rel::WW, false, "ww"),
    ("PL-2", rel::WW | rel::WR, false, "ww wr"),
    (
        "PL-SI",
        rel::WW | rel::WR,
        true,
        "ww wr, extended by single rw",
    ),
    ("PL-3", rel::DATA, false, "ww wr rw"),
    (
        "strong-session-PL-1",
        rel::WW | rel::PROCESS,
        false,
        "ww process",
    ),
    (
        "strong-session-PL-2",
        rel::WW | rel::WR | rel::PROCESS,
        false,
        "ww wr process",
    ),
    (
        "strong-session-snapshot-isolation",
        rel::WW | rel::WR | rel::PROCESS,
        true,
        "ww wr process, extended by single rw",
    ),
    (
        "strong-session-serializable",
        rel::DATA | rel::PROCESS,
        false,
        "ww wr rw process",
    ),
    ("strong-PL-1", rel::WW | rel::REALTIME, false, "ww realtime"),
    (
        "strong-PL-2",
        rel::WW | rel::WR | rel::REALTIME,
        false,
        "ww wr realtime",
    ),
    (
        "strong-snapshot-isolation",
        rel::WW | rel::WR | rel::REALTIME,
        true,
        "ww wr realtime, extended by single rw",
    ),
    (
        "PL-SS",
        rel::DATA | rel::REALTIME,
        false,
        "ww wr rw realtime",
    ),
];

/// Limits and the relationships present in the graph.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchConfig {
    /// Search steps allowed per cycle class per component.
    pub budget: usize,
    /// The graph has process edges.
    pub process: bool,
    /// The graph has real-time edges.
    pub realtime: bool,
}

/// Searches one strongly connected component. `realtime(a, b)` says whether
/// transaction node `a` completed before `b` was invoked.
pub(crate) fn search_component(
    g: &TxnGraph,
    comp: &[u32],
    realtime: &(dyn Fn(u32, u32) -> bool + Sync),
    cfg: SearchConfig,
) -> Vec<Case> {
    let local = Local::new(g, comp);
    let real_members: Vec<u32> = comp.iter().copied().filter(|v| *v < g.real).collect();
    // Cycle existence per model, as Elle.
    let mut exists: Vec<Case> = Vec::new();
    let mut redundant: BTreeSet<&'static str> = BTreeSet::new();
    for (model, mask, extension, subgraph) in EXISTS {
        if redundant.contains(model)
            || (mask & rel::PROCESS != 0 && !cfg.process)
            || (mask & rel::REALTIME != 0 && !cfg.realtime)
        {
            continue;
        }
        let mask = if mask & rel::REALTIME != 0 {
            mask | rel::TIME
        } else {
            *mask
        };
        let present = if *extension {
            local.extension_cycle(mask)
        } else {
            local.sub_components(mask).iter().any(|c| *c != u32::MAX)
        };
        if present {
            exists.push(Case::Exists {
                model,
                subgraph,
                scc: real_members.clone(),
            });
            redundant.extend(model::impossible_model_names([*model]));
        }
    }
    // Which cycle classes can't be here: those forbidden by models whose subgraph
    // has no cycle.
    let checked: Vec<&'static str> = EXISTS
        .iter()
        .filter(|(_, mask, _, _)| {
            (mask & rel::PROCESS == 0 || cfg.process) && (mask & rel::REALTIME == 0 || cfg.realtime)
        })
        .map(|(m, ..)| *m)
        .collect();
    let ruled_out = model::impossible_model_names(exists.iter().filter_map(|c| match c {
        Case::Exists { model, .. } => Some(*model),
        _ => None,
    }));
    let possible: Vec<&'static str> = checked
        .into_iter()
        .filter(|m| !ruled_out.contains(m))
        .collect();
    let mut skip: BTreeSet<String> = model::prohibited_by_names(&possible)
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut cases: Vec<Case> = Vec::new();
    let mut bfs = Bfs::new(local.global.len());
    for spec in Spec::all(cfg.process, cfg.realtime) {
        if skip.contains(&spec.name) {
            continue;
        }
        match find(&local, g, &spec, realtime, &mut bfs, cfg.budget) {
            Found::Cycle(cycle) => {
                skip.extend(
                    model::all_implied_anomalies([cycle.name.as_str()])
                        .into_iter()
                        .map(str::to_string),
                );
                cases.push(Case::Cycle(cycle));
            }
            Found::Nothing => {}
            Found::Timeout => cases.push(Case::Timeout {
                spec: spec.name.clone(),
                scc_size: real_members.len(),
            }),
        }
    }
    let found_types: Vec<String> = cases
        .iter()
        .filter_map(|c| match c {
            Case::Cycle(f) => Some(f.name.clone()),
            _ => None,
        })
        .collect();
    let impossible = model::impossible_model_names(found_types.iter().map(String::as_str));
    exists.retain(|c| match c {
        Case::Exists { model, .. } => !impossible.contains(model),
        _ => true,
    });
    exists.extend(cases);
    exists
}
