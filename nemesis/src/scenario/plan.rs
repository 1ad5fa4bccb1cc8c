//! The pure part of the scenarios: their knobs (from the start operation's value), and
//! each round's random choices and timing, drawn from the database's election timing.

use std::time::Duration;

use faultline_clusters::db::{ElectionTiming, NodeView};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::error::NemesisError;

/// The election timing assumed for a database that does not report its own (etcd's
/// defaults: 100 ms heartbeats, a 1 s election timeout).
pub(crate) const FALLBACK_TIMING: ElectionTiming = ElectionTiming {
    tick: Duration::from_millis(100),
    election_ticks: 10,
    heartbeat_ticks: 1,
    non_preferred_timeout_factor: 1,
};

/// The mean time between two partitions of `flap`, by default.
pub const DEFAULT_FLAP_PERIOD: Duration = Duration::from_millis(300);

/// How late, by default, the majority's nodes receive packets in `figure8`: long
/// enough for the scenario to act between a message and the next one of the same
/// exchange, short enough for elections through it.
pub const DEFAULT_FIGURE8_DELAY: Duration = Duration::from_millis(100);

/// A scenario's settings: the election timing it plans with and its own knobs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Knobs {
    /// The nodes' election timing (the database's, unless the value overrides it).
    pub(crate) timing: ElectionTiming,
    /// `leader-churn`: how long the isolated leader appends before it is killed
    /// (default: drawn in `[¼, ¾)` of the shortest election timeout).
    pub(crate) append: Option<Duration>,
    /// Quiet time between rounds (default: drawn in `[1, 2)` × the longest election
    /// timeout).
    pub(crate) settle: Option<Duration>,
    /// `vote-kill`: how long the second partition is held after the kill (default:
    /// twice the longest election timeout); `stale-leader`: how long the woken leader
    /// is held behind the bridge (default: three times the longest election timeout).
    pub(crate) hold: Option<Duration>,
    /// `flap`: the mean time between partitions.
    pub(crate) period: Duration,
    /// `figure8`: how long the majority's nodes receive every packet late; `vote-kill`:
    /// how long the voters do while they elect (with `faultline-delayer`).
    pub(crate) delay: Duration,
    /// `figure8`: the most log entries one replication message carries (the
    /// database's, unless the value sets `batch`; `None`: unknown).
    pub(crate) batch: Option<u64>,
}

impl Knobs {
    /// The knobs `value` sets over `timing` (null: none). `keys` are the knobs this
    /// scenario understands besides the timing (`tick_ms`, `election_ticks`,
    /// `heartbeat_ticks`); anything else is a bad value naming what is understood.
    pub(crate) fn parse(
        f: &str,
        value: &Value,
        keys: &[&str],
        timing: ElectionTiming,
    ) -> Result<Knobs, NemesisError> {
        let mut understood = vec!["tick_ms", "election_ticks", "heartbeat_ticks"];
        understood.extend_from_slice(keys);
        let bad = || NemesisError::BadValue {
            f: f.to_string(),
            value: value.to_string(),
            expected: format!(
                "null, or an object with any of {} (positive integers; durations in \
                 milliseconds)",
                understood.join(", ")
            ),
        };
        let mut knobs = Knobs {
            timing,
            append: None,
            settle: None,
            hold: None,
            period: DEFAULT_FLAP_PERIOD,
            delay: DEFAULT_FIGURE8_DELAY,
            batch: None,
        };
        let fields = match value {
            Value::Null => return Ok(knobs),
            Value::Object(fields) => fields,
            _ => return Err(bad()),
        };
        for (key, v) in fields {
            let n = v.as_u64().filter(|n| *n > 0).ok_or_else(bad)?;
            if !understood.contains(&key.as_str()) {
                return Err(bad());
            }
            let ms = Duration::from_millis(n);
            let ticks = u32::try_from(n).map_err(|_| bad())?;
            match key.as_str() {
                "tick_ms" => knobs.timing.tick = ms,
                "election_ticks" => knobs.timing.election_ticks = ticks,
                "heartbeat_ticks" => knobs.timing.heartbeat_ticks = ticks,
                "append_ms" => knobs.append = Some(ms),
                "settle_ms" => knobs.settle = Some(ms),
                "hold_ms" => knobs.hold = Some(ms),
                "period_ms" => knobs.period = ms,
                "delay_ms" => knobs.delay = ms,
                "batch" => knobs.batch = Some(n),
                _ => return Err(bad()),
            }
        }
        Ok(knobs)
    }

