//! `faultline suite --jobs J`: a suite's runs, at most J at once on this machine. Runs
//! start in the file's order (the next one as soon as a slot frees); their outcomes come
//! back in the file's order too, whatever order they finish in, so the summary, the
//! JUnit file and the exit code are those of `--jobs 1`.
//!
//! Runs at once do not interfere: each has its own run id, subnet, namespaces, bridge
//! and nft tables (reserved machine-wide: `faultline_clusters::reserve`), its own
//! directory (created exclusively), and nodes listening on their own namespaces'
//! addresses; the controller opens no listening port. Each run works on its own thread,
//! whose printed lines carry the run's label (`crate::output::labelled`). Ctrl-C tears
//! down every run that has hosts (each registers its registry as soon as they exist).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// The stack of a run's thread: the main thread's usual 8 MiB (checkers recurse).
const STACK: usize = 8 << 20;

/// Runs `work(i, &items[i])` for every item, at most `jobs` at once, starting them in
/// order; returns the results in the items' order. With `jobs` 1 everything runs on the
/// calling thread, one after another. A panic in `work` is propagated once every
/// started item has finished.
pub(super) fn run_all<T, R, F>(items: &[T], jobs: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &T) -> R + Sync,
{
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        return items.iter().enumerate().map(|(i, t)| work(i, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let worker = || {
        loop {
            // Taken in order: run i starts before run i + 1.
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(i) else { break };
            let result = work(i, item);
            results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
        }
    };
    thread::scope(|s| {
        for n in 1..jobs {
            let spawned = thread::Builder::new()
                .name(format!("faultline-job-{n}"))
                .stack_size(STACK)
                .spawn_scoped(s, worker);
            if let Err(e) = spawned {
                // Fewer slots, not no run: the calling thread works too.
                eprintln!("faultline suite: cannot start job {n} of {jobs}: {e}");
            }
        }
        worker();
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `n` items of `jobs` at once, each sleeping `ms(i)`; returns the results, the
    /// order of starts and the most that ran at once.
    fn trace(
        n: usize,
        jobs: usize,
        ms: impl Fn(usize) -> u64 + Sync,
    ) -> (Vec<usize>, Vec<usize>, usize) {
        let items: Vec<usize> = (0..n).collect();
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let starts = Mutex::new(Vec::new());
        let results = run_all(&items, jobs, |i, item| {
            assert_eq!(i, *item);
            starts.lock().unwrap().push(i);
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(ms(i)));
            running.fetch_sub(1, Ordering::SeqCst);
            item * 10
        });
        (results, starts.into_inner().unwrap(), most.into_inner())
    }

    #[test]
    fn at_most_j_run_at_once_and_they_start_in_order() {
        for jobs in [1, 2, 3] {
            let (results, starts, most) = trace(7, jobs, |_| 30);
            assert_eq!(
                results,
                (0..7).map(|i| i * 10).collect::<Vec<_>>(),
                "J={jobs}"
            );
            assert_eq!(starts, (0..7).collect::<Vec<_>>(), "J={jobs}");
            assert_eq!(
                most, jobs,
                "J={jobs}: the slots are used and never exceeded"
            );
        }
    }

    #[test]
    fn outcomes_keep_the_file_order_whatever_order_runs_finish_in() {
        // The first run is the longest: the others finish before it.
        let (results, _, most) = trace(5, 2, |i| if i == 0 { 150 } else { 10 });
        assert_eq!(results, vec![0, 10, 20, 30, 40]);
        assert_eq!(most, 2);
    }

    #[test]
    fn more_jobs_than_runs_and_no_runs_at_all() {
        let (results, _, most) = trace(2, 8, |_| 30);
        assert_eq!((results, most), (vec![0, 10], 2));
        let (results, starts, most) = trace(0, 4, |_| 0);
        assert!(results.is_empty() && starts.is_empty());
        assert_eq!(most, 0);
    }

    #[test]
    fn with_one_job_runs_stay_on_the_calling_thread() {
        let me = thread::current().id();
        let on = run_all(&[1, 2, 3], 1, |_, _| thread::current().id());
        assert!(on.iter().all(|id| *id == me));
    }
}
