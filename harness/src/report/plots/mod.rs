//! Plots as data for the `plot.html` template: every coordinate is computed here, the
//! template only draws. Time plots share the fault intervals, shaded and labelled.

mod faults;
mod frame;

use std::collections::BTreeMap;

use faultline_checker::history::Operation;
use faultline_checker::{History, OpType};
use serde::Serialize;

pub use faults::{FaultInterval, fault_intervals};
use frame::nice_ticks;
pub use frame::{Bar, Legend, Line, Plot, Point, Scale, Tick, format_number, outcome_class, round};

/// The most points drawn on the latency plot; beyond, every n-th operation is drawn.
const MAX_POINTS: usize = 10_000;

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// At most `max` characters, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// The span of the history in seconds (0 to the last event).
pub fn history_span(history: &History) -> f64 {
    history
        .ops()
        .last()
        .map_or(1.0, |op| seconds(op.time))
        .max(1e-3)
}

/// Latency (completion − invocation) of every completed operation over the time it was
/// invoked, on a log scale, coloured by outcome.
pub fn latency(operations: &[Operation<'_>], faults: &[FaultInterval], span: f64) -> Plot {
    let mut plot = Plot::new("latency", "Latency over time", 320.0);
    let x = plot.time_axis(0.0, span, faults);
    let completed: Vec<(f64, f64, &'static str)> = operations
        .iter()
        .filter_map(|o| {
            let c = o.completion?;
            let ms = (c.time - o.invoke.time) as f64 / 1e6;
            Some((
                seconds(o.invoke.time),
                ms.max(1e-3),
                outcome_class(c.op_type),
            ))
        })
        .collect();
    let (lo, hi) = completed.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (lo, hi) = if completed.is_empty() {
        (0.1, 1000.0)
    } else {
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
        )
    };
    let y = Scale::log(lo, hi, plot.bottom, plot.top);
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        plot.y_ticks.push(Tick {
            pos: y.at(decade),
            label: format_number(decade),
        });
        decade *= 10.0;
    }
    plot.y_label = "latency (ms)".to_string();
    let stride = completed.len().div_ceil(MAX_POINTS).max(1);
    plot.points = completed
        .iter()
        .step_by(stride)
        .map(|&(t, ms, class)| Point {
            x: x.at(t),
            y: y.at(ms),
            class,
        })
        .collect();
    if stride > 1 {
        plot.note = format!(
            "{} of {} operations drawn (one in {stride}).",
            plot.points.len(),
            completed.len()
        );
    }
    let never = operations.len() - completed.len();
    if never > 0 {
        plot.note.push_str(&format!(
            " {never} operation(s) never completed and are not drawn."
        ));
    }
    plot.legend = outcome_legend();
    plot
}

fn outcome_legend() -> Vec<Legend> {
    ["ok", "fail", "info"]
        .into_iter()
        .map(|class| Legend {
            class,
            label: class.to_string(),
        })
        .collect()
}

/// Completions per second, one line per outcome.
pub fn throughput(operations: &[Operation<'_>], faults: &[FaultInterval], span: f64) -> Plot {
    let mut plot = Plot::new("throughput", "Throughput", 220.0);
    let x = plot.time_axis(0.0, span, faults);
    let buckets = (span.ceil() as usize).max(1);
    let mut counts = [
        vec![0u32; buckets],
        vec![0u32; buckets],
        vec![0u32; buckets],
    ];
    for o in operations {
        let Some(c) = o.completion else { continue };
        let slot = match c.op_type {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        let bucket = (seconds(c.time).max(0.0) as usize).min(buckets - 1);
        counts[slot][bucket] += 1;
    }
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let y = Scale::linear(0.0, max, plot.bottom, plot.top);
    plot.y_ticks = nice_ticks(0.0, max)
        .into_iter()
        .map(|t| Tick {
            pos: y.at(t),
            label: format_number(t),
        })
        .collect();
    plot.y_label = "completions / s".to_string();
    for (slot, class) in ["ok", "fail", "info"].into_iter().enumerate() {
        let points: Vec<String> = counts[slot]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let t = (i as f64 + 0.5).min(span);
                format!("{},{}", x.at(t), y.at(f64::from(*n)))
            })
            .collect();
        plot.lines.push(Line {
            points: points.join(" "),
            class,
        });
    }
    plot.legend = outcome_legend();
    plot
}

/// One row of the latency quantiles table.
#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    /// The operation's function.
    pub f: String,
    /// Completions by outcome.
    pub ok: usize,
    /// Completions by outcome.
    pub fail: usize,
    /// Completions by outcome (and never completed).
    pub info: usize,
    /// Latency of the `ok` operations, ms.
    pub p50: String,
    /// Latency of the `ok` operations, ms.
    pub p90: String,
    /// Latency of the `ok` operations, ms.
    pub p99: String,
    /// Latency of the `ok` operations, ms.
    pub max: String,
}

/// p50/p90/p99/max latency of `ok` operations, per `f`.
pub fn quantiles(operations: &[Operation<'_>]) -> Vec<Quantiles> {
    let mut by_f: BTreeMap<&str, (Vec<f64>, usize, usize, usize)> = BTreeMap::new();
    for o in operations {
        let entry = by_f.entry(o.invoke.f.as_str()).or_default();
        match o.completion {
            Some(c) if c.op_type == OpType::Ok => {
                entry.0.push((c.time - o.invoke.time) as f64 / 1e6);
                entry.1 += 1;
            }
            Some(c) if c.op_type == OpType::Fail => entry.2 += 1,
            _ => entry.3 += 1,
        }
    }
    by_f.into_iter()
        .map(|(f, (mut lat, ok, fail, info))| {
            lat.sort_by(f64::total_cmp);
            let q = |p: f64| {
                if lat.is_empty() {
                    "–".to_string()
                } else {
                    let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
                    format!("{:.2}", lat[i])
                }
            };
            Quantiles {
                f: f.to_string(),
                ok,
                fail,
                info,
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                max: q(1.0),
            }
        })
        .collect()
}
