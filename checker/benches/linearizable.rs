//! Linearizability checker benchmark: `cargo bench -p faultline-checker --bench linearizable`.
//!
//! Generates the histories of BENCHMARKS.md (seeded, so every run checks the same ones),
//! checks each in a child process (so peak memory is per history), and prints a table.
//! `-- --quick` runs fewer cases; `-- --families` runs issue 20's two families of
//! 20 seeds each instead.

use std::process::Command;
use std::time::{Duration, Instant};

use faultline_checker::History;
use faultline_checker::linearizable::{LinearizableOptions, check};
use faultline_checker::synth::{
    Object, SynthConfig, corrupt_with_swapped_reads, corrupt_with_unwritten_read, simulate,
};

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Valid,
    /// A read of a value never written (refuted without a search).
    Unwritten,
    /// Two reads of one process swapped (unique values only).
    Swapped,
    /// `Unwritten`, checked with the precheck off: what the search alone does.
    UnwrittenSearchOnly,
}

struct Case {
    name: String,
    config: SynthConfig,
    variant: Variant,
}

/// Issue 20's two families, 20 seeds each: one key, 50 processes, 5,000 operations,
/// 5 % crashed, values 0..10 or unique (`faultline gen --ops 5000 --processes 50
/// --crash-rate 0.05 --values 10 --seed S` writes the same histories).
fn families() -> Vec<Case> {
    let mut cases = Vec::new();
    for domain in [Some(10), None] {
        for seed in 1..=20 {
            cases.push(Case {
                name: format!(
                    "cas-register p=50 ops=5000 crashed=5% values={} seed={seed}",
                    domain.map_or("unique".to_string(), |d: u64| format!("0..{d}")),
                ),
                config: SynthConfig {
                    seed,
                    object: Object::CasRegister,
                    ops: 5000,
                    processes: 50,
                    keys: 0,
                    crash_rate: 0.05,
                    value_domain: domain,
                },
                variant: Variant::Valid,
            });
        }
    }
    cases
}

fn cases(quick: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    // Porcupine's hard family: one key, 20–50 processes, 2,000–5,000 ops, 5–8 % crashed.
    let shapes = [
        (20, 2000, 0.05, None),
        (30, 3000, 0.06, Some(5)),
        (50, 5000, 0.08, Some(10)),
        (40, 4000, 0.07, None),
        (50, 5000, 0.08, Some(5)),
        (20, 5000, 0.08, Some(10)),
        (50, 2000, 0.06, None),
        (30, 5000, 0.05, Some(5)),
        (50, 5000, 0.08, None),
    ];
    for (i, (processes, ops, crash, domain)) in shapes.into_iter().enumerate() {
        if quick && i % 3 != 0 {
            continue;
        }
        let variants = if domain.is_none() {
            vec![
                Variant::Valid,
                Variant::Unwritten,
                Variant::Swapped,
                Variant::UnwrittenSearchOnly,
            ]
        } else {
            vec![
                Variant::Valid,
                Variant::Unwritten,
                Variant::UnwrittenSearchOnly,
            ]
        };
        for variant in variants {
            cases.push(Case {
                name: format!(
                    "cas-register p={processes} ops={ops} crashed={:.0}% values={}{}",
                    crash * 100.0,
                    domain.map_or("unique".to_string(), |d: u64| format!("0..{d}")),
                    match variant {
                        Variant::Valid => "",
                        Variant::Unwritten => " + unwritten read",
                        Variant::Swapped => " + swapped reads",
                        Variant::UnwrittenSearchOnly => " + unwritten read, precheck off",
                    }
                ),
                config: SynthConfig {
                    seed: 1000 + i as u64,
                    object: Object::CasRegister,
                    ops,
                    processes,
                    keys: 0,
                    crash_rate: crash,
                    value_domain: domain,
                },
                variant,
            });
        }
    }
    for variant in [Variant::Valid, Variant::Unwritten] {
        cases.push(Case {
            name: format!(
                "100 keys p=20 ops=100000 crashed=5% values=0..5{}",
                if variant == Variant::Unwritten {
                    " + unwritten read"
                } else {
                    ""
                }
            ),
            config: SynthConfig {
                seed: 7,
                object: Object::CasRegister,
                ops: 100_000,
                processes: 20,
                keys: 100,
                crash_rate: 0.05,
                value_domain: Some(5),
            },
            variant,
        });
    }
    cases
}

fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs one case in this process and prints `valid seconds mib configurations`.
fn run_one(case: &Case) {
    let ops = simulate(&case.config);
    let ops = match case.variant {
        Variant::Valid => ops,
        Variant::Unwritten | Variant::UnwrittenSearchOnly => {
            corrupt_with_unwritten_read(&ops, case.config.seed).expect("history has reads")
        }
        Variant::Swapped => {
            corrupt_with_swapped_reads(&ops, case.config.seed).expect("a swappable pair")
        }
    };
    // Round-trip through the file format so parsing is part of the measurement.
    let path = std::env::temp_dir().join(format!("faultline-bench-{}.jsonl", std::process::id()));
    let mut text = String::new();
    for op in &ops {
        text.push_str(&serde_json::to_string(op).expect("serializable"));
        text.push('\n');
    }
    std::fs::write(&path, text).expect("temp file");
    let started = Instant::now();
    let history = History::read_jsonl(&path).expect("valid history");
    let options = LinearizableOptions {
        time_limit: Duration::from_secs(60),
        precheck: case.variant != Variant::UnwrittenSearchOnly,
        ..LinearizableOptions::default()
    };
    let verdict = check(&history, &options).expect("checkable");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    println!(
        "{} {seconds:.3} {:.0} {}",
        verdict.valid.word(),
        peak_memory_mib(),
        verdict.details["configurations"]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let family = args.iter().any(|a| a == "--families");
    let cases = if family { families() } else { cases(quick) };
    if let Some(position) = args.iter().position(|a| a == "--case") {
        let index: usize = args[position + 1].parse().expect("case index");
        run_one(&cases[index]);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("| history | expected | verdict | seconds | peak MiB | configurations |");
    println!("|---|---|---|---:|---:|---:|");
    for (index, case) in cases.iter().enumerate() {
        let mut command = Command::new(&exe);
        command.arg("--case").arg(index.to_string());
        if quick {
            command.arg("--quick");
        }
        if family {
            command.arg("--families");
        }
        let output = command.output().expect("run case");
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let expected = if case.variant == Variant::Valid {
            "valid"
        } else {
            "invalid"
        };
        if fields.len() == 4 {
            println!(
                "| {} | {expected} | {} | {} | {} | {} |",
                case.name, fields[0], fields[1], fields[2], fields[3]
            );
        } else {
            println!(
                "| {} | {expected} | crashed: {} | | | |",
                case.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
}
