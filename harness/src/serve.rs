//! `faultline serve`: the store over HTTP, read-only, on 127.0.0.1 only. `GET /` is the
//! store's `index.html` (rendered if missing); any other path is a file under the store.
//! Only `GET` and `HEAD` are answered; a path with `..`, a backslash or a NUL, or one
//! that resolves (through symbolic links) outside the store, is refused.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

use crate::error::UsageError;
use crate::output::say;

/// Serve the store (index, reports, results) over HTTP on 127.0.0.1, read-only.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The store directory to serve.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
}

/// Serves the store until the process is stopped (Ctrl-C).
pub fn run(args: &ServeArgs) -> Result<()> {
    let root = args.store.canonicalize().map_err(|e| {
        UsageError(format!(
            "--store: cannot open {}: {e}",
            args.store.display()
        ))
    })?;
    if !root.is_dir() {
        return Err(UsageError(format!("--store: {} is not a directory", root.display())).into());
    }
    let server = Server::http((Ipv4Addr::LOCALHOST, args.port))
        .map_err(|e| anyhow!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .context("the server has no IP address")?;
    say!(
        "faultline: serving {} at http://127.0.0.1:{port}/ (Ctrl-C to stop)",
        root.display()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    for request in server.incoming_requests() {
        let url = request.url().to_string();
        if let Err(e) = answer(&root, request) {
            eprintln!("faultline serve: {url}: {e:#}");
        }
    }
    Ok(())
}

/// Answers one request.
fn answer(root: &Path, request: Request) -> Result<()> {
    // tiny_http sends no body in answer to HEAD.
    if !matches!(request.method(), Method::Get | Method::Head) {
        let response = Response::from_string("only GET is served\n")
            .with_status_code(StatusCode(405))
            .with_header(header("Allow", "GET, HEAD")?);
        return request.respond(response).context("cannot answer");
    }
    let Some(path) = resolve(root, request.url()) else {
        let response = Response::from_string("not found\n").with_status_code(StatusCode(404));
        return request.respond(response).context("cannot answer");
    };
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let response = Response::from_file(file)
        .with_header(header("Content-Type", content_type(&path))?)
        .with_header(header("X-Content-Type-Options", "nosniff")?);
    request.respond(response).context("cannot answer")
}

fn header(name: &str, value: &str) -> Result<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .map_err(|()| anyhow!("bad header {name}: {value}"))
}

/// The file a URL names under `root`, or `None` (404): no `..`, no backslash or NUL, and
/// after resolving symbolic links it must still be a regular file inside `root`. `/`
/// is `index.html`, rendered first if the store has none yet.
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    if decoded.contains(['\\', '\0']) {
        return None;
    }
    let relative = decoded.trim_start_matches('/');
    let relative = if relative.is_empty() || relative.ends_with('/') {
        format!("{relative}index.html")
    } else {
        relative.to_string()
    };
    let relative = Path::new(&relative);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    if relative == Path::new("index.html")
        && !root.join("index.html").exists()
        && let Err(e) = crate::suite::write_index(root)
    {
        eprintln!("faultline serve: cannot render the index: {e:#}");
    }
    let full = root.join(relative).canonicalize().ok()?;
    (full.starts_with(root) && full.is_file()).then_some(full)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a non-UTF-8 result.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Content-Type of a file in the store, by its extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("svg") => "image/svg+xml",
        Some("xml") => "application/xml",
        Some("log" | "txt" | "edn" | "dot") => "text/plain; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_store() {
        let store = tempfile::tempdir().unwrap();
        let root = store.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("t/r")).unwrap();
        std::fs::write(root.join("t/r/results.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert_eq!(
            resolve(&root, "/t/r/results.json?x=1"),
            Some(root.join("t/r/results.json"))
        );
        assert_eq!(
            resolve(&root, "/t/%72/results.json"),
            Some(root.join("t/r/results.json"))
        );
        for bad in [
            "/../etc/passwd",
            "/t/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/t/..%2F..%2Fetc/passwd",
            "/escape/passwd",
            "/t/r",
            "/t\\r",
            "/%zz",
            "/nothing",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        // `/` renders the index when the store has none.
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a/report.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("history.jsonl")),
            "application/x-ndjson"
        );
        assert_eq!(content_type(Path::new("junit.xml")), "application/xml");
        assert_eq!(content_type(Path::new("g.svg")), "image/svg+xml");
        assert_eq!(
            content_type(Path::new("node.log")),
            "text/plain; charset=utf-8"
        );
    }
}
