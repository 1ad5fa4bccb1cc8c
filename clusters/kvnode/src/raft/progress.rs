//! What a leader knows about each follower's log, and quorum arithmetic.

/// How a leader currently replicates to one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// Unsure where the logs diverge: one `Append` at a time.
    Probe,
    /// Logs match up to `matched`: stream entries optimistically.
    Replicate,
    /// A snapshot at this index was sent at `sent_tick`; waiting for it to be installed.
    Snapshot {
        /// The snapshot's index.
        index: u64,
        /// The leader's tick count when it was sent.
        sent_tick: u64,
    },
}

/// A leader's view of one follower.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Highest index known to match the leader's log.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// How entries are being sent.
    pub state: ProgressState,
    /// In `Probe`, an `Append` is outstanding; wait for an answer or the next heartbeat.
    pub paused: bool,
    /// Heard from in the current check-quorum window.
    pub recent_active: bool,
    /// Highest read round this follower acknowledged.
    pub read_seq: u64,
}

impl Progress {
    /// A fresh progress for a new leader whose last index is `last_index`.
    pub fn new(last_index: u64) -> Progress {
        Progress {
            matched: 0,
            next: last_index + 1,
            state: ProgressState::Probe,
            paused: false,
            recent_active: false,
            read_seq: 0,
        }
    }

    /// Records a successful append up to `index`; returns whether `matched` grew.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        self.paused = false;
        let grew = index > self.matched;
        if grew {
            self.matched = index;
        }
        if self.next < index + 1 {
            self.next = index + 1;
        }
        grew
    }

    /// Handles a rejection of `rejected` (the `prev_index` that did not match), moving
    /// `next` back to just after `probe`. Returns false if the rejection is stale.
    pub fn maybe_decrease(&mut self, rejected: u64, probe: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
        } else if rejected + 1 != self.next {
            return false;
        }
        self.next = (rejected.min(probe) + 1).max(self.matched + 1);
        self.state = ProgressState::Probe;
        self.paused = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(10);
        assert!(
            !p.maybe_decrease(5, 3),
            "probe expects a rejection of next-1"
        );
        assert!(p.maybe_decrease(10, 3));
        assert_eq!(p.next, 4);
        p.maybe_update(6);
        p.state = ProgressState::Replicate;
        assert!(!p.maybe_decrease(6, 2));
    }
}
