//! `cargo bench -p faultline --bench run`: throughput of a whole `faultline run` against
//! the bundled node on this machine (no faults, as fast as it goes), and the share of the
//! controller's CPU spent writing the history. Needs root (local namespace hosts).
//!
//! `FAULTLINE_BENCH_SECONDS` (default 15) and `FAULTLINE_BENCH_REPEAT` (default 3) tune
//! it; every figure comes from the run's own `results.json`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let faultline = PathBuf::from(env!("CARGO_BIN_EXE_faultline"));
    let seconds = std::env::var("FAULTLINE_BENCH_SECONDS").unwrap_or_else(|_| "15".into());
    let repeat: usize = std::env::var("FAULTLINE_BENCH_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let store = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
    let configs: [(&str, &[&str]); 4] = [
        (
            "register, 3 nodes, 200 clients",
            &[
                "--workload",
                "register",
                "--nodes",
                "3",
                "--concurrency",
                "200",
            ],
        ),
        (
            "register, 5 nodes, 200 clients",
            &[
                "--workload",
                "register",
                "--nodes",
                "5",
                "--concurrency",
                "200",
            ],
        ),
        (
            "list-append, 3 nodes, 200 clients",
            &[
                "--workload",
                "list-append",
                "--nodes",
                "3",
                "--concurrency",
                "200",
            ],
        ),
        (
            "counter, 3 nodes, 200 clients",
            &[
                "--workload",
                "counter",
                "--nodes",
                "3",
                "--concurrency",
                "200",
            ],
        ),
    ];
    println!(
        "| run | ops/s | history writing, share of controller CPU | controller CPU s | verdict |"
    );
    println!("|---|---|---|---|---|");
    for (label, args) in configs {
        for _ in 0..repeat {
            let out = Command::new(&faultline)
                .args([
                    "run",
                    "--rate",
                    "0",
                    "--nemesis",
                    "none",
                    "--recovery-time",
                    "0",
                ])
                .args(["--time-limit", &seconds, "--name", "bench", "--store"])
                .arg(&store)
                .args(args)
                .output()
                .expect("cannot start faultline");
            let latest = store.join("bench/latest/results.json");
            let results: serde_json::Value = std::fs::read_to_string(&latest)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| panic!("no results: {}", String::from_utf8_lossy(&out.stderr)));
            let run = &results["run"];
            println!(
                "| {label} | {:.0} | {:.1} % | {:.1} | {} |",
                run["ops_per_second"].as_f64().unwrap_or(0.0),
                100.0 * run["history_write_cpu_share"].as_f64().unwrap_or(0.0),
                run["controller_cpu_seconds"].as_f64().unwrap_or(0.0),
                results["valid"]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&store);
}