    /// The knobs as the history shows them.
    pub(crate) fn json(&self) -> Value {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut v = json!({
            "tick_ms": ms(self.timing.tick),
            "election_ticks": self.timing.election_ticks,
            "heartbeat_ticks": self.timing.heartbeat_ticks,
        });
        if let Some(batch) = self.batch {
            v["batch"] = json!(batch);
        }
        for (key, d) in [
            ("append_ms", self.append),
            ("settle_ms", self.settle),
            ("hold_ms", self.hold),
        ] {
            if let Some(d) = d {
                v[key] = json!(ms(d));
            }
        }
        v
    }

    /// The quiet time after a round.
    pub(crate) fn settle(&self, rng: &mut ChaCha8Rng) -> Duration {
        self.settle
            .unwrap_or_else(|| between(rng, self.timing.election_max(), 2))
    }

    /// How long to wait for an election (the longest timeout three times over, and a
    /// second for slow hosts).
    pub(crate) fn election_wait(&self) -> Duration {
        self.timing.election_max().saturating_mul(3) + Duration::from_secs(1)
    }

    /// How long `figure8`'s leader may take to append a message's worth of entries past
    /// the voters it leaves behind (clients append a few hundred a second by default).
    pub(crate) fn lag_wait(&self) -> Duration {
        self.election_wait().saturating_mul(3)
    }

    /// How long to wait for an election while packets between nodes are held `delay`
    /// (`figure8`, `vote-kill`): a few round trips more.
    pub(crate) fn delayed_election_wait(&self) -> Duration {
        self.election_wait() + self.delay.saturating_mul(20)
    }
}

/// A duration uniform in `[base, factor × base)` (`base` when it is zero).
fn between(rng: &mut ChaCha8Rng, base: Duration, factor: u32) -> Duration {
    uniform(rng, base, base.saturating_mul(factor))
}

/// A duration uniform in `[lo, hi)` (`lo` when the range is empty), to the microsecond.
pub(crate) fn uniform(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    let (lo_us, hi_us) = (micros(lo), micros(hi));
    if hi_us <= lo_us {
        return lo;
    }
    Duration::from_micros(rng.random_range(lo_us..hi_us))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A random element of `pool`, if any.
pub(crate) fn pick(rng: &mut ChaCha8Rng, pool: &[usize]) -> Option<usize> {
    (!pool.is_empty()).then(|| pool[rng.random_range(0..pool.len())])
}

/// One round of `leader-churn`, drawn before it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChurnRound {
    /// The follower isolated with the leader (the minority of two).
    pub(crate) follower: usize,
    /// How long the isolated leader appends entries that cannot commit before it is
    /// killed: less than the shortest election timeout, so it is still leading.
    pub(crate) append: Duration,
    /// Once the majority has a new leader, how long before the old one is restarted
    /// and the network healed: within two heartbeats, while the new leader is still
    /// replicating its first entries.
    pub(crate) return_delay: Duration,
    /// Whether, and how long after the old leader is back, the new leader is killed
    /// too (restarted a shortest election timeout later): the crash of Raft's figure 8
    /// that lets a node with old-term entries lead again.
    pub(crate) kill_new_leader: Option<Duration>,
}

/// The choices of a `leader-churn` round over `n` nodes whose leader is `leader`.
/// `None` with fewer than 3 nodes (no majority is left without the leader and a
/// follower).
pub(crate) fn churn_round(
    rng: &mut ChaCha8Rng,
    n: usize,
    leader: usize,
    knobs: &Knobs,
) -> Option<ChurnRound> {
    if n < 3 || leader >= n {
        return None;
    }
    let others: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
    let follower = pick(rng, &others)?;
    let min = knobs.timing.election_min();
    let append = knobs
        .append
        .unwrap_or_else(|| uniform(rng, min / 4, min.saturating_mul(3) / 4));
    let heartbeat = knobs.timing.heartbeat();
    let return_delay = uniform(rng, Duration::ZERO, heartbeat.saturating_mul(2));
    let kill_new_leader =
        (rng.random_range(0..2u8) == 1).then(|| uniform(rng, Duration::ZERO, heartbeat));
    Some(ChurnRound {
        follower,
        append,
        return_delay,
        kill_new_leader,
    })
}

