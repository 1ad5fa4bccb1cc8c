//! The hunt's search space: a candidate run is a seed, a fault mix and a mean time
//! between fault changes. Fresh candidates are drawn at random; kept ones (they made
//! the nodes do something new) are mutated: a new seed, and sometimes a fault added or
//! dropped or the pace changed.

use std::time::Duration;

use faultline_nemesis::Fault;
use rand::{Rng, RngExt};

/// The shortest mean time between fault changes the hunt tries.
const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// The longest.
const MAX_INTERVAL: Duration = Duration::from_secs(5);

/// One run to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The run's seed (workload and nemesis choices).
    pub seed: u64,
    /// The faults, never empty when the pool is not.
    pub faults: Vec<Fault>,
    /// The mean time between fault changes.
    pub interval: Duration,
}

impl Candidate {
    /// A random candidate: a random non-empty subset of `pool` and a random pace.
    pub fn random(pool: &[Fault], rng: &mut impl Rng) -> Candidate {
        let mut faults: Vec<Fault> = pool
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.5))
            .collect();
        if faults.is_empty()
            && let Some(one) = pick(pool, rng)
        {
            faults.push(one);
        }
        Candidate {
            seed: rng.random(),
            faults,
            interval: random_interval(rng),
        }
    }

    /// A neighbour of this candidate: always a new seed; with probability ½ one fault
    /// of `pool` toggled (never leaving none), with probability ⅓ the pace halved or
    /// doubled (within 0.2–5 s).
    pub fn mutate(&self, pool: &[Fault], rng: &mut impl Rng) -> Candidate {
        let mut next = self.clone();
        next.seed = rng.random();
        if rng.random_bool(0.5)
            && let Some(fault) = pick(pool, rng)
        {
            if let Some(at) = next.faults.iter().position(|f| *f == fault) {
                if next.faults.len() > 1 {
                    next.faults.remove(at);
                }
            } else {
                next.faults.push(fault);
                next.faults.sort();
            }
        }
        if rng.random_bool(1.0 / 3.0) {
            let scaled = if rng.random_bool(0.5) {
                next.interval / 2
            } else {
                next.interval * 2
            };
            next.interval = scaled.clamp(MIN_INTERVAL, MAX_INTERVAL);
        }
        next
    }

    /// The faults as a `--nemesis` value, e.g. `partition,kill`.
    pub fn faults_word(&self) -> String {
        let names: Vec<&str> = self.faults.iter().map(|f| f.name()).collect();
        names.join(",")
    }
}

/// A random element of `pool`.
fn pick(pool: &[Fault], rng: &mut impl Rng) -> Option<Fault> {
    if pool.is_empty() {
        None
    } else {
        Some(pool[rng.random_range(0..pool.len())])
    }
}

/// A pace between 0.2 and 5 s, log-uniformly (as many fast paces as slow ones).
fn random_interval(rng: &mut impl Rng) -> Duration {
    let (low, high) = (
        MIN_INTERVAL.as_secs_f64().ln(),
        MAX_INTERVAL.as_secs_f64().ln(),
    );
    Duration::from_secs_f64(rng.random_range(low..high).exp()).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const POOL: [Fault; 3] = [Fault::Partition, Fault::Kill, Fault::Clock];

    #[test]
    fn random_candidates_use_the_pool_and_replay_from_the_seed() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let one = Candidate::random(&POOL, &mut a);
            assert_eq!(one, Candidate::random(&POOL, &mut b));
            assert!(!one.faults.is_empty());
            assert!(one.faults.iter().all(|f| POOL.contains(f)));
            assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(&one.interval));
        }
    }

    #[test]
    fn mutants_change_the_seed_and_stay_in_bounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut current = Candidate::random(&POOL, &mut rng);
        let mut mixes = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let next = current.mutate(&POOL, &mut rng);
            assert_ne!(next.seed, current.seed);
            assert!(!next.faults.is_empty());
            assert!(next.faults.iter().all(|f| POOL.contains(f)));
            assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(&next.interval));
            mixes.insert(next.faults_word());
            current = next;
        }
        assert!(mixes.len() >= 4, "mutation explores fault mixes: {mixes:?}");
    }
}
