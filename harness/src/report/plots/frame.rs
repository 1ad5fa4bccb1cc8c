//! The frame every plot shares: its size and margins, axes and ticks, scales from data
//! to pixels, and the shapes the template draws.

use faultline_checker::OpType;
use serde::Serialize;

use super::FaultInterval;

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
    pub(super) fn log(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
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
pub(super) fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(3.0), "3");
    }
}
