//! Elle's consistency-model lattice: which models imply which, which anomalies each
//! model forbids, and which anomalies imply others. Transcribed from Elle's
//! `elle.consistency-model`; names are Elle's, so results read the same.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use super::lattice::{CANONICAL, IMPLIED_ANOMALIES, MODELS, PROSCRIBED, SEVERITY};

/// Anomalies that make a verdict `unknown` rather than valid when nothing worse is found.
pub const UNKNOWN_ANOMALIES: &[&str] = &["empty-transaction-graph", "cycle-search-timeout"];

/// A consistency model, by its canonical name (e.g. `PL-3` for `serializable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsistencyModel(&'static str);

impl ConsistencyModel {
    /// Strict serializability (`PL-SS`), the default.
    pub const STRICT_SERIALIZABLE: ConsistencyModel = ConsistencyModel("PL-SS");

    /// Looks a model up by a friendly (`snapshot-isolation`) or canonical (`PL-SI`) name.
    pub fn named(name: &str) -> Option<ConsistencyModel> {
        all_models()
            .iter()
            .copied()
            .find(|m| *m == name)
            .map(|m| ConsistencyModel(canonical(m)))
    }

    /// The canonical name.
    pub fn canonical_name(self) -> &'static str {
        self.0
    }

    /// The friendly name (`serializable` rather than `PL-3`).
    pub fn name(self) -> &'static str {
        friendly(self.0)
    }

    /// Every name `named` accepts, sorted.
    pub fn known_names() -> Vec<&'static str> {
        all_models().iter().copied().collect()
    }
}

impl Default for ConsistencyModel {
    fn default() -> Self {
        ConsistencyModel::STRICT_SERIALIZABLE
    }
}

impl fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConsistencyModel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConsistencyModel::named(s).ok_or_else(|| {
            format!(
                "unknown consistency model `{s}`; known models: {}",
                ConsistencyModel::known_names().join(", ")
            )
        })
    }
}

/// The canonical name of a model (itself when it has no other).
pub fn canonical(model: &str) -> &str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == model)
        .map_or(model, |(_, c)| c)
}

/// The friendly name of a canonical model name.
pub fn friendly(model: &str) -> &str {
    match model {
        "PL-3" => "serializable",
        "PL-SS" => "strict-serializable",
        _ => CANONICAL
            .iter()
            .find(|(_, c)| *c == model)
            .map_or(model, |(f, _)| f),
    }
}

fn all_models() -> &'static BTreeSet<&'static str> {
    static ALL: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    ALL.get_or_init(build_all_models)
}

fn build_all_models() -> BTreeSet<&'static str> {
    let mut all = BTreeSet::new();
    for (a, bs) in MODELS {
        all.insert(canonical(a));
        all.insert(*a);
        for b in *bs {
            all.insert(canonical(b));
            all.insert(*b);
        }
    }
    for (f, c) in CANONICAL {
        all.insert(*f);
        all.insert(*c);
    }
    all
}

/// A small directed graph over names.
struct NameGraph {
    out: HashMap<&'static str, Vec<&'static str>>,
    into: HashMap<&'static str, Vec<&'static str>>,
}

impl NameGraph {
    fn new(edges: &[(&'static str, &'static str)]) -> NameGraph {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut into: HashMap<&str, Vec<&str>> = HashMap::new();
        for (a, b) in edges {
            out.entry(a).or_default().push(b);
            into.entry(b).or_default().push(a);
        }
        NameGraph { out, into }
    }

    /// Everything reachable from `start` (including it), following out- or in-edges.
    fn reach(
        &self,
        start: impl IntoIterator<Item = &'static str>,
        forward: bool,
    ) -> BTreeSet<&'static str> {
        let adjacency = if forward { &self.out } else { &self.into };
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<&'static str> = start.into_iter().collect();
        while let Some(v) = queue.pop_front() {
            if seen.insert(v) {
                for w in adjacency.get(v).into_iter().flatten() {
                    queue.push_back(w);
                }
            }
        }
        seen
    }
}

