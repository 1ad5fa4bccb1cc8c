//! What the nodes did in a run, abstracted into a set of behaviours: the coverage
//! signal that guides `faultline hunt` (after Mallory, CCS 2023: schedules that make
//! the nodes reach new abstract states are worth mutating further).
//!
//! A behaviour is a short string naming one abstract fact of the nodes' protocol
//! events (`docs/checkers.md`, "Node logs"): a role transition (`role:follower->candidate`),
//! a restart in a role (`restart-as:leader`), a vote given again after a restart in the
//! recovered term (`vote-after-restart`), how many nodes stood in one term
//! (`candidates-per-term:3+`), how many leaders a term had, a term jump's size, log
//! truncations (`truncate:2-3`), how many elections the run had (`elections:8-15`).
//! Counts are bucketed (1, 2–3, 4–7, 8–15, …) so that "more of the same" is not new.
//!
//! A sharded node's events carry their shard (`shard{shard=K}`, each shard a consensus
//! group of its own): a node's role and term are followed per shard, and a term's
//! candidates and leaders are counted per shard.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use faultline_checker::nodelog::events::{Event, Parsed, parse_in_shard, strip_ansi};

/// One run's behaviours.
pub type Behaviours = BTreeSet<String>;

/// `n` as a power-of-two bucket: `0`, `1`, `2-3`, `4-7`, `8-15`, ….
fn bucket(n: u64) -> String {
    match n {
        0 => "0".into(),
        1 => "1".into(),
        _ => {
            let low = 1u64 << (63 - n.leading_zeros());
            format!("{low}-{}", low.saturating_mul(2) - 1)
        }
    }
}

/// The numeric part of a term (Raft's term; Multi-Paxos' ballot round, `ROUND.NODE`).
fn round(term: &str) -> Option<u64> {
    term.split('.').next().and_then(|r| r.parse().ok())
}

/// What one node did in one shard, as its events are read in order.
#[derive(Debug, Default)]
struct NodeState {
    role: Option<String>,
    term: Option<String>,
    /// The term the node recovered at its last start, until it votes or moves on.
    recovered_term: Option<String>,
    truncations: u64,
}

/// Behaviours of all nodes, fed one log at a time.
#[derive(Debug, Default)]
pub struct Coverage {
    found: Behaviours,
    /// (Shard, term) → the nodes that were candidates / leaders in it (an event
    /// without a shard is shard 0's).
    candidates: BTreeMap<(u32, String), BTreeSet<String>>,
    leaders: BTreeMap<(u32, String), BTreeSet<String>>,
    elections: u64,
    truncations: u64,
}

impl Coverage {
    /// Reads one node's log lines, in order.
    pub fn feed<'a>(&mut self, node: &str, lines: impl IntoIterator<Item = &'a str>) {
        let mut shards: HashMap<u32, NodeState> = HashMap::new();
        for line in lines {
            let line = strip_ansi(line);
            if let (shard, Parsed::Event(event)) = parse_in_shard(&line) {
                let shard = shard.unwrap_or(0);
                let state = shards.entry(shard).or_default();
                self.event(node, shard, state, event);
            }
        }
        self.truncations += shards.values().map(|s| s.truncations).sum::<u64>();
    }

    fn event(&mut self, node: &str, shard: u32, state: &mut NodeState, event: Event<'_>) {
        match event {
            Event::Start { term, .. } => {
                let was = state.role.take().unwrap_or_else(|| "none".into());
                self.found.insert(format!("restart-as:{was}"));
                state.recovered_term = Some(term.to_string());
                state.term = Some(term.to_string());
            }
            Event::Role { term, role } => {
                let from = state.role.as_deref().unwrap_or("start");
                self.found.insert(format!("role:{from}->{role}"));
                if let (Some(old), Some(new)) = (state.term.as_deref().and_then(round), round(term))
                    && new > old
                {
                    self.found
                        .insert(format!("term-jump:{}", bucket(new - old)));
                }
                match role {
                    "candidate" | "pre-candidate" => {
                        self.candidates
                            .entry((shard, term.to_string()))
                            .or_default()
                            .insert(node.to_string());
                    }
                    "leader" => {
                        self.elections += 1;
                        self.leaders
                            .entry((shard, term.to_string()))
                            .or_default()
                            .insert(node.to_string());
                    }
                    _ => {}
                }
                if state.term.as_deref() != Some(term) {
                    state.recovered_term = None;
                }
                state.role = Some(role.to_string());
                state.term = Some(term.to_string());
            }
            Event::Vote { term, .. } => {
                if state.recovered_term.as_deref() == Some(term) {
                    self.found.insert("vote-after-restart".into());
                }
                state.recovered_term = None;
            }
            Event::Truncate { from, commit } => {
                state.truncations += 1;
                if from <= commit + 1 {
                    self.found.insert("truncate-at-commit".into());
                }
            }
            Event::Snapshot { .. } => {
                self.found.insert("snapshot".into());
            }
            Event::LogDamaged => {
                self.found.insert("log-damaged".into());
            }
            Event::Commit { .. } | Event::Apply { .. } => {}
        }
    }

    /// The behaviours of everything fed.
    pub fn behaviours(mut self) -> Behaviours {
        for nodes in self.candidates.values() {
            self.found.insert(format!(
                "candidates-per-term:{}",
                bucket(nodes.len() as u64)
            ));
        }
        for nodes in self.leaders.values() {
            self.found
                .insert(format!("leaders-per-term:{}", bucket(nodes.len() as u64)));
        }
        self.found
            .insert(format!("elections:{}", bucket(self.elections)));
        self.found
            .insert(format!("truncate:{}", bucket(self.truncations)));
        self.found
    }
}

