//! The packet delayer: a userspace program (`faultline-delayer`) that takes packets
//! from an NFQUEUE, holds each for a delay ± jitter and then accepts it, since `tc
//! netem` does not exist on the project's kernels. Jitter reorders packets naturally:
//! a packet drawn a short delay overtakes one drawn a long delay.
//!
//! The nft rule that feeds it is `queue num N bypass`, so packets flow undelayed
//! whenever no delayer is bound (it died, or it is not up yet). [`Delay`] is the pure
//! part (when is a packet due), [`run`] the loop around the queue.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The NFQUEUE number the packet nemesis uses (in each node's own network namespace).
pub const QUEUE: u16 = 7207;

/// How a delay's jitter is distributed around the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Uniform in `delay - jitter ..= delay + jitter`.
    Uniform,
    /// Normal with mean `delay` and standard deviation `jitter`.
    Normal,
}

impl Distribution {
    /// Its name on command lines and in nemesis values (`uniform`, `normal`).
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
        }
    }

    /// The distribution named `name`.
    pub fn from_name(name: &str) -> Option<Distribution> {
        match name {
            "uniform" => Some(Distribution::Uniform),
            "normal" => Some(Distribution::Normal),
            _ => None,
        }
    }
}

/// How long each packet is held: `delay` ± `jitter` drawn from `distribution` with a
/// seeded RNG, never below zero.
#[derive(Debug, Clone)]
pub struct Delay {
    delay: Duration,
    jitter: Duration,
    distribution: Distribution,
    rng: ChaCha8Rng,
}

impl Delay {
    /// A delay drawing from a ChaCha8 RNG seeded with `seed`.
    pub fn new(delay: Duration, jitter: Duration, distribution: Distribution, seed: u64) -> Delay {
        Delay {
            delay,
            jitter,
            distribution,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// How long to hold the next packet.
    pub fn next_hold(&mut self) -> Duration {
        let mean = self.delay.as_secs_f64();
        let jitter = self.jitter.as_secs_f64();
        if jitter <= 0.0 {
            return self.delay;
        }
        let held = match self.distribution {
            Distribution::Uniform => mean + self.rng.random_range(-jitter..=jitter),
            Distribution::Normal => {
                // Box-Muller.
                let u1: f64 = 1.0 - self.rng.random::<f64>();
                let u2: f64 = self.rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                mean + jitter * z
            }
        };
        Duration::from_secs_f64(held.max(0.0))
    }
}

/// Holds packets from NFQUEUE `queue` (in the calling process's network namespace)
/// for `delay`, accepting each when due, until `stop` is set (SIGTERM or SIGINT in the
/// binary); then accepts everything still held and returns. Prints one line when bound.
///
/// Errors: the queue cannot be opened or bound (not root, no `nfnetlink_queue` in the
/// kernel, another program bound to it), or the kernel refuses a verdict.
pub fn run(queue: u16, mut delay: Delay, stop: Arc<AtomicBool>) -> io::Result<()> {
    let mut q = nfq::Queue::open()?;
    q.bind(queue)?;
    // Metadata only: the verdict does not change the packet, and held messages keep
    // their receive buffer alive.
    q.set_copy_range(queue, 0)?;
    q.set_queue_max_len(queue, 65_536)?;
    q.set_fail_open(queue, true)?;
    q.set_nonblocking(true);
    println!(
        "faultline-delayer: bound queue {queue}: delay {:?} jitter {:?} {}",
        delay.delay,
        delay.jitter,
        delay.distribution.name()
    );
    // Due time → packets due then, in arrival order.
    let mut held: BTreeMap<Instant, VecDeque<nfq::Message>> = BTreeMap::new();
    let mut count: u64 = 0;
    let mut gone: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        loop {
            match q.recv() {
                Ok(msg) => {
                    let due = Instant::now() + delay.next_hold();
                    held.entry(due).or_default().push_back(msg);
                    count += 1;
                }
                // The kernel's answer to an earlier verdict for a packet it dropped
                // meanwhile (see `accept`): nothing to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => gone += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        while let Some(entry) = held.first_entry() {
            if *entry.key() > now {
                break;
            }
            for msg in entry.remove() {
                gone += accept(&mut q, msg)?;
            }
        }
        let idle = held
            .keys()
            .next()
            .map_or(Duration::from_millis(1), |due| {
                due.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(1));
        std::thread::sleep(idle);
    }
    for (_, msgs) in std::mem::take(&mut held) {
        for msg in msgs {
            gone += accept(&mut q, msg)?;
        }
    }
    let _ = q.unbind(queue);
    println!("faultline-delayer: stopped after {count} packets ({gone} gone before their time)");
    Ok(())
}

/// Lets `msg` through; 1 if the kernel no longer held it (`ENOENT`: it dropped the
/// packet meanwhile, e.g. because the process it was for was killed — not an error:
/// the delayer goes on), else 0. The kernel may also report that later, as an error
/// read from the queue.
fn accept(q: &mut nfq::Queue, mut msg: nfq::Message) -> io::Result<u64> {
    msg.set_verdict(nfq::Verdict::Accept);
    match q.verdict(msg) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(1),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(distribution: Distribution, jitter_ms: u64, seed: u64) -> Vec<f64> {
        let mut d = Delay::new(
            Duration::from_millis(50),
            Duration::from_millis(jitter_ms),
            distribution,
            seed,
        );
        (0..10_000)
            .map(|_| d.next_hold().as_secs_f64() * 1000.0)
            .collect()
    }

    #[test]
    fn holds_center_on_the_delay_and_stay_in_range() {
        assert!(
            holds(Distribution::Uniform, 0, 1)
                .iter()
                .all(|h| *h == 50.0)
        );
        let u = holds(Distribution::Uniform, 20, 1);
        assert!(u.iter().all(|h| (30.0..=70.0).contains(h)));
        let mean = u.iter().sum::<f64>() / u.len() as f64;
        assert!((mean - 50.0).abs() < 1.0, "{mean}");
        let n = holds(Distribution::Normal, 10, 2);
        assert!(n.iter().all(|h| *h >= 0.0));
        let mean = n.iter().sum::<f64>() / n.len() as f64;
        let sd = (n.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / n.len() as f64).sqrt();
        assert!(
            (mean - 50.0).abs() < 1.0 && (sd - 10.0).abs() < 1.0,
            "{mean} {sd}"
        );
        // Never negative, even with a jitter larger than the delay.
        assert!(
            holds(Distribution::Normal, 200, 3)
                .iter()
                .all(|h| *h >= 0.0)
        );
    }

    #[test]
    fn holds_replay_from_the_seed() {
        assert_eq!(
            holds(Distribution::Normal, 10, 7),
            holds(Distribution::Normal, 10, 7)
        );
        assert_ne!(
            holds(Distribution::Uniform, 10, 7),
            holds(Distribution::Uniform, 10, 8)
        );
        assert_eq!(
            Distribution::from_name("normal"),
            Some(Distribution::Normal)
        );
        assert_eq!(Distribution::from_name("pareto"), None);
    }
}
