//! Plots as data for the `plot.html` template: every coordinate is computed here, the
//! template only draws. Time plots share the fault intervals, shaded and labelled.

use std::collections::BTreeMap;

use faultline_checker::history::Operation;
use faultline_checker::{History, OpType, Process};
use serde::Serialize;
use serde_json::Value;

/// The most points drawn on the latency plot; beyond, every n-th operation is drawn.
const MAX_POINTS: usize = 10_000;
/// Plot frame: width and height, and the margins around the drawing area.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

/// A labelled position on an axis.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// Pixels from the frame's origin.
    pub pos: f64,
    /// The text shown.
    pub label: String,
}

/// A shaded fault interval, in pixels.
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    /// Left edge.
    pub x: f64,
    /// Width (at least one pixel).
    pub w: f64,
    /// What the fault was.
    pub label: String,
}

/// A rectangle (a timeline bar), in pixels, with a CSS class and a tooltip.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// `ok`, `fail`, `info`, plus `blocking` or `concurrent` in counterexamples.
    pub class: String,
    /// Tooltip.
    pub title: String,
}

/// A dot.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Centre, x.
    pub x: f64,
    /// Centre, y.
    pub y: f64,
    /// `ok`, `fail` or `info`.
    pub class: &'static str,
}

/// A polyline (`x,y x,y …`).
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The `points` attribute.
    pub points: String,
    /// `ok`, `fail` or `info`.
    pub class: &'static str,
}

/// A legend entry.
#[derive(Debug, Clone, Serialize)]
pub struct Legend {
    /// The colour's class.
    pub class: &'static str,
    /// The text.
    pub label: String,
}

/// One plot, ready to draw.
#[derive(Debug, Clone, Serialize)]
pub struct Plot {
    /// The element id.
    pub id: String,
    /// The heading.
    pub title: String,
    /// The whole SVG's size.
    pub width: f64,
    /// The whole SVG's size.
    pub height: f64,
    /// The drawing area's left edge.
    pub left: f64,
    /// The drawing area's top edge.
    pub top: f64,
    /// The drawing area's right edge.
    pub right: f64,
    /// The drawing area's bottom edge.
    pub bottom: f64,
    /// Axis titles.
    pub x_label: String,
    /// Axis titles.
    pub y_label: String,
    /// Ticks along the bottom.
    pub x_ticks: Vec<Tick>,
    /// Ticks (or row names) along the left.
    pub y_ticks: Vec<Tick>,
    /// Fault intervals.
    pub faults: Vec<Band>,
    /// Bars.
    pub bars: Vec<Bar>,
    /// Dots.
    pub points: Vec<Point>,
    /// Lines.
    pub lines: Vec<Line>,
    /// Legend entries.
    pub legend: Vec<Legend>,
    /// A sentence under the plot (what was left out), or empty.
    pub note: String,
}

impl Plot {
    /// An empty plot whose drawing area is `inner_height` pixels high.
    pub fn new(id: &str, title: &str, inner_height: f64) -> Plot {
        Plot {
            id: id.to_string(),
            title: title.to_string(),
            width: WIDTH,
            height: TOP + inner_height + BOTTOM,
            left: LEFT,
            top: TOP,
            right: WIDTH - RIGHT,
            bottom: TOP + inner_height,
            x_label: String::new(),
            y_label: String::new(),
            x_ticks: Vec::new(),
            y_ticks: Vec::new(),
            faults: Vec::new(),
            bars: Vec::new(),
            points: Vec::new(),
            lines: Vec::new(),
            legend: Vec::new(),
            note: String::new(),
        }
    }

    /// The horizontal scale for seconds `from..to`, with its ticks and the faults.
    pub fn time_axis(&mut self, from: f64, to: f64, faults: &[FaultInterval]) -> Scale {
        let x = Scale::linear(from, to.max(from + 1e-3), self.left, self.right);
        self.x_label = "time since the test started (s)".to_string();
        let ticks = nice_ticks(x.d0, x.d1);
        let step = match ticks.as_slice() {
            [a, b, ..] => b - a,
            _ => 1.0,
        };
        let decimals = (-step.log10().floor()).clamp(0.0, 9.0) as usize;
        self.x_ticks = ticks
            .into_iter()
            .map(|t| Tick {
                pos: x.at(t),
                label: format!("{t:.decimals$}"),
            })
            .collect();
        self.faults = faults
            .iter()
            .filter(|f| f.end > from && f.start < to)
            .map(|f| {
                let a = x.at(f.start.max(from));
                let b = x.at(f.end.min(to));
                Band {
                    x: a,
                    w: round((b - a).max(1.0)),
                    label: f.label.clone(),
                }
            })
            .collect();
        x
    }
}

/// A map from data to pixels.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
    log: bool,
}

