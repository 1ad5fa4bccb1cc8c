//! The [`Elections`] capability: what each node says of its consensus state (role, term,
//! vote) and how fast the database elects, for nemeses that aim at elections (the
//! scenario nemeses: kill a node right after it voted, churn the leader on the
//! database's own election timing).

use std::time::Duration;

use super::Node;

/// One node's consensus state, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Its role: `leader`, `follower`, `candidate`, `pre-candidate`.
    pub role: String,
    /// Its term (Multi-Paxos: its promised ballot, packed into one number).
    pub term: u64,
    /// The node it voted for in `term`, if it reports votes and voted.
    pub vote: Option<u64>,
    /// The leader it believes in.
    pub leader: Option<u64>,
    /// Its commit index.
    pub commit: u64,
    /// Its last log index.
    pub last_index: u64,
}

impl NodeView {
    /// Whether the node considers itself leader.
    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }
}

/// How fast a database's nodes elect: its logical clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTiming {
    /// One tick.
    pub tick: Duration,
    /// The shortest election timeout, in ticks (each timeout is drawn from
    /// `[election_ticks, 2 × election_ticks)`).
    pub election_ticks: u32,
    /// A leader's heartbeat interval, in ticks.
    pub heartbeat_ticks: u32,
    /// How many times its election timeout a node waits before standing for a shard
    /// whose leader prefers another node: 2 for faultline-kv with `--shards` above 1
    /// (each shard's preferred node is usually elected first), else 1.
    pub non_preferred_timeout_factor: u32,
}

impl ElectionTiming {
    /// faultline-kv's defaults (`--tick-ms 10 --election-ticks 30 --heartbeat-ticks 5`).
    pub const KV_DEFAULT: ElectionTiming = ElectionTiming {
        tick: Duration::from_millis(10),
        election_ticks: 30,
        heartbeat_ticks: 5,
        non_preferred_timeout_factor: 1,
    };

    /// The shortest election timeout (a shard's preferred node's, when sharded).
    pub fn election_min(&self) -> Duration {
        self.tick.saturating_mul(self.election_ticks)
    }

    /// The longest election timeout (exclusive): twice the shortest, and twice that
    /// again for the nodes a shard's leader does not prefer (faultline-kv with
    /// `--shards` above 1), which elect when the preferred node cannot.
    pub fn election_max(&self) -> Duration {
        self.election_min()
            .saturating_mul(2)
            .saturating_mul(self.non_preferred_timeout_factor.max(1))
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.tick.saturating_mul(self.heartbeat_ticks)
    }

    /// faultline-kv's timing under the extra flags `args` (`--tick-ms N`,
    /// `--election-ticks N`, `--heartbeat-ticks N`, and `--shards N`, whose non-preferred
    /// nodes wait twice as long when N is above 1; also as `--flag=N`); flags it does not
    /// know, or values that are no numbers, leave the defaults.
    pub fn from_kv_args<S: AsRef<str>>(args: &[S]) -> ElectionTiming {
        let mut timing = ElectionTiming::KV_DEFAULT;
        let mut args = args.iter().map(AsRef::as_ref);
        while let Some(arg) = args.next() {
            let (flag, value) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value)),
                None if matches!(
                    arg,
                    "--tick-ms" | "--election-ticks" | "--heartbeat-ticks" | "--shards"
                ) =>
                {
                    (arg, args.next())
                }
                None => continue,
            };
            let Some(n) = value.and_then(|v| v.parse::<u64>().ok()) else {
                continue;
            };
            let ticks = u32::try_from(n).unwrap_or(u32::MAX);
            match flag {
                "--tick-ms" => timing.tick = Duration::from_millis(n.max(1)),
                "--election-ticks" => timing.election_ticks = ticks,
                "--heartbeat-ticks" => timing.heartbeat_ticks = ticks,
                "--shards" => timing.non_preferred_timeout_factor = if n > 1 { 2 } else { 1 },
                _ => {}
            }
        }
        timing
    }
}

