//! The set checker (Jepsen's `set-full`): `add` puts one element into a set, `read`
//! returns the whole set. For every element whose add was invoked, it finds:
//!
//! - *known*: the first proof the element exists: its add's `ok`, or the completion of
//!   the first read that saw it, whichever came first;
//! - *last present* / *last absent*: the latest-invoked ok read that saw it / missed it
//!   (among reads completing after its add was invoked).
//!
//! An element is **stable** when it was seen and every read invoked after the last read
//! that missed it sees it; **lost** when it is known, and the last read that missed it
//! began after it was known and after every read that saw it; **never-read** otherwise
//! (no read began after it was known). A stable element is **stale** when some read that
//! began after it was known missed it. Besides Jepsen's categories this checker reports
//! **unexpected** elements (read but never added, read before their add began, or whose
//! add failed), **duplicated** elements (twice in one read) and **recovered** ones (add
//! crashed yet seen). Invalid: lost, unexpected or duplicated elements, and stale ones
//! when the set must be linearizable. Unknown when nothing is stable. Keys are separate
//! sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use crate::history::{History, InputError, Key, OpType, Process};
use crate::results::{Validity, Verdict};

/// How many elements of each category are listed in the details.
const MAX_LISTED: usize = 20;
/// How many elements of each invalid category are explained in words.
const MAX_EXPLAINED: usize = 10;

/// How to check a set history.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// The set must be linearizable: a read that begins after an element is known must
    /// see it, so stale elements are invalid.
    pub linearizable: bool,
}

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

