//! End-to-end benchmark of the Elle checker as `faultline check FILE` runs it on a
//! list-append history: reading the JSONL file into the compact form
//! ([`TxnHistory::read_list_append`]) and checking it ([`Elle::check_compact`]).
//!
//! `cargo bench -p faultline-checker --bench elle_file` writes seeded histories
//! (`elle::generate`, seed 42, 20 processes) of 100,000 and 1,000,000 transactions to
//! `$TMPDIR/faultline-elle-file-seed42-N.jsonl` (kept and reused; `-- 10000000` writes
//! and measures 10M, a 3 GB file, streamed as it is generated), then measures each
//! in a fresh child process, so that its peak RSS (VmHWM) is the read and the check
//! alone: once with every core, once with one (`RAYON_NUM_THREADS=1`). Pass sizes to
//! run only those, e.g. `-- 1000000`; `ELLE_THREADS=1` runs only the one-core row;
//! `-- --edn` writes and reads the same histories as Jepsen's EDN
//! ([`TxnHistory::read_list_append_edn`]).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use faultline_checker::CheckOptions;
use faultline_checker::checkers::Elle;
use faultline_checker::elle::ElleOptions;
use faultline_checker::elle::generate::{GenerateOptions, generate_each};
use faultline_checker::history::edn::to_edn;
use faultline_checker::history::{HistoryWriter, ReadLimits, TxnHistory};

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

fn fail(message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}

/// The history file of `txns` transactions, as JSONL or (`edn`) as Jepsen's EDN,
/// written if it is not there yet.
fn history_file(txns: usize, edn: bool) -> PathBuf {
    let extension = if edn { "edn" } else { "jsonl" };
    let path = std::env::temp_dir().join(format!("faultline-elle-file-seed42-{txns}.{extension}"));
    if path.exists() {
        return path;
    }
    let partial = path.with_extension("partial");
    let written = (|| -> std::io::Result<()> {
        let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial)?);
        let options = GenerateOptions {
            seed: 42,
            txns,
            processes: 20,
            ..GenerateOptions::default()
        };
        // Streamed: a history of 10M transactions is never held.
        let mut written = Ok(());
        generate_each(&options, &mut |op| {
            if written.is_ok() {
                written = if edn {
                    writeln!(file, "{}", to_edn(&op))
                } else {
                    HistoryWriter::new(&mut file).write(&op)
                };
            }
        });
        written?;
        file.flush()?;
        drop(file);
        std::fs::rename(&partial, &path)
    })();
    if let Err(e) = written {
        fail(format!("cannot write {}: {e}", partial.display()));
    }
    path
}

/// The child: reads and checks `path`, prints one line of figures.
fn measure(path: &Path) {
    let cpu = cpu_seconds().unwrap_or(f64::NAN);
    let started = Instant::now();
    let edn = path.extension().is_some_and(|e| e == "edn");
    let history = if edn {
        TxnHistory::read_list_append_edn(path, &ReadLimits::default())
    } else {
        TxnHistory::read_list_append(path, &ReadLimits::default())
    }
    .unwrap_or_else(|e| fail(format!("{}: not read compactly: {e}", path.display())));
    let read = started.elapsed();
    let checked = Elle::new(ElleOptions::default())
        .check_compact(&history, &CheckOptions::default())
        .unwrap_or_else(|e| fail(format!("check failed: {e}")));
    let total = started.elapsed();
    let cpu = cpu_seconds().unwrap_or(f64::NAN) - cpu;
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    println!(
        "{:>10} {:>8.0} {:>8.3}s {:>8.3}s {:>8.3}s {:>8.2}s {:>10.0} {:>9.0} {:>7}",
        history.txn_count(),
        bytes as f64 / (1 << 20) as f64,
        read.as_secs_f64(),
        (total - read).as_secs_f64(),
        total.as_secs_f64(),
        cpu,
        history.heap_bytes() as f64 / history.txn_count().max(1) as f64,
        peak_rss_mib().unwrap_or(f64::NAN),
        checked.verdict.valid.word()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--measure") {
        let path = args
            .get(at + 1)
            .unwrap_or_else(|| fail("--measure needs a file".into()));
        measure(Path::new(path));
        return;
    }
    let sizes: Vec<usize> = args
        .iter()
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let threads: Vec<Option<&str>> = match std::env::var("ELLE_THREADS").ok().as_deref() {
        Some("1") => vec![Some("1")],
        _ => vec![None, Some("1")],
    };
    let me = std::env::current_exe().unwrap_or_else(|e| fail(format!("no executable: {e}")));
    println!(
        "{:>7} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}",
        "cores", "txns", "file MiB", "read", "check", "total", "cpu", "B/txn", "peak MiB", "valid"
    );
    let edn = args.iter().any(|a| a == "--edn");
    for txns in sizes {
        let path = history_file(txns, edn);
        for threads in &threads {
            let mut child = Command::new(&me);
            child.arg("--measure").arg(&path);
            if let Some(n) = threads {
                child.env("RAYON_NUM_THREADS", n);
            }
            let cores = threads.map_or("all".to_string(), str::to_string);
            print!("{cores:>7} ");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            let status = child
                .status()
                .unwrap_or_else(|e| fail(format!("cannot run {}: {e}", me.display())));
            if !status.success() {
                fail(format!("the measurement of {} failed", path.display()));
            }
        }
    }
}