/// Election introspection: each node's role, term and vote, and the database's election
/// timing.
pub trait Elections: Send + Sync {
    /// What `node` says of its consensus state (bounded: a short time-out). An error
    /// (unreachable, stopped, a bad answer) says why. Must not change anything.
    fn view(&self, node: &Node) -> Result<NodeView, String>;

    /// How fast the nodes elect (as configured for this run).
    fn timing(&self) -> ElectionTiming;

    /// The most log entries one replication message to a follower carries, when the
    /// database has such a limit and knows it (faultline-kv: `--max-append-entries`): a
    /// follower that lags by more catches up over several messages, the first of which
    /// may hold entries of earlier terms only (the `figure8` scenario plans with it).
    fn max_append_entries(&self) -> Option<u64> {
        None
    }
}

/// faultline-kv's `--max-append-entries` among the extra flags `args` (also as
/// `--max-append-entries=N`); its default, 256, when absent or no number.
pub fn kv_max_append_entries<S: AsRef<str>>(args: &[S]) -> u64 {
    const FLAG: &str = "--max-append-entries";
    let mut value = 256;
    let mut args = args.iter().map(AsRef::as_ref);
    while let Some(arg) = args.next() {
        let given = match arg.split_once('=') {
            Some((flag, v)) if flag == FLAG => Some(v),
            None if arg == FLAG => args.next(),
            _ => continue,
        };
        if let Some(n) = given.and_then(|v| v.parse::<u64>().ok()).filter(|n| *n > 0) {
            value = n;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_flags_set_the_timing_and_the_rest_keeps_the_defaults() {
        let t = ElectionTiming::from_kv_args(&[
            "--bug",
            "forget-vote",
            "--tick-ms",
            "2",
            "--election-ticks=20",
        ]);
        assert_eq!(t.tick, Duration::from_millis(2));
        assert_eq!(t.election_ticks, 20);
        assert_eq!(t.heartbeat_ticks, 5);
        assert_eq!(t.election_min(), Duration::from_millis(40));
        assert_eq!(t.election_max(), Duration::from_millis(80));
        assert_eq!(t.heartbeat(), Duration::from_millis(10));
        let none: [&str; 0] = [];
        assert_eq!(
            ElectionTiming::from_kv_args(&none),
            ElectionTiming::KV_DEFAULT
        );
        assert_eq!(kv_max_append_entries(&none), 256);
        assert_eq!(kv_max_append_entries(&["--max-append-entries", "4"]), 4);
        assert_eq!(
            kv_max_append_entries(&["--tick-ms", "2", "--max-append-entries=9"]),
            9
        );
        assert_eq!(kv_max_append_entries(&["--max-append-entries", "x"]), 256);
        // A flag without a number keeps the default.
        assert_eq!(
            ElectionTiming::from_kv_args(&["--tick-ms", "fast"]).tick,
            Duration::from_millis(10)
        );
    }

    #[test]
    fn with_shards_the_longest_election_timeout_doubles() {
        let unsharded = ElectionTiming::from_kv_args(&["--shards", "1", "--tick-ms", "2"]);
        assert_eq!(unsharded.non_preferred_timeout_factor, 1);
        assert_eq!(unsharded.election_max(), Duration::from_millis(120));
        let sharded = ElectionTiming::from_kv_args(&["--tick-ms", "2", "--shards", "3"]);
        assert_eq!(sharded.non_preferred_timeout_factor, 2);
        // The preferred node's timeout is unchanged; the others' runs to 4 × the shortest.
        assert_eq!(sharded.election_min(), Duration::from_millis(60));
        assert_eq!(sharded.election_max(), Duration::from_millis(240));
        assert_eq!(
            ElectionTiming::from_kv_args(&["--shards=4"]).election_max(),
            ElectionTiming::KV_DEFAULT.election_max() * 2
        );
    }
}
