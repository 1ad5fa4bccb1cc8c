//! Benchmark of the Elle checker on generated list-append histories.
//!
//! `cargo bench -p faultline-checker --bench elle` checks 100,000 and 1,000,000
//! transactions (about 20 processes, Jepsen-style key rotation); pass sizes to run
//! only those, e.g. `-- 1000000`. Prints a table: generation time, check wall and
//! CPU time, throughput, peak resident memory (VmHWM) once the history is built
//! (before checking) and after the check. `ELLE_MAX_WRITES` and `ELLE_MAX_TXN_LEN`
//! override the generator's writes per key and micro-ops per transaction;
//! `ELLE_PLANT=1` plants one of every anomaly the generator knows; `ELLE_STALE=p`
//! makes the simulated store serve stale reads with probability `p` (a broken store).

use std::time::Instant;

use faultline_checker::elle::generate::{GenerateOptions, generate};
use faultline_checker::elle::{ElleOptions, check};
use faultline_checker::history::History;

/// User plus system CPU seconds of this process so far.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "{:>10} {:>8} {:>9} {:>9} {:>9} {:>10} {:>12} {:>12} {:>7}",
        "txns",
        "events",
        "generate",
        "check",
        "check cpu",
        "txns/s",
        "history MiB",
        "peak MiB",
        "valid"
    );
    for txns in sizes {
        let started = Instant::now();
        let defaults = GenerateOptions::default();
        let env = |name: &str, default: usize| -> usize {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let ops = generate(&GenerateOptions {
            seed: 42,
            txns,
            processes: 20,
            max_writes_per_key: env("ELLE_MAX_WRITES", defaults.max_writes_per_key),
            max_txn_len: env("ELLE_MAX_TXN_LEN", defaults.max_txn_len),
            plant: if env("ELLE_PLANT", 0) == 1 {
                faultline_checker::elle::generate::Plant::ALL.to_vec()
            } else {
                Vec::new()
            },
            stale_read_rate: std::env::var("ELLE_STALE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
            ..defaults
        });
        let history = match History::from_ops("generated", ops) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("generated history is invalid: {e}");
                std::process::exit(1);
            }
        };
        let generated = started.elapsed();
        // ELLE_REPEAT=n checks n-1 extra times first (for profiling).
        let repeat: usize = std::env::var("ELLE_REPEAT")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(1);
        for _ in 1..repeat {
            let _ = check(&history, &ElleOptions::default());
        }
        let before = peak_rss_mib().unwrap_or(f64::NAN);
        let cpu = cpu_seconds().unwrap_or(f64::NAN);
        let started = Instant::now();
        let verdict = match check(&history, &ElleOptions::default()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("check failed: {e}");
                std::process::exit(1);
            }
        };
        let checked = started.elapsed();
        let cpu = cpu_seconds().unwrap_or(f64::NAN) - cpu;
        println!(
            "{:>10} {:>8} {:>8.2}s {:>8.3}s {:>8.2}s {:>10.0} {:>12.0} {:>12.0} {:>7}",
            txns,
            history.len(),
            generated.as_secs_f64(),
            checked.as_secs_f64(),
            cpu,
            txns as f64 / checked.as_secs_f64(),
            before,
            peak_rss_mib().unwrap_or(f64::NAN),
            verdict.valid.word()
        );
    }
}
