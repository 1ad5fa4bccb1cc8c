//! What a generator knows about the world: the time, the processes, and the seeded RNG.

use faultline_checker::history::Process;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The state of the world a generator sees when asked for an operation or told of an
/// event.
///
/// Processes follow the history spec and Jepsen: client processes are numbered from 0,
/// the nemesis is [`Process::Nemesis`]. A client process whose operation ends in `info`
/// is retired and replaced by process `p + concurrency`, so `p % concurrency` is a
/// stable *thread* (worker slot) across crashes: see [`Context::thread`].
///
/// Combinators that route work to a subset of processes hand their children a
/// *restricted* context ([`Context::restrict`]) in which [`Context::all_processes`] and
/// [`Context::free_processes`] list only that subset; time, concurrency and the RNG are
/// shared.
///
/// The methods under "for drivers" change the world; generators must not call them.
#[derive(Debug, Clone)]
pub struct Context {
    time: u64,
    concurrency: usize,
    all: Vec<Process>,
    free: Vec<Process>,
    rng: ChaCha8Rng,
    /// Spare vectors for [`Context::restrict`], so that routing an operation through
    /// nested combinators does not allocate.
    spare: Vec<Vec<Process>>,
}

impl Context {
    /// A context at time 0 with `concurrency` free client processes `0..concurrency`,
    /// plus the nemesis when `with_nemesis`, and an RNG seeded with `seed`.
    pub fn new(seed: u64, concurrency: usize, with_nemesis: bool) -> Context {
        let mut all: Vec<Process> = (0..concurrency as u64).map(Process::Client).collect();
        if with_nemesis {
            all.push(Process::Nemesis);
        }
        Context {
            time: 0,
            concurrency,
            free: all.clone(),
            all,
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: Vec::new(),
        }
    }

    /// Nanoseconds since the test started.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// The number of client threads in the whole test (unaffected by restriction).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Every process this generator may use, busy or free, in order.
    pub fn all_processes(&self) -> &[Process] {
        &self.all
    }

    /// The processes that are free to start an operation now, in order.
    pub fn free_processes(&self) -> &[Process] {
        &self.free
    }

    /// Whether `process` is free in this context.
    pub fn is_free(&self, process: Process) -> bool {
        self.free.binary_search(&process).is_ok()
    }

    /// The stable thread of a client process (`p % concurrency`); `None` for the nemesis.
    pub fn thread(&self, process: Process) -> Option<usize> {
        match process {
            Process::Client(p) if self.concurrency > 0 => {
                Some((p % self.concurrency as u64) as usize)
            }
            _ => None,
        }
    }

    /// A free process chosen uniformly at random (fair: no process starves), or `None`
    /// when every process is busy.
    pub fn some_free_process(&mut self) -> Option<Process> {
        match self.free.len() {
            0 => None,
            1 => Some(self.free[0]),
            n => Some(self.free[self.rng.random_range(0..n)]),
        }
    }

    /// The seeded RNG. Every random choice a generator makes must come from here.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// A uniform random integer in `0..n` (0 when `n` is 0).
    pub fn random_below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// Runs `f` with a context restricted to the processes for which `keep` is true,
    /// then restores this context. Time and RNG state carry over.
    pub fn restrict<R>(
        &mut self,
        keep: impl Fn(Process) -> bool,
        f: impl FnOnce(&mut Context) -> R,
    ) -> R {
        let mut all = self.spare.pop().unwrap_or_default();
        all.clear();
        all.extend(self.all.iter().copied().filter(|p| keep(*p)));
        let mut free = self.spare.pop().unwrap_or_default();
        free.clear();
        free.extend(self.free.iter().copied().filter(|p| keep(*p)));
        let saved_all = std::mem::replace(&mut self.all, all);
        let saved_free = std::mem::replace(&mut self.free, free);
        let result = f(self);
        let all = std::mem::replace(&mut self.all, saved_all);
        let free = std::mem::replace(&mut self.free, saved_free);
        self.spare.extend([all, free]);
        result
    }

    /// For drivers: advances the clock. Time never goes backwards; an earlier `time` is
    /// ignored.
    pub fn set_time(&mut self, time: u64) {
        self.time = self.time.max(time);
    }

    /// For drivers: `process` began an operation.
    pub fn set_busy(&mut self, process: Process) {
        if let Ok(i) = self.free.binary_search(&process) {
            self.free.remove(i);
        }
    }

    /// For drivers: `process` completed its operation and may start another.
    pub fn set_free(&mut self, process: Process) {
        if self.all.binary_search(&process).is_ok() {
            if let Err(i) = self.free.binary_search(&process) {
                self.free.insert(i, process);
            }
        }
    }

    /// For drivers: client `process` crashed (its operation ended in `info`). Replaces it
    /// by the fresh process `p + concurrency`, free, and returns that. The nemesis is
    /// never retired: it is marked free and returned as is.
    pub fn retire(&mut self, process: Process) -> Process {
        let fresh = match process {
            Process::Client(p) => Process::Client(p + self.concurrency as u64),
            Process::Nemesis => Process::Nemesis,
        };
        self.set_busy(process);
        if let Ok(i) = self.all.binary_search(&process) {
            self.all.remove(i);
        }
        if let Err(i) = self.all.binary_search(&fresh) {
            self.all.insert(i, fresh);
        }
        self.set_free(fresh);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_context_lists_clients_then_nemesis_all_free() {
        let ctx = Context::new(1, 3, true);
        let expected = [
            Process::Client(0),
            Process::Client(1),
            Process::Client(2),
            Process::Nemesis,
        ];
        assert_eq!(ctx.all_processes(), expected);
        assert_eq!(ctx.free_processes(), expected);
        assert_eq!(ctx.concurrency(), 3);
    }

    #[test]
    fn retire_replaces_process_keeping_its_thread() {
        let mut ctx = Context::new(1, 3, false);
        ctx.set_busy(Process::Client(1));
        let fresh = ctx.retire(Process::Client(1));
        assert_eq!(fresh, Process::Client(4));
        assert_eq!(ctx.thread(fresh), Some(1));
        assert_eq!(
            ctx.all_processes(),
            [Process::Client(0), Process::Client(2), Process::Client(4)]
        );
        assert!(ctx.is_free(fresh));
        assert!(!ctx.is_free(Process::Client(1)));
    }

    #[test]
    fn restrict_filters_and_restores() {
        let mut ctx = Context::new(1, 2, true);
        ctx.set_busy(Process::Client(0));
        let seen = ctx.restrict(
            |p| p != Process::Nemesis,
            |c| (c.all_processes().to_vec(), c.free_processes().to_vec()),
        );
        assert_eq!(seen.0, [Process::Client(0), Process::Client(1)]);
        assert_eq!(seen.1, [Process::Client(1)]);
        assert_eq!(ctx.free_processes(), [Process::Client(1), Process::Nemesis]);
    }

    #[test]
    fn set_free_ignores_unknown_processes_and_time_is_monotonic() {
        let mut ctx = Context::new(1, 1, false);
        ctx.set_free(Process::Client(9));
        assert_eq!(ctx.free_processes(), [Process::Client(0)]);
        ctx.set_time(10);
        ctx.set_time(5);
        assert_eq!(ctx.time(), 10);
    }
}