/// The two sides of a `vote-kill` round: the leader and a buddy held apart (a minority
/// that cannot elect), and the rest, which must elect — and vote — in a new term.
/// `None` with fewer than 3 nodes.
pub(crate) fn vote_sides(
    rng: &mut ChaCha8Rng,
    n: usize,
    leader: usize,
) -> Option<(Vec<usize>, Vec<usize>)> {
    if n < 3 || leader >= n {
        return None;
    }
    let others: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
    // With 3 nodes the leader is held apart alone (a buddy would leave one node).
    let buddy = if n >= 5 { pick(rng, &others) } else { None };
    let mut held = vec![leader];
    held.extend(buddy);
    held.sort_unstable();
    let voters = (0..n).filter(|i| !held.contains(i)).collect();
    Some((held, voters))
}

/// The two sides of a `figure8` round over `n` nodes whose leader is `leader`: the
/// leader with as many others as still leaves a quorum apart (a minority: `n - n/2 - 1`
/// random others), and that quorum. `None` with fewer than 3 nodes.
pub(crate) fn figure8_sides(
    rng: &mut ChaCha8Rng,
    n: usize,
    leader: usize,
) -> Option<(Vec<usize>, Vec<usize>)> {
    if n < 3 || leader >= n {
        return None;
    }
    let mut others: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
    others.shuffle(rng);
    let quorum = n / 2 + 1;
    let mut minority = others.split_off(quorum);
    minority.push(leader);
    minority.sort_unstable();
    others.sort_unstable();
    Some((minority, others))
}

/// How many entries short of a whole message `figure8` leaves its voters behind: the
/// old side appends about one entry per client on its side once cut off, so the
/// catch-up message must end within the first few of them.
pub(crate) const FIGURE8_LAG_MARGIN: u64 = 2;

/// The largest batch `figure8` does not lag its voters for: the old side alone fills a
/// message that small (it appends about one entry per client on its side once cut off),
/// and a lag would only let the message end inside the prefix.
pub(crate) const FIGURE8_NO_LAG_BATCH: u64 = 8;

/// The voters-to-be of a `figure8` round whose majority is `majority` (of `n` nodes):
/// all of it but one random node (the future Y, which stays with the leader and so has
/// the longest log of the majority). `None` when the leader would keep no quorum without
/// them (an even `n`) or the majority has fewer than 2 nodes.
pub(crate) fn figure8_laggers(
    rng: &mut ChaCha8Rng,
    n: usize,
    majority: &[usize],
) -> Option<Vec<usize>> {
    let quorum = n / 2 + 1;
    if majority.len() < 2 || n - (majority.len() - 1) < quorum {
        return None;
    }
    let stays = pick(rng, majority)?;
    Some(majority.iter().copied().filter(|i| *i != stays).collect())
}

/// The leader's last index at which `figure8`'s voters, whose logs end at `from`, lag
/// a message of `batch` entries less [`FIGURE8_LAG_MARGIN`] (at least one entry).
pub(crate) fn lag_target(from: u64, batch: u64) -> u64 {
    from.saturating_add(batch.saturating_sub(FIGURE8_LAG_MARGIN).max(1))
}

/// Where a `stale-leader` round wakes the old leader: each leader with a quorum of its
/// own (itself included), the two quorums sharing as few nodes as they must (the
/// bridges, which talk to everyone; one with 3, 5 or 7 nodes), every other node cut
/// from the other leader's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaleSides {
    /// The old leader and the nodes only it reaches (besides the bridges).
    pub(crate) old_side: Vec<usize>,
    /// The new leader and the nodes only it reaches (besides the bridges).
    pub(crate) new_side: Vec<usize>,
    /// The nodes in both quorums.
    pub(crate) bridges: Vec<usize>,
}

