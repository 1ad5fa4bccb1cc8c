//! Logical time, shared by the cores: ticks, the randomized election (failure
//! detection) timeout drawn from a seeded splitmix64, and a leader's heartbeat and
//! quorum-check intervals. [`tick`] is the one rule both cores follow on a tick.

use super::types::ConfigError;

/// A core's clocks, counted in ticks.
#[derive(Debug, Clone)]
pub(crate) struct Timer {
    /// Minimum election timeout; the actual one is drawn from
    /// `[election_tick, 2 * election_tick)` at every reset.
    pub(crate) election_tick: u32,
    /// A leader sends heartbeats every `heartbeat_tick` ticks.
    pub(crate) heartbeat_tick: u32,
    /// Ticks since the last reset (heard from a leader, campaigned, quorum checked).
    pub(crate) election_elapsed: u32,
    /// Leader: ticks since the last heartbeat.
    pub(crate) heartbeat_elapsed: u32,
    /// The election timeout drawn at the last reset.
    pub(crate) randomized_timeout: u32,
    /// Ticks since start (for timing snapshot resends).
    pub(crate) ticks: u64,
    rng: u64,
}

impl Timer {
    /// A timer with the given intervals and random state, its first timeout drawn.
    pub(crate) fn new(
        election_tick: u32,
        heartbeat_tick: u32,
        rng: u64,
    ) -> Result<Timer, ConfigError> {
        if election_tick <= heartbeat_tick || heartbeat_tick == 0 {
            return Err(ConfigError::Invalid(format!(
                "election tick ({election_tick}) must exceed heartbeat tick ({heartbeat_tick}) > 0"
            )));
        }
        let mut timer = Timer {
            election_tick,
            heartbeat_tick,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: election_tick,
            ticks: 0,
            rng,
        };
        timer.reset_election_timeout();
        Ok(timer)
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: deterministic from the configured seed, no I/O.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Restarts the election timeout with a fresh random length (the back-off that
    /// lets duelling candidates settle).
    pub(crate) fn reset_election_timeout(&mut self) {
        self.election_elapsed = 0;
        let base = self.election_tick;
        self.randomized_timeout = base + (self.next_random() % u64::from(base)) as u32;
    }

    /// Restarts both of a new leader's intervals.
    pub(crate) fn reset_leader(&mut self) {
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
    }

    /// Whether fewer than `election_tick` ticks passed since the last reset (a leader
    /// heard from that recently is presumed alive).
    pub(crate) fn within_election_tick(&self) -> bool {
        self.election_elapsed < self.election_tick
    }
}

/// What [`tick`] needs from a core.
pub(crate) trait Timed {
    /// The core's timer.
    fn timer(&mut self) -> &mut Timer;
    /// Whether the core leads.
    fn is_leader(&self) -> bool;
    /// Leader: whether a quorum was heard from since the last check; resets the window.
    fn check_quorum(&mut self) -> bool;
    /// Leader: steps down, a quorum being out of reach.
    fn lose_quorum(&mut self);
    /// Leader: sends heartbeats.
    fn heartbeat(&mut self);
    /// Anyone else: the leader seems gone; starts an election.
    fn campaign(&mut self);
}

/// Advances time by one tick: a leader checks every election timeout that it still
/// hears from a quorum (stepping down if not) and sends heartbeats; anyone else
/// campaigns once its randomized timeout elapses.
pub(crate) fn tick(core: &mut impl Timed) {
    let leader = core.is_leader();
    let timer = core.timer();
    timer.ticks += 1;
    timer.election_elapsed = timer.election_elapsed.saturating_add(1);
    if leader {
        timer.heartbeat_elapsed += 1;
        if timer.election_elapsed >= timer.election_tick {
            timer.election_elapsed = 0;
            if !core.check_quorum() {
                core.lose_quorum();
                return;
            }
        }
        let timer = core.timer();
        if timer.heartbeat_elapsed >= timer.heartbeat_tick {
            timer.heartbeat_elapsed = 0;
            core.heartbeat();
        }
    } else if timer.election_elapsed >= timer.randomized_timeout {
        core.campaign();
    }
}

/// Votes needed to win among `voters`.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// The largest value that at least a quorum of `values` reach (the median-ish element);
/// 0 for none.
pub fn quorum_value(mut values: Vec<u64>) -> u64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.get(values.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_value_is_what_a_majority_has() {
        assert_eq!(quorum_value(vec![5, 3, 1]), 3);
        assert_eq!(quorum_value(vec![5, 3, 1, 9, 2]), 3);
        assert_eq!(quorum_value(vec![7]), 7);
        assert_eq!(quorum_value(vec![4, 4, 1, 1]), 1);
        assert_eq!(quorum_value(Vec::new()), 0);
    }

    #[test]
    fn timeouts_are_drawn_in_range_and_bad_intervals_refused() {
        let mut t = Timer::new(10, 2, 7).unwrap();
        for _ in 0..100 {
            assert!((10..20).contains(&t.randomized_timeout));
            t.reset_election_timeout();
        }
        assert!(Timer::new(2, 2, 7).is_err());
        assert!(Timer::new(5, 0, 7).is_err());
    }
}
