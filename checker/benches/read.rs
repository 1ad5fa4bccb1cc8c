//! History reading benchmark: `cargo bench -p faultline-checker --bench read [-- TXNS]`.
//!
//! Writes a seeded list-append history (`elle::generate`, 20 processes, default 100,000
//! transactions) as JSONL and as Jepsen-style EDN (one map per line, keywords), then
//! reads each file three times with `History::read` and prints the wall time and the
//! throughput. Reading is what every `faultline check` pays before any checker runs.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::time::Instant;

use faultline_checker::History;
use faultline_checker::elle::generate::generate_list_append;
use faultline_checker::history::{HistoryWriter, Process};
use serde_json::Value;

/// A JSON value as EDN: strings stay strings, objects become maps with keyword keys.
fn edn_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                edn_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (k, v) in map {
                let _ = write!(out, ":{k} ");
                edn_value(v, out);
                out.push(' ');
            }
            out.push('}');
        }
    }
}

/// One event as a Jepsen `history.edn` line.
fn edn_line(op: &faultline_checker::Op) -> String {
    let mut line = format!(
        "{{:index {}, :time {}, :type :{}, :process ",
        op.index, op.time, op.op_type
    );
    match op.process {
        Process::Client(p) => line.push_str(&p.to_string()),
        Process::Nemesis => line.push_str(":nemesis"),
    }
    let _ = write!(line, ", :f :{}, :value ", op.f);
    // Micro-op names as keywords, as Jepsen writes them.
    let mut value = String::new();
    edn_value(&op.value, &mut value);
    line.push_str(
        &value
            .replace("[\"append\"", "[:append")
            .replace("[\"r\"", "[:r"),
    );
    line.push('}');
    line
}

fn main() {
    let txns = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(100_000);
    let ops = generate_list_append(42, txns, 20);
    let dir = std::env::temp_dir().join(format!("faultline-read-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let jsonl = dir.join("history.jsonl");
    let edn = dir.join("history.edn");
    let written = (|| -> std::io::Result<()> {
        let mut writer = HistoryWriter::new(BufWriter::new(std::fs::File::create(&jsonl)?));
        for op in &ops {
            writer.write(op)?;
        }
        let mut out = BufWriter::new(std::fs::File::create(&edn)?);
        for op in &ops {
            writeln!(out, "{}", edn_line(op))?;
        }
        out.flush()
    })();
    if let Err(e) = written {
        eprintln!("cannot write the histories: {e}");
        std::process::exit(1);
    }
    println!("| format | transactions | file | read (wall, 3 runs) | MB/s |");
    println!("|---|---|---|---|---|");
    for path in [&jsonl, &edn] {
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            match History::read(path, None) {
                Ok(history) => assert_eq!(history.len(), ops.len()),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
            times.push(started.elapsed().as_secs_f64());
        }
        let best = times.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "| {} | {txns} | {:.0} MB | {} | {:.0} |",
            path.extension().and_then(|e| e.to_str()).unwrap_or("?"),
            bytes as f64 / 1e6,
            times
                .iter()
                .map(|t| format!("{t:.3} s"))
                .collect::<Vec<_>>()
                .join(" / "),
            bytes as f64 / 1e6 / best
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
