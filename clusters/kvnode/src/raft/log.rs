//! The in-memory Raft log: entries after the latest snapshot.

use crate::consensus::Entry;

/// Entries `snapshot_index + 1 ..= last_index`, with the snapshot's position.
#[derive(Debug, Clone, Default)]
pub struct RaftLog {
    snapshot_index: u64,
    snapshot_term: u64,
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log that starts after a snapshot at (`index`, `term`), with `entries` after it.
    /// Returns `None` if the entries are not consecutive from `index + 1`.
    pub fn new(index: u64, term: u64, entries: Vec<Entry>) -> Option<RaftLog> {
        for (offset, entry) in entries.iter().enumerate() {
            if entry.index != index + 1 + offset as u64 {
                return None;
            }
        }
        Some(RaftLog {
            snapshot_index: index,
            snapshot_term: term,
            entries,
        })
    }

    /// The index the snapshot covers (0 when none).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// The last index (the snapshot's when there are no entries).
    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term at `index`, if known (the snapshot's own index counts; compacted ones do not).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Entries `lo ..= hi`, at most `max` of them (fewer if some are not held).
    pub fn slice(&self, lo: u64, hi: u64, max: usize) -> Vec<Entry> {
        if lo > hi || lo <= self.snapshot_index {
            return Vec::new();
        }
        let start = (lo - self.snapshot_index - 1) as usize;
        let end = ((hi - self.snapshot_index) as usize).min(self.entries.len());
        if start >= end {
            return Vec::new();
        }
        let end = end.min(start.saturating_add(max.max(1)));
        self.entries[start..end].to_vec()
    }

    /// Whether a candidate's log (`last_index`, `last_term`) is at least as up to date.
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Appends one entry at the end; its index must be `last_index + 1`.
    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// Drops entries from `index` on (never the snapshot).
    pub fn truncate_from(&mut self, index: u64) {
        if index <= self.snapshot_index {
            self.entries.clear();
            return;
        }
        self.entries
            .truncate((index - self.snapshot_index - 1) as usize);
    }

    /// Merges entries a leader sent after a matching `prev`: entries already held with
    /// the same term are kept; at the first conflict the log is cut and the rest
    /// appended. Returns the first index written, if anything changed.
    pub fn merge(&mut self, entries: &[Entry]) -> Option<u64> {
        let mut first_written = None;
        for entry in entries {
            if entry.index <= self.snapshot_index {
                continue;
            }
            if first_written.is_none() {
                match self.term(entry.index) {
                    Some(term) if term == entry.term => continue,
                    Some(_) => self.truncate_from(entry.index),
                    None => {}
                }
                if entry.index != self.last_index() + 1 {
                    return first_written;
                }
                first_written = Some(entry.index);
            }
            self.entries.push(entry.clone());
        }
        first_written
    }

    /// Walks back from `index` to the last index whose term is at most `term`
    /// (the fast conflict back-off of etcd and raft-rs). Stops at the snapshot.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut index = index.min(self.last_index());
        loop {
            match self.term(index) {
                Some(t) if t > term && index > self.snapshot_index => index -= 1,
                Some(t) => return (index, t),
                None => return (index, 0),
            }
        }
    }

    /// Forgets entries up to `index` (which must be held, or be the snapshot's), after a
    /// local snapshot at `index`.
    pub fn compact(&mut self, index: u64) -> bool {
        let Some(term) = self.term(index) else {
            return false;
        };
        let drop = (index - self.snapshot_index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.snapshot_index = index;
        self.snapshot_term = term;
        true
    }

    /// Replaces the whole log by a snapshot position.
    pub fn restore(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.snapshot_index = index;
        self.snapshot_term = term;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![],
        }
    }

    fn log(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, t)| e(i as u64 + 1, *t))
            .collect();
        RaftLog::new(0, 0, entries).unwrap()
    }

    #[test]
    fn merge_keeps_matching_and_cuts_conflicts() {
        let mut l = log(&[1, 1, 2, 2]);
        assert_eq!(l.merge(&[e(2, 1), e(3, 2)]), None);
        assert_eq!(l.last_index(), 4, "a stale duplicate must not truncate");
        assert_eq!(l.merge(&[e(3, 3)]), Some(3));
        assert_eq!(l.last_index(), 3);
        assert_eq!(l.term(3), Some(3));
    }

    #[test]
    fn conflict_by_term_skips_whole_terms() {
        let l = log(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(l.find_conflict_by_term(6, 3), (5, 2));
        assert_eq!(l.find_conflict_by_term(10, 1), (2, 1));
    }

    #[test]
    fn compact_and_slice() {
        let mut l = log(&[1, 1, 2, 2]);
        assert!(l.compact(2));
        assert_eq!(l.term(2), Some(1));
        assert_eq!(l.term(1), None);
        assert_eq!(l.slice(3, 4, 10).len(), 2);
        assert_eq!(l.slice(1, 4, 10).len(), 0);
        assert_eq!(l.slice(3, 4, 1).len(), 1);
    }
}
