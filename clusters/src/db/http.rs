//! A minimal HTTP/1.0 POST for etcd's JSON gateway (readiness probes and leader
//! discovery).
//!
//! Why not reqwest: this crate is synchronous (no tokio), and reqwest's sync client
//! (`reqwest::blocking`, a feature the workspace does not enable) runs a tokio runtime
//! on a thread of its own per client, and must not be created or dropped inside an
//! async context (the harness calls `Db::await_ready` and `Primaries` from its runtime's
//! blocking threads). For one small POST per probe, with HTTP/1.0 (no chunking, the
//! server closes the connection), a few lines over `TcpStream` are simpler and safer.

use std::io::{Read, Write};
use std::time::Duration;

use super::line::connect;

/// POSTs `body` (JSON) to `http://addr/path` (HTTP/1.0, so no chunking) and returns the
/// status code and body, within `timeout`.
pub fn http_post(
    addr: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut stream = connect(addr, timeout)?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "malformed HTTP status line: {}",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok((status, body.to_string()))
}