/// The sides of a `stale-leader` wake-up over `n` nodes, the old leader `old` and the
/// new one `new`, the others placed at random. `None` with fewer than 3 nodes or
/// leaders that are not two of them.
pub(crate) fn stale_sides(
    rng: &mut ChaCha8Rng,
    n: usize,
    old: usize,
    new: usize,
) -> Option<StaleSides> {
    if n < 3 || old >= n || new >= n || old == new {
        return None;
    }
    let mut others: Vec<usize> = (0..n).filter(|i| *i != old && *i != new).collect();
    others.shuffle(rng);
    // Each quorum is its leader and `n / 2` others; together they need `2 × (n / 2)` of
    // the `n - 2` others, so that many minus `n - 2` are in both.
    let per_quorum = n / 2;
    let bridges = 2 * per_quorum - (n - 2);
    let only = per_quorum - bridges;
    let side = |leader: usize, members: &[usize]| {
        let mut side = vec![leader];
        side.extend_from_slice(members);
        side.sort_unstable();
        side
    };
    let mut bridge_nodes = others[..bridges].to_vec();
    bridge_nodes.sort_unstable();
    Some(StaleSides {
        old_side: side(old, &others[bridges..bridges + only]),
        new_side: side(new, &others[bridges + only..]),
        bridges: bridge_nodes,
    })
}

/// Whether `view`, the state of the node with id `own`, shows a vote granted in a term
/// after `base`: a vote for another node, or — when the database never reports votes
/// (`votes_reported` false; Multi-Paxos promises) — a follower that moved to a later
/// term. The candidate's id when known.
pub(crate) fn granted_vote(
    view: &NodeView,
    own: u64,
    base: u64,
    votes_reported: bool,
) -> Option<Option<u64>> {
    if view.term <= base || view.is_leader() {
        return None;
    }
    match view.vote {
        Some(v) if v != own => Some(Some(v)),
        Some(_) => None,
        None if !votes_reported && view.role == "follower" => Some(None),
        None => None,
    }
}

