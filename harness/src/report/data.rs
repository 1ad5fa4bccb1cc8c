//! What a report is made of, read from a run's directory: `results.json`,
//! `config.json`, the history, Elle's drawings and the tail of each node's log.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use faultline_checker::History;
use serde_json::Value;

use crate::error::UsageError;

/// Lines kept from the end of each node log.
const LOG_TAIL_LINES: usize = 50;
/// Bytes read from the end of a node log to find those lines.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// The most Elle drawings embedded, and the largest one.
const MAX_DRAWINGS: usize = 20;
const MAX_DRAWING_BYTES: u64 = 2 * 1024 * 1024;

/// The last lines of one node log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogTail {
    /// The node (its folder under `nodes/`).
    pub node: String,
    /// The file's name.
    pub file: String,
    /// The last lines, joined with newlines.
    pub text: String,
}

/// One of Elle's cycle drawings, checked to be an SVG document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drawing {
    /// The file's stem, e.g. `G-single-0`.
    pub name: String,
    /// The `<svg …>…</svg>` element.
    pub svg: String,
}

/// `DIR/NAME`, or a usage error (exit 254) naming it when it is missing.
pub fn required(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(UsageError(format!(
            "{}: no such file (not a run directory?)",
            path.display()
        ))
        .into())
    }
}

/// A JSON file holding an object, parsed. Malformed JSON, or anything but an object, is
/// the user's to fix (exit 254), named with its line.
pub fn read_json(path: &Path) -> Result<Value> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(UsageError(format!(
            "{}:1: expected a JSON object (a Faultline results.json or config.json)",
            path.display()
        ))
        .into()),
        Err(e) => Err(UsageError(format!(
            "{}:{}: not valid JSON: {e}",
            path.display(),
            e.line()
        ))
        .into()),
    }
}

/// `DIR/config.json` when there is one and it parses.
pub fn read_config(dir: &Path) -> Option<Value> {
    let path = dir.join("config.json");
    path.is_file().then(|| read_json(&path).ok()).flatten()
}

/// The history, or why it could not be read (a report is still written without it).
pub fn read_history(path: &Path) -> Result<History, String> {
    History::read(path, None).map_err(|e| e.to_string())
}

/// Elle's drawings in `DIR/elle/*.svg`; only files that are SVG documents (starting
/// with `<svg` or `<?xml`) and hold no script are kept.
pub fn read_drawings(dir: &Path) -> Vec<Drawing> {
    let Ok(entries) = fs::read_dir(dir.join("elle")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() <= MAX_DRAWING_BYTES))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| {
            let text = fs::read_to_string(path).ok()?;
            let svg = svg_element(&text)?;
            let name = path.file_stem()?.to_string_lossy().into_owned();
            Some(Drawing { name, svg })
        })
        .take(MAX_DRAWINGS)
        .collect()
}

/// The `<svg>` element of an SVG document, or `None` when the text is not one or
/// could run code.
fn svg_element(text: &str) -> Option<String> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with("<svg") || trimmed.starts_with("<?xml")) {
        return None;
    }
    let lower = trimmed.to_ascii_lowercase();
    if ["<script", "javascript:", "<foreignobject", "<iframe", " on"]
        .iter()
        .any(|bad| match *bad {
            // An event handler attribute: ` onload=`, ` onclick=`, ….
            " on" => lower
                .match_indices(" on")
                .any(|(i, _)| is_handler(&lower[i + 3..])),
            _ => lower.contains(bad),
        })
    {
        return None;
    }
    let start = lower.find("<svg")?;
    let end = lower.rfind("</svg>")? + "</svg>".len();
    // Namespace declarations are not needed inline in HTML, and name URLs.
    (start < end).then(|| {
        trimmed[start..end]
            .replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
            .replace(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "")
    })
}

/// True when `rest` begins with an attribute name of letters followed by `=`.
fn is_handler(rest: &str) -> bool {
    let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    name_len > 0 && rest[name_len..].trim_start().starts_with('=')
}

/// The last lines of every `DIR/nodes/NODE/*.log`, then of `DIR/clients.log` (the
/// standard error of external client programs), if there is one.
pub fn read_log_tails(dir: &Path) -> Vec<LogTail> {
    let mut tails = read_node_log_tails(dir);
    let clients = dir.join("clients.log");
    if clients.is_file() {
        tails.push(LogTail {
            node: "clients".into(),
            file: "clients.log".into(),
            text: tail(&clients)
                .unwrap_or_else(|e| format!("(cannot read {}: {e})", clients.display())),
        });
    }
    tails
}

fn read_node_log_tails(dir: &Path) -> Vec<LogTail> {
    let Ok(nodes) = fs::read_dir(dir.join("nodes")) else {
        return Vec::new();
    };
    let mut node_dirs: Vec<PathBuf> = nodes
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    node_dirs.sort();
    let mut tails = Vec::new();
    for node_dir in node_dirs {
        let Ok(files) = fs::read_dir(&node_dir) else {
            continue;
        };
        let mut logs: Vec<PathBuf> = files
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        for log in logs {
            let text = match tail(&log) {
                Ok(text) => text,
                Err(e) => format!("(cannot read {}: {e})", log.display()),
            };
            tails.push(LogTail {
                node: name_of(&node_dir),
                file: name_of(&log),
                text,
            });
        }
    }
    tails
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The last [`LOG_TAIL_LINES`] lines of a file.
fn tail(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    let from = len.saturating_sub(LOG_TAIL_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    // A partial first line (cut by the seek) is dropped.
    let skip_partial = usize::from(from > 0);
    let start = lines.len().saturating_sub(LOG_TAIL_LINES).max(skip_partial);
    Ok(lines.get(start..).unwrap_or_default().join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_script_free_svg_documents_are_embedded() {
        let ok = "<?xml version=\"1.0\"?>\n<svg width=\"10\"><g><text>T1</text></g></svg>\n";
        assert_eq!(
            svg_element(ok).as_deref(),
            Some("<svg width=\"10\"><g><text>T1</text></g></svg>")
        );
        assert!(svg_element("<html><svg></svg></html>").is_none());
        assert!(svg_element("<svg><script>alert(1)</script></svg>").is_none());
        assert!(svg_element("<svg onload=\"alert(1)\"></svg>").is_none());
        assert!(svg_element("<svg><text>on time = 3</text></svg>").is_some());
    }
}
