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

mod analysis;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::history::{History, InputError, Key, OpType, Process};
use crate::results::{Validity, Verdict};

pub use analysis::{Element, ElementState, Item, Outcome, SetAnalysis, analyze};

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