/// The behaviours in a run directory's node logs (`nodes/NODE/*`); unreadable files
/// are skipped (a run whose logs could not be fetched simply shows less).
pub fn of_run(run_dir: &Path) -> Behaviours {
    let mut coverage = Coverage::default();
    let Ok(nodes) = fs::read_dir(run_dir.join("nodes")) else {
        return coverage.behaviours();
    };
    let mut nodes: Vec<_> = nodes.flatten().collect();
    nodes.sort_by_key(|e| e.file_name());
    for node in nodes {
        let name = node.file_name().to_string_lossy().into_owned();
        let Ok(files) = fs::read_dir(node.path()) else {
            continue;
        };
        let mut files: Vec<_> = files.flatten().filter(|f| f.path().is_file()).collect();
        files.sort_by_key(|e| e.file_name());
        for file in files {
            let Ok(handle) = fs::File::open(file.path()) else {
                continue;
            };
            let lines: Vec<String> = BufReader::new(handle)
                .lines()
                .map_while(Result::ok)
                .collect();
            coverage.feed(&name, lines.iter().map(String::as_str));
        }
    }
    coverage.behaviours()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(event: &str) -> String {
        format!("2026-12-05T12:00:00.000000Z  INFO protocol: {event}")
    }

    #[test]
    fn buckets_are_powers_of_two() {
        let got: Vec<String> = [0, 1, 2, 3, 4, 7, 8, 100].map(bucket).to_vec();
        assert_eq!(
            got,
            ["0", "1", "2-3", "2-3", "4-7", "4-7", "8-15", "64-127"]
        );
    }

    #[test]
    fn restarts_votes_and_elections_become_behaviours() {
        let n1 = [
            line("start node=1 term=0 voted-for=none commit=0"),
            line("role node=1 term=1 role=candidate"),
            line("role node=1 term=1 role=leader"),
            line("start node=1 term=1 voted-for=1 commit=0"),
            line("vote node=1 term=1 for=2"),
            line("truncate node=1 from=3 commit=2"),
        ];
        let n2 = [
            line("role node=2 term=1 role=candidate"),
            line("role node=2 term=1 role=leader"),
            "some other line".to_string(),
        ];
        let mut coverage = Coverage::default();
        coverage.feed("n1", n1.iter().map(String::as_str));
        coverage.feed("n2", n2.iter().map(String::as_str));
        let found = coverage.behaviours();
        for expected in [
            "restart-as:none",
            "restart-as:leader",
            "role:start->candidate",
            "role:candidate->leader",
            "vote-after-restart",
            "truncate-at-commit",
            "candidates-per-term:2-3",
            "leaders-per-term:2-3",
            "elections:2-3",
            "truncate:1",
        ] {
            assert!(
                found.contains(expected),
                "{expected} missing from {found:?}"
            );
        }
    }

    #[test]
    fn sharded_logs_are_followed_and_counted_per_shard() {
        let sharded = |shard: u32, event: &str| {
            format!("2026-12-05T12:00:00.000000Z  INFO shard{{shard={shard}}}: protocol: {event}")
        };
        // Each shard elects one leader in term 1; node 1 leads shard 1 and follows in
        // shard 2, its lines interleaved.
        let n1 = [
            sharded(1, "role node=1 term=1 role=candidate"),
            sharded(2, "role node=1 term=1 role=follower"),
            sharded(1, "role node=1 term=1 role=leader"),
            sharded(2, "role node=1 term=1 role=follower"),
            sharded(1, "start node=1 term=1 voted-for=1 commit=0"),
        ];
        let n2 = [
            sharded(2, "role node=2 term=1 role=candidate"),
            sharded(2, "role node=2 term=1 role=leader"),
            "x a{x=1}:shard{shard=1}: protocol: role node=2 term=1 role=follower".to_string(),
        ];
        let mut coverage = Coverage::default();
        coverage.feed("n1", n1.iter().map(String::as_str));
        coverage.feed("n2", n2.iter().map(String::as_str));
        let found: Vec<String> = coverage.behaviours().into_iter().collect();
        assert_eq!(
            found,
            [
                "candidates-per-term:1",
                "elections:2-3",
                "leaders-per-term:1",
                "restart-as:leader",
                "role:candidate->leader",
                "role:follower->follower",
                "role:start->candidate",
                "role:start->follower",
                "truncate:0",
            ]
        );
    }

    #[test]
    fn a_log_without_events_has_only_the_zero_counts() {
        let mut coverage = Coverage::default();
        coverage.feed("n1", ["plain", "lines"]);
        let found: Vec<String> = coverage.behaviours().into_iter().collect();
        assert_eq!(found, ["elections:0", "truncate:0"]);
    }
}