fn edges(
    table: &[(&'static str, &'static [&'static str])],
    canon: bool,
) -> Vec<(&'static str, &'static str)> {
    let map = |s: &'static str| if canon { canonical_static(s) } else { s };
    table
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| (map(a), map(b))))
        .collect()
}

fn canonical_static(model: &'static str) -> &'static str {
    CANONICAL
        .iter()
        .find(|(f, _)| *f == model)
        .map_or(model, |(_, c)| c)
}

fn models_graph() -> &'static NameGraph {
    static GRAPH: OnceLock<NameGraph> = OnceLock::new();
    GRAPH.get_or_init(|| NameGraph::new(&edges(MODELS, true)))
}

fn anomaly_graph() -> &'static NameGraph {
    static GRAPH: OnceLock<NameGraph> = OnceLock::new();
    GRAPH.get_or_init(|| NameGraph::new(&edges(IMPLIED_ANOMALIES, false)))
}

fn proscribed_graph() -> &'static NameGraph {
    static GRAPH: OnceLock<NameGraph> = OnceLock::new();
    GRAPH.get_or_init(|| {
        let pairs: Vec<_> = PROSCRIBED
            .iter()
            .flat_map(|(m, anoms)| anoms.iter().map(move |a| (canonical_static(m), *a)))
            .collect();
        NameGraph::new(&pairs)
    })
}

/// Every anomaly implied by any of `anomalies` (including themselves).
pub fn all_implied_anomalies<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'static str> {
    let start: Vec<&'static str> = anomalies.into_iter().filter_map(intern_anomaly).collect();
    anomaly_graph().reach(start, true)
}

/// The anomalies which, if present, mean the given models cannot all hold.
pub fn anomalies_prohibited_by(models: &[ConsistencyModel]) -> BTreeSet<&'static str> {
    let implied = models_graph().reach(models.iter().map(|m| m.0), true);
    let proscribed = proscribed_graph();
    let direct: Vec<&'static str> = implied
        .iter()
        .flat_map(|m| proscribed.out.get(m).into_iter().flatten().copied())
        .collect();
    anomaly_graph().reach(direct, false)
}

/// The models (canonical names) ruled out by the presence of `anomalies`.
pub fn impossible_models<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'static str> {
    let implied = all_implied_anomalies(anomalies);
    let proscribed = proscribed_graph();
    let direct: Vec<&'static str> = implied
        .iter()
        .flat_map(|a| proscribed.into.get(a).into_iter().flatten().copied())
        .collect();
    models_graph().reach(direct, false)
}

/// The canonical names of `models` and every model stronger than them: all ruled
/// out when `models` are.
pub fn impossible_model_names<'a>(
    models: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'static str> {
    let start: Vec<&'static str> = models.into_iter().filter_map(intern_model).collect();
    models_graph().reach(start, false)
}

/// The anomalies forbidden by any of `models` (canonical or friendly names).
pub fn prohibited_by_names(models: &[&str]) -> BTreeSet<&'static str> {
    let start: Vec<&'static str> = models.iter().copied().filter_map(intern_model).collect();
    let implied = models_graph().reach(start, true);
    let proscribed = proscribed_graph();
    let direct: Vec<&'static str> = implied
        .iter()
        .flat_map(|m| proscribed.out.get(m).into_iter().flatten().copied())
        .collect();
    anomaly_graph().reach(direct, false)
}

fn intern_model(name: &str) -> Option<&'static str> {
    all_models()
        .iter()
        .copied()
        .find(|m| *m == name)
        .map(canonical_static)
}

/// The weakest models in `models`: those implied by all the others (Elle's
/// `weakest-models`).
fn weakest(models: &BTreeSet<&'static str>) -> BTreeSet<&'static str> {
    let graph = models_graph();
    let mut remaining = models.clone();
    for m in models {
        let others: BTreeSet<_> = remaining.iter().copied().filter(|o| o != m).collect();
        if graph.reach([*m], true).iter().any(|x| others.contains(x)) {
            remaining = others;
        }
    }
    remaining
}

/// Elle's boundary: `not` are the weakest models the anomalies rule out, `also_not`
/// the stronger ones; both in friendly names, sorted.
pub fn boundary<'a>(anomalies: impl IntoIterator<Item = &'a str>) -> (Vec<String>, Vec<String>) {
    let impossible = impossible_models(anomalies);
    let not = weakest(&impossible);
    let also: BTreeSet<String> = impossible
        .iter()
        .filter(|m| !not.contains(*m))
        .map(|m| friendly(m).to_string())
        .collect();
    let not: BTreeSet<String> = not.iter().map(|m| friendly(m).to_string()).collect();
    (not.into_iter().collect(), also.into_iter().collect())
}