/// The wait before the next `flap` partition: uniform in `[½, 1½)` × `period`.
pub(crate) fn flap_wait(rng: &mut ChaCha8Rng, period: Duration) -> Duration {
    uniform(rng, period / 2, period.saturating_mul(3) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn knobs(value: Value) -> Knobs {
        Knobs::parse(
            "start-x",
            &value,
            &["append_ms", "settle_ms"],
            ElectionTiming::KV_DEFAULT,
        )
        .unwrap()
    }

    #[test]
    fn knobs_override_the_timing_and_refuse_what_they_do_not_know() {
        let k = knobs(json!({"tick_ms": 2, "election_ticks": 20, "append_ms": 7}));
        assert_eq!(k.timing.election_min(), Duration::from_millis(40));
        assert_eq!(k.timing.heartbeat_ticks, 5);
        assert_eq!(k.append, Some(Duration::from_millis(7)));
        assert_eq!(k.json()["append_ms"], 7);
        assert_eq!(knobs(Value::Null).timing, ElectionTiming::KV_DEFAULT);
        for bad in [
            json!({"hold_ms": 5}),
            json!({"tick_ms": 0}),
            json!({"tick_ms": "fast"}),
            json!("fast"),
        ] {
            let e = Knobs::parse("start-x", &bad, &["append_ms"], FALLBACK_TIMING)
                .unwrap_err()
                .to_string();
            assert!(e.contains("start-x") && e.contains("append_ms"), "{e}");
        }
    }

    #[test]
    fn churn_rounds_kill_the_leader_before_it_steps_down_and_return_it_within_heartbeats() {
        let k = knobs(Value::Null);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut killed_new = 0;
        for _ in 0..200 {
            let r = churn_round(&mut rng, 5, 2, &k).unwrap();
            assert!(r.follower != 2 && r.follower < 5);
            assert!(r.append >= Duration::from_millis(75) && r.append < Duration::from_millis(225));
            assert!(r.return_delay < Duration::from_millis(100));
            if let Some(life) = r.kill_new_leader {
                assert!(life < Duration::from_millis(50));
                killed_new += 1;
            }
        }
        // Both kinds of round happen.
        assert!(killed_new > 50 && killed_new < 150, "{killed_new}");
        assert_eq!(churn_round(&mut rng, 2, 0, &k), None);
        let fixed = knobs(json!({"append_ms": 10}));
        assert_eq!(
            churn_round(&mut rng, 3, 0, &fixed).unwrap().append,
            Duration::from_millis(10)
        );
        // The same seed, the same rounds.
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..5)
                .map(|_| churn_round(&mut rng, 5, 0, &k).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn vote_sides_hold_the_leader_in_a_minority_and_leave_a_majority_to_vote() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let (held, voters) = vote_sides(&mut rng, 5, 4).unwrap();
            assert_eq!(held.len(), 2);
            assert!(held.contains(&4));
            assert_eq!(voters.len(), 3);
            assert!(voters.iter().all(|v| !held.contains(v)));
        }
        assert_eq!(vote_sides(&mut rng, 3, 0).unwrap(), (vec![0], vec![1, 2]));
        assert_eq!(vote_sides(&mut rng, 2, 0), None);
    }

    #[test]
    fn figure8_sides_leave_a_quorum_apart_from_the_leader() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for n in 3..=7 {
            for _ in 0..20 {
                let (minority, majority) = figure8_sides(&mut rng, n, 1).unwrap();
                assert!(minority.contains(&1) && !majority.contains(&1));
                assert_eq!(majority.len(), n / 2 + 1, "{n}");
                assert_eq!(minority.len() + majority.len(), n);
                assert!(minority.iter().all(|m| !majority.contains(m)));
            }
        }
        assert_eq!(figure8_sides(&mut rng, 2, 0), None);
        // The voters-to-be: the majority but one, where the rest keep a quorum.
        for _ in 0..20 {
            let lag = figure8_laggers(&mut rng, 5, &[0, 2, 4]).unwrap();
            assert_eq!(lag.len(), 2);
            assert!(lag.iter().all(|i| [0, 2, 4].contains(i)));
        }
        assert_eq!(figure8_laggers(&mut rng, 3, &[1, 2]).unwrap().len(), 1);
        assert_eq!(figure8_laggers(&mut rng, 4, &[1, 2, 3]), None);
        assert_eq!(lag_target(100, 256), 354);
        assert_eq!(lag_target(100, 2), 101);
        assert_eq!(lag_target(100, 1), 101);
        assert_eq!(figure8_sides(&mut rng, 5, 5), None);
        let k = knobs(json!(null));
        assert_eq!(k.delay, DEFAULT_FIGURE8_DELAY);
    }

    #[test]
    fn stale_sides_give_each_leader_a_quorum_sharing_only_the_bridges() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (n, bridges) in [(3, 1), (4, 2), (5, 1), (6, 2), (7, 1)] {
            for _ in 0..20 {
                let (old, new) = (n - 1, 0);
                let s = stale_sides(&mut rng, n, old, new).unwrap();
                let quorum = n / 2 + 1;
                assert_eq!(s.bridges.len(), bridges, "{n}: {s:?}");
                assert_eq!(s.old_side.len() + s.bridges.len(), quorum, "{n}: {s:?}");
                assert_eq!(s.new_side.len() + s.bridges.len(), quorum, "{n}: {s:?}");
                assert!(s.old_side.contains(&old) && s.new_side.contains(&new));
                let mut every: Vec<usize> = [&s.old_side, &s.new_side, &s.bridges]
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect();
                every.sort_unstable();
                assert_eq!(every, (0..n).collect::<Vec<_>>(), "each node once");
            }
        }
        assert_eq!(stale_sides(&mut rng, 2, 0, 1), None);
        assert_eq!(stale_sides(&mut rng, 5, 1, 1), None);
        assert_eq!(stale_sides(&mut rng, 5, 0, 5), None);
    }

    #[test]
    fn a_vote_is_a_later_term_with_a_vote_for_another_node() {
        let view = |role: &str, term, vote| NodeView {
            role: role.into(),
            term,
            vote,
            leader: None,
            commit: 0,
            last_index: 0,
        };
        assert_eq!(
            granted_vote(&view("follower", 6, Some(3)), 1, 5, true),
            Some(Some(3))
        );
        // Its own vote (a candidate), an old term, a leader: no.
        assert_eq!(
            granted_vote(&view("candidate", 6, Some(1)), 1, 5, true),
            None
        );
        assert_eq!(
            granted_vote(&view("follower", 5, Some(3)), 1, 5, true),
            None
        );
        assert_eq!(granted_vote(&view("leader", 6, Some(3)), 1, 5, true), None);
        // No vote reported: only where votes are never reported.
        assert_eq!(granted_vote(&view("follower", 6, None), 1, 5, true), None);
        assert_eq!(
            granted_vote(&view("follower", 6, None), 1, 5, false),
            Some(None)
        );
    }

    #[test]
    fn flap_waits_stay_around_the_period() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let period = Duration::from_millis(300);
        let waits: Vec<Duration> = (0..500).map(|_| flap_wait(&mut rng, period)).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= period / 2 && *w < period * 3 / 2)
        );
        let mean = waits.iter().sum::<Duration>() / 500;
        assert!(mean > Duration::from_millis(270) && mean < Duration::from_millis(330));
    }
}
