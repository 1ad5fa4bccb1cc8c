//! Progress while a run goes: on a terminal, a live line (indicatif) with elapsed and
//! remaining time, ops/s, ok/fail/info counts and the fault in place; otherwise (CI
//! logs) a plain line every 10 seconds.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use super::interpreter::Stats;

/// A running progress display; [`Progress::finish`] stops it.
pub struct Progress {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing progress of a run expected to last `planned`.
    pub fn start(stats: Arc<Stats>, planned: Duration) -> Progress {
        // A run among several at once (`suite --jobs`) prints plain, labelled lines:
        // one live bar per run would overwrite the others'.
        let label = crate::output::label();
        let terminal = std::io::stderr().is_terminal() && label.is_none();
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(planned.as_secs().max(1));
            let style =
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:20} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        let shown = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let every = if shown.is_some() {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(10)
            };
            let mut last = (started, 0u64);
            loop {
                tokio::time::sleep(every).await;
                let now = Instant::now();
                let done = stats.ok.load(Ordering::Relaxed)
                    + stats.fail.load(Ordering::Relaxed)
                    + stats.info.load(Ordering::Relaxed);
                let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                last = (now, done);
                let line = line(&stats, rate, started.elapsed(), planned);
                match &shown {
                    Some(bar) => {
                        bar.set_position(started.elapsed().as_secs());
                        bar.set_message(line);
                    }
                    None => crate::output::labelled(label.as_deref(), || {
                        crate::output::note!("faultline: {line}")
                    }),
                }
            }
        });
        Progress { task, bar }
    }

    /// Stops the display.
    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One status line.
fn line(stats: &Stats, rate: f64, elapsed: Duration, planned: Duration) -> String {
    let fault = stats
        .fault
        .lock()
        .map(|f| {
            if f.is_empty() {
                "none".to_string()
            } else {
                f.clone()
            }
        })
        .unwrap_or_default();
    let remaining = planned.saturating_sub(elapsed).as_secs();
    format!(
        "{}s elapsed, {}s left, {:.0} ops/s, ok {} fail {} info {}, fault: {}",
        elapsed.as_secs(),
        remaining,
        rate,
        stats.ok.load(Ordering::Relaxed),
        stats.fail.load(Ordering::Relaxed),
        stats.info.load(Ordering::Relaxed),
        fault
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_counts_and_the_fault() {
        let stats = Stats::default();
        stats.ok.store(7, Ordering::Relaxed);
        stats.info.store(2, Ordering::Relaxed);
        *stats.fault.lock().unwrap() = "start-partition majority".into();
        let text = line(
            &stats,
            12.4,
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        assert_eq!(
            text,
            "5s elapsed, 55s left, 12 ops/s, ok 7 fail 0 info 2, fault: start-partition majority"
        );
    }
}
