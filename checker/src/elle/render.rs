//! Pictures of cycles: Graphviz DOT text, and an SVG drawn with our own circular
//! layout (no Graphviz needed).

use std::f64::consts::PI;
use std::fmt::Write;

/// A transaction in a drawing.
#[derive(Debug, Clone)]
pub(crate) struct DrawNode {
    /// Short name, e.g. `T1`.
    pub name: String,
    /// What it did, one line per fact.
    pub detail: Vec<String>,
}

/// A dependency in a drawing.
#[derive(Debug, Clone)]
pub(crate) struct DrawEdge {
    /// Index of the source node.
    pub from: usize,
    /// Index of the target node.
    pub to: usize,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub rel: &'static str,
    /// Edge label.
    pub label: String,
}

/// A cycle, ready to draw.
#[derive(Debug, Clone)]
pub(crate) struct Drawing {
    /// The anomaly name.
    pub title: String,
    /// Transactions in cycle order.
    pub nodes: Vec<DrawNode>,
    /// Dependencies.
    pub edges: Vec<DrawEdge>,
}

fn color(rel: &str) -> &'static str {
    match rel {
        "ww" => "#1f77b4",
        "wr" => "#2ca02c",
        "rw" => "#d62728",
        "process" => "#9467bd",
        _ => "#7f7f7f",
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

impl Drawing {
    /// Graphviz DOT source.
    pub(crate) fn dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&self.title));
        let _ = writeln!(out, "  rankdir=LR;");
        let _ = writeln!(
            out,
            "  node [shape=box, fontname=\"monospace\", fontsize=10];"
        );
        let _ = writeln!(out, "  edge [fontname=\"monospace\", fontsize=10];");
        for n in &self.nodes {
            let mut label = n.name.clone();
            for line in &n.detail {
                label.push_str("\\n");
                label.push_str(&dot_escape(line));
            }
            let _ = writeln!(out, "  \"{}\" [label=\"{}\"];", dot_escape(&n.name), label);
        }
        for e in &self.edges {
            let (Some(a), Some(b)) = (self.nodes.get(e.from), self.nodes.get(e.to)) else {
                continue;
            };
            let style = if e.rel == "realtime" || e.rel == "process" {
                ", style=dashed"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{}\", color=\"{}\", fontcolor=\"{}\"{}];",
                dot_escape(&a.name),
                dot_escape(&b.name),
                dot_escape(&e.label),
                color(e.rel),
                color(e.rel),
                style
            );
        }
        out.push_str("}\n");
        out
    }

    /// A standalone SVG: transactions on a circle, dependencies as curved arrows.
    pub(crate) fn svg(&self) -> String {
        let n = self.nodes.len().max(1);
        let box_w = 230.0;
        let line_h = 14.0;
        let max_lines = self
            .nodes
            .iter()
            .map(|x| x.detail.len().min(4) + 1)
            .max()
            .unwrap_or(1);
        let box_h = line_h * max_lines as f64 + 10.0;
        let radius = if n <= 1 {
            0.0
        } else {
            (box_w * 1.1 * n as f64 / PI).max(220.0)
        };
        let margin = 40.0;
        let width = 2.0 * radius + box_w + 2.0 * margin;
        let height = 2.0 * radius + box_h + 2.0 * margin + 30.0;
        let (cx, cy) = (width / 2.0, height / 2.0 + 15.0);
        let pos: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let a = -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
                (cx + radius * a.cos(), cy + radius * a.sin())
            })
            .collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"11\">"
        );
        out.push_str("<defs>");
        for rel in ["ww", "wr", "rw", "process", "realtime"] {
            let _ = write!(
                out,
                "<marker id=\"arrow-{rel}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"{}\"/></marker>",
                color(rel)
            );
        }
        out.push_str("</defs>\n");
        let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        let _ = writeln!(
            out,
            "<text x=\"{:.0}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            width / 2.0,
            xml_escape(&self.title)
        );
        // Edges first, so boxes sit on top of the arrow tails.
        for e in &self.edges {
            let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(e.from), pos.get(e.to)) else {
                continue;
            };
            let (dx, dy) = (x2 - x1, y2 - y1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            // Bend to the left of the direction of travel, so a->b and b->a differ.
            let bend = 0.18 * len;
            let (mx, my) = (
                (x1 + x2) / 2.0 - dy / len * bend,
                (y1 + y2) / 2.0 + dx / len * bend,
            );
            let (sx, sy) = clip_to_box(x1, y1, mx, my, box_w, box_h);
            let (ex, ey) = clip_to_box(x2, y2, mx, my, box_w, box_h);
            let dash = if e.rel == "realtime" || e.rel == "process" {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<path d=\"M {sx:.1} {sy:.1} Q {mx:.1} {my:.1} {ex:.1} {ey:.1}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash} marker-end=\"url(#arrow-{r})\"/>",
                c = color(e.rel),
                r = e.rel
            );
            let (lx, ly) = (
                0.25 * sx + 0.5 * mx + 0.25 * ex,
                0.25 * sy + 0.5 * my + 0.25 * ey,
            );
            let _ = writeln!(
                out,
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"middle\" fill=\"{}\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
                color(e.rel),
                xml_escape(&clip(&e.label, 36))
            );
        }
        for (node, &(x, y)) in self.nodes.iter().zip(&pos) {
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{box_w:.0}\" height=\"{box_h:.0}\" rx=\"6\" fill=\"#f7f7f7\" stroke=\"#333\"/>",
                x - box_w / 2.0,
                y - box_h / 2.0
            );
            let mut ty = y - box_h / 2.0 + line_h + 2.0;
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{ty:.1}\" font-weight=\"bold\">{}</text>",
                x - box_w / 2.0 + 8.0,
                xml_escape(&node.name)
            );
            for line in node.detail.iter().take(max_lines - 1) {
                ty += line_h;
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{ty:.1}\">{}</text>",
                    x - box_w / 2.0 + 8.0,
                    xml_escape(&clip(line, 34))
                );
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