fn intern_anomaly(name: &str) -> Option<&'static str> {
    let tables = [IMPLIED_ANOMALIES, SEVERITY, PROSCRIBED];
    for table in tables {
        for (a, bs) in table {
            if *a == name {
                return Some(a);
            }
            if let Some(b) = bs.iter().find(|b| **b == name) {
                return Some(b);
            }
        }
    }
    None
}

/// Anomaly search order: by depth in the implication and severity graphs (worst,
/// least implied, first), then by name.
pub fn anomaly_depths() -> &'static HashMap<&'static str, usize> {
    static DEPTHS: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    DEPTHS.get_or_init(compute_depths)
}

fn compute_depths() -> HashMap<&'static str, usize> {
    let mut pairs = edges(IMPLIED_ANOMALIES, false);
    pairs.extend(edges(SEVERITY, false));
    let graph = NameGraph::new(&pairs);
    let mut depth: HashMap<&'static str, usize> = HashMap::new();
    let vertices: HashSet<&'static str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    fn depth_of(
        v: &'static str,
        graph: &NameGraph,
        memo: &mut HashMap<&'static str, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = memo.get(v) {
            return *d;
        }
        let preds: Vec<&'static str> = graph.into.get(v).cloned().unwrap_or_default();
        let d = if guard == 0 {
            0
        } else {
            preds
                .iter()
                .map(|p| depth_of(p, graph, memo, guard - 1) + 1)
                .max()
                .unwrap_or(0)
        };
        memo.insert(v, d);
        d
    }
    for v in vertices {
        depth_of(v, &graph, &mut depth, 64);
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(
            ConsistencyModel::named("serializable").map(|m| m.canonical_name()),
            Some("PL-3")
        );
        assert_eq!(
            ConsistencyModel::named("PL-SI").map(|m| m.name()),
            Some("snapshot-isolation")
        );
        assert!(ConsistencyModel::named("nope").is_none());
        assert_eq!(ConsistencyModel::default().name(), "strict-serializable");
    }

    #[test]
    fn g_single_rules_out_snapshot_isolation() {
        let (not, also) = boundary(["G-single"]);
        // Snapshot isolation implies consistent view, so only the latter is "not".
        assert_eq!(not, vec!["consistent-view"]);
        assert!(also.contains(&"snapshot-isolation".to_string()));
        assert!(also.contains(&"serializable".to_string()));
        assert!(also.contains(&"strict-serializable".to_string()));
    }

    #[test]
    fn g2_item_rules_out_repeatable_read_not_si() {
        let impossible = impossible_models(["G2-item"]);
        assert!(impossible.contains("PL-2.99"));
        assert!(impossible.contains("PL-3"));
        assert!(!impossible.contains("PL-SI"));
    }

    #[test]
    fn realtime_only_rules_out_strict() {
        let (not, _) = boundary(["G-single-realtime"]);
        assert!(not.contains(&"strong-snapshot-isolation".to_string()));
        let impossible = impossible_models(["G-single-realtime"]);
        assert!(impossible.contains("PL-SS"));
        assert!(!impossible.contains("PL-3"));
    }

    #[test]
    fn prohibited_sets() {
        let si = anomalies_prohibited_by(&[ConsistencyModel::named("snapshot-isolation").unwrap()]);
        assert!(si.contains("G-single"));
        assert!(si.contains("G1c"));
        assert!(si.contains("G0"));
        assert!(!si.contains("G2-item"));
        assert!(!si.contains("G-single-realtime"));
        let ru = anomalies_prohibited_by(&[ConsistencyModel::named("read-uncommitted").unwrap()]);
        assert!(ru.contains("G0"));
        assert!(!ru.contains("G1a"));
        let ss = anomalies_prohibited_by(&[ConsistencyModel::STRICT_SERIALIZABLE]);
        for a in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single",
            "G2-item",
            "G-single-realtime",
            "internal",
            "lost-update",
            "incompatible-order",
            "dirty-update",
            "duplicate-elements",
            "G0-process",
            "future-read",
        ] {
            assert!(ss.contains(a), "{a}");
        }
    }

    #[test]
    fn depths_order_worst_first() {
        let d = anomaly_depths();
        assert!(d["G0"] < d["G1c"]);
        assert!(d["G1c"] < d["G-single"]);
        assert!(d["G-single"] < d["G-nonadjacent"]);
        assert!(d["G2-item"] < d["G0-process"]);
        assert!(d["G2-process"] < d["G0-realtime"]);
    }
}