/// Checks every key's set and returns the merged verdict.
pub fn check(history: &History, options: &SetOptions) -> Result<Verdict, InputError> {
    let analysis = analyze(history)?;
    let keyed = analysis.elements.keys().any(|(k, _)| k.is_some())
        || analysis.unexpected.keys().any(|(k, _)| k.is_some());
    let show = |item: &Item| match &item.0 {
        Some(key) if keyed => json!({"key": key.to_json(), "element": item.1.to_json()}),
        _ => item.1.to_json(),
    };
    let name = |item: &Item| match &item.0 {
        Some(key) => format!("key {key}: element {}", item.1.to_json()),
        None => format!("element {}", item.1.to_json()),
    };
    let list = |items: &[&Item]| -> Value {
        Value::from(
            items
                .iter()
                .take(MAX_LISTED)
                .map(|i| show(i))
                .collect::<Vec<_>>(),
        )
    };
    let stable = analysis.with_outcome(Outcome::Stable);
    let lost = analysis.with_outcome(Outcome::Lost);
    let never_read: Vec<&Item> = analysis
        .elements
        .iter()
        .filter(|(_, e)| e.outcome() == Outcome::NeverRead && e.add != Some(OpType::Fail))
        .map(|(item, _)| item)
        .collect();
    let stale = analysis.stale();
    let recovered = analysis.recovered();
    let failed_observed = analysis.failed_add_observed();
    let mut unexpected: Vec<&Item> = analysis.unexpected.keys().collect();
    unexpected.extend(failed_observed.iter().copied());
    unexpected.sort();
    let duplicated: Vec<&Item> = analysis.duplicated.keys().collect();

    let valid = if !lost.is_empty()
        || !unexpected.is_empty()
        || !duplicated.is_empty()
        || (options.linearizable && !stale.is_empty())
    {
        Validity::Invalid
    } else if stable.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };

    let count_of = |outcome: OpType| {
        analysis
            .elements
            .values()
            .filter(|e| e.add == Some(outcome))
            .count()
    };
    let keys: BTreeSet<&Option<Key>> = analysis
        .elements
        .keys()
        .chain(analysis.unexpected.keys())
        .map(|(k, _)| k)
        .collect();
    let mut details = Map::new();
    let mut put = |name: &str, value: Value| {
        details.insert(name.to_string(), value);
    };
    put("keys", Value::from(keys.len()));
    put("linearizable", Value::from(options.linearizable));
    put("reads", Value::from(analysis.reads));
    put("attempt_count", Value::from(analysis.elements.len()));
    put("ok_count", Value::from(count_of(OpType::Ok)));
    put("fail_count", Value::from(count_of(OpType::Fail)));
    put("info_count", Value::from(count_of(OpType::Info)));
    for (field, items) in [
        ("stable", &stable),
        ("lost", &lost),
        ("never_read", &never_read),
        ("stale", &stale),
        ("recovered", &recovered),
        ("unexpected", &unexpected),
        ("failed_add_observed", &failed_observed),
    ] {
        put(&format!("{field}_count"), Value::from(items.len()));
        if field != "stable" {
            put(field, list(items));
        }
    }
    put("duplicated_count", Value::from(duplicated.len()));
    put(
        "duplicated",
        Value::from(
            analysis
                .duplicated
                .iter()
                .take(MAX_LISTED)
                .map(|(item, (times, index))| {
                    json!({"element": show(item), "times": times, "index": index})
                })
                .collect::<Vec<_>>(),
        ),
    );

    let read_at = |index: u64| {
        let position = history.position_of_index(index);
        let (time, process) = history
            .ops()
            .get(position)
            .map_or((0, Process::Nemesis), |op| (op.time, op.process));
        format!(
            "the read invoked at index {index} (line {}, time {time} ns, process {process})",
            history.line_of(position)
        )
    };
    let known_by = |state: &ElementState| match state.known {
        Some(k) if state.add == Some(OpType::Ok) && k > state.add_index => {
            let add_known = history
                .ops()
                .get(history.position_of_index(k))
                .is_some_and(|op| op.f == "add");
            if add_known {
                format!("its add completed ok at index {k}")
            } else {
                format!("a read completing at index {k} saw it")
            }
        }
        Some(k) => format!("a read completing at index {k} saw it"),
        None => "never".to_string(),
    };
    let mut explanation = Vec::new();
    let mut explain = |items: &[&Item], say: &dyn Fn(&Item) -> String| {
        for item in items.iter().take(MAX_EXPLAINED) {
            explanation.push(say(item));
        }
        if items.len() > MAX_EXPLAINED {
            explanation.push(format!("... and {} more", items.len() - MAX_EXPLAINED));
        }
    };
    let state_of = |item: &Item| analysis.elements.get(item).cloned().unwrap_or_default();
    explain(&lost, &|item| {
        let state = state_of(item);
        let last_seen = match state.last_present {
            Some(p) => format!(
                "last seen by {}; missing from every read begun after that",
                read_at(p)
            ),
            None => "never seen; missing from every read begun after it was known".to_string(),
        };
        format!(
            "lost {}: known since {}; {last_seen}, the last being {}",
            name(item),
            known_by(&state),
            state.last_absent.map(read_at).unwrap_or_default()
        )
    });
    explain(&unexpected, &|item| match analysis.unexpected.get(item) {
        Some(index) => format!(
            "unexpected {}: read by the read completing at index {index}, but no add of it had begun",
            name(item)
        ),
        None => format!(
            "unexpected {}: its add failed (invoked at index {}), yet {} saw it",
            name(item),
            state_of(item).add_index,
            state_of(item).last_present.map(read_at).unwrap_or_default()
        ),
    });
    explain(&duplicated, &|item| {
        let (times, index) = analysis.duplicated.get(item).copied().unwrap_or((0, 0));
        format!(
            "duplicated {}: {times} times in the read completing at index {index}",
            name(item)
        )
    });
    if options.linearizable {
        explain(&stale, &|item| {
            let state = state_of(item);
            format!(
                "stale {}: known since {}, yet missing from {} (the set must be linearizable)",
                name(item),
                known_by(&state),
                state.last_absent.map(read_at).unwrap_or_default()
            )
        });
    }
    if valid == Validity::Unknown {
        explanation.push("no element was stable: nothing was both added and read".to_string());
    }
    Ok(Verdict {
        valid,
        details,
        explanation,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::history::Op;
    use crate::testing::rows;

    fn run(h: &History, linearizable: bool) -> Verdict {
        check(h, &SetOptions { linearizable }).unwrap()
    }

    fn add(p: u64, t: &str, v: i64) -> (u64, &'static str, &'static str, Value) {
        let t = match t {
            "invoke" => "invoke",
            "ok" => "ok",
            "fail" => "fail",
            _ => "info",
        };
        (p, t, "add", json!(v))
    }

    fn read(p: u64, t: &str, v: Value) -> (u64, &'static str, &'static str, Value) {
        let t = if t == "invoke" { "invoke" } else { "ok" };
        (p, t, "read", v)
    }

    #[test]
    fn stable_elements_are_valid() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "ok", 1),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([1])),
        ]);
        let v = run(&h, true);
        assert_eq!(v.valid, Validity::Valid);
        assert_eq!(v.details["stable_count"], json!(1));
        assert_eq!(v.details["ok_count"], json!(1));
    }

    #[test]
    fn lost_element_is_invalid() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "ok", 1),
            add(0, "invoke", 2),
            add(0, "ok", 2),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([1, 2])),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([2])),
        ]);
        let v = run(&h, false);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.details["lost"], json!([1]));
        assert!(
            v.explanation[0].starts_with("lost element 1"),
            "{:?}",
            v.explanation
        );
        assert!(v.explanation[0].contains("index 6"), "{:?}", v.explanation);
    }

    #[test]
    fn acked_element_never_seen_is_lost() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "ok", 1),
            add(0, "invoke", 2),
            add(0, "ok", 2),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([2])),
        ]);
        assert_eq!(run(&h, false).details["lost"], json!([1]));
    }

    #[test]
    fn stale_element_is_invalid_only_when_linearizable() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "ok", 1),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([])),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([1])),
        ]);
        let relaxed = run(&h, false);
        assert_eq!(relaxed.valid, Validity::Valid);
        assert_eq!(relaxed.details["stale"], json!([1]));
        let strict = run(&h, true);
        assert_eq!(strict.valid, Validity::Invalid);
        assert!(strict.explanation[0].starts_with("stale element 1"));
    }

    #[test]
    fn never_read_and_recovered_elements() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "info", 1),
            add(2, "invoke", 3),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([1])),
            add(3, "invoke", 2),
            add(3, "ok", 2),
        ]);
        let v = run(&h, true);
        assert_eq!(v.valid, Validity::Valid);
        assert_eq!(v.details["recovered"], json!([1]));
        assert_eq!(v.details["never_read"], json!([2, 3]));
        assert_eq!(v.details["info_count"], json!(2));
    }

    #[test]
    fn unexpected_and_failed_adds_observed_are_invalid() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "fail", 1),
            add(0, "invoke", 2),
            add(0, "ok", 2),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([1, 2, 9])),
        ]);
        let v = run(&h, false);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(v.details["unexpected"], json!([1, 9]));
        assert_eq!(v.details["failed_add_observed"], json!([1]));
        let text = v.explanation.join("\n");
        assert!(
            text.contains("unexpected element 1: its add failed"),
            "{text}"
        );
        assert!(text.contains("unexpected element 9: read by"), "{text}");
    }

    #[test]
    fn duplicated_element_is_invalid() {
        let h = rows(&[
            add(0, "invoke", 1),
            add(0, "ok", 1),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([1, 1])),
        ]);
        let v = run(&h, false);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(
            v.details["duplicated"],
            json!([{"element": 1, "times": 2, "index": 3}])
        );
    }

    #[test]
    fn nothing_stable_is_unknown_and_malformed_reads_name_the_line() {
        let h = rows(&[add(0, "invoke", 1), add(0, "ok", 1)]);
        assert_eq!(run(&h, false).valid, Validity::Unknown);
        let h = rows(&[read(1, "invoke", Value::Null), read(1, "ok", json!(3))]);
        let error = check(&h, &SetOptions::default()).unwrap_err();
        assert!(error.to_string().starts_with("test:2:"), "{error}");
    }

    #[test]
    fn keys_are_separate_sets() {
        let mut ops = rows(&[
            add(0, "invoke", 1),
            add(0, "ok", 1),
            read(1, "invoke", Value::Null),
            read(1, "ok", json!([])),
        ])
        .ops()
        .to_vec();
        for (i, key) in [(0, "a"), (1, "a"), (2, "b"), (3, "b")] {
            ops[i] = ops[i].clone().with_key(Key::Str(key.into()));
        }
        let v = run(&History::from_ops("test", ops).unwrap(), false);
        assert_eq!(v.details["lost_count"], json!(0));
        assert_eq!(v.details["never_read"], json!([{"key": "a", "element": 1}]));
    }

    /// A history from a real (linearizable) set: each operation takes effect at one
    /// moment between its invocation and completion.
    fn simulate(seed: u64, steps: usize) -> History {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut set: BTreeSet<i64> = BTreeSet::new();
        let mut ops: Vec<Op> = Vec::new();
        let mut next = 0i64;
        let mut next_process = 3u64;
        // Per slot: process, and the open op: (element or None for a read, applied, seen).
        type Open = (Option<i64>, bool, Value);
        let mut slots: Vec<(u64, Option<Open>)> = (0..3).map(|p| (p, None)).collect();
        for _ in 0..steps {
            let s = rng.random_range(0..slots.len());
            let (p, state) = slots[s].clone();
            let n = ops.len() as u64;
            let op = |t, f, v| Op::new(n, n as i64, Process::Client(p), t, f, v);
            match state {
                None if rng.random_bool(0.6) => {
                    ops.push(op(OpType::Invoke, "add", json!(next)));
                    slots[s].1 = Some((Some(next), false, Value::Null));
                    next += 1;
                }
                None => {
                    ops.push(op(OpType::Invoke, "read", Value::Null));
                    slots[s].1 = Some((None, false, Value::Null));
                }
                Some((element, false, _)) => {
                    if let Some(e) = element {
                        set.insert(e);
                    }
                    let seen = json!(set.iter().collect::<Vec<_>>());
                    slots[s].1 = Some((element, true, seen));
                }
                Some((element, true, seen)) => {
                    if rng.random_bool(0.1) {
                        let v = element.map_or(Value::Null, |e| json!(e));
                        let f = if element.is_some() { "add" } else { "read" };
                        ops.push(op(OpType::Info, f, v));
                        slots[s] = (next_process, None);
                        next_process += 1;
                    } else {
                        ops.push(match element {
                            Some(e) => op(OpType::Ok, "add", json!(e)),
                            None => op(OpType::Ok, "read", seen),
                        });
                        slots[s].1 = None;
                    }
                }
            }
        }
        History::from_ops("sim", ops).unwrap()
    }

    /// Lost and stale elements by the definitions, in O(n²), for histories whose reads
    /// only see added elements.
    fn oracle(h: &History) -> (BTreeSet<i64>, BTreeSet<i64>) {
        let operations = h.operations();
        let reads: Vec<(u64, u64, Vec<i64>)> = operations
            .iter()
            .filter(|o| o.invoke.f == "read" && o.outcome() == OpType::Ok)
            .map(|o| {
                let done = o.completion.unwrap();
                let v = done.value.as_array().unwrap();
                (
                    o.invoke.index,
                    done.index,
                    v.iter().map(|x| x.as_i64().unwrap()).collect(),
                )
            })
            .collect();
        let (mut lost, mut stale) = (BTreeSet::new(), BTreeSet::new());
        for add in operations.iter().filter(|o| o.invoke.f == "add") {
            let e = add.invoke.value.as_i64().unwrap();
            let mut known = add
                .completion
                .filter(|c| c.op_type == OpType::Ok)
                .map(|c| c.index);
            for (_, done, seen) in &reads {
                if seen.contains(&e) {
                    known = Some(known.map_or(*done, |k| k.min(*done)));
                }
            }
            let Some(known) = known else { continue };
            // Reads that count: completed after the add began.
            let relevant: Vec<_> = reads.iter().filter(|r| r.1 > add.invoke.index).collect();
            let missed_after = |r: &&(u64, u64, Vec<i64>)| r.0 > known && !r.2.contains(&e);
            let is_lost = relevant
                .iter()
                .filter(|r| missed_after(r))
                .any(|miss| !relevant.iter().any(|r| r.0 > miss.0 && r.2.contains(&e)));
            if is_lost {
                lost.insert(e);
            } else if relevant.iter().any(missed_after)
                && relevant
                    .iter()
                    .max_by_key(|r| r.0)
                    .is_some_and(|r| r.2.contains(&e))
            {
                stale.insert(e);
            }
        }
        (lost, stale)
    }

    fn ints(items: Vec<&Item>) -> BTreeSet<i64> {
        items
            .into_iter()
            .map(|(_, e)| match e {
                Element::Int(n) => *n,
                Element::Json(_) => i64::MIN,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

        #[test]
        fn real_sets_are_never_invalid_and_dropped_elements_are_lost(seed in any::<u64>(), steps in 1usize..60, pick in any::<usize>()) {
            let h = simulate(seed, steps);
            prop_assert_ne!(run(&h, true).valid, Validity::Invalid);
            // Drop an acked element from every read begun after its add completed.
            let candidates: Vec<(i64, u64)> = h.operations().iter()
                .filter(|o| o.invoke.f == "add" && o.outcome() == OpType::Ok)
                .map(|o| (o.invoke.value.as_i64().unwrap(), o.completion.unwrap().index))
                .filter(|(_, done)| h.operations().iter().any(|r| r.invoke.f == "read" && r.outcome() == OpType::Ok && r.invoke.index > *done))
                .collect();
            if candidates.is_empty() {
                return Ok(());
            }
            let (element, done) = candidates[pick % candidates.len()];
            let begun_after: BTreeSet<u64> = h.operations().iter()
                .filter(|r| r.invoke.f == "read" && r.invoke.index > done)
                .filter_map(|r| r.completion.map(|c| c.index))
                .collect();
            let mut ops = h.ops().to_vec();
            for op in ops.iter_mut().filter(|op| begun_after.contains(&op.index)) {
                if let Value::Array(items) = &mut op.value {
                    items.retain(|x| x.as_i64() != Some(element));
                }
            }
            let bad = History::from_ops("sim", ops).unwrap();
            let v = run(&bad, false);
            prop_assert_eq!(v.valid, Validity::Invalid);
            let analysis = analyze(&bad).unwrap();
            prop_assert!(ints(analysis.with_outcome(Outcome::Lost)).contains(&element));
        }

        #[test]
        fn lost_and_stale_match_the_oracle(seed in any::<u64>(), steps in 1usize..60, drops in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..6)) {
            let h = simulate(seed, steps);
            let mut ops = h.ops().to_vec();
            let reads: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].f == "read" && ops[i].op_type == OpType::Ok)
                .collect();
            for (r, e) in drops {
                if reads.is_empty() {
                    break;
                }
                if let Value::Array(items) = &mut ops[reads[r % reads.len()]].value
                    && !items.is_empty()
                {
                    items.remove(e % items.len());
                }
            }
            let h = History::from_ops("sim", ops).unwrap();
            let analysis = analyze(&h).unwrap();
            let (lost, stale) = oracle(&h);
            prop_assert_eq!(ints(analysis.with_outcome(Outcome::Lost)), lost);
            prop_assert_eq!(ints(analysis.stale()), stale);
        }
    }
}
