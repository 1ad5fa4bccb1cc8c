//! The node-log check: what the nodes' own logs say went wrong, beside what the history
//! says. Protocol events (`start`, `role`, `vote`, `commit`, `apply`, `snapshot`,
//! `truncate`: [`events`]) give four safety invariants (`election-safety`,
//! `double-vote`, `state-machine-safety`, `committed-entry-truncated`: [`invariants`]);
//! any line matching a crash pattern ([`patterns`]) is a `node-log-crash`. The answer is
//! a [`Checked`] like a history checker's, recorded as `results.json`'s
//! `checkers["node-logs"]`; `docs/checkers.md` ("Node logs") has the format.
//!
//! The check is valid or invalid, never unknown: a log without protocol events is
//! checked for crash patterns only, and no logs at all is valid with `"no node logs"`
//! said in the results (a database without structured events must not make a valid run
//! unknown). Memory is bounded by the number of terms and applied indices, not lines.
//!
//! A node may host several consensus groups (shards): each group's events are logged in
//! a span `shard{shard=K}` ([`events::parse_in_shard`]), and every invariant is checked
//! within one shard, across nodes (events outside such a span are shard 0's). The
//! anomalies of sharded logs name their shard.

mod anomaly;
pub mod events;
mod invariants;
pub mod patterns;
mod reader;
mod span;
#[cfg(test)]
mod tests;
mod verdict;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

pub use anomaly::{Anomaly, EXAMPLES, Kind, Loc};
pub use invariants::APPLIED_CAP;
pub use patterns::{CrashPatterns, Pattern, PatternError};
pub use reader::MAX_LINE;

use crate::checkers::Checked;
use anomaly::Found;
use events::{Parsed, parse_in_shard, strip_ansi};
use invariants::Invariants;

/// The name of the check: its key in `results.json`'s `checkers`.
pub const NAME: &str = "node-logs";

/// One log of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLog {
    /// The node's name (`n1`); logs of the same name are the same node.
    pub node: String,
    /// The log as named in the evidence (e.g. `nodes/n1/node.log`).
    pub file: String,
    /// Where its lines are.
    pub source: Source,
}

/// Where a log's lines are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, read line by line (twice: the second time only for evidence lines).
    File(PathBuf),
    /// Lines in memory (tests, fixtures).
    Lines(Vec<String>),
}

impl NodeLog {
    /// A log file of `node`, shown as `file` in evidence.
    pub fn file(node: &str, file: &str, path: impl Into<PathBuf>) -> NodeLog {
        NodeLog {
            node: node.to_string(),
            file: file.to_string(),
            source: Source::File(path.into()),
        }
    }

    /// A log of `node` given as lines.
    pub fn lines<S: Into<String>>(
        node: &str,
        file: &str,
        lines: impl IntoIterator<Item = S>,
    ) -> NodeLog {
        NodeLog {
            node: node.to_string(),
            file: file.to_string(),
            source: Source::Lines(lines.into_iter().map(Into::into).collect()),
        }
    }
}

/// The node-log check with its crash patterns.
#[derive(Debug, Clone, Default)]
pub struct NodeLogCheck {
    patterns: CrashPatterns,
}

/// What was read, for the results: how much, which events, what could not be read.
#[derive(Debug, Default)]
struct Seen {
    lines: u64,
    events: BTreeMap<&'static str, u64>,
    nodes_with_events: BTreeSet<u32>,
    /// The shards named by `shard{shard=K}` spans (empty: the logs are not sharded).
    shards: BTreeSet<u32>,
    malformed: u64,
    first_malformed: Option<(Loc, String)>,
    unread: Vec<String>,
}

impl NodeLogCheck {
    /// The check with these crash patterns (`CrashPatterns::default()` and the
    /// database's own).
    pub fn new(patterns: CrashPatterns) -> NodeLogCheck {
        NodeLogCheck { patterns }
    }

    /// The crash patterns used.
    pub fn patterns(&self) -> &CrashPatterns {
        &self.patterns
    }