impl Scale {
    /// Linear from `d0..d1` onto `r0..r1`.
    pub fn linear(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
        Scale {
            d0,
            d1,
            r0,
            r1,
            log: false,
        }
    }

    /// Logarithmic (base 10) from `d0..d1` (both > 0) onto `r0..r1`.
    fn log(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
        Scale {
            d0: d0.log10(),
            d1: d1.log10(),
            r0,
            r1,
            log: true,
        }
    }

    /// The pixel for a value, rounded to a tenth.
    pub fn at(&self, value: f64) -> f64 {
        let v = if self.log {
            value.max(1e-12).log10()
        } else {
            value
        };
        let span = self.d1 - self.d0;
        let t = if span.abs() < 1e-12 {
            0.0
        } else {
            (v - self.d0) / span
        };
        round(self.r0 + t.clamp(0.0, 1.0) * (self.r1 - self.r0))
    }
}

/// Rounds to a tenth (keeps the SVG small).
pub fn round(v: f64) -> f64 {
    if v.is_finite() {
        (v * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// About five round tick values between `lo` and `hi`.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return vec![lo];
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    let mut ticks = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 && ticks.len() < 20 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// A number without needless decimals.
pub fn format_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The class for an outcome.
pub fn outcome_class(outcome: OpType) -> &'static str {
    match outcome {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info | OpType::Invoke => "info",
    }
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// A fault in place from `start` to `end` (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct FaultInterval {
    /// When the fault was in place.
    pub start: f64,
    /// When it was lifted (or the history ended).
    pub end: f64,
    /// The fault and its targets, e.g. `start-partition [["n1"],["n2","n3"]]`.
    pub label: String,
    /// True when the history ended before the fault was lifted.
    pub open: bool,
}

/// The fault that `f` lifts, when `f` is a stop.
fn started_by(stop: &str) -> Option<String> {
    match stop {
        "start" => Some("kill".into()),
        "resume" => Some("pause".into()),
        "power-on" => Some("power-loss".into()),
        _ => stop
            .strip_prefix("stop-")
            .map(|rest| format!("start-{rest}")),
    }
}

/// True when `f` begins a fault.
fn is_start(f: &str) -> bool {
    matches!(f, "kill" | "pause" | "power-loss") || f.starts_with("start-")
}

/// The fault intervals of the nemesis's `info` lines: from a start (`start-partition`,
/// `kill`, `pause`, …) to the matching stop (`stop-partition`, `start`, `resume`), or
/// to the end of the history.
pub fn fault_intervals(history: &History) -> Vec<FaultInterval> {
    let end = history.ops().last().map_or(0.0, |op| seconds(op.time));
    let mut open: Vec<(String, FaultInterval)> = Vec::new();
    let mut done = Vec::new();
    for op in history.ops() {
        if op.process != Process::Nemesis || op.op_type != OpType::Info {
            continue;
        }
        let at = seconds(op.time);
        if is_start(&op.f) {
            open.push((
                op.f.clone(),
                FaultInterval {
                    start: at,
                    end,
                    label: fault_label(&op.f, &op.value),
                    open: true,
                },
            ));
        } else if let Some(start) = started_by(&op.f) {
            let (closing, still): (Vec<_>, Vec<_>) =
                open.into_iter().partition(|(f, _)| *f == start);
            open = still;
            for (_, mut interval) in closing {
                interval.end = at;
                interval.open = false;
                done.push(interval);
            }
        }
    }
    done.extend(open.into_iter().map(|(_, interval)| interval));
    done.sort_by(|a, b| a.start.total_cmp(&b.start));
    done
}

fn fault_label(f: &str, value: &Value) -> String {
    let mut label = f.to_string();
    if !value.is_null() {
        let text = value.to_string();
        label.push(' ');
        label.push_str(&truncate(&text, 80));
    }
    label
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

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::Op;
    use serde_json::json;

    fn nemesis(index: u64, time: i64, f: &str) -> Op {
        Op::new(index, time, Process::Nemesis, OpType::Info, f, json!(null))
    }

    #[test]
    fn faults_pair_starts_with_their_stops() {
        let ops = vec![
            nemesis(0, 1_000_000_000, "start-partition"),
            nemesis(1, 2_000_000_000, "kill"),
            nemesis(2, 3_000_000_000, "stop-partition"),
            nemesis(3, 4_000_000_000, "pause"),
            nemesis(4, 5_000_000_000, "start"),
            nemesis(5, 6_000_000_000, "read-only"),
        ];
        let history = History::from_ops("t", ops).unwrap();
        let faults = fault_intervals(&history);
        let spans: Vec<(f64, f64, bool)> =
            faults.iter().map(|f| (f.start, f.end, f.open)).collect();
        assert_eq!(
            spans,
            vec![(1.0, 3.0, false), (2.0, 5.0, false), (4.0, 6.0, true)]
        );
        assert_eq!(faults[2].label, "pause");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(3.0), "3");
    }
}
