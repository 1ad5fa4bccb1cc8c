//! Following every element through a set history: when it became known, the last
//! reads that saw and missed it, and what was read but never added.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::history::{History, InputError, Key, OpType, Process};

/// A set element, ordered integers first (numerically), then other JSON by its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Element {
    /// An integer element.
    Int(i64),
    /// Any other element, as compact JSON.
    Json(String),
}

impl Element {
    /// The element of a JSON value.
    pub fn from_json(value: &Value) -> Element {
        match value.as_i64() {
            Some(n) => Element::Int(n),
            None => Element::Json(value.to_string()),
        }
    }

    /// The element as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Element::Int(n) => Value::from(*n),
            Element::Json(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.as_str()))
            }
        }
    }
}

/// An element of one key's set.
pub type Item = (Option<Key>, Element);

/// What became of an attempted element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Seen, and seen by every read begun after the last read that missed it.
    Stable,
    /// Known to exist, then missed by a read begun after every read that saw it.
    Lost,
    /// No read began after it was known (or it was never known).
    NeverRead,
}

/// One attempted element's history.
#[derive(Debug, Clone, Default)]
pub struct ElementState {
    /// How its add ended (`info` when it never completed).
    pub add: Option<OpType>,
    /// `index` of the add's invocation.
    pub add_index: u64,
    /// `index` of the first event proving it exists (add ok or read ok).
    pub known: Option<u64>,
    /// `index` of the invocation of the latest-invoked read that saw it.
    pub last_present: Option<u64>,
    /// `index` of the invocation of the latest-invoked read that missed it.
    pub last_absent: Option<u64>,
}

impl ElementState {
    /// Stable, lost or never read, as Jepsen's `set-full` decides.
    pub fn outcome(&self) -> Outcome {
        let stable = match (self.last_present, self.last_absent) {
            (Some(present), absent) => absent.is_none_or(|a| a < present),
            (None, _) => false,
        };
        let lost = match (self.known, self.last_absent) {
            (Some(known), Some(absent)) => {
                self.last_present.is_none_or(|p| p < absent) && known < absent
            }
            _ => false,
        };
        if stable {
            Outcome::Stable
        } else if lost {
            Outcome::Lost
        } else {
            Outcome::NeverRead
        }
    }

    /// Stable, but missed by some read begun after it was known.
    pub fn stale(&self) -> bool {
        self.outcome() == Outcome::Stable
            && matches!((self.known, self.last_absent), (Some(k), Some(a)) if k < a)
    }
}

/// Everything the checker found.
#[derive(Debug, Clone, Default)]
pub struct SetAnalysis {
    /// Every attempted element.
    pub elements: BTreeMap<Item, ElementState>,
    /// Elements read that were not attempted (yet): element → `index` of the first read.
    pub unexpected: BTreeMap<Item, u64>,
    /// Elements twice or more in one read: element → (largest multiplicity, read `index`).
    pub duplicated: BTreeMap<Item, (usize, u64)>,
    /// Number of ok reads.
    pub reads: usize,
}

impl SetAnalysis {
    /// Elements with this outcome, sorted.
    pub fn with_outcome(&self, outcome: Outcome) -> Vec<&Item> {
        self.elements
            .iter()
            .filter(|(_, e)| e.outcome() == outcome)
            .map(|(item, _)| item)
            .collect()
    }

    /// Stale elements, sorted.
    pub fn stale(&self) -> Vec<&Item> {
        self.elements
            .iter()
            .filter(|(_, e)| e.stale())
            .map(|(item, _)| item)
            .collect()
    }

    /// Elements whose add failed yet a read saw them.
    pub fn failed_add_observed(&self) -> Vec<&Item> {
        self.elements
            .iter()
            .filter(|(_, e)| e.add == Some(OpType::Fail) && e.last_present.is_some())
            .map(|(item, _)| item)
            .collect()
    }

    /// Elements whose add crashed (`info`, or never completed) yet a read saw them.
    pub fn recovered(&self) -> Vec<&Item> {
        self.elements
            .iter()
            .filter(|(_, e)| e.add == Some(OpType::Info) && e.last_present.is_some())
            .map(|(item, _)| item)
            .collect()
    }
}

/// Follows every element through the history. A read whose value is not a list is an
/// [`InputError`] naming its line.
pub fn analyze(history: &History) -> Result<SetAnalysis, InputError> {
    let mut analysis = SetAnalysis::default();
    // Elements per key, for the reads to visit.
    let mut by_key: HashMap<Option<Key>, BTreeSet<Element>> = HashMap::new();
    // Open operations per process: the add's element, or the read's invocation index.
    let mut open_adds: HashMap<u64, Item> = HashMap::new();
    let mut open_reads: HashMap<u64, u64> = HashMap::new();
    for (position, op) in history.ops().iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        match (op.f.as_str(), op.op_type) {
            ("add", OpType::Invoke) => {
                let item = (op.key.clone(), Element::from_json(&op.value));
                by_key
                    .entry(item.0.clone())
                    .or_default()
                    .insert(item.1.clone());
                analysis
                    .elements
                    .entry(item.clone())
                    .or_insert(ElementState {
                        add: Some(OpType::Info),
                        add_index: op.index,
                        ..ElementState::default()
                    });
                open_adds.insert(process, item);
            }
            ("add", outcome) => {
                if let Some(item) = open_adds.remove(&process)
                    && let Some(state) = analysis.elements.get_mut(&item)
                {
                    state.add = Some(outcome);
                    if outcome == OpType::Ok && state.known.is_none() {
                        state.known = Some(op.index);
                    }
                }
            }
            ("read", OpType::Invoke) => {
                open_reads.insert(process, op.index);
            }
            ("read", OpType::Ok) => {
                let Value::Array(values) = &op.value else {
                    return Err(history.error_at(
                        position,
                        format!(
                            "set read: the value must be the whole set as a list, not {}",
                            op.value
                        ),
                    ));
                };
                let Some(began) = open_reads.remove(&process) else {
                    continue;
                };
                analysis.reads += 1;
                let mut seen: BTreeMap<Element, usize> = BTreeMap::new();
                for value in values {
                    *seen.entry(Element::from_json(value)).or_default() += 1;
                }
                let known = by_key.get(&op.key);
                for (element, &count) in &seen {
                    let item = (op.key.clone(), element.clone());
                    if count > 1 {
                        let entry = analysis.duplicated.entry(item.clone()).or_insert((0, 0));
                        if count > entry.0 {
                            *entry = (count, op.index);
                        }
                    }
                    if !known.is_some_and(|k| k.contains(element)) {
                        analysis.unexpected.entry(item).or_insert(op.index);
                    }
                }
                for element in known.into_iter().flatten() {
                    let item = (op.key.clone(), element.clone());
                    let Some(state) = analysis.elements.get_mut(&item) else {
                        continue;
                    };
                    if seen.contains_key(element) {
                        state.known.get_or_insert(op.index);
                        if state.last_present.is_none_or(|p| p < began) {
                            state.last_present = Some(began);
                        }
                    } else if state.last_absent.is_none_or(|a| a < began) {
                        state.last_absent = Some(began);
                    }
                }
            }
            _ => {
                open_reads.remove(&process);
            }
        }
    }
    Ok(analysis)
}