/// The point where the segment from a box's centre `(x, y)` towards `(tx, ty)`
/// leaves the box.
fn clip_to_box(x: f64, y: f64, tx: f64, ty: f64, w: f64, h: f64) -> (f64, f64) {
    let (dx, dy) = (tx - x, ty - y);
    if dx.abs() < 1e-9 && dy.abs() < 1e-9 {
        return (x, y);
    }
    let sx = if dx.abs() > 1e-9 {
        (w / 2.0 + 4.0) / dx.abs()
    } else {
        f64::INFINITY
    };
    let sy = if dy.abs() > 1e-9 {
        (h / 2.0 + 4.0) / dy.abs()
    } else {
        f64::INFINITY
    };
    let s = sx.min(sy).min(1.0);
    (x + dx * s, y + dy * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Drawing {
        Drawing {
            title: "G-single".into(),
            nodes: vec![
                DrawNode {
                    name: "T1".into(),
                    detail: vec!["[\"r\",\"x\",[1]]".into()],
                },
                DrawNode {
                    name: "T2".into(),
                    detail: vec!["<append>".into()],
                },
            ],
            edges: vec![
                DrawEdge {
                    from: 0,
                    to: 1,
                    rel: "rw",
                    label: "rw \"x\" 2".into(),
                },
                DrawEdge {
                    from: 1,
                    to: 0,
                    rel: "wr",
                    label: "wr y 1".into(),
                },
            ],
        }
    }

    #[test]
    fn dot_has_nodes_and_edges() {
        let dot = sample().dot();
        assert!(dot.starts_with("digraph \"G-single\""));
        assert!(dot.contains("\"T1\" -> \"T2\""));
        assert!(dot.contains("\\\"x\\\""));
    }

    #[test]
    fn svg_is_escaped_and_complete() {
        let svg = sample().svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("&lt;append&gt;"));
        assert_eq!(svg.matches("marker-end").count(), 2);
    }
}