    /// Checks `logs` (each node's logs in the order given; a node's files in its own
    /// order). Never fails: a file that cannot be read is said in the results, and the
    /// rest is checked.
    pub fn check(&self, logs: &[NodeLog]) -> Checked {
        let mut names: Vec<String> = Vec::new();
        let mut found = Found::default();
        let mut invariants = Invariants::default();
        let mut seen = Seen::default();
        for (i, log) in logs.iter().enumerate() {
            let node = match names.iter().position(|n| *n == log.node) {
                Some(n) => n as u32,
                None => {
                    names.push(log.node.clone());
                    (names.len() - 1) as u32
                }
            };
            let log_index = u32::try_from(i).unwrap_or(u32::MAX);
            let mut each = |number: u32, line: &str| {
                let at = Loc {
                    log: log_index,
                    line: number,
                };
                self.line(
                    node,
                    at,
                    line,
                    &names,
                    &mut invariants,
                    &mut found,
                    &mut seen,
                );
            };
            match &log.source {
                Source::Lines(lines) => {
                    for (n, line) in lines.iter().enumerate() {
                        each(u32::try_from(n + 1).unwrap_or(u32::MAX), line);
                    }
                }
                Source::File(path) => {
                    if let Err(e) = reader::for_each_line(path, each) {
                        seen.unread
                            .push(format!("{} ({}): {e}", log.file, path.display()));
                    }
                }
            }
        }
        let texts = evidence_texts(logs, &found, &seen);
        Checked::new(verdict::verdict(
            logs,
            &names,
            &self.patterns,
            &seen,
            &invariants,
            &found,
            &texts,
        ))
    }

    /// Checks one line.
    #[allow(clippy::too_many_arguments)]
    fn line(
        &self,
        node: u32,
        at: Loc,
        line: &str,
        names: &[String],
        invariants: &mut Invariants,
        found: &mut Found,
        seen: &mut Seen,
    ) {
        seen.lines += 1;
        let line = strip_ansi(line);
        if let Some(pattern) = self.patterns.find(&line) {
            found.add(Kind::NodeLogCrash, None, vec![at], || {
                format!(
                    "{} logged a crash (pattern `{pattern}`)",
                    names.get(node as usize).map_or("?", String::as_str)
                )
            });
        }
        let (shard, parsed) = parse_in_shard(&line);
        match parsed {
            Parsed::None => {}
            Parsed::Event(event) => {
                *seen.events.entry(event.name()).or_insert(0) += 1;
                seen.nodes_with_events.insert(node);
                seen.shards.extend(shard);
                invariants.feed(node, shard, &event, at, names, found);
            }
            Parsed::Malformed(reason) => {
                seen.malformed += 1;
                if seen.first_malformed.is_none() {
                    seen.first_malformed = Some((at, reason));
                }
            }
        }
    }
}

/// The text of every line quoted: the kept anomalies' evidence and the first malformed
/// event (files read again, only up to the last line wanted).
fn evidence_texts(logs: &[NodeLog], found: &Found, seen: &Seen) -> HashMap<Loc, String> {
    let mut wanted: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let locs = found
        .kept()
        .iter()
        .flat_map(|a| a.evidence.iter())
        .chain(seen.first_malformed.iter().map(|(at, _)| at));
    for at in locs {
        wanted.entry(at.log).or_default().insert(at.line);
    }
    let mut texts = HashMap::new();
    for (log, lines) in wanted {
        let Some(source) = logs.get(log as usize).map(|l| &l.source) else {
            continue;
        };
        let fetched = match source {
            Source::Lines(all) => lines
                .iter()
                .filter_map(|&n| {
                    let text = all.get((n as usize).checked_sub(1)?)?;
                    Some((n, text.chars().take(MAX_LINE).collect()))
                })
                .collect(),
            Source::File(path) => reader::fetch(path, &lines).unwrap_or_default(),
        };
        for (line, text) in fetched {
            texts.insert(Loc { log, line }, text);
        }
    }
    texts
}
