//! What the node-log check finds: anomaly types, where a line is, and the bounded
//! collection of anomalies (every one counted, the first few kept with their evidence).

use std::collections::BTreeMap;

/// Anomalies of one type kept with their evidence; the rest are only counted.
pub const EXAMPLES: usize = 20;

/// The anomaly types of node logs (their names are `results.json`'s `anomaly_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Two different nodes were leader in the same term.
    ElectionSafety,
    /// One node voted for two different candidates in the same term.
    DoubleVote,
    /// Different entries were applied at the same index.
    StateMachineSafety,
    /// A node deleted entries it had itself committed.
    CommittedEntryTruncated,
    /// A node restarted without a vote (or promise) it had made durable: in an earlier
    /// term, or in the same term without it.
    ForgottenVote,
    /// A node restarted with a log ending before entries it had applied (so had made
    /// durable) in an earlier life.
    LostLogEntries,
    /// A line matched a crash pattern.
    NodeLogCrash,
}

impl Kind {
    /// Every type, in the order results list them.
    pub const ALL: [Kind; 7] = [
        Kind::ElectionSafety,
        Kind::DoubleVote,
        Kind::StateMachineSafety,
        Kind::CommittedEntryTruncated,
        Kind::ForgottenVote,
        Kind::LostLogEntries,
        Kind::NodeLogCrash,
    ];

    /// The type's name: `election-safety`, `double-vote`, `state-machine-safety`,
    /// `committed-entry-truncated`, `forgotten-vote`, `lost-log-entries`,
    /// `node-log-crash`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ElectionSafety => "election-safety",
            Kind::DoubleVote => "double-vote",
            Kind::StateMachineSafety => "state-machine-safety",
            Kind::CommittedEntryTruncated => "committed-entry-truncated",
            Kind::ForgottenVote => "forgotten-vote",
            Kind::LostLogEntries => "lost-log-entries",
            Kind::NodeLogCrash => "node-log-crash",
        }
    }
}

/// A line of one log: the log's number in the check, the line's number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    /// Which log (an index into the check's logs).
    pub log: u32,
    /// The line number, from 1.
    pub line: u32,
}

/// One anomaly: a sentence and the lines that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Its type.
    pub kind: Kind,
    /// The consensus group (shard) whose events break an invariant: `Some(0)` for an
    /// unsharded node's one group; `None` for a crash (a line, not a group's events).
    pub shard: Option<u32>,
    /// What happened, for people (without the shard, which the results add to it when
    /// the logs are sharded).
    pub message: String,
    /// The lines involved, earliest known first.
    pub evidence: Vec<Loc>,
}

/// Every anomaly counted by type, the first [`EXAMPLES`] of each kept.
#[derive(Debug, Clone, Default)]
pub struct Found {
    counts: BTreeMap<Kind, u64>,
    kept: Vec<Anomaly>,
}

impl Found {
    /// Records an anomaly of `shard` (see [`Anomaly::shard`]); builds its message only
    /// when it is kept.
    pub fn add(
        &mut self,
        kind: Kind,
        shard: Option<u32>,
        evidence: Vec<Loc>,
        message: impl FnOnce() -> String,
    ) {
        let count = self.counts.entry(kind).or_insert(0);
        *count += 1;
        if *count <= EXAMPLES as u64 {
            self.kept.push(Anomaly {
                kind,
                shard,
                message: message(),
                evidence,
            });
        }
    }

    /// How many anomalies of each type, in [`Kind::ALL`]'s order.
    pub fn counts(&self) -> &BTreeMap<Kind, u64> {
        &self.counts
    }

    /// The kept anomalies, in the order found.
    pub fn kept(&self) -> &[Anomaly] {
        &self.kept
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_anomaly_is_counted_and_the_first_few_kept() {
        let mut found = Found::default();
        let at = Loc { log: 0, line: 1 };
        for _ in 0..EXAMPLES + 5 {
            found.add(Kind::NodeLogCrash, None, vec![at], || "crash".into());
        }
        found.add(Kind::DoubleVote, Some(0), vec![at, at], || "vote".into());
        assert_eq!(found.counts()[&Kind::NodeLogCrash], EXAMPLES as u64 + 5);
        assert_eq!(found.kept().len(), EXAMPLES + 1);
        assert_eq!(found.counts().keys().next(), Some(&Kind::DoubleVote));
        assert!(!found.is_empty());
    }
}
